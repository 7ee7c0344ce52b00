// wmty::client::Watcher: follows wmty's change feed
// (wmty.v1.ChangeFeedService.WatchChanges, proto/wmty/v1/change_feed.proto)
// and keeps following it by itself when the stream breaks.
//
//   wmty::client::WatchOptions options;
//   options.parent = "patients/p1";
//   std::unique_ptr<wmty::client::Watcher> watch = client->WatchChanges(options);
//   for (;;) {
//     absl::StatusOr<wmty::v1::WatchChangesResponse> m = watch->Next();
//     if (!m.ok()) break;  // OUT_OF_RANGE: read again what you show, then watch from now
//     if (m->has_change()) ...
//   }
//
// Position. The watcher remembers how far it has seen the log: the sequence of
// the last change it returned, raised by each heartbeat's head sequence (the
// server has sent every change up to it) and set by the summary's
// after_sequence. position() reads it.
//
// Resuming. When the stream ends for a reason that may clear up by itself,
// the watcher opens a new one after a delay (exponential backoff with jitter,
// at least the server's RetryInfo delay) and asks for the changes after its
// position, so the caller gets every change once and in order, across server
// restarts, and sees nothing of the break (besides on_retry). Those reasons:
// UNAVAILABLE (restart, shutdown, network), RESOURCE_EXHAUSTED (a consumer too
// slow: the server's resume_after_sequence is taken; or an overloaded server),
// DEADLINE_EXCEEDED, ABORTED, UNKNOWN, CANCELLED by the server, a stream the
// server ended without an error, and silence: no message, not even a
// heartbeat, for silence_timeout while Next waits (a hung server or a dead
// connection). A
// change at or below the position is never returned (should a server repeat
// one, it is dropped and counted in duplicates_dropped()).
//
// Without a start_after the watcher starts at the head when its first stream
// opens; the server's first message (a heartbeat, sent at once) names it. A
// stream that breaks before even that arrives is replaced by one starting at
// the new head: pass start_after (or include_summary) when a change in that
// window matters.
//
// Errors (Next returns them; after any but DEADLINE_EXCEEDED every later Next
// returns the same):
// - DEADLINE_EXCEEDED: nothing came within Next's `timeout`. Not an end: call
//   Next again, the watch goes on.
// - OUT_OF_RANGE: the server no longer holds the changes after the position
//   (change-log retention); OldestAvailableSequence() tells from where it
//   does. Read again what you show (e.g. the summary) and watch from now.
// - CANCELLED: Cancel() was called.
// - INVALID_ARGUMENT (field violations), UNAUTHENTICATED, PERMISSION_DENIED,
//   UNIMPLEMENTED (a wmtyd without the change feed), and any code not listed
//   under Resuming: as the server sent them.
// - The last transient error, when max_retries attempts in a row failed.
//
// Thread safety: Next and Run are called from one thread at a time; Cancel,
// position, reconnects and duplicates_dropped from any thread.
#ifndef WMTY_CLIENT_WATCH_H_
#define WMTY_CLIENT_WATCH_H_

#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include <grpcpp/grpcpp.h>

#include "absl/base/thread_annotations.h"
#include "absl/random/random.h"
#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "wmty/v1/change_feed.grpc.pb.h"

namespace wmty::client {

struct WatchOptions {
  // Changes after this sequence. Unset: from now (see the file comment).
  std::optional<uint64_t> start_after;
  // "patients/{id}": only this patient's changes. Empty: every patient the
  // token may read.
  std::string parent;
  // Only these kinds. Empty: every kind the token may read.
  std::vector<v1::ResourceKind> kinds;
  // Each change carries the resource version it wrote (patient data).
  bool include_resource = false;
  // Needs `parent` and no start_after: the first message is the patient's
  // summary. Asked for until a summary has come; resumed streams start after it.
  bool include_summary = false;
  // Asked of the server (1 s to 5 min). Zero: the server's default, 10 s.
  absl::Duration heartbeat_interval = absl::ZeroDuration();
  // No message for this long while Next waits for one: the stream is taken
  // for dead and replaced. Zero: three heartbeat intervals.
  absl::Duration silence_timeout = absl::ZeroDuration();
  // Delay before the first reconnect; doubles per failed attempt up to
  // max_backoff. A random part (up to half) keeps many clients of a restarted
  // server from reconnecting all at once.
  absl::Duration initial_backoff = absl::Milliseconds(100);
  absl::Duration max_backoff = absl::Seconds(10);
  // Failed attempts in a row (no message in between) before Next gives up
  // with the last error. 0: never give up.
  int max_retries = 0;
  // Told before each wait to reconnect: why the stream ended and how long the
  // wait is. Runs on the thread calling Next; for logs (must not call the
  // watcher). The status may carry patient ids, never patient text.
  std::function<void(const absl::Status& why, absl::Duration delay)> on_retry;
};

class Watcher {
 public:
  // `bearer_token`: sent as `authorization: Bearer ...` on each stream (empty:
  // none). Nothing is sent before the first Next.
  Watcher(std::shared_ptr<grpc::Channel> channel, std::string bearer_token, WatchOptions options);
  ~Watcher();  // cancels the stream and waits for it to end
  Watcher(const Watcher&) = delete;
  Watcher& operator=(const Watcher&) = delete;

  // The next message: a change, a heartbeat or (first, with include_summary)
  // the summary. Blocks up to `timeout`; see the file comment for errors.
  absl::StatusOr<v1::WatchChangesResponse> Next(absl::Duration timeout = absl::InfiniteDuration());

  // Calls `on_message` with each message until it returns false (then OK) or
  // Next fails with anything but DEADLINE_EXCEEDED (that error).
  absl::Status Run(const std::function<bool(const v1::WatchChangesResponse&)>& on_message);

  // Ends the watch: a blocked Next returns CANCELLED, and so does every later one.
  void Cancel();

  // How far the watcher has seen the log (nullopt: not known yet). Resume a
  // later watch with start_after = this.
  std::optional<uint64_t> position() const;
  // Streams opened again after a break.
  int64_t reconnects() const;
  // Changes the server sent again at or below the position (none expected).
  int64_t duplicates_dropped() const;

 private:
  enum class Step { kIdle, kStarting, kReading, kFinishing };
  enum class Progress { kMessage, kTimeout, kAgain };
  struct Stream;

  // Waits out the reconnect delay: false if `deadline` came first (sets end_
  // when cancelled).
  bool WaitToReconnect(absl::Time deadline);
  v1::WatchChangesRequest Request() const;
  void OpenStream();
  // Waits for the pending operation until `deadline` and takes the next step.
  Progress Advance(absl::Time deadline);
  // Updates the position; false for a message not to be returned.
  bool TakeMessage();
  // The stream finished with `status`: reconnect later or end the watch.
  void EndStream(absl::Status status);
  absl::Duration NextDelay(const absl::Status& status);
  absl::Duration SilenceTimeout() const;

  std::unique_ptr<v1::ChangeFeedService::Stub> stub_;
  const std::string bearer_token_;
  const WatchOptions options_;
  grpc::CompletionQueue cq_;
  absl::BitGen jitter_;

  // Used by the thread calling Next only (stream_ is also set and reset under
  // mu_, for Cancel to reach its context).
  std::unique_ptr<Stream> stream_;
  Step step_ = Step::kIdle;
  bool op_pending_ = false;     // a Start, Read or Finish is on cq_
  bool silenced_ = false;       // this stream was cancelled for silence
  bool opened_before_ = false;  // a stream was opened already (the next is a reconnect)
  absl::Duration waited_;       // time spent in Next waiting for the pending message
  absl::Time retry_at_ = absl::InfinitePast();
  absl::Duration backoff_;
  int failures_ = 0;                 // attempts in a row without a message
  std::optional<absl::Status> end_;  // the error every Next returns from now on
  bool summary_seen_ = false;

  mutable absl::Mutex mu_;
  bool cancelled_ ABSL_GUARDED_BY(mu_) = false;
  std::optional<uint64_t> position_ ABSL_GUARDED_BY(mu_);
  int64_t reconnects_ ABSL_GUARDED_BY(mu_) = 0;
  int64_t duplicates_dropped_ ABSL_GUARDED_BY(mu_) = 0;
};

// The oldest sequence the server still holds, from an OUT_OF_RANGE of the
// change feed (google.rpc.ErrorInfo CHANGE_LOG_TRIMMED); nullopt if absent.
std::optional<uint64_t> OldestAvailableSequence(const absl::Status& status);
// Where a too-slow consumer resumes, from a RESOURCE_EXHAUSTED of the change
// feed (ErrorInfo WATCHER_TOO_SLOW); nullopt if absent.
std::optional<uint64_t> ResumeAfterSequence(const absl::Status& status);

}  // namespace wmty::client

#endif  // WMTY_CLIENT_WATCH_H_
