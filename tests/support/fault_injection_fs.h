// FaultInjectionFs: a rocksdb::FileSystem for tests that knows what a power
// cut would keep, and can make the disk fail on demand.
//
// Writes go straight through to the real files (so RocksDB reads back what it
// wrote, as from a page cache); beside them the wrapper tracks, per file
// written through it, how many bytes are durable:
//   - file data is durable up to the length at its last successful Sync or
//     Fsync, or at Close (as RocksDB's own FaultInjectionTestFS counts a closed
//     file). RangeSync is passed on but makes nothing durable (it does not
//     persist metadata);
//   - a file's directory entry (its creation, or a rename onto its name) is
//     durable only once that directory was fsynced after it.
// SimulatePowerLoss() makes every later operation fail with IOError (waiting
// for operations already inside the file system to finish, so nothing lands
// on disk afterwards); DropUnsyncedData() then puts the disk in the state a
// power cut at that moment could leave: renames not yet covered by a directory
// fsync are undone (the replaced file comes back), files are cut to their
// durable length, and files whose creation was never covered by a directory
// fsync are deleted. Reset() powers the disk on again and treats everything
// on it as durable.
//
// Not modelled: deletes that are undone by a power cut, torn (partial)
// appends, RandomRW files (passed through, only refused while powered off),
// files written by RocksDB's info LOG (not opened through NewWritableFile).
//
// Faults on demand: SetWriteFault(kNoSpace) makes every data write, sync and
// file creation fail with IOStatus::NoSpace() (and GetFreeSpace report 0)
// until SetWriteFault(kNone); kIOError likewise with a plain IOError. A
// refused write leaves the file unchanged. FaultScope::kSyncsOnly fails only
// the syncs (the data is in the file, not durable), the case where a failed
// write may still be in RocksDB's log.
//
// Thread safety: all methods are thread-safe.
#ifndef WMTY_TESTS_SUPPORT_FAULT_INJECTION_FS_H_
#define WMTY_TESTS_SUPPORT_FAULT_INJECTION_FS_H_

#include <atomic>
#include <cstdint>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <set>
#include <shared_mutex>
#include <string>
#include <vector>

#include <rocksdb/env.h>
#include <rocksdb/file_system.h>

namespace wmty::testing {

class FaultInjectionFs : public rocksdb::FileSystemWrapper {
 public:
  enum class WriteFault { kNone, kNoSpace, kIOError };
  // Which operations a write fault hits.
  enum class FaultScope {
    kWritesAndSyncs,  // appends, syncs, file creation and renames
    kSyncsOnly,       // only Sync/Fsync: the data reached the file, its sync failed
  };

  explicit FaultInjectionFs(const std::shared_ptr<rocksdb::FileSystem>& base = rocksdb::FileSystem::Default());

  // An Env whose file system is `fs` (threads and clock are the default
  // Env's), for StoreOptions::env (also through ServerOptions::customize_store).
  static std::shared_ptr<rocksdb::Env> NewEnv(const std::shared_ptr<FaultInjectionFs>& fs);

  const char* Name() const override { return "WmtyFaultInjectionFs"; }

  // ---- faults on demand
  void SetWriteFault(WriteFault fault, FaultScope scope = FaultScope::kWritesAndSyncs) {
    scope_.store(scope);
    fault_.store(fault);
  }
  WriteFault write_fault() const { return fault_.load(); }
  // How many operations a write fault has refused so far.
  uint64_t refused_writes() const { return refused_writes_.load(); }

  // ---- power loss
  // From now on every operation fails. Returns once no operation is in progress.
  void SimulatePowerLoss();
  // Arms a power cut at a point inside the file system: the n-th data write,
  // sync, close, directory fsync, file creation or rename from now fails and
  // every operation after it. (Operations on other threads that had already
  // started may still finish, as they would on a real disk.) Call
  // SimulatePowerLoss() before DropUnsyncedData() to wait for them.
  void CutPowerAfterWriteOps(int64_t n);
  bool powered() const;
  // Leaves on disk only what was durable (see the file comment). Call after
  // SimulatePowerLoss, once the database using this file system is gone.
  rocksdb::IOStatus DropUnsyncedData();
  // Powers on, clears the write fault and forgets all tracking: what is on disk
  // now counts as durable.
  void Reset();
  // Bytes written but not durable, over all tracked files (for tests that
  // want to know a power cut would lose something).
  uint64_t UnsyncedBytes() const;

  // ---- rocksdb::FileSystem
  rocksdb::IOStatus NewSequentialFile(const std::string& f, const rocksdb::FileOptions& o,
                                      std::unique_ptr<rocksdb::FSSequentialFile>* r,
                                      rocksdb::IODebugContext* dbg) override;
  rocksdb::IOStatus NewRandomAccessFile(const std::string& f, const rocksdb::FileOptions& o,
                                        std::unique_ptr<rocksdb::FSRandomAccessFile>* r,
                                        rocksdb::IODebugContext* dbg) override;
  rocksdb::IOStatus NewWritableFile(const std::string& f, const rocksdb::FileOptions& o,
                                    std::unique_ptr<rocksdb::FSWritableFile>* r, rocksdb::IODebugContext* dbg) override;
  rocksdb::IOStatus ReopenWritableFile(const std::string& f, const rocksdb::FileOptions& o,
                                       std::unique_ptr<rocksdb::FSWritableFile>* r,
                                       rocksdb::IODebugContext* dbg) override;
  rocksdb::IOStatus ReuseWritableFile(const std::string& f, const std::string& old, const rocksdb::FileOptions& o,
                                      std::unique_ptr<rocksdb::FSWritableFile>* r,
                                      rocksdb::IODebugContext* dbg) override;
  rocksdb::IOStatus NewRandomRWFile(const std::string& f, const rocksdb::FileOptions& o,
                                    std::unique_ptr<rocksdb::FSRandomRWFile>* r, rocksdb::IODebugContext* dbg) override;
  rocksdb::IOStatus NewDirectory(const std::string& name, const rocksdb::IOOptions& o,
                                 std::unique_ptr<rocksdb::FSDirectory>* r, rocksdb::IODebugContext* dbg) override;
  rocksdb::IOStatus FileExists(const std::string& f, const rocksdb::IOOptions& o,
                               rocksdb::IODebugContext* dbg) override;
  rocksdb::IOStatus GetChildren(const std::string& dir, const rocksdb::IOOptions& o, std::vector<std::string>* r,
                                rocksdb::IODebugContext* dbg) override;
  rocksdb::IOStatus DeleteFile(const std::string& f, const rocksdb::IOOptions& o,
                               rocksdb::IODebugContext* dbg) override;
  rocksdb::IOStatus Truncate(const std::string& f, size_t size, const rocksdb::IOOptions& o,
                             rocksdb::IODebugContext* dbg) override;
  rocksdb::IOStatus CreateDir(const std::string& d, const rocksdb::IOOptions& o, rocksdb::IODebugContext* dbg) override;
  rocksdb::IOStatus CreateDirIfMissing(const std::string& d, const rocksdb::IOOptions& o,
                                       rocksdb::IODebugContext* dbg) override;
  rocksdb::IOStatus DeleteDir(const std::string& d, const rocksdb::IOOptions& o, rocksdb::IODebugContext* dbg) override;
  rocksdb::IOStatus GetFileSize(const std::string& f, const rocksdb::IOOptions& o, uint64_t* s,
                                rocksdb::IODebugContext* dbg) override;
  rocksdb::IOStatus RenameFile(const std::string& from, const std::string& to, const rocksdb::IOOptions& o,
                               rocksdb::IODebugContext* dbg) override;
  rocksdb::IOStatus LinkFile(const std::string& from, const std::string& to, const rocksdb::IOOptions& o,
                             rocksdb::IODebugContext* dbg) override;
  rocksdb::IOStatus GetFreeSpace(const std::string& path, const rocksdb::IOOptions& o, uint64_t* free,
                                 rocksdb::IODebugContext* dbg) override;

 private:
  friend class FaultWritableFile;
  friend class FaultDirectory;
  friend class FaultSequentialFile;
  friend class FaultRandomAccessFile;

  // Durability of one file written through this file system.
  struct FileState {
    uint64_t size = 0;    // bytes in the file now
    uint64_t synced = 0;  // of which durable
  };
  // A rename not yet covered by an fsync of the target's directory.
  struct PendingRename {
    std::string from;
    std::string to;
    std::optional<std::string> replaced;  // contents of the file `to` replaced
  };

  // Held (shared) by every operation for its whole duration; SimulatePowerLoss
  // takes it exclusively, so no operation straddles the power cut.
  std::shared_lock<std::shared_mutex> Operation() const { return std::shared_lock<std::shared_mutex>(power_mu_); }
  bool powered_locked() const { return powered_.load(); }
  // Counts one write-type operation toward an armed cut; false: the power
  // failed at this one, which therefore does not happen.
  bool SurvivesWriteOp();
  static rocksdb::IOStatus PowerLost() { return rocksdb::IOStatus::IOError("simulated power loss"); }
  // The injected error for a data write, sync or creation, or OK.
  rocksdb::IOStatus WriteFaultStatus(bool is_sync = false);

  // State bookkeeping (state_mu_).
  void Created(const std::string& path, bool existed);
  void Appended(const std::string& path, uint64_t new_size);
  void Synced(const std::string& path, uint64_t size);
  void DirSynced(const std::string& dir);
  void Untrack(const std::string& path);

  std::atomic<WriteFault> fault_{WriteFault::kNone};
  std::atomic<FaultScope> scope_{FaultScope::kWritesAndSyncs};
  std::atomic<uint64_t> refused_writes_{0};

  mutable std::shared_mutex power_mu_;
  // Turned off under power_mu_ (SimulatePowerLoss) or by an armed cut.
  std::atomic<bool> powered_{true};
  std::atomic<bool> cut_armed_{false};
  std::atomic<int64_t> cut_countdown_{0};

  mutable std::mutex state_mu_;
  std::map<std::string, FileState> files_;
  // Directory -> names created in it since its last fsync.
  std::map<std::string, std::set<std::string>> unsynced_entries_;
  std::vector<PendingRename> renames_;
};

}  // namespace wmty::testing

#endif  // WMTY_TESTS_SUPPORT_FAULT_INJECTION_FS_H_
