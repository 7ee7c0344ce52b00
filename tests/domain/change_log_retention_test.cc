// domain::ChangeLogRetention on a real Store: the count limit, the age limit
// (found by binary search over change times), both at once, floors that hold
// trimming back, disabled limits, and the background thread.
#include "domain/change_log_retention.h"

#include <memory>
#include <string>
#include <vector>

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "absl/strings/str_cat.h"
#include "absl/synchronization/mutex.h"
#include "storage/store.h"
#include "support/store_mutations.h"
#include "support/test_support.h"

namespace wmty::domain {
namespace {

using ::wmty::testing::Put;
using ::wmty::testing::TempDir;

class ChangeLogRetentionTest : public ::testing::Test {
 protected:
  void SetUp() override {
    storage::StoreOptions options;
    options.path = dir_.path() + "/db";
    options.block_cache_bytes = size_t{8} << 20;
    options.clock = [this] { return Now(); };
    auto store = storage::Store::Open(options);
    ASSERT_TRUE(store.ok()) << store.status();
    store_ = std::move(*store);
  }

  absl::Time Now() {
    absl::MutexLock lock(&clock_mu_);
    return now_;
  }
  void Advance(absl::Duration d) {
    absl::MutexLock lock(&clock_mu_);
    now_ += d;
  }

  void CommitN(int n) {
    for (int i = 0; i < n; ++i) {
      ASSERT_TRUE(store_->CommitAndWait(Put("p1", absl::StrCat("G", next_id_++), "x")).ok());
    }
  }

  std::unique_ptr<ChangeLogRetention> Retention(uint64_t max_changes, absl::Duration max_age) {
    ChangeLogRetentionOptions options;
    options.max_changes = max_changes;
    options.max_age = max_age;
    options.clock = [this] { return Now(); };
    return std::make_unique<ChangeLogRetention>(store_.get(), options);
  }

  uint64_t FirstHeld() {
    uint64_t first = 0;
    EXPECT_TRUE(store_->NewReader()
                    ->ScanChanges(0,
                                  [&](const storage::Change& c) {
                                    first = c.sequence();
                                    return false;
                                  })
                    .ok());
    return first;
  }

  TempDir dir_;
  absl::Mutex clock_mu_;
  absl::Time now_ = absl::FromUnixSeconds(1'800'000'000);
  int next_id_ = 0;
  std::unique_ptr<storage::Store> store_;
};

TEST_F(ChangeLogRetentionTest, EmptyLogHasNothingToTrim) {
  auto retention = Retention(5, absl::Hours(1));
  auto trimmed = retention->TrimOnce();
  ASSERT_TRUE(trimmed.ok()) << trimmed.status();
  EXPECT_EQ(*trimmed, 0u);
  EXPECT_EQ(retention->stats().trims, 0u);
}

TEST_F(ChangeLogRetentionTest, CountLimitKeepsTheNewestEntries) {
  CommitN(12);
  auto retention = Retention(5, absl::ZeroDuration());
  auto trimmed = retention->TrimOnce();
  ASSERT_TRUE(trimmed.ok()) << trimmed.status();
  EXPECT_EQ(*trimmed, 7u);
  EXPECT_EQ(store_->OldestChangeSequence(), 8u);
  EXPECT_EQ(FirstHeld(), 8u);
  EXPECT_EQ(retention->stats().trims, 1u);
  EXPECT_TRUE(retention->stats().last_trim.has_value());
  // Within the limit now: nothing more.
  trimmed = retention->TrimOnce();
  ASSERT_TRUE(trimmed.ok());
  EXPECT_EQ(*trimmed, 0u);
  EXPECT_EQ(retention->stats().trims, 1u);
  EXPECT_TRUE(store_->VerifyIntegrity().ok());
}

TEST_F(ChangeLogRetentionTest, AgeLimitTrimsExactlyTheEntriesOlderThanIt) {
  // One change an hour for 100 hours: sequence s was written at hour s - 1.
  for (int i = 0; i < 100; ++i) {
    CommitN(1);
    Advance(absl::Hours(1));
  }
  // Now is hour 100; a 30.5-hour limit keeps hours 70..99 (sequences 71..100).
  auto retention = Retention(0, absl::Hours(30) + absl::Minutes(30));
  auto trimmed = retention->TrimOnce();
  ASSERT_TRUE(trimmed.ok()) << trimmed.status();
  EXPECT_EQ(*trimmed, 70u);
  EXPECT_EQ(FirstHeld(), 71u);
  // Two hours later two more are too old.
  Advance(absl::Hours(2));
  trimmed = retention->TrimOnce();
  ASSERT_TRUE(trimmed.ok());
  EXPECT_EQ(*trimmed, 72u);
}

TEST_F(ChangeLogRetentionTest, AgeLimitWithNothingTooOldTrimsNothing) {
  CommitN(10);
  auto retention = Retention(0, absl::Hours(1));
  auto trimmed = retention->TrimOnce();
  ASSERT_TRUE(trimmed.ok());
  EXPECT_EQ(*trimmed, 0u);
  Advance(absl::Hours(2));  // now everything is
  trimmed = retention->TrimOnce();
  ASSERT_TRUE(trimmed.ok());
  EXPECT_EQ(*trimmed, 10u);
  EXPECT_EQ(store_->OldestChangeSequence(), 11u);
}

TEST_F(ChangeLogRetentionTest, WhicheverLimitTrimsMoreWins) {
  CommitN(10);  // hour 0
  Advance(absl::Hours(5));
  CommitN(10);  // hour 5
  // The count alone would trim 5; the age (3 hours) trims the first 10.
  auto by_age = Retention(15, absl::Hours(3));
  auto trimmed = by_age->TrimOnce();
  ASSERT_TRUE(trimmed.ok());
  EXPECT_EQ(*trimmed, 10u);
  // The count (4) trims past what the age would.
  auto by_count = Retention(4, absl::Hours(3));
  trimmed = by_count->TrimOnce();
  ASSERT_TRUE(trimmed.ok());
  EXPECT_EQ(*trimmed, 16u);
}

TEST_F(ChangeLogRetentionTest, FloorsHoldTrimmingBack) {
  CommitN(20);
  auto retention = Retention(2, absl::ZeroDuration());
  uint64_t matcher_next = 6;  // the first sequence this consumer has yet to read
  retention->AddFloor([&] { return matcher_next; });
  retention->AddFloor([] { return uint64_t{100}; });  // far ahead: no effect
  auto trimmed = retention->TrimOnce();
  ASSERT_TRUE(trimmed.ok());
  EXPECT_EQ(*trimmed, 5u);
  EXPECT_EQ(store_->OldestChangeSequence(), 6u);
  EXPECT_EQ(retention->stats().held_by_floor, 13u);  // 6..18 would go
  matcher_next = 19;
  trimmed = retention->TrimOnce();
  ASSERT_TRUE(trimmed.ok());
  EXPECT_EQ(*trimmed, 18u);
  EXPECT_EQ(retention->stats().held_by_floor, 0u);
}

TEST_F(ChangeLogRetentionTest, FloorAtTheStartKeepsEverything) {
  CommitN(5);
  auto retention = Retention(1, absl::ZeroDuration());
  retention->AddFloor([] { return uint64_t{0}; });
  auto trimmed = retention->TrimOnce();
  ASSERT_TRUE(trimmed.ok());
  EXPECT_EQ(*trimmed, 0u);
  EXPECT_EQ(store_->OldestChangeSequence(), 1u);
  EXPECT_EQ(retention->stats().held_by_floor, 4u);
}

TEST_F(ChangeLogRetentionTest, DisabledLimitsTrimNothing) {
  CommitN(5);
  Advance(absl::Hours(24 * 365));
  auto retention = Retention(0, absl::ZeroDuration());
  auto trimmed = retention->TrimOnce();
  ASSERT_TRUE(trimmed.ok());
  EXPECT_EQ(*trimmed, 0u);
  retention->Start();  // no thread without a limit
  retention->Stop();
  EXPECT_EQ(store_->OldestChangeSequence(), 1u);
}

TEST_F(ChangeLogRetentionTest, BackgroundThreadTrimsUntilStopped) {
  CommitN(10);
  ChangeLogRetentionOptions options;
  options.max_changes = 3;
  options.max_age = absl::ZeroDuration();
  options.interval = absl::Milliseconds(5);
  ChangeLogRetention retention(store_.get(), options);
  retention.Start();
  // Waits for the outcome, not for a time: the first pass runs at once.
  const absl::Time give_up = absl::Now() + absl::Seconds(30);
  while (store_->OldestChangeSequence() != 8 && absl::Now() < give_up) absl::SleepFor(absl::Milliseconds(5));
  EXPECT_EQ(store_->OldestChangeSequence(), 8u);
  CommitN(2);
  while (store_->OldestChangeSequence() != 10 && absl::Now() < give_up) absl::SleepFor(absl::Milliseconds(5));
  EXPECT_EQ(store_->OldestChangeSequence(), 10u);
  retention.Stop();
  retention.Stop();  // idempotent
  EXPECT_GE(retention.stats().trims, 2u);
}

}  // namespace
}  // namespace wmty::domain
