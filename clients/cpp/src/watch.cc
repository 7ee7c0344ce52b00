// Watcher: one stream at a time on a completion queue of its own, driven by
// the thread that calls Next (no thread of its own). One operation (Start,
// Read or Finish) is pending at a time; a Read is issued only when the caller
// asks for the next message, so a caller that stops reading stops the stream
// (gRPC flow control) and the server's stall rules apply.
#include "wmty/client/watch.h"

#include <algorithm>
#include <utility>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "common/status.h"
#include "google/rpc/error_details.pb.h"
#include "google/rpc/status.pb.h"

namespace wmty::client {
namespace {

constexpr absl::string_view kErrorInfoTypeUrl = "type.googleapis.com/google.rpc.ErrorInfo";
// The server's default heartbeat interval (change_feed.proto).
constexpr absl::Duration kServerHeartbeat = absl::Seconds(10);
// The tag of the one pending operation: the step it belongs to is in step_.
void* const kTag = reinterpret_cast<void*>(1);

// FromGrpcStatus, plus the google.rpc.ErrorInfo the change feed attaches
// (read here from the raw details, so the client does not depend on which
// details the common conversion knows).
absl::Status FromGrpc(const grpc::Status& status) {
  absl::Status out = FromGrpcStatus(status);
  google::rpc::Status details;
  if (!status.ok() && !status.error_details().empty() && details.ParseFromString(status.error_details())) {
    for (const auto& any : details.details()) {
      if (any.type_url() == kErrorInfoTypeUrl) out.SetPayload(kErrorInfoTypeUrl, absl::Cord(any.value()));
    }
  }
  return out;
}

std::optional<uint64_t> ErrorInfoSequence(const absl::Status& status, absl::StatusCode code, absl::string_view reason,
                                          const std::string& key) {
  if (status.code() != code) return std::nullopt;
  const auto payload = status.GetPayload(kErrorInfoTypeUrl);
  google::rpc::ErrorInfo info;
  if (!payload.has_value() || !info.ParseFromString(std::string(*payload)) || info.reason() != reason) {
    return std::nullopt;
  }
  const auto it = info.metadata().find(key);
  uint64_t sequence = 0;
  if (it == info.metadata().end() || !absl::SimpleAtoi(it->second, &sequence)) return std::nullopt;
  return sequence;
}

// Ends of a stream after which a new one may well work (see watch.h).
bool IsTransient(absl::StatusCode code) {
  switch (code) {
    case absl::StatusCode::kUnavailable:
    case absl::StatusCode::kResourceExhausted:
    case absl::StatusCode::kDeadlineExceeded:
    case absl::StatusCode::kAborted:
    case absl::StatusCode::kUnknown:
    case absl::StatusCode::kCancelled:
      return true;
    default:
      return false;
  }
}

}  // namespace

std::optional<uint64_t> OldestAvailableSequence(const absl::Status& status) {
  return ErrorInfoSequence(status, absl::StatusCode::kOutOfRange, "CHANGE_LOG_TRIMMED", "oldest_available_sequence");
}

std::optional<uint64_t> ResumeAfterSequence(const absl::Status& status) {
  return ErrorInfoSequence(status, absl::StatusCode::kResourceExhausted, "WATCHER_TOO_SLOW", "resume_after_sequence");
}

struct Watcher::Stream {
  grpc::ClientContext context;
  std::unique_ptr<grpc::ClientAsyncReaderInterface<v1::WatchChangesResponse>> reader;
  v1::WatchChangesResponse message;
  grpc::Status status;
};

Watcher::Watcher(std::shared_ptr<grpc::Channel> channel, std::string bearer_token, WatchOptions options)
    : stub_(v1::ChangeFeedService::NewStub(std::move(channel))),
      bearer_token_(std::move(bearer_token)),
      options_(std::move(options)),
      backoff_(options_.initial_backoff),
      position_(options_.start_after) {}

Watcher::~Watcher() {
  Cancel();
  // A cancelled stream ends promptly; let it, so that nothing on the queue
  // refers to it, then empty the queue.
  while (step_ != Step::kIdle) Advance(absl::InfiniteFuture());
  cq_.Shutdown();
  void* tag = nullptr;
  bool ok = false;
  while (cq_.Next(&tag, &ok)) {
  }
}

absl::StatusOr<v1::WatchChangesResponse> Watcher::Next(absl::Duration timeout) {
  const absl::Time deadline = absl::Now() + timeout;  // Now() + infinite = InfiniteFuture()
  for (;;) {
    if (end_.has_value()) return *end_;
    if (step_ == Step::kIdle) {
      if (!WaitToReconnect(deadline)) return absl::DeadlineExceededError("no change feed message within the timeout");
      if (!end_.has_value()) OpenStream();
      continue;
    }
    switch (Advance(deadline)) {
      case Progress::kMessage:
        return std::move(stream_->message);
      case Progress::kTimeout:
        return absl::DeadlineExceededError("no change feed message within the timeout");
      case Progress::kAgain:
        break;
    }
  }
}

absl::Status Watcher::Run(const std::function<bool(const v1::WatchChangesResponse&)>& on_message) {
  for (;;) {
    absl::StatusOr<v1::WatchChangesResponse> message = Next();
    if (!message.ok()) return message.status();
    if (!on_message(*message)) return absl::OkStatus();
  }
}

void Watcher::Cancel() {
  absl::MutexLock lock(&mu_);
  cancelled_ = true;
  // Before its call has started, TryCancel takes effect when it starts.
  if (stream_ != nullptr) stream_->context.TryCancel();
}

std::optional<uint64_t> Watcher::position() const {
  absl::MutexLock lock(&mu_);
  return position_;
}

int64_t Watcher::reconnects() const {
  absl::MutexLock lock(&mu_);
  return reconnects_;
}

int64_t Watcher::duplicates_dropped() const {
  absl::MutexLock lock(&mu_);
  return duplicates_dropped_;
}

bool Watcher::WaitToReconnect(absl::Time deadline) {
  absl::MutexLock lock(&mu_);
  mu_.AwaitWithDeadline(absl::Condition(&cancelled_), std::min(retry_at_, deadline));
  if (cancelled_) {
    end_ = absl::CancelledError("the watch was cancelled");
    return true;
  }
  return absl::Now() >= retry_at_;
}

v1::WatchChangesRequest Watcher::Request() const {
  v1::WatchChangesRequest req;
  if (const std::optional<uint64_t> at = position(); at.has_value()) req.set_start_after(*at);
  req.set_parent(options_.parent);
  for (v1::ResourceKind kind : options_.kinds) req.add_kinds(kind);
  req.set_include_resource(options_.include_resource);
  // Once the summary is here, later streams resume after it instead.
  req.set_include_summary(options_.include_summary && !summary_seen_);
  if (options_.heartbeat_interval > absl::ZeroDuration()) {
    const int64_t nanos = absl::ToInt64Nanoseconds(options_.heartbeat_interval);
    req.mutable_heartbeat_interval()->set_seconds(nanos / 1000000000);
    req.mutable_heartbeat_interval()->set_nanos(static_cast<int32_t>(nanos % 1000000000));
  }
  return req;
}

void Watcher::OpenStream() {
  auto stream = std::make_unique<Stream>();
  if (!bearer_token_.empty()) stream->context.AddMetadata("authorization", "Bearer " + bearer_token_);
  stream->reader = stub_->PrepareAsyncWatchChanges(&stream->context, Request(), &cq_);
  {
    absl::MutexLock lock(&mu_);
    if (cancelled_) {
      end_ = absl::CancelledError("the watch was cancelled");
      return;  // never started: nothing on the queue
    }
    stream_ = std::move(stream);
    if (opened_before_) ++reconnects_;
  }
  opened_before_ = true;
  step_ = Step::kStarting;
  silenced_ = false;
  waited_ = absl::ZeroDuration();
  stream_->reader->StartCall(kTag);
  op_pending_ = true;
}

Watcher::Progress Watcher::Advance(absl::Time deadline) {
  if (!op_pending_) {  // reading: the caller wants the next message
    stream_->reader->Read(&stream_->message, kTag);
    op_pending_ = true;
    // Silence counts only the time the caller spends waiting in Next: one
    // that took its time between messages must not find its stream dead.
    waited_ = absl::ZeroDuration();
  }
  void* tag = nullptr;
  bool ok = false;
  const absl::Time start = absl::Now();
  const absl::Time silent_at = silenced_ ? absl::InfiniteFuture() : start + (SilenceTimeout() - waited_);
  const grpc::CompletionQueue::NextStatus next =
      cq_.AsyncNext(&tag, &ok, absl::ToChronoTime(std::min(deadline, silent_at)));
  waited_ += absl::Now() - start;
  switch (next) {
    case grpc::CompletionQueue::TIMEOUT:
      if (!silenced_ && waited_ >= SilenceTimeout()) {
        // Not even a heartbeat for too long: end this stream (it finishes
        // CANCELLED, taken as UNAVAILABLE in EndStream) and open another.
        silenced_ = true;
        stream_->context.TryCancel();
        return Progress::kAgain;
      }
      return absl::Now() >= deadline ? Progress::kTimeout : Progress::kAgain;
    case grpc::CompletionQueue::SHUTDOWN:  // only in the destructor, after the stream ended
      return Progress::kAgain;
    case grpc::CompletionQueue::GOT_EVENT:
      break;
  }
  op_pending_ = false;
  if (step_ == Step::kFinishing) {
    EndStream(FromGrpc(stream_->status));
    return Progress::kAgain;
  }
  if (ok && step_ == Step::kStarting) {
    step_ = Step::kReading;
    return Progress::kAgain;
  }
  if (ok) return TakeMessage() ? Progress::kMessage : Progress::kAgain;
  // The stream is over (or never started): learn why.
  step_ = Step::kFinishing;
  stream_->reader->Finish(&stream_->status, kTag);
  op_pending_ = true;
  return Progress::kAgain;
}

bool Watcher::TakeMessage() {
  const v1::WatchChangesResponse& m = stream_->message;
  failures_ = 0;
  backoff_ = options_.initial_backoff;
  absl::MutexLock lock(&mu_);
  switch (m.event_case()) {
    case v1::WatchChangesResponse::kChange:
      if (position_.has_value() && m.change().sequence() <= *position_) {
        ++duplicates_dropped_;
        return false;
      }
      position_ = m.change().sequence();
      return true;
    case v1::WatchChangesResponse::kHeartbeat:
      position_ = std::max(position_.value_or(0), m.heartbeat().head_sequence());
      return true;
    case v1::WatchChangesResponse::kSummary:
      position_ = std::max(position_.value_or(0), m.summary().after_sequence());
      summary_seen_ = true;
      return true;
    case v1::WatchChangesResponse::EVENT_NOT_SET:
      break;
  }
  return false;  // a kind of message newer than this client: skipped
}

void Watcher::EndStream(absl::Status status) {
  {
    absl::MutexLock lock(&mu_);
    stream_.reset();  // under mu_: Cancel must not reach a freed context
    step_ = Step::kIdle;
    if (cancelled_) {
      end_ = absl::CancelledError("the watch was cancelled");
      return;
    }
    if (const std::optional<uint64_t> resume = ResumeAfterSequence(status); resume.has_value()) {
      position_ = std::max(position_.value_or(0), *resume);
    }
  }
  if (silenced_) {
    status = absl::UnavailableError(absl::StrCat("no message from the server for ",
                                                 absl::FormatDuration(SilenceTimeout()), " (not even a heartbeat)"));
  } else if (status.ok()) {
    status = absl::UnavailableError("the server ended the stream");
  }
  ++failures_;
  if (!IsTransient(status.code()) || (options_.max_retries > 0 && failures_ > options_.max_retries)) {
    end_ = std::move(status);
    return;
  }
  const absl::Duration delay = NextDelay(status);
  if (options_.on_retry) options_.on_retry(status, delay);
  retry_at_ = absl::Now() + delay;
}

absl::Duration Watcher::NextDelay(const absl::Status& status) {
  const absl::Duration backoff = backoff_;
  backoff_ = std::min(backoff_ * 2, options_.max_backoff);
  absl::Duration delay = backoff / 2 + absl::Uniform(jitter_, 0.0, 1.0) * (backoff / 2);
  if (const std::optional<absl::Duration> asked = RetryDelayOf(status); asked.has_value()) {
    delay = std::max(delay, *asked);
  }
  return delay;
}

absl::Duration Watcher::SilenceTimeout() const {
  if (options_.silence_timeout > absl::ZeroDuration()) return options_.silence_timeout;
  return 3 * (options_.heartbeat_interval > absl::ZeroDuration() ? options_.heartbeat_interval : kServerHeartbeat);
}

}  // namespace wmty::client
