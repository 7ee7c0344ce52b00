// storage::Backups on a real Store and real RocksDB backup directories:
// create, list, verify (with a damaged file), retention, scheduled backups,
// and restore into a new directory (identical data, integrity, refusals).
#include "storage/backup.h"

#include <atomic>
#include <filesystem>
#include <fstream>
#include <map>
#include <string>
#include <thread>
#include <vector>

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "absl/strings/str_cat.h"
#include "absl/synchronization/mutex.h"
#include "storage/store.h"
#include "support/store_mutations.h"
#include "support/test_support.h"

namespace wmty::storage {
namespace {

namespace fs = std::filesystem;
using ::testing::ElementsAre;
using ::testing::IsEmpty;
using ::wmty::testing::Put;
using ::wmty::testing::StatusIs;
using ::wmty::testing::TempDir;

// Every stored version, by (patient, id, version), as stored bytes.
std::map<std::string, std::string> Versions(Store& store) {
  std::map<std::string, std::string> out;
  auto reader = store.NewReader();
  std::vector<Change> changes;
  EXPECT_TRUE(reader
                  ->ScanChanges(0,
                                [&](const Change& c) {
                                  changes.push_back(c);
                                  return true;
                                })
                  .ok());
  for (const Change& c : changes) {
    auto v = reader->GetVersion(c.kind(), c.patient_id(), c.id(), c.version());
    EXPECT_TRUE(v.ok() && v->has_value()) << c.ShortDebugString();
    if (v.ok() && v->has_value()) {
      out[absl::StrCat(c.patient_id(), "/", c.id(), "@", c.version())] = (*v)->SerializeAsString();
    }
  }
  return out;
}

class BackupTest : public ::testing::Test {
 protected:
  void SetUp() override {
    StoreOptions options;
    options.path = data_dir();
    options.block_cache_bytes = size_t{8} << 20;
    auto store = Store::Open(options);
    ASSERT_TRUE(store.ok()) << store.status();
    store_ = std::move(*store);
  }

  std::string data_dir() const { return dir_.path() + "/db"; }
  std::string backup_dir() const { return dir_.path() + "/backups"; }

  std::unique_ptr<Backups> OpenBackups(BackupOptions options = {}) {
    if (options.dir.empty()) options.dir = backup_dir();
    auto backups = Backups::Open(store_.get(), options);
    EXPECT_TRUE(backups.ok()) << backups.status();
    return backups.ok() ? std::move(*backups) : nullptr;
  }

  void Write(int n, const std::string& tag) {
    for (int i = 0; i < n; ++i) {
      // Every third write updates an earlier record, so there are versions.
      const std::string id = absl::StrCat("g", i % 3 == 2 ? i - 1 : i);
      ASSERT_TRUE(store_->CommitAndWait(Put("p1", id, absl::StrCat(tag, "-", i))).ok());
    }
  }

  // Restores and opens the result; checks integrity.
  std::unique_ptr<Store> RestoreAndOpen(std::optional<uint32_t> id, const std::string& into,
                                        Backups::RestoreResult* result = nullptr) {
    auto restored = Backups::Restore({backup_dir(), id, into});
    EXPECT_TRUE(restored.ok()) << restored.status();
    if (!restored.ok()) return nullptr;
    if (result != nullptr) *result = *restored;
    StoreOptions options;
    options.path = into;
    options.block_cache_bytes = size_t{8} << 20;
    auto store = Store::Open(options);
    EXPECT_TRUE(store.ok()) << store.status();
    if (!store.ok()) return nullptr;
    auto integrity = (*store)->VerifyIntegrity();
    EXPECT_TRUE(integrity.ok()) << integrity;
    return std::move(*store);
  }

  TempDir dir_;
  std::unique_ptr<Store> store_;
};

TEST_F(BackupTest, CreateListVerify) {
  Write(20, "a");
  auto backups = OpenBackups();
  ASSERT_NE(backups, nullptr);
  auto created = backups->Create();
  ASSERT_TRUE(created.ok()) << created.status();
  EXPECT_EQ(created->id, 1u);
  EXPECT_EQ(created->last_sequence, store_->LastSequence());
  EXPECT_GT(created->size_bytes, 0u);
  EXPECT_GT(created->file_count, 0u);
  EXPECT_LE(absl::Now() - created->time, absl::Minutes(5));

  std::vector<uint32_t> corrupt = {42};
  auto listed = backups->List(&corrupt);
  ASSERT_TRUE(listed.ok()) << listed.status();
  ASSERT_EQ(listed->size(), 1u);
  EXPECT_EQ((*listed)[0].id, 1u);
  EXPECT_EQ((*listed)[0].last_sequence, created->last_sequence);
  EXPECT_THAT(corrupt, IsEmpty());

  auto verified = backups->Verify(1);
  ASSERT_TRUE(verified.ok()) << verified.status();
  EXPECT_EQ(verified->last_sequence, created->last_sequence);
  EXPECT_THAT(backups->Verify(2), StatusIs(absl::StatusCode::kNotFound));
}

TEST_F(BackupTest, RestoreIntoNewDirectoryHasIdenticalData) {
  Write(30, "before");
  const auto at_backup = Versions(*store_);
  const uint64_t sequence_at_backup = store_->LastSequence();
  auto backups = OpenBackups();
  ASSERT_NE(backups, nullptr);
  ASSERT_TRUE(backups->Create().ok());
  Write(5, "after");  // not in the backup

  Backups::RestoreResult result;
  auto restored = RestoreAndOpen(std::nullopt, dir_.path() + "/restored", &result);
  ASSERT_NE(restored, nullptr);
  EXPECT_EQ(result.backup.id, 1u);
  EXPECT_EQ(result.last_sequence, sequence_at_backup);
  EXPECT_EQ(restored->LastSequence(), sequence_at_backup);
  EXPECT_EQ(Versions(*restored), at_backup);
  EXPECT_NE(Versions(*store_), at_backup);  // the later writes are in the source only
}

TEST_F(BackupTest, RestoreByIdAndLatest) {
  Write(10, "one");
  const auto first = Versions(*store_);
  auto backups = OpenBackups();
  ASSERT_NE(backups, nullptr);
  ASSERT_TRUE(backups->Create().ok());
  Write(10, "two");
  const auto second = Versions(*store_);
  ASSERT_TRUE(backups->Create().ok());

  auto one = RestoreAndOpen(1, dir_.path() + "/r1");
  ASSERT_NE(one, nullptr);
  EXPECT_EQ(Versions(*one), first);
  auto latest = RestoreAndOpen(std::nullopt, dir_.path() + "/r2");
  ASSERT_NE(latest, nullptr);
  EXPECT_EQ(Versions(*latest), second);
  EXPECT_THAT(Backups::Restore({backup_dir(), 7, dir_.path() + "/r3"}), StatusIs(absl::StatusCode::kNotFound));
}

TEST_F(BackupTest, RestoreRefusesNonEmptyTargetAndLeavesItAlone) {
  Write(3, "x");
  auto backups = OpenBackups();
  ASSERT_NE(backups, nullptr);
  ASSERT_TRUE(backups->Create().ok());
  const std::string target = dir_.path() + "/occupied";
  fs::create_directories(target);
  { std::ofstream(target + "/keep.txt") << "not a database"; }
  EXPECT_THAT(Backups::Restore({backup_dir(), std::nullopt, target}), StatusIs(absl::StatusCode::kFailedPrecondition));
  // Nor over the live data directory.
  EXPECT_THAT(Backups::Restore({backup_dir(), std::nullopt, data_dir()}),
              StatusIs(absl::StatusCode::kFailedPrecondition));
  std::vector<std::string> names;
  for (const auto& e : fs::directory_iterator(target)) names.push_back(e.path().filename().string());
  EXPECT_THAT(names, ElementsAre("keep.txt"));
  EXPECT_THAT(Backups::Restore({dir_.path() + "/no-such-dir", std::nullopt, dir_.path() + "/new"}),
              StatusIs(absl::StatusCode::kNotFound));
}

TEST_F(BackupTest, RestoreWithoutAnyBackupIsNotFound) {
  auto backups = OpenBackups();
  ASSERT_NE(backups, nullptr);
  EXPECT_THAT(Backups::Restore({backup_dir(), std::nullopt, dir_.path() + "/new"}),
              StatusIs(absl::StatusCode::kNotFound));
}

// Flips one byte in the middle of every file of the backup's SSTs (same
// size, so only the checksum can tell).
int CorruptSstFiles(const std::string& backup_dir) {
  int corrupted = 0;
  for (const auto& e : fs::recursive_directory_iterator(backup_dir)) {
    if (!e.is_regular_file() || e.path().extension() != ".sst") continue;
    std::fstream f(e.path(), std::ios::in | std::ios::out | std::ios::binary);
    const auto size = static_cast<std::streamoff>(fs::file_size(e.path()));
    f.seekg(size / 2);
    char c = 0;
    f.get(c);
    f.seekp(size / 2);
    f.put(static_cast<char>(c ^ 0x5A));
    ++corrupted;
  }
  return corrupted;
}

TEST_F(BackupTest, DamagedBackupFailsVerifyAndIsNotRestored) {
  Write(50, "payload");
  auto backups = OpenBackups();
  ASSERT_NE(backups, nullptr);
  ASSERT_TRUE(backups->Create().ok());
  ASSERT_TRUE(backups->Verify(1).ok());
  ASSERT_GT(CorruptSstFiles(backup_dir()), 0);

  EXPECT_THAT(backups->Verify(1), StatusIs(absl::StatusCode::kDataLoss));
  const std::string target = dir_.path() + "/restored";
  EXPECT_THAT(Backups::Restore({backup_dir(), 1, target}), StatusIs(absl::StatusCode::kDataLoss));
  EXPECT_TRUE(!fs::exists(target) || fs::is_empty(target));
}

TEST_F(BackupTest, MissingFileFailsVerify) {
  Write(10, "payload");
  auto backups = OpenBackups();
  ASSERT_NE(backups, nullptr);
  ASSERT_TRUE(backups->Create().ok());
  int removed = 0;
  for (const auto& e : fs::recursive_directory_iterator(backup_dir())) {
    if (e.is_regular_file() && e.path().extension() == ".sst" && removed == 0) {
      fs::remove(e.path());
      ++removed;
    }
  }
  ASSERT_EQ(removed, 1);
  EXPECT_THAT(backups->Verify(1), StatusIs(absl::StatusCode::kDataLoss));
}

TEST_F(BackupTest, RetentionKeepsTheNewestN) {
  BackupOptions options;
  options.keep = 2;
  auto backups = OpenBackups(options);
  ASSERT_NE(backups, nullptr);
  std::vector<uint64_t> sequences;
  for (int i = 0; i < 4; ++i) {
    Write(5, absl::StrCat("round", i));
    auto created = backups->Create();
    ASSERT_TRUE(created.ok()) << created.status();
    sequences.push_back(created->last_sequence);
  }
  auto listed = backups->List();
  ASSERT_TRUE(listed.ok());
  std::vector<uint32_t> ids;
  for (const auto& b : *listed) ids.push_back(b.id);
  EXPECT_THAT(ids, ElementsAre(4u, 3u));
  EXPECT_EQ((*listed)[0].last_sequence, sequences[3]);
  EXPECT_THAT(backups->Verify(1), StatusIs(absl::StatusCode::kNotFound));
  // The survivors are complete although they shared files with deleted ones.
  EXPECT_TRUE(backups->Verify(3).ok());
  EXPECT_TRUE(backups->Verify(4).ok());
  Backups::RestoreResult result;
  ASSERT_NE(RestoreAndOpen(3, dir_.path() + "/r3", &result), nullptr);
  EXPECT_EQ(result.last_sequence, sequences[2]);
}

// Writers commit the whole time a backup is taken. Every write acknowledged
// before Create() was called must be in the backup, whether the unflushed
// writes travel as SST files (flush first) or as WAL files.
class BackupUnderLoadTest : public BackupTest, public ::testing::WithParamInterface<bool> {};

TEST_P(BackupUnderLoadTest, AcknowledgedWritesBeforeTheCallAreInTheBackup) {
  BackupOptions options;
  options.flush_before_backup = GetParam();
  auto backups = OpenBackups(options);
  ASSERT_NE(backups, nullptr);

  absl::Mutex mu;
  std::map<std::string, std::string> acknowledged;  // "patient/id" -> payload, in ack order per writer
  std::atomic<bool> stop{false};
  std::atomic<int> writes{0};
  std::vector<std::thread> writers;
  for (int w = 0; w < 4; ++w) {
    writers.emplace_back([&, w] {
      for (int i = 0; !stop.load(); ++i) {
        const std::string id = absl::StrCat("w", w, "-", i);
        const std::string payload = absl::StrCat("payload ", w, " ", i);
        auto done = store_->CommitAndWait(Put("p1", id, payload));
        ASSERT_TRUE(done.ok()) << done.status();
        absl::MutexLock lock(&mu);
        acknowledged[id] = payload;
        ++writes;
      }
    });
  }
  // Let the writers get going, so the backup starts mid-stream.
  std::map<std::string, std::string> before;
  {
    absl::MutexLock lock(&mu);
    mu.AwaitWithTimeout(absl::Condition(
                            +[](std::map<std::string, std::string>* a) { return a->size() >= 200; }, &acknowledged),
                        absl::Seconds(60));
    before = acknowledged;
  }
  auto created = backups->Create();
  const int writes_at_end = writes.load();
  stop = true;
  for (auto& t : writers) t.join();
  ASSERT_TRUE(created.ok()) << created.status();
  EXPECT_GE(created->last_sequence, before.size());

  Backups::RestoreResult result;
  auto restored = RestoreAndOpen(created->id, dir_.path() + "/restored", &result);
  ASSERT_NE(restored, nullptr);
  EXPECT_GE(result.last_sequence, created->last_sequence);
  auto reader = restored->NewReader();
  for (const auto& [id, payload] : before) {
    auto got = reader->GetCurrent(GOAL, "p1", id);
    ASSERT_TRUE(got.ok()) << got.status();
    ASSERT_TRUE(got->has_value()) << id << " was acknowledged before the backup but is not in it";
    EXPECT_EQ((*got)->resource(), payload);
  }
  RecordProperty("acknowledged_before_backup", static_cast<int>(before.size()));
  RecordProperty("writes_by_end_of_backup", writes_at_end);
}

INSTANTIATE_TEST_SUITE_P(FlushOrWal, BackupUnderLoadTest, ::testing::Bool(),
                         [](const auto& info) { return info.param ? "FlushFirst" : "WalCopied"; });

TEST_F(BackupTest, ScheduledBackupsRunAtTheInterval) {
  Write(5, "s");
  BackupOptions options;
  options.interval = absl::Milliseconds(50);
  options.keep = 100;
  auto backups = OpenBackups(options);
  ASSERT_NE(backups, nullptr);
  // Wait (bounded) for two scheduled backups.
  const absl::Time give_up = absl::Now() + absl::Seconds(30);
  size_t count = 0;
  while (absl::Now() < give_up) {
    auto listed = backups->List();
    ASSERT_TRUE(listed.ok());
    count = listed->size();
    if (count >= 2) break;
    absl::SleepFor(absl::Milliseconds(20));
  }
  EXPECT_GE(count, 2u);
}

TEST_F(BackupTest, StoppedOrClosedBackupsFail) {
  Write(5, "z");
  auto backups = OpenBackups();
  ASSERT_NE(backups, nullptr);
  backups->StopBackups();
  EXPECT_THAT(backups->Create(), StatusIs(absl::StatusCode::kAborted));
  backups->Close();
  EXPECT_THAT(backups->Create(), StatusIs(absl::StatusCode::kUnavailable));
  EXPECT_THAT(backups->List(), StatusIs(absl::StatusCode::kUnavailable));
  // Posted work still runs (at once) so its caller is answered.
  bool ran = false;
  backups->Post([&] { ran = true; });
  EXPECT_TRUE(ran);
}

TEST_F(BackupTest, PostedJobsRunInOrderOnTheBackupThread) {
  auto backups = OpenBackups();
  ASSERT_NE(backups, nullptr);
  absl::Mutex mu;
  std::vector<int> order;
  const auto caller = std::this_thread::get_id();
  bool other_thread = true;
  for (int i = 0; i < 5; ++i) {
    backups->Post([&, i] {
      absl::MutexLock lock(&mu);
      order.push_back(i);
      other_thread = other_thread && std::this_thread::get_id() != caller;
    });
  }
  {
    absl::MutexLock lock(&mu);
    mu.Await(absl::Condition(
        +[](std::vector<int>* o) { return o->size() == 5; }, &order));
  }
  EXPECT_THAT(order, ElementsAre(0, 1, 2, 3, 4));
  EXPECT_TRUE(other_thread);
}

TEST_F(BackupTest, OpenRefusesBadDirectories) {
  auto inside = Backups::Open(store_.get(), {data_dir() + "/backups"});
  EXPECT_THAT(inside, StatusIs(absl::StatusCode::kInvalidArgument));
  auto same = Backups::Open(store_.get(), {data_dir()});
  EXPECT_THAT(same, StatusIs(absl::StatusCode::kInvalidArgument));
  auto parent = Backups::Open(store_.get(), {dir_.path()});
  EXPECT_THAT(parent, StatusIs(absl::StatusCode::kInvalidArgument));
  BackupOptions no_keep;
  no_keep.dir = backup_dir();
  no_keep.keep = 0;
  EXPECT_THAT(Backups::Open(store_.get(), no_keep), StatusIs(absl::StatusCode::kInvalidArgument));
}

}  // namespace
}  // namespace wmty::storage
