// SubscriptionEvents: the durable per-subscription event log of FHIR
// Subscriptions, with the matcher's cursor and each subscription's counters,
// kept in the Store's state (Store::WriteState) under "push/" keys. It owns
// that key layout (see proto/wmty/storage/delivery.proto):
//   push/matcher                            the matcher's cursor
//   push/s/<id>                             SubscriptionMatchState (matcher)
//   push/d/<id>                             SubscriptionDeliveryState (delivery)
//   push/e/<id>/<number, 16 hex digits>     SubscriptionEvent
//
// Writers. The matcher (services/push/matcher.h) is the only writer of the
// cursor, the match states and new events, and writes them together in one
// CommitMatches call: an event's number and the cursor that produced it are
// durable together, so a crash re-matches from the cursor and hands out the
// same numbers. Delivery (services/push/delivery.h) is the only writer of a
// subscription's delivery state, one subscription at a time, and prunes its
// acknowledged events (all but the newest `kept_events`). $status and
// $events (the FHIR face) only read.
//
// Errors: what the store returns (UNAVAILABLE on I/O; DATA_LOSS when a
// stored value does not parse).
//
// Thread safety: all methods are safe to call from any thread; the store
// must outlive this object.
#ifndef WMTY_DOMAIN_SUBSCRIPTION_EVENTS_H_
#define WMTY_DOMAIN_SUBSCRIPTION_EVENTS_H_

#include <cstdint>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "absl/functional/function_ref.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "storage/store.h"
#include "wmty/storage/delivery.pb.h"

namespace wmty::domain {

struct SubscriptionEventsOptions {
  // Acknowledged events kept per subscription for $events (the newest); the
  // ones not yet acknowledged are always kept.
  uint64_t kept_events = 1000;
};

// What $status shows of one subscription.
struct SubscriptionCounters {
  storage::SubscriptionMatchState match;
  storage::SubscriptionDeliveryState delivery;
};

class SubscriptionEvents {
 public:
  explicit SubscriptionEvents(storage::Store* store, SubscriptionEventsOptions options = {})
      : store_(store), options_(options) {}

  // ---- Matcher.
  // The last sequence the matcher applied; nullopt before it first ran.
  absl::StatusOr<std::optional<uint64_t>> MatcherCursor() const;
  // One step of the matcher, written atomically: the match states that
  // changed, the new events, and the cursor.
  struct MatchStep {
    uint64_t through_sequence = 0;
    std::vector<std::pair<std::string, storage::SubscriptionMatchState>> states;
    std::vector<std::pair<std::string, storage::SubscriptionEvent>> events;
  };
  absl::Status CommitMatches(const MatchStep& step);
  // Every match state, in id order, until `visit` returns false.
  absl::Status ScanMatchStates(
      absl::FunctionRef<bool(absl::string_view id, const storage::SubscriptionMatchState&)> visit) const;

  // ---- Delivery.
  // The events of `id` numbered `from` .. `until` (inclusive), at most
  // `limit`, in order; events already pruned are missing.
  absl::StatusOr<std::vector<storage::SubscriptionEvent>> ReadEvents(absl::string_view id, uint64_t from,
                                                                     uint64_t until, size_t limit) const;
  // Writes `id`'s delivery state; when it acknowledges more events than
  // `before` did, prunes those that fall out of the kept window.
  absl::Status WriteDelivery(absl::string_view id, const storage::SubscriptionDeliveryState& before,
                             const storage::SubscriptionDeliveryState& after);

  // ---- Readers ($status, $events, start-up).
  // Both states of `id` (defaults when none is stored).
  absl::StatusOr<SubscriptionCounters> Counters(absl::string_view id) const;

  // Keys, for tests and tools.
  static std::string MatchStateKey(absl::string_view id);
  static std::string DeliveryStateKey(absl::string_view id);
  static std::string EventKey(absl::string_view id, uint64_t number);
  static constexpr absl::string_view kMatcherKey = "push/matcher";

 private:
  storage::Store* const store_;
  const SubscriptionEventsOptions options_;
};

}  // namespace wmty::domain

#endif  // WMTY_DOMAIN_SUBSCRIPTION_EVENTS_H_
