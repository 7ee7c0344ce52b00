#include "support/fault_injection_fs.h"

#include <algorithm>
#include <filesystem>
#include <utility>

namespace wmty::testing {
namespace {

using rocksdb::IODebugContext;
using rocksdb::IOOptions;
using rocksdb::IOStatus;

// One spelling per path, so that "db//000001.log" and "db/000001.log" and a
// directory with a trailing slash are the same key.
std::string Normalize(const std::string& path) {
  std::string p = std::filesystem::path(path).lexically_normal().string();
  while (p.size() > 1 && p.back() == '/') p.pop_back();
  return p;
}

std::string DirOf(const std::string& normalized) {
  const size_t slash = normalized.find_last_of('/');
  if (slash == std::string::npos) return ".";
  if (slash == 0) return "/";
  return normalized.substr(0, slash);
}

std::string NameOf(const std::string& normalized) {
  const size_t slash = normalized.find_last_of('/');
  return slash == std::string::npos ? normalized : normalized.substr(slash + 1);
}

}  // namespace

// ---------------------------------------------------------------- files

class FaultWritableFile : public rocksdb::FSWritableFileOwnerWrapper {
 public:
  FaultWritableFile(FaultInjectionFs* fs, std::string path, std::unique_ptr<rocksdb::FSWritableFile> target,
                    uint64_t size)
      : FSWritableFileOwnerWrapper(std::move(target)), fs_(fs), path_(std::move(path)), size_(size) {}

  IOStatus Append(const rocksdb::Slice& data, const IOOptions& o, IODebugContext* dbg) override {
    auto op = fs_->Operation();
    if (auto s = Check(); !s.ok()) return s;
    IOStatus s = target()->Append(data, o, dbg);
    if (s.ok()) Grew(size_.load() + data.size());
    return s;
  }
  IOStatus Append(const rocksdb::Slice& data, const IOOptions& o, const rocksdb::DataVerificationInfo& info,
                  IODebugContext* dbg) override {
    auto op = fs_->Operation();
    if (auto s = Check(); !s.ok()) return s;
    IOStatus s = target()->Append(data, o, info, dbg);
    if (s.ok()) Grew(size_.load() + data.size());
    return s;
  }
  IOStatus PositionedAppend(const rocksdb::Slice& data, uint64_t offset, const IOOptions& o,
                            IODebugContext* dbg) override {
    auto op = fs_->Operation();
    if (auto s = Check(); !s.ok()) return s;
    IOStatus s = target()->PositionedAppend(data, offset, o, dbg);
    if (s.ok()) Grew(std::max<uint64_t>(size_.load(), offset + data.size()));
    return s;
  }
  IOStatus PositionedAppend(const rocksdb::Slice& data, uint64_t offset, const IOOptions& o,
                            const rocksdb::DataVerificationInfo& info, IODebugContext* dbg) override {
    auto op = fs_->Operation();
    if (auto s = Check(); !s.ok()) return s;
    IOStatus s = target()->PositionedAppend(data, offset, o, info, dbg);
    if (s.ok()) Grew(std::max<uint64_t>(size_.load(), offset + data.size()));
    return s;
  }
  IOStatus Truncate(uint64_t size, const IOOptions& o, IODebugContext* dbg) override {
    auto op = fs_->Operation();
    if (!fs_->powered_locked()) return FaultInjectionFs::PowerLost();
    IOStatus s = target()->Truncate(size, o, dbg);
    if (s.ok()) {
      size_.store(size);
      std::lock_guard<std::mutex> lock(fs_->state_mu_);
      auto it = fs_->files_.find(path_);
      if (it != fs_->files_.end()) {
        it->second.size = size;
        it->second.synced = std::min(it->second.synced, size);
      }
    }
    return s;
  }
  IOStatus Flush(const IOOptions& o, IODebugContext* dbg) override {
    auto op = fs_->Operation();
    if (!fs_->powered_locked()) return FaultInjectionFs::PowerLost();
    return target()->Flush(o, dbg);
  }
  IOStatus Sync(const IOOptions& o, IODebugContext* dbg) override {
    auto op = fs_->Operation();
    if (auto s = Check(/*is_sync=*/true); !s.ok()) return s;
    const uint64_t size = size_.load();  // appends racing with the sync may not be covered
    IOStatus s = target()->Sync(o, dbg);
    if (s.ok()) fs_->Synced(path_, size);
    return s;
  }
  IOStatus Fsync(const IOOptions& o, IODebugContext* dbg) override {
    auto op = fs_->Operation();
    if (auto s = Check(/*is_sync=*/true); !s.ok()) return s;
    const uint64_t size = size_.load();
    IOStatus s = target()->Fsync(o, dbg);
    if (s.ok()) fs_->Synced(path_, size);
    return s;
  }
  IOStatus RangeSync(uint64_t offset, uint64_t nbytes, const IOOptions& o, IODebugContext* dbg) override {
    auto op = fs_->Operation();
    if (auto s = Check(); !s.ok()) return s;
    return target()->RangeSync(offset, nbytes, o, dbg);
  }
  IOStatus Close(const IOOptions& o, IODebugContext* dbg) override {
    auto op = fs_->Operation();
    if (!fs_->powered_locked() || !fs_->SurvivesWriteOp()) return FaultInjectionFs::PowerLost();
    IOStatus s = target()->Close(o, dbg);
    if (s.ok()) fs_->Synced(path_, size_.load());
    return s;
  }

 private:
  IOStatus Check(bool is_sync = false) {
    if (!fs_->powered_locked() || !fs_->SurvivesWriteOp()) return FaultInjectionFs::PowerLost();
    return fs_->WriteFaultStatus(is_sync);
  }
  void Grew(uint64_t new_size) {
    size_.store(new_size);
    fs_->Appended(path_, new_size);
  }

  FaultInjectionFs* fs_;
  const std::string path_;
  std::atomic<uint64_t> size_;
};

class FaultDirectory : public rocksdb::FSDirectoryWrapper {
 public:
  FaultDirectory(FaultInjectionFs* fs, std::string path, std::unique_ptr<rocksdb::FSDirectory> target)
      : FSDirectoryWrapper(std::move(target)), fs_(fs), path_(std::move(path)) {}

  IOStatus Fsync(const IOOptions& o, IODebugContext* dbg) override {
    auto op = fs_->Operation();
    if (!fs_->powered_locked() || !fs_->SurvivesWriteOp()) return FaultInjectionFs::PowerLost();
    IOStatus s = FSDirectoryWrapper::Fsync(o, dbg);
    if (s.ok()) fs_->DirSynced(path_);
    return s;
  }
  IOStatus FsyncWithDirOptions(const IOOptions& o, IODebugContext* dbg,
                               const rocksdb::DirFsyncOptions& dir_options) override {
    auto op = fs_->Operation();
    if (!fs_->powered_locked() || !fs_->SurvivesWriteOp()) return FaultInjectionFs::PowerLost();
    IOStatus s = FSDirectoryWrapper::FsyncWithDirOptions(o, dbg, dir_options);
    if (s.ok()) fs_->DirSynced(path_);
    return s;
  }

 private:
  FaultInjectionFs* fs_;
  const std::string path_;
};

class FaultSequentialFile : public rocksdb::FSSequentialFileOwnerWrapper {
 public:
  FaultSequentialFile(FaultInjectionFs* fs, std::unique_ptr<rocksdb::FSSequentialFile> target)
      : FSSequentialFileOwnerWrapper(std::move(target)), fs_(fs) {}
  IOStatus Read(size_t n, const IOOptions& o, rocksdb::Slice* result, char* scratch, IODebugContext* dbg) override {
    auto op = fs_->Operation();
    if (!fs_->powered_locked()) return FaultInjectionFs::PowerLost();
    return FSSequentialFileOwnerWrapper::Read(n, o, result, scratch, dbg);
  }
  IOStatus PositionedRead(uint64_t offset, size_t n, const IOOptions& o, rocksdb::Slice* result, char* scratch,
                          IODebugContext* dbg) override {
    auto op = fs_->Operation();
    if (!fs_->powered_locked()) return FaultInjectionFs::PowerLost();
    return FSSequentialFileOwnerWrapper::PositionedRead(offset, n, o, result, scratch, dbg);
  }

 private:
  FaultInjectionFs* fs_;
};

class FaultRandomAccessFile : public rocksdb::FSRandomAccessFileOwnerWrapper {
 public:
  FaultRandomAccessFile(FaultInjectionFs* fs, std::unique_ptr<rocksdb::FSRandomAccessFile> target)
      : FSRandomAccessFileOwnerWrapper(std::move(target)), fs_(fs) {}
  IOStatus Read(uint64_t offset, size_t n, const IOOptions& o, rocksdb::Slice* result, char* scratch,
                IODebugContext* dbg) const override {
    auto op = fs_->Operation();
    if (!fs_->powered_locked()) return FaultInjectionFs::PowerLost();
    return FSRandomAccessFileOwnerWrapper::Read(offset, n, o, result, scratch, dbg);
  }
  IOStatus MultiRead(rocksdb::FSReadRequest* reqs, size_t num_reqs, const IOOptions& o, IODebugContext* dbg) override {
    auto op = fs_->Operation();
    if (!fs_->powered_locked()) return FaultInjectionFs::PowerLost();
    return FSRandomAccessFileOwnerWrapper::MultiRead(reqs, num_reqs, o, dbg);
  }

 private:
  FaultInjectionFs* fs_;
};

// ---------------------------------------------------------------- FaultInjectionFs

FaultInjectionFs::FaultInjectionFs(const std::shared_ptr<rocksdb::FileSystem>& base) : FileSystemWrapper(base) {}

std::shared_ptr<rocksdb::Env> FaultInjectionFs::NewEnv(const std::shared_ptr<FaultInjectionFs>& fs) {
  return std::shared_ptr<rocksdb::Env>(rocksdb::NewCompositeEnv(fs));
}

IOStatus FaultInjectionFs::WriteFaultStatus(bool is_sync) {
  if (!is_sync && scope_.load() == FaultScope::kSyncsOnly) return IOStatus::OK();
  switch (fault_.load()) {
    case WriteFault::kNone:
      return IOStatus::OK();
    case WriteFault::kNoSpace:
      refused_writes_.fetch_add(1);
      return IOStatus::NoSpace("simulated disk full");
    case WriteFault::kIOError:
      refused_writes_.fetch_add(1);
      return IOStatus::IOError("simulated I/O error");
  }
  return IOStatus::OK();
}

void FaultInjectionFs::SimulatePowerLoss() {
  std::unique_lock<std::shared_mutex> lock(power_mu_);
  powered_ = false;
}

void FaultInjectionFs::CutPowerAfterWriteOps(int64_t n) {
  cut_countdown_.store(n);
  cut_armed_.store(true);
}

bool FaultInjectionFs::SurvivesWriteOp() {
  if (!cut_armed_.load()) return true;
  if (cut_countdown_.fetch_sub(1) > 1) return true;
  powered_.store(false);
  return false;
}

bool FaultInjectionFs::powered() const {
  std::shared_lock<std::shared_mutex> lock(power_mu_);
  return powered_;
}

void FaultInjectionFs::Reset() {
  cut_armed_.store(false);
  {
    std::lock_guard<std::mutex> lock(state_mu_);
    files_.clear();
    unsynced_entries_.clear();
    renames_.clear();
  }
  fault_.store(WriteFault::kNone);
  std::unique_lock<std::shared_mutex> lock(power_mu_);
  powered_ = true;
}

uint64_t FaultInjectionFs::UnsyncedBytes() const {
  std::lock_guard<std::mutex> lock(state_mu_);
  uint64_t total = 0;
  for (const auto& [path, state] : files_) total += state.size - std::min(state.size, state.synced);
  return total;
}

IOStatus FaultInjectionFs::DropUnsyncedData() {
  // Runs with the power off: no other operation gets past its check, so the
  // bookkeeping cannot change under us and the target is ours alone.
  std::lock_guard<std::mutex> lock(state_mu_);
  const IOOptions o;
  // 1. Renames the directory never recorded are undone, newest first.
  for (auto it = renames_.rbegin(); it != renames_.rend(); ++it) {
    if (target()->FileExists(it->to, o, nullptr).ok()) {
      IOStatus s = target()->RenameFile(it->to, it->from, o, nullptr);
      if (!s.ok()) return s;
      if (auto f = files_.find(it->to); f != files_.end()) {
        files_[it->from] = f->second;
        files_.erase(f);
      }
      auto& to_entries = unsynced_entries_[DirOf(it->to)];
      if (to_entries.erase(NameOf(it->to)) > 0) unsynced_entries_[DirOf(it->from)].insert(NameOf(it->from));
    }
    if (it->replaced.has_value()) {
      IOStatus s = rocksdb::WriteStringToFile(target(), *it->replaced, it->to, /*should_sync=*/true);
      if (!s.ok()) return s;
      files_.erase(it->to);
    }
  }
  renames_.clear();
  // 2. Files whose directory entry was never synced are gone.
  for (const auto& [dir, names] : unsynced_entries_) {
    for (const std::string& name : names) {
      const std::string path = dir + "/" + name;
      files_.erase(path);
      if (!target()->FileExists(path, o, nullptr).ok()) continue;
      IOStatus s = target()->DeleteFile(path, o, nullptr);
      if (!s.ok()) return s;
    }
  }
  unsynced_entries_.clear();
  // 3. File data past the last sync is lost. (The POSIX FileSystem has no
  // Truncate, hence std::filesystem.)
  for (const auto& [path, state] : files_) {
    if (state.synced >= state.size) continue;
    std::error_code ec;
    if (!std::filesystem::exists(path, ec)) continue;
    std::filesystem::resize_file(path, state.synced, ec);
    if (ec) return IOStatus::IOError("cannot drop unsynced data of " + path, ec.message());
  }
  files_.clear();
  return IOStatus::OK();
}

void FaultInjectionFs::Created(const std::string& path, bool existed) {
  std::lock_guard<std::mutex> lock(state_mu_);
  // Opened empty (an existing file is truncated): nothing of it is durable
  // until synced. Only a file that did not exist needs its directory synced.
  files_[path] = FileState{};
  if (!existed) unsynced_entries_[DirOf(path)].insert(NameOf(path));
}

void FaultInjectionFs::Appended(const std::string& path, uint64_t new_size) {
  std::lock_guard<std::mutex> lock(state_mu_);
  auto it = files_.find(path);
  if (it != files_.end()) it->second.size = std::max(it->second.size, new_size);
}

void FaultInjectionFs::Synced(const std::string& path, uint64_t size) {
  std::lock_guard<std::mutex> lock(state_mu_);
  auto it = files_.find(path);
  if (it != files_.end()) it->second.synced = std::max(it->second.synced, size);
}

void FaultInjectionFs::DirSynced(const std::string& dir) {
  std::lock_guard<std::mutex> lock(state_mu_);
  unsynced_entries_.erase(dir);
  renames_.erase(
      std::remove_if(renames_.begin(), renames_.end(), [&](const PendingRename& r) { return DirOf(r.to) == dir; }),
      renames_.end());
}

void FaultInjectionFs::Untrack(const std::string& path) {
  std::lock_guard<std::mutex> lock(state_mu_);
  files_.erase(path);
  if (auto it = unsynced_entries_.find(DirOf(path)); it != unsynced_entries_.end()) it->second.erase(NameOf(path));
}

// ---- opening files

IOStatus FaultInjectionFs::NewSequentialFile(const std::string& f, const rocksdb::FileOptions& o,
                                             std::unique_ptr<rocksdb::FSSequentialFile>* r, IODebugContext* dbg) {
  auto op = Operation();
  if (!powered_) return PowerLost();
  std::unique_ptr<rocksdb::FSSequentialFile> file;
  IOStatus s = target()->NewSequentialFile(f, o, &file, dbg);
  if (s.ok()) r->reset(new FaultSequentialFile(this, std::move(file)));
  return s;
}

IOStatus FaultInjectionFs::NewRandomAccessFile(const std::string& f, const rocksdb::FileOptions& o,
                                               std::unique_ptr<rocksdb::FSRandomAccessFile>* r, IODebugContext* dbg) {
  auto op = Operation();
  if (!powered_) return PowerLost();
  std::unique_ptr<rocksdb::FSRandomAccessFile> file;
  IOStatus s = target()->NewRandomAccessFile(f, o, &file, dbg);
  if (s.ok()) r->reset(new FaultRandomAccessFile(this, std::move(file)));
  return s;
}

IOStatus FaultInjectionFs::NewWritableFile(const std::string& f, const rocksdb::FileOptions& o,
                                           std::unique_ptr<rocksdb::FSWritableFile>* r, IODebugContext* dbg) {
  auto op = Operation();
  if (!powered_ || !SurvivesWriteOp()) return PowerLost();
  if (auto s = WriteFaultStatus(); !s.ok()) return s;
  const std::string path = Normalize(f);
  const bool existed = target()->FileExists(path, IOOptions(), nullptr).ok();
  std::unique_ptr<rocksdb::FSWritableFile> file;
  IOStatus s = target()->NewWritableFile(f, o, &file, dbg);
  if (!s.ok()) return s;
  Created(path, existed);
  r->reset(new FaultWritableFile(this, path, std::move(file), 0));
  return s;
}

IOStatus FaultInjectionFs::ReopenWritableFile(const std::string& f, const rocksdb::FileOptions& o,
                                              std::unique_ptr<rocksdb::FSWritableFile>* r, IODebugContext* dbg) {
  auto op = Operation();
  if (!powered_) return PowerLost();
  if (auto s = WriteFaultStatus(); !s.ok()) return s;
  const std::string path = Normalize(f);
  uint64_t size = 0;
  const bool existed = target()->GetFileSize(path, IOOptions(), &size, nullptr).ok();
  std::unique_ptr<rocksdb::FSWritableFile> file;
  IOStatus s = target()->ReopenWritableFile(f, o, &file, dbg);
  if (!s.ok()) return s;
  {
    std::lock_guard<std::mutex> lock(state_mu_);
    if (files_.count(path) == 0) {
      files_[path] = FileState{size, existed ? size : 0};
      if (!existed) unsynced_entries_[DirOf(path)].insert(NameOf(path));
    }
  }
  r->reset(new FaultWritableFile(this, path, std::move(file), size));
  return s;
}

IOStatus FaultInjectionFs::ReuseWritableFile(const std::string& f, const std::string& old,
                                             const rocksdb::FileOptions& o, std::unique_ptr<rocksdb::FSWritableFile>* r,
                                             IODebugContext* dbg) {
  // A rename plus a truncating open; RocksDB only does this with WAL recycling.
  if (auto s = RenameFile(old, f, IOOptions(), dbg); !s.ok()) return s;
  return NewWritableFile(f, o, r, dbg);
}

IOStatus FaultInjectionFs::NewRandomRWFile(const std::string& f, const rocksdb::FileOptions& o,
                                           std::unique_ptr<rocksdb::FSRandomRWFile>* r, IODebugContext* dbg) {
  auto op = Operation();
  if (!powered_) return PowerLost();
  if (auto s = WriteFaultStatus(); !s.ok()) return s;
  return target()->NewRandomRWFile(f, o, r, dbg);
}

IOStatus FaultInjectionFs::NewDirectory(const std::string& name, const IOOptions& o,
                                        std::unique_ptr<rocksdb::FSDirectory>* r, IODebugContext* dbg) {
  auto op = Operation();
  if (!powered_) return PowerLost();
  std::unique_ptr<rocksdb::FSDirectory> dir;
  IOStatus s = target()->NewDirectory(name, o, &dir, dbg);
  if (s.ok()) r->reset(new FaultDirectory(this, Normalize(name), std::move(dir)));
  return s;
}

// ---- metadata

IOStatus FaultInjectionFs::FileExists(const std::string& f, const IOOptions& o, IODebugContext* dbg) {
  auto op = Operation();
  if (!powered_) return PowerLost();
  return target()->FileExists(f, o, dbg);
}

IOStatus FaultInjectionFs::GetChildren(const std::string& dir, const IOOptions& o, std::vector<std::string>* r,
                                       IODebugContext* dbg) {
  auto op = Operation();
  if (!powered_) return PowerLost();
  return target()->GetChildren(dir, o, r, dbg);
}

IOStatus FaultInjectionFs::DeleteFile(const std::string& f, const IOOptions& o, IODebugContext* dbg) {
  auto op = Operation();
  if (!powered_) return PowerLost();
  IOStatus s = target()->DeleteFile(f, o, dbg);
  if (s.ok()) Untrack(Normalize(f));
  return s;
}

IOStatus FaultInjectionFs::Truncate(const std::string& f, size_t size, const IOOptions& o, IODebugContext* dbg) {
  auto op = Operation();
  if (!powered_) return PowerLost();
  IOStatus s = target()->Truncate(f, size, o, dbg);
  if (s.ok()) {
    std::lock_guard<std::mutex> lock(state_mu_);
    if (auto it = files_.find(Normalize(f)); it != files_.end()) {
      it->second.size = size;
      it->second.synced = std::min<uint64_t>(it->second.synced, size);
    }
  }
  return s;
}

IOStatus FaultInjectionFs::CreateDir(const std::string& d, const IOOptions& o, IODebugContext* dbg) {
  auto op = Operation();
  if (!powered_) return PowerLost();
  if (auto s = WriteFaultStatus(); !s.ok()) return s;
  return target()->CreateDir(d, o, dbg);
}

IOStatus FaultInjectionFs::CreateDirIfMissing(const std::string& d, const IOOptions& o, IODebugContext* dbg) {
  auto op = Operation();
  if (!powered_) return PowerLost();
  return target()->CreateDirIfMissing(d, o, dbg);
}

IOStatus FaultInjectionFs::DeleteDir(const std::string& d, const IOOptions& o, IODebugContext* dbg) {
  auto op = Operation();
  if (!powered_) return PowerLost();
  return target()->DeleteDir(d, o, dbg);
}

IOStatus FaultInjectionFs::GetFileSize(const std::string& f, const IOOptions& o, uint64_t* s, IODebugContext* dbg) {
  auto op = Operation();
  if (!powered_) return PowerLost();
  return target()->GetFileSize(f, o, s, dbg);
}

IOStatus FaultInjectionFs::RenameFile(const std::string& from, const std::string& to, const IOOptions& o,
                                      IODebugContext* dbg) {
  auto op = Operation();
  if (!powered_ || !SurvivesWriteOp()) return PowerLost();
  if (auto s = WriteFaultStatus(); !s.ok()) return s;
  const std::string src = Normalize(from);
  const std::string dst = Normalize(to);
  PendingRename pending{src, dst, std::nullopt};
  // Keep what the rename replaces: a power cut before the directory is synced
  // brings it back. (RocksDB replaces only small files: CURRENT, OPTIONS.)
  if (target()->FileExists(dst, o, nullptr).ok()) {
    std::string old;
    if (auto s = rocksdb::ReadFileToString(target(), dst, &old); !s.ok()) return s;
    pending.replaced = std::move(old);
  }
  IOStatus s = target()->RenameFile(from, to, o, dbg);
  if (!s.ok()) return s;
  std::lock_guard<std::mutex> lock(state_mu_);
  if (auto it = files_.find(src); it != files_.end()) {
    files_[dst] = it->second;
    files_.erase(it);
  } else {
    files_.erase(dst);
  }
  // A file created since the last directory sync stays "not durable" under
  // its new name; the undo in DropUnsyncedData moves it back.
  if (unsynced_entries_[DirOf(src)].erase(NameOf(src)) > 0) unsynced_entries_[DirOf(dst)].insert(NameOf(dst));
  renames_.push_back(std::move(pending));
  return s;
}

IOStatus FaultInjectionFs::LinkFile(const std::string& from, const std::string& to, const IOOptions& o,
                                    IODebugContext* dbg) {
  auto op = Operation();
  if (!powered_) return PowerLost();
  if (auto s = WriteFaultStatus(); !s.ok()) return s;
  IOStatus s = target()->LinkFile(from, to, o, dbg);
  if (s.ok()) {
    std::lock_guard<std::mutex> lock(state_mu_);
    const std::string dst = Normalize(to);
    unsynced_entries_[DirOf(dst)].insert(NameOf(dst));
  }
  return s;
}

IOStatus FaultInjectionFs::GetFreeSpace(const std::string& path, const IOOptions& o, uint64_t* free,
                                        IODebugContext* dbg) {
  auto op = Operation();
  if (!powered_) return PowerLost();
  if (fault_.load() == WriteFault::kNoSpace) {
    *free = 0;
    return IOStatus::OK();
  }
  return target()->GetFreeSpace(path, o, free, dbg);
}

}  // namespace wmty::testing
