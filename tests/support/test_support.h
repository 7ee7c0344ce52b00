// Helpers shared by the tests. Hermetic: every test gets its own temp dir and
// its own wmtyd on a free port.
#ifndef WMTY_TESTS_SUPPORT_TEST_SUPPORT_H_
#define WMTY_TESTS_SUPPORT_TEST_SUPPORT_H_

#include <sys/types.h>

#include <memory>
#include <string>
#include <vector>

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "wmty/client/client.h"

namespace wmty::testing {

// A fresh directory under $TMPDIR, removed (recursively) on destruction.
class TempDir {
 public:
  TempDir();
  ~TempDir();
  const std::string& path() const { return path_; }

 private:
  std::string path_;
};

namespace internal {
inline const absl::Status& ToStatus(const absl::Status& s) { return s; }
template <class T>
const absl::Status& ToStatus(const absl::StatusOr<T>& s) {
  return s.status();
}
}  // namespace internal

// Matches an absl::Status or absl::StatusOr with the given code.
MATCHER_P(StatusIs, code, "") {
  const absl::Status& s = ::wmty::testing::internal::ToStatus(arg);
  *result_listener << "status is " << s;
  return s.code() == code;
}

// The field paths of the violations attached to an INVALID_ARGUMENT status.
std::vector<std::string> ViolatedFields(const absl::Status& status);

// The real wmtyd binary, started with a data dir, gRPC and HTTP (the FHIR
// face) both on 127.0.0.1 port 0 (never a fixed port: tests run in parallel).
class ServerProcess {
 public:
  // Starts wmtyd and waits until it serves (both port files written). Extra
  // flags are appended to the command line.
  static absl::StatusOr<std::unique_ptr<ServerProcess>> Start(const std::string& data_dir,
                                                              std::vector<std::string> extra_flags = {});
  ~ServerProcess();  // SIGKILL if still running.

  // The gRPC port.
  int port() const { return port_; }
  std::string target() const { return "127.0.0.1:" + std::to_string(port_); }
  // The HTTP port of the FHIR face (base URL http_base()).
  int http_port() const { return http_port_; }
  std::string http_base() const { return "http://127.0.0.1:" + std::to_string(http_port_) + "/fhir"; }
  pid_t pid() const { return pid_; }
  // A client for this server.
  std::unique_ptr<client::Client> NewClient(absl::Duration timeout = absl::Seconds(10)) const;

  // Sends SIGTERM and waits; returns the exit status (as from waitpid) or -1.
  int Terminate(absl::Duration wait = absl::Seconds(30));
  // Sends SIGKILL and reaps the process.
  void Kill();
  // Path of the captured stderr (JSON log lines).
  const std::string& log_path() const { return log_path_; }

 private:
  pid_t pid_ = -1;
  int port_ = 0;
  int http_port_ = 0;
  std::string log_path_;
};

// Runs a command, capturing stdout+stderr; returns the exit code.
int RunCommand(const std::vector<std::string>& argv, std::string* output);

// Builders for valid requests, so tests change only what they test.
v1::Provenance NurseProvenance();
v1::Goal ValidGoal(const std::string& description = "Walk my daughter down the aisle in June");
v1::WhatMatters ValidWhatMatters(const std::string& statement = "Being home for my garden");
v1::Preference ValidPreference();

}  // namespace wmty::testing

#endif  // WMTY_TESTS_SUPPORT_TEST_SUPPORT_H_
