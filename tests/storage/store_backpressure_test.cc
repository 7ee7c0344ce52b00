// storage::Store under pressure, on a real RocksDB: the commit queue is
// bounded (StoreOptions::max_queued_changes: past it Commit refuses at once
// with RESOURCE_EXHAUSTED and writes nothing), and a change whose deadline
// passes while it waits in the queue is refused with DEADLINE_EXCEEDED and
// not written.
//
// The commit thread is held deterministically by a change whose `apply`
// blocks until the test releases it, so "queued" means queued, with no
// timing involved.
#include <atomic>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "absl/strings/str_cat.h"
#include "absl/synchronization/mutex.h"
#include "absl/synchronization/notification.h"
#include "storage/store.h"
#include "support/store_mutations.h"
#include "support/test_support.h"

namespace wmty::storage {
namespace {

using ::wmty::testing::Put;
using ::wmty::testing::StatusIs;
using ::wmty::testing::TempDir;

// Collects the results of asynchronous commits; Wait() returns once `n` have come.
class Results {
 public:
  CommitCallback Callback(int index) {
    return [this, index](absl::StatusOr<Committed> r) {
      absl::MutexLock lock(&mu_);
      codes_[index] = r.status().code();
      ++done_;
    };
  }
  void Expect(int n) {
    absl::MutexLock lock(&mu_);
    codes_.resize(n, absl::StatusCode::kUnknown);
  }
  void WaitFor(int n) {
    absl::MutexLock lock(&mu_);
    const auto enough = [this, n]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) { return done_ >= n; };
    mu_.Await(absl::Condition(&enough));
  }
  std::vector<absl::StatusCode> codes() {
    absl::MutexLock lock(&mu_);
    return codes_;
  }
  int done() {
    absl::MutexLock lock(&mu_);
    return done_;
  }

 private:
  absl::Mutex mu_;
  std::vector<absl::StatusCode> codes_ ABSL_GUARDED_BY(mu_);
  int done_ ABSL_GUARDED_BY(mu_) = 0;
};

class StoreBackpressureTest : public ::testing::Test {
 protected:
  void Open(int max_queued, std::function<absl::Time()> clock = nullptr) {
    StoreOptions options;
    options.path = dir_.path() + "/db";
    options.block_cache_bytes = size_t{8} << 20;
    options.max_queued_changes = max_queued;
    if (clock) options.clock = std::move(clock);
    auto store = Store::Open(options);
    ASSERT_TRUE(store.ok()) << store.status();
    store_ = std::move(*store);
  }

  // Commits a change whose apply blocks the commit thread until Release();
  // returns once the commit thread is inside it (so the queue is empty).
  void HoldCommitThread() {
    Mutation m = Put("hold", "H1", "held");
    m.apply = [this](const Record*, const WriteStamp&, Record* next) {
      entered_.Notify();
      release_.WaitForNotification();
      next->set_resource("held");
      return absl::OkStatus();
    };
    store_->Commit(std::move(m), [this](absl::StatusOr<Committed> r) {
      held_status_ = r.status();
      held_done_.Notify();
    });
    entered_.WaitForNotification();
  }
  void Release() {
    release_.Notify();
    held_done_.WaitForNotification();
    EXPECT_TRUE(held_status_.ok()) << held_status_;
  }

  size_t CountCurrent(const std::string& patient) {
    size_t n = 0;
    auto s = store_->NewReader()->ScanCurrent(patient, GOAL, "", [&](const Record&) {
      ++n;
      return true;
    });
    EXPECT_TRUE(s.ok()) << s;
    return n;
  }

  TempDir dir_;
  std::unique_ptr<Store> store_;
  absl::Notification entered_;
  absl::Notification release_;
  absl::Notification held_done_;
  absl::Status held_status_;
};

TEST_F(StoreBackpressureTest, FullQueueRefusesAtOnceAndWritesNothing) {
  constexpr int kLimit = 8;
  Open(kLimit);
  HoldCommitThread();
  Results results;
  constexpr int kSent = kLimit + 5;
  results.Expect(kSent);
  for (int i = 0; i < kSent; ++i) {
    store_->Commit(Put("p1", absl::StrCat("G", i), "x"), results.Callback(i));
  }
  // The refusals were answered inside Commit, while the commit thread is
  // still held: nobody waits for a queue that is full.
  EXPECT_EQ(results.done(), kSent - kLimit);
  Release();
  results.WaitFor(kSent);
  const std::vector<absl::StatusCode> codes = results.codes();
  for (int i = 0; i < kSent; ++i) {
    EXPECT_EQ(codes[i], i < kLimit ? absl::StatusCode::kOk : absl::StatusCode::kResourceExhausted) << "change " << i;
  }
  EXPECT_EQ(CountCurrent("p1"), static_cast<size_t>(kLimit));
  EXPECT_EQ(store_->LastSequence(), static_cast<uint64_t>(kLimit + 1));  // + the held change
  // Room again once the queue drained.
  EXPECT_TRUE(store_->CommitAndWait(Put("p1", "after", "x")).ok());
  EXPECT_TRUE(store_->VerifyIntegrity().ok());
}

TEST_F(StoreBackpressureTest, ZeroMeansNoLimit) {
  Open(0);
  HoldCommitThread();
  Results results;
  constexpr int kSent = 200;
  results.Expect(kSent);
  for (int i = 0; i < kSent; ++i) store_->Commit(Put("p1", absl::StrCat("G", i), "x"), results.Callback(i));
  EXPECT_EQ(results.done(), 0);
  Release();
  results.WaitFor(kSent);
  for (absl::StatusCode code : results.codes()) EXPECT_EQ(code, absl::StatusCode::kOk);
  EXPECT_EQ(CountCurrent("p1"), static_cast<size_t>(kSent));
}

TEST_F(StoreBackpressureTest, DeadlinePassingWhileQueuedIsRefusedAndNotWritten) {
  // The store judges deadlines by its clock (injected): the change is queued
  // with time to spare, the clock moves past its deadline while the commit
  // thread is busy, and then the commit thread reaches it.
  std::atomic<int64_t> now_micros{absl::ToUnixMicros(absl::FromUnixSeconds(1800000000))};
  Open(100, [&now_micros] { return absl::FromUnixMicros(now_micros.load()); });
  HoldCommitThread();
  Results results;
  results.Expect(2);
  const absl::Time queued_at = absl::FromUnixMicros(now_micros.load());
  Mutation late = Put("p1", "late", "x");
  late.deadline = queued_at + absl::Seconds(5);
  store_->Commit(std::move(late), results.Callback(0));
  Mutation on_time = Put("p1", "on-time", "x");
  on_time.deadline = queued_at + absl::Seconds(60);
  store_->Commit(std::move(on_time), results.Callback(1));
  EXPECT_EQ(results.done(), 0);  // both wait in the queue
  now_micros.store(absl::ToUnixMicros(queued_at + absl::Seconds(10)));
  Release();
  results.WaitFor(2);
  EXPECT_EQ(results.codes()[0], absl::StatusCode::kDeadlineExceeded);
  EXPECT_EQ(results.codes()[1], absl::StatusCode::kOk);
  auto reader = store_->NewReader();
  auto late_record = reader->GetCurrent(GOAL, "p1", "late");
  ASSERT_TRUE(late_record.ok());
  EXPECT_FALSE(late_record->has_value());
  auto on_time_record = reader->GetCurrent(GOAL, "p1", "on-time");
  ASSERT_TRUE(on_time_record.ok());
  EXPECT_TRUE(on_time_record->has_value());
  EXPECT_EQ(store_->LastSequence(), 2u);  // the held change and on-time; no sequence for the late one
  EXPECT_TRUE(store_->VerifyIntegrity().ok());
}

TEST_F(StoreBackpressureTest, ClosedStoreRefusesWithUnavailableNotResourceExhausted) {
  Open(1);
  store_->Close();
  EXPECT_THAT(store_->CommitAndWait(Put("p1", "G1", "x")), StatusIs(absl::StatusCode::kUnavailable));
}

}  // namespace
}  // namespace wmty::storage
