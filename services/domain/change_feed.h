// ChangeFeed: the server side of wmty.v1.ChangeFeedService.WatchChanges
// (proto/wmty/v1/change_feed.proto is the contract): every committed change,
// in commit order, to each watcher whose filter it matches.
//
// Pull, not push. A watcher (ChangeWatch) keeps its own cursor in the
// change log and reads the store itself when its consumer asks for the next
// message (Next), at most `buffer_events` events ahead of what the consumer
// has taken. Catching up from an old start_after, resuming and following live
// changes are one code path, and a slow consumer costs at most that buffer:
// nothing is queued for it when changes commit. A consumer that has not
// taken a message for `stall_timeout` is ended with RESOURCE_EXHAUSTED and
// the sequence to resume after (ErrorInfo WATCHER_TOO_SLOW).
//
// One feed thread, shared by every watcher: it learns of new commits from the
// store's commit listener, reads the new change-log entries once (and keeps
// the newest few thousand in memory, where live watchers without
// include_resource read them instead of taking a snapshot each) and wakes
// only the idle watchers whose patient and kinds they touch; and it keeps one
// timer queue (one entry per watcher) for heartbeats and stalls. An idle
// watcher costs its small state and one timer entry, no thread.
//
// What a watcher sees: changes of the kinds in its WatchSpec (never
// SUBSCRIPTION), of its patient if it has one, after start_after, each
// exactly once and in order. Heartbeats carry the watcher's cursor: every
// change up to it that the watcher may see has been sent. A trimmed log
// (start_after older than the oldest entry, or a trim racing the read) ends
// the watch with OUT_OF_RANGE (ErrorInfo CHANGE_LOG_TRIMMED,
// oldest_available_sequence), never with a silent gap.
//
// Authorization is the caller's (the face decides which patient and kinds a
// principal may watch and puts them in the WatchSpec).
//
// Thread safety: every method may be called from any thread. The store must
// outlive the ChangeFeed; the ChangeFeed must outlive its ChangeWatch
// objects' last Close (the gRPC face closes them before the server is
// destroyed).
#ifndef WMTY_DOMAIN_CHANGE_FEED_H_
#define WMTY_DOMAIN_CHANGE_FEED_H_

#include <atomic>
#include <cstdint>
#include <deque>
#include <functional>
#include <memory>
#include <optional>
#include <queue>
#include <string>
#include <thread>
#include <vector>

#include "absl/container/flat_hash_map.h"
#include "absl/functional/any_invocable.h"
#include "absl/functional/function_ref.h"
#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "domain/patient_records.h"
#include "storage/store.h"
#include "wmty/v1/change_feed.pb.h"

namespace wmty::domain {

// ErrorInfo reasons and metadata keys of the feed's errors (the proto's).
inline constexpr absl::string_view kChangeLogTrimmedReason = "CHANGE_LOG_TRIMMED";
inline constexpr absl::string_view kOldestAvailableSequenceKey = "oldest_available_sequence";
inline constexpr absl::string_view kWatcherTooSlowReason = "WATCHER_TOO_SLOW";
inline constexpr absl::string_view kResumeAfterSequenceKey = "resume_after_sequence";

struct ChangeFeedOptions {
  // Events a watcher reads ahead of its consumer, at most.
  size_t buffer_events = 32;
  // Change-log entries one read of a filtered watcher visits at most before
  // it lets others go first (a watcher far behind catches up in steps).
  size_t scan_batch = 4096;
  // A consumer that has not taken a message for this long is ended with
  // RESOURCE_EXHAUSTED; one that still has not, after as long again, is
  // dropped (its stream cancelled).
  absl::Duration stall_timeout = absl::Seconds(60);
  // Most watchers at once (0: no limit); past it Watch fails with
  // RESOURCE_EXHAUSTED.
  size_t max_watchers = 10000;
  // Besides the store's commit listener, look at the store's head this often
  // (0: never). A safety net for stores whose listener does not fire.
  absl::Duration poll_interval = absl::ZeroDuration();
};

// What one watcher follows, after the caller's authorization.
struct WatchSpec {
  // Changes after this follow; nullopt: from the head.
  std::optional<uint64_t> start_after;
  // Only this patient's changes; empty: every patient.
  std::string patient_id;
  // The kinds shown; never empty, never SUBSCRIPTION.
  std::vector<storage::Kind> kinds;
  bool include_resource = false;
  // The patient's summary first (needs patient_id and no start_after).
  bool include_summary = false;
  absl::Duration heartbeat_interval = absl::Seconds(10);
  // The caller's token expires then: the watch ends UNAUTHENTICATED.
  absl::Time expires = absl::InfiniteFuture();
};

inline constexpr absl::Duration kDefaultHeartbeatInterval = absl::Seconds(10);
inline constexpr absl::Duration kMinHeartbeatInterval = absl::Seconds(1);
inline constexpr absl::Duration kMaxHeartbeatInterval = absl::Minutes(5);

// The request's own rules (the proto's INVALID_ARGUMENT cases but
// start_after beyond the head, which Watch checks): every violation at once.
// `kinds` is what was asked for (empty: any); the caller narrows it to what
// the principal may read.
absl::StatusOr<WatchSpec> ParseWatchRequest(const v1::WatchChangesRequest& request);

// The kinds a watch can show (every kind of wmty.v1 resources).
const std::vector<storage::Kind>& WatchableKinds();

// What the consumer of a watch does next (ChangeWatch::Next).
struct WatchStep {
  enum Action {
    kWait,   // nothing now: the wake callback runs when there is something
    kSend,   // send `message`, then call Sent
    kEnd,    // end the stream with `status` (handed out once)
    kAbort,  // the consumer never took what it was sent: drop the stream
  };
  Action action = kWait;
  v1::WatchChangesResponse message;
  absl::Status status;
};

class ChangeFeed;

// One watcher. Created by ChangeFeed::Watch; the consumer (the gRPC stream)
// calls Next whenever it may send (after Watch, after each Sent, and when
// woken) and Close when its stream is done.
class ChangeWatch {
 public:
  ~ChangeWatch();
  ChangeWatch(const ChangeWatch&) = delete;
  ChangeWatch& operator=(const ChangeWatch&) = delete;

  // The next step. At most one kSend is outstanding: until Sent, Next answers
  // kWait (or kEnd/kAbort, which may come while a message is being sent).
  WatchStep Next();
  // The message of the last kSend was taken by the transport (`ok`), or the
  // stream broke (!ok: the watch ends CANCELLED).
  void Sent(bool ok);
  // The client cancelled: the watch ends CANCELLED.
  void Cancel();
  // The stream is done: no wake runs after this returns, and the feed forgets
  // the watcher. Idempotent.
  void Close();

  // The sequence a client should resume after: the last event handed out.
  uint64_t resume_after() const;

 private:
  friend class ChangeFeed;
  ChangeWatch(ChangeFeed* feed, uint64_t id, WatchSpec spec, uint64_t cursor, absl::Time first_due,
              absl::AnyInvocable<void()> wake);

  // Reads the log after the cursor into the buffer (at most buffer_events
  // events, scan_batch entries). False (with ended_ set) on an error.
  bool FillLocked() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // From the entries the feed thread remembered (no snapshot): true if it
  // moved the cursor.
  bool FillFromRecentLocked() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  absl::Status ReadEvents(const storage::Reader& reader, uint64_t head) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // Takes the entry after the cursor (buffering its event if it matches);
  // false when the buffer or this step is full. `reader`: for the resource
  // (include_resource), else may be null.
  bool TakeLocked(const storage::Reader* reader, const storage::Change& change, size_t* visited, absl::Status* error)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  absl::StatusOr<v1::ChangeEvent> ToEvent(const storage::Reader* reader, const storage::Change& change) const;
  bool Matches(const storage::Change& change) const;
  void EndLocked(absl::Status status) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  WatchStep SendLocked(v1::WatchChangesResponse message, absl::Time now) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // The feed thread: when this watcher next needs it (heartbeat, stall, or
  // abort), and whether to wake the consumer now.
  // `entry_due` is the due time of the timer entry that fired: only the
  // latest entry counts (an earlier deadline adds a new one).
  enum class TimerWake { kNo, kIfWaiting, kAlways };
  absl::Time OnTimer(absl::Time now, absl::Time entry_due, TimerWake* wake);
  absl::Time NextTimerLocked(absl::Time now, TimerWake* wake) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // Makes sure the feed thread looks at this watcher by `due`.
  void ScheduleLocked(absl::Time due) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // Wakes the consumer if it is waiting (or `force`). Never under mu_.
  void Wake(bool force);

  ChangeFeed* const feed_;
  const uint64_t id_;
  const WatchSpec spec_;
  uint32_t kind_mask_ = 0;

  mutable absl::Mutex mu_;
  uint64_t cursor_ ABSL_GUARDED_BY(mu_);  // last log entry read (sent, buffered or skipped)
  std::deque<v1::WatchChangesResponse> buffer_ ABSL_GUARDED_BY(mu_);
  std::optional<v1::WatchChangesResponse> summary_ ABSL_GUARDED_BY(mu_);
  uint64_t resume_after_ ABSL_GUARDED_BY(mu_);  // last event handed out
  bool sending_ ABSL_GUARDED_BY(mu_) = false;
  bool waiting_ ABSL_GUARDED_BY(mu_) = false;  // answered kWait since the last wake
  absl::Time send_started_ ABSL_GUARDED_BY(mu_);
  absl::Time last_message_ ABSL_GUARDED_BY(mu_);  // when the last message was handed out
  std::optional<absl::Status> ended_ ABSL_GUARDED_BY(mu_);
  absl::Time ended_at_ ABSL_GUARDED_BY(mu_);
  absl::Time scheduled_ ABSL_GUARDED_BY(mu_);  // due time of the current timer entry
  bool end_handed_ ABSL_GUARDED_BY(mu_) = false;
  bool abort_handed_ ABSL_GUARDED_BY(mu_) = false;

  absl::Mutex wake_mu_;
  absl::AnyInvocable<void()> wake_ ABSL_GUARDED_BY(wake_mu_);  // null once closed
};

// What /metrics shows of the feed.
struct ChangeFeedStats {
  size_t watchers = 0;
  uint64_t watches_total = 0;  // started since start
  uint64_t events_total = 0;   // change events handed to consumers
  uint64_t heartbeats_total = 0;
  uint64_t slow_ended_total = 0;     // ended RESOURCE_EXHAUSTED (stuck consumers)
  uint64_t trimmed_ended_total = 0;  // refused or ended OUT_OF_RANGE
  uint64_t head_sequence = 0;
};

class ChangeFeed {
 public:
  // Registers the commit listener and starts the feed thread. `records`
  // assembles summaries (include_summary).
  ChangeFeed(storage::Store* store, PatientRecords* records, ChangeFeedOptions options = {});
  ~ChangeFeed();  // Shutdown()
  ChangeFeed(const ChangeFeed&) = delete;
  ChangeFeed& operator=(const ChangeFeed&) = delete;

  // Starts a watch. `wake` runs (on the feed thread, or inside a call of the
  // returned watch's methods never) when the consumer should call Next
  // again; it must not block. Errors: INVALID_ARGUMENT (start_after beyond
  // the head), OUT_OF_RANGE (trimmed, with ErrorInfo), RESOURCE_EXHAUSTED
  // (max_watchers), UNAVAILABLE (shutting down), and the summary's errors.
  absl::StatusOr<std::shared_ptr<ChangeWatch>> Watch(WatchSpec spec, absl::AnyInvocable<void()> wake);

  // Ends every watch with UNAVAILABLE, refuses new ones and stops the feed
  // thread. Idempotent.
  void Shutdown();

  ChangeFeedStats stats() const;

 private:
  friend class ChangeWatch;
  // State the store's commit listener shares; it outlives the feed (the
  // store keeps its listeners).
  // The feed thread waits on it for new commits, pokes (a watcher to wake
  // soon, a new timer) and the stop.
  struct Signal {
    absl::Mutex mu;
    uint64_t head ABSL_GUARDED_BY(mu) = 0;
    uint64_t pokes ABSL_GUARDED_BY(mu) = 0;
    bool stopped ABSL_GUARDED_BY(mu) = false;
  };
  struct Timer {
    absl::Time due;
    uint64_t id;
    bool operator>(const Timer& other) const { return due > other.due; }
  };

  void Run();
  // The newest log entries the feed thread read, kept (contiguous, at most
  // kRecentEntries) so that live watchers without include_resource read them
  // here instead of taking a snapshot each: one write woken to a thousand
  // watchers costs one read of the log.
  static constexpr size_t kRecentEntries = 4096;
  void Remember(std::vector<storage::Change> changes);
  // Visits the remembered entries after `after` (until `visit` is false);
  // false when `after + 1` is not remembered.
  bool VisitRecent(uint64_t after, absl::FunctionRef<bool(const storage::Change&)> visit) const;
  // OK if a watch may start: not shutting down, under max_watchers.
  absl::Status CanAdd();
  absl::Status CanAddLocked() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // The idle watchers the changes (after, head] may concern.
  std::vector<std::shared_ptr<ChangeWatch>> Concerned(uint64_t after, uint64_t head);
  std::vector<std::shared_ptr<ChangeWatch>> AllWatchers() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  void RunTimers(absl::Time now);
  void Forget(const ChangeWatch& watch);
  // Asks the feed thread to wake `id` soon (a watcher far behind, between steps).
  void WakeSoon(uint64_t id);
  // Adds a timer entry for `id`.
  void Schedule(uint64_t id, absl::Time due);
  uint64_t head() const { return head_.load(std::memory_order_acquire); }
  // Moves head() up to `sequence` (never down).
  void RaiseHead(uint64_t sequence);
  // Wakes the feed thread (see Signal).
  void Poke();

  storage::Store* const store_;
  PatientRecords* const records_;
  const ChangeFeedOptions options_;
  const std::shared_ptr<Signal> signal_;
  std::atomic<uint64_t> head_{0};

  mutable absl::Mutex mu_;
  bool shutting_down_ ABSL_GUARDED_BY(mu_) = false;
  uint64_t next_id_ ABSL_GUARDED_BY(mu_) = 1;
  absl::flat_hash_map<uint64_t, std::shared_ptr<ChangeWatch>> watches_ ABSL_GUARDED_BY(mu_);
  // Watchers by patient ("" : every patient), for waking only the concerned.
  absl::flat_hash_map<std::string, std::vector<uint64_t>> by_patient_ ABSL_GUARDED_BY(mu_);
  std::priority_queue<Timer, std::vector<Timer>, std::greater<Timer>> timers_ ABSL_GUARDED_BY(mu_);
  std::vector<uint64_t> wake_soon_ ABSL_GUARDED_BY(mu_);
  mutable absl::Mutex recent_mu_;  // after a watcher's mu_
  std::deque<storage::Change> recent_ ABSL_GUARDED_BY(recent_mu_);

  std::atomic<uint64_t> watches_total_{0};
  std::atomic<uint64_t> events_total_{0};
  std::atomic<uint64_t> heartbeats_total_{0};
  std::atomic<uint64_t> slow_ended_total_{0};
  std::atomic<uint64_t> trimmed_ended_total_{0};

  std::thread thread_;
};

}  // namespace wmty::domain

#endif  // WMTY_DOMAIN_CHANGE_FEED_H_
