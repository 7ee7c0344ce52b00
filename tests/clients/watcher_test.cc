// wmty::client::Watcher against a scripted ChangeFeedService (a real gRPC
// server in this process whose streams follow a script): the ends of a stream
// the real wmtyd cannot be made to produce on demand (a hung server, a
// repeated change, a too-slow consumer's resume point, a trimmed log, a
// stream ended without error). tests/integration/watch_test.cc runs the
// watcher against the real wmtyd (writes, kill -9 and restart).
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include <gmock/gmock.h>
#include <grpcpp/grpcpp.h>
#include <gtest/gtest.h>

#include "absl/status/status.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "google/rpc/error_details.pb.h"
#include "google/rpc/status.pb.h"
#include "support/test_support.h"
#include "wmty/client/watch.h"
#include "wmty/v1/change_feed.grpc.pb.h"

namespace wmty::testing {
namespace {

using ::testing::ElementsAre;
using ::testing::HasSubstr;

v1::WatchChangesResponse Change(uint64_t sequence) {
  v1::WatchChangesResponse m;
  m.mutable_change()->set_sequence(sequence);
  m.mutable_change()->set_patient("patients/p1");
  m.mutable_change()->set_kind(v1::RESOURCE_KIND_GOAL);
  m.mutable_change()->set_name("patients/p1/goals/g1");
  m.mutable_change()->set_version(static_cast<int64_t>(sequence));
  m.mutable_change()->set_operation(v1::ChangeEvent::UPDATE);
  return m;
}

v1::WatchChangesResponse Heartbeat(uint64_t head) {
  v1::WatchChangesResponse m;
  m.mutable_heartbeat()->set_head_sequence(head);
  return m;
}

v1::WatchChangesResponse Summary(uint64_t after) {
  v1::WatchChangesResponse m;
  m.mutable_summary()->set_after_sequence(after);
  return m;
}

// A status with a google.rpc.ErrorInfo, as the change feed sends them.
grpc::Status WithErrorInfo(grpc::StatusCode code, const std::string& reason, const std::string& key,
                           uint64_t sequence) {
  google::rpc::ErrorInfo info;
  info.set_reason(reason);
  info.set_domain("wmty.dev");
  (*info.mutable_metadata())[key] = std::to_string(sequence);
  google::rpc::Status details;
  details.set_code(code);
  details.set_message(reason);
  details.add_details()->PackFrom(info);
  return grpc::Status(code, reason, details.SerializeAsString());
}

// Serves WatchChanges by script: the n-th call sends the n-th entry's
// messages, then ends with its status, or hangs (sends nothing more) until
// the client cancels. Calls past the script hang.
class ScriptedFeed final : public v1::ChangeFeedService::Service {
 public:
  struct Call {
    std::vector<v1::WatchChangesResponse> messages;
    grpc::Status end;
    bool hang = false;
  };

  explicit ScriptedFeed(std::vector<Call> script) : script_(std::move(script)) {
    grpc::ServerBuilder builder;
    builder.AddListeningPort("127.0.0.1:0", grpc::InsecureServerCredentials(), &port_);
    builder.RegisterService(this);
    server_ = builder.BuildAndStart();
  }
  ~ScriptedFeed() override { server_->Shutdown(absl::ToChronoTime(absl::Now())); }

  std::shared_ptr<grpc::Channel> Channel() const {
    return grpc::CreateChannel("127.0.0.1:" + std::to_string(port_), grpc::InsecureChannelCredentials());
  }

  std::vector<v1::WatchChangesRequest> requests() const {
    absl::MutexLock lock(&mu_);
    return requests_;
  }
  // Blocks until `n` calls have come in.
  void AwaitCalls(size_t n) const {
    absl::MutexLock lock(&mu_);
    auto enough = [&]() ABSL_SHARED_LOCKS_REQUIRED(mu_) { return requests_.size() >= n; };
    mu_.Await(absl::Condition(&enough));
  }

  grpc::Status WatchChanges(grpc::ServerContext* context, const v1::WatchChangesRequest* request,
                            grpc::ServerWriter<v1::WatchChangesResponse>* writer) override {
    Call call{{}, grpc::Status::OK, true};
    {
      absl::MutexLock lock(&mu_);
      if (requests_.size() < script_.size()) call = script_[requests_.size()];
      requests_.push_back(*request);
    }
    for (const auto& m : call.messages) writer->Write(m);
    // A hung server: holds the stream open, says nothing (the test's
    // server shuts down with the test, which cancels it).
    while (call.hang && !context->IsCancelled()) absl::SleepFor(absl::Milliseconds(5));
    return call.end;
  }

 private:
  const std::vector<Call> script_;
  int port_ = 0;
  std::unique_ptr<grpc::Server> server_;
  mutable absl::Mutex mu_;
  std::vector<v1::WatchChangesRequest> requests_ ABSL_GUARDED_BY(mu_);
};

// Quick retries: the tests wait for outcomes, never for durations.
client::WatchOptions Fast() {
  client::WatchOptions o;
  o.initial_backoff = absl::Milliseconds(1);
  o.max_backoff = absl::Milliseconds(10);
  return o;
}

const grpc::Status kUnavailable(grpc::StatusCode::UNAVAILABLE, "restarting");

uint64_t NextSequence(client::Watcher& w) {
  for (;;) {
    absl::StatusOr<v1::WatchChangesResponse> m = w.Next();
    EXPECT_TRUE(m.ok()) << m.status();
    if (!m.ok()) return 0;
    if (m->has_change()) return m->change().sequence();
  }
}

TEST(WatcherTest, ResumesAfterTheLastChangeWhenTheStreamBreaks) {
  ScriptedFeed feed({{{Change(5), Change(6)}, kUnavailable}, {{Change(7)}, {}, true}});
  std::vector<std::string> retries;
  client::WatchOptions o = Fast();
  o.parent = "patients/p1";
  o.kinds = {v1::RESOURCE_KIND_GOAL};
  o.on_retry = [&](const absl::Status& why, absl::Duration) { retries.push_back(why.ToString()); };
  client::Watcher w(feed.Channel(), "", o);
  EXPECT_EQ(NextSequence(w), 5u);
  EXPECT_EQ(NextSequence(w), 6u);
  EXPECT_EQ(NextSequence(w), 7u);
  const auto requests = feed.requests();
  ASSERT_EQ(requests.size(), 2u);
  EXPECT_FALSE(requests[0].has_start_after());  // from now
  EXPECT_EQ(requests[1].start_after(), 6u);
  EXPECT_EQ(requests[1].parent(), "patients/p1");  // the same filters again
  EXPECT_THAT(requests[1].kinds(), ElementsAre(v1::RESOURCE_KIND_GOAL));
  EXPECT_EQ(w.reconnects(), 1);
  EXPECT_EQ(w.position(), 7u);
  ASSERT_EQ(retries.size(), 1u);
  EXPECT_THAT(retries[0], HasSubstr("UNAVAILABLE"));
}

TEST(WatcherTest, TooSlowResumesWhereTheServerSaysAndRepeatsAreDropped) {
  ScriptedFeed feed(
      {{{Change(5)},
        WithErrorInfo(grpc::StatusCode::RESOURCE_EXHAUSTED, "WATCHER_TOO_SLOW", "resume_after_sequence", 9)},
       {{Change(8), Change(9), Change(10)}, {}, true}});
  client::WatchOptions o = Fast();
  o.start_after = 4;
  client::Watcher w(feed.Channel(), "", o);
  EXPECT_EQ(NextSequence(w), 5u);
  EXPECT_EQ(NextSequence(w), 10u);  // 8 and 9 are at or below the position
  EXPECT_EQ(feed.requests()[0].start_after(), 4u);
  EXPECT_EQ(feed.requests()[1].start_after(), 9u);
  EXPECT_EQ(w.duplicates_dropped(), 2);
}

TEST(WatcherTest, HeartbeatsAndTheSummaryMoveThePosition) {
  ScriptedFeed feed({{{Summary(30), Change(31), Heartbeat(40)}, kUnavailable},
                     {{Heartbeat(41)}, grpc::Status::OK},  // ended without an error: resumed too
                     {{Change(42)}, {}, true}});
  client::WatchOptions o = Fast();
  o.parent = "patients/p1";
  o.include_summary = true;
  client::Watcher w(feed.Channel(), "", o);
  absl::StatusOr<v1::WatchChangesResponse> first = w.Next();
  ASSERT_TRUE(first.ok()) << first.status();
  EXPECT_TRUE(first->has_summary());
  EXPECT_EQ(w.position(), 30u);
  EXPECT_EQ(NextSequence(w), 31u);
  EXPECT_EQ(NextSequence(w), 42u);
  const auto requests = feed.requests();
  ASSERT_EQ(requests.size(), 3u);
  EXPECT_TRUE(requests[0].include_summary());
  EXPECT_FALSE(requests[1].include_summary());  // the summary is here: resume after it
  EXPECT_EQ(requests[1].start_after(), 40u);    // the heartbeat's head
  EXPECT_EQ(requests[2].start_after(), 41u);
}

TEST(WatcherTest, ATrimmedLogIsSurfacedWithTheOldestSequence) {
  ScriptedFeed feed(
      {{{}, WithErrorInfo(grpc::StatusCode::OUT_OF_RANGE, "CHANGE_LOG_TRIMMED", "oldest_available_sequence", 100)}});
  client::WatchOptions o = Fast();
  o.start_after = 3;
  client::Watcher w(feed.Channel(), "", o);
  absl::StatusOr<v1::WatchChangesResponse> m = w.Next();
  EXPECT_THAT(m, StatusIs(absl::StatusCode::kOutOfRange));
  EXPECT_EQ(client::OldestAvailableSequence(m.status()), 100u);
  EXPECT_THAT(w.Next(), StatusIs(absl::StatusCode::kOutOfRange));  // stays ended
  EXPECT_EQ(feed.requests().size(), 1u);                           // not retried
}

TEST(WatcherTest, RefusalsAreNotRetried) {
  ScriptedFeed feed({{{}, grpc::Status(grpc::StatusCode::PERMISSION_DENIED, "another patient")}});
  client::Watcher w(feed.Channel(), "", Fast());
  EXPECT_THAT(w.Next(), StatusIs(absl::StatusCode::kPermissionDenied));
  EXPECT_EQ(feed.requests().size(), 1u);
}

TEST(WatcherTest, GivesUpAfterMaxRetries) {
  ScriptedFeed feed({{{}, kUnavailable}, {{}, kUnavailable}, {{}, kUnavailable}, {{Change(1)}, {}, true}});
  client::WatchOptions o = Fast();
  o.max_retries = 2;
  client::Watcher w(feed.Channel(), "", o);
  EXPECT_THAT(w.Next(), StatusIs(absl::StatusCode::kUnavailable));
  EXPECT_EQ(feed.requests().size(), 3u);
}

TEST(WatcherTest, ASilentStreamIsReplaced) {
  ScriptedFeed feed({{{}, {}, true}, {{Change(1)}, {}, true}});
  std::vector<std::string> retries;
  client::WatchOptions o = Fast();
  o.silence_timeout = absl::Milliseconds(100);
  o.on_retry = [&](const absl::Status& why, absl::Duration) { retries.push_back(why.ToString()); };
  client::Watcher w(feed.Channel(), "", o);
  EXPECT_EQ(NextSequence(w), 1u);
  ASSERT_EQ(retries.size(), 1u);
  EXPECT_THAT(retries[0], HasSubstr("no message from the server"));
}

TEST(WatcherTest, NextTimesOutAndGoesOnThenCancelEndsIt) {
  ScriptedFeed feed({{{}, {}, true}});
  client::Watcher w(feed.Channel(), "token-1", Fast());
  EXPECT_THAT(w.Next(absl::Milliseconds(20)), StatusIs(absl::StatusCode::kDeadlineExceeded));
  absl::StatusOr<v1::WatchChangesResponse> blocked;
  std::thread reader([&] { blocked = w.Next(); });
  feed.AwaitCalls(1);
  w.Cancel();
  reader.join();
  EXPECT_THAT(blocked, StatusIs(absl::StatusCode::kCancelled));
  EXPECT_THAT(w.Next(), StatusIs(absl::StatusCode::kCancelled));
  EXPECT_EQ(feed.requests().size(), 1u);  // the timeout did not start another stream
}

TEST(WatcherTest, DestroyingAWatcherInTheMiddleOfAStreamEndsIt) {
  ScriptedFeed feed({{{Change(1)}, {}, true}});
  auto w = std::make_unique<client::Watcher>(feed.Channel(), "", Fast());
  EXPECT_EQ(NextSequence(*w), 1u);
  w.reset();  // must neither hang nor leave work on its queue
}

}  // namespace
}  // namespace wmty::testing
