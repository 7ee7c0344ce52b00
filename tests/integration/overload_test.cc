// Overload protection, slow clients and graceful shutdown, against the real
// wmtyd (ServerProcess) through the real C++ client, the test HTTP client and
// raw sockets:
//  - bursts far past tiny limits (--max_inflight_rpcs, --http_max_inflight,
//    --http_max_connections): every call either succeeds or is refused at
//    once (RESOURCE_EXHAUSTED with a RetryInfo / 503 with Retry-After and an
//    OperationOutcome), a refused write stores nothing, health checks are
//    never refused, and the server serves normally afterwards;
//  - slow clients (--http_read_timeout=1s): headers dripped a byte at a time,
//    a body that never finishes and an idle kept-alive connection are all
//    closed by the server, while a normal client is served meanwhile;
//  - --fhir_request_timeout is the deadline of a FHIR write;
//  - SIGTERM under concurrent gRPC and FHIR writers: exit 0 within the grace
//    period, every call ends (answered or refused, none hangs), and every
//    acknowledged write is there after a restart.
//
// Outcomes, not timings, are asserted. Bursts repeat until a refusal is seen
// (bounded), because how many calls overlap depends on the machine.
#include <signal.h>
#include <sys/wait.h>

#include <atomic>
#include <map>
#include <memory>
#include <optional>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "absl/synchronization/mutex.h"
#include "common/status.h"
#include "fhir/http_client.h"
#include "integration/integration_util.h"
#include "support/test_support.h"

namespace wmty::testing {
namespace {

using Code = absl::StatusCode;

std::string GoalJson(const std::string& patient, const std::string& description) {
  return absl::StrCat(R"({"resourceType":"Goal","lifecycleStatus":"active","description":{"text":")", description,
                      R"("},"subject":{"reference":"Patient/)", patient, R"("},"expressedBy":{"reference":"Patient/)",
                      patient,
                      R"("},"target":[{"dueDate":"2027-06-15"}],"category":[{"coding":[{"system":"http://loinc.org",)"
                      R"("code":"87528-6"}]}]})");
}

// The id in a Location header "[base]/Goal/[id]/_history/[vid]" ("" if none).
std::string IdFromLocation(absl::string_view location) {
  const size_t start = location.find("/Goal/");
  if (start == absl::string_view::npos) return "";
  const absl::string_view rest = location.substr(start + 6);
  return std::string(rest.substr(0, rest.find('/')));
}

// The first OperationOutcome issue code of a response ("" if none).
std::string IssueCode(const HttpResponse& r) {
  rapidjson::Document d = r.Json();
  if (!d.IsObject() || !d.HasMember("issue") || !d["issue"].IsArray() || d["issue"].Empty()) return "";
  const auto& issue = d["issue"][0];
  return issue.HasMember("code") && issue["code"].IsString() ? issue["code"].GetString() : "";
}

// The number in `"field":"<n>"` of the last log line with message `msg`.
std::optional<int64_t> LoggedNumber(const std::string& log, absl::string_view msg, absl::string_view field) {
  const std::string msg_field = absl::StrCat("\"msg\":\"", msg, "\"");
  const std::string key = absl::StrCat("\"", field, "\":\"");
  std::optional<int64_t> found;
  for (absl::string_view line : absl::StrSplit(log, '\n')) {
    if (!absl::StrContains(line, msg_field)) continue;
    const size_t at = line.find(key);
    if (at == absl::string_view::npos) continue;
    const absl::string_view rest = line.substr(at + key.size());
    int64_t value = 0;
    if (absl::SimpleAtoi(rest.substr(0, rest.find('"')), &value)) found = value;
  }
  return found;
}

// ---------------------------------------------------------------- fixture

class OverloadTest : public ::testing::Test {
 protected:
  void StartServer(std::vector<std::string> flags) {
    auto server = ServerProcess::Start(data_dir(), std::move(flags));
    ASSERT_TRUE(server.ok()) << server.status();
    server_ = std::move(*server);
  }
  std::string data_dir() const { return dir_.path() + "/data"; }

  std::unique_ptr<client::Client> NewClient(int max_attempts = 1) {
    client::ClientOptions options;
    options.target = server_->target();
    options.timeout = absl::Seconds(30);  // far past any limit: a call that hangs shows as DEADLINE_EXCEEDED
    options.max_attempts = max_attempts;
    return client::Client::Connect(options);
  }

  // The ids of a patient's goals, through gRPC (paged).
  std::set<std::string> StoredGoalIds(const std::string& patient) {
    auto client = NewClient(4);
    std::set<std::string> ids;
    v1::ListGoalsRequest req;
    req.set_parent("patients/" + patient);
    req.set_page_size(100);
    for (;;) {
      auto page = client->ListGoals(req);
      EXPECT_TRUE(page.ok()) << page.status();
      if (!page.ok()) break;
      for (const auto& g : page->goals()) ids.insert(g.name().substr(g.name().rfind('/') + 1));
      if (page->next_page_token().empty()) break;
      req.set_page_token(page->next_page_token());
    }
    return ids;
  }

  v1::CreateGoalRequest GoalRequest(const std::string& patient) {
    v1::CreateGoalRequest req;
    req.set_parent("patients/" + patient);
    *req.mutable_goal() = ValidGoal("Walk to the bakery again");
    return req;
  }

  TempDir dir_;
  std::unique_ptr<ServerProcess> server_;
};

// ---------------------------------------------------------------- gRPC

TEST_F(OverloadTest, GrpcBurstPastMaxInflightIsRefusedAtOnceAndRefusedWritesStoreNothing) {
  StartServer({"--max_inflight_rpcs=2"});
  auto client = NewClient();
  constexpr int kCallsPerBurst = 48;
  constexpr int kMaxBursts = 20;
  int ok = 0, refused = 0, health_checks = 0;
  std::vector<std::string> unexpected;
  for (int burst = 0; burst < kMaxBursts && refused == 0; ++burst) {
    absl::Mutex mu;
    std::vector<std::thread> threads;
    std::atomic<bool> go{false};
    for (int i = 0; i < kCallsPerBurst; ++i) {
      threads.emplace_back([&, i] {
        while (!go.load()) std::this_thread::yield();
        if (i % 8 == 0) {
          // Health checks are another service: never refused by the limit.
          auto health = HealthCheck(server_->target());
          absl::MutexLock lock(&mu);
          ++health_checks;
          if (!health.ok() || *health != 1) unexpected.push_back(absl::StrCat("health: ", health.status().ToString()));
          return;
        }
        auto r = client->CreateGoal(GoalRequest("p-grpc"));
        absl::MutexLock lock(&mu);
        if (r.ok()) {
          ++ok;
        } else if (r.status().code() == Code::kResourceExhausted && RetryDelayOf(r.status()).has_value() &&
                   *RetryDelayOf(r.status()) > absl::ZeroDuration()) {
          ++refused;
        } else {
          unexpected.push_back(r.status().ToString());
        }
      });
    }
    go.store(true);
    for (auto& t : threads) t.join();
  }
  EXPECT_THAT(unexpected, ::testing::IsEmpty());
  EXPECT_GT(refused, 0) << "no burst of " << kCallsPerBurst << " concurrent calls went past a limit of 2";
  EXPECT_GT(ok, 0);
  EXPECT_GT(health_checks, 0);
  // Exactly the acknowledged writes are stored: the refused ones wrote nothing.
  EXPECT_EQ(StoredGoalIds("p-grpc").size(), static_cast<size_t>(ok));
  // Healthy afterwards: calls are served again.
  EXPECT_TRUE(client->CreateGoal(GoalRequest("p-after")).ok());
  EXPECT_EQ(HealthCheck(server_->target()).value_or(0), 1);
}

// ---------------------------------------------------------------- HTTP

TEST_F(OverloadTest, HttpBurstPastMaxInflightGets503WithRetryAfterOnAConnectionThatStaysUsable) {
  StartServer({"--http_max_inflight=2"});
  constexpr int kClients = 16;
  constexpr int kPostsPerClient = 4;
  constexpr int kMaxBursts = 20;
  int created = 0, refused = 0;
  std::vector<std::string> unexpected;
  for (int burst = 0; burst < kMaxBursts && refused == 0; ++burst) {
    absl::Mutex mu;
    std::vector<std::thread> threads;
    std::atomic<bool> go{false};
    for (int i = 0; i < kClients; ++i) {
      threads.emplace_back([&] {
        HttpClient http(server_->http_port());
        // Connect before the burst, so the posts overlap. The limit may
        // refuse this too (503, connection kept).
        const int warm = http.Get("/fhir/metadata").status;
        while (!go.load()) std::this_thread::yield();
        for (int k = 0; k < kPostsPerClient; ++k) {
          HttpResponse r = http.Post("/fhir/Goal", GoalJson("p-http", "Paint again"));
          absl::MutexLock lock(&mu);
          if (r.status == 201) {
            ++created;
          } else if (r.status == 503 && r.Header("retry-after") == "1" && IssueCode(r) == "transient" && r.keep_alive) {
            ++refused;
          } else {
            unexpected.push_back(r.Describe() + " retry-after=" + r.Header("retry-after"));
          }
        }
        absl::MutexLock lock(&mu);
        if (warm != 200 && warm != 503) unexpected.push_back(absl::StrCat("warm-up: HTTP ", warm));
        // The 503s kept the connection: one connection did every request.
        if (http.connections_opened() != 1) {
          unexpected.push_back(absl::StrCat("opened ", http.connections_opened(), " connections"));
        }
      });
    }
    go.store(true);
    for (auto& t : threads) t.join();
  }
  EXPECT_THAT(unexpected, ::testing::IsEmpty());
  EXPECT_GT(refused, 0) << "no burst of " << kClients << " concurrent clients went past a limit of 2";
  EXPECT_GT(created, 0);
  EXPECT_EQ(StoredGoalIds("p-http").size(), static_cast<size_t>(created));
  HttpClient after(server_->http_port());
  EXPECT_EQ(after.Post("/fhir/Goal", GoalJson("p-after", "Paint again")).status, 201);
}

TEST_F(OverloadTest, HttpConnectionPastMaxConnectionsGets503AndIsClosed) {
  StartServer({"--http_max_connections=4"});
  // Four kept-alive connections, each proven accepted by one answered request.
  std::vector<std::unique_ptr<HttpClient>> held;
  for (int i = 0; i < 4; ++i) {
    held.push_back(std::make_unique<HttpClient>(server_->http_port()));
    ASSERT_EQ(held.back()->Get("/fhir/metadata").status, 200);
  }
  // A fifth is answered 503 + Retry-After (OperationOutcome) and closed.
  for (int i = 0; i < 3; ++i) {
    HttpClient extra(server_->http_port());
    HttpResponse r = extra.Post("/fhir/Goal", GoalJson("p-conn", "Sing in the choir"));
    EXPECT_EQ(r.status, 503) << r.Describe();
    EXPECT_EQ(r.Header("retry-after"), "1") << r.Describe();
    EXPECT_EQ(IssueCode(r), "transient") << r.Describe();
    EXPECT_FALSE(r.keep_alive);
  }
  EXPECT_TRUE(StoredGoalIds("p-conn").empty());
  // The held connections are still served.
  for (auto& h : held) EXPECT_EQ(h->Get("/fhir/metadata").status, 200);
  // Once one closes, a new connection gets in (the server notices the close
  // asynchronously: wait for it, do not sleep).
  held.pop_back();
  const absl::Time give_up = absl::Now() + absl::Seconds(20);
  int status = 0;
  while (absl::Now() < give_up) {
    HttpClient fresh(server_->http_port());
    status = fresh.Post("/fhir/Goal", GoalJson("p-conn", "Sing in the choir")).status;
    if (status == 201) break;
    absl::SleepFor(absl::Milliseconds(20));
  }
  EXPECT_EQ(status, 201);
  EXPECT_EQ(StoredGoalIds("p-conn").size(), 1u);
}

// ---------------------------------------------------------------- deadlines

TEST_F(OverloadTest, FhirRequestTimeoutIsTheDeadlineOfItsWrite) {
  // A deadline that has always passed by the time the write is attempted:
  // the FHIR face passes --fhir_request_timeout to the core as the write's
  // deadline, like gRPC passes the call's (tests/storage covers a deadline
  // that passes while the write waits in the commit queue).
  StartServer({"--fhir_request_timeout=1us"});
  HttpClient http(server_->http_port());
  HttpResponse r = http.Post("/fhir/Goal", GoalJson("p-late", "Swim in the lake"));
  EXPECT_EQ(r.status, 503) << r.Describe();
  EXPECT_EQ(IssueCode(r), "timeout") << r.Describe();
  EXPECT_TRUE(StoredGoalIds("p-late").empty());
}

// ---------------------------------------------------------------- slow clients

class SlowClientTest : public OverloadTest {
 protected:
  void SetUp() override { StartServer({"--http_read_timeout=1s"}); }
};

TEST_F(SlowClientTest, HeadersDrippedAByteAtATimeDoNotExtendTheReadTimeout) {
  constexpr int kDrippers = 20;
  std::vector<std::unique_ptr<RawConnection>> drippers;
  for (int i = 0; i < kDrippers; ++i) {
    drippers.push_back(std::make_unique<RawConnection>(server_->http_port()));
    ASSERT_TRUE(drippers.back()->ok());
  }
  // Headers that would take 12 s to send at one byte per 100 ms: far past the
  // 1 s timeout, so only a whole-request deadline closes these connections.
  const std::string headers = "GET /fhir/metadata HTTP/1.1\r\nHost: x\r\n" + std::string(100, 'X') + ": y\r\n";
  std::vector<bool> closed(kDrippers, false);
  bool normal_served = false;
  size_t sent = 0;
  for (; sent < headers.size(); ++sent) {
    int open = 0;
    for (int i = 0; i < kDrippers; ++i) {
      if (closed[i]) continue;
      if (drippers[i]->ClosedByPeer() || !drippers[i]->Send(headers.substr(sent, 1))) {
        closed[i] = true;
      } else {
        ++open;
      }
    }
    if (open == 0) break;
    if (sent == 3) {
      // A normal client meanwhile is served.
      HttpClient normal(server_->http_port());
      normal_served = normal.Get("/fhir/metadata").status == 200;
    }
    absl::SleepFor(absl::Milliseconds(100));  // the drip rate, not a synchronization
  }
  EXPECT_TRUE(normal_served);
  EXPECT_LT(sent, headers.size()) << "the server kept dripping connections open for the whole request";
  for (int i = 0; i < kDrippers; ++i) EXPECT_TRUE(closed[i]) << "dripper " << i;
  // Nothing answered them: they never finished a request.
  for (auto& d : drippers) EXPECT_EQ(d->received(), "");
  HttpClient after(server_->http_port());
  EXPECT_EQ(after.Get("/fhir/metadata").status, 200);
}

TEST_F(SlowClientTest, BodyThatNeverFinishesIsClosedAfterTheReadTimeout) {
  RawConnection slow(server_->http_port());
  ASSERT_TRUE(slow.ok());
  const std::string body = GoalJson("p-slow", "Fish with my grandson");
  ASSERT_TRUE(
      slow.Send(absl::StrCat("POST /fhir/Goal HTTP/1.1\r\nHost: x\r\nContent-Type: application/fhir+json\r\n"
                             "Content-Length: ",
                             body.size(), "\r\n\r\n", body.substr(0, body.size() / 2))));
  HttpClient normal(server_->http_port());
  EXPECT_EQ(normal.Get("/fhir/metadata").status, 200);
  // Our limit is 20x the server's: the server must close first.
  EXPECT_TRUE(slow.WaitClosed(absl::Seconds(20)));
  EXPECT_EQ(slow.received(), "");
  EXPECT_TRUE(StoredGoalIds("p-slow").empty());
}

TEST_F(SlowClientTest, IdleKeptAliveConnectionIsClosed) {
  RawConnection idle(server_->http_port());
  ASSERT_TRUE(idle.ok());
  ASSERT_TRUE(idle.Send("GET /fhir/metadata HTTP/1.1\r\nHost: x\r\n\r\n"));
  EXPECT_TRUE(idle.WaitClosed(absl::Seconds(20)));
  // It was answered first (200, kept alive), then closed when idle.
  EXPECT_TRUE(absl::StartsWith(idle.received(), "HTTP/1.1 200")) << idle.received().substr(0, 200);
  EXPECT_FALSE(absl::StrContains(idle.received(), "Connection: close"));
}

// ---------------------------------------------------------------- shutdown

TEST_F(OverloadTest, SigtermUnderLoadDrainsExitsZeroAndKeepsEveryAcknowledgedWrite) {
  StartServer({"--shutdown_grace=10s"});
  constexpr int kGrpcWriters = 4;
  constexpr int kHttpWriters = 4;
  absl::Mutex mu;
  std::map<std::string, std::set<std::string>> acked;  // patient -> goal ids
  std::vector<std::string> unexpected;
  int acked_total = 0;
  std::atomic<bool> stop{false};
  std::vector<std::thread> writers;
  for (int w = 0; w < kGrpcWriters; ++w) {
    writers.emplace_back([&, w] {
      auto client = NewClient();
      const std::string patient = absl::StrCat("p-grpc-", w);
      while (!stop.load()) {
        auto r = client->CreateGoal(GoalRequest(patient));
        absl::MutexLock lock(&mu);
        if (r.ok()) {
          acked[patient].insert(r->name().substr(r->name().rfind('/') + 1));
          ++acked_total;
          continue;
        }
        // Refused: UNAVAILABLE (draining, or the process is gone), or
        // CANCELLED for a call that had reached gRPC but not yet the service
        // when draining began (gRPC cancels those; nothing of it ran). That
        // it was not a call cut off at the deadline is checked below.
        if (r.status().code() != Code::kUnavailable && r.status().code() != Code::kCancelled) {
          unexpected.push_back("grpc: " + r.status().ToString());
        }
        return;
      }
    });
  }
  for (int w = 0; w < kHttpWriters; ++w) {
    writers.emplace_back([&, w] {
      HttpClient http(server_->http_port());
      const std::string patient = absl::StrCat("p-http-", w);
      while (!stop.load()) {
        HttpResponse r = http.Post("/fhir/Goal", GoalJson(patient, "Garden in spring"));
        absl::MutexLock lock(&mu);
        if (r.status == 201) {
          acked[patient].insert(IdFromLocation(r.Header("location")));
          ++acked_total;
          continue;
        }
        // 503 while draining, or no connection (-1): refused, never hung.
        if (r.status == 503 && r.Header("retry-after").empty()) unexpected.push_back("503 without Retry-After");
        if (r.status != 503 && r.status != -1) unexpected.push_back("http: " + r.Describe());
        return;
      }
    });
  }
  // Load is running once some writes of every writer are acknowledged.
  {
    absl::MutexLock lock(&mu);
    const auto busy = [&]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu) {
      if (!unexpected.empty()) return true;
      for (int w = 0; w < kGrpcWriters; ++w) {
        if (acked[absl::StrCat("p-grpc-", w)].size() < 3) return false;
      }
      for (int w = 0; w < kHttpWriters; ++w) {
        if (acked[absl::StrCat("p-http-", w)].size() < 3) return false;
      }
      return true;
    };
    ASSERT_TRUE(mu.AwaitWithTimeout(absl::Condition(&busy), absl::Seconds(60)));
  }
  // SIGTERM with writers still writing; Terminate SIGKILLs (and returns -1)
  // if the process is not gone within the grace period plus startup slack.
  const int status = server_->Terminate(absl::Seconds(15));
  ASSERT_TRUE(WIFEXITED(status)) << "wait status " << status;
  EXPECT_EQ(WEXITSTATUS(status), 0);
  stop.store(true);
  for (auto& t : writers) t.join();  // each stopped at its first refusal: none hung
  const std::string log = ReadFile(server_->log_path());
  EXPECT_THAT(unexpected, ::testing::IsEmpty()) << "server log:\n"
                                                << log.substr(log.size() - std::min<size_t>(log.size(), 4000));
  EXPECT_TRUE(absl::StrContains(log, "\"stopped\"")) << "no clean stop in " << server_->log_path();
  // Requests in progress finished within the grace period: none was dropped
  // (HTTP) or cancelled at the deadline (gRPC).
  const std::optional<int64_t> grpc_drain_ms = LoggedNumber(log, "grpc drained", "ms");
  ASSERT_TRUE(grpc_drain_ms.has_value()) << log.substr(log.size() - std::min<size_t>(log.size(), 4000));
  EXPECT_LT(*grpc_drain_ms, 10000) << "the gRPC drain ran into the grace deadline";
  EXPECT_FALSE(absl::StrContains(log, "grace period over"))
      << log.substr(log.size() - std::min<size_t>(log.size(), 4000));

  // Every acknowledged write is there after a restart.
  StartServer({});
  int found = 0;
  for (const auto& [patient, ids] : acked) {
    const std::set<std::string> stored = StoredGoalIds(patient);
    for (const std::string& id : ids) {
      EXPECT_TRUE(stored.count(id)) << patient << "/" << id << " was acknowledged but is missing";
      found += stored.count(id) ? 1 : 0;
    }
  }
  EXPECT_EQ(found, acked_total);
  EXPECT_GT(acked_total, 0);
}

}  // namespace
}  // namespace wmty::testing
