// Matcher (matcher.h): the change log -> per-subscription numbered events.
#include "push/matcher.h"

#include <algorithm>

#include "absl/strings/str_cat.h"
#include "common/log.h"
#include "common/thread_name.h"

namespace wmty::push {

// What one step produced, before it is durable: the working copies of the
// subscriptions it touched, the events, and the last sequence applied.
struct Matcher::Step {
  absl::flat_hash_map<std::string, Live> changed;
  std::vector<std::pair<std::string, storage::SubscriptionEvent>> events;
  uint64_t through = 0;

  // The working copy of `id` (copied in from `base` on first use).
  Live& Touch(const std::string& id, const absl::flat_hash_map<std::string, Live>& base) {
    auto it = changed.find(id);
    if (it != changed.end()) return it->second;
    auto b = base.find(id);
    return changed.emplace(id, b == base.end() ? Live{} : b->second).first->second;
  }
};

Matcher::Matcher(storage::Store* store, domain::SubscriptionEvents* events, MatcherOptions options,
                 std::function<void(const std::vector<std::string>&)> touched)
    : store_(store), events_(events), options_(std::move(options)), touched_(std::move(touched)) {}

Matcher::~Matcher() { Stop(); }

absl::Status Matcher::Start() {
  auto cursor = events_->MatcherCursor();
  if (!cursor.ok()) return cursor.status();
  // First run: from the oldest change held (a subscription created before
  // the matcher ever ran still starts at its create).
  cursor_.store(cursor->has_value() ? **cursor : store_->OldestChangeSequence() - 1);
  auto reader = store_->NewReader();
  if (auto s = LoadSubscriptions(*reader); !s.ok()) return s;
  thread_ = std::thread([this] { Loop(); });
  return absl::OkStatus();
}

absl::StatusOr<std::optional<storage::Record>> Matcher::VersionAt(const storage::Reader& reader, absl::string_view id,
                                                                  uint64_t sequence) {
  auto current = reader.GetCurrent(storage::SUBSCRIPTION, "", id);
  if (!current.ok() || !current->has_value() || (*current)->sequence() <= sequence) return current;
  std::optional<storage::Record> at;
  auto s = reader.ScanVersions(storage::SUBSCRIPTION, "", id, 0, [&](const storage::Record& r) {
    if (r.sequence() > sequence) return false;
    at = r;
    return true;
  });
  if (!s.ok()) return s;
  return at;
}

absl::Status Matcher::LoadSubscriptions(const storage::Reader& reader) {
  subscriptions_.clear();
  std::vector<std::pair<std::string, storage::SubscriptionMatchState>> states;
  auto s = events_->ScanMatchStates([&](absl::string_view id, const storage::SubscriptionMatchState& state) {
    if (!state.ended()) states.emplace_back(std::string(id), state);
    return true;
  });
  if (!s.ok()) return s;
  for (auto& [id, state] : states) {
    auto version = VersionAt(reader, id, cursor());
    if (!version.ok()) return version.status();
    Live live;
    live.state = std::move(state);
    if (version->has_value() && !(*version)->retracted() && !live.definition.ParseFromString((*version)->resource())) {
      return absl::DataLossError("stored subscription does not parse");
    }
    subscriptions_.emplace(id, std::move(live));
  }
  live_.store(subscriptions_.size());
  return absl::OkStatus();
}

void Matcher::Stop() {
  {
    absl::MutexLock lock(&mu_);
    stopping_ = true;
  }
  if (thread_.joinable()) thread_.join();
}

void Matcher::Wake() {
  absl::MutexLock lock(&mu_);
  woken_ = true;
}

void Matcher::Loop() {
  NameThisThread("wmty-matcher");
  while (true) {
    absl::StatusOr<bool> matched = RunStep();
    if (!matched.ok()) {
      log::Error("subscription matcher step failed", {{"code", absl::StatusCodeToString(matched.status().code())}});
      // Back to what is durable, then try again after a pause.
      auto reader = store_->NewReader();
      (void)LoadSubscriptions(*reader);
    }
    absl::MutexLock lock(&mu_);
    if (stopping_) return;
    if (matched.ok() && *matched) continue;  // more may be waiting
    if (matched.ok()) {
      // The timeout backstops a missed wake-up.
      mu_.AwaitWithTimeout(absl::Condition(&WokenOrStopping, this), absl::Seconds(1));
      woken_ = false;
    } else {
      mu_.AwaitWithTimeout(absl::Condition(&stopping_), options_.retry_pause);
    }
    if (stopping_) return;
  }
}

bool Matcher::WokenOrStopping(Matcher* m) ABSL_NO_THREAD_SAFETY_ANALYSIS { return m->woken_ || m->stopping_; }

absl::StatusOr<bool> Matcher::RunStep() {
  auto reader = store_->NewReader();
  const uint64_t from = cursor();
  Step step;
  size_t applied = 0;
  absl::Status apply_error;
  auto scanned = reader->ScanChanges(from, [&](const storage::Change& change) {
    if (applied == 0 && change.sequence() > from + 1) {
      log::Error("change log trimmed past the subscription matcher's cursor: notifications were lost",
                 {{"cursor", absl::StrCat(from)}, {"oldest", absl::StrCat(change.sequence())}});
    }
    apply_error = Apply(*reader, change, step);
    if (!apply_error.ok()) return false;
    step.through = change.sequence();
    return ++applied < options_.max_changes_per_step;
  });
  if (!scanned.ok()) return scanned;
  if (!apply_error.ok()) return apply_error;
  if (applied == 0) return false;
  domain::SubscriptionEvents::MatchStep write;
  write.through_sequence = step.through;
  write.events = std::move(step.events);
  std::vector<std::string> touched;
  for (const auto& [id, live] : step.changed) {
    write.states.emplace_back(id, live.state);
    touched.push_back(id);
  }
  if (auto s = events_->CommitMatches(write); !s.ok()) return s;
  for (auto& [id, live] : step.changed) {
    if (live.state.ended()) {
      subscriptions_.erase(id);
    } else {
      subscriptions_[id] = std::move(live);
    }
  }
  live_.store(subscriptions_.size());
  cursor_.store(step.through, std::memory_order_release);
  if (!touched.empty() && touched_) touched_(touched);
  return true;
}

absl::Status Matcher::Apply(const storage::Reader& reader, const storage::Change& change, Step& step) {
  if (change.kind() == storage::SUBSCRIPTION) return ApplySubscriptionChange(reader, change, step);
  if (subscriptions_.empty() && step.changed.empty()) return absl::OkStatus();
  std::optional<storage::Record> version;
  // Every subscription live at this change: those of the step's working
  // copies (started or changed in this step) and the rest.
  auto consider = [&](const std::string& id, const Live& live) -> absl::Status {
    if (live.state.ended() || live.definition.status() == storage::Subscription::OFF) return absl::OkStatus();
    // Subscription.end: no events from changes after it.
    if (live.definition.end_micros() != 0 && change.time_micros() >= live.definition.end_micros()) {
      return absl::OkStatus();
    }
    if (!version.has_value()) {
      auto read = reader.GetVersion(change.kind(), change.patient_id(), change.id(), change.version());
      if (!read.ok()) return read.status();
      if (!read->has_value()) return absl::DataLossError("change log names a version that is not stored");
      version = std::move(**read);
    }
    if (!options_.is_event(live.definition, change, *version)) return absl::OkStatus();
    Live& working = step.Touch(id, subscriptions_);
    const uint64_t number = working.state.events_since_start() + 1;
    working.state.set_events_since_start(number);
    storage::SubscriptionEvent event;
    event.set_number(number);
    *event.mutable_change() = change;
    step.events.emplace_back(id, std::move(event));
    return absl::OkStatus();
  };
  // The working copies first (their ids taken before `consider` adds more),
  // then the rest: each subscription once.
  std::vector<std::string> changed_ids;
  for (const auto& [id, live] : step.changed) changed_ids.push_back(id);
  for (const std::string& id : changed_ids) {
    if (auto s = consider(id, step.changed.at(id)); !s.ok()) return s;
  }
  for (const auto& [id, live] : subscriptions_) {
    if (std::find(changed_ids.begin(), changed_ids.end(), id) != changed_ids.end()) continue;
    if (auto s = consider(id, live); !s.ok()) return s;
  }
  return absl::OkStatus();
}

absl::Status Matcher::ApplySubscriptionChange(const storage::Reader& reader, const storage::Change& change,
                                              Step& step) {
  const bool known = subscriptions_.contains(change.id()) || step.changed.contains(change.id());
  if (change.op() == storage::Change::RETRACT) {
    if (known) step.Touch(change.id(), subscriptions_).state.set_ended(true);
    return absl::OkStatus();
  }
  auto version = reader.GetVersion(storage::SUBSCRIPTION, "", change.id(), change.version());
  if (!version.ok()) return version.status();
  if (!version->has_value()) return absl::DataLossError("change log names a version that is not stored");
  storage::Subscription definition;
  if (!definition.ParseFromString((*version)->resource())) {
    return absl::DataLossError("stored subscription does not parse");
  }
  // An update of a subscription this matcher never saw start (created
  // before the oldest change held on a first run) starts it here.
  if (!known && change.op() != storage::Change::CREATE && definition.status() == storage::Subscription::OFF) {
    return absl::OkStatus();
  }
  Live& working = step.Touch(change.id(), subscriptions_);
  if (!known) {
    // Turned off before this start (ended), or never seen: numbering goes on
    // from what is stored, so an event number is never handed out twice.
    auto stored = events_->Counters(change.id());
    if (!stored.ok()) return stored.status();
    working.state = stored->match;
    if (working.state.start_sequence() == 0) working.state.set_start_sequence(change.sequence());
  }
  working.definition = std::move(definition);
  working.state.set_ended(working.definition.status() == storage::Subscription::OFF);
  return absl::OkStatus();
}

}  // namespace wmty::push
