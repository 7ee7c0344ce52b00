// Admission: a limit on requests in progress, and the refusals past it (load
// shedding), shared by the gRPC face (--max_inflight_rpcs) and the HTTP
// server (--http_max_inflight, --http_max_connections).
//
//   Admission admission(256, "http overloaded: refusing with 503");
//   std::optional<Admission::Slot> slot = admission.TryAdmit("limit", "max_inflight");
//   if (!slot) return Refuse();  // counted and (at most every 10 s) logged
//   ... hand `*slot` to whatever answers the request; the place is given back
//       when it answers (Release) or when the slot is destroyed.
//
// A refusal is counted (shed_total) and logged as a warning with the count,
// at most once per 10 s, so that an overload does not also flood the log.
// Only the field the caller passes is logged (a limit or method name, no PHI).
//
// Thread safety: all methods are safe to call concurrently. A Slot is owned
// by one request; it may be released and destroyed on any thread. The
// Admission must outlive its slots.
#ifndef WMTY_COMMON_ADMISSION_H_
#define WMTY_COMMON_ADMISSION_H_

#include <atomic>
#include <cstdint>
#include <optional>
#include <string>
#include <utility>

#include "absl/strings/string_view.h"

namespace wmty::common {

class Admission {
 public:
  // One request's place under the limit, given back once.
  class Slot {
   public:
    Slot(Slot&& other) noexcept : owner_(std::exchange(other.owner_, nullptr)) {}
    Slot& operator=(Slot&&) = delete;
    ~Slot() { Release(); }
    // Gives the place back now (idempotent).
    void Release() {
      if (owner_ != nullptr) std::exchange(owner_, nullptr)->in_use_.fetch_sub(1);
    }

   private:
    friend class Admission;
    explicit Slot(Admission* owner) : owner_(owner) {}
    Admission* owner_;
  };

  // `limit` places (<= 0: no limit). `shed_message`: the fixed text of the
  // warning logged for refusals.
  Admission(int limit, std::string shed_message) : limit_(limit), shed_message_(std::move(shed_message)) {}
  Admission(const Admission&) = delete;
  Admission& operator=(const Admission&) = delete;

  // A place, or nullopt when all `limit` are taken: then the refusal is
  // counted and logged (rate-limited) with the field `key`: `value`, e.g.
  // "limit": "max_inflight" (names chosen by the code, never request text).
  std::optional<Slot> TryAdmit(absl::string_view key, absl::string_view value);

  // Counts (and logs, rate-limited) a refusal decided elsewhere, e.g. a
  // connection over its own limit.
  void NoteShed(absl::string_view key, absl::string_view value);

  int in_use() const { return in_use_.load(); }
  int64_t shed_total() const { return shed_.load(); }

 private:
  const int limit_;
  const std::string shed_message_;
  std::atomic<int> in_use_{0};
  std::atomic<int64_t> shed_{0};
  std::atomic<int64_t> last_shed_log_micros_{0};
};

}  // namespace wmty::common

#endif  // WMTY_COMMON_ADMISSION_H_
