// Store (store.h) on RocksDB: the column families, the readers over
// snapshots, the commit thread's group commit (Store::Batch, which also
// writes state and change-log trims), the completion thread (commit
// listeners, then callbacks), recovery after a failed write, and the
// integrity check.
#include "storage/store.h"

#include <algorithm>
#include <cstring>
#include <filesystem>
#include <future>
#include <iterator>
#include <map>

#include <openssl/rand.h>
#include <rocksdb/db.h>
#include <rocksdb/env.h>
#include <rocksdb/listener.h>
#include <rocksdb/options.h>
#include <rocksdb/statistics.h>
#include <rocksdb/transaction_log.h>
#include <rocksdb/write_batch.h>
#include <rocksdb/write_buffer_manager.h>

#include "absl/container/flat_hash_map.h"
#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "common/log.h"
#include "common/thread_name.h"
#include "storage/keys.h"
#include "storage/rocksdb_options.h"

namespace wmty::storage {
namespace {

// Column families, in the order of handles_ (index 0 is RocksDB's default,
// which holds server metadata).
// Opening a database created before a family existed (e.g. "state", added in
// issue 19) creates it (DBOptions::create_missing_column_families).
constexpr const char* kColumnFamilies[] = {"default",  "current", "versions", "ids",
                                           "requests", "changes", "audit",    "state"};

absl::Status FromRocks(const rocksdb::Status& s, absl::string_view what) {
  if (s.ok()) return absl::OkStatus();
  std::string message = absl::StrCat(what, ": ", s.ToString());
  if (s.IsCorruption()) return absl::DataLossError(message);
  if (s.IsNotFound()) return absl::NotFoundError(message);
  return absl::UnavailableError(message);
}

// What a write refused after a storage failure says (nothing of it was tried).
constexpr absl::string_view kWritesSuspended = "storage unavailable: disk full or I/O error; retry later";

const char* ReasonName(rocksdb::BackgroundErrorReason reason) {
  switch (reason) {
    case rocksdb::BackgroundErrorReason::kFlush:
      return "flush";
    case rocksdb::BackgroundErrorReason::kCompaction:
      return "compaction";
    case rocksdb::BackgroundErrorReason::kWriteCallback:
      return "write";
    case rocksdb::BackgroundErrorReason::kMemTable:
      return "memtable";
    case rocksdb::BackgroundErrorReason::kManifestWrite:
      return "manifest write";
    case rocksdb::BackgroundErrorReason::kFlushNoWAL:
      return "flush (no WAL)";
    case rocksdb::BackgroundErrorReason::kManifestWriteNoWAL:
      return "manifest write (no WAL)";
  }
  return "other";
}

// Logs the errors that put RocksDB in its read-only state (also those of
// background flushes and compactions, which no caller sees), and turns off
// RocksDB's own automatic recovery: the store alone leaves that state
// (Store::RecoverWrites, driven by waiting writes with a backoff). Two
// recoverers would race (Resume() answers Busy while RocksDB's runs), and
// RocksDB's disk-full recovery polls free space only every few seconds.
class StorageErrorListener : public rocksdb::EventListener {
 public:
  void OnBackgroundError(rocksdb::BackgroundErrorReason reason, rocksdb::Status* error) override {
    // File names and RocksDB's text only: no patient data reaches RocksDB's errors.
    log::Error("storage error: writes are refused until the store recovers",
               {{"during", ReasonName(reason)}, {"error", error->ToString()}});
  }
  void OnErrorRecoveryBegin(rocksdb::BackgroundErrorReason, rocksdb::Status error, bool* auto_recovery) override {
    error.PermitUncheckedError();
    *auto_recovery = false;
  }
};

rocksdb::DBOptions DbOptions(const StoreOptions& options, std::shared_ptr<rocksdb::Statistics> statistics) {
  rocksdb::DBOptions db_options;
  db_options.create_if_missing = true;
  db_options.create_missing_column_families = true;
  db_options.paranoid_checks = true;
  db_options.max_background_jobs = 2;
  // Keep the WAL's records checksummed and fail loudly on a torn record
  // in the middle; a torn tail (crash during write) is dropped, which is
  // only ever an unacknowledged write.
  db_options.wal_recovery_mode = rocksdb::WALRecoveryMode::kPointInTimeRecovery;
  if (options.env != nullptr) db_options.env = options.env.get();
  db_options.listeners.push_back(std::make_shared<StorageErrorListener>());
  // The WAL anchor (Store::AnchorWal) is the only data written without the
  // log; flushing it at shutdown would only cost time.
  db_options.avoid_flush_during_shutdown = true;
  db_options.statistics = std::move(statistics);
  if (options.memtable_budget_bytes > 0) {
    db_options.write_buffer_manager = std::make_shared<rocksdb::WriteBufferManager>(options.memtable_budget_bytes);
  }
  return db_options;
}

// The sequence in the last key of a family keyed by big-endian sequences (0
// when it is empty).
absl::StatusOr<uint64_t> LastSequenceKey(rocksdb::DB* db, rocksdb::ColumnFamilyHandle* family,
                                         absl::string_view key_name, absl::string_view read_error) {
  std::unique_ptr<rocksdb::Iterator> it(db->NewIterator(rocksdb::ReadOptions(), family));
  it->SeekToLast();
  uint64_t last = 0;
  if (it->Valid()) {
    auto decoded = DecodeBigEndian64(absl::string_view(it->key().data(), it->key().size()));
    if (!decoded.has_value()) return absl::DataLossError(absl::StrCat("malformed ", key_name));
    last = *decoded;
  }
  if (!it->status().ok()) return FromRocks(it->status(), read_error);
  return last;
}

// The last sequence trimmed from the change log (0: none), as stored in meta.
absl::StatusOr<uint64_t> ReadTrimmedThrough(rocksdb::DB* db, const rocksdb::ReadOptions& ro,
                                            rocksdb::ColumnFamilyHandle* meta) {
  std::string value;
  auto s =
      db->Get(ro, meta, rocksdb::Slice(kChangeLogTrimmedThroughKey.data(), kChangeLogTrimmedThroughKey.size()), &value);
  if (s.IsNotFound()) return 0;
  if (!s.ok()) return FromRocks(s, "read change-log retention");
  auto through = DecodeBigEndian64(value);
  if (!through.has_value()) return absl::DataLossError("malformed change-log trimmed-through sequence");
  return *through;
}

// The change-log entry of a new version.
Change ChangeOf(const Record& version, Change::Op op) {
  Change change;
  change.set_sequence(version.sequence());
  change.set_kind(version.kind());
  change.set_patient_id(version.patient_id());
  change.set_id(version.id());
  change.set_version(version.version());
  change.set_time_micros(version.update_time_micros());
  change.set_op(op);
  return change;
}

absl::Status ParseRecord(const std::string& bytes, Record* record) {
  if (!record->ParseFromString(bytes)) return absl::DataLossError("stored record does not parse");
  return absl::OkStatus();
}

}  // namespace

// ---------------------------------------------------------------- Reader

Reader::Reader(const Store* store, const rocksdb::Snapshot* snapshot) : store_(store), snapshot_(snapshot) {}

Reader::~Reader() { store_->db_->ReleaseSnapshot(snapshot_); }

absl::StatusOr<std::optional<Record>> Reader::GetCurrent(Kind kind, absl::string_view patient_id,
                                                         absl::string_view id) const {
  rocksdb::ReadOptions ro;
  ro.snapshot = snapshot_;
  std::string value;
  auto s = store_->db_->Get(ro, store_->current_cf_, CurrentKey(patient_id, kind, id), &value);
  if (s.IsNotFound()) return std::optional<Record>();
  if (!s.ok()) return FromRocks(s, "read current");
  Record record;
  if (auto st = ParseRecord(value, &record); !st.ok()) return st;
  return std::optional<Record>(std::move(record));
}

absl::StatusOr<std::optional<Record>> Reader::GetVersion(Kind kind, absl::string_view patient_id, absl::string_view id,
                                                         int64_t version) const {
  rocksdb::ReadOptions ro;
  ro.snapshot = snapshot_;
  std::string value;
  auto s = store_->db_->Get(ro, store_->versions_cf_, VersionKey(patient_id, kind, id, version), &value);
  if (s.IsNotFound()) return std::optional<Record>();
  if (!s.ok()) return FromRocks(s, "read version");
  Record record;
  if (auto st = ParseRecord(value, &record); !st.ok()) return st;
  return std::optional<Record>(std::move(record));
}

absl::Status Reader::ScanCurrent(absl::string_view patient_id, Kind kind, absl::string_view after_id,
                                 absl::FunctionRef<bool(const Record&)> visit) const {
  const std::string prefix = PatientKindPrefix(patient_id, kind);
  std::string upper = prefix;
  upper.back() = static_cast<char>(static_cast<unsigned char>(upper.back()) + 1);
  rocksdb::Slice upper_slice(upper);
  rocksdb::ReadOptions ro;
  ro.snapshot = snapshot_;
  ro.iterate_upper_bound = &upper_slice;
  std::unique_ptr<rocksdb::Iterator> it(store_->db_->NewIterator(ro, store_->current_cf_));
  std::string start = prefix;
  if (!after_id.empty()) {
    start.append(after_id.data(), after_id.size());
    start.push_back('\0');  // strictly after `after_id`
  }
  Record record;
  for (it->Seek(start); it->Valid(); it->Next()) {
    if (!record.ParseFromArray(it->value().data(), static_cast<int>(it->value().size()))) {
      return absl::DataLossError("stored record does not parse");
    }
    if (!visit(record)) break;
  }
  return FromRocks(it->status(), "scan current");
}

absl::Status Reader::ScanCurrentAllPatients(Kind kind, absl::string_view after_patient, absl::string_view after_id,
                                            absl::FunctionRef<bool(const Record&)> visit) const {
  rocksdb::ReadOptions ro;
  ro.snapshot = snapshot_;
  std::unique_ptr<rocksdb::Iterator> it(store_->db_->NewIterator(ro, store_->current_cf_));
  if (after_patient.empty()) {
    it->SeekToFirst();
  } else {
    std::string start = CurrentKey(after_patient, kind, after_id);
    start.push_back('\0');  // strictly after
    it->Seek(start);
  }
  Record record;
  for (; it->Valid(); it->Next()) {
    // Key: patient 0x00 kind id; skip other kinds without parsing values.
    const rocksdb::Slice key = it->key();
    const void* sep = memchr(key.data(), '\0', key.size());
    if (sep == nullptr) continue;
    const size_t kind_pos = static_cast<const char*>(sep) - key.data() + 1;
    if (kind_pos >= key.size() || static_cast<unsigned char>(key[kind_pos]) != static_cast<unsigned>(kind)) continue;
    if (!record.ParseFromArray(it->value().data(), static_cast<int>(it->value().size()))) {
      return absl::DataLossError("stored record does not parse");
    }
    if (!visit(record)) break;
  }
  return FromRocks(it->status(), "scan current of all patients");
}

absl::Status Reader::ScanVersions(Kind kind, absl::string_view patient_id, absl::string_view id, int64_t after_version,
                                  absl::FunctionRef<bool(const Record&)> visit) const {
  const std::string prefix = VersionPrefix(patient_id, kind, id);
  std::string upper = prefix;
  upper.back() = '\x01';
  rocksdb::Slice upper_slice(upper);
  rocksdb::ReadOptions ro;
  ro.snapshot = snapshot_;
  ro.iterate_upper_bound = &upper_slice;
  std::unique_ptr<rocksdb::Iterator> it(store_->db_->NewIterator(ro, store_->versions_cf_));
  Record record;
  for (it->Seek(VersionKey(patient_id, kind, id, after_version + 1)); it->Valid(); it->Next()) {
    if (!record.ParseFromArray(it->value().data(), static_cast<int>(it->value().size()))) {
      return absl::DataLossError("stored version does not parse");
    }
    if (!visit(record)) break;
  }
  return FromRocks(it->status(), "scan versions");
}

absl::StatusOr<std::optional<std::string>> Reader::FindPatient(Kind kind, absl::string_view id) const {
  rocksdb::ReadOptions ro;
  ro.snapshot = snapshot_;
  std::string value;
  auto s = store_->db_->Get(ro, store_->ids_cf_, IdKey(kind, id), &value);
  if (s.IsNotFound()) return std::optional<std::string>();
  if (!s.ok()) return FromRocks(s, "read id index");
  return std::optional<std::string>(std::move(value));
}

absl::Status Reader::ScanIds(Kind kind, absl::string_view from_id,
                             absl::FunctionRef<bool(absl::string_view, absl::string_view)> visit) const {
  const std::string prefix = IdKey(kind, "");
  std::string upper = prefix;
  upper.back() = static_cast<char>(static_cast<unsigned char>(upper.back()) + 1);  // kinds are small
  rocksdb::Slice upper_slice(upper);
  rocksdb::ReadOptions ro;
  ro.snapshot = snapshot_;
  ro.iterate_upper_bound = &upper_slice;
  std::unique_ptr<rocksdb::Iterator> it(store_->db_->NewIterator(ro, store_->ids_cf_));
  for (it->Seek(IdKey(kind, from_id)); it->Valid(); it->Next()) {
    const absl::string_view id(it->key().data() + prefix.size(), it->key().size() - prefix.size());
    if (!visit(id, absl::string_view(it->value().data(), it->value().size()))) break;
  }
  return FromRocks(it->status(), "scan id index");
}

absl::Status Reader::ScanChanges(uint64_t after_sequence, absl::FunctionRef<bool(const Change&)> visit) const {
  if (after_sequence == UINT64_MAX) return absl::OkStatus();  // nothing after; + 1 would wrap to 0
  rocksdb::ReadOptions ro;
  ro.snapshot = snapshot_;
  std::unique_ptr<rocksdb::Iterator> it(store_->db_->NewIterator(ro, store_->changes_cf_));
  Change change;
  for (it->Seek(ChangeKey(after_sequence + 1)); it->Valid(); it->Next()) {
    if (!change.ParseFromArray(it->value().data(), static_cast<int>(it->value().size()))) {
      return absl::DataLossError("stored change does not parse");
    }
    if (!visit(change)) break;
  }
  return FromRocks(it->status(), "scan changes");
}

// ---------------------------------------------------------------- Store

Store::Store(StoreOptions options)
    : options_(std::move(options)), recovery_backoff_(options_.write_retry_initial_backoff) {}

absl::StatusOr<std::unique_ptr<Store>> Store::Open(StoreOptions options) {
  if (options.path.empty()) return absl::InvalidArgumentError("store path is empty");
  std::unique_ptr<Store> store(new Store(std::move(options)));
  if (auto s = store->OpenDb(); !s.ok()) return s;
  store->completion_thread_ = std::thread([s = store.get()] { s->CompletionLoop(); });
  store->commit_thread_ = std::thread([s = store.get()] { s->CommitLoop(); });
  return store;
}

absl::Status Store::OpenDb() {
  std::error_code ec;
  std::filesystem::create_directories(options_.path, ec);
  if (ec) return absl::UnavailableError(absl::StrCat("cannot create data directory: ", ec.message()));
  // Tickers only (block cache hits and misses for /metrics): the cheapest
  // level that has them.
  statistics_ = rocksdb::CreateDBStatistics();
  statistics_->set_stats_level(rocksdb::StatsLevel::kExceptHistogramOrTimers);
  const rocksdb::ColumnFamilyOptions cf_options =
      StoreColumnFamilyOptions(options_.block_cache_bytes, options_.memtable_budget_bytes, options_.write_buffer_bytes);
  std::vector<rocksdb::ColumnFamilyDescriptor> descriptors;
  for (const char* name : kColumnFamilies) descriptors.emplace_back(name, cf_options);
  auto s = rocksdb::DB::Open(DbOptions(options_, statistics_), options_.path, descriptors, &handles_, &db_);
  if (!s.ok()) return FromRocks(s, "open database");
  meta_cf_ = handles_[0];
  current_cf_ = handles_[1];
  versions_cf_ = handles_[2];
  ids_cf_ = handles_[3];
  requests_cf_ = handles_[4];
  changes_cf_ = handles_[5];
  audit_cf_ = handles_[6];
  state_cf_ = handles_[7];
  {
    absl::MutexLock lock(&db_users_mu_);
    db_open_ = true;
  }
  if (auto st = AnchorWal(); !st.ok()) return st;

  // The last keys of the change log and the audit trail are the last
  // sequences committed, unless retention trimmed every change-log entry:
  // the trimmed-through sequence is never handed out again.
  auto last = LastSequenceKey(db_, changes_cf_, "change-log key", "read change log");
  if (!last.ok()) return last.status();
  auto trimmed = ReadTrimmedThrough(db_, rocksdb::ReadOptions(), meta_cf_);
  if (!trimmed.ok()) return trimmed.status();
  auto last_audit = LastSequenceKey(db_, audit_cf_, "audit key", "read audit trail");
  if (!last_audit.ok()) return last_audit.status();
  absl::MutexLock lock(&mu_);
  last_sequence_ = std::max(*last, *trimmed);
  oldest_change_sequence_ = *trimmed + 1;
  last_audit_sequence_ = *last_audit;
  return absl::OkStatus();
}

Store::~Store() { Close(); }

void Store::Close() {
  absl::MutexLock close_lock(&close_mu_);
  {
    absl::MutexLock lock(&mu_);
    if (closed_) return;
    closing_ = true;
  }
  if (commit_thread_.joinable()) commit_thread_.join();
  {
    absl::MutexLock lock(&completion_mu_);
    completion_stop_ = true;
  }
  if (completion_thread_.joinable()) completion_thread_.join();  // after running every callback
  bool writes_failed;
  {
    absl::MutexLock lock(&mu_);
    writes_failed = writes_failed_;
  }
  if (db_ != nullptr) {
    // A trim's compaction in progress on another thread stops early; the
    // database closes once it has returned.
    db_->DisableManualCompaction();
  }
  absl::MutexLock users_lock(&db_users_mu_);
  db_open_ = false;
  if (db_ != nullptr) {
    // Not after a failed write: RocksDB refuses (and its assertions abort on)
    // another sync of a log that failed, and nothing acknowledged needs it.
    if (!writes_failed) db_->FlushWAL(/*sync=*/true);
    for (auto* h : handles_) db_->DestroyColumnFamilyHandle(h);
    handles_.clear();
    db_->Close();
    delete db_;
    db_ = nullptr;
  }
  absl::MutexLock lock(&mu_);
  closed_ = true;
}

void Store::Commit(Mutation mutation, CommitCallback done) {
  bool full = false;
  {
    absl::MutexLock lock(&mu_);
    full = !closing_ && options_.max_queued_changes > 0 &&
           queue_.size() >= static_cast<size_t>(options_.max_queued_changes);
    if (!closing_ && !full) {
      queue_.push_back(Pending{std::move(mutation), std::move(done)});
      return;
    }
  }
  // Outside the lock: `done` may commit again.
  if (full) return done(absl::ResourceExhaustedError("too many writes waiting to be committed; retry later"));
  done(absl::UnavailableError("store is closed"));
}

absl::StatusOr<Committed> Store::CommitAndWait(Mutation mutation) {
  std::promise<absl::StatusOr<Committed>> promise;
  auto future = promise.get_future();
  Commit(std::move(mutation), [&promise](absl::StatusOr<Committed> result) { promise.set_value(std::move(result)); });
  return future.get();
}

std::unique_ptr<Reader> Store::NewReader() const {
  return std::unique_ptr<Reader>(new Reader(this, db_->GetSnapshot()));
}

uint64_t Store::LastSequence() const {
  absl::MutexLock lock(&mu_);
  return last_sequence_;
}

void Store::AddCommitListener(absl::AnyInvocable<void(uint64_t)> listener) {
  absl::MutexLock lock(&listeners_mu_);
  listeners_.push_back(std::move(listener));
  has_listeners_.store(true, std::memory_order_release);
}

void Store::RunCommitListeners(uint64_t last_sequence) {
  absl::MutexLock lock(&listeners_mu_);
  for (auto& listener : listeners_) listener(last_sequence);
}

uint64_t Store::OldestChangeSequence() const {
  absl::MutexLock lock(&mu_);
  return oldest_change_sequence_;
}

absl::Status Store::TrimChangeLog(uint64_t through_sequence) {
  if (through_sequence < OldestChangeSequence()) return absl::OkStatus();  // trimmed already
  StateWork work;
  work.trim_through = through_sequence;
  if (auto s = WriteStateWork(std::move(work)); !s.ok()) return s;
  // Range deletions leave the entries on disk until a compaction drops
  // them; left to RocksDB that may take long on a log that only grows at
  // its end. Compacting just the trimmed range returns the space now.
  absl::ReaderMutexLock lock(&db_users_mu_);
  if (!db_open_) return absl::OkStatus();  // the trim is written; the space comes back later
  const std::string end = ChangeKey(std::min(through_sequence, LastSequence()) + 1);
  const rocksdb::Slice end_slice(end);
  rocksdb::CompactRangeOptions compact;
  compact.exclusive_manual_compaction = false;  // commits' flushes and compactions go on
  compact.bottommost_level_compaction = rocksdb::BottommostLevelCompaction::kForceOptimized;
  auto s = db_->CompactRange(compact, changes_cf_, nullptr, &end_slice);
  if (!s.ok() && !s.IsIncomplete()) {  // Incomplete: the store is closing
    log::Warning("compaction of the trimmed change log failed", {{"error", s.ToString()}});
  }
  return absl::OkStatus();
}

absl::Status Store::WriteState(std::vector<StateWrite> writes) {
  for (const StateWrite& w : writes) {
    if (w.key.empty()) return absl::InvalidArgumentError("state key is empty");
  }
  if (writes.empty()) return absl::OkStatus();
  StateWork work;
  work.writes = std::move(writes);
  return WriteStateWork(std::move(work));
}

absl::Status Store::WriteStateWork(StateWork work) {
  std::promise<absl::Status> promise;
  auto future = promise.get_future();
  work.done = [&promise](absl::Status s) { promise.set_value(std::move(s)); };
  {
    absl::MutexLock lock(&mu_);
    if (closing_) return absl::UnavailableError("store is closed");
    state_queue_.push_back(std::move(work));
  }
  return future.get();
}

absl::StatusOr<std::optional<std::string>> Reader::GetState(absl::string_view key) const {
  rocksdb::ReadOptions ro;
  ro.snapshot = snapshot_;
  std::string value;
  auto s = store_->db_->Get(ro, store_->state_cf_, rocksdb::Slice(key.data(), key.size()), &value);
  if (s.IsNotFound()) return std::optional<std::string>();
  if (!s.ok()) return FromRocks(s, "read state");
  return std::optional<std::string>(std::move(value));
}

absl::Status Reader::ScanState(absl::string_view prefix, absl::string_view after_key,
                               absl::FunctionRef<bool(absl::string_view, absl::string_view)> visit) const {
  rocksdb::ReadOptions ro;
  ro.snapshot = snapshot_;
  std::unique_ptr<rocksdb::Iterator> it(store_->db_->NewIterator(ro, store_->state_cf_));
  std::string start(prefix);
  if (!after_key.empty() && after_key >= prefix) {
    start.assign(after_key.data(), after_key.size());
    start.push_back('\0');  // the first key strictly after `after_key`
  }
  for (it->Seek(start); it->Valid(); it->Next()) {
    const absl::string_view key(it->key().data(), it->key().size());
    if (!absl::StartsWith(key, prefix)) break;
    if (!visit(key, absl::string_view(it->value().data(), it->value().size()))) break;
  }
  return FromRocks(it->status(), "scan state");
}

absl::StatusOr<std::string> Store::GetOrCreateSecret(absl::string_view name) {
  const std::string key = absl::StrCat("meta/secret/", name);
  std::string value;
  auto s = db_->Get(rocksdb::ReadOptions(), meta_cf_, key, &value);
  if (s.ok()) return value;
  if (!s.IsNotFound()) return FromRocks(s, "read secret");
  value.resize(32);
  if (RAND_bytes(reinterpret_cast<unsigned char*>(value.data()), static_cast<int>(value.size())) != 1) {
    return absl::InternalError("no randomness for secret");
  }
  rocksdb::WriteOptions wo;
  wo.sync = true;
  s = db_->Put(wo, meta_cf_, key, value);
  if (!s.ok()) return FromRocks(s, "write secret");
  return value;
}

void Store::CommitLoop() {
  NameThisThread("wmty-commit");
  std::vector<Pending> batch;
  std::vector<AuditRecord> audits;
  std::vector<StateWork> state;
  while (TakeWork(batch, audits, state)) {
    CommitBatch(batch, audits, state);
    batch.clear();
    audits.clear();
    state.clear();
  }
  // Close() syncs the log after this thread ends.
}

bool Store::ChangeQueuedOrClosing() const { return !queue_.empty() || !state_queue_.empty() || closing_; }

bool Store::WorkQueuedOrClosing() const { return ChangeQueuedOrClosing() || !audit_queue_.empty(); }

bool Store::TakeWork(std::vector<Pending>& batch, std::vector<AuditRecord>& audits, std::vector<StateWork>& state) {
  absl::MutexLock lock(&mu_);
  while (true) {
    AwaitWork();
    if (!queue_.empty() || !audit_queue_.empty() || !state_queue_.empty()) break;
    if (closing_) return false;
    // Woken by the audit sync deadline alone.
    if (audits_unsynced_ && !writes_failed_) {
      mu_.Unlock();
      SyncAudits();
      mu_.Lock();
    }
  }
  if (!audit_queue_.empty()) last_audit_write_ = absl::Now();
  while (!queue_.empty() && static_cast<int>(batch.size()) < options_.max_batch_size) {
    batch.push_back(std::move(queue_.front()));
    queue_.pop_front();
  }
  audits.swap(audit_queue_);
  state.swap(state_queue_);
  return true;
}

void Store::AwaitWork() {
  if (writes_failed_ && !audit_queue_.empty()) {
    // Held audit records wait for the next recovery attempt; a change
    // (answered at once) or closing wakes us earlier.
    mu_.AwaitWithDeadline(absl::Condition(this, &Store::ChangeQueuedOrClosing), next_recovery_attempt_);
  } else if (options_.audit_sync_interval > absl::ZeroDuration()) {
    AwaitChangeOrAuditsDue();
  } else {
    mu_.Await(absl::Condition(this, &Store::WorkQueuedOrClosing));
  }
}

void Store::AwaitChangeOrAuditsDue() {
  // A change (or closing) is taken at once. Audit records alone are written
  // at most every kAuditWriteInterval (so a read load makes a few large
  // writes, not one per read) and synced by audit_sync_due_ at the latest.
  while (queue_.empty() && state_queue_.empty() && !closing_) {
    absl::Time deadline = absl::InfiniteFuture();
    if (!audit_queue_.empty()) deadline = last_audit_write_ + kAuditWriteInterval;
    if (audits_unsynced_) deadline = std::min(deadline, audit_sync_due_);
    if (deadline <= absl::Now()) break;
    // With no audit record queued, the first one to arrive must wake us too:
    // waiting for a change alone would leave it unwritten until the sync
    // deadline.
    const absl::Condition wake = audit_queue_.empty() ? absl::Condition(this, &Store::WorkQueuedOrClosing)
                                                      : absl::Condition(this, &Store::ChangeQueuedOrClosing);
    if (deadline == absl::InfiniteFuture()) {
      mu_.Await(wake);
    } else {
      mu_.AwaitWithDeadline(wake, deadline);
    }
  }
}

void Store::Complete(std::vector<Completion> completions) {
  if (completions.empty()) return;
  absl::MutexLock lock(&completion_mu_);
  if (completions_.empty()) {
    completions_ = std::move(completions);
  } else {
    std::move(completions.begin(), completions.end(), std::back_inserter(completions_));
  }
}

void Store::CompletionLoop() {
  NameThisThread("wmty-complete");
  std::vector<Completion> run;
  while (true) {
    {
      absl::MutexLock lock(&completion_mu_);
      completion_mu_.Await(absl::Condition(
          +[](Store* s) ABSL_EXCLUSIVE_LOCKS_REQUIRED(s->completion_mu_) {
            return !s->completions_.empty() || s->completion_stop_;
          },
          this));
      if (completions_.empty()) return;  // stopping, and everything has run
      run.swap(completions_);
    }
    for (Completion& c : run) {
      if (c.done) {
        c.done(std::move(c.result));
      } else {
        RunCommitListeners(c.listeners_through);
      }
    }
    run.clear();
  }
}

void Store::SyncAudits() {
  auto s = db_->SyncWAL();
  if (!s.ok()) {
    // Like a failed write: writes stop until the store recovers; the
    // records are in the log already and are synced by the first write after.
    WriteFailed(s.ToString());
    return;
  }
  audits_unsynced_ = false;
  audit_sync_due_ = absl::InfiniteFuture();
}

void Store::AppendAudit(AuditRecord record) {
  absl::MutexLock lock(&mu_);
  if (closing_) {
    log::Error("audit record dropped: store is closing");
    return;
  }
  audit_queue_.push_back(std::move(record));
}

void Store::HoldAudits(std::vector<AuditRecord>& audits) {
  if (audits.empty()) return;
  for (AuditRecord& audit : audits) audit.set_sequence(0);  // assigned again when written
  absl::MutexLock lock(&mu_);
  if (closing_) {
    log::Error("audit records lost: storage writes fail and the store is closing",
               {{"count", std::to_string(audits.size())}});
    return;
  }
  // Older records go first, ahead of those queued meanwhile.
  audits.insert(audits.end(), std::make_move_iterator(audit_queue_.begin()),
                std::make_move_iterator(audit_queue_.end()));
  audit_queue_.swap(audits);
  audits.clear();
  if (audit_queue_.size() > kMaxHeldAudits) {
    const size_t excess = audit_queue_.size() - kMaxHeldAudits;
    log::Error("audit records lost: too many held while storage writes fail", {{"count", std::to_string(excess)}});
    audit_queue_.erase(audit_queue_.begin(), audit_queue_.begin() + static_cast<std::ptrdiff_t>(excess));
  }
}

StoreStats Store::Stats() const {
  StoreStats stats;
  {
    absl::MutexLock lock(&mu_);
    stats.queued_changes = queue_.size();
    stats.writes_available = !writes_failed_;
    stats.oldest_change_sequence = oldest_change_sequence_;
    stats.last_change_sequence = last_sequence_;
    stats.change_log_trims = change_log_trims_;
    if (closed_) return stats;
  }
  if (statistics_ != nullptr) {
    stats.block_cache_hits = statistics_->getTickerCount(rocksdb::BLOCK_CACHE_HIT);
    stats.block_cache_misses = statistics_->getTickerCount(rocksdb::BLOCK_CACHE_MISS);
    stats.write_stall_micros = statistics_->getTickerCount(rocksdb::STALL_MICROS);
  }
  uint64_t value = 0;
  if (db_->GetAggregatedIntProperty(rocksdb::DB::Properties::kCompactionPending, &value)) {
    stats.compaction_pending = value > 0;
  }
  if (db_->GetAggregatedIntProperty(rocksdb::DB::Properties::kEstimatePendingCompactionBytes, &value)) {
    stats.pending_compaction_bytes = value;
  }
  if (db_->GetAggregatedIntProperty(rocksdb::DB::Properties::kLiveSstFilesSize, &value)) {
    stats.live_sst_bytes = value;
  }
  if (db_->GetIntProperty(rocksdb::DB::Properties::kActualDelayedWriteRate, &value)) {
    stats.writes_delayed = value > 0;
  }
  // The cache is shared by every family: any family's figure is the cache's.
  if (db_->GetIntProperty(rocksdb::DB::Properties::kBlockCacheUsage, &value)) stats.block_cache_bytes = value;
  if (db_->GetIntProperty(rocksdb::DB::Properties::kBlockCachePinnedUsage, &value)) {
    stats.block_cache_pinned_bytes = value;
  }
  for (rocksdb::ColumnFamilyHandle* cf : handles_) {
    std::string files;
    uint64_t n = 0;
    if (db_->GetProperty(cf, rocksdb::DB::Properties::kNumFilesAtLevelPrefix + std::string("0"), &files) &&
        absl::SimpleAtoi(files, &n)) {
      stats.l0_files = std::max(stats.l0_files, n);
    }
  }
  return stats;
}

bool Store::WritesAvailable() const {
  absl::MutexLock lock(&mu_);
  return !writes_failed_;
}

void Store::WriteFailed(const std::string& error) {
  log::Error("storage write failed: writes are refused until the store recovers", {{"error", error}});
  if (failed_wal_ == 0) failed_wal_ = CurrentWal();
  absl::MutexLock lock(&mu_);
  if (!writes_failed_) recovery_backoff_ = options_.write_retry_initial_backoff;
  writes_failed_ = true;
  next_recovery_attempt_ = absl::Now() + recovery_backoff_;
}

bool Store::ReadyToWrite(bool closing) {
  {
    absl::MutexLock lock(&mu_);
    if (!writes_failed_) return true;
    // Closing: one last attempt, so that what is queued gets its chance.
    if (!closing && absl::Now() < next_recovery_attempt_) return false;
  }
  const absl::Status s = RecoverWrites();
  absl::MutexLock lock(&mu_);
  if (s.ok()) {
    writes_failed_ = false;
    recovery_backoff_ = options_.write_retry_initial_backoff;
    log::Info("storage writes work again");
    return true;
  }
  recovery_backoff_ = std::min(recovery_backoff_ * 2, options_.write_retry_max_backoff);
  next_recovery_attempt_ = absl::Now() + recovery_backoff_;
  log::Warning(fatal_ ? "storage refuses writes until wmtyd is restarted (RocksDB deems the error fatal)"
                      : "storage still refuses writes",
               {{"error", std::string(s.message())},
                {"retry_in_ms", std::to_string(absl::ToInt64Milliseconds(recovery_backoff_))}});
  return false;
}

absl::Status Store::RecoverWrites() {
  // Resume() flushes the memtables, which starts a new write-ahead log;
  // while the disk is still full that fails in a way RocksDB deems fatal
  // (only a restart would help), so it waits for free space.
  if (auto free = FreeBytes(); free.has_value() && *free < kMinFreeBytesToResume) {
    return absl::UnavailableError("resume after a failed write: the disk is still full");
  }
  // Leaves RocksDB's read-only error state. Refused (for good) after errors
  // RocksDB deems fatal, such as an I/O error other than "no space" on the
  // write-ahead log: then only a restart (which replays the log) helps.
  auto s = db_->Resume();
  if (!s.ok()) {
    fatal_ = s.severity() >= rocksdb::Status::Severity::kFatalError;
    return FromRocks(s, "resume after a failed write");
  }
  // Resume() flushes every memtable, and with one not empty (AnchorWal) that
  // starts a fresh write-ahead log and retires the one the failed write used.
  // That log must never be written again (RocksDB refuses, and its assertions
  // abort) nor replayed: a torn record would end replay early after a crash
  // (point-in-time recovery), hiding later acknowledged writes, and a whole
  // one would bring back changes whose sequence numbers the next batches
  // reuse. Should the log not have changed, give up until a restart.
  if (failed_wal_ != 0 && CurrentWal() == failed_wal_) {
    fatal_ = true;
    return absl::UnavailableError("the write-ahead log of the failed write is still in use");
  }
  failed_wal_ = 0;
  return AnchorWal();
}

std::optional<uint64_t> Store::FreeBytes() const {
  rocksdb::Env* env = options_.env != nullptr ? options_.env.get() : rocksdb::Env::Default();
  uint64_t free = 0;
  if (!env->GetFreeSpace(options_.path, &free).ok()) return std::nullopt;
  return free;
}

absl::Status Store::AnchorWal() {
  rocksdb::WriteOptions wo;
  wo.disableWAL = true;  // only in the memtable: nothing to replay, nothing to sync
  return FromRocks(db_->Put(wo, meta_cf_, "meta/wal-anchor", ""), "anchor the write-ahead log");
}

uint64_t Store::CurrentWal() const {
  std::unique_ptr<rocksdb::LogFile> wal;
  if (!db_->GetCurrentWalFile(&wal).ok() || wal == nullptr) return 0;
  return wal->LogNumber();
}

uint64_t Store::LastAuditSequence() const {
  absl::MutexLock lock(&mu_);
  return last_audit_sequence_;
}

absl::Status Reader::ScanAudit(uint64_t after_sequence, absl::FunctionRef<bool(const AuditRecord&)> visit) const {
  if (after_sequence == UINT64_MAX) return absl::OkStatus();
  rocksdb::ReadOptions ro;
  ro.snapshot = snapshot_;
  std::unique_ptr<rocksdb::Iterator> it(store_->db_->NewIterator(ro, store_->audit_cf_));
  AuditRecord record;
  for (it->Seek(AuditKey(after_sequence + 1)); it->Valid(); it->Next()) {
    if (!record.ParseFromArray(it->value().data(), static_cast<int>(it->value().size()))) {
      return absl::DataLossError("stored audit record does not parse");
    }
    if (!visit(record)) break;
  }
  return FromRocks(it->status(), "scan audit trail");
}

// One MultiGet for the whole batch instead of a Get per key: RocksDB shares
// the per-file work of sorted lookups (most are for absent keys, each checked
// against the filter of every level), which made the two Gets per change
// about a tenth of the server's CPU under durable creates. Nothing is
// written between this read and the batch's loop, which sees the batch's
// own earlier changes through its overlays first.
struct Store::BatchLookups {
  // By index into the batch; empty for a change past its deadline.
  std::vector<std::string> request_keys;  // only with a request id
  std::vector<std::string> current_keys;
  // Index into values/statuses (meaningful only where a lookup was made).
  std::vector<size_t> request_lookup;
  std::vector<size_t> current_lookup;
  std::vector<rocksdb::PinnableSlice> values;
  std::vector<rocksdb::Status> statuses;

  absl::StatusOr<bool> Parse(size_t at, google::protobuf::MessageLite* message, absl::string_view read_error,
                             absl::string_view parse_error) const;
};

Store::BatchLookups Store::LookUpBatch(const std::vector<Pending>& batch, absl::Time now) const {
  BatchLookups l;
  l.request_keys.resize(batch.size());
  l.current_keys.resize(batch.size());
  l.request_lookup.assign(batch.size(), 0);
  l.current_lookup.assign(batch.size(), 0);
  std::vector<rocksdb::ColumnFamilyHandle*> families;
  std::vector<rocksdb::Slice> keys;
  families.reserve(2 * batch.size());
  keys.reserve(2 * batch.size());
  for (size_t i = 0; i < batch.size(); ++i) {
    const Mutation& m = batch[i].mutation;
    if (now > m.deadline) continue;
    if (!m.request_id.empty()) {
      l.request_keys[i] = RequestKey(m.patient_id, m.request_id);
      l.request_lookup[i] = keys.size();
      families.push_back(requests_cf_);
      keys.emplace_back(l.request_keys[i]);  // the vector of keys is not resized again
    }
    l.current_keys[i] = CurrentKey(m.patient_id, m.kind, m.id);
    if (!m.new_id) {
      l.current_lookup[i] = keys.size();
      families.push_back(current_cf_);
      keys.emplace_back(l.current_keys[i]);
    }
  }
  l.values = std::vector<rocksdb::PinnableSlice>(keys.size());
  l.statuses.resize(keys.size());
  if (!keys.empty()) {
    db_->MultiGet(rocksdb::ReadOptions(), keys.size(), families.data(), keys.data(), l.values.data(),
                  l.statuses.data());
  }
  return l;
}

// The stored value of lookup `at` parsed into `message`: true if it was
// found, false if the key is absent.
absl::StatusOr<bool> Store::BatchLookups::Parse(size_t at, google::protobuf::MessageLite* message,
                                                absl::string_view read_error, absl::string_view parse_error) const {
  const rocksdb::Status& s = statuses[at];
  if (s.IsNotFound()) return false;
  if (!s.ok()) return FromRocks(s, read_error);
  if (!message->ParseFromArray(values[at].data(), static_cast<int>(values[at].size()))) {
    return absl::DataLossError(parse_error);
  }
  return true;
}

// ---------------------------------------------------------------- Group commit

// One group commit while it is built and written, on the commit thread: each
// change's outcome, the WriteBatch, and the sequences handed out. Changes are
// applied in queue order; each sees the batch's earlier changes through the
// overlays first (by index into outcomes_, which holds their records: no
// copies), then the stored state looked up for the whole batch at once.
class Store::Batch {
 public:
  // Looks up the stored state the changes read (Store::LookUpBatch).
  Batch(Store* store, std::vector<Pending>& pending);
  Batch(const Batch&) = delete;
  Batch& operator=(const Batch&) = delete;

  // The steps of a group commit, in this order.
  void ApplyChanges();
  void AddAudits(std::vector<AuditRecord>& audits);
  // State writes and change-log trims (clamped to the sequences committed
  // before this batch).
  void AddState(const std::vector<StateWork>& state);
  // Writes the WriteBatch (synced when it carries changes or due audit
  // records). On failure every change of it fails with UNAVAILABLE, its
  // sequences are handed out again and `audits` are held for a later write.
  void WriteAndSync(std::vector<AuditRecord>& audits);
  // Makes the batch's sequences the store's, tells cached patient values
  // they may be stale, and hands every answer to the completion thread.
  void PublishAndComplete();
  // Answers the state writes and trims (on this thread: their callers wait).
  void FinishState(std::vector<StateWork>& state);

 private:
  struct Outcome {
    absl::StatusOr<Committed> result = absl::UnknownError("not committed");
    bool writes = false;  // part of the WriteBatch (fails if the write fails)
  };

  void ApplyChange(size_t i);
  // Idempotency: when change i's request id is known (stored, or used earlier
  // in this batch), sets its outcome (the first result, or why not) and
  // returns true.
  bool AnswerKnownRequest(size_t i);
  absl::StatusOr<Committed> Replay(const Mutation& m, const RequestOutcome& known, bool* writes) const;
  // The record change i applies to, as of the batch's earlier changes; null
  // when there is none. `stored` holds it when it comes from the database.
  absl::StatusOr<const Record*> CurrentRecord(size_t i, Record* stored) const;
  // Puts change i's new version, its change-log entry, its id index entry (on
  // creation) and its request outcome into the WriteBatch.
  void AddToWriteBatch(size_t i, const WriteStamp& stamp, Record next);
  void FailChanges();
  // Moves OldestChangeSequence up before a trim is written, so that it never
  // names an entry a new Reader lacks; back if the write fails.
  void AdvanceOldest();
  void RestoreOldest();
  // Keeps StoreOptions::audit_sync_interval: when unsynced audit records
  // must be synced at the latest.
  void TrackAuditSync(bool synced, absl::Time real_now);

  Store& store_;
  std::vector<Pending>& pending_;
  const absl::Time now_;
  const BatchLookups stored_;
  uint64_t first_sequence_ = 0;
  uint64_t sequence_ = 0;  // the last one handed out
  uint64_t first_audit_sequence_ = 0;
  uint64_t audit_sequence_ = 0;
  bool state_writes_ = false;  // the batch carries state writes or a trim
  uint64_t trim_through_ = 0;  // the last sequence this batch trims (0: none)
  uint64_t oldest_before_ = 0;
  absl::Status write_status_;
  std::vector<Outcome> outcomes_;
  rocksdb::WriteBatch wb_;
  absl::flat_hash_map<std::string, size_t> current_overlay_;
  absl::flat_hash_map<std::string, size_t> version_overlay_;
  absl::flat_hash_map<std::string, RequestOutcome> request_overlay_;
};

Store::Batch::Batch(Store* store, std::vector<Pending>& pending)
    : store_(*store),
      pending_(pending),
      now_(store->options_.clock()),
      stored_(store->LookUpBatch(pending, now_)),
      outcomes_(pending.size()) {
  // Only the commit thread moves them: they stay put while the batch is built.
  absl::MutexLock lock(&store_.mu_);
  first_sequence_ = sequence_ = store_.last_sequence_;
  first_audit_sequence_ = audit_sequence_ = store_.last_audit_sequence_;
  oldest_before_ = store_.oldest_change_sequence_;
}

void Store::Batch::ApplyChanges() {
  for (size_t i = 0; i < pending_.size(); ++i) ApplyChange(i);
}

void Store::Batch::ApplyChange(size_t i) {
  Mutation& m = pending_[i].mutation;
  Outcome& out = outcomes_[i];
  if (now_ > m.deadline) {
    out.result = absl::DeadlineExceededError("deadline passed before the change was committed");
    return;
  }
  if (AnswerKnownRequest(i)) return;
  Record stored;
  const absl::StatusOr<const Record*> current = CurrentRecord(i, &stored);
  if (!current.ok()) {
    out.result = current.status();
    return;
  }
  WriteStamp stamp;
  stamp.version = *current != nullptr ? (*current)->version() + 1 : 1;
  stamp.sequence = sequence_ + 1;
  stamp.time = now_;
  Record next;
  if (auto s = m.apply(*current, stamp, &next); !s.ok()) {
    out.result = s;
    return;
  }
  ++sequence_;
  AddToWriteBatch(i, stamp, std::move(next));
}

bool Store::Batch::AnswerKnownRequest(size_t i) {
  const Mutation& m = pending_[i].mutation;
  if (m.request_id.empty()) return false;
  Outcome& out = outcomes_[i];
  RequestOutcome stored;
  const RequestOutcome* known = &stored;
  if (auto it = request_overlay_.find(stored_.request_keys[i]); it != request_overlay_.end()) {
    known = &it->second;
  } else {
    auto found =
        stored_.Parse(stored_.request_lookup[i], &stored, "read request id", "stored request outcome does not parse");
    if (!found.ok()) {
      out.result = found.status();
      return true;
    }
    if (!*found) return false;  // a new request id
  }
  if (known->fingerprint() != m.fingerprint) {
    out.result = absl::AlreadyExistsError("request_id was already used for a different request");
    return true;
  }
  out.result = Replay(m, *known, &out.writes);
  return true;
}

absl::StatusOr<Committed> Store::Batch::Replay(const Mutation& m, const RequestOutcome& known, bool* writes) const {
  const std::string key = VersionKey(m.patient_id, known.kind(), known.id(), known.version());
  Committed replay;
  replay.replayed = true;
  if (auto it = version_overlay_.find(key); it != version_overlay_.end()) {
    replay.record = outcomes_[it->second].result->record;
    *writes = true;  // only valid if this batch lands
    return replay;
  }
  std::string value;
  auto s = store_.db_->Get(rocksdb::ReadOptions(), store_.versions_cf_, key, &value);
  if (!s.ok() || !replay.record.ParseFromString(value)) {
    return absl::DataLossError("version named by a request id is missing");
  }
  return replay;
}

absl::StatusOr<const Record*> Store::Batch::CurrentRecord(size_t i, Record* stored) const {
  if (auto it = current_overlay_.find(stored_.current_keys[i]); it != current_overlay_.end()) {
    return &outcomes_[it->second].result->record;
  }
  if (pending_[i].mutation.new_id) return static_cast<const Record*>(nullptr);
  auto found = stored_.Parse(stored_.current_lookup[i], stored, "read current", "stored record does not parse");
  if (!found.ok()) return found.status();
  return *found ? stored : static_cast<const Record*>(nullptr);
}

void Store::Batch::AddToWriteBatch(size_t i, const WriteStamp& stamp, Record next) {
  const Mutation& m = pending_[i].mutation;
  next.set_kind(m.kind);
  next.set_patient_id(m.patient_id);
  next.set_id(m.id);
  next.set_version(stamp.version);
  next.set_sequence(stamp.sequence);
  next.set_update_time_micros(absl::ToUnixMicros(stamp.time));
  const std::string bytes = next.SerializeAsString();
  const std::string& current_key = stored_.current_keys[i];
  const std::string& request_key = stored_.request_keys[i];
  const std::string version_key = VersionKey(m.patient_id, m.kind, m.id, stamp.version);
  wb_.Put(store_.current_cf_, current_key, bytes);
  wb_.Put(store_.versions_cf_, version_key, bytes);
  wb_.Put(store_.changes_cf_, ChangeKey(stamp.sequence), ChangeOf(next, m.op).SerializeAsString());
  if (stamp.version == 1 && m.kind != PRIORITIES) wb_.Put(store_.ids_cf_, IdKey(m.kind, m.id), m.patient_id);
  if (!request_key.empty()) {
    RequestOutcome request;
    request.set_fingerprint(m.fingerprint);
    request.set_kind(m.kind);
    request.set_id(m.id);
    request.set_version(stamp.version);
    wb_.Put(store_.requests_cf_, request_key, request.SerializeAsString());
    request_overlay_[request_key] = std::move(request);
  }
  current_overlay_[current_key] = i;
  version_overlay_[version_key] = i;
  outcomes_[i].writes = true;
  outcomes_[i].result = Committed{std::move(next), false};
}

void Store::Batch::AddAudits(std::vector<AuditRecord>& audits) {
  for (AuditRecord& audit : audits) {
    audit.set_sequence(++audit_sequence_);
    if (audit.time_micros() == 0) audit.set_time_micros(absl::ToUnixMicros(now_));
    wb_.Put(store_.audit_cf_, AuditKey(audit.sequence()), audit.SerializeAsString());
  }
}

void Store::Batch::AddState(const std::vector<StateWork>& state) {
  for (const StateWork& work : state) {
    state_writes_ = true;
    for (const StateWrite& w : work.writes) {
      if (w.value.has_value()) {
        wb_.Put(store_.state_cf_, w.key, *w.value);
      } else {
        wb_.Delete(store_.state_cf_, w.key);
      }
    }
    // Never past what was committed before this batch: its own entries stay.
    trim_through_ = std::max(trim_through_, std::min(work.trim_through, first_sequence_));
  }
  if (trim_through_ < oldest_before_) {
    trim_through_ = 0;  // trimmed already
    return;
  }
  // Only entries from oldest_before_ on exist; one tombstone covers them.
  wb_.DeleteRange(store_.changes_cf_, ChangeKey(oldest_before_), ChangeKey(trim_through_ + 1));
  std::string through;
  AppendBigEndian64(&through, trim_through_);
  wb_.Put(store_.meta_cf_, rocksdb::Slice(kChangeLogTrimmedThroughKey.data(), kChangeLogTrimmedThroughKey.size()),
          through);
}

void Store::Batch::AdvanceOldest() {
  if (trim_through_ == 0) return;
  absl::MutexLock lock(&store_.mu_);
  store_.oldest_change_sequence_ = trim_through_ + 1;
}

void Store::Batch::RestoreOldest() {
  if (trim_through_ == 0) return;
  absl::MutexLock lock(&store_.mu_);
  store_.oldest_change_sequence_ = oldest_before_;
  trim_through_ = 0;
}

void Store::Batch::FinishState(std::vector<StateWork>& state) {
  if (trim_through_ != 0) {
    absl::MutexLock lock(&store_.mu_);
    ++store_.change_log_trims_;
  }
  for (StateWork& work : state) work.done(write_status_);
}

void Store::Batch::WriteAndSync(std::vector<AuditRecord>& audits) {
  if (wb_.Count() == 0) return;
  const StoreOptions& options = store_.options_;
  // Changes are synced before they are acknowledged. A batch of audit
  // records alone is synced only once the oldest unsynced one is due.
  const bool changes = std::any_of(outcomes_.begin(), outcomes_.end(), [](const Outcome& o) { return o.writes; });
  // Real time (not options.clock, which tests move): the deadline is waited for.
  const absl::Time real_now = absl::Now();
  const bool audits_due = store_.audits_unsynced_ && real_now >= store_.audit_sync_due_;
  rocksdb::WriteOptions wo;
  wo.sync = options.sync_writes &&
            (changes || state_writes_ || audits_due || options.audit_sync_interval <= absl::ZeroDuration());
  AdvanceOldest();
  const absl::Time write_start = absl::Now();
  auto s = store_.db_->Write(wo, &wb_);
  store_.synced_write_seconds_.Observe(absl::ToDoubleSeconds(absl::Now() - write_start));
  if (s.ok()) {
    if (options.sync_writes) TrackAuditSync(wo.sync, real_now);
    return;
  }
  // Nothing of the batch is visible (RocksDB applies a batch to its memtables
  // only after the log write succeeded), so its sequence numbers are free
  // again; RecoverWrites makes sure the log cannot bring the batch back before
  // they are reused. Audit records are held and written once writes work again.
  store_.WriteFailed(s.ToString());
  FailChanges();
  RestoreOldest();
  write_status_ =
      absl::UnavailableError("storage write failed (disk full or I/O error): nothing was written; retry later");
  sequence_ = first_sequence_;
  audit_sequence_ = first_audit_sequence_;
  store_.HoldAudits(audits);
}

void Store::Batch::TrackAuditSync(bool synced, absl::Time real_now) {
  if (synced) {
    store_.audits_unsynced_ = false;
    store_.audit_sync_due_ = absl::InfiniteFuture();
  } else if (!store_.audits_unsynced_) {
    store_.audits_unsynced_ = true;
    store_.audit_sync_due_ = real_now + store_.options_.audit_sync_interval;
  }
}

void Store::Batch::FailChanges() {
  for (Outcome& out : outcomes_) {
    if (!out.writes) continue;
    out.result = absl::UnavailableError(
        "storage write failed (disk full or I/O error): the change was not applied; retry later with the "
        "same request_id (should the server restart before it recovers, the change may still appear)");
  }
}

void Store::Batch::PublishAndComplete() {
  {
    absl::MutexLock lock(&store_.mu_);
    store_.last_sequence_ = sequence_;
    store_.last_audit_sequence_ = audit_sequence_;
  }
  // The batch is visible to new readers now and acknowledged below: values
  // cached from an older snapshot of these patients stop being used here.
  // (After a failed write nothing is visible; moving on is harmless.)
  for (size_t i = 0; i < pending_.size(); ++i) {
    if (!outcomes_[i].writes) continue;
    store_.patient_generations_[GenerationStripe(pending_[i].mutation.patient_id)].fetch_add(1,
                                                                                             std::memory_order_release);
  }
  std::vector<Completion> completions;
  completions.reserve(pending_.size() + 1);
  // The listeners first: a caller answered below may already have been told
  // by a consumer that follows the log; never the other way round.
  if (sequence_ > first_sequence_ && store_.has_listeners_.load(std::memory_order_acquire)) {
    completions.push_back({nullptr, absl::UnknownError("listeners"), sequence_});
  }
  for (size_t i = 0; i < pending_.size(); ++i) {
    completions.push_back({std::move(pending_[i].done), std::move(outcomes_[i].result)});
  }
  store_.Complete(std::move(completions));
}

void Store::CommitBatch(std::vector<Pending>& batch, std::vector<AuditRecord>& audits, std::vector<StateWork>& state) {
  bool closing;
  {
    absl::MutexLock lock(&mu_);
    closing = closing_;
  }
  if (!ReadyToWrite(closing)) return RefuseBatch(batch, audits, state);
  Batch group(this, batch);
  group.ApplyChanges();
  group.AddAudits(audits);
  group.AddState(state);
  group.WriteAndSync(audits);
  group.PublishAndComplete();
  group.FinishState(state);
}

void Store::RefuseBatch(std::vector<Pending>& batch, std::vector<AuditRecord>& audits, std::vector<StateWork>& state) {
  // Fail fast: nothing is read or applied while the database refuses writes.
  for (StateWork& work : state) work.done(absl::UnavailableError(kWritesSuspended));
  HoldAudits(audits);
  std::vector<Completion> refused;
  refused.reserve(batch.size());
  for (Pending& p : batch) refused.push_back({std::move(p.done), absl::UnavailableError(kWritesSuspended)});
  Complete(std::move(refused));
}

size_t Store::GenerationStripe(absl::string_view patient_id) {
  return std::hash<std::string_view>{}(std::string_view(patient_id.data(), patient_id.size())) &
         (kGenerationStripes - 1);
}

uint64_t Store::PatientWriteGeneration(absl::string_view patient_id) const {
  return patient_generations_[GenerationStripe(patient_id)].load(std::memory_order_acquire);
}

absl::Status Store::VerifyIntegrity() const {
  auto reader = NewReader();
  rocksdb::ReadOptions ro;
  ro.snapshot = reader->snapshot_;
  auto trimmed = ReadTrimmedThrough(db_, ro, meta_cf_);
  if (!trimmed.ok()) return trimmed.status();
  auto versions = VerifyVersions(ro, *trimmed);
  if (!versions.ok()) return versions.status();
  if (auto s = VerifyCurrent(ro); !s.ok()) return s;
  return VerifyChangeLog(ro, *trimmed, *versions);
}

// Every version parses, names itself correctly, follows its previous
// version and, unless retention trimmed it (sequence <= `trimmed`), has its
// change-log entry. Returns the number of versions whose entry is kept.
absl::StatusOr<uint64_t> Store::VerifyVersions(const rocksdb::ReadOptions& ro, uint64_t trimmed) const {
  uint64_t versions = 0;
  std::unique_ptr<rocksdb::Iterator> it(db_->NewIterator(ro, versions_cf_));
  for (it->SeekToFirst(); it->Valid(); it->Next()) {
    Record r;
    if (!r.ParseFromArray(it->value().data(), static_cast<int>(it->value().size()))) {
      return absl::DataLossError("a version does not parse");
    }
    if (it->key().ToString() != VersionKey(r.patient_id(), r.kind(), r.id(), r.version())) {
      return absl::DataLossError(absl::StrCat("version key mismatch for ", r.id()));
    }
    std::string value;
    Change c;
    if (r.sequence() > trimmed &&
        (!db_->Get(ro, changes_cf_, ChangeKey(r.sequence()), &value).ok() || !c.ParseFromString(value) ||
         c.id() != r.id() || c.version() != r.version() || c.kind() != r.kind() || c.patient_id() != r.patient_id())) {
      return absl::DataLossError(absl::StrCat("change log disagrees with version ", r.id(), "@", r.version()));
    }
    if (r.version() > 1 &&
        !db_->Get(ro, versions_cf_, VersionKey(r.patient_id(), r.kind(), r.id(), r.version() - 1), &value).ok()) {
      return absl::DataLossError(absl::StrCat("version gap before ", r.id(), "@", r.version()));
    }
    if (r.sequence() > trimmed) ++versions;
  }
  if (!it->status().ok()) return FromRocks(it->status(), "scan versions");
  return versions;
}

// Every current record is its own latest version and is indexed.
absl::Status Store::VerifyCurrent(const rocksdb::ReadOptions& ro) const {
  std::unique_ptr<rocksdb::Iterator> it(db_->NewIterator(ro, current_cf_));
  for (it->SeekToFirst(); it->Valid(); it->Next()) {
    Record r;
    if (!r.ParseFromArray(it->value().data(), static_cast<int>(it->value().size()))) {
      return absl::DataLossError("a current record does not parse");
    }
    std::string value;
    if (!db_->Get(ro, versions_cf_, VersionKey(r.patient_id(), r.kind(), r.id(), r.version()), &value).ok() ||
        value != it->value().ToString()) {
      return absl::DataLossError(absl::StrCat("current record differs from its version: ", r.id()));
    }
    if (db_->Get(ro, versions_cf_, VersionKey(r.patient_id(), r.kind(), r.id(), r.version() + 1), &value).ok()) {
      return absl::DataLossError(absl::StrCat("current record is not the latest version: ", r.id()));
    }
    if (r.kind() != PRIORITIES &&
        (!db_->Get(ro, ids_cf_, IdKey(r.kind(), r.id()), &value).ok() || value != r.patient_id())) {
      return absl::DataLossError(absl::StrCat("id index disagrees for ", r.id()));
    }
  }
  if (!it->status().ok()) return FromRocks(it->status(), "scan current");
  return absl::OkStatus();
}

// The change log has exactly one entry per version it keeps, numbered
// trimmed + 1 .. N, and none at or below `trimmed`.
absl::Status Store::VerifyChangeLog(const rocksdb::ReadOptions& ro, uint64_t trimmed, uint64_t versions) const {
  std::unique_ptr<rocksdb::Iterator> it(db_->NewIterator(ro, changes_cf_));
  uint64_t expected = trimmed + 1;
  for (it->SeekToFirst(); it->Valid(); it->Next(), ++expected) {
    auto seq = DecodeBigEndian64(absl::string_view(it->key().data(), it->key().size()));
    if (!seq.has_value() || *seq != expected) {
      return absl::DataLossError(absl::StrCat("change log gap at sequence ", expected));
    }
  }
  if (!it->status().ok()) return FromRocks(it->status(), "scan change log");
  if (expected - 1 - trimmed != versions) {
    return absl::DataLossError(
        absl::StrCat("change log has ", expected - 1 - trimmed, " entries for ", versions, " versions"));
  }
  return absl::OkStatus();
}

}  // namespace wmty::storage
