// Store: the storage seam of wmty, and its one implementation, on RocksDB.
// Only services/storage names RocksDB; the domain sees the contract below, so
// a second implementation (e.g. on PostgreSQL, for high availability) can be
// written against it without touching the domain. docs/architecture.md
// ("The Store contract") says what such an implementation must keep.
//
// Data. Every change writes a new immutable version of one record, named by
// (kind, patient id, id). Versions count from 1 without gaps. Per record the
// store keeps the current version and every version; per kind an id index
// (ids are unique per kind across patients; PRIORITIES records are not
// indexed); a change log (whose oldest entries retention may trim: see
// TrimChangeLog); an audit trail; for changes that carry a request id, the
// outcome under (patient id, request id); and, apart from records, the small
// keyed state of server components (WriteState).
//
// Order. Ids and patient ids compare as bytes (unsigned, lexicographic:
// RocksDB's default comparator); every scan below visits in that order, and
// the domain's page tokens resume "after" a byte-ordered id.
//
// Commit. One commit thread applies queued changes one after another, in
// queue order, and writes them in groups (leveldb-style group commit):
// - `Mutation::apply` runs on the commit thread against the latest state,
//   including the changes before it in the same group: of N concurrent
//   updates made against the same version exactly one can win, and a
//   precondition checked in `apply` holds when the change is written.
// - Each change's current record, version, id index entry, change-log entry
//   and request outcome are written together, and a group commits all or
//   nothing: a reader never sees half a change or half a group.
// - A change is acknowledged (its callback runs) only after its group is
//   durable (with StoreOptions::sync_writes, in the fsync'ed write-ahead log),
//   and after it is visible to new Readers.
// - Each written change gets the next change sequence: 1, 2, 3, ... in commit
//   order, without gaps among written changes. A change that is refused, or
//   whose group failed to write, takes no sequence (the numbers are handed
//   out again). After a failed write, should the process restart before the
//   store recovered, a change that was answered UNAVAILABLE may still appear
//   (its log record may have reached the disk): clients retry with the same
//   request id, which makes that harmless.
// - Request ids: a change whose request id was committed before (same
//   patient) with the same fingerprint is not applied again; the caller gets
//   the version that request wrote (`Committed::replayed`), even if the
//   record changed since. Another fingerprint: ALREADY_EXISTS. Outcomes are
//   kept for good.
//
// Snapshots. A Reader sees the store exactly as some group commit left it:
// every change with a sequence up to some S and none after, with each
// record's current version, versions, id index entry and change-log entry in
// agreement, and the audit records written up to then. A Reader taken after a
// callback ran sees that change (read your writes).
//
// Audit trail. AppendAudit is fire and forget: audit records get their own
// sequence (1, 2, 3, ... apart from the change sequence) when written, ride
// along with the next group, and are synced within audit_sync_interval.
//
// Errors. Reads: DATA_LOSS when a stored value does not parse or RocksDB
// reports corruption, UNAVAILABLE on I/O errors; a missing record is not an
// error (nullopt). Commit: see Commit. Scans stop at the first error.
//
// Thread safety: all public methods are safe to call from any thread; a
// Reader is used by one thread at a time. `apply` runs on the commit thread
// and must not block or call the store (its view is `current`, not a
// Reader). Commit callbacks run, in commit order, on the store's completion
// thread (so that answering callers, e.g. a gRPC send, overlaps the next
// group commit instead of delaying it) and must not block.
#ifndef WMTY_STORAGE_STORE_H_
#define WMTY_STORAGE_STORE_H_

#include <atomic>
#include <cstdint>
#include <deque>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/functional/any_invocable.h"
#include "absl/functional/function_ref.h"
#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "common/metrics.h"
#include "wmty/storage/record.pb.h"

namespace rocksdb {
class DB;
struct ReadOptions;
class ColumnFamilyHandle;
class Env;
class Snapshot;
class Statistics;
}  // namespace rocksdb

namespace wmty::storage {

struct StoreOptions {
  // Directory of the database; created if missing.
  std::string path;
  // Sync the WAL before acknowledging (the durability guarantee). Only bulk
  // loaders that verify their result afterwards may turn this off.
  bool sync_writes = true;
  // Shared block cache for all column families.
  size_t block_cache_bytes = size_t{256} << 20;
  // Memory for all memtables together (RocksDB WriteBufferManager): past it
  // the largest memtable is flushed. Without a shared budget each of the
  // eight column families may hold 2 x 64 MB, so resident memory would keep
  // growing for a long time under steady writes before flushes bound it.
  size_t memtable_budget_bytes = size_t{128} << 20;
  // Most changes committed in one group commit.
  int max_batch_size = 512;
  // Audit records of reads are written at once but synced at most this long
  // after (by the next change's synced write, or a WAL sync of their own),
  // instead of an fsync per batch: a read-only load would otherwise cost
  // an fsync every few hundred microseconds. A power loss (not a process
  // crash) may lose the audit records of that window, never a change. Zero:
  // every batch with audit records is synced.
  absl::Duration audit_sync_interval = absl::Milliseconds(100);
  // Most changes waiting for the commit thread (not counting the batch being
  // written). Past it Commit refuses at once with RESOURCE_EXHAUSTED, so a
  // burst the disk cannot absorb is refused rather than queued without bound
  // (memory) and left to time out. 0: no limit.
  int max_queued_changes = 10000;
  // Time source for version timestamps (injected by tests).
  std::function<absl::Time()> clock = [] { return absl::Now(); };
  // RocksDB environment (file system, threads); null: the default. Tests pass
  // one built on a fault-injecting file system (tests/support/fault_injection_fs.h).
  std::shared_ptr<rocksdb::Env> env;
  // Memtable size per column family; 0: RocksDB's default (64 MB). Tests make
  // it small so that flushes (and compactions) happen within a few writes.
  size_t write_buffer_bytes = 0;
  // After a failed write the store refuses writes (UNAVAILABLE) until
  // RocksDB's Resume() succeeds; it tries again when a write or audit record
  // comes, at most this often at first, doubling up to the maximum.
  absl::Duration write_retry_initial_backoff = absl::Milliseconds(100);
  absl::Duration write_retry_max_backoff = absl::Seconds(5);
};

// What the store assigns to a change before the caller builds the new version.
struct WriteStamp {
  int64_t version = 0;
  uint64_t sequence = 0;
  absl::Time time;
};

// One change to one record.
struct Mutation {
  Kind kind = KIND_UNSPECIFIED;
  std::string patient_id;
  std::string id;
  Change::Op op = Change::OP_UNSPECIFIED;
  // Optional client request id; a retry with the same id and fingerprint gets
  // the first result back instead of writing again. A reused id with another
  // fingerprint fails with ALREADY_EXISTS.
  std::string request_id;
  std::string fingerprint;
  // Past this the change is not written (DEADLINE_EXCEEDED).
  absl::Time deadline = absl::InfiniteFuture();
  // The id was made for this change (a create's server-generated id, unique
  // by construction): no stored record can have it, so the store does not
  // look one up and `apply` gets nullptr.
  bool new_id = false;
  // Builds the new version from the current record (nullptr when there is
  // none). Runs on the commit thread; must not block. Sets `next->resource`
  // and may set `retracted` and `fhir_extra_json`; the store sets the
  // identity, version, sequence and time. A non-OK status refuses the change
  // and is returned to the caller (nothing is written).
  absl::AnyInvocable<absl::Status(const Record* current, const WriteStamp& stamp, Record* next)> apply;
};

struct Committed {
  Record record;
  // True when this is the stored result of an earlier request with the same id.
  bool replayed = false;
};

using CommitCallback = absl::AnyInvocable<void(absl::StatusOr<Committed>)>;

// A consistent point-in-time view for reads. Cheap to create; release it
// promptly (it pins a RocksDB snapshot). Not thread-safe: one per reader.
class Reader {
 public:
  ~Reader();
  Reader(const Reader&) = delete;
  Reader& operator=(const Reader&) = delete;

  // The latest version, or nullopt.
  absl::StatusOr<std::optional<Record>> GetCurrent(Kind kind, absl::string_view patient_id, absl::string_view id) const;
  absl::StatusOr<std::optional<Record>> GetVersion(Kind kind, absl::string_view patient_id, absl::string_view id,
                                                   int64_t version) const;
  // Visits the current records of one patient and kind whose id sorts after
  // `after_id`, in id order, until `visit` returns false.
  absl::Status ScanCurrent(absl::string_view patient_id, Kind kind, absl::string_view after_id,
                           absl::FunctionRef<bool(const Record&)> visit) const;
  // Visits the current records of `kind` of every patient, in (patient, id)
  // order, starting after (after_patient, after_id). Reads the whole column
  // family: cost grows with the database, not the result.
  absl::Status ScanCurrentAllPatients(Kind kind, absl::string_view after_patient, absl::string_view after_id,
                                      absl::FunctionRef<bool(const Record&)> visit) const;
  // Visits the versions of one record after `after_version`, oldest first.
  absl::Status ScanVersions(Kind kind, absl::string_view patient_id, absl::string_view id, int64_t after_version,
                            absl::FunctionRef<bool(const Record&)> visit) const;
  // The patient a resource id belongs to (ids are unique per kind).
  absl::StatusOr<std::optional<std::string>> FindPatient(Kind kind, absl::string_view id) const;
  // Visits the ids of `kind` from `from_id` on (inclusive) in id order with the patient
  // each belongs to (the id index), until `visit` returns false. Cost grows
  // with the number of resources of that kind only: for PATIENT (id = patient
  // id) it lists every patient without reading the other kinds.
  absl::Status ScanIds(Kind kind, absl::string_view from_id,
                       absl::FunctionRef<bool(absl::string_view id, absl::string_view patient_id)> visit) const;
  // Visits change-log entries after `after_sequence`, in order. Entries
  // below Store::OldestChangeSequence() are gone (trimmed): the first entry
  // visited may be later than after_sequence + 1.
  absl::Status ScanChanges(uint64_t after_sequence, absl::FunctionRef<bool(const Change&)> visit) const;
  // Visits audit records after `after_sequence`, oldest first.
  absl::Status ScanAudit(uint64_t after_sequence, absl::FunctionRef<bool(const AuditRecord&)> visit) const;
  // The state value under `key` (see Store::WriteState), or nullopt.
  absl::StatusOr<std::optional<std::string>> GetState(absl::string_view key) const;
  // Visits state entries whose key starts with `prefix` and sorts after
  // `after_key` (empty: from the first), in key order, until `visit` is false.
  absl::Status ScanState(absl::string_view prefix, absl::string_view after_key,
                         absl::FunctionRef<bool(absl::string_view key, absl::string_view value)> visit) const;

 private:
  friend class Store;
  Reader(const class Store* store, const rocksdb::Snapshot* snapshot);
  const Store* store_;
  const rocksdb::Snapshot* snapshot_;
};

// What /metrics shows of the store (Store::Stats).
struct StoreStats {
  size_t queued_changes = 0;  // waiting for the commit thread
  bool writes_available = true;
  uint64_t block_cache_hits = 0;  // since open
  uint64_t block_cache_misses = 0;
  uint64_t block_cache_bytes = 0;         // in the block cache now
  uint64_t block_cache_pinned_bytes = 0;  // of which in use or pinned (cannot be evicted)
  bool compaction_pending = false;
  uint64_t pending_compaction_bytes = 0;  // RocksDB's estimate
  uint64_t live_sst_bytes = 0;
  // Time writes spent delayed or stopped by RocksDB because flushes or
  // compactions fell behind (too many L0 files or memtables, or too many
  // pending compaction bytes), since open.
  uint64_t write_stall_micros = 0;
  bool writes_delayed = false;  // RocksDB is slowing writes right now
  uint64_t l0_files = 0;        // most level-0 files of any column family
  // The change log: its first and last sequence (entries held: last - oldest
  // + 1), and trims since open.
  uint64_t oldest_change_sequence = 1;
  uint64_t last_change_sequence = 0;
  uint64_t change_log_trims = 0;
};

class Store {
 public:
  // Opens (creating if needed) the database. Errors: UNAVAILABLE if the
  // directory cannot be used or is locked by another process, DATA_LOSS if
  // RocksDB reports corruption.
  static absl::StatusOr<std::unique_ptr<Store>> Open(StoreOptions options);
  ~Store();  // Calls Close().
  Store(const Store&) = delete;
  Store& operator=(const Store&) = delete;

  // Queues a change; `done` runs on the completion thread once it is durable or
  // refused. Errors given to `done`: whatever `apply` returned; ALREADY_EXISTS
  // (request id reused); DEADLINE_EXCEEDED; UNAVAILABLE (closed; or the write
  // failed, e.g. disk full or I/O error: nothing of the batch was written; or
  // writes are suspended since such a failure, see WritesAvailable); RESOURCE_EXHAUSTED (the queue
  // is full, see StoreOptions::max_queued_changes: nothing was written, and
  // `done` runs at once on the calling thread).
  void Commit(Mutation mutation, CommitCallback done);
  // Blocking form of Commit, for tools and tests. Do not call from a commit callback.
  absl::StatusOr<Committed> CommitAndWait(Mutation mutation);

  std::unique_ptr<Reader> NewReader() const;

  // A counter that moves on every committed write to this patient (and to the
  // patients that share its stripe), after the write is visible to readers and
  // before its callback runs. For caches of what is derived from a patient's
  // records: read it before taking the Reader the value is derived from, keep
  // it with the value, and use the value only while it is unchanged. A value
  // so kept never hides an acknowledged write. Never decreases; lock-free.
  uint64_t PatientWriteGeneration(absl::string_view patient_id) const;

  // Appends an audit record (the store assigns its sequence, and its time if
  // unset). Returns at once: the record is written with the next group
  // commit (audit records alone: at most every 2 ms) and synced within
  // audit_sync_interval (so a crash may lose the audit of the last few
  // milliseconds, a power loss that of the interval, never a change). If that write fails, the records are kept
  // (up to kMaxHeldAudits, oldest dropped first with an error log) and written
  // once writes work again; dropped, with an error log, if the store is
  // closed, or closes while writes fail.
  void AppendAudit(AuditRecord record);
  static constexpr size_t kMaxHeldAudits = 100000;
  // Sequence of the last audit record written (0 for none).
  uint64_t LastAuditSequence() const;

  // A random secret stored under `name`, created (and synced) on first use.
  // Errors: UNAVAILABLE (I/O), DATA_LOSS (corruption), INTERNAL (no randomness).
  // Not atomic: two first calls racing for one name may each return another
  // secret; call it once per name at startup (the domain does, for the page
  // token key).
  absl::StatusOr<std::string> GetOrCreateSecret(absl::string_view name);

  // Sequence of the last committed change (0 for an empty store).
  uint64_t LastSequence() const;

  // Following the change log. `listener(last_sequence)` runs on the
  // completion thread after every group commit that wrote changes, once they
  // are visible to new Readers and before their callbacks, in commit order
  // (each call's sequence is larger than the last); it must not block (wake
  // a thread of your own) nor call AddCommitListener. Listeners live as long
  // as the store: register long-lived consumers once, at startup (a listener
  // added later is not told about earlier commits: read LastSequence()).
  // Without listeners a commit costs nothing more.
  void AddCommitListener(absl::AnyInvocable<void(uint64_t last_sequence)> listener);

  // Retention. The first sequence the change log still holds
  // (LastSequence() + 1 when it holds none: everything was trimmed, or
  // nothing was ever written). Durable: kept across restarts. It moves up
  // just before a trim is written, so a Reader taken after it returned S
  // holds every entry from S on unless a later trim removed it: a consumer
  // that reads the log after sequence A and whose first entry is > A + 1
  // must treat that as trimmed (ask again), never as a gap.
  uint64_t OldestChangeSequence() const;
  // Removes the change-log entries with sequence <= `through_sequence`
  // (clamped to LastSequence()), durably (synced, with the next group
  // commit); records, versions and audit are untouched, and sequences are
  // never handed out again. Readers taken before keep seeing them. Then
  // compacts the trimmed range so that its disk space comes back (on the
  // calling thread: may take a while; call it from a thread of your own).
  // Safe to call while changes commit. Errors: UNAVAILABLE (I/O, writes
  // suspended, or closed).
  absl::Status TrimChangeLog(uint64_t through_sequence);

  // State: small values of server components (e.g. subscription delivery
  // cursors) kept apart from records, without versions or change log. One
  // call writes all `writes` atomically and durably (synced, with the next
  // group commit, so concurrent callers share an fsync); a value of nullopt
  // deletes the key. Later writes of one key in the same call win. Blocks
  // until written: do not call from `apply`; from a commit callback or
  // listener it holds up the completion thread for a group commit. Read with
  // Reader::GetState / ScanState (a Reader taken after WriteState returned
  // sees it). Keys are namespaced by component ("push/..." is the
  // subscription engine's). Errors: INVALID_ARGUMENT (an empty key);
  // UNAVAILABLE (I/O, writes suspended after a failed write, or closed:
  // nothing was written).
  struct StateWrite {
    std::string key;
    std::optional<std::string> value;
  };
  absl::Status WriteState(std::vector<StateWrite> writes);

  // False from a failed write (disk full, I/O error) until the store has
  // recovered: meanwhile every write fails fast with UNAVAILABLE and reads
  // work. The commit thread retries (RocksDB DB::Resume) when a write or an
  // audit record is waiting, with a backoff (StoreOptions::write_retry_*).
  bool WritesAvailable() const;

  // Queue depth, health and RocksDB's counters and properties, for /metrics.
  StoreStats Stats() const;
  // Time of each group commit's write (WAL append, and fsync when it carries
  // changes or due audit records), seconds.
  const metrics::Histogram& synced_write_seconds() const { return synced_write_seconds_; }

  // Checks that the current records, versions, id index and change log agree
  // (the change log holding exactly the versions retention did not trim).
  // Returns DATA_LOSS naming the first inconsistency. Scans everything: for
  // tests and offline checks, not the request path.
  absl::Status VerifyIntegrity() const;

  // Commits everything queued, runs every callback, stops the commit and
  // completion threads and closes the database. Later Commit calls fail with
  // UNAVAILABLE. Idempotent.
  void Close();

 private:
  friend class Reader;
  friend class Backups;  // storage/backup.h: BackupEngine runs on db_
  struct Pending {
    Mutation mutation;
    CommitCallback done;
  };
  // A WriteState or the write of a TrimChangeLog, waiting for the commit
  // thread; `done` runs on the commit thread once written (or refused).
  struct StateWork {
    std::vector<StateWrite> writes;
    uint64_t trim_through = 0;  // 0: no trim
    absl::AnyInvocable<void(absl::Status)> done;
  };
  // Queues `work` for the next group commit and waits for its result.
  absl::Status WriteStateWork(StateWork work);

  explicit Store(StoreOptions options);
  absl::Status OpenDb();
  void CommitLoop();
  // Commit thread: waits for changes, audit records or state work and takes
  // them (at most max_batch_size changes); false once closing with nothing
  // left.
  bool TakeWork(std::vector<Pending>& batch, std::vector<AuditRecord>& audits, std::vector<StateWork>& state);
  void AwaitWork() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  void AwaitChangeOrAuditsDue() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // A change or state write (taken at once) is queued, or the store closes.
  bool ChangeQueuedOrClosing() const ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  bool WorkQueuedOrClosing() const ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // One group commit: look up, apply, write and sync, complete (store.cc,
  // class Store::Batch). Refuses the whole batch while writes are suspended.
  void CommitBatch(std::vector<Pending>& batch, std::vector<AuditRecord>& audits, std::vector<StateWork>& state);
  void RefuseBatch(std::vector<Pending>& batch, std::vector<AuditRecord>& audits, std::vector<StateWork>& state);
  class Batch;
  // The stored request outcomes and current records a batch reads, looked
  // up together before it is applied (defined in store.cc).
  struct BatchLookups;
  BatchLookups LookUpBatch(const std::vector<Pending>& batch, absl::Time now) const;
  // A change's answer, or (without `done`) the commit listeners' turn:
  // `listeners_through` is the last sequence of the group commit before it.
  struct Completion {
    CommitCallback done;
    absl::StatusOr<Committed> result;
    uint64_t listeners_through = 0;
  };
  // Hands a batch's answers to the completion thread.
  void Complete(std::vector<Completion> completions);
  void CompletionLoop();
  void RunCommitListeners(uint64_t last_sequence);
  // Commit thread: after a failed write, whether writes may go on (trying to
  // recover if the backoff allows). See WritesAvailable.
  bool ReadyToWrite(bool closing);
  absl::Status RecoverWrites();
  // Free space on the database's file system for this process (nullopt:
  // unknown). RecoverWrites waits for kMinFreeBytesToResume.
  std::optional<uint64_t> FreeBytes() const;
  static constexpr uint64_t kMinFreeBytesToResume = uint64_t{1} << 20;
  // Keeps a memtable non-empty so that RocksDB's Resume() has something to
  // flush, which is what makes it start a fresh write-ahead log.
  absl::Status AnchorWal();
  // Number of the write-ahead log in use (0 if unknown).
  uint64_t CurrentWal() const;
  void WriteFailed(const std::string& error);
  // Puts audit records that were not written back in front of the queue.
  void HoldAudits(std::vector<AuditRecord>& audits);

  const StoreOptions options_;
  rocksdb::DB* db_ = nullptr;
  std::vector<rocksdb::ColumnFamilyHandle*> handles_;
  rocksdb::ColumnFamilyHandle* meta_cf_ = nullptr;
  rocksdb::ColumnFamilyHandle* current_cf_ = nullptr;
  rocksdb::ColumnFamilyHandle* versions_cf_ = nullptr;
  rocksdb::ColumnFamilyHandle* ids_cf_ = nullptr;
  rocksdb::ColumnFamilyHandle* requests_cf_ = nullptr;
  rocksdb::ColumnFamilyHandle* changes_cf_ = nullptr;
  rocksdb::ColumnFamilyHandle* audit_cf_ = nullptr;
  rocksdb::ColumnFamilyHandle* state_cf_ = nullptr;

  mutable absl::Mutex mu_;
  std::deque<Pending> queue_ ABSL_GUARDED_BY(mu_);
  std::vector<AuditRecord> audit_queue_ ABSL_GUARDED_BY(mu_);
  std::vector<StateWork> state_queue_ ABSL_GUARDED_BY(mu_);
  uint64_t last_audit_sequence_ ABSL_GUARDED_BY(mu_) = 0;
  bool closing_ ABSL_GUARDED_BY(mu_) = false;
  bool closed_ ABSL_GUARDED_BY(mu_) = false;
  uint64_t last_sequence_ ABSL_GUARDED_BY(mu_) = 0;
  // The first change-log entry held (OldestChangeSequence); moved by the
  // commit thread only, just before a trim is written (back if it fails).
  uint64_t oldest_change_sequence_ ABSL_GUARDED_BY(mu_) = 1;
  uint64_t change_log_trims_ ABSL_GUARDED_BY(mu_) = 0;
  // Set by the commit thread when a write fails, cleared when it recovers.
  bool writes_failed_ ABSL_GUARDED_BY(mu_) = false;
  absl::Time next_recovery_attempt_ ABSL_GUARDED_BY(mu_) = absl::InfinitePast();
  absl::Duration recovery_backoff_;  // commit thread only
  bool fatal_ = false;               // commit thread only: Resume() will not help
  // Commit thread only: audit records written but not yet synced, and when
  // they must be (StoreOptions::audit_sync_interval).
  bool audits_unsynced_ = false;
  absl::Time audit_sync_due_ = absl::InfiniteFuture();
  absl::Time last_audit_write_ = absl::InfinitePast();  // guarded by mu_
  static constexpr absl::Duration kAuditWriteInterval = absl::Milliseconds(2);
  void SyncAudits();
  // The three checks of VerifyIntegrity, on one snapshot.
  absl::StatusOr<uint64_t> VerifyVersions(const rocksdb::ReadOptions& ro, uint64_t trimmed) const;
  absl::Status VerifyCurrent(const rocksdb::ReadOptions& ro) const;
  absl::Status VerifyChangeLog(const rocksdb::ReadOptions& ro, uint64_t trimmed, uint64_t versions) const;
  uint64_t failed_wal_ = 0;  // commit thread only: the log a failed write used
  // Commit listeners (AddCommitListener); run under listeners_mu_ on the
  // completion thread. has_listeners_ spares commits the marker without them.
  absl::Mutex listeners_mu_;
  std::vector<absl::AnyInvocable<void(uint64_t)>> listeners_ ABSL_GUARDED_BY(listeners_mu_);
  std::atomic<bool> has_listeners_{false};
  // Held (shared) by TrimChangeLog's compaction, which runs on the caller's
  // thread, and (exclusive) by Close around closing the database.
  absl::Mutex db_users_mu_;
  bool db_open_ ABSL_GUARDED_BY(db_users_mu_) = false;
  std::thread commit_thread_;
  absl::Mutex completion_mu_;
  std::vector<Completion> completions_ ABSL_GUARDED_BY(completion_mu_);
  bool completion_stop_ ABSL_GUARDED_BY(completion_mu_) = false;
  std::thread completion_thread_;
  absl::Mutex close_mu_;
  std::shared_ptr<rocksdb::Statistics> statistics_;
  // PatientWriteGeneration's counters, by hash of the patient id: fixed
  // memory, and a write makes few other patients' cached values look stale.
  static constexpr size_t kGenerationStripes = size_t{1} << 14;
  static size_t GenerationStripe(absl::string_view patient_id);
  std::unique_ptr<std::atomic<uint64_t>[]> patient_generations_ { new std::atomic<uint64_t>[ kGenerationStripes ]() };
  metrics::Histogram synced_write_seconds_{metrics::LatencyBuckets()};
};

}  // namespace wmty::storage

#endif  // WMTY_STORAGE_STORE_H_
