// storage::Store's keyed state (issue 19): WriteState is atomic over its keys
// and durable, deletes, Reader::GetState / ScanState by prefix and resume key
// on a snapshot, concurrent writers, and databases created before the "state"
// column family existed.
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <rocksdb/db.h>

#include "absl/strings/str_cat.h"
#include "storage/store.h"
#include "support/store_mutations.h"
#include "support/test_support.h"

namespace wmty::storage {
namespace {

using ::testing::ElementsAre;
using ::testing::Pair;
using ::wmty::testing::Put;
using ::wmty::testing::StatusIs;
using ::wmty::testing::TempDir;

class StoreStateTest : public ::testing::Test {
 protected:
  void SetUp() override { Open(); }

  void Open() {
    StoreOptions options;
    options.path = path();
    options.block_cache_bytes = size_t{8} << 20;
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

  std::optional<std::string> Get(const std::string& key) {
    auto value = store_->NewReader()->GetState(key);
    EXPECT_TRUE(value.ok()) << value.status();
    return value.ok() ? *value : std::nullopt;
  }

  std::vector<std::pair<std::string, std::string>> Scan(const std::string& prefix, const std::string& after = "") {
    std::vector<std::pair<std::string, std::string>> out;
    auto s = store_->NewReader()->ScanState(prefix, after, [&](absl::string_view k, absl::string_view v) {
      out.emplace_back(std::string(k), std::string(v));
      return true;
    });
    EXPECT_TRUE(s.ok()) << s;
    return out;
  }

  TempDir dir_;
  std::unique_ptr<Store> store_;
};

TEST_F(StoreStateTest, MissingKeyIsNotAnError) { EXPECT_EQ(Get("push/none"), std::nullopt); }

TEST_F(StoreStateTest, OneCallWritesEveryKeyAndSurvivesRestart) {
  ASSERT_TRUE(store_->WriteState({{"push/a", "1"}, {"push/b", "2"}, {"other/c", "3"}}).ok());
  EXPECT_EQ(Get("push/a"), "1");
  EXPECT_EQ(Get("push/b"), "2");
  EXPECT_EQ(Get("other/c"), "3");
  Reopen();
  EXPECT_EQ(Get("push/a"), "1");
  EXPECT_EQ(Get("other/c"), "3");
}

TEST_F(StoreStateTest, NulloptDeletesAndTheLastWriteOfAKeyWins) {
  ASSERT_TRUE(store_->WriteState({{"push/a", "1"}, {"push/b", "2"}}).ok());
  ASSERT_TRUE(store_->WriteState({{"push/a", std::nullopt}, {"push/b", "old"}, {"push/b", "new"}}).ok());
  EXPECT_EQ(Get("push/a"), std::nullopt);
  EXPECT_EQ(Get("push/b"), "new");
  Reopen();
  EXPECT_EQ(Get("push/a"), std::nullopt);
  EXPECT_EQ(Get("push/b"), "new");
}

TEST_F(StoreStateTest, BinaryKeysAndValuesRoundTrip) {
  const std::string key("push/\0\xff", 7);
  const std::string value("\0\x01\x02", 3);
  ASSERT_TRUE(store_->WriteState({{key, value}}).ok());
  EXPECT_EQ(Get(key), value);
  EXPECT_THAT(Scan("push/"), ElementsAre(Pair(key, value)));
}

TEST_F(StoreStateTest, ScanVisitsOnlyThePrefixInKeyOrderAfterTheResumeKey) {
  ASSERT_TRUE(store_
                  ->WriteState({{"push/s2/cursor", "c2"},
                                {"push/s1/cursor", "c1"},
                                {"push/s1/event/2", "e2"},
                                {"push/s1/event/1", "e1"},
                                {"push/s10/cursor", "c10"},
                                {"pusher/x", "no"},
                                {"pus", "no"}})
                  .ok());
  EXPECT_THAT(Scan("push/s1/"),
              ElementsAre(Pair("push/s1/cursor", "c1"), Pair("push/s1/event/1", "e1"), Pair("push/s1/event/2", "e2")));
  EXPECT_THAT(Scan("push/s1/", "push/s1/event/1"), ElementsAre(Pair("push/s1/event/2", "e2")));
  EXPECT_THAT(Scan("push/s1/", "push/s1/event/2"), ElementsAre());
  EXPECT_EQ(Scan("push/").size(), 5u);
  // A resume key before the prefix starts at the prefix.
  EXPECT_EQ(Scan("push/s2", "a").size(), 1u);
  // An empty prefix is every key.
  EXPECT_EQ(Scan("").size(), 7u);
  // The visitor stops the scan.
  int visited = 0;
  ASSERT_TRUE(store_->NewReader()
                  ->ScanState("push/", "",
                              [&](absl::string_view, absl::string_view) {
                                ++visited;
                                return visited < 2;
                              })
                  .ok());
  EXPECT_EQ(visited, 2);
}

TEST_F(StoreStateTest, ReaderSeesTheStateOfItsSnapshot) {
  ASSERT_TRUE(store_->WriteState({{"push/a", "1"}}).ok());
  auto before = store_->NewReader();
  ASSERT_TRUE(store_->WriteState({{"push/a", "2"}, {"push/b", "new"}}).ok());
  auto a = before->GetState("push/a");
  ASSERT_TRUE(a.ok());
  EXPECT_EQ(*a, "1");
  auto b = before->GetState("push/b");
  ASSERT_TRUE(b.ok());
  EXPECT_EQ(*b, std::nullopt);
  EXPECT_EQ(Get("push/a"), "2");
}

TEST_F(StoreStateTest, AnEmptyKeyRefusesTheWholeCall) {
  EXPECT_THAT(store_->WriteState({{"push/a", "1"}, {"", "x"}}), StatusIs(absl::StatusCode::kInvalidArgument));
  EXPECT_EQ(Get("push/a"), std::nullopt);
  EXPECT_TRUE(store_->WriteState({}).ok());
}

TEST_F(StoreStateTest, StateIsNotARecordNorAChange) {
  ASSERT_TRUE(store_->CommitAndWait(Put("p1", "G1", "x")).ok());
  ASSERT_TRUE(store_->WriteState({{"push/a", "1"}}).ok());
  EXPECT_EQ(store_->LastSequence(), 1u);
  EXPECT_TRUE(store_->VerifyIntegrity().ok());
}

TEST_F(StoreStateTest, ConcurrentWritersAndCommitsAllLand) {
  std::vector<std::thread> threads;
  for (int t = 0; t < 4; ++t) {
    threads.emplace_back([&, t] {
      for (int i = 0; i < 50; ++i) {
        EXPECT_TRUE(store_
                        ->WriteState(
                            {{absl::StrCat("push/t", t, "/", i), "a"}, {absl::StrCat("push/last", t), absl::StrCat(i)}})
                        .ok());
        EXPECT_TRUE(store_->CommitAndWait(Put("p1", absl::StrCat("G", t, "-", i), "x")).ok());
      }
    });
  }
  for (auto& t : threads) t.join();
  EXPECT_EQ(Scan("push/t").size(), 200u);
  for (int t = 0; t < 4; ++t) EXPECT_EQ(Get(absl::StrCat("push/last", t)), "49");
  EXPECT_EQ(store_->LastSequence(), 200u);
}

TEST_F(StoreStateTest, WriteAfterCloseIsRefused) {
  store_->Close();
  EXPECT_THAT(store_->WriteState({{"push/a", "1"}}), StatusIs(absl::StatusCode::kUnavailable));
}

// A database written by a wmtyd from before issue 19 has no "state" column
// family: opening it creates one, and its records stay.
TEST(StoreStateUpgradeTest, DatabaseWithoutTheStateFamilyOpensAndGetsOne) {
  TempDir dir;
  const std::string path = dir.path() + "/db";
  {
    rocksdb::DBOptions options;
    options.create_if_missing = true;
    options.create_missing_column_families = true;
    std::vector<rocksdb::ColumnFamilyDescriptor> families;
    for (const char* name : {"default", "current", "versions", "ids", "requests", "changes", "audit"}) {
      families.emplace_back(name, rocksdb::ColumnFamilyOptions());
    }
    std::vector<rocksdb::ColumnFamilyHandle*> handles;
    rocksdb::DB* raw = nullptr;
    ASSERT_TRUE(rocksdb::DB::Open(options, path, families, &handles, &raw).ok());
    for (auto* h : handles) raw->DestroyColumnFamilyHandle(h);
    delete raw;
  }
  StoreOptions options;
  options.path = path;
  options.block_cache_bytes = size_t{8} << 20;
  {
    auto store = Store::Open(options);
    ASSERT_TRUE(store.ok()) << store.status();
    ASSERT_TRUE((*store)->CommitAndWait(Put("p1", "G1", "x")).ok());
    ASSERT_TRUE((*store)->WriteState({{"push/a", "1"}}).ok());
  }
  auto store = Store::Open(options);
  ASSERT_TRUE(store.ok()) << store.status();
  auto value = (*store)->NewReader()->GetState("push/a");
  ASSERT_TRUE(value.ok());
  EXPECT_EQ(*value, "1");
  EXPECT_EQ((*store)->LastSequence(), 1u);
  EXPECT_TRUE((*store)->VerifyIntegrity().ok());
}

}  // namespace
}  // namespace wmty::storage
