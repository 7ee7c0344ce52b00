// Admission control and shed accounting (see admission.h).
#include "common/admission.h"

#include <string>
#include <utility>

#include "absl/time/clock.h"
#include "absl/time/time.h"
#include "common/log.h"

namespace wmty::common {
namespace {

constexpr int64_t kShedLogEveryMicros = 10'000'000;

}  // namespace

std::optional<Admission::Slot> Admission::TryAdmit(absl::string_view key, absl::string_view value) {
  // Taken first and given back on refusal: a check-then-add would let a
  // burst of concurrent callers all pass the check.
  const int before = in_use_.fetch_add(1);
  Slot slot(this);
  if (limit_ > 0 && before >= limit_) {
    slot.Release();
    NoteShed(key, value);
    return std::nullopt;
  }
  return slot;
}

void Admission::NoteShed(absl::string_view key, absl::string_view value) {
  const int64_t count = shed_.fetch_add(1) + 1;
  const int64_t now = absl::ToUnixMicros(absl::Now());
  int64_t last = last_shed_log_micros_.load();
  if (now - last < kShedLogEveryMicros || !last_shed_log_micros_.compare_exchange_strong(last, now)) return;
  log::Warning(shed_message_, {{key, std::string(value)}, {"refused_total", std::to_string(count)}});
}

}  // namespace wmty::common
