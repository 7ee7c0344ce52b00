// domain::ChangeFeed on a real Store: the request's rules, catch-up and live
// changes through one pull path, filters, resources, the summary first,
// heartbeats, a stuck consumer ended with the sequence to resume after, a
// trimmed log, shutdown, and only concerned watchers woken. A test consumer
// (Consumer below) drives a ChangeWatch as the gRPC face does; waits are
// for events with a generous limit, never timed assertions.
#include "domain/change_feed.h"

#include <memory>
#include <string>
#include <vector>

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "absl/synchronization/mutex.h"
#include "common/status.h"
#include "domain/records_fixture.h"

namespace wmty::testing {
namespace {

using ::testing::ElementsAre;
using ::testing::IsEmpty;
using ::testing::UnorderedElementsAre;
using Code = absl::StatusCode;

constexpr absl::Duration kPatience = absl::Seconds(20);

// Drives one watch like the gRPC reactor: Next, "send" (Sent(true) unless
// told to hold the message), wait for a wake when told to wait.
class Consumer {
 public:
  ~Consumer() {
    if (watch_ != nullptr) watch_->Close();  // as the stream's OnDone does
  }
  absl::AnyInvocable<void()> Waker() {
    return [this] {
      absl::MutexLock lock(&mu_);
      ++wakes_;
    };
  }
  void Attach(std::shared_ptr<domain::ChangeWatch> watch) { watch_ = std::move(watch); }
  domain::ChangeWatch& watch() { return *watch_; }

  // The next message, or the end status (OK status: the deadline passed).
  struct Item {
    std::optional<v1::WatchChangesResponse> message;
    absl::Status end = absl::OkStatus();
    bool aborted = false;
  };
  Item Take(bool acknowledge = true) {
    const absl::Time deadline = absl::Now() + kPatience;
    for (;;) {
      uint64_t seen;
      {
        absl::MutexLock lock(&mu_);
        seen = wakes_;
      }
      domain::WatchStep step = watch_->Next();
      switch (step.action) {
        case domain::WatchStep::kSend:
          if (acknowledge) watch_->Sent(true);
          return {std::move(step.message)};
        case domain::WatchStep::kEnd:
          return {std::nullopt, step.status};
        case domain::WatchStep::kAbort:
          return {std::nullopt, absl::OkStatus(), true};
        case domain::WatchStep::kWait:
          break;
      }
      absl::MutexLock lock(&mu_);
      auto woken = [this, seen] { return wakes_ != seen; };
      if (!mu_.AwaitWithDeadline(absl::Condition(&woken), deadline)) return {};
    }
  }
  // The next change event, skipping heartbeats; nullopt at an end.
  std::optional<v1::ChangeEvent> NextChange() {
    for (;;) {
      Item item = Take();
      if (!item.message.has_value()) return std::nullopt;
      if (item.message->has_change()) return item.message->change();
    }
  }
  uint64_t wakes() {
    absl::MutexLock lock(&mu_);
    return wakes_;
  }

 private:
  absl::Mutex mu_;
  uint64_t wakes_ ABSL_GUARDED_BY(mu_) = 0;
  std::shared_ptr<domain::ChangeWatch> watch_;
};

class ChangeFeedTest : public RecordsTest {
 protected:
  void SetUp() override {
    RecordsTest::SetUp();
    StartFeed({});
  }
  void TearDown() override {
    feed_.reset();
    RecordsTest::TearDown();
  }
  void StartFeed(domain::ChangeFeedOptions options) {
    feed_.reset();
    feed_ = std::make_unique<domain::ChangeFeed>(store_.get(), records_.get(), options);
  }

  // Starts a watch for `consumer`.
  absl::Status Watch(domain::WatchSpec spec, Consumer* consumer) {
    if (spec.kinds.empty()) spec.kinds = domain::WatchableKinds();
    auto watch = feed_->Watch(std::move(spec), consumer->Waker());
    if (!watch.ok()) return watch.status();
    consumer->Attach(*std::move(watch));
    return absl::OkStatus();
  }

  std::string NewGoal(const std::string& patient) {
    auto goal = CreateGoal(patient, ValidGoal());
    EXPECT_TRUE(goal.ok()) << goal.status();
    return goal.ok() ? goal->name() : "";
  }

  std::unique_ptr<domain::ChangeFeed> feed_;
};

// ---------------------------------------------------------------- the request

TEST(ParseWatchRequestTest, NamesEveryViolation) {
  v1::WatchChangesRequest request;
  request.set_parent("patient/p1");
  request.add_kinds(v1::RESOURCE_KIND_GOAL);
  request.add_kinds(v1::RESOURCE_KIND_UNSPECIFIED);
  request.set_include_summary(true);
  request.set_start_after(3);
  request.mutable_heartbeat_interval()->set_nanos(500'000'000);
  auto spec = domain::ParseWatchRequest(request);
  EXPECT_THAT(spec, StatusIs(Code::kInvalidArgument));
  EXPECT_THAT(ViolatedFields(spec.status()),
              UnorderedElementsAre("parent", "kinds[1]", "include_summary", "heartbeat_interval"));
}

TEST(ParseWatchRequestTest, SummaryNeedsParent) {
  v1::WatchChangesRequest request;
  request.set_include_summary(true);
  EXPECT_THAT(ViolatedFields(domain::ParseWatchRequest(request).status()), ElementsAre("include_summary"));
}

TEST(ParseWatchRequestTest, DefaultsAndDeduplicatedKinds) {
  v1::WatchChangesRequest request;
  request.set_parent("patients/p1");
  request.add_kinds(v1::RESOURCE_KIND_GOAL);
  request.add_kinds(v1::RESOURCE_KIND_GOAL);
  request.mutable_heartbeat_interval()->set_seconds(300);
  auto spec = domain::ParseWatchRequest(request);
  ASSERT_TRUE(spec.ok()) << spec.status();
  EXPECT_EQ(spec->patient_id, "p1");
  EXPECT_THAT(spec->kinds, ElementsAre(storage::GOAL));
  EXPECT_FALSE(spec->start_after.has_value());
  EXPECT_EQ(spec->heartbeat_interval, absl::Minutes(5));
  request.mutable_heartbeat_interval()->set_seconds(301);
  EXPECT_THAT(ViolatedFields(domain::ParseWatchRequest(request).status()), ElementsAre("heartbeat_interval"));
}

// ---------------------------------------------------------------- following the log

TEST_F(ChangeFeedTest, CatchesUpThenFollowsLiveInOrderExactlyOnce) {
  for (int i = 0; i < 5; ++i) NewGoal(i % 2 == 0 ? "p1" : "p2");
  Consumer consumer;
  domain::WatchSpec spec;
  spec.start_after = 0;
  ASSERT_TRUE(Watch(spec, &consumer).ok());
  for (uint64_t sequence = 1; sequence <= 5; ++sequence) {
    auto change = consumer.NextChange();
    ASSERT_TRUE(change.has_value());
    EXPECT_EQ(change->sequence(), sequence);
    EXPECT_EQ(change->kind(), v1::RESOURCE_KIND_GOAL);
    EXPECT_EQ(change->operation(), v1::ChangeEvent::CREATE);
    EXPECT_EQ(change->version(), 1);
    EXPECT_FALSE(change->has_goal());  // include_resource not asked
  }
  const std::string live = NewGoal("p3");
  auto change = consumer.NextChange();
  ASSERT_TRUE(change.has_value());
  EXPECT_EQ(change->sequence(), 6u);
  EXPECT_EQ(change->name(), live);
  EXPECT_EQ(change->patient(), "patients/p3");
  EXPECT_EQ(consumer.watch().resume_after(), 6u);
}

TEST_F(ChangeFeedTest, FiltersByPatientAndKindAndCarriesTheResource) {
  const std::string goal = NewGoal("p1");
  NewGoal("p2");
  auto what = CreateWhatMatters("p1", ValidWhatMatters());
  ASSERT_TRUE(what.ok());
  auto retracted = RetractGoal(goal);
  ASSERT_TRUE(retracted.ok()) << retracted.status();
  Consumer consumer;
  domain::WatchSpec spec;
  spec.start_after = 0;
  spec.patient_id = "p1";
  spec.kinds = {storage::GOAL};
  spec.include_resource = true;
  ASSERT_TRUE(Watch(spec, &consumer).ok());
  auto created = consumer.NextChange();
  ASSERT_TRUE(created.has_value());
  EXPECT_EQ(created->sequence(), 1u);
  EXPECT_EQ(created->goal().name(), goal);
  auto retract = consumer.NextChange();
  ASSERT_TRUE(retract.has_value());
  EXPECT_EQ(retract->sequence(), 4u);
  EXPECT_EQ(retract->operation(), v1::ChangeEvent::RETRACT);
  EXPECT_EQ(retract->version(), 2);
  EXPECT_EQ(retract->goal().etag(), retracted->etag());
}

TEST_F(ChangeFeedTest, StartAfterBeyondTheHeadIsInvalid) {
  NewGoal("p1");
  Consumer consumer;
  domain::WatchSpec spec;
  spec.start_after = 2;
  auto status = Watch(spec, &consumer);
  EXPECT_THAT(status, StatusIs(Code::kInvalidArgument));
  EXPECT_THAT(ViolatedFields(status), ElementsAre("start_after"));
}

TEST_F(ChangeFeedTest, SubscriptionChangesAreNeverShown) {
  storage::Mutation subscription;
  subscription.kind = storage::SUBSCRIPTION;
  subscription.id = "s1";
  subscription.op = storage::Change::CREATE;
  subscription.apply = [](const storage::Record*, const storage::WriteStamp&, storage::Record* next) {
    next->set_resource("");
    return absl::OkStatus();
  };
  ASSERT_TRUE(store_->CommitAndWait(std::move(subscription)).ok());
  NewGoal("p1");
  Consumer consumer;
  domain::WatchSpec spec;
  spec.start_after = 0;
  ASSERT_TRUE(Watch(spec, &consumer).ok());
  auto change = consumer.NextChange();
  ASSERT_TRUE(change.has_value());
  EXPECT_EQ(change->sequence(), 2u);
}

TEST_F(ChangeFeedTest, SummaryFirstThenTheChangesAfterIt) {
  const std::string before = NewGoal("p1");
  Consumer consumer;
  domain::WatchSpec spec;
  spec.patient_id = "p1";
  spec.include_summary = true;
  ASSERT_TRUE(Watch(spec, &consumer).ok());
  Consumer::Item first = consumer.Take();
  ASSERT_TRUE(first.message.has_value() && first.message->has_summary());
  EXPECT_EQ(first.message->summary().after_sequence(), 1u);
  ASSERT_EQ(first.message->summary().summary().goals_size(), 1);
  EXPECT_EQ(first.message->summary().summary().goals(0).name(), before);
  const std::string after = NewGoal("p1");
  auto change = consumer.NextChange();
  ASSERT_TRUE(change.has_value());
  EXPECT_EQ(change->name(), after);
  EXPECT_EQ(change->sequence(), 2u);
}

// ---------------------------------------------------------------- a trimmed log

TEST_F(ChangeFeedTest, StartAfterOlderThanTheLogIsOutOfRangeNamingTheOldest) {
  for (int i = 0; i < 4; ++i) NewGoal("p1");
  ASSERT_TRUE(store_->TrimChangeLog(2).ok());
  Consumer refused;
  domain::WatchSpec spec;
  spec.start_after = 1;
  absl::Status status = Watch(spec, &refused);
  EXPECT_THAT(status, StatusIs(Code::kOutOfRange));
  auto info = ErrorInfoOf(status);
  ASSERT_TRUE(info.has_value());
  EXPECT_EQ(info->reason(), domain::kChangeLogTrimmedReason);
  EXPECT_EQ(info->metadata().at(std::string(domain::kOldestAvailableSequenceKey)), "3");
  // Right after the trimmed part is fine.
  Consumer consumer;
  spec.start_after = 2;
  ASSERT_TRUE(Watch(spec, &consumer).ok());
  auto change = consumer.NextChange();
  ASSERT_TRUE(change.has_value());
  EXPECT_EQ(change->sequence(), 3u);
}

TEST_F(ChangeFeedTest, TrimRacingTheReadEndsOutOfRangeNotWithAGap) {
  for (int i = 0; i < 4; ++i) NewGoal("p1");
  Consumer consumer;
  domain::WatchSpec spec;
  spec.start_after = 0;
  // With the resources, the watch reads the store (not the entries the feed
  // thread remembers, which would still be served: no gap either way).
  spec.include_resource = true;
  ASSERT_TRUE(Watch(spec, &consumer).ok());
  ASSERT_TRUE(store_->TrimChangeLog(2).ok());  // after the watch started, before it read
  Consumer::Item item = consumer.Take();
  EXPECT_FALSE(item.message.has_value());
  EXPECT_THAT(item.end, StatusIs(Code::kOutOfRange));
  auto info = ErrorInfoOf(item.end);
  ASSERT_TRUE(info.has_value());
  EXPECT_EQ(info->metadata().at(std::string(domain::kOldestAvailableSequenceKey)), "3");
}

// ---------------------------------------------------------------- heartbeats, stalls, ends

TEST_F(ChangeFeedTest, HeartbeatCarriesTheCursorPastUnmatchedChanges) {
  Consumer consumer;
  domain::WatchSpec spec;
  spec.patient_id = "p1";
  spec.heartbeat_interval = domain::kMinHeartbeatInterval;
  ASSERT_TRUE(Watch(spec, &consumer).ok());
  NewGoal("p2");
  NewGoal("p2");
  // Heartbeats until one has seen past the other patient's changes.
  uint64_t head = 0;
  while (head < 2) {
    Consumer::Item item = consumer.Take();
    ASSERT_TRUE(item.message.has_value() && item.message->has_heartbeat()) << item.end;
    head = item.message->heartbeat().head_sequence();
  }
  EXPECT_EQ(consumer.watch().resume_after(), 2u);
}

TEST_F(ChangeFeedTest, AWatchFromNowStartsWithAHeartbeatNamingTheHead) {
  NewGoal("p1");
  NewGoal("p1");
  Consumer consumer;
  ASSERT_TRUE(Watch({}, &consumer).ok());
  Consumer::Item first = consumer.Take();
  ASSERT_TRUE(first.message.has_value() && first.message->has_heartbeat()) << first.end;
  EXPECT_EQ(first.message->heartbeat().head_sequence(), 2u);
  NewGoal("p1");
  auto next = consumer.NextChange();
  ASSERT_TRUE(next.has_value());
  EXPECT_EQ(next->sequence(), 3u);
}

TEST_F(ChangeFeedTest, TheWatchEndsUnauthenticatedWhenTheTokenExpires) {
  Consumer consumer;
  domain::WatchSpec spec;
  spec.start_after = 0;
  spec.expires = absl::Now() + absl::Milliseconds(300);
  ASSERT_TRUE(Watch(spec, &consumer).ok());
  NewGoal("p1");
  ASSERT_TRUE(consumer.NextChange().has_value());
  Consumer::Item end = consumer.Take();  // nothing more until the expiry ends it
  EXPECT_FALSE(end.message.has_value());
  EXPECT_THAT(end.end, StatusIs(Code::kUnauthenticated));
}

TEST_F(ChangeFeedTest, StuckConsumerEndsWithTheSequenceToResumeAfter) {
  domain::ChangeFeedOptions options;
  options.stall_timeout = absl::Milliseconds(200);
  options.buffer_events = 4;
  StartFeed(options);
  for (int i = 0; i < 10; ++i) NewGoal("p1");
  Consumer consumer;
  domain::WatchSpec spec;
  spec.start_after = 0;
  ASSERT_TRUE(Watch(spec, &consumer).ok());
  ASSERT_TRUE(consumer.NextChange().has_value());  // sequence 1, taken
  Consumer::Item held = consumer.Take(/*acknowledge=*/false);
  ASSERT_TRUE(held.message.has_value());
  EXPECT_EQ(held.message->change().sequence(), 2u);
  // Never acknowledged: the feed ends the watch, naming sequence 2 (handed
  // to the transport: a client that reads later gets it before the end).
  Consumer::Item end = consumer.Take();
  EXPECT_THAT(end.end, StatusIs(Code::kResourceExhausted));
  auto info = ErrorInfoOf(end.end);
  ASSERT_TRUE(info.has_value());
  EXPECT_EQ(info->reason(), domain::kWatcherTooSlowReason);
  EXPECT_EQ(info->metadata().at(std::string(domain::kResumeAfterSequenceKey)), "2");
  // Still not taken after as long again: dropped.
  EXPECT_TRUE(consumer.Take().aborted);
  EXPECT_EQ(feed_->stats().slow_ended_total, 1u);

  Consumer resumed;
  spec.start_after = 2;
  ASSERT_TRUE(Watch(spec, &resumed).ok());
  auto next = resumed.NextChange();
  ASSERT_TRUE(next.has_value());
  EXPECT_EQ(next->sequence(), 3u);
}

TEST_F(ChangeFeedTest, ShutdownEndsWatchesUnavailableAndRefusesNewOnes) {
  Consumer consumer;
  ASSERT_TRUE(Watch({}, &consumer).ok());
  Consumer::Item first = consumer.Take();  // from now: a heartbeat naming the head
  ASSERT_TRUE(first.message.has_value() && first.message->has_heartbeat());
  EXPECT_EQ(consumer.watch().Next().action, domain::WatchStep::kWait);
  feed_->Shutdown();
  EXPECT_THAT(consumer.Take().end, StatusIs(Code::kUnavailable));
  Consumer late;
  EXPECT_THAT(Watch({}, &late), StatusIs(Code::kUnavailable));
}

TEST_F(ChangeFeedTest, MaxWatchersRefusesMoreUntilOneCloses) {
  domain::ChangeFeedOptions options;
  options.max_watchers = 1;
  StartFeed(options);
  auto first = std::make_unique<Consumer>();
  ASSERT_TRUE(Watch({}, first.get()).ok());
  Consumer second;
  EXPECT_THAT(Watch({}, &second), StatusIs(Code::kResourceExhausted));
  first.reset();  // closes its watch
  EXPECT_TRUE(Watch({}, &second).ok());
}

TEST_F(ChangeFeedTest, ClosedWatchIsForgotten) {
  Consumer consumer;
  ASSERT_TRUE(Watch({}, &consumer).ok());
  EXPECT_EQ(feed_->stats().watchers, 1u);
  consumer.watch().Cancel();
  EXPECT_THAT(consumer.Take().end, StatusIs(Code::kCancelled));
  consumer.watch().Close();
  EXPECT_EQ(feed_->stats().watchers, 0u);
}

TEST_F(ChangeFeedTest, RememberedEntriesServeLiveWatchersAfterATrimWithoutAGap) {
  Consumer consumer;
  domain::WatchSpec spec;
  ASSERT_TRUE(Watch(spec, &consumer).ok());
  Consumer::Item first = consumer.Take();  // from now: a heartbeat naming the head
  ASSERT_TRUE(first.message.has_value() && first.message->has_heartbeat());
  EXPECT_EQ(consumer.watch().Next().action, domain::WatchStep::kWait);
  for (int i = 0; i < 3; ++i) NewGoal("p1");
  for (uint64_t expected = 1; expected <= 3; ++expected) {
    auto change = consumer.NextChange();
    ASSERT_TRUE(change.has_value());
    EXPECT_EQ(change->sequence(), expected);
    // Trimmed behind the watcher as it goes: it keeps every change.
    ASSERT_TRUE(store_->TrimChangeLog(expected).ok());
  }
}

TEST_F(ChangeFeedTest, OnlyWatchersTheChangeConcernsAreWoken) {
  Consumer mine;
  Consumer other;
  domain::WatchSpec spec;
  spec.heartbeat_interval = domain::kMaxHeartbeatInterval;
  spec.patient_id = "p1";
  ASSERT_TRUE(Watch(spec, &mine).ok());
  spec.patient_id = "p2";
  ASSERT_TRUE(Watch(spec, &other).ok());
  // Both idle (waiting for a wake) once `mine` has had its starting heartbeat.
  Consumer::Item first = mine.Take();
  ASSERT_TRUE(first.message.has_value() && first.message->has_heartbeat());
  EXPECT_EQ(mine.watch().Next().action, domain::WatchStep::kWait);
  for (int i = 0; i < 4; ++i) {
    NewGoal("p2");
    auto change = other.NextChange();  // woken for each
    ASSERT_TRUE(change.has_value());
    EXPECT_EQ(change->sequence(), static_cast<uint64_t>(i + 1));
  }
  // The feed thread handled p2's commits: none concerned `mine`.
  EXPECT_EQ(mine.wakes(), 0u);
  NewGoal("p1");
  auto change = mine.NextChange();
  ASSERT_TRUE(change.has_value());
  EXPECT_EQ(change->sequence(), 5u);
}

}  // namespace
}  // namespace wmty::testing
