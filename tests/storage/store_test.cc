// storage::Store on a real RocksDB: versions, the change log, atomic group
// commit, idempotency records, deadlines, isolation of key ranges, reopen.
#include "storage/store.h"

#include <atomic>
#include <fstream>
#include <future>
#include <string>
#include <thread>
#include <vector>

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "absl/strings/str_cat.h"
#include "absl/synchronization/mutex.h"
#include "support/store_mutations.h"
#include "support/test_support.h"

namespace wmty::storage {
namespace {

using ::testing::ElementsAre;
using ::wmty::testing::Put;
using ::wmty::testing::StatusIs;
using ::wmty::testing::TempDir;

// A mutation that creates the record and refuses if it exists.
Mutation Create(const std::string& patient, const std::string& id, const std::string& payload) {
  Mutation m = Put(patient, id, payload);
  m.op = Change::CREATE;
  m.apply = [payload](const Record* current, const WriteStamp&, Record* next) {
    if (current != nullptr) return absl::AlreadyExistsError("exists");
    next->set_resource(payload);
    return absl::OkStatus();
  };
  return m;
}

class StoreTest : public ::testing::Test {
 protected:
  void SetUp() override { Open(); }

  void Open(std::function<absl::Time()> clock = nullptr) {
    StoreOptions options;
    options.path = dir_.path() + "/db";
    options.block_cache_bytes = size_t{8} << 20;
    if (clock) options.clock = std::move(clock);
    auto store = Store::Open(options);
    ASSERT_TRUE(store.ok()) << store.status();
    store_ = std::move(*store);
  }

  void Reopen() {
    store_->Close();
    store_.reset();
    Open();
  }

  void ExpectIntegrity() {
    auto s = store_->VerifyIntegrity();
    EXPECT_TRUE(s.ok()) << s;
  }

  std::vector<Change> Changes(uint64_t after = 0) {
    std::vector<Change> out;
    auto s = store_->NewReader()->ScanChanges(after, [&](const Change& c) {
      out.push_back(c);
      return true;
    });
    EXPECT_TRUE(s.ok()) << s;
    return out;
  }

  std::vector<std::string> CurrentIds(const std::string& patient, Kind kind, const std::string& after = "") {
    std::vector<std::string> ids;
    auto s = store_->NewReader()->ScanCurrent(patient, kind, after, [&](const Record& r) {
      ids.push_back(r.id());
      return true;
    });
    EXPECT_TRUE(s.ok()) << s;
    return ids;
  }

  TempDir dir_;
  std::unique_ptr<Store> store_;
};

TEST_F(StoreTest, EmptyStoreHasSequenceZeroAndIsConsistent) {
  EXPECT_EQ(store_->LastSequence(), 0u);
  ExpectIntegrity();
  EXPECT_TRUE(Changes().empty());
}

TEST_F(StoreTest, FirstCommitWritesVersionOneWithSequenceOne) {
  auto committed = store_->CommitAndWait(Create("p1", "G1", "v1"));
  ASSERT_TRUE(committed.ok()) << committed.status();
  EXPECT_FALSE(committed->replayed);
  EXPECT_EQ(committed->record.version(), 1);
  EXPECT_EQ(committed->record.sequence(), 1u);
  EXPECT_EQ(committed->record.patient_id(), "p1");
  EXPECT_EQ(committed->record.id(), "G1");
  EXPECT_EQ(committed->record.kind(), GOAL);
  EXPECT_EQ(store_->LastSequence(), 1u);

  auto reader = store_->NewReader();
  auto current = reader->GetCurrent(GOAL, "p1", "G1");
  ASSERT_TRUE(current.ok());
  ASSERT_TRUE(current->has_value());
  EXPECT_EQ((*current)->resource(), "v1");
  auto patient = reader->FindPatient(GOAL, "G1");
  ASSERT_TRUE(patient.ok());
  EXPECT_EQ(*patient, "p1");
  ExpectIntegrity();
}

TEST_F(StoreTest, EveryChangeIsANewImmutableVersion) {
  for (int i = 1; i <= 4; ++i) ASSERT_TRUE(store_->CommitAndWait(Put("p1", "G1", "v" + std::to_string(i))).ok());
  auto reader = store_->NewReader();
  std::vector<std::string> payloads;
  std::vector<int64_t> versions;
  ASSERT_TRUE(reader
                  ->ScanVersions(GOAL, "p1", "G1", 0,
                                 [&](const Record& r) {
                                   payloads.push_back(r.resource());
                                   versions.push_back(r.version());
                                   return true;
                                 })
                  .ok());
  EXPECT_THAT(payloads, ElementsAre("v1", "v2", "v3", "v4"));
  EXPECT_THAT(versions, ElementsAre(1, 2, 3, 4));
  auto v2 = reader->GetVersion(GOAL, "p1", "G1", 2);
  ASSERT_TRUE(v2.ok() && v2->has_value());
  EXPECT_EQ((*v2)->resource(), "v2");
  auto v5 = reader->GetVersion(GOAL, "p1", "G1", 5);
  ASSERT_TRUE(v5.ok());
  EXPECT_FALSE(v5->has_value());
  // after_version skips what was already seen.
  std::vector<int64_t> after_two;
  ASSERT_TRUE(reader
                  ->ScanVersions(GOAL, "p1", "G1", 2,
                                 [&](const Record& r) {
                                   after_two.push_back(r.version());
                                   return true;
                                 })
                  .ok());
  EXPECT_THAT(after_two, ElementsAre(3, 4));
}

TEST_F(StoreTest, ChangeLogHasOneEntryPerChangeInOrder) {
  ASSERT_TRUE(store_->CommitAndWait(Create("p1", "G1", "a")).ok());
  ASSERT_TRUE(store_->CommitAndWait(Put("p1", "G1", "b")).ok());
  ASSERT_TRUE(store_->CommitAndWait(Create("p2", "G2", "c")).ok());
  auto changes = Changes();
  ASSERT_EQ(changes.size(), 3u);
  EXPECT_EQ(changes[0].sequence(), 1u);
  EXPECT_EQ(changes[0].op(), Change::CREATE);
  EXPECT_EQ(changes[1].sequence(), 2u);
  EXPECT_EQ(changes[1].op(), Change::UPDATE);
  EXPECT_EQ(changes[1].id(), "G1");
  EXPECT_EQ(changes[1].version(), 2);
  EXPECT_EQ(changes[2].patient_id(), "p2");
  EXPECT_EQ(Changes(2).size(), 1u);
  EXPECT_TRUE(Changes(3).empty());
  // Nothing comes after the largest sequence (after + 1 must not wrap to 0).
  EXPECT_TRUE(Changes(UINT64_MAX).empty());
}

TEST_F(StoreTest, RefusedChangeWritesNothing) {
  ASSERT_TRUE(store_->CommitAndWait(Create("p1", "G1", "a")).ok());
  Mutation refused = Put("p1", "G1", "never");
  refused.apply = [](const Record*, const WriteStamp&, Record*) { return absl::AbortedError("stale"); };
  EXPECT_THAT(store_->CommitAndWait(std::move(refused)), StatusIs(absl::StatusCode::kAborted));
  EXPECT_EQ(store_->LastSequence(), 1u);
  auto current = store_->NewReader()->GetCurrent(GOAL, "p1", "G1");
  ASSERT_TRUE(current.ok() && current->has_value());
  EXPECT_EQ((*current)->version(), 1);
  ExpectIntegrity();
  // The next accepted change takes the next sequence: no gap.
  auto next = store_->CommitAndWait(Put("p1", "G1", "b"));
  ASSERT_TRUE(next.ok());
  EXPECT_EQ(next->record.sequence(), 2u);
  ExpectIntegrity();
}

TEST_F(StoreTest, ConcurrentCommitsGetDistinctGapFreeSequences) {
  constexpr int kThreads = 8;
  constexpr int kPerThread = 25;
  std::vector<std::thread> threads;
  std::atomic<int> failures{0};
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&, t] {
      for (int i = 0; i < kPerThread; ++i) {
        // Ids are unique per kind across patients (the id index maps id -> patient).
        auto r = store_->CommitAndWait(Put(absl::StrCat("p", t), absl::StrCat("G", t, "-", i), "x"));
        if (!r.ok()) ++failures;
      }
    });
  }
  for (auto& t : threads) t.join();
  EXPECT_EQ(failures.load(), 0);
  EXPECT_EQ(store_->LastSequence(), static_cast<uint64_t>(kThreads * kPerThread));
  auto changes = Changes();
  ASSERT_EQ(changes.size(), static_cast<size_t>(kThreads * kPerThread));
  for (size_t i = 0; i < changes.size(); ++i) EXPECT_EQ(changes[i].sequence(), i + 1);
  ExpectIntegrity();
}

TEST_F(StoreTest, ChangesQueuedTogetherSeeEachOther) {
  // Queue a create and two updates without waiting: whether or not they land
  // in one group commit, each must see the previous one.
  std::promise<absl::StatusOr<Committed>> p1, p2, p3;
  store_->Commit(Create("p1", "G1", "a"), [&](absl::StatusOr<Committed> r) { p1.set_value(std::move(r)); });
  Mutation second = Put("p1", "G1", "b");
  second.apply = [](const Record* current, const WriteStamp& stamp, Record* next) {
    if (current == nullptr || current->resource() != "a") return absl::InternalError("did not see the create");
    next->set_resource("b");
    return absl::OkStatus();
  };
  store_->Commit(std::move(second), [&](absl::StatusOr<Committed> r) { p2.set_value(std::move(r)); });
  store_->Commit(Create("p1", "G1", "dup"), [&](absl::StatusOr<Committed> r) { p3.set_value(std::move(r)); });
  auto r1 = p1.get_future().get();
  auto r2 = p2.get_future().get();
  auto r3 = p3.get_future().get();
  ASSERT_TRUE(r1.ok()) << r1.status();
  ASSERT_TRUE(r2.ok()) << r2.status();
  EXPECT_EQ(r2->record.version(), 2);
  EXPECT_THAT(r3, StatusIs(absl::StatusCode::kAlreadyExists));
  EXPECT_EQ(store_->LastSequence(), 2u);
  ExpectIntegrity();
}

TEST_F(StoreTest, StoredStateAndTheBatchsOwnChangesAreBothSeenWhenQueuedTogether) {
  // Stored first: a record to update and a request id to retry.
  ASSERT_TRUE(store_->CommitAndWait(Create("p1", "G1", "a")).ok());
  Mutation first = Create("p2", "G2", "x");
  first.request_id = "req-2";
  first.fingerprint = "fp";
  ASSERT_TRUE(store_->CommitAndWait(std::move(first)).ok());

  // Then, queued without waiting (so that they share group commits): an
  // update of the stored record, a retry of the stored request, a create
  // with a new request id and its retry, and a second update of G1.
  std::vector<std::promise<absl::StatusOr<Committed>>> done(5);
  auto commit = [&](int i, Mutation m) {
    store_->Commit(std::move(m), [&done, i](absl::StatusOr<Committed> r) { done[i].set_value(std::move(r)); });
  };
  auto update_of = [](std::string expected, std::string next_payload) {
    return [expected, next_payload](const Record* current, const WriteStamp&, Record* next) {
      if (current == nullptr || current->resource() != expected) return absl::InternalError("wrong current");
      next->set_resource(next_payload);
      return absl::OkStatus();
    };
  };
  Mutation update = Put("p1", "G1", "b");
  update.apply = update_of("a", "b");
  commit(0, std::move(update));
  Mutation retry_stored = Create("p2", "G-retry", "x");
  retry_stored.request_id = "req-2";
  retry_stored.fingerprint = "fp";
  commit(1, std::move(retry_stored));
  Mutation fresh = Create("p3", "G3", "y");
  fresh.request_id = "req-3";
  fresh.fingerprint = "fp";
  commit(2, std::move(fresh));
  Mutation retry_fresh = Create("p3", "G3-retry", "y");
  retry_fresh.request_id = "req-3";
  retry_fresh.fingerprint = "fp";
  commit(3, std::move(retry_fresh));
  Mutation again = Put("p1", "G1", "c");
  again.apply = update_of("b", "c");
  commit(4, std::move(again));

  std::vector<absl::StatusOr<Committed>> r;
  for (auto& p : done) r.push_back(p.get_future().get());
  for (int i = 0; i < 5; ++i) ASSERT_TRUE(r[i].ok()) << i << ": " << r[i].status();
  EXPECT_EQ(r[0]->record.version(), 2);
  EXPECT_TRUE(r[1]->replayed);
  EXPECT_EQ(r[1]->record.id(), "G2");
  EXPECT_FALSE(r[2]->replayed);
  EXPECT_TRUE(r[3]->replayed);
  EXPECT_EQ(r[3]->record.id(), "G3");
  EXPECT_EQ(r[4]->record.version(), 3);
  EXPECT_EQ(r[4]->record.resource(), "c");
  EXPECT_EQ(store_->LastSequence(), 5u);  // 2 stored, then update, create, update
  EXPECT_THAT(CurrentIds("p3", GOAL), ElementsAre("G3"));
  ExpectIntegrity();
}

TEST_F(StoreTest, ANewIdIsNotLookedUp) {
  // new_id is the caller's promise that no record has the id (the domain's
  // fresh ULIDs); the store keeps it by not reading the current record, which
  // is the point of the flag: a create costs one lookup less. Shown here by
  // breaking the promise on purpose.
  ASSERT_TRUE(store_->CommitAndWait(Create("p1", "G1", "a")).ok());
  bool saw_current = true;
  Mutation m = Put("p1", "G1", "b");
  m.new_id = true;
  m.apply = [&saw_current](const Record* current, const WriteStamp&, Record* next) {
    saw_current = current != nullptr;
    next->set_resource("b");
    return absl::OkStatus();
  };
  ASSERT_TRUE(store_->CommitAndWait(std::move(m)).ok());
  EXPECT_FALSE(saw_current);

  // Without the flag the same change sees the stored record.
  Mutation checked = Put("p1", "G1", "c");
  checked.apply = [&saw_current](const Record* current, const WriteStamp&, Record* next) {
    saw_current = current != nullptr;
    next->set_resource("c");
    return absl::OkStatus();
  };
  ASSERT_TRUE(store_->CommitAndWait(std::move(checked)).ok());
  EXPECT_TRUE(saw_current);
}

TEST_F(StoreTest, SameRequestIdAndFingerprintReplaysTheFirstResult) {
  Mutation first = Create("p1", "G1", "a");
  first.request_id = "req-1";
  first.fingerprint = "fp";
  auto r1 = store_->CommitAndWait(std::move(first));
  ASSERT_TRUE(r1.ok());
  // A retry generates a fresh id (as the domain does); the store must still
  // return the first record and write nothing.
  Mutation retry = Create("p1", "G-other", "a");
  retry.request_id = "req-1";
  retry.fingerprint = "fp";
  auto r2 = store_->CommitAndWait(std::move(retry));
  ASSERT_TRUE(r2.ok()) << r2.status();
  EXPECT_TRUE(r2->replayed);
  EXPECT_EQ(r2->record.id(), "G1");
  EXPECT_EQ(r2->record.version(), 1);
  EXPECT_EQ(store_->LastSequence(), 1u);
  EXPECT_THAT(CurrentIds("p1", GOAL), ElementsAre("G1"));
}

TEST_F(StoreTest, SameRequestIdWithAnotherFingerprintIsAlreadyExists) {
  Mutation first = Create("p1", "G1", "a");
  first.request_id = "req-1";
  first.fingerprint = "fp-a";
  ASSERT_TRUE(store_->CommitAndWait(std::move(first)).ok());
  Mutation other = Create("p1", "G2", "b");
  other.request_id = "req-1";
  other.fingerprint = "fp-b";
  EXPECT_THAT(store_->CommitAndWait(std::move(other)), StatusIs(absl::StatusCode::kAlreadyExists));
  EXPECT_EQ(store_->LastSequence(), 1u);
}

TEST_F(StoreTest, IdenticalRequestsQueuedTogetherWriteOnce) {
  constexpr int kCopies = 8;
  std::vector<std::promise<absl::StatusOr<Committed>>> promises(kCopies);
  for (int i = 0; i < kCopies; ++i) {
    Mutation m = Create("p1", absl::StrCat("G", i), "a");
    m.request_id = "req-1";
    m.fingerprint = "fp";
    store_->Commit(std::move(m), [&, i](absl::StatusOr<Committed> r) { promises[i].set_value(std::move(r)); });
  }
  int written = 0;
  for (auto& p : promises) {
    auto r = p.get_future().get();
    ASSERT_TRUE(r.ok()) << r.status();
    EXPECT_EQ(r->record.id(), "G0");
    written += r->replayed ? 0 : 1;
  }
  EXPECT_EQ(written, 1);
  EXPECT_EQ(store_->LastSequence(), 1u);
  EXPECT_EQ(CurrentIds("p1", GOAL).size(), 1u);
  ExpectIntegrity();
}

TEST_F(StoreTest, RequestIdsAreRememberedAcrossReopen) {
  Mutation first = Create("p1", "G1", "a");
  first.request_id = "req-1";
  first.fingerprint = "fp";
  ASSERT_TRUE(store_->CommitAndWait(std::move(first)).ok());
  Reopen();
  Mutation retry = Create("p1", "G2", "a");
  retry.request_id = "req-1";
  retry.fingerprint = "fp";
  auto r = store_->CommitAndWait(std::move(retry));
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_TRUE(r->replayed);
  EXPECT_EQ(r->record.id(), "G1");
  EXPECT_EQ(store_->LastSequence(), 1u);
}

TEST_F(StoreTest, PastDeadlineIsNotCommitted) {
  Mutation late = Create("p1", "G1", "a");
  late.deadline = absl::Now() - absl::Milliseconds(1);
  EXPECT_THAT(store_->CommitAndWait(std::move(late)), StatusIs(absl::StatusCode::kDeadlineExceeded));
  EXPECT_EQ(store_->LastSequence(), 0u);
  EXPECT_TRUE(CurrentIds("p1", GOAL).empty());
}

TEST_F(StoreTest, DeadlineIsJudgedByTheStoreClock) {
  const absl::Time fixed = absl::FromUnixSeconds(1800000000);
  store_->Close();
  Open([fixed] { return fixed; });
  Mutation on_time = Create("p1", "G1", "a");
  on_time.deadline = fixed;  // not yet past
  auto r = store_->CommitAndWait(std::move(on_time));
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_EQ(r->record.update_time_micros(), absl::ToUnixMicros(fixed));
  Mutation late = Create("p1", "G2", "a");
  late.deadline = fixed - absl::Microseconds(1);
  EXPECT_THAT(store_->CommitAndWait(std::move(late)), StatusIs(absl::StatusCode::kDeadlineExceeded));
}

TEST_F(StoreTest, ScanCurrentStaysInsideOnePatientAndKind) {
  for (const char* patient : {"a", "a0", "ab", "b"}) {
    ASSERT_TRUE(store_->CommitAndWait(Create(patient, std::string("G-") + patient, "x")).ok());
  }
  ASSERT_TRUE(store_->CommitAndWait(Put("a", "W-a", "x", WHAT_MATTERS)).ok());
  EXPECT_THAT(CurrentIds("a", GOAL), ElementsAre("G-a"));
  EXPECT_THAT(CurrentIds("a", WHAT_MATTERS), ElementsAre("W-a"));
  EXPECT_THAT(CurrentIds("a0", GOAL), ElementsAre("G-a0"));
  EXPECT_THAT(CurrentIds("ab", GOAL), ElementsAre("G-ab"));
  EXPECT_TRUE(CurrentIds("a", PREFERENCE).empty());
  EXPECT_TRUE(CurrentIds("c", GOAL).empty());
}

// Records spread over many tables (tiny memtables: flushes and compactions
// all along): scans and the integrity check see every one of them.
TEST(StoreTablesTest, ScansFindEveryRecordAcrossFlushedTables) {
  TempDir dir;
  StoreOptions options;
  options.path = dir.path() + "/db";
  options.write_buffer_bytes = 64 << 10;
  auto store = Store::Open(options);
  ASSERT_TRUE(store.ok()) << store.status();
  const std::string payload(2000, 'x');
  std::vector<std::future<absl::StatusOr<Committed>>> writes;
  for (int p = 0; p < 40; ++p) {
    for (Kind kind : {WHAT_MATTERS, GOAL, PREFERENCE}) {
      for (int i = 0; i < 5; ++i) {
        writes.push_back(std::async(std::launch::async, [&, p, kind, i] {
          return (*store)->CommitAndWait(
              Put(absl::StrCat("p", p), absl::StrCat("R", static_cast<int>(kind), "-", p, "-", i), payload, kind));
        }));
      }
    }
    for (auto& w : writes) ASSERT_TRUE(w.get().ok());
    writes.clear();
  }
  auto reader = (*store)->NewReader();
  for (int p = 0; p < 40; ++p) {
    for (Kind kind : {WHAT_MATTERS, GOAL, PREFERENCE}) {
      std::vector<std::string> ids;
      ASSERT_TRUE(reader
                      ->ScanCurrent(absl::StrCat("p", p), kind, "",
                                    [&](const Record& r) {
                                      EXPECT_EQ(r.kind(), kind);
                                      ids.push_back(r.id());
                                      return true;
                                    })
                      .ok());
      const std::string k = absl::StrCat("R", static_cast<int>(kind), "-", p, "-");  // ids are unique per kind
      EXPECT_THAT(ids, ElementsAre(k + "0", k + "1", k + "2", k + "3", k + "4")) << "p" << p;
    }
  }
  int goals = 0;
  ASSERT_TRUE(reader->ScanCurrentAllPatients(GOAL, "", "", [&](const Record&) { return ++goals, true; }).ok());
  EXPECT_EQ(goals, 40 * 5);
  const absl::Status integrity = (*store)->VerifyIntegrity();
  EXPECT_TRUE(integrity.ok()) << integrity;
}

TEST(StoreTablesTest, StatsCountLevelZeroFilesAndNoStallUnderALightLoad) {
  TempDir dir;
  StoreOptions options;
  options.path = dir.path() + "/db";
  options.write_buffer_bytes = 64 << 10;
  auto store = Store::Open(options);
  ASSERT_TRUE(store.ok()) << store.status();
  EXPECT_EQ((*store)->Stats().l0_files, 0u);
  // ~100 KB into `current` and `versions`: at least one flush each, fewer
  // than the 4 level-0 files that start a compaction.
  for (int i = 0; i < 50; ++i) {
    ASSERT_TRUE((*store)->CommitAndWait(Put("p1", absl::StrCat("G", i), std::string(2000, 'x'))).ok());
  }
  StoreStats stats;
  for (int i = 0; i < 100 && (stats = (*store)->Stats()).l0_files == 0; ++i) absl::SleepFor(absl::Milliseconds(50));
  EXPECT_GE(stats.l0_files, 1u) << "flushed tables are counted";
  EXPECT_EQ(stats.write_stall_micros, 0u);
  EXPECT_FALSE(stats.writes_delayed);
}

TEST_F(StoreTest, ScanCurrentResumesStrictlyAfterAnId) {
  for (const char* id : {"A", "AB", "ABC", "B", "C"}) ASSERT_TRUE(store_->CommitAndWait(Create("p1", id, "x")).ok());
  EXPECT_THAT(CurrentIds("p1", GOAL), ElementsAre("A", "AB", "ABC", "B", "C"));
  EXPECT_THAT(CurrentIds("p1", GOAL, "A"), ElementsAre("AB", "ABC", "B", "C"));
  EXPECT_THAT(CurrentIds("p1", GOAL, "AB"), ElementsAre("ABC", "B", "C"));
  EXPECT_THAT(CurrentIds("p1", GOAL, "AA"), ElementsAre("AB", "ABC", "B", "C"));  // id no longer present
  EXPECT_TRUE(CurrentIds("p1", GOAL, "C").empty());
}

TEST_F(StoreTest, ReaderIsASnapshot) {
  ASSERT_TRUE(store_->CommitAndWait(Create("p1", "G1", "old")).ok());
  auto reader = store_->NewReader();
  ASSERT_TRUE(store_->CommitAndWait(Put("p1", "G1", "new")).ok());
  auto seen = reader->GetCurrent(GOAL, "p1", "G1");
  ASSERT_TRUE(seen.ok() && seen->has_value());
  EXPECT_EQ((*seen)->resource(), "old");
  auto fresh = store_->NewReader()->GetCurrent(GOAL, "p1", "G1");
  ASSERT_TRUE(fresh.ok() && fresh->has_value());
  EXPECT_EQ((*fresh)->resource(), "new");
}

TEST_F(StoreTest, DataAndSequenceSurviveReopen) {
  ASSERT_TRUE(store_->CommitAndWait(Create("p1", "G1", "a")).ok());
  ASSERT_TRUE(store_->CommitAndWait(Put("p1", "G1", "b")).ok());
  Reopen();
  EXPECT_EQ(store_->LastSequence(), 2u);
  auto current = store_->NewReader()->GetCurrent(GOAL, "p1", "G1");
  ASSERT_TRUE(current.ok() && current->has_value());
  EXPECT_EQ((*current)->resource(), "b");
  EXPECT_EQ((*current)->version(), 2);
  auto next = store_->CommitAndWait(Put("p1", "G1", "c"));
  ASSERT_TRUE(next.ok());
  EXPECT_EQ(next->record.sequence(), 3u);
  ExpectIntegrity();
}

TEST_F(StoreTest, SecretIsCreatedOnceAndKept) {
  auto s1 = store_->GetOrCreateSecret("page-token-key");
  ASSERT_TRUE(s1.ok());
  EXPECT_EQ(s1->size(), 32u);
  auto s2 = store_->GetOrCreateSecret("page-token-key");
  ASSERT_TRUE(s2.ok());
  EXPECT_EQ(*s1, *s2);
  auto other = store_->GetOrCreateSecret("other");
  ASSERT_TRUE(other.ok());
  EXPECT_NE(*s1, *other);
  Reopen();
  auto s3 = store_->GetOrCreateSecret("page-token-key");
  ASSERT_TRUE(s3.ok());
  EXPECT_EQ(*s1, *s3);
}

TEST_F(StoreTest, CommitAfterCloseIsUnavailable) {
  store_->Close();
  EXPECT_THAT(store_->CommitAndWait(Create("p1", "G1", "a")), StatusIs(absl::StatusCode::kUnavailable));
  store_->Close();  // idempotent
}

TEST_F(StoreTest, CloseCommitsWhatWasQueued) {
  std::vector<std::promise<absl::StatusOr<Committed>>> promises(20);
  for (int i = 0; i < 20; ++i) {
    store_->Commit(Create("p1", absl::StrCat("G", i), "a"),
                   [&, i](absl::StatusOr<Committed> r) { promises[i].set_value(std::move(r)); });
  }
  store_->Close();
  for (auto& p : promises) EXPECT_TRUE(p.get_future().get().ok());
  Open();
  EXPECT_EQ(store_->LastSequence(), 20u);
  EXPECT_EQ(CurrentIds("p1", GOAL).size(), 20u);
}

TEST(StoreOpenTest, SecondOpenOfTheSameDirectoryIsUnavailable) {
  TempDir dir;
  StoreOptions options;
  options.path = dir.path() + "/db";
  options.block_cache_bytes = size_t{8} << 20;
  auto first = Store::Open(options);
  ASSERT_TRUE(first.ok()) << first.status();
  EXPECT_THAT(Store::Open(options), StatusIs(absl::StatusCode::kUnavailable));
}

TEST(StoreOpenTest, UnusablePathIsRefused) {
  TempDir dir;
  const std::string file = dir.path() + "/a-file";
  std::ofstream(file) << "not a directory";
  StoreOptions options;
  options.path = file + "/db";
  EXPECT_THAT(Store::Open(options), StatusIs(absl::StatusCode::kUnavailable));
  options.path = "";
  EXPECT_THAT(Store::Open(options), StatusIs(absl::StatusCode::kInvalidArgument));
}

}  // namespace
}  // namespace wmty::storage
