// ChangeFeed and ChangeWatch (change_feed.h): the request's rules, a
// watcher's pull from the change log, and the feed thread (commit wakes,
// heartbeat and stall timers).
#include "domain/change_feed.h"

#include <algorithm>
#include <utility>

#include "absl/strings/str_cat.h"
#include "common/status.h"
#include "domain/names.h"

namespace wmty::domain {
namespace {

uint32_t KindBit(storage::Kind kind) { return uint32_t{1} << static_cast<int>(kind); }

v1::ResourceKind ToApiKind(storage::Kind kind) {
  switch (kind) {
    case storage::WHAT_MATTERS:
      return v1::RESOURCE_KIND_WHAT_MATTERS;
    case storage::GOAL:
      return v1::RESOURCE_KIND_GOAL;
    case storage::PREFERENCE:
      return v1::RESOURCE_KIND_PREFERENCE;
    case storage::PRIORITIES:
      return v1::RESOURCE_KIND_PRIORITIES;
    case storage::GOAL_SCORE:
      return v1::RESOURCE_KIND_GOAL_SCORE;
    case storage::PATIENT:
      return v1::RESOURCE_KIND_PATIENT;
    default:
      return v1::RESOURCE_KIND_UNSPECIFIED;
  }
}

std::optional<storage::Kind> FromApiKind(int kind) {
  for (storage::Kind k : WatchableKinds()) {
    if (ToApiKind(k) == kind) return k;
  }
  return std::nullopt;
}

v1::ChangeEvent::Operation ToApiOperation(storage::Change::Op op) {
  switch (op) {
    case storage::Change::CREATE:
      return v1::ChangeEvent::CREATE;
    case storage::Change::UPDATE:
      return v1::ChangeEvent::UPDATE;
    case storage::Change::RETRACT:
      return v1::ChangeEvent::RETRACT;
    default:
      return v1::ChangeEvent::OPERATION_UNSPECIFIED;
  }
}

void SetTime(absl::Time t, google::protobuf::Timestamp* out) {
  const int64_t micros = absl::ToUnixMicros(t);
  out->set_seconds(micros / 1'000'000);
  out->set_nanos(static_cast<int32_t>(micros % 1'000'000) * 1000);
}

// The oneof member of `event` that holds a resource of `kind`.
google::protobuf::Message* ResourceField(storage::Kind kind, v1::ChangeEvent* event) {
  switch (kind) {
    case storage::WHAT_MATTERS:
      return event->mutable_what_matters();
    case storage::GOAL:
      return event->mutable_goal();
    case storage::PREFERENCE:
      return event->mutable_preference();
    case storage::PRIORITIES:
      return event->mutable_priorities();
    case storage::GOAL_SCORE:
      return event->mutable_goal_score();
    case storage::PATIENT:
      return event->mutable_patient_resource();
    default:
      return nullptr;
  }
}

absl::Status Trimmed(uint64_t oldest) {
  return WithErrorInfo(absl::OutOfRangeError(absl::StrCat("the change log now starts at sequence ", oldest,
                                                          ": older changes were trimmed; read the current state "
                                                          "again and watch without start_after")),
                       kChangeLogTrimmedReason, {{std::string(kOldestAvailableSequenceKey), absl::StrCat(oldest)}});
}

absl::Status TooSlow(uint64_t resume_after) {
  return WithErrorInfo(absl::ResourceExhaustedError(absl::StrCat("the watcher did not read its events for too long; "
                                                                 "reconnect with start_after = ",
                                                                 resume_after)),
                       kWatcherTooSlowReason, {{std::string(kResumeAfterSequenceKey), absl::StrCat(resume_after)}});
}

absl::Status ShuttingDown() {
  return absl::UnavailableError("the server is shutting down: reconnect and resume with start_after");
}

void AddViolations(const absl::Status& status, FieldViolations* out) {
  const google::rpc::BadRequest violations = GetFieldViolations(status);
  for (const auto& v : violations.field_violations()) out->Add(v.field(), v.description());
}

absl::Duration DurationOf(const google::protobuf::Duration& d) {
  return absl::Seconds(d.seconds()) + absl::Nanoseconds(d.nanos());
}

}  // namespace

const std::vector<storage::Kind>& WatchableKinds() {
  static const auto* kinds =
      new std::vector<storage::Kind>{storage::WHAT_MATTERS, storage::GOAL,       storage::PREFERENCE,
                                     storage::PRIORITIES,   storage::GOAL_SCORE, storage::PATIENT};
  return *kinds;
}

absl::StatusOr<WatchSpec> ParseWatchRequest(const v1::WatchChangesRequest& request) {
  FieldViolations violations;
  WatchSpec spec;
  if (request.has_start_after()) spec.start_after = request.start_after();
  if (!request.parent().empty()) {
    auto patient = ParseParent(request.parent(), "parent");
    if (patient.ok()) {
      spec.patient_id = *std::move(patient);
    } else {
      AddViolations(patient.status(), &violations);
    }
  }
  for (int i = 0; i < request.kinds_size(); ++i) {
    const std::optional<storage::Kind> kind = FromApiKind(request.kinds(i));
    if (!kind.has_value()) {
      violations.Add(absl::StrCat("kinds[", i, "]"), "must be a resource kind (not RESOURCE_KIND_UNSPECIFIED)");
    } else if (std::find(spec.kinds.begin(), spec.kinds.end(), *kind) == spec.kinds.end()) {
      spec.kinds.push_back(*kind);
    }
  }
  spec.include_resource = request.include_resource();
  spec.include_summary = request.include_summary();
  if (spec.include_summary && request.parent().empty()) {
    violations.Add("include_summary", "needs parent: the patient whose summary comes first");
  }
  if (spec.include_summary && request.has_start_after()) {
    violations.Add("include_summary", "cannot be combined with start_after: the summary is of now");
  }
  if (request.has_heartbeat_interval()) {
    const absl::Duration interval = DurationOf(request.heartbeat_interval());
    const int32_t nanos = request.heartbeat_interval().nanos();
    if (nanos < 0 || nanos > 999'999'999 || interval < kMinHeartbeatInterval || interval > kMaxHeartbeatInterval) {
      violations.Add("heartbeat_interval", "must be from 1s to 5m");
    } else {
      spec.heartbeat_interval = interval;
    }
  }
  if (!violations.empty()) return violations.ToStatus();
  return spec;
}

// ---------------------------------------------------------------- ChangeWatch

ChangeWatch::ChangeWatch(ChangeFeed* feed, uint64_t id, WatchSpec spec, uint64_t cursor, absl::Time first_due,
                         absl::AnyInvocable<void()> wake)
    : feed_(feed),
      id_(id),
      spec_(std::move(spec)),
      cursor_(cursor),
      resume_after_(cursor),
      // A watch from "now" tells its client at once where it starts (a
      // heartbeat naming the head): a client cut off before any change can
      // then resume from there, not from a later head (a gap).
      last_message_(spec_.start_after.has_value() || spec_.include_summary ? absl::Now() : absl::InfinitePast()),
      scheduled_(first_due),
      wake_(std::move(wake)) {
  for (storage::Kind kind : spec_.kinds) {
    if (kind != storage::SUBSCRIPTION) kind_mask_ |= KindBit(kind);
  }
}

ChangeWatch::~ChangeWatch() = default;

uint64_t ChangeWatch::resume_after() const {
  absl::MutexLock lock(&mu_);
  return resume_after_;
}

WatchStep ChangeWatch::Next() {
  absl::MutexLock lock(&mu_);
  const absl::Time now = absl::Now();
  if (!ended_.has_value() && !sending_) {
    if (summary_.has_value()) {
      v1::WatchChangesResponse summary = *std::move(summary_);
      summary_.reset();
      return SendLocked(std::move(summary), now);
    }
    if (buffer_.empty() && cursor_ < feed_->head()) FillLocked();
  }
  WatchStep step;
  if (ended_.has_value()) {
    if (!end_handed_) {
      end_handed_ = true;
      step.action = WatchStep::kEnd;
      step.status = *ended_;
    } else if (sending_ && !abort_handed_ && now - ended_at_ >= feed_->options_.stall_timeout) {
      abort_handed_ = true;
      step.action = WatchStep::kAbort;
    }
    return step;
  }
  if (sending_) return step;
  if (!buffer_.empty()) {
    v1::WatchChangesResponse event = std::move(buffer_.front());
    buffer_.pop_front();
    resume_after_ = event.change().sequence();
    feed_->events_total_.fetch_add(1, std::memory_order_relaxed);
    return SendLocked(std::move(event), now);
  }
  if (cursor_ < feed_->head()) {
    // A step of a long scan found nothing to send: the feed thread brings
    // this watcher back after the others had their turn.
    waiting_ = true;
    feed_->WakeSoon(id_);
    return step;
  }
  if (now - last_message_ >= spec_.heartbeat_interval) {
    // Everything up to the cursor that this watcher may see has been sent.
    v1::WatchChangesResponse heartbeat;
    heartbeat.mutable_heartbeat()->set_head_sequence(cursor_);
    SetTime(now, heartbeat.mutable_heartbeat()->mutable_time());
    resume_after_ = cursor_;
    feed_->heartbeats_total_.fetch_add(1, std::memory_order_relaxed);
    return SendLocked(std::move(heartbeat), now);
  }
  waiting_ = true;
  return step;
}

WatchStep ChangeWatch::SendLocked(v1::WatchChangesResponse message, absl::Time now) {
  ScheduleLocked(now + feed_->options_.stall_timeout);
  sending_ = true;
  waiting_ = false;
  send_started_ = now;
  last_message_ = now;
  WatchStep step;
  step.action = WatchStep::kSend;
  step.message = std::move(message);
  return step;
}

void ChangeWatch::Sent(bool ok) {
  absl::MutexLock lock(&mu_);
  sending_ = false;
  if (!ok && !ended_.has_value()) EndLocked(absl::CancelledError("the stream broke"));
}

void ChangeWatch::Cancel() {
  absl::MutexLock lock(&mu_);
  if (!ended_.has_value()) EndLocked(absl::CancelledError("the client cancelled the watch"));
}

void ChangeWatch::Close() {
  {
    absl::MutexLock lock(&wake_mu_);
    if (wake_ == nullptr) return;
    wake_ = nullptr;
  }
  feed_->Forget(*this);
}

void ChangeWatch::ScheduleLocked(absl::Time due) {
  if (due >= scheduled_) return;
  scheduled_ = due;
  feed_->Schedule(id_, due);
}

void ChangeWatch::EndLocked(absl::Status status) {
  ended_ = std::move(status);
  ended_at_ = absl::Now();
  ScheduleLocked(ended_at_ + feed_->options_.stall_timeout);  // the abort, if the end is not taken
  buffer_.clear();
  summary_.reset();
}

void ChangeWatch::Wake(bool force) {
  {
    absl::MutexLock lock(&mu_);
    if (!force && !waiting_) return;
    waiting_ = false;
  }
  absl::MutexLock lock(&wake_mu_);
  if (wake_ != nullptr) wake_();
}

bool ChangeWatch::FillLocked() {
  if (FillFromRecentLocked()) return true;
  // The head is read before the snapshot, so the snapshot holds it: a log
  // that ends before it was trimmed under us.
  const uint64_t head = feed_->head();
  std::unique_ptr<storage::Reader> reader = feed_->store_->NewReader();
  if (absl::Status s = ReadEvents(*reader, head); !s.ok()) {
    if (s.code() == absl::StatusCode::kOutOfRange) feed_->trimmed_ended_total_.fetch_add(1);
    EndLocked(std::move(s));
    return false;
  }
  return true;
}

bool ChangeWatch::FillFromRecentLocked() {
  if (spec_.include_resource) return false;
  const uint64_t before = cursor_;
  size_t visited = 0;
  absl::Status unused;  // no reader, no error
  feed_->VisitRecent(cursor_,
                     [&](const storage::Change& change) { return TakeLocked(nullptr, change, &visited, &unused); });
  return cursor_ > before;
}

absl::Status ChangeWatch::ReadEvents(const storage::Reader& reader, uint64_t head) {
  size_t visited = 0;
  bool gap = false;
  absl::Status error;
  absl::Status scan = reader.ScanChanges(cursor_, [&](const storage::Change& change) {
    if (change.sequence() != cursor_ + 1) {
      gap = true;  // the entries in between were trimmed
      return false;
    }
    return TakeLocked(&reader, change, &visited, &error);
  });
  if (!error.ok()) return error;
  if (!scan.ok()) return scan;
  if (gap || (visited == 0 && head > cursor_)) return Trimmed(feed_->store_->OldestChangeSequence());
  return absl::OkStatus();
}

bool ChangeWatch::TakeLocked(const storage::Reader* reader, const storage::Change& change, size_t* visited,
                             absl::Status* error) {
  ++*visited;
  if (Matches(change)) {
    absl::StatusOr<v1::ChangeEvent> event = ToEvent(reader, change);
    if (!event.ok()) {
      *error = event.status();
      return false;
    }
    *buffer_.emplace_back().mutable_change() = *std::move(event);
  }
  cursor_ = change.sequence();
  return buffer_.size() < feed_->options_.buffer_events && *visited < feed_->options_.scan_batch;
}

bool ChangeWatch::Matches(const storage::Change& change) const {
  if ((kind_mask_ & KindBit(change.kind())) == 0) return false;
  return spec_.patient_id.empty() || change.patient_id() == spec_.patient_id;
}

absl::StatusOr<v1::ChangeEvent> ChangeWatch::ToEvent(const storage::Reader* reader,
                                                     const storage::Change& change) const {
  v1::ChangeEvent event;
  event.set_sequence(change.sequence());
  event.set_patient(FormatParent(change.patient_id()));
  event.set_kind(ToApiKind(change.kind()));
  event.set_name(FormatName(change.kind(), change.patient_id(), change.id()));
  event.set_version(change.version());
  event.set_operation(ToApiOperation(change.op()));
  SetTime(absl::FromUnixMicros(change.time_micros()), event.mutable_time());
  if (!spec_.include_resource || reader == nullptr) return event;
  auto version = reader->GetVersion(change.kind(), change.patient_id(), change.id(), change.version());
  if (!version.ok()) return version.status();
  if (!version->has_value()) {
    return absl::DataLossError(absl::StrCat("change ", change.sequence(), " names a version that is not stored"));
  }
  google::protobuf::Message* resource = ResourceField(change.kind(), &event);
  if (resource == nullptr || !resource->ParseFromString((*version)->resource())) {
    return absl::DataLossError(absl::StrCat("the version of change ", change.sequence(), " does not parse"));
  }
  return event;
}

absl::Time ChangeWatch::OnTimer(absl::Time now, absl::Time entry_due, TimerWake* wake) {
  absl::MutexLock lock(&mu_);
  if (entry_due != scheduled_) return absl::InfiniteFuture();  // superseded by an earlier entry
  scheduled_ = NextTimerLocked(now, wake);
  return scheduled_;
}

absl::Time ChangeWatch::NextTimerLocked(absl::Time now, TimerWake* wake) {
  const absl::Duration stall = feed_->options_.stall_timeout;
  if (ended_.has_value()) {
    // Hand out the end; then, if the last message never left, the abort.
    if (!end_handed_) {
      *wake = TimerWake::kAlways;
      return now + stall;
    }
    if (!sending_ || abort_handed_) return absl::InfiniteFuture();
    if (now < ended_at_ + stall) return ended_at_ + stall;
    *wake = TimerWake::kAlways;
    return absl::InfiniteFuture();
  }
  if (sending_) {
    if (now < send_started_ + stall) return send_started_ + stall;
    feed_->slow_ended_total_.fetch_add(1, std::memory_order_relaxed);
    EndLocked(TooSlow(resume_after_));
    *wake = TimerWake::kAlways;
    return now + stall;
  }
  if (now >= spec_.expires) {
    EndLocked(absl::UnauthenticatedError("the token expired: watch again with a fresh one, from the last sequence"));
    *wake = TimerWake::kAlways;
    return now + stall;
  }
  const absl::Time heartbeat_due = std::min(last_message_ + spec_.heartbeat_interval, spec_.expires);
  if (now < heartbeat_due) return heartbeat_due;
  // A consumer not waiting is about to call Next, which sends the heartbeat.
  *wake = TimerWake::kIfWaiting;
  return now + spec_.heartbeat_interval;
}

// ---------------------------------------------------------------- ChangeFeed

ChangeFeed::ChangeFeed(storage::Store* store, PatientRecords* records, ChangeFeedOptions options)
    : store_(store), records_(records), options_(options), signal_(std::make_shared<Signal>()) {
  const uint64_t last = store_->LastSequence();
  head_.store(last);
  {
    absl::MutexLock lock(&signal_->mu);
    signal_->head = last;
  }
  // Runs on the store's completion thread: note the head, wake the feed
  // thread, nothing more.
  store_->AddCommitListener([signal = signal_](uint64_t last_sequence) {
    absl::MutexLock lock(&signal->mu);
    signal->head = std::max(signal->head, last_sequence);
  });
  thread_ = std::thread([this] { Run(); });
}

ChangeFeed::~ChangeFeed() { Shutdown(); }

absl::StatusOr<std::shared_ptr<ChangeWatch>> ChangeFeed::Watch(WatchSpec spec, absl::AnyInvocable<void()> wake) {
  if (absl::Status s = CanAdd(); !s.ok()) return s;
  const uint64_t head = store_->LastSequence();
  if (spec.start_after.has_value() && *spec.start_after > head) {
    return InvalidField("start_after", absl::StrCat("is beyond the last committed change (", head, ")"));
  }
  RaiseHead(head);  // read fresh: this watcher need not wait for the feed thread
  const uint64_t start = spec.start_after.value_or(head);
  if (const uint64_t oldest = store_->OldestChangeSequence(); start + 1 < oldest) {
    trimmed_ended_total_.fetch_add(1);
    return Trimmed(oldest);
  }
  std::optional<v1::WatchChangesResponse> summary;
  if (spec.include_summary) {
    // Read after the head: the summary shows at least every change up to it.
    v1::GetPatientSummaryRequest request;
    request.set_parent(FormatParent(spec.patient_id));
    auto read = records_->GetPatientSummary(request, CallContext{});
    if (!read.ok()) return read.status();
    summary.emplace();
    *summary->mutable_summary()->mutable_summary() = *std::move(read);
    summary->mutable_summary()->set_after_sequence(start);
  }
  std::shared_ptr<ChangeWatch> watch;
  {
    absl::MutexLock lock(&mu_);
    if (absl::Status s = CanAddLocked(); !s.ok()) return s;
    const uint64_t id = next_id_++;
    const absl::Time first_due = std::min(absl::Now() + spec.heartbeat_interval, spec.expires);
    watch.reset(new ChangeWatch(this, id, std::move(spec), start, first_due, std::move(wake)));
    watch->summary_ = std::move(summary);
    watches_[id] = watch;
    by_patient_[watch->spec_.patient_id].push_back(id);
    timers_.push({first_due, id});
  }
  watches_total_.fetch_add(1, std::memory_order_relaxed);
  Poke();  // a new timer
  return watch;
}

absl::Status ChangeFeed::CanAdd() {
  absl::MutexLock lock(&mu_);
  return CanAddLocked();
}

absl::Status ChangeFeed::CanAddLocked() {
  if (shutting_down_) return ShuttingDown();
  if (options_.max_watchers > 0 && watches_.size() >= options_.max_watchers) {
    return absl::ResourceExhaustedError(
        absl::StrCat("the server has ", options_.max_watchers, " watchers; retry later"));
  }
  return absl::OkStatus();
}

void ChangeFeed::Forget(const ChangeWatch& watch) {
  absl::MutexLock lock(&mu_);
  if (watches_.erase(watch.id_) == 0) return;
  auto it = by_patient_.find(watch.spec_.patient_id);
  if (it == by_patient_.end()) return;
  std::vector<uint64_t>& ids = it->second;
  ids.erase(std::remove(ids.begin(), ids.end(), watch.id_), ids.end());
  if (ids.empty()) by_patient_.erase(it);
}

void ChangeFeed::WakeSoon(uint64_t id) {
  {
    absl::MutexLock lock(&mu_);
    wake_soon_.push_back(id);
  }
  Poke();
}

void ChangeFeed::RaiseHead(uint64_t sequence) {
  uint64_t current = head_.load(std::memory_order_acquire);
  while (current < sequence && !head_.compare_exchange_weak(current, sequence, std::memory_order_acq_rel)) {
  }
}

void ChangeFeed::Schedule(uint64_t id, absl::Time due) {
  {
    absl::MutexLock lock(&mu_);
    timers_.push({due, id});
  }
  Poke();
}

void ChangeFeed::Poke() {
  absl::MutexLock lock(&signal_->mu);
  ++signal_->pokes;
}

void ChangeFeed::Shutdown() {
  std::vector<std::shared_ptr<ChangeWatch>> all;
  {
    absl::MutexLock lock(&mu_);
    shutting_down_ = true;
    all = AllWatchers();
  }
  for (const auto& watch : all) {
    {
      absl::MutexLock lock(&watch->mu_);
      if (!watch->ended_.has_value()) watch->EndLocked(ShuttingDown());
    }
    watch->Wake(/*force=*/true);
  }
  {
    absl::MutexLock lock(&signal_->mu);
    signal_->stopped = true;
  }
  if (thread_.joinable()) thread_.join();
}

std::vector<std::shared_ptr<ChangeWatch>> ChangeFeed::AllWatchers() {
  std::vector<std::shared_ptr<ChangeWatch>> out;
  out.reserve(watches_.size());
  for (const auto& [id, watch] : watches_) out.push_back(watch);
  return out;
}

ChangeFeedStats ChangeFeed::stats() const {
  ChangeFeedStats out;
  {
    absl::MutexLock lock(&mu_);
    out.watchers = watches_.size();
  }
  out.watches_total = watches_total_.load(std::memory_order_relaxed);
  out.events_total = events_total_.load(std::memory_order_relaxed);
  out.heartbeats_total = heartbeats_total_.load(std::memory_order_relaxed);
  out.slow_ended_total = slow_ended_total_.load(std::memory_order_relaxed);
  out.trimmed_ended_total = trimmed_ended_total_.load(std::memory_order_relaxed);
  out.head_sequence = head();
  return out;
}

// ---------------------------------------------------------------- the feed thread

namespace {
struct WaitState {
  uint64_t* head;
  uint64_t* pokes;
  bool* stopped;
  uint64_t processed;
  uint64_t pokes_seen;
  bool Ready() const { return *stopped || *head != processed || *pokes != pokes_seen; }
};
}  // namespace

void ChangeFeed::Run() {
  uint64_t processed = head();
  uint64_t pokes_seen = 0;
  for (;;) {
    absl::Time due;
    {
      absl::MutexLock lock(&mu_);
      due = timers_.empty() ? absl::InfiniteFuture() : timers_.top().due;
    }
    if (options_.poll_interval > absl::ZeroDuration()) due = std::min(due, absl::Now() + options_.poll_interval);
    uint64_t head;
    {
      absl::MutexLock lock(&signal_->mu);
      WaitState wait{&signal_->head, &signal_->pokes, &signal_->stopped, processed, pokes_seen};
      signal_->mu.AwaitWithDeadline(absl::Condition(&wait, &WaitState::Ready), due);
      if (signal_->stopped) return;
      head = signal_->head;
      pokes_seen = signal_->pokes;
    }
    if (options_.poll_interval > absl::ZeroDuration()) head = std::max(head, store_->LastSequence());
    if (head > processed) {
      // Read (and remembered) before the head moves, so that a watcher that
      // sees the new head mostly finds its entries remembered.
      std::vector<std::shared_ptr<ChangeWatch>> concerned = Concerned(processed, head);
      RaiseHead(head);
      for (const auto& watch : concerned) watch->Wake(/*force=*/false);
      processed = head;
    }
    std::vector<uint64_t> soon;
    {
      absl::MutexLock lock(&mu_);
      soon.swap(wake_soon_);
    }
    for (uint64_t id : soon) {
      std::shared_ptr<ChangeWatch> watch;
      {
        absl::MutexLock lock(&mu_);
        if (auto it = watches_.find(id); it != watches_.end()) watch = it->second;
      }
      if (watch != nullptr) watch->Wake(/*force=*/false);
    }
    RunTimers(absl::Now());
  }
}

std::vector<std::shared_ptr<ChangeWatch>> ChangeFeed::Concerned(uint64_t after, uint64_t head) {
  // Which (patient, kinds) the new entries touch, read once for every
  // watcher. A long stretch, or a log that does not read as expected: wake
  // them all (each finds out for itself).
  constexpr uint64_t kMostEntriesRead = 4096;
  absl::flat_hash_map<std::string, uint32_t> touched;
  uint32_t any_patient = 0;
  bool everyone = head - after > kMostEntriesRead;
  std::vector<storage::Change> changes;
  if (!everyone) {
    uint64_t expected = after + 1;
    absl::Status scan = store_->NewReader()->ScanChanges(after, [&](const storage::Change& change) {
      if (change.sequence() > head) return false;
      if (change.sequence() != expected++) return false;
      touched[change.patient_id()] |= KindBit(change.kind());
      any_patient |= KindBit(change.kind());
      changes.push_back(change);
      return true;
    });
    everyone = !scan.ok() || expected != head + 1;
  }
  Remember(everyone ? std::vector<storage::Change>() : std::move(changes));
  std::vector<std::shared_ptr<ChangeWatch>> out;
  absl::MutexLock lock(&mu_);
  if (everyone) return AllWatchers();
  auto add = [&](absl::string_view patient, uint32_t kinds) {
    auto it = by_patient_.find(patient);
    if (it == by_patient_.end()) return;
    for (uint64_t id : it->second) {
      const std::shared_ptr<ChangeWatch>& watch = watches_.at(id);
      if ((watch->kind_mask_ & kinds) != 0) out.push_back(watch);
    }
  };
  add("", any_patient);
  for (const auto& [patient, kinds] : touched) {
    if (!patient.empty()) add(patient, kinds);
  }
  return out;
}

void ChangeFeed::Remember(std::vector<storage::Change> changes) {
  absl::MutexLock lock(&recent_mu_);
  // Contiguous only: after a stretch not read, start again.
  if (changes.empty() || (!recent_.empty() && recent_.back().sequence() + 1 != changes.front().sequence())) {
    recent_.clear();
  }
  for (storage::Change& change : changes) recent_.push_back(std::move(change));
  while (recent_.size() > kRecentEntries) recent_.pop_front();
}

bool ChangeFeed::VisitRecent(uint64_t after, absl::FunctionRef<bool(const storage::Change&)> visit) const {
  absl::MutexLock lock(&recent_mu_);
  if (recent_.empty() || after + 1 < recent_.front().sequence() || after >= recent_.back().sequence()) return false;
  for (size_t i = after + 1 - recent_.front().sequence(); i < recent_.size(); ++i) {
    if (!visit(recent_[i])) break;
  }
  return true;
}

void ChangeFeed::RunTimers(absl::Time now) {
  std::vector<std::pair<absl::Time, std::shared_ptr<ChangeWatch>>> due;
  {
    absl::MutexLock lock(&mu_);
    while (!timers_.empty() && timers_.top().due <= now) {
      const Timer timer = timers_.top();
      timers_.pop();
      if (auto it = watches_.find(timer.id); it != watches_.end()) due.emplace_back(timer.due, it->second);
    }
  }
  for (const auto& [entry_due, watch] : due) {
    ChangeWatch::TimerWake wake = ChangeWatch::TimerWake::kNo;
    const absl::Time next = watch->OnTimer(now, entry_due, &wake);
    if (wake != ChangeWatch::TimerWake::kNo) watch->Wake(/*force=*/wake == ChangeWatch::TimerWake::kAlways);
    if (next == absl::InfiniteFuture()) continue;
    absl::MutexLock lock(&mu_);
    if (watches_.contains(watch->id_)) timers_.push({next, watch->id_});
  }
}

}  // namespace wmty::domain
