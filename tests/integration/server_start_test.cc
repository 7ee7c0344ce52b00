// WmtyServer::Start's one unwinding path (services/server/server.cc): when a
// step fails after others succeeded (a listener cannot bind), Start returns
// the error and what the earlier steps opened is released, so the next start
// on the same data directory and port works. Options that cannot work are
// refused before anything is opened. In-process WmtyServer, real RocksDB in a
// temp dir, real sockets.
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <filesystem>
#include <string>

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "absl/time/time.h"
#include "server/server.h"
#include "support/test_support.h"

namespace wmty {
namespace {

using ::testing::HasSubstr;
using ::wmty::testing::StatusIs;
using ::wmty::testing::TempDir;

// A TCP socket bound to 127.0.0.1 (port 0: any free port), listening or not.
// Without SO_REUSEADDR / SO_REUSEPORT: binding fails while anyone holds the port.
class Socket {
 public:
  explicit Socket(int port, bool listen) : fd_(::socket(AF_INET, SOCK_STREAM, 0)) {
    sockaddr_in addr{};
    addr.sin_family = AF_INET;
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    addr.sin_port = htons(static_cast<uint16_t>(port));
    bound_ = ::bind(fd_, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) == 0 && (!listen || ::listen(fd_, 1) == 0);
    socklen_t size = sizeof(addr);
    if (bound_ && ::getsockname(fd_, reinterpret_cast<sockaddr*>(&addr), &size) == 0) port_ = ntohs(addr.sin_port);
  }
  ~Socket() { ::close(fd_); }
  Socket(const Socket&) = delete;
  Socket& operator=(const Socket&) = delete;

  bool bound() const { return bound_; }
  int port() const { return port_; }

 private:
  int fd_;
  bool bound_ = false;
  int port_ = 0;
};

// Whether a plain socket can bind `port`, trying until the deadline: gRPC
// may close a listener's socket on one of its own threads just after Wait.
bool PortFreed(int port) {
  const absl::Time deadline = absl::Now() + absl::Seconds(30);
  while (!Socket(port, /*listen=*/false).bound()) {
    if (absl::Now() > deadline) return false;
    absl::SleepFor(absl::Milliseconds(10));
  }
  return true;
}

// A port that was free a moment ago (nothing else binds fixed ports here).
int FreePort() {
  Socket probe(0, /*listen=*/false);
  return probe.port();
}

server::ServerOptions LoopbackOptions(const std::string& data_dir, int grpc_port) {
  server::ServerOptions options;
  options.data_dir = data_dir;
  options.grpc_listen = absl::StrCat("127.0.0.1:", grpc_port);
  options.http_listen = "127.0.0.1:0";
  options.block_cache_bytes = size_t{8} << 20;
  options.memtable_budget_bytes = size_t{8} << 20;
  options.summary_cache_bytes = size_t{1} << 20;
  return options;
}

// Each later listener in turn cannot bind: Start fails with UNAVAILABLE, and
// the gRPC port and the data directory it had already taken are free again.
class LaterStepFails : public ::testing::TestWithParam<const char*> {};

TEST_P(LaterStepFails, StartReleasesWhatTheEarlierStepsOpened) {
  TempDir dir;
  const std::string data_dir = dir.path() + "/db";
  Socket taken(0, /*listen=*/true);
  ASSERT_TRUE(taken.bound());
  const std::string taken_address = absl::StrCat("127.0.0.1:", taken.port());
  const int grpc_port = FreePort();
  ASSERT_NE(grpc_port, 0);

  server::ServerOptions options = LoopbackOptions(data_dir, grpc_port);
  const std::string step = GetParam();
  if (step == "http") options.http_listen = taken_address;
  if (step == "metrics") options.metrics_listen = taken_address;
  if (step == "health") options.health_listen = taken_address;
  auto failed = server::WmtyServer::Start(options);
  ASSERT_THAT(failed, StatusIs(absl::StatusCode::kUnavailable));
  if (step == "health") EXPECT_THAT(failed.status().message(), HasSubstr("--health_listen"));

  // Nothing listens on the gRPC port any more: a plain socket can bind it.
  EXPECT_TRUE(PortFreed(grpc_port)) << "the gRPC listener of the failed start is still up";
  // The store was closed: the database lock is free and the server starts.
  auto started = server::WmtyServer::Start(LoopbackOptions(data_dir, grpc_port));
  ASSERT_TRUE(started.ok()) << started.status();
  EXPECT_EQ((*started)->grpc_port(), grpc_port);
  (*started)->Shutdown(absl::ZeroDuration());
}

INSTANTIATE_TEST_SUITE_P(Listeners, LaterStepFails, ::testing::Values("http", "metrics", "health"));

TEST(ServerStart, OptionsThatCannotWorkAreRefusedBeforeTheStoreIsOpened) {
  TempDir dir;
  server::ServerOptions half_tls = LoopbackOptions(dir.path() + "/tls", 0);
  half_tls.tls_cert_pem = "-----BEGIN CERTIFICATE-----";
  EXPECT_THAT(server::WmtyServer::Start(half_tls), StatusIs(absl::StatusCode::kInvalidArgument));
  EXPECT_FALSE(std::filesystem::exists(half_tls.data_dir));

  server::ServerOptions open_without_auth = LoopbackOptions(dir.path() + "/open", 0);
  open_without_auth.http_listen = "0.0.0.0:0";
  EXPECT_THAT(server::WmtyServer::Start(open_without_auth), StatusIs(absl::StatusCode::kFailedPrecondition));
  EXPECT_FALSE(std::filesystem::exists(open_without_auth.data_dir));

  server::ServerOptions bad_bedside = LoopbackOptions(dir.path() + "/bedside", 0);
  bad_bedside.bedside_dir = dir.path() + "/no-such-directory";
  auto refused = server::WmtyServer::Start(bad_bedside);
  EXPECT_THAT(refused, StatusIs(absl::StatusCode::kInvalidArgument));
  EXPECT_THAT(refused.status().message(), HasSubstr("--bedside_dir"));
  EXPECT_FALSE(std::filesystem::exists(bad_bedside.data_dir));
}

}  // namespace
}  // namespace wmty
