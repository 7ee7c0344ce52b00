// The subscription topics, their filters and the event rule (topics.h).

#include "domain/topics.h"

#include <algorithm>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"
#include "common/status.h"
#include "domain/fhir_types.h"
#include "domain/names.h"
#include "wmty/v1/resources.pb.h"

namespace wmty::domain {
namespace {

using storage::Change;
using storage::Kind;

constexpr TopicFilter kPatientFilter(absl::string_view type) {
  return {type, "patient", "The patient the resource is about: Patient/{id} or {id}."};
}
constexpr TopicFilter kCodeFilter = {
    "Observation", "code",
    "An Observation coding, system|code or code: e.g. https://fhir.wmty.health/CodeSystem/wmty|what-matters "
    "(what matters), http://loinc.org|95541-9 (care experience preferences and what matters), "
    "http://loinc.org|75773-2 (treatment intervention preferences), a goal-attainment score code."};

// The codes ObservationCodesOf names. The strings are the FHIR mapping's
// (fhir/mapping_codes.h, fhir/mapping.h kCodeSystemUrl); the domain cannot
// include the FHIR layer, and tests/fhir checks the two agree.
constexpr absl::string_view kWmtyCodeSystem = "https://fhir.wmty.health/CodeSystem/wmty";
constexpr absl::string_view kLoinc = "http://loinc.org";
constexpr absl::string_view kCareExperience = "95541-9";
constexpr absl::string_view kTreatmentIntervention = "75773-2";
absl::string_view GoalScoreCode(v1::GoalScoreType t) {
  switch (t) {
    case v1::INITIAL:
      return "112296-9";
    case v1::PATIENT_FOLLOW_UP:
      return "107334-5";
    case v1::PRACTITIONER_FOLLOW_UP:
      return "107333-7";
    case v1::CAREGIVER_FOLLOW_UP:
      return "107331-1";
    default:
      return "";
  }
}

std::vector<SubscriptionTopic> MakeTopics() {
  const std::vector<Change::Op> all_ops = {Change::CREATE, Change::UPDATE, Change::RETRACT};
  return {
      {kTopicWhatMattersChanged,
       "What matters changed for a patient",
       "Any of a patient's what-matters statements, preferences, goals, priorities List or goal-attainment scores "
       "was created, updated or deleted (entered in error).",
       {storage::WHAT_MATTERS, storage::GOAL, storage::PREFERENCE, storage::PRIORITIES, storage::GOAL_SCORE},
       all_ops,
       {"Observation", "Goal", "List"},
       {kPatientFilter("Observation"), kPatientFilter("Goal"), kPatientFilter("List"), kCodeFilter}},
      {kTopicGoalChanged,
       "Goal created or updated",
       "A patient's Goal was created or updated, including its deletion (entered in error: lifecycleStatus "
       "entered-in-error is an update of the Goal).",
       {storage::GOAL},
       all_ops,
       {"Goal"},
       {kPatientFilter("Goal")}},
      {kTopicGoalScoreRecorded,
       "Goal-attainment score recorded",
       "A goal-attainment scaling score Observation was recorded (created).",
       {storage::GOAL_SCORE},
       {Change::CREATE},
       {"Observation"},
       {kPatientFilter("Observation"), kCodeFilter}},
  };
}

// One value of a token filter ("system|code" or "code") against "system|code".
bool TokenMatches(absl::string_view wanted, absl::string_view coding) {
  if (absl::StrContains(wanted, '|')) return wanted == coding;
  const size_t bar = coding.find('|');
  return coding.substr(bar + 1) == wanted;
}

// Does one filter hold for the change? (Validated filters only.)
bool FilterHolds(const storage::SubscriptionFilter& f, const Change& change, const storage::Record& version) {
  const std::vector<absl::string_view> values = absl::StrSplit(f.value(), ',');
  if (f.name() == "patient") {
    return std::any_of(values.begin(), values.end(),
                       [&](absl::string_view v) { return PatientOfFilterValue(v) == change.patient_id(); });
  }
  if (f.name() == "code") {
    if (FhirTypeOf(change.kind()) != f.resource_type()) return false;
    const std::vector<std::string> codes = ObservationCodesOf(version);
    for (absl::string_view v : values) {
      for (const std::string& c : codes) {
        if (TokenMatches(v, c)) return true;
      }
    }
    return false;
  }
  return false;  // unknown filters match nothing (validation refuses them)
}

bool ValidFilterValue(absl::string_view name, absl::string_view value) {
  if (value.empty()) return false;
  for (absl::string_view v : absl::StrSplit(value, ',')) {
    if (name == "patient" && !PatientOfFilterValue(v).has_value()) return false;
    if (name == "code" && (v.empty() || absl::EndsWith(v, "|"))) return false;
  }
  return true;
}

}  // namespace

std::vector<absl::string_view> SubscriptionTopic::filter_names() const {
  std::vector<absl::string_view> names;
  for (const TopicFilter& f : filters) {
    if (std::find(names.begin(), names.end(), f.name) == names.end()) names.push_back(f.name);
  }
  return names;
}

const std::vector<SubscriptionTopic>& SubscriptionTopics() {
  static const std::vector<SubscriptionTopic>* const kTopics = new std::vector<SubscriptionTopic>(MakeTopics());
  return *kTopics;
}

const SubscriptionTopic* FindSubscriptionTopic(absl::string_view url) {
  url = url.substr(0, url.find('|'));
  for (const SubscriptionTopic& t : SubscriptionTopics()) {
    if (t.url == url) return &t;
  }
  return nullptr;
}

absl::Status ValidateTopicAndFilters(const storage::Subscription& s) {
  const SubscriptionTopic* topic = FindSubscriptionTopic(s.topic());
  if (topic == nullptr) {
    std::string known;
    for (const SubscriptionTopic& t : SubscriptionTopics()) absl::StrAppend(&known, known.empty() ? "" : ", ", t.url);
    return InvalidField("topic", absl::StrCat("unknown subscription topic; the topics are: ", known));
  }
  FieldViolations v;
  for (int i = 0; i < s.filters_size(); ++i) {
    const storage::SubscriptionFilter& f = s.filters(i);
    const std::string at = absl::StrCat("filters[", i, "]");
    const auto& types = topic->resource_types;
    if (std::find(types.begin(), types.end(), f.resource_type()) == types.end()) {
      v.Add(at + ".resource_type",
            absl::StrCat("the topic is not about ", f.resource_type().empty() ? "(no type)" : f.resource_type(),
                         "; its resource types are: ", absl::StrJoin(types, ", ")));
      continue;
    }
    const bool allowed = std::any_of(topic->filters.begin(), topic->filters.end(), [&](const TopicFilter& t) {
      return t.resource_type == f.resource_type() && t.name == f.name();
    });
    if (!allowed) {
      std::vector<absl::string_view> names;
      for (const TopicFilter& t : topic->filters) {
        if (t.resource_type == f.resource_type()) names.push_back(t.name);
      }
      v.Add(at + ".name", absl::StrCat("unknown filter ", f.name(), " for ", f.resource_type(),
                                       " on this topic; allowed: ", absl::StrJoin(names, ", ")));
      continue;
    }
    if (!ValidFilterValue(f.name(), f.value())) {
      v.Add(at + ".value", f.name() == "patient" ? "patient takes Patient/{id} or {id} (comma-separated for several)"
                                                 : "code takes system|code or code (comma-separated for several)");
    }
  }
  return v.ToStatus();
}

std::optional<std::string> PatientOfFilterValue(absl::string_view value) {
  absl::ConsumePrefix(&value, "Patient/");
  if (!IsValidId(value)) return std::nullopt;
  return std::string(value);
}

std::vector<std::string> ObservationCodesOf(const storage::Record& version) {
  auto coding = [](absl::string_view system, absl::string_view code) { return absl::StrCat(system, "|", code); };
  switch (version.kind()) {
    case storage::WHAT_MATTERS:
      return {coding(kLoinc, kCareExperience), coding(kWmtyCodeSystem, "what-matters")};
    case storage::PREFERENCE: {
      v1::Preference p;
      if (!p.ParseFromString(version.resource())) return {};
      return {coding(kLoinc, p.kind() == v1::TREATMENT_INTERVENTION ? kTreatmentIntervention : kCareExperience)};
    }
    case storage::GOAL_SCORE: {
      v1::GoalScore g;
      if (!g.ParseFromString(version.resource())) return {};
      const absl::string_view code = GoalScoreCode(g.score_type());
      if (code.empty()) return {};
      return {coding(kLoinc, code)};
    }
    default:
      return {};
  }
}

// The owner's read limits are checked first: a subscription never sees
// more than its creator could read, whatever its filters say.
bool IsSubscriptionEvent(const storage::Subscription& s, const Change& change, const storage::Record& version) {
  if (change.kind() == storage::SUBSCRIPTION || change.kind() == storage::KIND_UNSPECIFIED) return false;
  const SubscriptionTopic* topic = FindSubscriptionTopic(s.topic());
  if (topic == nullptr) return false;
  if (std::find(topic->kinds.begin(), topic->kinds.end(), change.kind()) == topic->kinds.end()) return false;
  if (std::find(topic->ops.begin(), topic->ops.end(), change.op()) == topic->ops.end()) return false;
  if (!s.owner_patient().empty() && s.owner_patient() != change.patient_id()) return false;
  if (!s.auth_disabled()) {
    const auto& readable = s.readable_kinds();
    if (std::find(readable.begin(), readable.end(), change.kind()) == readable.end()) return false;
  }
  return std::all_of(s.filters().begin(), s.filters().end(),
                     [&](const storage::SubscriptionFilter& f) { return FilterHolds(f, change, version); });
}

}  // namespace wmty::domain
