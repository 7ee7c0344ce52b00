// storage::Store's change log as consumers follow it (issue 19): commit
// listeners (order, values, before the callbacks, after visibility) and
// retention (TrimChangeLog: durable across restarts, concurrent with commits,
// Readers keep their snapshot, VerifyIntegrity on a trimmed log).
#include <atomic>
#include <future>
#include <string>
#include <thread>
#include <vector>

#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <rocksdb/db.h>

#include "absl/strings/str_cat.h"
#include "absl/synchronization/mutex.h"
#include "storage/keys.h"
#include "storage/store.h"
#include "support/store_mutations.h"
#include "support/test_support.h"

namespace wmty::storage {
namespace {

using ::testing::ElementsAre;
using ::wmty::testing::Put;
using ::wmty::testing::StatusIs;
using ::wmty::testing::TempDir;

class StoreChangeLogTest : public ::testing::Test {
 protected:
  void SetUp() override { Open(); }

  void Open() {
    StoreOptions options;
    options.path = path();
    options.block_cache_bytes = size_t{8} << 20;
    options.write_buffer_bytes = size_t{64} << 10;  // flushes and compactions within a few hundred writes
    auto store = Store::Open(options);
    ASSERT_TRUE(store.ok()) << store.status();
    store_ = std::move(*store);
  }

  void Reopen() {
    store_->Close();
    store_.reset();
    Open();
  }

  std::string path() const { return dir_.path() + "/db"; }

  void CommitN(int n, const std::string& prefix = "G") {
    for (int i = 0; i < n; ++i) {
      ASSERT_TRUE(store_->CommitAndWait(Put("p1", absl::StrCat(prefix, i), "x")).ok());
    }
  }

  std::vector<uint64_t> Sequences(uint64_t after = 0, const Reader* reader = nullptr) {
    std::unique_ptr<Reader> own;
    if (reader == nullptr) {
      own = store_->NewReader();
      reader = own.get();
    }
    std::vector<uint64_t> out;
    auto s = reader->ScanChanges(after, [&](const Change& c) {
      out.push_back(c.sequence());
      return true;
    });
    EXPECT_TRUE(s.ok()) << s;
    return out;
  }

  void ExpectIntegrity() {
    auto s = store_->VerifyIntegrity();
    EXPECT_TRUE(s.ok()) << s;
  }

  TempDir dir_;
  std::unique_ptr<Store> store_;
};

// ---------------------------------------------------------------- Listeners

TEST_F(StoreChangeLogTest, ListenerGetsEachGroupsLastSequenceBeforeItsCallback) {
  absl::Mutex mu;
  std::vector<std::string> events;
  store_->AddCommitListener([&](uint64_t last) {
    absl::MutexLock lock(&mu);
    events.push_back(absl::StrCat("listener ", last));
  });
  for (int i = 0; i < 3; ++i) {
    std::promise<void> done;
    store_->Commit(Put("p1", absl::StrCat("G", i), "x"), [&](absl::StatusOr<Committed> c) {
      ASSERT_TRUE(c.ok());
      absl::MutexLock lock(&mu);
      events.push_back(absl::StrCat("callback ", c->record.sequence()));
      done.set_value();
    });
    done.get_future().wait();
  }
  absl::MutexLock lock(&mu);
  EXPECT_THAT(events, ElementsAre("listener 1", "callback 1", "listener 2", "callback 2", "listener 3", "callback 3"));
}

TEST_F(StoreChangeLogTest, ListenerSeesItsChangesInANewReader) {
  std::vector<std::vector<uint64_t>> seen;  // completion thread only, read after it ran
  std::atomic<int> calls{0};
  store_->AddCommitListener([&](uint64_t last) {
    EXPECT_GE(store_->LastSequence(), last);
    auto reader = store_->NewReader();
    std::vector<uint64_t> up_to;
    EXPECT_TRUE(reader
                    ->ScanChanges(last - 1,
                                  [&](const Change& c) {
                                    up_to.push_back(c.sequence());
                                    return true;
                                  })
                    .ok());
    seen.push_back(up_to);
    ++calls;
  });
  CommitN(2);
  ASSERT_EQ(calls.load(), 2);
  EXPECT_THAT(seen[0], ::testing::Contains(1u));
  EXPECT_THAT(seen[1], ::testing::Contains(2u));
}

TEST_F(StoreChangeLogTest, ListenerIsNotCalledWhenNothingWasWritten) {
  std::atomic<int> calls{0};
  store_->AddCommitListener([&](uint64_t) { ++calls; });
  // A refused change, a replayed request id, and audit records alone write no change.
  Mutation refused = Put("p1", "G1", "x");
  refused.apply = [](const Record*, const WriteStamp&, Record*) { return absl::AbortedError("no"); };
  EXPECT_THAT(store_->CommitAndWait(std::move(refused)), StatusIs(absl::StatusCode::kAborted));
  EXPECT_EQ(calls.load(), 0);
  Mutation first = Put("p1", "G1", "x");
  first.request_id = "req-1";
  first.fingerprint = "f";
  ASSERT_TRUE(store_->CommitAndWait(std::move(first)).ok());
  EXPECT_EQ(calls.load(), 1);
  Mutation retry = Put("p1", "G1", "x");
  retry.request_id = "req-1";
  retry.fingerprint = "f";
  auto replay = store_->CommitAndWait(std::move(retry));
  ASSERT_TRUE(replay.ok());
  EXPECT_TRUE(replay->replayed);
  AuditRecord audit;
  audit.set_interaction("read");
  store_->AppendAudit(audit);
  ASSERT_TRUE(store_->WriteState({{"test/k", "v"}}).ok());  // rides with a group of its own
  EXPECT_EQ(calls.load(), 1);
}

TEST_F(StoreChangeLogTest, ConcurrentCommitsReachListenersInIncreasingOrderEndingAtTheLast) {
  absl::Mutex mu;
  std::vector<uint64_t> lasts;
  store_->AddCommitListener([&](uint64_t last) {
    absl::MutexLock lock(&mu);
    lasts.push_back(last);
  });
  std::vector<std::thread> threads;
  for (int t = 0; t < 6; ++t) {
    threads.emplace_back([&, t] {
      for (int i = 0; i < 40; ++i) {
        EXPECT_TRUE(store_->CommitAndWait(Put(absl::StrCat("p", t), absl::StrCat("G", t, "-", i), "x")).ok());
      }
    });
  }
  for (auto& t : threads) t.join();
  absl::MutexLock lock(&mu);
  ASSERT_FALSE(lasts.empty());
  for (size_t i = 1; i < lasts.size(); ++i) EXPECT_LT(lasts[i - 1], lasts[i]);
  EXPECT_EQ(lasts.back(), 240u);
  EXPECT_EQ(store_->LastSequence(), 240u);
}

TEST_F(StoreChangeLogTest, EveryListenerRunsInRegistrationOrder) {
  std::vector<std::string> calls;  // completion thread only
  store_->AddCommitListener([&](uint64_t last) { calls.push_back(absl::StrCat("a", last)); });
  store_->AddCommitListener([&](uint64_t last) { calls.push_back(absl::StrCat("b", last)); });
  CommitN(1);
  EXPECT_THAT(calls, ElementsAre("a1", "b1"));
}

// ---------------------------------------------------------------- Retention

TEST_F(StoreChangeLogTest, NewStoreHoldsEverythingFromOne) {
  EXPECT_EQ(store_->OldestChangeSequence(), 1u);
  CommitN(3);
  EXPECT_EQ(store_->OldestChangeSequence(), 1u);
  EXPECT_EQ(store_->Stats().oldest_change_sequence, 1u);
  EXPECT_EQ(store_->Stats().last_change_sequence, 3u);
}

TEST_F(StoreChangeLogTest, TrimRemovesTheOldestEntriesOnly) {
  CommitN(10);
  ASSERT_TRUE(store_->TrimChangeLog(4).ok());
  EXPECT_EQ(store_->OldestChangeSequence(), 5u);
  EXPECT_THAT(Sequences(), ElementsAre(5, 6, 7, 8, 9, 10));
  // A consumer that had seen 2 finds 5 first: the log says it was trimmed.
  EXPECT_EQ(Sequences(2).front(), 5u);
  EXPECT_THAT(Sequences(7), ElementsAre(8, 9, 10));
  // Records and versions stay.
  auto current = store_->NewReader()->GetCurrent(GOAL, "p1", "G0");
  ASSERT_TRUE(current.ok() && current->has_value());
  EXPECT_EQ((*current)->sequence(), 1u);
  const StoreStats stats = store_->Stats();
  EXPECT_EQ(stats.oldest_change_sequence, 5u);
  EXPECT_EQ(stats.last_change_sequence, 10u);
  EXPECT_EQ(stats.change_log_trims, 1u);
  ExpectIntegrity();
}

TEST_F(StoreChangeLogTest, TrimNeverMovesBackOrPastTheLastSequence) {
  CommitN(5);
  ASSERT_TRUE(store_->TrimChangeLog(3).ok());
  ASSERT_TRUE(store_->TrimChangeLog(2).ok());  // behind: nothing to do
  EXPECT_EQ(store_->OldestChangeSequence(), 4u);
  ASSERT_TRUE(store_->TrimChangeLog(1000).ok());  // clamped to LastSequence()
  EXPECT_EQ(store_->OldestChangeSequence(), 6u);
  EXPECT_EQ(store_->LastSequence(), 5u);
  EXPECT_TRUE(Sequences().empty());
  EXPECT_EQ(store_->Stats().change_log_trims, 2u);
  ExpectIntegrity();
  // The next change continues the numbering.
  auto next = store_->CommitAndWait(Put("p1", "G9", "x"));
  ASSERT_TRUE(next.ok());
  EXPECT_EQ(next->record.sequence(), 6u);
  EXPECT_THAT(Sequences(), ElementsAre(6));
  ExpectIntegrity();
}

TEST_F(StoreChangeLogTest, TrimIsKeptAcrossRestart) {
  CommitN(8);
  ASSERT_TRUE(store_->TrimChangeLog(3).ok());
  Reopen();
  EXPECT_EQ(store_->OldestChangeSequence(), 4u);
  EXPECT_EQ(store_->LastSequence(), 8u);
  EXPECT_THAT(Sequences(), ElementsAre(4, 5, 6, 7, 8));
  ExpectIntegrity();
}

TEST_F(StoreChangeLogTest, EmptiedLogKeepsItsNumberingAcrossRestart) {
  // Without a trimmed-through mark the last key of an empty log would say 0,
  // and sequences would be handed out a second time.
  CommitN(4);
  ASSERT_TRUE(store_->TrimChangeLog(4).ok());
  Reopen();
  EXPECT_EQ(store_->LastSequence(), 4u);
  EXPECT_EQ(store_->OldestChangeSequence(), 5u);
  auto next = store_->CommitAndWait(Put("p1", "G9", "x"));
  ASSERT_TRUE(next.ok());
  EXPECT_EQ(next->record.sequence(), 5u);
  ExpectIntegrity();
}

TEST_F(StoreChangeLogTest, ReaderTakenBeforeTheTrimKeepsSeeingTheEntries) {
  CommitN(6);
  auto before = store_->NewReader();
  ASSERT_TRUE(store_->TrimChangeLog(6).ok());
  EXPECT_THAT(Sequences(0, before.get()), ElementsAre(1, 2, 3, 4, 5, 6));
  EXPECT_TRUE(Sequences().empty());
}

TEST_F(StoreChangeLogTest, TrimWhileCommittingKeepsTheRestGapFree) {
  std::atomic<bool> stop{false};
  std::thread trimmer([&] {
    while (!stop.load()) {
      const uint64_t last = store_->LastSequence();
      if (last > 20) EXPECT_TRUE(store_->TrimChangeLog(last - 20).ok());
      std::this_thread::yield();
    }
  });
  std::vector<std::thread> writers;
  for (int t = 0; t < 4; ++t) {
    writers.emplace_back([&, t] {
      for (int i = 0; i < 150; ++i) {
        EXPECT_TRUE(store_->CommitAndWait(Put("p1", absl::StrCat("G", t, "-", i), "x")).ok());
      }
    });
  }
  for (auto& w : writers) w.join();
  stop = true;
  trimmer.join();
  const uint64_t oldest = store_->OldestChangeSequence();
  EXPECT_GT(oldest, 1u);
  const std::vector<uint64_t> kept = Sequences();
  ASSERT_FALSE(kept.empty());
  EXPECT_EQ(kept.front(), oldest);
  EXPECT_EQ(kept.back(), 600u);
  EXPECT_EQ(kept.size(), 600u - oldest + 1);
  ExpectIntegrity();
  Reopen();
  EXPECT_EQ(store_->OldestChangeSequence(), oldest);
  EXPECT_EQ(store_->LastSequence(), 600u);
  ExpectIntegrity();
}

TEST_F(StoreChangeLogTest, TrimGivesTheDiskSpaceBack) {
  // Large change-log entries (long ids) over many small memtables: the log
  // is most of the database's files.
  const std::string long_id(200, 'x');
  for (int i = 0; i < 1500; ++i) {
    ASSERT_TRUE(store_->CommitAndWait(Put("p1", absl::StrCat(long_id, i), "")).ok());
  }
  const uint64_t before = store_->Stats().live_sst_bytes;
  ASSERT_TRUE(store_->TrimChangeLog(1500).ok());
  const uint64_t after = store_->Stats().live_sst_bytes;
  // The versions and current records stay; the log's share (about a third) goes.
  EXPECT_LT(after, before - before / 5) << before << " -> " << after;
  ExpectIntegrity();
}

TEST_F(StoreChangeLogTest, TrimAfterCloseIsRefused) {
  CommitN(2);
  store_->Close();
  EXPECT_THAT(store_->TrimChangeLog(1), StatusIs(absl::StatusCode::kUnavailable));
}

// The integrity check still finds a missing entry above the trimmed range
// (written around the store, on the raw database).
TEST_F(StoreChangeLogTest, IntegrityCheckFindsAHoleInATrimmedLog) {
  CommitN(6);
  ASSERT_TRUE(store_->TrimChangeLog(2).ok());
  store_->Close();
  store_.reset();
  {
    rocksdb::DB* raw = nullptr;
    std::vector<rocksdb::ColumnFamilyDescriptor> families;
    std::vector<std::string> names;
    ASSERT_TRUE(rocksdb::DB::ListColumnFamilies(rocksdb::DBOptions(), path(), &names).ok());
    for (const std::string& name : names) families.emplace_back(name, rocksdb::ColumnFamilyOptions());
    std::vector<rocksdb::ColumnFamilyHandle*> handles;
    ASSERT_TRUE(rocksdb::DB::Open(rocksdb::DBOptions(), path(), families, &handles, &raw).ok());
    rocksdb::ColumnFamilyHandle* changes = nullptr;
    for (size_t i = 0; i < names.size(); ++i) {
      if (names[i] == "changes") changes = handles[i];
    }
    ASSERT_NE(changes, nullptr);
    ASSERT_TRUE(raw->Delete(rocksdb::WriteOptions(), changes, ChangeKey(4)).ok());
    for (auto* h : handles) raw->DestroyColumnFamilyHandle(h);
    delete raw;
  }
  Open();
  EXPECT_THAT(store_->VerifyIntegrity(), StatusIs(absl::StatusCode::kDataLoss));
}

}  // namespace
}  // namespace wmty::storage
