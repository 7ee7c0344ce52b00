// Backups (backup.h): RocksDB's BackupEngine on the store's database, the
// backup thread, retention, and the offline restore.
#include "storage/backup.h"

#include <algorithm>
#include <filesystem>
#include <utility>

#include <rocksdb/db.h>
#include <rocksdb/env.h>
#include <rocksdb/utilities/backup_engine.h>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/string_view.h"
#include "absl/strings/strip.h"
#include "common/log.h"
#include "common/thread_name.h"

namespace wmty::storage {
namespace {

// App metadata of each backup. Versioned so later fields can be added.
constexpr absl::string_view kMetadataPrefix = "wmty-backup/1 last_sequence=";

std::string Metadata(uint64_t last_sequence) { return absl::StrCat(kMetadataPrefix, last_sequence); }

uint64_t LastSequenceOf(absl::string_view metadata) {
  uint64_t sequence = 0;
  if (!absl::ConsumePrefix(&metadata, kMetadataPrefix) || !absl::SimpleAtoi(metadata, &sequence)) return 0;
  return sequence;
}

BackupInfo FromRocks(const rocksdb::BackupInfo& info) {
  BackupInfo out;
  out.id = info.backup_id;
  out.time = absl::FromUnixSeconds(info.timestamp);
  out.size_bytes = info.size;
  out.file_count = info.number_files;
  out.last_sequence = LastSequenceOf(info.app_metadata);
  return out;
}

// Messages of these statuses name files and RocksDB reasons, never data.
absl::Status IoError(const rocksdb::Status& s, absl::string_view what) {
  std::string message = absl::StrCat(what, ": ", s.ToString());
  if (s.IsCorruption()) return absl::DataLossError(message);
  return absl::UnavailableError(message);
}

std::filesystem::path Canonical(const std::string& path) {
  std::error_code ec;
  auto out = std::filesystem::weakly_canonical(std::filesystem::absolute(path, ec), ec);
  return ec ? std::filesystem::path(path).lexically_normal() : out;
}

// True if `inner` is `outer` or below it.
bool IsWithin(const std::filesystem::path& inner, const std::filesystem::path& outer) {
  auto i = inner.begin();
  for (auto o = outer.begin(); o != outer.end(); ++o, ++i) {
    if (o->empty()) continue;  // trailing separator
    if (i == inner.end() || *i != *o) return false;
  }
  return true;
}

}  // namespace

absl::StatusOr<std::unique_ptr<Backups>> Backups::Open(Store* store, BackupOptions options) {
  if (options.dir.empty()) return absl::InvalidArgumentError("no backup directory given");
  if (options.keep < 1) return absl::InvalidArgumentError("backups to keep must be at least 1");
  if (options.interval < absl::ZeroDuration()) return absl::InvalidArgumentError("backup interval is negative");
  // A backup inside the database directory would be copied into itself and
  // lost with it.
  const auto dir = Canonical(options.dir);
  const auto data = Canonical(store->options_.path);
  if (IsWithin(dir, data) || IsWithin(data, dir)) {
    return absl::InvalidArgumentError("the backup directory must be outside the data directory (and not contain it)");
  }
  std::error_code ec;
  std::filesystem::create_directories(options.dir, ec);
  if (ec) return absl::UnavailableError(absl::StrCat("cannot create backup directory: ", ec.message()));
  rocksdb::BackupEngineOptions engine_options(options.dir);
  engine_options.sync = true;               // a finished backup survives a power loss
  engine_options.share_table_files = true;  // incremental: SSTs are shared by checksum
  rocksdb::BackupEngine* engine = nullptr;
  auto s = rocksdb::BackupEngine::Open(engine_options, rocksdb::Env::Default(), &engine);
  if (!s.ok()) return IoError(s, "open backup directory");
  std::unique_ptr<Backups> backups(
      new Backups(store, std::move(options), std::unique_ptr<rocksdb::BackupEngine>(engine)));
  // The age of the newest backup survives a restart (it is what the backup
  // alert watches).
  std::vector<rocksdb::BackupInfo> existing;
  backups->engine_->GetBackupInfo(&existing);
  for (const rocksdb::BackupInfo& info : existing) {
    const absl::Time time = absl::FromUnixSeconds(info.timestamp);
    absl::MutexLock lock(&backups->mu_);
    if (!backups->health_.last_success.has_value() || *backups->health_.last_success < time) {
      backups->health_.last_success = time;
    }
  }
  return backups;
}

Backups::Backups(Store* store, BackupOptions options, std::unique_ptr<rocksdb::BackupEngine> engine)
    : store_(store), options_(std::move(options)), engine_(std::move(engine)) {
  thread_ = std::thread([this] { BackupLoop(); });
}

Backups::~Backups() { Close(); }

bool Backups::closing() const {
  absl::MutexLock lock(&mu_);
  return closing_;
}

void Backups::Close() {
  absl::MutexLock close_lock(&close_mu_);
  {
    absl::MutexLock lock(&mu_);
    if (closing_ && !thread_.joinable()) return;
    closing_ = true;
  }
  // Sticky: a Create that already checked closing() is stopped too.
  engine_->StopBackup();
  if (thread_.joinable()) thread_.join();
  // Waits for an operation a caller runs on its own thread.
  absl::MutexLock wait_for_callers(&engine_mu_);
}

void Backups::StopBackups() { engine_->StopBackup(); }

void Backups::Post(absl::AnyInvocable<void()> job) {
  {
    absl::MutexLock lock(&mu_);
    if (!closing_) {
      jobs_.push_back(std::move(job));
      return;
    }
  }
  job();
}

void Backups::BackupLoop() {
  NameThisThread("wmty-backup");
  const bool scheduled = options_.interval > absl::ZeroDuration();
  absl::Time next = scheduled ? absl::Now() + options_.interval : absl::InfiniteFuture();
  while (true) {
    absl::AnyInvocable<void()> job;
    {
      absl::MutexLock lock(&mu_);
      mu_.AwaitWithDeadline(
          absl::Condition(
              +[](Backups* b) ABSL_EXCLUSIVE_LOCKS_REQUIRED(b->mu_) { return !b->jobs_.empty() || b->closing_; }, this),
          next);
      if (!jobs_.empty()) {
        job = std::move(jobs_.front());
        jobs_.pop_front();
      } else if (closing_) {
        return;
      }
    }
    if (job) {
      job();
      continue;
    }
    if (absl::Now() >= next) {
      // Create logs its outcome; a failed scheduled backup is retried at the
      // next interval.
      (void)Create();
      next = absl::Now() + options_.interval;
    }
  }
}

absl::StatusOr<BackupInfo> Backups::Create() {
  if (closing()) return absl::UnavailableError("backups are closed (server shutting down)");
  absl::MutexLock lock(&engine_mu_);
  // Read before the backup starts: everything up to it is in the synced WAL
  // or already in SST files, and both are copied.
  const uint64_t last_sequence = store_->LastSequence();
  const absl::Time start = absl::Now();
  rocksdb::CreateBackupOptions create_options;
  // Flush first, so the backup is mostly SST files (shared with later
  // backups, and nothing to replay at restore). Writes that land after the
  // flush are still covered by the WAL files the engine copies.
  create_options.flush_before_backup = options_.flush_before_backup;
  rocksdb::BackupID id = 0;
  auto s = engine_->CreateNewBackupWithMetadata(create_options, store_->db_, Metadata(last_sequence), &id);
  if (s.IsIncomplete()) {
    log::Warning("backup stopped", {{"reason", "shutdown"}});
    return absl::AbortedError("backup stopped: the server is shutting down");
  }
  if (!s.ok()) {
    log::Error("backup failed", {{"error", s.ToString()}});
    absl::MutexLock health_lock(&mu_);
    ++health_.failures;
    return IoError(s, "create backup");
  }
  // Retention. A failure here leaves extra old backups, not a bad new one.
  if (auto purge = engine_->PurgeOldBackups(static_cast<uint32_t>(options_.keep)); !purge.ok()) {
    log::Error("backup retention failed", {{"error", purge.ToString()}});
  }
  rocksdb::BackupInfo info;
  if (auto got = engine_->GetBackupInfo(id, &info); !got.ok()) return IoError(got, "read new backup");
  BackupInfo out = FromRocks(info);
  {
    absl::MutexLock health_lock(&mu_);
    health_.last_success = out.time;
  }
  log::Info("backup created", {{"backup_id", std::to_string(out.id)},
                               {"last_sequence", std::to_string(out.last_sequence)},
                               {"bytes", std::to_string(out.size_bytes)},
                               {"files", std::to_string(out.file_count)},
                               {"ms", std::to_string(absl::ToInt64Milliseconds(absl::Now() - start))}});
  return out;
}

Backups::Health Backups::health() const {
  absl::MutexLock lock(&mu_);
  return health_;
}

absl::StatusOr<std::vector<BackupInfo>> Backups::List(std::vector<uint32_t>* corrupt_ids) {
  if (closing()) return absl::UnavailableError("backups are closed (server shutting down)");
  absl::MutexLock lock(&engine_mu_);
  std::vector<rocksdb::BackupInfo> infos;
  engine_->GetBackupInfo(&infos);
  std::vector<BackupInfo> out;
  out.reserve(infos.size());
  for (const auto& info : infos) out.push_back(FromRocks(info));
  std::sort(out.begin(), out.end(), [](const BackupInfo& a, const BackupInfo& b) { return a.id > b.id; });
  if (corrupt_ids != nullptr) {
    std::vector<rocksdb::BackupID> corrupt;
    engine_->GetCorruptedBackups(&corrupt);
    corrupt_ids->assign(corrupt.begin(), corrupt.end());
  }
  return out;
}

absl::StatusOr<BackupInfo> Backups::Verify(uint32_t id) {
  if (closing()) return absl::UnavailableError("backups are closed (server shutting down)");
  absl::MutexLock lock(&engine_mu_);
  rocksdb::BackupInfo info;
  auto s = engine_->GetBackupInfo(id, &info);
  if (s.IsNotFound()) return absl::NotFoundError(absl::StrCat("backup ", id, " not found"));
  if (!s.ok()) return absl::DataLossError(absl::StrCat("backup ", id, " is damaged: ", s.ToString()));
  // With checksums: every byte of every file is read back. (A missing file
  // is reported as NotFound by the engine; it is damage all the same.)
  if (auto v = engine_->VerifyBackup(id, /*verify_with_checksum=*/true); !v.ok()) {
    log::Error("backup verification failed", {{"backup_id", std::to_string(id)}, {"error", v.ToString()}});
    return absl::DataLossError(absl::StrCat("backup ", id, " failed verification: ", v.ToString()));
  }
  return FromRocks(info);
}

namespace {

// Restore writes only into a new or empty directory, from one that exists.
absl::Status CheckRestoreDirectories(const std::string& backup_dir, const std::string& data_dir) {
  namespace fs = std::filesystem;
  if (backup_dir.empty()) return absl::InvalidArgumentError("no backup directory given");
  if (data_dir.empty()) return absl::InvalidArgumentError("no data directory given");
  std::error_code ec;
  if (fs::exists(data_dir, ec)) {
    if (!fs::is_directory(data_dir, ec)) {
      return absl::FailedPreconditionError(absl::StrCat(data_dir, " exists and is not a directory"));
    }
    if (!fs::is_empty(data_dir, ec) || ec) {
      return absl::FailedPreconditionError(
          absl::StrCat(data_dir, " is not empty: restore only into a new or empty directory (never over live data)"));
    }
  }
  if (!fs::is_directory(backup_dir, ec)) return absl::NotFoundError(absl::StrCat("no backup directory ", backup_dir));
  return absl::OkStatus();
}

// The backup to restore (the newest without an id), verified against its
// checksums.
absl::StatusOr<rocksdb::BackupInfo> VerifiedBackup(rocksdb::BackupEngineReadOnly& engine,
                                                   std::optional<uint32_t> backup_id) {
  rocksdb::BackupInfo info;
  const rocksdb::Status got =
      backup_id.has_value() ? engine.GetBackupInfo(*backup_id, &info) : engine.GetLatestBackupInfo(&info);
  if (got.IsNotFound()) {
    return absl::NotFoundError(backup_id.has_value() ? absl::StrCat("backup ", *backup_id, " not found")
                                                     : std::string("no backup in the backup directory"));
  }
  if (!got.ok()) return absl::DataLossError(absl::StrCat("backup is damaged: ", got.ToString()));
  if (auto v = engine.VerifyBackup(info.backup_id, /*verify_with_checksum=*/true); !v.ok()) {
    return absl::DataLossError(
        absl::StrCat("backup ", info.backup_id, " failed verification (nothing restored): ", v.ToString()));
  }
  return info;
}

// The restored copy must open and be consistent before we call it good.
// Returns its last change sequence.
absl::StatusOr<uint64_t> CheckRestoredStore(const std::string& data_dir) {
  StoreOptions store_options;
  store_options.path = data_dir;
  store_options.block_cache_bytes = size_t{16} << 20;
  auto store = Store::Open(store_options);
  if (!store.ok()) {
    return absl::DataLossError(absl::StrCat("restored database does not open: ", store.status().message()));
  }
  if (auto integrity = (*store)->VerifyIntegrity(); !integrity.ok()) {
    return absl::DataLossError(absl::StrCat("restored database failed the integrity check: ", integrity.message()));
  }
  const uint64_t last_sequence = (*store)->LastSequence();
  (*store)->Close();
  return last_sequence;
}

}  // namespace

absl::StatusOr<Backups::RestoreResult> Backups::Restore(const RestoreRequest& request) {
  if (auto s = CheckRestoreDirectories(request.backup_dir, request.data_dir); !s.ok()) return s;
  rocksdb::BackupEngineOptions engine_options(request.backup_dir);
  rocksdb::BackupEngineReadOnly* raw = nullptr;
  auto s = rocksdb::BackupEngineReadOnly::Open(engine_options, rocksdb::Env::Default(), &raw);
  if (!s.ok()) return IoError(s, "open backup directory");
  std::unique_ptr<rocksdb::BackupEngineReadOnly> engine(raw);
  auto info = VerifiedBackup(*engine, request.backup_id);
  if (!info.ok()) return info.status();
  RestoreResult result;
  result.backup = FromRocks(*info);
  std::error_code ec;
  std::filesystem::create_directories(request.data_dir, ec);
  if (ec) return absl::UnavailableError(absl::StrCat("cannot create ", request.data_dir, ": ", ec.message()));
  if (auto r =
          engine->RestoreDBFromBackup(rocksdb::RestoreOptions(), info->backup_id, request.data_dir, request.data_dir);
      !r.ok()) {
    return IoError(r, "restore backup");
  }
  auto last_sequence = CheckRestoredStore(request.data_dir);
  if (!last_sequence.ok()) return last_sequence.status();
  result.last_sequence = *last_sequence;
  if (result.last_sequence < result.backup.last_sequence) {
    return absl::DataLossError(absl::StrCat("restored database ends at sequence ", result.last_sequence,
                                            ", before the backup's recorded ", result.backup.last_sequence));
  }
  log::Info("backup restored",
            {{"backup_id", std::to_string(result.backup.id)}, {"last_sequence", std::to_string(result.last_sequence)}});
  return result;
}

}  // namespace wmty::storage
