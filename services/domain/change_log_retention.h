// ChangeLogRetention: the change log's retention policy (docs/operations.md,
// "Change-log retention"). The store keeps every change's record and versions
// for good, but its change log (what WatchChanges and the subscription
// matcher read) would grow without bound; this trims its oldest entries.
//
// Policy. Both limits are maxima: an entry is trimmed once it is outside the
// newest `max_changes` entries OR older than `max_age` (by the time of its
// change), so the log's disk use is bounded by either; zero disables a
// limit. Never past a floor: durable consumers (the subscription matcher)
// register one with AddFloor, and only sequences below every floor are
// trimmed, so a consumer that fell behind finds what it has not read yet.
// A gRPC watcher whose resume sequence was trimmed is told so (OUT_OF_RANGE
// with the oldest sequence held), never shown a gap: it registers no floor.
//
// Age is found by binary search over the log (a few seeks, not a scan),
// assuming change times do not decrease with the sequence (they come from
// the server's clock at commit; a clock stepped back may keep a few entries
// a little longer).
//
// Errors: TrimOnce returns what the store returned (UNAVAILABLE, DATA_LOSS);
// the background thread logs it, counts it and tries again next interval.
//
// Thread safety: all methods may be called from any thread. Floors are
// called on the retention thread (or TrimOnce's caller) and must be cheap
// and must not block on the store's threads.
#ifndef WMTY_DOMAIN_CHANGE_LOG_RETENTION_H_
#define WMTY_DOMAIN_CHANGE_LOG_RETENTION_H_

#include <cstdint>
#include <functional>
#include <optional>
#include <thread>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "storage/store.h"

namespace wmty::domain {

struct ChangeLogRetentionOptions {
  // Newest entries kept at most; 0: no count limit.
  uint64_t max_changes = 10'000'000;
  // Entries older than this are trimmed; zero: no age limit.
  absl::Duration max_age = absl::Hours(24 * 30);
  // How often the background thread trims (Start).
  absl::Duration interval = absl::Minutes(1);
  // Time source for the age limit (injected by tests).
  std::function<absl::Time()> clock = [] { return absl::Now(); };
};

// What /metrics shows of retention (besides the store's oldest and last
// sequence, storage::StoreStats).
struct ChangeLogRetentionStats {
  uint64_t trims = 0;     // trims that removed entries, since start
  uint64_t failures = 0;  // trims or policy reads that failed, since start
  std::optional<absl::Time> last_trim;
  // Entries the policy would trim now but a floor keeps (a consumer behind).
  uint64_t held_by_floor = 0;
  // Time of the oldest entry held, as of the last pass (none: empty log).
  std::optional<absl::Time> oldest_entry_time;
};

class ChangeLogRetention {
 public:
  // `store` must outlive this object.
  ChangeLogRetention(storage::Store* store, ChangeLogRetentionOptions options);
  ~ChangeLogRetention();  // Stop()
  ChangeLogRetention(const ChangeLogRetention&) = delete;
  ChangeLogRetention& operator=(const ChangeLogRetention&) = delete;

  // Trims only sequences < floor() from now on (e.g. a consumer's cursor + 1:
  // the first sequence it has yet to read). Register before Start.
  void AddFloor(std::function<uint64_t()> floor);

  // Starts the thread that calls TrimOnce every `interval`, first at once.
  // Does nothing when both limits are disabled. Once only.
  void Start();
  // Stops and joins the thread (a trim in progress finishes first). Call
  // before closing the store. Idempotent.
  void Stop();

  // Applies the policy now: the sequence the log was trimmed through, or 0
  // when nothing was to trim.
  absl::StatusOr<uint64_t> TrimOnce();

  ChangeLogRetentionStats stats() const;

 private:
  // TrimOnce without its lock and stats of the oldest entry.
  absl::StatusOr<uint64_t> TrimByPolicy();
  // The last sequence the policy trims (0: none), before floors.
  absl::StatusOr<uint64_t> PolicyTarget(uint64_t oldest, uint64_t last) const;
  // The last entry older than the age limit (0: none).
  absl::StatusOr<uint64_t> LastTooOld(uint64_t oldest, uint64_t last) const;
  uint64_t LowestFloor() const;
  // Notes the oldest entry's time in stats_ (after a pass).
  void NoteOldestEntry();
  void Loop();

  storage::Store* const store_;
  const ChangeLogRetentionOptions options_;
  mutable absl::Mutex mu_;
  std::vector<std::function<uint64_t()>> floors_ ABSL_GUARDED_BY(mu_);
  ChangeLogRetentionStats stats_ ABSL_GUARDED_BY(mu_);
  bool stopping_ ABSL_GUARDED_BY(mu_) = false;
  absl::Mutex trim_mu_;  // one TrimOnce at a time
  std::thread thread_;
};

}  // namespace wmty::domain

#endif  // WMTY_DOMAIN_CHANGE_LOG_RETENTION_H_
