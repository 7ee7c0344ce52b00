// A test suite against one real wmtyd (authentication off, a fresh data
// directory), started once per suite, with a FHIR HTTP client and a gRPC
// client per test: what the FHIR face tests share.
//
// The server is static, shared by the suite's tests; gtest runs suites one
// after another, so suites deriving from this in one binary each get their
// own server in turn.
#ifndef WMTY_TESTS_FHIR_SERVER_SUITE_H_
#define WMTY_TESTS_FHIR_SERVER_SUITE_H_

#include <functional>
#include <memory>
#include <string>
#include <vector>

#include <gtest/gtest.h>

#include "fhir/http_client.h"
#include "support/test_support.h"

namespace wmty::testing {

class RealServerSuite : public ::testing::Test {
 protected:
  static void SetUpTestSuite() { StartServer(); }
  // Starts the suite's wmtyd; a suite that needs flags calls this from its
  // own SetUpTestSuite. `flags_for` gets the suite's temp dir (for key files)
  // and gives the extra flags.
  static void StartServer(const std::function<std::vector<std::string>(const std::string& dir)>& flags_for = {}) {
    dir_ = new TempDir();
    auto server =
        ServerProcess::Start(dir_->path() + "/db", flags_for ? flags_for(dir_->path()) : std::vector<std::string>{});
    ASSERT_TRUE(server.ok()) << server.status();
    server_ = server->release();
  }
  static void TearDownTestSuite() {
    delete server_;
    server_ = nullptr;
    delete dir_;
    dir_ = nullptr;
  }
  void SetUp() override {
    ASSERT_NE(server_, nullptr);
    http_ = std::make_unique<HttpClient>(server_->http_port());
    grpc_ = server_->NewClient();
  }

  static inline TempDir* dir_ = nullptr;
  static inline ServerProcess* server_ = nullptr;
  std::unique_ptr<HttpClient> http_;
  std::unique_ptr<client::Client> grpc_;
};

}  // namespace wmty::testing

#endif  // WMTY_TESTS_FHIR_SERVER_SUITE_H_
