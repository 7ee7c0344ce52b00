// Point lookups in a database whose files have outgrown the block cache's
// shards. A bloom filter and an index cover a whole SST file unless they are
// partitioned, and a block larger than the cache (or its shard) is dropped as
// soon as it has been used: every lookup then reads the whole filter from
// disk again. A 1M-record benchmark database grown past 3M changes hit this
// (one `ids` file with a 4 MiB filter, 4 MiB shards): FHIR reads fell from
// 37k to 2.3k/s. With partitioned filters and indexes, repeated lookups of the
// same few keys are answered from the cache however large the file is.
#include <memory>
#include <string>

#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <rocksdb/db.h>
#include <rocksdb/statistics.h>
#include <rocksdb/write_batch.h>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "storage/keys.h"
#include "storage/rocksdb_options.h"
#include "support/test_support.h"

namespace wmty::storage {
namespace {

using ::wmty::testing::TempDir;

TEST(BlockCacheShardBits, ShardsOfAtLeast32MiBAtMost64Shards) {
  EXPECT_EQ(BlockCacheShardBits(size_t{8} << 20), 0);
  EXPECT_EQ(BlockCacheShardBits(size_t{64} << 20), 1);
  EXPECT_EQ(BlockCacheShardBits(size_t{256} << 20), 3);
  EXPECT_EQ(BlockCacheShardBits(size_t{2} << 30), 6);
  EXPECT_EQ(BlockCacheShardBits(size_t{64} << 30), 6);
}

// On RocksDB directly, with the store's column family options (the function
// Store::OpenDb uses), so that the file's layout is certain: one bottom-level
// file, compacted by hand, whose whole-file filter alone (~1.25 MB for 1M
// keys at 10 bits) would be larger than the 1 MiB cache.
TEST(BlockCacheTest, RepeatedLookupsInAFileWhoseFilterOutgrewTheCacheHitTheCache) {
  TempDir dir;
  rocksdb::DBOptions db_options;
  db_options.create_if_missing = true;
  db_options.statistics = rocksdb::CreateDBStatistics();
  rocksdb::Options options(db_options, StoreColumnFamilyOptions(/*block_cache_bytes=*/size_t{1} << 20,
                                                                /*memtable_budget_bytes=*/size_t{16} << 20));
  rocksdb::DB* raw = nullptr;
  ASSERT_TRUE(rocksdb::DB::Open(options, dir.path() + "/db", &raw).ok());
  std::unique_ptr<rocksdb::DB> db(raw);

  // Keys shaped like the id index's (kind, id), values a patient id.
  constexpr int kKeys = 1000000;
  rocksdb::WriteOptions unsynced;
  for (int start = 0; start < kKeys; start += 10000) {
    rocksdb::WriteBatch batch;
    for (int i = start; i < start + 10000; ++i) {
      ASSERT_TRUE(batch.Put(IdKey(GOAL, absl::StrFormat("goal-%08d", i)), absl::StrCat("p", i % 1000)).ok());
    }
    ASSERT_TRUE(db->Write(unsynced, &batch).ok());
  }
  rocksdb::CompactRangeOptions compact;
  compact.bottommost_level_compaction = rocksdb::BottommostLevelCompaction::kForce;
  ASSERT_TRUE(db->CompactRange(compact, nullptr, nullptr).ok());
  std::string files;
  ASSERT_TRUE(db->GetProperty("rocksdb.num-files-at-level0", &files));
  ASSERT_EQ(files, "0") << "the keys must be below level 0, whose filters are pinned";

  auto lookup_five = [&] {
    for (int i = 0; i < 5; ++i) {
      std::string value;
      ASSERT_TRUE(db->Get(rocksdb::ReadOptions(), IdKey(GOAL, absl::StrFormat("goal-%08d", i * 199999)), &value).ok());
      EXPECT_EQ(value, absl::StrCat("p", (i * 199999) % 1000));
    }
  };
  lookup_five();  // loads what these lookups need
  const uint64_t misses_before = db_options.statistics->getTickerCount(rocksdb::BLOCK_CACHE_MISS);
  for (int round = 0; round < 20; ++round) lookup_five();
  // 100 lookups. Had each needed the whole file's filter, it would have been
  // read again every time (>= 100 misses).
  EXPECT_LE(db_options.statistics->getTickerCount(rocksdb::BLOCK_CACHE_MISS) - misses_before, 5u);
}

}  // namespace
}  // namespace wmty::storage
