// domain::SubscriptionEvents: the "push/" state of subscription notifications
// on a real Store (RocksDB in a temp dir): one atomic matcher step, event
// reads by number range, pruning of acknowledged events, and both counters.
#include "domain/subscription_events.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "support/test_support.h"

namespace wmty::testing {
namespace {

class SubscriptionEventsTest : public ::testing::Test {
 protected:
  void SetUp() override {
    storage::StoreOptions options;
    options.path = dir_.path() + "/db";
    options.block_cache_bytes = size_t{8} << 20;
    auto store = storage::Store::Open(options);
    ASSERT_TRUE(store.ok()) << store.status();
    store_ = std::move(*store);
    domain::SubscriptionEventsOptions events_options;
    events_options.kept_events = 3;
    events_ = std::make_unique<domain::SubscriptionEvents>(store_.get(), events_options);
  }

  // A matcher step that gives `id` events first..last (changes of those sequences).
  absl::Status Match(const std::string& id, uint64_t first, uint64_t last, uint64_t through) {
    domain::SubscriptionEvents::MatchStep step;
    step.through_sequence = through;
    storage::SubscriptionMatchState state;
    state.set_start_sequence(1);
    state.set_events_since_start(last);
    step.states.emplace_back(id, state);
    for (uint64_t n = first; n <= last; ++n) {
      storage::SubscriptionEvent e;
      e.set_number(n);
      e.mutable_change()->set_sequence(n + 10);
      e.mutable_change()->set_kind(storage::GOAL);
      step.events.emplace_back(id, e);
    }
    return events_->CommitMatches(step);
  }

  std::vector<uint64_t> Numbers(const std::string& id, uint64_t from, uint64_t until, size_t limit = 100) {
    auto events = events_->ReadEvents(id, from, until, limit);
    EXPECT_TRUE(events.ok()) << events.status();
    std::vector<uint64_t> out;
    if (events.ok()) {
      for (const auto& e : *events) out.push_back(e.number());
    }
    return out;
  }

  TempDir dir_;
  std::unique_ptr<storage::Store> store_;
  std::unique_ptr<domain::SubscriptionEvents> events_;
};

TEST_F(SubscriptionEventsTest, NoCursorBeforeTheFirstStep) {
  auto cursor = events_->MatcherCursor();
  ASSERT_TRUE(cursor.ok());
  EXPECT_FALSE(cursor->has_value());
  auto counters = events_->Counters("s1");
  ASSERT_TRUE(counters.ok());
  EXPECT_EQ(counters->match.events_since_start(), 0u);
  EXPECT_EQ(counters->delivery.delivered_through(), 0u);
}

TEST_F(SubscriptionEventsTest, AStepWritesEventsStateAndCursorTogether) {
  ASSERT_TRUE(Match("s1", 1, 20, 42).ok());
  auto cursor = events_->MatcherCursor();
  ASSERT_TRUE(cursor.ok());
  EXPECT_EQ(cursor->value(), 42u);
  EXPECT_EQ(events_->Counters("s1")->match.events_since_start(), 20u);
  // Numbers order as numbers (fixed-width keys), not as text.
  EXPECT_THAT(Numbers("s1", 9, 11), ::testing::ElementsAre(9, 10, 11));
  EXPECT_THAT(Numbers("s1", 1, 20, 3), ::testing::ElementsAre(1, 2, 3));
  EXPECT_THAT(Numbers("s1", 19, 100), ::testing::ElementsAre(19, 20));
  EXPECT_THAT(Numbers("s2", 1, 100), ::testing::IsEmpty());
  std::vector<std::string> ids;
  ASSERT_TRUE(events_
                  ->ScanMatchStates([&](absl::string_view id, const storage::SubscriptionMatchState&) {
                    ids.emplace_back(id);
                    return true;
                  })
                  .ok());
  EXPECT_THAT(ids, ::testing::ElementsAre("s1"));
}

TEST_F(SubscriptionEventsTest, AcknowledgedEventsArePrunedBeyondTheKeptWindow) {
  ASSERT_TRUE(Match("s1", 1, 10, 10).ok());
  storage::SubscriptionDeliveryState before, after;
  after.set_delivered_through(6);
  ASSERT_TRUE(events_->WriteDelivery("s1", before, after).ok());
  // Kept: the newest 3 acknowledged (4-6) and every unacknowledged one (7-10).
  EXPECT_THAT(Numbers("s1", 1, 10), ::testing::ElementsAre(4, 5, 6, 7, 8, 9, 10));
  storage::SubscriptionDeliveryState later = after;
  later.set_delivered_through(10);
  ASSERT_TRUE(events_->WriteDelivery("s1", after, later).ok());
  EXPECT_THAT(Numbers("s1", 1, 10), ::testing::ElementsAre(8, 9, 10));
  EXPECT_EQ(events_->Counters("s1")->delivery.delivered_through(), 10u);
}

}  // namespace
}  // namespace wmty::testing
