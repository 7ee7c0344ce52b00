// FHIR R4 Subscription (Subscriptions R5 Backport IG 1.1.0, profile
// backport-subscription) <-> storage::Subscription, the stored form the
// domain (domain/subscriptions.h) keeps.
//
//   Subscription.status                        status (requested|active|error|off)
//   Subscription.reason / .end                 reason / end_micros
//   Subscription.criteria                      topic (our canonical, domain/topics.h)
//   Subscription.criteria.extension            filters: backport-filter-criteria valueString
//     ("Type?name=value[&name=value]"; each name=value is one filter)
//   Subscription.error                         error (output only: ignored on input)
//   Subscription.channel.type                  rest-hook only
//   Subscription.channel.endpoint / .header    endpoint / headers
//   Subscription.channel.payload               application/fhir+json (or application/json);
//     absent: content empty
//   Subscription.channel.payload.extension     backport-payload-content: empty | id-only |
//     full-resource; absent (with a payload): id-only
//   Subscription.channel.extension             backport-heartbeat-period (unsignedInt),
//     backport-timeout (unsignedInt), backport-max-count (positiveInt)
// id, meta, text, language, contact and extensions other than these are not
// kept; implicitRules, modifierExtension and elements R4 Subscription does
// not define are refused (their meaning could not be kept).
//
// Header values are never rendered: each header is served as
// "Name: " + domain::kMaskedHeaderValue, and an update that sends that back
// keeps the stored value (see domain/subscriptions.h).
//
// Thread safety: pure functions.
#ifndef WMTY_FHIR_SUBSCRIPTION_MAPPING_H_
#define WMTY_FHIR_SUBSCRIPTION_MAPPING_H_

#include <string>
#include <vector>

#include <rapidjson/document.h>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "wmty/storage/record.pb.h"
#include "wmty/storage/subscription.pb.h"

namespace wmty::fhir {

inline constexpr absl::string_view kBackportSubscriptionProfile =
    "http://hl7.org/fhir/uv/subscriptions-backport/StructureDefinition/backport-subscription";
inline constexpr absl::string_view kBackportFilterCriteria =
    "http://hl7.org/fhir/uv/subscriptions-backport/StructureDefinition/backport-filter-criteria";
inline constexpr absl::string_view kBackportPayloadContent =
    "http://hl7.org/fhir/uv/subscriptions-backport/StructureDefinition/backport-payload-content";
inline constexpr absl::string_view kBackportHeartbeatPeriod =
    "http://hl7.org/fhir/uv/subscriptions-backport/StructureDefinition/backport-heartbeat-period";
inline constexpr absl::string_view kBackportTimeout =
    "http://hl7.org/fhir/uv/subscriptions-backport/StructureDefinition/backport-timeout";
inline constexpr absl::string_view kBackportMaxCount =
    "http://hl7.org/fhir/uv/subscriptions-backport/StructureDefinition/backport-max-count";
inline constexpr absl::string_view kBackportTopicCanonical =
    "http://hl7.org/fhir/uv/subscriptions-backport/StructureDefinition/capabilitystatement-subscriptiontopic-"
    "canonical";

struct IncomingSubscription {
  storage::Subscription subscription;
  // For each of subscription.filters, the index of the criteria extension it
  // came from (for error paths).
  std::vector<int> filter_extension;
};

// INVALID_ARGUMENT with field violations named by FHIR path
// ("Subscription.channel.type") when `json` is not a backport Subscription
// we serve. The domain checks the topic, filters and endpoint.
absl::StatusOr<IncomingSubscription> SubscriptionFromFhir(const rapidjson::Value& json);

// The Subscription resource of a stored SUBSCRIPTION version (id, meta with
// versionId, lastUpdated and the backport profile), header values masked.
absl::Status SubscriptionToFhir(const storage::Record& record, rapidjson::Value* out,
                                rapidjson::Document::AllocatorType& alloc);

// A domain field path ("filters[1].value", "endpoint") as a FHIR path.
std::string SubscriptionFhirPath(absl::string_view field, const IncomingSubscription& incoming);

// FHIR codes of the stored enums (subscription-status, backport-content).
absl::string_view SubscriptionStatusCode(storage::Subscription::Status status);
absl::string_view PayloadContentCode(storage::Subscription::Payload payload);

}  // namespace wmty::fhir

#endif  // WMTY_FHIR_SUBSCRIPTION_MAPPING_H_
