// ChangeLogRetention (change_log_retention.h): the policy (count and age
// limits, floors), the binary search for the age limit, and the thread.
#include "domain/change_log_retention.h"

#include <algorithm>
#include <string>

#include "common/log.h"
#include "common/thread_name.h"

namespace wmty::domain {
namespace {

// The first change-log entry at or after `sequence` (nullopt: none).
absl::StatusOr<std::optional<storage::Change>> FirstChangeFrom(const storage::Reader& reader, uint64_t sequence) {
  std::optional<storage::Change> found;
  auto s = reader.ScanChanges(sequence - 1, [&](const storage::Change& change) {
    found = change;
    return false;
  });
  if (!s.ok()) return s;
  return found;
}

}  // namespace

ChangeLogRetention::ChangeLogRetention(storage::Store* store, ChangeLogRetentionOptions options)
    : store_(store), options_(std::move(options)) {}

ChangeLogRetention::~ChangeLogRetention() { Stop(); }

void ChangeLogRetention::AddFloor(std::function<uint64_t()> floor) {
  absl::MutexLock lock(&mu_);
  floors_.push_back(std::move(floor));
}

void ChangeLogRetention::Start() {
  if (options_.max_changes == 0 && options_.max_age <= absl::ZeroDuration()) return;
  thread_ = std::thread([this] { Loop(); });
}

void ChangeLogRetention::Stop() {
  {
    absl::MutexLock lock(&mu_);
    stopping_ = true;
  }
  if (thread_.joinable()) thread_.join();
}

void ChangeLogRetention::Loop() {
  NameThisThread("wmty-retention");
  while (true) {
    if (auto trimmed = TrimOnce(); !trimmed.ok()) {
      log::Warning("change-log retention failed; trying again later",
                   {{"error", std::string(trimmed.status().message())}});
    }
    absl::MutexLock lock(&mu_);
    const absl::Time next = absl::Now() + options_.interval;
    mu_.AwaitWithDeadline(absl::Condition(&stopping_), next);
    if (stopping_) return;
  }
}

absl::StatusOr<uint64_t> ChangeLogRetention::TrimOnce() {
  absl::MutexLock one_at_a_time(&trim_mu_);
  auto trimmed = TrimByPolicy();
  NoteOldestEntry();
  return trimmed;
}

absl::StatusOr<uint64_t> ChangeLogRetention::TrimByPolicy() {
  const uint64_t oldest = store_->OldestChangeSequence();
  const uint64_t last = store_->LastSequence();
  absl::StatusOr<uint64_t> target = oldest <= last ? PolicyTarget(oldest, last) : 0;
  if (!target.ok()) {
    absl::MutexLock lock(&mu_);
    ++stats_.failures;
    return target.status();
  }
  // The floor is read after the policy: a consumer that moved meanwhile only
  // lets less be trimmed, never more than it has read.
  const uint64_t floor = LowestFloor();
  const uint64_t through = std::min(*target, floor == 0 ? 0 : floor - 1);
  {
    absl::MutexLock lock(&mu_);
    stats_.held_by_floor = *target > through ? *target - std::max(through, oldest - 1) : 0;
  }
  if (through < oldest) return 0;
  const absl::Status s = store_->TrimChangeLog(through);
  absl::MutexLock lock(&mu_);
  if (!s.ok()) {
    ++stats_.failures;
    return s;
  }
  ++stats_.trims;
  stats_.last_trim = absl::Now();
  return through;
}

absl::StatusOr<uint64_t> ChangeLogRetention::PolicyTarget(uint64_t oldest, uint64_t last) const {
  uint64_t target = 0;
  const uint64_t held = last - oldest + 1;
  if (options_.max_changes > 0 && held > options_.max_changes) target = last - options_.max_changes;
  if (options_.max_age > absl::ZeroDuration()) {
    auto too_old = LastTooOld(std::max(oldest, target + 1), last);
    if (!too_old.ok()) return too_old.status();
    target = std::max(target, *too_old);
  }
  return target;
}

// Binary search for the last entry in [oldest, last] whose time is before
// the cutoff: O(log n) seeks on one snapshot.
absl::StatusOr<uint64_t> ChangeLogRetention::LastTooOld(uint64_t oldest, uint64_t last) const {
  if (oldest > last) return 0;
  const int64_t cutoff = absl::ToUnixMicros(options_.clock() - options_.max_age);
  const auto reader = store_->NewReader();
  auto first = FirstChangeFrom(*reader, oldest);
  if (!first.ok()) return first.status();
  if (!first->has_value() || (*first)->time_micros() >= cutoff) return 0;
  uint64_t lo = (*first)->sequence();  // too old
  uint64_t hi = last;                  // the answer is in [lo, hi]
  while (lo < hi) {
    const uint64_t mid = lo + (hi - lo + 1) / 2;
    auto entry = FirstChangeFrom(*reader, mid);
    if (!entry.ok()) return entry.status();
    if (entry->has_value() && (*entry)->sequence() <= hi && (*entry)->time_micros() < cutoff) {
      lo = (*entry)->sequence();
    } else {
      hi = mid - 1;
    }
  }
  return lo;
}

void ChangeLogRetention::NoteOldestEntry() {
  auto first = FirstChangeFrom(*store_->NewReader(), store_->OldestChangeSequence());
  std::optional<absl::Time> time;
  if (first.ok() && first->has_value()) time = absl::FromUnixMicros((*first)->time_micros());
  absl::MutexLock lock(&mu_);
  stats_.oldest_entry_time = time;
}

uint64_t ChangeLogRetention::LowestFloor() const {
  absl::MutexLock lock(&mu_);
  uint64_t lowest = UINT64_MAX;
  for (const auto& floor : floors_) lowest = std::min(lowest, floor());
  return lowest;
}

ChangeLogRetentionStats ChangeLogRetention::stats() const {
  absl::MutexLock lock(&mu_);
  return stats_;
}

}  // namespace wmty::domain
