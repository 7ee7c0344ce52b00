#include "support/test_support.h"

#include <fcntl.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <thread>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "common/status.h"

namespace wmty::testing {

TempDir::TempDir() {
  const char* base = std::getenv("TMPDIR");
  std::string pattern = absl::StrCat(base ? base : "/tmp", "/wmty-test-XXXXXX");
  char* made = mkdtemp(pattern.data());
  if (made == nullptr) std::abort();
  path_ = made;
}

TempDir::~TempDir() {
  std::error_code ec;
  std::filesystem::remove_all(path_, ec);
}

std::vector<std::string> ViolatedFields(const absl::Status& status) {
  std::vector<std::string> out;
  const google::rpc::BadRequest bad = GetFieldViolations(status);  // kept alive for the loop
  for (const auto& v : bad.field_violations()) out.push_back(v.field());
  return out;
}

absl::StatusOr<std::unique_ptr<ServerProcess>> ServerProcess::Start(const std::string& data_dir,
                                                                    std::vector<std::string> extra_flags) {
  auto server = std::unique_ptr<ServerProcess>(new ServerProcess());
  const std::string port_file = absl::StrCat(data_dir, ".port");
  const std::string http_port_file = absl::StrCat(data_dir, ".http_port");
  std::filesystem::remove(port_file);
  std::filesystem::remove(http_port_file);
  server->log_path_ = absl::StrCat(data_dir, ".log");
  std::vector<std::string> args = {WMTYD_PATH,
                                   absl::StrCat("--data_dir=", data_dir),
                                   "--grpc_listen=127.0.0.1:0",
                                   absl::StrCat("--port_file=", port_file),
                                   "--http_listen=127.0.0.1:0",
                                   absl::StrCat("--http_port_file=", http_port_file),
                                   "--block_cache_mb=16"};
  // Authentication is on by default in wmtyd; tests that do not test it run
  // on loopback without it. Any --auth_ flag given takes over.
  bool auth_flags = false;
  for (const auto& f : extra_flags) auth_flags = auth_flags || absl::StartsWith(f, "--auth_");
  if (!auth_flags) args.push_back("--auth_disabled");
  for (auto& f : extra_flags) args.push_back(std::move(f));
  pid_t pid = fork();
  if (pid < 0) return absl::InternalError("fork failed");
  if (pid == 0) {
    int fd = open(server->log_path_.c_str(), O_WRONLY | O_CREAT | O_APPEND, 0644);
    if (fd >= 0) {
      dup2(fd, STDERR_FILENO);
      dup2(fd, STDOUT_FILENO);
    }
    std::vector<char*> argv;
    for (auto& a : args) argv.push_back(a.data());
    argv.push_back(nullptr);
    execv(argv[0], argv.data());
    _exit(127);
  }
  server->pid_ = pid;
  const absl::Time give_up = absl::Now() + absl::Seconds(60);
  while (absl::Now() < give_up) {
    // wmtyd writes the HTTP port file before the gRPC one.
    std::ifstream in(port_file);
    int port = 0;
    if (in >> port && port > 0) {
      std::ifstream http_in(http_port_file);
      int http_port = 0;
      if (!(http_in >> http_port)) return absl::InternalError("wmtyd wrote no HTTP port file");
      server->port_ = port;
      server->http_port_ = http_port;
      return server;
    }
    int status = 0;
    if (waitpid(pid, &status, WNOHANG) == pid) {
      server->pid_ = -1;
      return absl::InternalError(absl::StrCat("wmtyd exited during startup; log: ", server->log_path_));
    }
    absl::SleepFor(absl::Milliseconds(20));
  }
  return absl::DeadlineExceededError("wmtyd did not start within 60s");
}

ServerProcess::~ServerProcess() {
  if (pid_ > 0) Kill();
}

std::unique_ptr<client::Client> ServerProcess::NewClient(absl::Duration timeout) const {
  client::ClientOptions options;
  options.target = target();
  options.timeout = timeout;
  return client::Client::Connect(options);
}

int ServerProcess::Terminate(absl::Duration wait) {
  if (pid_ <= 0) return -1;
  kill(pid_, SIGTERM);
  const absl::Time give_up = absl::Now() + wait;
  while (absl::Now() < give_up) {
    int status = 0;
    if (waitpid(pid_, &status, WNOHANG) == pid_) {
      pid_ = -1;
      return status;
    }
    absl::SleepFor(absl::Milliseconds(10));
  }
  Kill();
  return -1;
}

void ServerProcess::Kill() {
  if (pid_ <= 0) return;
  kill(pid_, SIGKILL);
  int status = 0;
  waitpid(pid_, &status, 0);
  pid_ = -1;
}

int RunCommand(const std::vector<std::string>& argv, std::string* output) {
  int pipefd[2];
  if (pipe(pipefd) != 0) return -1;
  pid_t pid = fork();
  if (pid == 0) {
    close(pipefd[0]);
    dup2(pipefd[1], STDOUT_FILENO);
    dup2(pipefd[1], STDERR_FILENO);
    std::vector<char*> args;
    for (const auto& a : argv) args.push_back(const_cast<char*>(a.c_str()));
    args.push_back(nullptr);
    execv(args[0], args.data());
    _exit(127);
  }
  close(pipefd[1]);
  output->clear();
  char buf[4096];
  ssize_t n;
  while ((n = read(pipefd[0], buf, sizeof(buf))) > 0) output->append(buf, static_cast<size_t>(n));
  close(pipefd[0]);
  int status = 0;
  waitpid(pid, &status, 0);
  return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
}

v1::Provenance NurseProvenance() {
  v1::Provenance p;
  // The practitioner the test tokens name (TestClaims.sub): with authentication
  // on, a request may name only its caller as the recorder.
  p.mutable_recorded_by()->set_practitioner_id("rn-17");
  p.mutable_recorded_by()->set_display_name("Ana Ruiz");
  p.mutable_recorded_by()->set_role("RN");
  p.mutable_said_by()->set_kind(v1::Speaker::PATIENT);
  p.set_encounter_id("enc-1");
  p.set_channel(v1::BEDSIDE);
  return p;
}

v1::Goal ValidGoal(const std::string& description) {
  v1::Goal g;
  g.set_description(description);
  g.set_lifecycle_status(v1::GOAL_ACTIVE);
  g.set_achievement_status(v1::IN_PROGRESS);
  g.set_priority(v1::HIGH_PRIORITY);
  g.add_categories(v1::PERSONAL_HEALTH_GOAL);
  g.set_start_date("2026-11-01");
  g.set_target_date("2027-06-15");
  *g.mutable_provenance() = NurseProvenance();
  return g;
}

v1::WhatMatters ValidWhatMatters(const std::string& statement) {
  v1::WhatMatters w;
  w.set_statement(statement);
  w.set_prompt("What matters most to you today?");
  w.add_life_domains(v1::HOME_AND_DAILY_LIFE);
  w.add_dignity_elements(v1::INDEPENDENCE);
  *w.mutable_provenance() = NurseProvenance();
  return w;
}

v1::Preference ValidPreference() {
  v1::Preference p;
  p.set_kind(v1::COMMUNICATION_CHANNELS);
  p.mutable_channel_ranking()->add_channels(v1::SMS);
  p.mutable_channel_ranking()->add_channels(v1::PHONE_CALL);
  p.set_value_text("Text me first, then call");
  *p.mutable_provenance() = NurseProvenance();
  return p;
}

}  // namespace wmty::testing
