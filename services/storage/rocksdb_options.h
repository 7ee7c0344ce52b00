// The RocksDB options of the store's column families, shared with the raw
// RocksDB baselines of bench/ (wmty_rawdb), so that a baseline always measures
// the layout and tables wmtyd uses. Includes RocksDB's headers: for storage/
// and for code that links RocksDB itself.
#ifndef WMTY_STORAGE_ROCKSDB_OPTIONS_H_
#define WMTY_STORAGE_ROCKSDB_OPTIONS_H_

#include <cstddef>

#include <rocksdb/options.h>

namespace wmty::storage {

// Every column family's options: block-based tables with a shared LRU block
// cache of `block_cache_bytes`, LZ4, bloom filters, and memtables of at most a
// quarter of `memtable_budget_bytes` each (write_buffer_bytes > 0 overrides).
rocksdb::ColumnFamilyOptions StoreColumnFamilyOptions(size_t block_cache_bytes, size_t memtable_budget_bytes,
                                                      size_t write_buffer_bytes = 0);

// Shard bits of a block cache of `capacity` bytes: shards of at least 32 MiB
// (at most 64 shards). A block larger than its shard is evicted as soon as it
// is released, so a RocksDB default of 4 MiB shards (a 256 MiB cache) re-read
// a 4 MiB filter block from disk on every lookup once one file grew that big.
int BlockCacheShardBits(size_t capacity);

}  // namespace wmty::storage

#endif  // WMTY_STORAGE_ROCKSDB_OPTIONS_H_
