// The subscription topics wmty publishes (FHIR Subscriptions R5 Backport IG
// 1.1.0 on R4: a Subscription's criteria is one of these canonicals), their
// filters, and the one rule of whether a committed change is an event of a
// subscription. The FHIR face lists the topics in the CapabilityStatement and
// validates Subscriptions against them; the push engine matches the change
// log with IsSubscriptionEvent. docs/subscriptions.md describes them.
//
//   topic (under kTopicBase)   kinds                                        operations
//   what-matters-changed       WHAT_MATTERS GOAL PREFERENCE PRIORITIES      create update retract
//                              GOAL_SCORE
//   goal-changed               GOAL                                         create update retract
//   goal-score-recorded        GOAL_SCORE                                   create
//
// Filters (Subscription.criteria's backport-filter-criteria, "Type?name=value",
// several are ANDed; a value may list alternatives separated by commas):
//   patient  every topic and type; "Patient/{id}" or "{id}"; holds for a
//            change of that patient whatever the type named.
//   code     Observation only; "system|code" or "code" (any system); holds
//            for an Observation with a matching coding (ObservationCodesOf),
//            and for nothing else (the subscription is then about
//            Observations).
//
// Thread safety: constants and pure functions.
#ifndef WMTY_DOMAIN_TOPICS_H_
#define WMTY_DOMAIN_TOPICS_H_

#include <optional>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/strings/string_view.h"
#include "wmty/storage/record.pb.h"
#include "wmty/storage/subscription.pb.h"

namespace wmty::domain {

// Where our topic canonicals live.
inline constexpr absl::string_view kTopicBase = "https://wmty.dev/fhir/SubscriptionTopic/";
inline constexpr absl::string_view kTopicWhatMattersChanged =
    "https://wmty.dev/fhir/SubscriptionTopic/what-matters-changed";
inline constexpr absl::string_view kTopicGoalChanged = "https://wmty.dev/fhir/SubscriptionTopic/goal-changed";
inline constexpr absl::string_view kTopicGoalScoreRecorded =
    "https://wmty.dev/fhir/SubscriptionTopic/goal-score-recorded";

// A filter a topic allows: parameter `name` on FHIR type `resource_type`.
struct TopicFilter {
  absl::string_view resource_type;
  absl::string_view name;
  absl::string_view description;
};

struct SubscriptionTopic {
  absl::string_view url;  // canonical
  absl::string_view title;
  absl::string_view description;
  std::vector<storage::Kind> kinds;      // what the topic is about
  std::vector<storage::Change::Op> ops;  // which changes of those kinds are events
  // The FHIR types a notification's focus can be (FhirTypeOf each kind).
  std::vector<absl::string_view> resource_types;
  std::vector<TopicFilter> filters;
  // The allowed filter parameter names (of `filters`), e.g. "patient".
  std::vector<absl::string_view> filter_names() const;
};

// Every topic we publish, in a fixed order.
const std::vector<SubscriptionTopic>& SubscriptionTopics();
// The topic with canonical `url` (a trailing "|version" is ignored); null if none.
const SubscriptionTopic* FindSubscriptionTopic(absl::string_view url);

// Checks a subscription's filters against its topic: the type must be one of
// the topic's, the name one of the topic's filters for that type, the value
// well formed. INVALID_ARGUMENT with field violations named
// "filters[i].resource_type" / ".name" / ".value"; OK otherwise. The topic
// itself must exist (FindSubscriptionTopic), else INVALID_ARGUMENT on "topic".
absl::Status ValidateTopicAndFilters(const storage::Subscription& s);

// The patient a "patient" filter value names ("Patient/123" or "123"), or
// nullopt when it names none.
std::optional<std::string> PatientOfFilterValue(absl::string_view value);

// The codings ("system|code") of a stored Observation version (WHAT_MATTERS,
// PREFERENCE, GOAL_SCORE) that a code filter matches: the kind-level codes
// the FHIR mapping renders in Observation.code (what matters: LOINC 95541-9
// and our "what-matters"; a preference: LOINC 95541-9, or 75773-2 for a
// treatment intervention preference; a goal score: its GAS LOINC code). The
// specific second coding of a care experience preference is not among them.
// Empty for other kinds or when the resource does not parse. tests/fhir
// checks that the rendered Observation carries each.
std::vector<std::string> ObservationCodesOf(const storage::Record& version);

// Whether the change (which wrote `version`) is an event of the subscription:
// the topic's kind and operation, the filters, and the owner's read limits
// (owner_patient, readable_kinds unless auth_disabled). Never true for
// SUBSCRIPTION changes, nor for a subscription whose topic is unknown. Does
// not look at the subscription's status (the engine decides what runs).
bool IsSubscriptionEvent(const storage::Subscription& s, const storage::Change& change, const storage::Record& version);

}  // namespace wmty::domain

#endif  // WMTY_DOMAIN_TOPICS_H_
