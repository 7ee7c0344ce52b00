// FHIR -> model: the Observations (mapping.cc section 2). Which kind an
// Observation is comes from its code: WhatMatters, GoalScore or Preference;
// components carry the details (life domains, dignity elements, contact
// channels and times, language, family involvement).
#include <optional>
#include <span>
#include <utility>

#include "absl/strings/str_cat.h"
#include "domain/names.h"
#include "fhir/mapping_parser.h"

namespace wmty::fhir::internal {

namespace {

// Observation.code -> kind (and the preference kind / score type).
struct ObservationKind {
  storage::Kind kind = storage::KIND_UNSPECIFIED;
  int subtype = 0;  // PreferenceKind or GoalScoreType
};

ObservationKind KindOfObservation(const Value* code) {
  const std::string ours(kCodeSystemUrl);
  if (Parser::HasCoding(code, ours, codes::kWhatMattersConcept.code)) return {storage::WHAT_MATTERS, 0};
  for (const Value* c : Parser::Codings(code)) {
    if (StringMember(*c, "system").value_or("") != codes::kLoinc) continue;
    absl::string_view v = StringMember(*c, "code").value_or("");
    if (const codes::Code* row = codes::ByCode(codes::kGoalScoreCodes, v)) return {storage::GOAL_SCORE, row->value};
    if (const codes::Code* row = codes::ByCode(codes::kGoalScoreInputAliases, v)) {
      return {storage::GOAL_SCORE, row->value};
    }
  }
  for (const codes::PreferenceCode& pc : codes::kPreferenceCodes) {
    absl::string_view system = pc.system.empty() ? absl::string_view(ours) : pc.system;
    if (Parser::HasCoding(code, system, pc.code)) return {storage::PREFERENCE, pc.kind};
  }
  if (Parser::HasCoding(code, codes::kLoinc, codes::kLoincTreatmentInterventionPreference)) {
    return {storage::PREFERENCE, v1::TREATMENT_INTERVENTION};
  }
  if (Parser::HasCoding(code, codes::kLoinc, codes::kLoincCareExperiencePreference)) {
    return {storage::PREFERENCE, v1::CARE_EXPERIENCE_PREFERENCE};
  }
  return {};
}

// "HH:MM:SS" (FHIR time) -> "HH:MM"; seconds must be 00.
std::optional<std::string> TimeOfDay(absl::string_view t) {
  if (t.size() < 8 || t[2] != ':' || t[5] != ':' || t.substr(6, 2) != "00" || (t.size() > 8 && t[8] != '.')) {
    return std::nullopt;
  }
  if (t.size() > 8 && t.substr(9).find_first_not_of('0') != absl::string_view::npos) return std::nullopt;
  return std::string(t.substr(0, 5));
}

// One component coded from our CodeSystem, at `path` ("component[i]").
class Component {
 public:
  Component(Parser& p, const Value& comp, std::string path) : p_(p), comp_(comp), path_(std::move(path)) {}

  // valueString; a violation naming `what` when absent.
  std::optional<std::string> String(absl::string_view what) {
    auto s = StringMember(comp_, "valueString");
    if (!s) p_.Fail(absl::StrCat(path_, ".valueString"), absl::StrCat("required for ", what));
    return s ? std::optional<std::string>(std::string(*s)) : std::nullopt;
  }

  // The code of the first coding of `system` in valueCodeableConcept.
  std::optional<std::string> Coded(absl::string_view system) {
    for (const Value* c : Parser::Codings(Member(comp_, "valueCodeableConcept"))) {
      if (StringMember(*c, "system").value_or("") == system) {
        return std::string(StringMember(*c, "code").value_or(""));
      }
    }
    p_.Fail(absl::StrCat(path_, ".valueCodeableConcept"), absl::StrCat("required: a coding of ", system));
    return std::nullopt;
  }

  // The value of a coding of our CodeSystem looked up in `table` (the
  // concepts of one component); a violation when absent or unknown.
  std::optional<int> Ours(std::span<const codes::ValueConcept> table) {
    std::optional<std::string> code = Coded(kCodeSystemUrl);
    if (!code) return std::nullopt;
    if (const codes::ValueConcept* row = codes::ConceptByCode(table, *code)) return row->value;
    Unknown(*code);
    return std::nullopt;
  }

  void Unknown(absl::string_view value) {
    p_.Fail(absl::StrCat(path_, ".valueCodeableConcept"), absl::StrCat("unknown code \"", value, "\""));
  }

  Parser& parser() { return p_; }
  const Value& json() const { return comp_; }
  const std::string& path() const { return path_; }

 private:
  Parser& p_;
  const Value& comp_;
  const std::string path_;
};

// The code of our CodeSystem in a component's code ("" when none: not ours,
// kept with the element).
std::string OurCodeOf(const Value& comp) {
  std::string code;
  for (const Value* c : Parser::Codings(Member(comp, "code"))) {
    if (StringMember(*c, "system").value_or("") == kCodeSystemUrl) {
      code = std::string(StringMember(*c, "code").value_or(""));
    }
  }
  return code;
}

// prompt, life-domain, dignity-element.
void WhatMattersComponent(Component& c, absl::string_view code, v1::WhatMatters* wm) {
  if (code == codes::kComponentPrompt.code) {
    if (auto s = c.String("a prompt")) wm->set_prompt(*s);
  } else if (code == codes::kComponentLifeDomain.code) {
    if (auto v = c.Ours(codes::kLifeDomains)) wm->add_life_domains(static_cast<v1::LifeDomain>(*v));
  } else if (code == codes::kComponentDignity.code) {
    if (auto v = c.Ours(codes::kDignityElements)) wm->add_dignity_elements(static_cast<v1::DignityElement>(*v));
  }
}

// contact-day, contact-start-time, contact-end-time, contact-time-zone.
void ContactWindowComponent(Component& c, absl::string_view code, v1::ContactTimeWindow* w) {
  if (code == codes::kComponentDay.code) {
    if (auto v = c.Coded(codes::kDaysOfWeek)) {
      const codes::Code* row = codes::ByCode(codes::kDays, *v);
      row != nullptr ? w->add_days_of_week(row->value) : c.Unknown(*v);
    }
    return;
  }
  if (code == codes::kComponentZone.code) {
    if (auto s = c.String("a time zone")) w->set_time_zone(*s);
    return;
  }
  auto t = StringMember(c.json(), "valueTime");
  auto hhmm = t ? TimeOfDay(*t) : std::nullopt;
  if (!hhmm) {
    c.parser().Fail(absl::StrCat(c.path(), ".valueTime"), "required: a time of day hh:mm:00");
  } else if (code == codes::kComponentStart.code) {
    w->set_start_time(*hhmm);
  } else {
    w->set_end_time(*hhmm);
  }
}

// language, interpreter-needed.
void LanguageComponent(Component& c, absl::string_view code, v1::LanguagePreference* l) {
  if (code == codes::kComponentLanguage.code) {
    if (auto v = c.Coded(codes::kBcp47)) l->set_language(*v);
    return;
  }
  const Value* b = Member(c.json(), "valueBoolean");
  if (b == nullptr || !b->IsBool()) {
    c.parser().Fail(absl::StrCat(c.path(), ".valueBoolean"), "required: true or false");
  } else {
    l->set_interpreter_needed(b->GetBool());
  }
}

// family-member-name, family-member-relationship, family-involvement-how.
void FamilyComponent(Component& c, absl::string_view code, v1::FamilyInvolvement* f) {
  auto s = c.String("family involvement");
  if (!s) return;
  if (code == codes::kComponentFamilyName.code) {
    f->set_person_name(*s);
  } else if (code == codes::kComponentFamilyRelationship.code) {
    f->set_relationship(*s);
  } else {
    f->set_how(*s);
  }
}

// The Preference detail a component code belongs to ("" when none).
absl::string_view DetailOf(absl::string_view code) {
  if (code == codes::kComponentChannel.code) return "channel_ranking";
  for (const codes::Concept* c :
       {&codes::kComponentDay, &codes::kComponentStart, &codes::kComponentEnd, &codes::kComponentZone}) {
    if (code == c->code) return "contact_window";
  }
  if (code == codes::kComponentLanguage.code || code == codes::kComponentInterpreter.code) return "language";
  for (const codes::Concept* c :
       {&codes::kComponentFamilyName, &codes::kComponentFamilyRelationship, &codes::kComponentFamilyHow}) {
    if (code == c->code) return "family_involvement";
  }
  return "";
}

// A component of a Preference: of its one detail (`detail`, the first seen;
// components of a second detail are refused).
void PreferenceComponent(Component& c, absl::string_view code, std::string* detail, v1::Preference* pref) {
  const absl::string_view name = DetailOf(code);
  if (name.empty()) return;
  if (detail->empty()) *detail = std::string(name);
  if (*detail != name) {
    c.parser().Fail(c.path(),
                    absl::StrCat("components of two details (", *detail, " and ", name, "): a preference has one"));
    return;
  }
  if (name == "channel_ranking") {
    if (auto v = c.Ours(codes::kContactChannels)) {
      pref->mutable_channel_ranking()->add_channels(static_cast<v1::ContactChannel>(*v));
    }
  } else if (name == "contact_window") {
    ContactWindowComponent(c, code, pref->mutable_contact_window());
  } else if (name == "language") {
    LanguageComponent(c, code, pref->mutable_language());
  } else {
    FamilyComponent(c, code, pref->mutable_family_involvement());
  }
}

// The components coded from our CodeSystem into a WhatMatters or Preference.
void ParseComponents(Parser& p, storage::Kind kind, AnyResource* resource) {
  const Value* components = Member(p.json(), "component");
  if (components == nullptr || !components->IsArray()) return;
  std::string detail;  // which Preference detail the components describe
  for (rapidjson::SizeType i = 0; i < components->Size(); ++i) {
    const Value& comp = (*components)[i];
    const std::string code = OurCodeOf(comp);
    if (code.empty()) continue;
    Component c(p, comp, absl::StrCat("component[", i, "]"));
    if (kind == storage::WHAT_MATTERS) {
      WhatMattersComponent(c, code, &std::get<v1::WhatMatters>(*resource));
    } else if (kind == storage::PREFERENCE) {
      PreferenceComponent(c, code, &detail, &std::get<v1::Preference>(*resource));
    }
  }
}

void CheckStatus(Parser& p) {
  auto status = StringMember(p.json(), "status");
  if (!status) {
    p.Fail("status", "required: final (amended and corrected are accepted too)");
  } else if (*status == "entered-in-error") {
    p.Fail("status", "entered-in-error is not set by update: retract the observation with DELETE");
  } else if (*status != "final" && *status != "amended" && *status != "corrected") {
    p.Fail("status", "must be final, amended or corrected");
  }
}

// effectiveDateTime, else effectiveInstant, else effectivePeriod.start.
std::optional<google::protobuf::Timestamp> ParseEffective(Parser& p) {
  const Value& j = p.json();
  google::protobuf::Timestamp t;
  bool ok = false;
  if (Member(j, "effectiveDateTime") != nullptr) {
    ok = p.DateTime(j, "effectiveDateTime", "effectiveDateTime", &t);
  } else if (Member(j, "effectiveInstant") != nullptr) {
    ok = p.DateTime(j, "effectiveInstant", "effectiveInstant", &t);
  } else if (const Value* period = Member(j, "effectivePeriod"); period != nullptr && Member(*period, "start")) {
    ok = p.DateTime(*period, "start", "effectivePeriod.start", &t);
  }
  return ok ? std::optional(t) : std::nullopt;
}

// The patient or a related person listed as a performer said it; a
// practitioner only when no one else is listed (the recording nurse is
// often listed next to the patient).
v1::Speaker ParsePerformers(Parser& p) {
  v1::Speaker said_by;
  const Value* performers = Member(p.json(), "performer");
  if (performers == nullptr || !performers->IsArray()) return said_by;
  for (rapidjson::SizeType i = 0; i < performers->Size(); ++i) {
    v1::Speaker s;
    if (!p.Speaker((*performers)[i], absl::StrCat("performer[", i, "]"), &s)) continue;
    if (s.kind() != v1::Speaker::PRACTITIONER) return s;
    if (said_by.kind() == v1::Speaker::KIND_UNSPECIFIED) said_by = s;
  }
  return said_by;
}

// What every Observation has, read before the elements of its kind.
struct Common {
  v1::PatientRef patient;
  std::optional<google::protobuf::Timestamp> effective;
};

v1::WhatMatters ParseWhatMatters(Parser& p, const Common& c) {
  v1::WhatMatters wm;
  *wm.mutable_patient() = c.patient;
  if (auto s = StringMember(p.json(), "valueString")) {
    wm.set_statement(std::string(*s));
  } else {
    p.Fail("valueString", "required: the answer in the patient's own words");
  }
  if (c.effective) *wm.mutable_provenance()->mutable_said_time() = *c.effective;
  return wm;
}

// valueString -> value_text; valueCodeableConcept.coding[0] -> value_code,
// its text -> value_text.
void ParsePreferenceValue(const Value& j, v1::Preference* pref) {
  if (auto s = StringMember(j, "valueString")) {
    pref->set_value_text(std::string(*s));
    return;
  }
  const Value* cc = Member(j, "valueCodeableConcept");
  if (cc == nullptr) return;
  auto codings = Parser::Codings(cc);
  if (!codings.empty()) {
    v1::Coding* c = pref->mutable_value_code();
    c->set_system(std::string(StringMember(*codings[0], "system").value_or("")));
    c->set_code(std::string(StringMember(*codings[0], "code").value_or("")));
    c->set_display(std::string(StringMember(*codings[0], "display").value_or("")));
  }
  if (auto t = StringMember(*cc, "text")) pref->set_value_text(std::string(*t));
}

v1::Preference ParsePreference(Parser& p, int kind, const Common& c) {
  v1::Preference pref;
  *pref.mutable_patient() = c.patient;
  pref.set_kind(static_cast<v1::PreferenceKind>(kind));
  ParsePreferenceValue(p.json(), &pref);
  if (c.effective) *pref.mutable_provenance()->mutable_said_time() = *c.effective;
  return pref;
}

// A LOINC LL6900-6 answer in valueCodeableConcept, else valueInteger -2..2.
std::optional<int> GasScore(const Value& j) {
  for (const Value* c : Parser::Codings(Member(j, "valueCodeableConcept"))) {
    if (StringMember(*c, "system").value_or("") != codes::kLoinc) continue;
    if (const codes::Code* row = codes::ByCode(codes::kGasAnswers, StringMember(*c, "code").value_or(""))) {
      return row->value;
    }
  }
  if (const Value* i = Member(j, "valueInteger"); i != nullptr && i->IsInt() && i->GetInt() >= -2 && i->GetInt() <= 2) {
    return i->GetInt();
  }
  return std::nullopt;
}

// The id of the first focus "Goal/<id>".
std::optional<std::string> FocusGoalId(const Value& j) {
  const Value* focus = Member(j, "focus");
  if (focus == nullptr || !focus->IsArray()) return std::nullopt;
  for (const Value& f : focus->GetArray()) {
    if (auto id = RefId(StringMember(f, "reference").value_or(""), "Goal")) return id;
  }
  return std::nullopt;
}

v1::GoalScore ParseGoalScore(Parser& p, int score_type, const Common& c) {
  const Value& j = p.json();
  v1::GoalScore score;
  *score.mutable_patient() = c.patient;
  score.set_score_type(static_cast<v1::GoalScoreType>(score_type));
  if (std::optional<int> value = GasScore(j)) {
    score.set_score(*value);
  } else {
    p.Fail("valueCodeableConcept",
           "required: a LOINC answer of LL6900-6 (LA34484-8 -2, LA34483-0 -1, LA34481-4 0, LA34480-6 +1, "
           "LA34479-8 +2)");
  }
  if (std::optional<std::string> goal = FocusGoalId(j)) {
    score.set_goal(domain::FormatName(storage::GOAL, c.patient.id(), *goal));
  } else {
    p.Fail("focus", "required: a reference to the scored goal (Goal/<id>)");
  }
  if (c.effective) *score.mutable_effective_time() = *c.effective;
  if (const Value* notes = Member(j, "note"); notes != nullptr && notes->IsArray() && !notes->Empty()) {
    if (auto t = StringMember((*notes)[0], "text")) score.set_note(std::string(*t));
  }
  return score;
}

}  // namespace

void ParseObservation(Parser& p, Parsed* out) {
  Common common;
  const std::string pid = p.Subject(&common.patient);
  CheckStatus(p);
  const Value* code = Member(p.json(), "code");
  const ObservationKind kind = KindOfObservation(code);
  if (kind.kind == storage::KIND_UNSPECIFIED) {
    p.Fail("code", code == nullptr ? "required: LOINC 95541-9 or 75773-2 (preferences), a goal-attainment scaling "
                                     "score code, or our what-matters code"
                                   : "not one of ours: LOINC 95541-9 or 75773-2 (preferences), a goal-attainment "
                                     "scaling score code, or our what-matters code");
    out->kind = storage::KIND_UNSPECIFIED;
    return;
  }
  common.effective = ParseEffective(p);
  const v1::Speaker said_by = ParsePerformers(p);
  const std::string encounter = EncounterIdOf(p.json());
  switch (kind.kind) {
    case storage::WHAT_MATTERS:
      out->resource = ParseWhatMatters(p, common);
      break;
    case storage::PREFERENCE:
      out->resource = ParsePreference(p, kind.subtype, common);
      break;
    case storage::GOAL_SCORE:
      out->resource = ParseGoalScore(p, kind.subtype, common);
      break;
    default:
      break;
  }
  ParseComponents(p, kind.kind, &out->resource);
  v1::Provenance* provenance = MutableProvenanceOf(out->resource);
  if (said_by.kind() != v1::Speaker::KIND_UNSPECIFIED) *provenance->mutable_said_by() = said_by;
  if (!encounter.empty()) provenance->set_encounter_id(encounter);
  out->kind = kind.kind;
  out->patient_id = pid;
}

}  // namespace wmty::fhir::internal
