// The column-family options shared by the store and bench/'s raw baselines
// (rocksdb_options.h).
#include "storage/rocksdb_options.h"

#include <algorithm>

#include <rocksdb/cache.h>
#include <rocksdb/filter_policy.h>
#include <rocksdb/table.h>

namespace wmty::storage {

int BlockCacheShardBits(size_t capacity) {
  constexpr size_t kMinShardBytes = size_t{32} << 20;
  int bits = 0;
  while (bits < 6 && (capacity >> (bits + 1)) >= kMinShardBytes) ++bits;
  return bits;
}

rocksdb::ColumnFamilyOptions StoreColumnFamilyOptions(size_t block_cache_bytes, size_t memtable_budget_bytes,
                                                      size_t write_buffer_bytes) {
  rocksdb::BlockBasedTableOptions table;
  table.block_cache = rocksdb::NewLRUCache(block_cache_bytes, BlockCacheShardBits(block_cache_bytes));
  table.filter_policy.reset(rocksdb::NewBloomFilterPolicy(10));
  table.cache_index_and_filter_blocks = true;
  table.pin_l0_filter_and_index_blocks_in_cache = true;
  // Index and filter in 4 KiB partitions under a small pinned top level: a
  // lookup loads the partitions it needs, not a whole file's filter and
  // index, which grow with the file (the id index's reached 4 MiB of filter
  // at 3.4M ids in one file, and every FHIR read needed all of it).
  table.index_type = rocksdb::BlockBasedTableOptions::IndexType::kTwoLevelIndexSearch;
  table.partition_filters = true;
  table.metadata_block_size = 4096;
  table.pin_top_level_index_and_filter = true;
  table.cache_index_and_filter_blocks_with_high_priority = true;
  table.format_version = 5;

  rocksdb::ColumnFamilyOptions cf;
  cf.table_factory.reset(rocksdb::NewBlockBasedTableFactory(table));
  cf.compression = rocksdb::kLZ4Compression;
  cf.level_compaction_dynamic_level_bytes = true;
  // Per family at most a quarter of the shared budget, so that one busy
  // family (the audit trail, the versions) cannot take all of it.
  cf.write_buffer_size = std::max<size_t>(memtable_budget_bytes / 4, size_t{1} << 20);
  if (write_buffer_bytes > 0) cf.write_buffer_size = write_buffer_bytes;
  // A whole-key bloom filter on each memtable: the commit thread looks up the
  // current record and the request id of every change, and for a create both
  // are absent, which without a filter costs a full skip-list search (about
  // 14% of the commit thread under durable creates).
  cf.memtable_prefix_bloom_size_ratio = 0.02;
  cf.memtable_whole_key_filtering = true;
  return cf;
}

}  // namespace wmty::storage
