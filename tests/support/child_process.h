// A child process (a client binary under test) whose stdout and stderr are
// read separately and incrementally, for tests that react to what it prints
// while it runs (follow, watch), and can send it signals.
//
// Header-only. Thread safety: one thread uses a ChildProcess at a time.
#ifndef WMTY_TESTS_SUPPORT_CHILD_PROCESS_H_
#define WMTY_TESTS_SUPPORT_CHILD_PROCESS_H_

#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstdlib>
#include <functional>
#include <string>
#include <vector>

#include "absl/strings/match.h"
#include "absl/time/clock.h"
#include "absl/time/time.h"

namespace wmty::testing {

// How often `needle` occurs in `haystack` (overlaps counted).
inline int Count(const std::string& haystack, const std::string& needle) {
  int n = 0;
  for (size_t at = haystack.find(needle); at != std::string::npos; at = haystack.find(needle, at + 1)) ++n;
  return n;
}

// Bound on how long a child may take before a test calls it hung (and kills
// it). Never reached when things work.
inline constexpr absl::Duration kChildHung = absl::Seconds(60);

// A child process with its own environment whose stdout and stderr are read
// separately and incrementally (the follow test reads cards as they come).
class ChildProcess {
 public:
  ChildProcess(const std::vector<std::string>& argv, const std::vector<std::string>& env) {
    int out[2], err[2];
    if (pipe2(out, O_CLOEXEC) != 0 || pipe2(err, O_CLOEXEC) != 0) std::abort();
    // Everything execve needs is built before fork (the test has threads).
    std::vector<char*> args, envp;
    for (const auto& a : argv) args.push_back(const_cast<char*>(a.c_str()));
    args.push_back(nullptr);
    for (const auto& e : env) envp.push_back(const_cast<char*>(e.c_str()));
    envp.push_back(nullptr);
    pid_ = fork();
    if (pid_ == 0) {
      dup2(out[1], STDOUT_FILENO);
      dup2(err[1], STDERR_FILENO);
      execve(args[0], args.data(), envp.data());
      _exit(127);
    }
    close(out[1]);
    close(err[1]);
    fds_[0] = out[0];
    fds_[1] = err[0];
  }
  ~ChildProcess() {
    if (pid_ > 0) {
      kill(pid_, SIGKILL);
      waitpid(pid_, nullptr, 0);
    }
    for (int fd : fds_) {
      if (fd >= 0) close(fd);
    }
  }

  // Reads until stdout holds `needle` (true), or both pipes closed / `timeout`
  // passed without it (false).
  bool ReadStdoutUntil(const std::string& needle, absl::Duration timeout = kChildHung) {
    Pump([&] { return absl::StrContains(out_, needle); }, timeout);
    return absl::StrContains(out_, needle);
  }
  // Reads until stderr holds `needle` `times` times.
  bool ReadStderrUntil(const std::string& needle, int times, absl::Duration timeout = kChildHung) {
    Pump([&] { return Count(err_, needle) >= times; }, timeout);
    return Count(err_, needle) >= times;
  }

  // Reads both pipes to their end and reaps the child: its exit code, or -2 if
  // it did not finish within `timeout` (then it is killed).
  int Wait(absl::Duration timeout = kChildHung) {
    if (!Pump([] { return false; }, timeout)) return -2;
    int status = 0;
    waitpid(pid_, &status, 0);
    pid_ = -1;
    return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
  }

  // Sends `sig` (e.g. SIGINT) to the running child.
  void Signal(int sig) {
    if (pid_ > 0) kill(pid_, sig);
  }

  const std::string& out() const { return out_; }
  const std::string& err() const { return err_; }

 private:
  // Reads what comes until `done()` or both pipes are closed (true), or the
  // timeout (false).
  bool Pump(const std::function<bool()>& done, absl::Duration timeout) {
    const absl::Time give_up = absl::Now() + timeout;
    while (!done()) {
      if (fds_[0] < 0 && fds_[1] < 0) return true;
      const absl::Duration left = give_up - absl::Now();
      if (left <= absl::ZeroDuration()) return false;
      pollfd p[2] = {{fds_[0], POLLIN, 0}, {fds_[1], POLLIN, 0}};
      if (poll(p, 2, static_cast<int>(absl::ToInt64Milliseconds(left)) + 1) < 0) return false;
      for (int i = 0; i < 2; ++i) {
        if (fds_[i] < 0 || p[i].revents == 0) continue;
        char buf[4096];
        const ssize_t n = read(fds_[i], buf, sizeof(buf));
        if (n <= 0) {
          close(fds_[i]);
          fds_[i] = -1;
        } else {
          (i == 0 ? out_ : err_).append(buf, static_cast<size_t>(n));
        }
      }
    }
    return true;
  }

  pid_t pid_ = -1;
  int fds_[2] = {-1, -1};
  std::string out_, err_;
};

}  // namespace wmty::testing

#endif  // WMTY_TESTS_SUPPORT_CHILD_PROCESS_H_
