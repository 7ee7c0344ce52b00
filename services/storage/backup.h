// Backups: online backups of a Store with RocksDB's BackupEngine, their
// verification and retention, and the offline restore into a new directory.
//
// A backup is taken while the store keeps serving: the memtables are flushed
// (flush_before_backup) and the live SST files plus the live write-ahead log
// are copied, fsync'ed, into the backup directory. SST files are shared
// between backups (named by their checksum), so later backups copy only what
// changed. Every write acknowledged before Create() was called is in the
// backup: an acknowledgement means its batch was in the fsync'ed WAL, and the
// WAL is copied up to at least that point even when a write lands in the
// memtable after the flush. Each backup records in its app metadata the last
// change sequence committed when it started (BackupInfo::last_sequence).
//
// Retention: after each successful backup the oldest backups beyond `keep`
// are deleted (files still used by a newer backup stay).
//
// Restore is offline and static: it needs no running Store, writes only into
// an empty (or missing) data directory, checks the backup's checksums first,
// and opens the restored database to check its integrity before it reports
// success.
//
// Thread safety: all methods may be called from any thread. Create, List and
// Verify block the caller (Create for as long as the copy takes) and run one
// at a time; callers that must not block (gRPC reactors) hand them to the
// backup thread with Post(). Only one process may use a backup directory at a
// time (BackupEngine does not lock it).
//
// Ownership: a Backups borrows its Store, which must stay open until Close()
// (or the destructor) has returned.
#ifndef WMTY_STORAGE_BACKUP_H_
#define WMTY_STORAGE_BACKUP_H_

#include <cstdint>
#include <deque>
#include <memory>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/functional/any_invocable.h"
#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "storage/store.h"

namespace rocksdb {
class BackupEngine;
}  // namespace rocksdb

namespace wmty::storage {

struct BackupOptions {
  // Where the backups live; created if missing. Must not be the data dir.
  std::string dir;
  // How many of the newest backups to keep (at least 1).
  int keep = 7;
  // Take a backup this often on the backup thread; zero: only on request.
  absl::Duration interval = absl::ZeroDuration();
  // Flush the memtables before copying (see above). false copies the
  // unflushed writes as WAL files instead; acknowledged writes are in the
  // backup either way (tests check both).
  bool flush_before_backup = true;
};

struct BackupInfo {
  uint32_t id = 0;
  absl::Time time;
  // Bytes of the backup's files, shared ones included.
  uint64_t size_bytes = 0;
  uint32_t file_count = 0;
  // The last change sequence committed when the backup started: the backup
  // holds every change up to at least this one.
  uint64_t last_sequence = 0;
};

class Backups {
 public:
  // Opens (creating if needed) the backup directory for `store`. Errors:
  // INVALID_ARGUMENT (no dir, the data dir itself, keep < 1), UNAVAILABLE if
  // the directory cannot be used.
  static absl::StatusOr<std::unique_ptr<Backups>> Open(Store* store, BackupOptions options);
  ~Backups();  // Calls Close().
  Backups(const Backups&) = delete;
  Backups& operator=(const Backups&) = delete;

  // Takes a backup now, then applies retention. Errors: ABORTED (stopped by
  // Close), UNAVAILABLE (closed, or the copy failed; nothing of it is kept).
  // A failed retention step is logged, not returned: the backup itself is good.
  absl::StatusOr<BackupInfo> Create();
  // Newest first. Backups whose metadata is unreadable are left out and their
  // ids are put in `corrupt_ids` (if given).
  absl::StatusOr<std::vector<BackupInfo>> List(std::vector<uint32_t>* corrupt_ids = nullptr);
  // Checks every file of backup `id` against the size and checksum recorded
  // when it was written. NOT_FOUND for an unknown id, DATA_LOSS if a file is
  // missing, truncated or altered.
  absl::StatusOr<BackupInfo> Verify(uint32_t id);

  // For /metrics: when the newest good backup was taken (from the backup
  // directory at Open, then from each backup taken; nullopt if none), and how
  // many backups failed since Open.
  struct Health {
    std::optional<absl::Time> last_success;
    uint64_t failures = 0;
  };
  Health health() const;

  // Runs `job` on the backup thread, after the jobs posted before it (and
  // after a scheduled backup in progress). After Close() it runs at once on
  // the caller's thread (the methods it calls then fail fast with UNAVAILABLE).
  void Post(absl::AnyInvocable<void()> job);

  // Stops a backup in progress (it fails with ABORTED) and every later one:
  // for shutdown, when the grace period is over. Returns at once.
  void StopBackups();

  // Stops the schedule and any backup in progress, runs the jobs still
  // posted (they fail fast), joins the backup thread. Later calls fail with
  // UNAVAILABLE. Idempotent. Call it before closing the store.
  void Close();

  struct RestoreRequest {
    std::string backup_dir;
    // nullopt: the newest backup.
    std::optional<uint32_t> backup_id;
    // Must be missing or empty.
    std::string data_dir;
  };
  struct RestoreResult {
    BackupInfo backup;
    // Of the restored database, read after opening it (>= backup.last_sequence).
    uint64_t last_sequence = 0;
  };
  // Restores a backup into a new data directory: verifies the backup's
  // checksums, copies it, opens the result as a Store and runs
  // VerifyIntegrity. Does not need (and must not be pointed at) the data dir
  // of a running server. Errors: FAILED_PRECONDITION (data_dir not empty),
  // NOT_FOUND (no such backup, or no backup at all), DATA_LOSS (the backup or
  // the restored database is damaged; the restored files are left in place
  // for inspection), UNAVAILABLE (I/O).
  static absl::StatusOr<RestoreResult> Restore(const RestoreRequest& request);

 private:
  Backups(Store* store, BackupOptions options, std::unique_ptr<rocksdb::BackupEngine> engine);
  void BackupLoop();
  bool closing() const;

  Store* const store_;
  const BackupOptions options_;
  // Lives until the destructor, so StopBackups() is safe at any time.
  const std::unique_ptr<rocksdb::BackupEngine> engine_;
  // Runs engine operations one at a time (BackupEngine is thread-safe, but a
  // read that waits behind a long backup is better waited for here, and
  // create-then-purge must not interleave with another create).
  absl::Mutex engine_mu_;

  mutable absl::Mutex mu_;
  std::deque<absl::AnyInvocable<void()>> jobs_ ABSL_GUARDED_BY(mu_);
  bool closing_ ABSL_GUARDED_BY(mu_) = false;
  Health health_ ABSL_GUARDED_BY(mu_);
  std::thread thread_;
  absl::Mutex close_mu_;
};

}  // namespace wmty::storage

#endif  // WMTY_STORAGE_BACKUP_H_
