// SubscriptionEvents (subscription_events.h): the "push/" state keys and
// their reads and atomic writes.
#include "domain/subscription_events.h"

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"

namespace wmty::domain {
namespace {

constexpr absl::string_view kMatchPrefix = "push/s/";
constexpr absl::string_view kDeliveryPrefix = "push/d/";
constexpr absl::string_view kEventPrefix = "push/e/";

template <class M>
absl::StatusOr<std::optional<M>> ReadMessage(const storage::Reader& reader, absl::string_view key) {
  auto value = reader.GetState(key);
  if (!value.ok()) return value.status();
  if (!value->has_value()) return std::optional<M>();
  M m;
  if (!m.ParseFromString(**value)) return absl::DataLossError(absl::StrCat("state ", key, " does not parse"));
  return std::optional<M>(std::move(m));
}

}  // namespace

std::string SubscriptionEvents::MatchStateKey(absl::string_view id) { return absl::StrCat(kMatchPrefix, id); }
std::string SubscriptionEvents::DeliveryStateKey(absl::string_view id) { return absl::StrCat(kDeliveryPrefix, id); }
std::string SubscriptionEvents::EventKey(absl::string_view id, uint64_t number) {
  // Fixed-width hex: byte order is number order.
  return absl::StrFormat("%s%s/%016x", kEventPrefix, id, number);
}

absl::StatusOr<std::optional<uint64_t>> SubscriptionEvents::MatcherCursor() const {
  auto cursor = ReadMessage<storage::MatcherCursor>(*store_->NewReader(), kMatcherKey);
  if (!cursor.ok()) return cursor.status();
  if (!cursor->has_value()) return std::optional<uint64_t>();
  return std::optional<uint64_t>((*cursor)->sequence());
}

absl::Status SubscriptionEvents::CommitMatches(const MatchStep& step) {
  std::vector<storage::Store::StateWrite> writes;
  writes.reserve(step.states.size() + step.events.size() + 1);
  for (const auto& [id, state] : step.states) writes.push_back({MatchStateKey(id), state.SerializeAsString()});
  for (const auto& [id, event] : step.events) {
    writes.push_back({EventKey(id, event.number()), event.SerializeAsString()});
  }
  storage::MatcherCursor cursor;
  cursor.set_sequence(step.through_sequence);
  writes.push_back({std::string(kMatcherKey), cursor.SerializeAsString()});
  return store_->WriteState(std::move(writes));
}

absl::Status SubscriptionEvents::ScanMatchStates(
    absl::FunctionRef<bool(absl::string_view id, const storage::SubscriptionMatchState&)> visit) const {
  absl::Status parse_error;
  auto scanned = store_->NewReader()->ScanState(kMatchPrefix, "", [&](absl::string_view key, absl::string_view value) {
    storage::SubscriptionMatchState state;
    if (!state.ParseFromString(std::string(value))) {
      parse_error = absl::DataLossError(absl::StrCat("state ", key, " does not parse"));
      return false;
    }
    return visit(key.substr(kMatchPrefix.size()), state);
  });
  return scanned.ok() ? parse_error : scanned;
}

absl::StatusOr<std::vector<storage::SubscriptionEvent>> SubscriptionEvents::ReadEvents(absl::string_view id,
                                                                                       uint64_t from, uint64_t until,
                                                                                       size_t limit) const {
  std::vector<storage::SubscriptionEvent> out;
  if (from == 0) from = 1;
  if (until < from || limit == 0) return out;
  const std::string prefix = absl::StrCat(kEventPrefix, id, "/");
  // ScanState starts after a key: the key of the event before `from`.
  const std::string after = from > 1 ? EventKey(id, from - 1) : "";
  absl::Status parse_error;
  auto scanned = store_->NewReader()->ScanState(prefix, after, [&](absl::string_view key, absl::string_view value) {
    storage::SubscriptionEvent event;
    if (!event.ParseFromString(std::string(value))) {
      parse_error = absl::DataLossError(absl::StrCat("state ", key, " does not parse"));
      return false;
    }
    if (event.number() > until) return false;
    out.push_back(std::move(event));
    return out.size() < limit;
  });
  if (!scanned.ok()) return scanned;
  if (!parse_error.ok()) return parse_error;
  return out;
}

absl::Status SubscriptionEvents::WriteDelivery(absl::string_view id, const storage::SubscriptionDeliveryState& before,
                                               const storage::SubscriptionDeliveryState& after) {
  std::vector<storage::Store::StateWrite> writes;
  writes.push_back({DeliveryStateKey(id), after.SerializeAsString()});
  // Events at or below delivered_through - kept_events are pruned; those the
  // last write kept are the ones to delete now.
  const uint64_t kept = options_.kept_events;
  const uint64_t old_edge = before.delivered_through() > kept ? before.delivered_through() - kept : 0;
  const uint64_t new_edge = after.delivered_through() > kept ? after.delivered_through() - kept : 0;
  for (uint64_t n = old_edge + 1; n <= new_edge; ++n) writes.push_back({EventKey(id, n), std::nullopt});
  return store_->WriteState(std::move(writes));
}

absl::StatusOr<SubscriptionCounters> SubscriptionEvents::Counters(absl::string_view id) const {
  auto reader = store_->NewReader();
  SubscriptionCounters counters;
  auto match = ReadMessage<storage::SubscriptionMatchState>(*reader, MatchStateKey(id));
  if (!match.ok()) return match.status();
  if (match->has_value()) counters.match = **match;
  auto delivery = ReadMessage<storage::SubscriptionDeliveryState>(*reader, DeliveryStateKey(id));
  if (!delivery.ok()) return delivery.status();
  if (delivery->has_value()) counters.delivery = **delivery;
  return counters;
}

}  // namespace wmty::domain
