// storage::Store on a file system that fails on demand (disk full, I/O
// error): a failed write answers UNAVAILABLE and leaves nothing visible, later
// writes fail fast while reads keep working, and once the fault clears the
// store recovers by itself, with a gap-free change log, also after reopening.
#include <ostream>
#include <string>
#include <vector>

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "storage/store.h"
#include "support/fault_injection_fs.h"
#include "support/store_mutations.h"
#include "support/test_support.h"

namespace wmty::storage {
namespace {

using ::wmty::testing::FaultInjectionFs;
using ::wmty::testing::Put;
using ::wmty::testing::StatusIs;
using ::wmty::testing::TempDir;
using WriteFault = FaultInjectionFs::WriteFault;
using FaultScope = FaultInjectionFs::FaultScope;

struct Fault {
  WriteFault fault;
  FaultScope scope;
  std::string name;
  // RocksDB resumes after "no space"; it deems other I/O errors on its log
  // fatal, and only reopening the database (a restart of wmtyd) helps.
  bool recovers_without_restart;
};

void PrintTo(const Fault& fault, std::ostream* os) { *os << fault.name; }

class StoreFaultsTest : public ::testing::TestWithParam<Fault> {
 protected:
  void SetUp() override { Open(); }
  void TearDown() override {
    if (store_ != nullptr) store_->Close();
  }

  void Open() {
    StoreOptions options;
    options.path = dir_.path() + "/db";
    options.block_cache_bytes = size_t{8} << 20;
    options.env = env_;
    // Quick retries keep the test short; the backoff itself is not under test.
    options.write_retry_initial_backoff = absl::Milliseconds(5);
    options.write_retry_max_backoff = absl::Milliseconds(50);
    auto store = Store::Open(options);
    ASSERT_TRUE(store.ok()) << store.status();
    store_ = std::move(*store);
  }
  void Reopen() {
    store_->Close();
    store_.reset();
    Open();
  }

  std::optional<std::string> Payload(const std::string& patient, const std::string& id) {
    auto record = store_->NewReader()->GetCurrent(GOAL, patient, id);
    EXPECT_TRUE(record.ok()) << record.status();
    if (!record.ok() || !record->has_value()) return std::nullopt;
    return (*record)->resource();
  }

  // Commits until the store takes writes again (it retries Resume only when a
  // write is waiting, after its backoff); fails the test after 20 s.
  absl::StatusOr<Committed> CommitWhenRecovered(const std::string& id, const std::string& payload) {
    const absl::Time give_up = absl::Now() + absl::Seconds(20);
    while (true) {
      auto result = store_->CommitAndWait(Put("p1", id, payload));
      if (result.ok() || result.status().code() != absl::StatusCode::kUnavailable || absl::Now() > give_up) {
        return result;
      }
    }
  }

  void ExpectIntegrity() {
    auto s = store_->VerifyIntegrity();
    EXPECT_TRUE(s.ok()) << s;
  }

  std::shared_ptr<FaultInjectionFs> fs_ = std::make_shared<FaultInjectionFs>();
  std::shared_ptr<rocksdb::Env> env_ = FaultInjectionFs::NewEnv(fs_);
  TempDir dir_;
  std::unique_ptr<Store> store_;
};

TEST_P(StoreFaultsTest, FailedWritesLeaveNothingReadsWorkAndTheStoreRecoversByItself) {
  ASSERT_TRUE(store_->CommitAndWait(Put("p1", "before", "written before the disk filled")).ok());
  uint64_t sequence_before = store_->LastSequence();
  // Reopening flushes what the log replays: the memtables are empty, so
  // RocksDB's Resume() has nothing to flush and would keep the log that holds
  // the failed write (the hard case for recovery).
  Reopen();

  fs_->SetWriteFault(GetParam().fault, GetParam().scope);
  EXPECT_THAT(store_->CommitAndWait(Put("p1", "lost-1", "not written")), StatusIs(absl::StatusCode::kUnavailable));
  EXPECT_GT(fs_->refused_writes(), 0u);
  EXPECT_FALSE(store_->WritesAvailable());
  // Later writes fail fast (or fail again on a retry): never written.
  EXPECT_THAT(store_->CommitAndWait(Put("p1", "lost-2", "not written")), StatusIs(absl::StatusCode::kUnavailable));
  EXPECT_THAT(store_->CommitAndWait(Put("p1", "before", "not written")), StatusIs(absl::StatusCode::kUnavailable));
  // Reads keep working and see nothing of the failed writes.
  EXPECT_EQ(Payload("p1", "before"), "written before the disk filled");
  EXPECT_EQ(Payload("p1", "lost-1"), std::nullopt);
  EXPECT_EQ(Payload("p1", "lost-2"), std::nullopt);
  EXPECT_EQ(store_->LastSequence(), sequence_before);
  ExpectIntegrity();

  fs_->SetWriteFault(WriteFault::kNone);
  // Whether the write that failed comes back after a restart.
  bool failed_write_replayed = false;
  if (!GetParam().recovers_without_restart) {
    Reopen();
    ExpectIntegrity();
    // When only its sync failed, the failed write's bytes are in the log and
    // the restart's replay may bring it back: whole (with its own sequence
    // number), never in part. The caller was told to retry with its request id.
    const auto lost = Payload("p1", "lost-1");
    failed_write_replayed = lost.has_value();
    if (GetParam().scope == FaultScope::kWritesAndSyncs) {
      EXPECT_EQ(lost, std::nullopt);
    } else if (failed_write_replayed) {
      EXPECT_EQ(*lost, "not written");
      EXPECT_EQ(store_->LastSequence(), sequence_before + 1);
      sequence_before = store_->LastSequence();
    }
    EXPECT_EQ(Payload("p1", "lost-2"), std::nullopt);
  }
  auto after = CommitWhenRecovered("after", "written after space was freed");
  ASSERT_TRUE(after.ok()) << after.status();
  EXPECT_TRUE(store_->WritesAvailable());
  // The failed batch's sequence numbers are reused: no gap, no duplicate.
  EXPECT_EQ(after->record.sequence(), sequence_before + 1);
  ASSERT_TRUE(store_->CommitAndWait(Put("p1", "before", "updated after recovery")).ok());
  ExpectIntegrity();

  // A power cut now keeps what was acknowledged and brings back nothing of
  // the failed writes (with sync-only faults, their bytes reached the log).
  fs_->SimulatePowerLoss();
  store_.reset();
  ASSERT_TRUE(fs_->DropUnsyncedData().ok());
  fs_->Reset();
  Open();
  ExpectIntegrity();
  EXPECT_EQ(Payload("p1", "before"), "updated after recovery");
  EXPECT_EQ(Payload("p1", "after"), "written after space was freed");
  if (!failed_write_replayed) {
    EXPECT_EQ(Payload("p1", "lost-1"), std::nullopt);
  }
  EXPECT_EQ(Payload("p1", "lost-2"), std::nullopt);
  EXPECT_EQ(store_->LastSequence(), sequence_before + 2);
}

INSTANTIATE_TEST_SUITE_P(Faults, StoreFaultsTest,
                         ::testing::Values(Fault{WriteFault::kNoSpace, FaultScope::kWritesAndSyncs, "DiskFull", true},
                                           Fault{WriteFault::kNoSpace, FaultScope::kSyncsOnly, "DiskFullAtSync", true},
                                           Fault{WriteFault::kIOError, FaultScope::kWritesAndSyncs, "IOError", false},
                                           Fault{WriteFault::kIOError, FaultScope::kSyncsOnly, "IOErrorAtSync", false}),
                         [](const ::testing::TestParamInfo<Fault>& info) { return info.param.name; });

}  // namespace
}  // namespace wmty::storage
