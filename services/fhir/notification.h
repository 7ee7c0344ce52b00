// FHIR Subscription notifications (Subscriptions R5 Backport IG 1.1.0 on
// R4): the SubscriptionStatus Parameters (profile backport-subscription-
// status-r4) and the Bundles that carry them:
//   - notifications (handshake, heartbeat, event-notification) and $events
//     (query-event): a `history` Bundle whose first entry is the status, then
//     one entry per event focus, by payload: none (empty), fullUrl + request
//     + response (id-only), and the rendered resource too (full-resource; a
//     retraction is a DELETE entry without a resource, as in _history);
//   - $status (query-status): a `searchset` Bundle of status Parameters.
// Used by delivery (services/push) and the FHIR face's $status / $events.
//
// Events carry what the matcher stored (the change); full-resource needs the
// version that change wrote, which the caller reads (the same version, so
// never more than what matched). Nothing here reads the store or logs.
//
// Errors: DATA_LOSS when a stored version does not render.
// Thread safety: pure functions.
#ifndef WMTY_FHIR_NOTIFICATION_H_
#define WMTY_FHIR_NOTIFICATION_H_

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include <rapidjson/document.h>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "wmty/storage/record.pb.h"
#include "wmty/storage/subscription.pb.h"

namespace wmty::fhir {

inline constexpr absl::string_view kSubscriptionStatusProfile =
    "http://hl7.org/fhir/uv/subscriptions-backport/StructureDefinition/backport-subscription-status-r4";

enum class NotificationType { kHandshake, kHeartbeat, kEventNotification, kQueryStatus, kQueryEvent };
// The backport code: handshake, heartbeat, event-notification, ...
absl::string_view NotificationTypeCode(NotificationType type);

// One event of a notification.
struct NotificationEvent {
  uint64_t number = 0;
  storage::Change change;
  // The version the change wrote, for full-resource payloads (unset: the
  // entry is id-only).
  std::optional<storage::Record> version;
};

// The subscription a notification is about.
struct NotificationSubject {
  // Absolute FHIR base URL, e.g. "https://wmty.example/fhir".
  std::string base_url;
  std::string subscription_id;
  storage::Subscription subscription;
  // The status to report (the subscription's own, unless the caller knows
  // better, e.g. "active" once a handshake is acknowledged).
  storage::Subscription::Status status = storage::Subscription::STATUS_UNSPECIFIED;
  uint64_t events_since_start = 0;
  // Shown as the status's error (codes and reasons only).
  std::string error;
};

// The SubscriptionStatus Parameters into `out` (an object).
void SubscriptionStatusParameters(const NotificationSubject& subject, NotificationType type,
                                  const std::vector<NotificationEvent>& events, rapidjson::Value* out,
                                  rapidjson::Document::AllocatorType& alloc);

// A `history` Bundle (handshake, heartbeat, event-notification, query-event)
// as JSON text, with `payload`'s content for each event.
absl::StatusOr<std::string> NotificationBundle(const NotificationSubject& subject, NotificationType type,
                                               const std::vector<NotificationEvent>& events,
                                               storage::Subscription::Payload payload);

// The `searchset` Bundle of $status, one query-status Parameters per subject.
std::string StatusBundle(const std::vector<NotificationSubject>& subjects);

// The FHIR reference of an event's focus: "<base>/<type>/<fhir id>".
std::string FocusUrl(absl::string_view base_url, const storage::Change& change);

}  // namespace wmty::fhir

#endif  // WMTY_FHIR_NOTIFICATION_H_
