// wmty_rawdb: raw RocksDB baselines of bench/run.sh (issue 7), through the
// store's own key layout (storage/keys.h) and column families.
//
//   wmty_rawdb --mode=get --db=/tmp/wmty-perf-db --concurrency=32 --duration=10s
//   wmty_rawdb --mode=put --db=/tmp/raw-put --concurrency=32 --duration=10s --value_bytes=400
//
// get: opens a database written by wmtyd/wmty_datagen read-only (it must not
//      be open in wmtyd meanwhile: run it before wmtyd starts), samples up to
//      --sample_keys keys of the `current` column family (reservoir over the
//      whole family), and has --concurrency threads do random point Gets of
//      them: the floor under any read of one record. Reports the mean value
//      size of the sample (the size of a stored record, for --mode=put).
// put: a fresh database (deleted first) with the store's column families and
//      table options; --concurrency threads each write, in a loop, one synced
//      WriteBatch shaped like one create through the store: the record into
//      `current` and `versions`, the id index, the change-log entry and the
//      request outcome (CurrentKey, VersionKey, IdKey, ChangeKey, RequestKey).
//      RocksDB's own write group commit shares the fsyncs, as the store's
//      commit thread does. This is what bench/wmty_bench's raw measurement
//      does with plain keys, here in the real layout.
// The first --warmup is not recorded. Output: a human line on stderr and
//   RAWDB mode=.. concurrency=.. qps=.. ops=.. p50_us=.. p99_us=.. p999_us=.. max_us=.. value_bytes=.. cpu_us=..
// (cpu_us: this process's CPU per op while recording, all threads.)
#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdio>
#include <filesystem>
#include <memory>
#include <random>
#include <string>
#include <thread>
#include <vector>

#include <rocksdb/db.h>
#include <rocksdb/write_batch.h>
#include <rocksdb/write_buffer_manager.h>

#include "absl/flags/flag.h"
#include "absl/flags/parse.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/time/time.h"
#include "latency_histogram.h"
#include "process_cpu.h"
#include "storage/keys.h"
#include "storage/rocksdb_options.h"

ABSL_FLAG(std::string, mode, "get", "get | put");
ABSL_FLAG(std::string, db, "", "Database directory (put: deleted and created)");
ABSL_FLAG(int, concurrency, 32, "Threads");
ABSL_FLAG(absl::Duration, duration, absl::Seconds(10), "How long to record");
ABSL_FLAG(absl::Duration, warmup, absl::Seconds(1), "Not recorded");
ABSL_FLAG(int, sample_keys, 200000, "get: keys sampled from the current column family");
ABSL_FLAG(int, value_bytes, 400, "put: size of the stored record");
ABSL_FLAG(int, block_cache_mb, 256, "Block cache (wmtyd's --block_cache_mb)");
ABSL_FLAG(int, memtable_mb, 128, "Memtable budget (wmtyd's --memtable_mb)");

namespace {

using Clock = std::chrono::steady_clock;
constexpr const char* kColumnFamilies[] = {"default", "current", "versions", "ids", "requests", "changes", "audit"};

// The column family options of storage::Store::OpenDb (the same function)
// and the DB options that matter for these measurements.
rocksdb::ColumnFamilyOptions StoreLikeOptions(rocksdb::DBOptions* db_options) {
  const size_t budget = size_t(absl::GetFlag(FLAGS_memtable_mb)) << 20;
  db_options->create_if_missing = true;
  db_options->create_missing_column_families = true;
  db_options->max_background_jobs = 2;
  db_options->write_buffer_manager = std::make_shared<rocksdb::WriteBufferManager>(budget);
  return wmty::storage::StoreColumnFamilyOptions(size_t(absl::GetFlag(FLAGS_block_cache_mb)) << 20, budget);
}

struct Result {
  double qps = 0;
  int64_t ops = 0;
  int64_t errors = 0;
  double cpu_us = -1;  // this process's CPU per op while recording
};

// Runs `op` in `threads` threads until the end of warmup + duration; records
// the latency of each op started after the warmup.
template <class Op>
Result Drive(int threads, wmty::bench::LatencyHistogram* hist, Op op) {
  const auto start = Clock::now();
  const auto from = start + absl::ToChronoNanoseconds(absl::GetFlag(FLAGS_warmup));
  const auto until = from + absl::ToChronoNanoseconds(absl::GetFlag(FLAGS_duration));
  std::atomic<int64_t> ops{0}, errors{0};
  wmty::bench::CpuWindow cpu(0, from, until);
  std::vector<std::thread> pool;
  for (int t = 0; t < threads; ++t) {
    pool.emplace_back([&, t] {
      std::mt19937_64 rng(static_cast<uint64_t>(t) * 7919 + 1);
      for (int64_t i = 0;; ++i) {
        const auto t0 = Clock::now();
        if (t0 >= until) break;
        const bool ok = op(t, i, rng);
        const auto t1 = Clock::now();
        if (!ok) errors.fetch_add(1, std::memory_order_relaxed);
        if (t0 >= from && ok) {
          hist->Record(std::chrono::duration_cast<std::chrono::nanoseconds>(t1 - t0).count());
          ops.fetch_add(1, std::memory_order_relaxed);
        }
      }
    });
  }
  for (auto& t : pool) t.join();
  cpu.Join();
  const double window = std::chrono::duration<double>(until - from).count();
  return {static_cast<double>(ops.load()) / window, ops.load(), errors.load(), cpu.MicrosPer(ops.load())};
}

void Print(const char* mode, int threads, const Result& r, const wmty::bench::LatencyHistogram& h, size_t value_bytes) {
  auto us = [&](double q) { return static_cast<double>(h.ValueAt(q)) / 1000.0; };
  std::fprintf(stderr, "raw %s x%d: %.0f/s, p50 %.1f us, p99 %.1f us, p99.9 %.1f us (%lld errors)\n", mode, threads,
               r.qps, us(0.5), us(0.99), us(0.999), static_cast<long long>(r.errors));
  std::printf(
      "RAWDB mode=%s concurrency=%d qps=%.1f ops=%lld errors=%lld p50_us=%.1f p99_us=%.1f p999_us=%.1f max_us=%.1f "
      "value_bytes=%zu cpu_us=%.1f\n",
      mode, threads, r.qps, static_cast<long long>(r.ops), static_cast<long long>(r.errors), us(0.5), us(0.99),
      us(0.999), static_cast<double>(h.max_nanos()) / 1000.0, value_bytes, r.cpu_us);
}

int OpenDb(const std::string& path, bool read_only, rocksdb::DB** db,
           std::vector<rocksdb::ColumnFamilyHandle*>* handles) {
  rocksdb::DBOptions db_options;
  const rocksdb::ColumnFamilyOptions cf = StoreLikeOptions(&db_options);
  std::vector<rocksdb::ColumnFamilyDescriptor> descriptors;
  for (const char* name : kColumnFamilies) descriptors.emplace_back(name, cf);
  const rocksdb::Status s = read_only ? rocksdb::DB::OpenForReadOnly(db_options, path, descriptors, handles, db)
                                      : rocksdb::DB::Open(db_options, path, descriptors, handles, db);
  if (!s.ok()) {
    std::fprintf(stderr, "cannot open %s: %s\n", path.c_str(), s.ToString().c_str());
    return 1;
  }
  return 0;
}

int Get(const std::string& path, int threads) {
  rocksdb::DB* db = nullptr;
  std::vector<rocksdb::ColumnFamilyHandle*> handles;
  if (OpenDb(path, /*read_only=*/true, &db, &handles) != 0) return 1;
  rocksdb::ColumnFamilyHandle* current = handles[1];
  // Reservoir sample of the current family's keys.
  const size_t want = static_cast<size_t>(std::max(1, absl::GetFlag(FLAGS_sample_keys)));
  std::vector<std::string> keys;
  std::mt19937_64 rng(42);
  uint64_t seen = 0, value_total = 0;
  {
    std::unique_ptr<rocksdb::Iterator> it(db->NewIterator(rocksdb::ReadOptions(), current));
    for (it->SeekToFirst(); it->Valid(); it->Next(), ++seen) {
      value_total += it->value().size();
      if (keys.size() < want) {
        keys.push_back(it->key().ToString());
      } else if (const uint64_t j = rng() % (seen + 1); j < want) {
        keys[j] = it->key().ToString();
      }
    }
  }
  if (keys.empty()) {
    std::fprintf(stderr, "%s has no records\n", path.c_str());
    return 1;
  }
  const size_t value_bytes = static_cast<size_t>(value_total / seen);
  std::fprintf(stderr, "raw get: %zu of %llu keys sampled, mean record %zu bytes\n", keys.size(),
               static_cast<unsigned long long>(seen), value_bytes);
  wmty::bench::LatencyHistogram hist;
  const Result r = Drive(threads, &hist, [&](int, int64_t, std::mt19937_64& trng) {
    std::string value;
    return db->Get(rocksdb::ReadOptions(), current, keys[trng() % keys.size()], &value).ok();
  });
  Print("get", threads, r, hist, value_bytes);
  for (auto* h : handles) db->DestroyColumnFamilyHandle(h);
  delete db;
  return r.errors > 0 ? 1 : 0;
}

int Put(const std::string& path, int threads) {
  std::filesystem::remove_all(path);
  rocksdb::DB* db = nullptr;
  std::vector<rocksdb::ColumnFamilyHandle*> handles;
  if (OpenDb(path, /*read_only=*/false, &db, &handles) != 0) return 1;
  const size_t value_bytes = static_cast<size_t>(std::max(1, absl::GetFlag(FLAGS_value_bytes)));
  const std::string record(value_bytes, 'r');
  const std::string change(60, 'c');   // a serialized storage::Change
  const std::string outcome(50, 'o');  // a serialized storage::RequestOutcome
  std::atomic<uint64_t> sequence{0};
  wmty::bench::LatencyHistogram hist;
  using namespace wmty::storage;
  const Result r = Drive(threads, &hist, [&](int t, int64_t i, std::mt19937_64& rng) {
    const std::string patient = absl::StrCat("p", rng() % 100000);
    const std::string id = absl::StrFormat("01JRAW%02d%018d", t, i);  // 26 characters, like a ULID
    const std::string request_id = absl::StrFormat("%016x%016x", rng(), rng());
    rocksdb::WriteBatch wb;
    wb.Put(handles[1], CurrentKey(patient, GOAL, id), record);
    wb.Put(handles[2], VersionKey(patient, GOAL, id, 1), record);
    wb.Put(handles[5], ChangeKey(sequence.fetch_add(1) + 1), change);
    wb.Put(handles[3], IdKey(GOAL, id), patient);
    wb.Put(handles[4], RequestKey(patient, request_id), outcome);
    rocksdb::WriteOptions wo;
    wo.sync = true;
    return db->Write(wo, &wb).ok();
  });
  Print("put", threads, r, hist, value_bytes);
  for (auto* h : handles) db->DestroyColumnFamilyHandle(h);
  delete db;
  std::filesystem::remove_all(path);
  return r.errors > 0 ? 1 : 0;
}

}  // namespace

int main(int argc, char** argv) {
  absl::ParseCommandLine(argc, argv);
  const std::string mode = absl::GetFlag(FLAGS_mode);
  const std::string db = absl::GetFlag(FLAGS_db);
  const int threads = std::max(1, absl::GetFlag(FLAGS_concurrency));
  if (db.empty()) {
    std::fprintf(stderr, "--db is required\n");
    return 2;
  }
  if (mode == "get") return Get(db, threads);
  if (mode == "put") return Put(db, threads);
  std::fprintf(stderr, "unknown --mode=%s\n", mode.c_str());
  return 2;
}
