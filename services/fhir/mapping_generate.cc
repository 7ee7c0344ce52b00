// Model -> FHIR: the mapped elements of each resource (mapping.cc section 2),
// without resourceType, id, meta and text (mapping.cc adds those) and before
// the kept elements are merged back (mapping_kept.cc).
#include <span>
#include <utility>

#include "absl/strings/str_cat.h"
#include "fhir/mapping_codes.h"
#include "fhir/mapping_internal.h"

namespace wmty::fhir::internal {

namespace {

Value Subject(const v1::PatientRef& patient, absl::string_view pid, json::Allocator& a) {
  Value s = json::Reference(absl::StrCat("Patient/", pid), "", a);
  if (!patient.identifier_system().empty() || !patient.identifier_value().empty()) {
    Value id(rapidjson::kObjectType);
    if (!patient.identifier_system().empty()) id.AddMember("system", Str(patient.identifier_system(), a), a);
    if (!patient.identifier_value().empty()) id.AddMember("value", Str(patient.identifier_value(), a), a);
    s.AddMember("identifier", id, a);
  }
  return s;
}

void AddContainedSpeaker(const v1::Speaker& s, absl::string_view pid, Value* body, json::Allocator& a) {
  if (s.kind() != v1::Speaker::RELATED_PERSON) return;
  Value contained(rapidjson::kArrayType);
  contained.PushBack(SpeakerResource(s, pid, a), a);
  body->AddMember("contained", contained, a);
}

Value OurCoding(const codes::Concept& c, json::Allocator& a) {
  return json::Coding(kCodeSystemUrl, c.code, c.display, a);
}

Value Component(const codes::Concept& code, absl::string_view value_member, Value value, json::Allocator& a) {
  Value comp(rapidjson::kObjectType);
  comp.AddMember("code", json::Concept(OurCoding(code, a), a), a);
  comp.AddMember(Str(value_member, a), value, a);
  return comp;
}

void AddEncounter(const v1::Provenance& p, Value* body, json::Allocator& a) {
  if (!p.encounter_id().empty()) {
    body->AddMember("encounter", json::Reference(absl::StrCat("Encounter/", p.encounter_id()), "", a), a);
  }
}

void AddPerformer(const v1::Speaker& s, absl::string_view pid, Value* body, json::Allocator& a) {
  Value ref = SpeakerRef(s, pid, a);
  if (!ref.IsNull()) body->AddMember("performer", Array1(std::move(ref), a), a);
}

void AddGoalCategories(const v1::Goal& g, Value* body, json::Allocator& a) {
  Value categories(rapidjson::kArrayType);
  for (int c : g.categories()) {
    if (c == v1::PERSONAL_HEALTH_GOAL) {
      categories.PushBack(
          json::Concept(json::Coding(codes::kLoinc, codes::kLoincPersonalHealthGoal, "Personal health goal", a), a), a);
    } else if (const codes::Code* row = codes::ByValue(codes::kGoalCategoryCodes, c)) {
      categories.PushBack(json::Concept(json::Coding(codes::kGoalCategory, row->code, row->display, a), a), a);
    }
  }
  if (!categories.Empty()) body->AddMember("category", categories, a);
}

void AddNotes(const v1::Goal& g, Value* body, json::Allocator& a) {
  if (g.notes_size() == 0) return;
  Value notes(rapidjson::kArrayType);
  for (const v1::Note& n : g.notes()) {
    Value note(rapidjson::kObjectType);
    if (!n.author().empty()) note.AddMember("authorString", Str(n.author(), a), a);
    if (n.has_time()) note.AddMember("time", Str(json::FormatDateTime(n.time()), a), a);
    note.AddMember("text", Str(n.text(), a), a);
    notes.PushBack(note, a);
  }
  body->AddMember("note", notes, a);
}

void GenerateGoal(const v1::Goal& g, const GenContext& ctx, Value* body, json::Allocator& a) {
  const v1::Speaker& speaker = g.provenance().said_by();
  AddContainedSpeaker(speaker, ctx.patient_id, body, a);
  if (const codes::Code* row = codes::ByValue(codes::kGoalLifecycle, g.lifecycle_status())) {
    body->AddMember("lifecycleStatus", Str(row->code, a), a);
  }
  if (const codes::Code* row = codes::ByValue(codes::kGoalAchievementCodes, g.achievement_status())) {
    body->AddMember("achievementStatus",
                    json::Concept(json::Coding(codes::kGoalAchievement, row->code, row->display, a), a), a);
  }
  AddGoalCategories(g, body, a);
  if (const codes::Code* row = codes::ByValue(codes::kGoalPriorityCodes, g.priority())) {
    body->AddMember("priority", json::Concept(json::Coding(codes::kGoalPriority, row->code, row->display, a), a), a);
  }
  Value description(rapidjson::kObjectType);
  description.AddMember("text", Str(g.description(), a), a);
  body->AddMember("description", description, a);
  body->AddMember("subject", Subject(g.patient(), ctx.patient_id, a), a);
  if (!g.start_date().empty()) body->AddMember("startDate", Str(g.start_date(), a), a);
  if (!g.target_date().empty()) {
    Value target(rapidjson::kObjectType);
    target.AddMember("dueDate", Str(g.target_date(), a), a);
    body->AddMember("target", Array1(std::move(target), a), a);
  }
  // The patient's expressedBy equals subject (ADI PersonalGoal: subject = expressedBy).
  Value by = speaker.kind() == v1::Speaker::PATIENT ? Subject(g.patient(), ctx.patient_id, a)
                                                    : SpeakerRef(speaker, ctx.patient_id, a);
  if (!by.IsNull()) body->AddMember("expressedBy", by, a);
  if (g.what_matters_size() > 0) {
    Value addresses(rapidjson::kArrayType);
    for (const std::string& name : g.what_matters()) {
      const std::string id = IdOfName(name);
      if (!id.empty()) addresses.PushBack(json::Reference(absl::StrCat("Observation/", id), "", a), a);
    }
    if (!addresses.Empty()) body->AddMember("addresses", addresses, a);
  }
  AddNotes(g, body, a);
}

Value Category(absl::string_view system, absl::string_view code, absl::string_view display, json::Allocator& a) {
  return Array1(json::Concept(json::Coding(system, code, display, a), a), a);
}

Value CareExperienceCode(json::Allocator& a) {
  return json::Coding(codes::kLoinc, codes::kLoincCareExperiencePreference, "Care experience preference", a);
}

void AddEffective(const google::protobuf::Timestamp* t, Value* body, json::Allocator& a) {
  if (t != nullptr) body->AddMember("effectiveDateTime", Str(json::FormatDateTime(*t), a), a);
}

// One component per value of `values` that `table` knows, each a
// valueCodeableConcept of our CodeSystem.
template <class Values>
void AddOurConcepts(const codes::Concept& component, std::span<const codes::ValueConcept> table, const Values& values,
                    Value* components, json::Allocator& a) {
  for (int v : values) {
    if (const codes::ValueConcept* row = codes::ConceptByValue(table, v)) {
      components->PushBack(Component(component, "valueCodeableConcept", json::Concept(OurCoding(row->term, a), a), a),
                           a);
    }
  }
}

void AddComponents(Value components, Value* body, json::Allocator& a) {
  if (!components.Empty()) body->AddMember("component", components, a);
}

void GenerateWhatMatters(const v1::WhatMatters& wm, const GenContext& ctx, Value* body, json::Allocator& a) {
  const v1::Provenance& prov = wm.provenance();
  AddContainedSpeaker(prov.said_by(), ctx.patient_id, body, a);
  body->AddMember("status", "final", a);
  body->AddMember("category",
                  Category(codes::kUsCoreCategory, "care-experience-preference", "Care experience preference", a), a);
  Value code(rapidjson::kObjectType);
  Value codings(rapidjson::kArrayType);
  codings.PushBack(CareExperienceCode(a), a);
  codings.PushBack(OurCoding(codes::kWhatMattersConcept, a), a);
  code.AddMember("coding", codings, a);
  body->AddMember("code", code, a);
  body->AddMember("subject", Subject(wm.patient(), ctx.patient_id, a), a);
  AddEncounter(prov, body, a);
  AddEffective(prov.has_said_time() ? &prov.said_time() : nullptr, body, a);
  AddPerformer(prov.said_by(), ctx.patient_id, body, a);
  body->AddMember("valueString", Str(wm.statement(), a), a);
  Value components(rapidjson::kArrayType);
  if (!wm.prompt().empty()) {
    components.PushBack(Component(codes::kComponentPrompt, "valueString", Str(wm.prompt(), a), a), a);
  }
  AddOurConcepts(codes::kComponentLifeDomain, codes::kLifeDomains, wm.life_domains(), &components, a);
  AddOurConcepts(codes::kComponentDignity, codes::kDignityElements, wm.dignity_elements(), &components, a);
  AddComponents(std::move(components), body, a);
}

std::string HhMmSs(absl::string_view hhmm) { return absl::StrCat(hhmm, ":00"); }

// category and code: US Core's treatment intervention preference, or its
// care experience preference with the specific coding of the kind.
void AddPreferenceCode(const v1::Preference& pref, Value* body, json::Allocator& a) {
  const bool treatment = pref.kind() == v1::TREATMENT_INTERVENTION;
  body->AddMember("category",
                  treatment
                      ? Category(codes::kUsCoreCategory, "treatment-intervention-preference",
                                 "Treatment intervention preference", a)
                      : Category(codes::kUsCoreCategory, "care-experience-preference", "Care experience preference", a),
                  a);
  Value codings(rapidjson::kArrayType);
  if (treatment) {
    codings.PushBack(json::Coding(codes::kLoinc, codes::kLoincTreatmentInterventionPreference,
                                  "Goals, preferences, and priorities for medical treatment [Reported]", a),
                     a);
  } else {
    codings.PushBack(CareExperienceCode(a), a);
    for (const codes::PreferenceCode& pc : codes::kPreferenceCodes) {
      if (pc.kind != pref.kind()) continue;
      codings.PushBack(json::Coding(pc.system.empty() ? kCodeSystemUrl : pc.system, pc.code, pc.display, a), a);
    }
  }
  Value code(rapidjson::kObjectType);
  code.AddMember("coding", codings, a);
  body->AddMember("code", code, a);
}

// value_code -> valueCodeableConcept (value_text its text); value_text alone
// -> valueString.
void AddPreferenceValue(const v1::Preference& pref, Value* body, json::Allocator& a) {
  if (!pref.value_code().code().empty()) {
    const v1::Coding& c = pref.value_code();
    Value cc = json::Concept(json::Coding(c.system(), c.code(), c.display(), a), a);
    if (!pref.value_text().empty()) cc.AddMember("text", Str(pref.value_text(), a), a);
    body->AddMember("valueCodeableConcept", cc, a);
  } else if (!pref.value_text().empty()) {
    body->AddMember("valueString", Str(pref.value_text(), a), a);
  }
}

void AddString(const codes::Concept& c, const std::string& s, Value* components, json::Allocator& a) {
  if (!s.empty()) components->PushBack(Component(c, "valueString", Str(s, a), a), a);
}

void AddContactWindow(const v1::ContactTimeWindow& w, Value* components, json::Allocator& a) {
  for (int day : w.days_of_week()) {
    if (const codes::Code* row = codes::ByValue(codes::kDays, day)) {
      components->PushBack(Component(codes::kComponentDay, "valueCodeableConcept",
                                     json::Concept(json::Coding(codes::kDaysOfWeek, row->code, row->display, a), a), a),
                           a);
    }
  }
  if (!w.start_time().empty()) {
    components->PushBack(Component(codes::kComponentStart, "valueTime", Str(HhMmSs(w.start_time()), a), a), a);
  }
  if (!w.end_time().empty()) {
    components->PushBack(Component(codes::kComponentEnd, "valueTime", Str(HhMmSs(w.end_time()), a), a), a);
  }
  AddString(codes::kComponentZone, w.time_zone(), components, a);
}

void AddLanguage(const v1::LanguagePreference& l, Value* components, json::Allocator& a) {
  if (!l.language().empty()) {
    components->PushBack(Component(codes::kComponentLanguage, "valueCodeableConcept",
                                   json::Concept(json::Coding(codes::kBcp47, l.language(), "", a), a), a),
                         a);
  }
  components->PushBack(Component(codes::kComponentInterpreter, "valueBoolean", Value(l.interpreter_needed()), a), a);
}

// The components of a Preference's detail.
Value PreferenceComponents(const v1::Preference& pref, json::Allocator& a) {
  Value components(rapidjson::kArrayType);
  switch (pref.detail_case()) {
    case v1::Preference::kChannelRanking:
      AddOurConcepts(codes::kComponentChannel, codes::kContactChannels, pref.channel_ranking().channels(), &components,
                     a);
      break;
    case v1::Preference::kContactWindow:
      AddContactWindow(pref.contact_window(), &components, a);
      break;
    case v1::Preference::kLanguage:
      AddLanguage(pref.language(), &components, a);
      break;
    case v1::Preference::kFamilyInvolvement: {
      const v1::FamilyInvolvement& f = pref.family_involvement();
      AddString(codes::kComponentFamilyName, f.person_name(), &components, a);
      AddString(codes::kComponentFamilyRelationship, f.relationship(), &components, a);
      AddString(codes::kComponentFamilyHow, f.how(), &components, a);
      break;
    }
    default:
      break;
  }
  return components;
}

void GeneratePreference(const v1::Preference& pref, const GenContext& ctx, Value* body, json::Allocator& a) {
  const v1::Provenance& prov = pref.provenance();
  AddContainedSpeaker(prov.said_by(), ctx.patient_id, body, a);
  body->AddMember("status", "final", a);
  AddPreferenceCode(pref, body, a);
  body->AddMember("subject", Subject(pref.patient(), ctx.patient_id, a), a);
  AddEncounter(prov, body, a);
  AddEffective(prov.has_said_time() ? &prov.said_time() : nullptr, body, a);
  AddPerformer(prov.said_by(), ctx.patient_id, body, a);
  AddPreferenceValue(pref, body, a);
  AddComponents(PreferenceComponents(pref, a), body, a);
}

void GenerateGoalScore(const v1::GoalScore& s, const GenContext& ctx, Value* body, json::Allocator& a) {
  const v1::Provenance& prov = s.provenance();
  AddContainedSpeaker(prov.said_by(), ctx.patient_id, body, a);
  body->AddMember("status", "final", a);
  body->AddMember("category", Category(codes::kObservationCategory, "survey", "Survey", a), a);
  if (const codes::Code* row = codes::ByValue(codes::kGoalScoreCodes, s.score_type())) {
    body->AddMember("code", json::Concept(json::Coding(codes::kLoinc, row->code, row->display, a), a), a);
  }
  body->AddMember("subject", Subject(s.patient(), ctx.patient_id, a), a);
  const std::string goal_id = IdOfName(s.goal());
  if (!goal_id.empty()) {
    body->AddMember("focus", Array1(json::Reference(absl::StrCat("Goal/", goal_id), "", a), a), a);
  }
  AddEncounter(prov, body, a);
  google::protobuf::Timestamp fallback;
  const google::protobuf::Timestamp* effective = nullptr;
  if (s.has_effective_time()) {
    effective = &s.effective_time();
  } else if (prov.has_said_time()) {
    effective = &prov.said_time();
  } else if (ctx.fallback_micros != 0) {
    fallback.set_seconds(ctx.fallback_micros / 1000000);
    fallback.set_nanos(static_cast<int32_t>(ctx.fallback_micros % 1000000) * 1000);
    effective = &fallback;
  }
  AddEffective(effective, body, a);
  AddPerformer(prov.said_by(), ctx.patient_id, body, a);
  if (const codes::Code* row = codes::ByValue(codes::kGasAnswers, s.score())) {
    body->AddMember("valueCodeableConcept", json::Concept(json::Coding(codes::kLoinc, row->code, row->display, a), a),
                    a);
  }
  if (!s.note().empty()) {
    Value note(rapidjson::kObjectType);
    note.AddMember("text", Str(s.note(), a), a);
    body->AddMember("note", Array1(std::move(note), a), a);
  }
}

void GeneratePriorities(const v1::Priorities& pr, const GenContext& ctx, const std::vector<std::string>* item_refs,
                        Value* body, json::Allocator& a) {
  const v1::Provenance& prov = pr.provenance();
  body->AddMember("status", "current", a);
  body->AddMember("mode", "working", a);
  body->AddMember("title", Str(kListTitle, a), a);
  body->AddMember("code",
                  json::Concept(json::Coding(codes::kLoinc, codes::kLoincPrioritiesList,
                                             "Goals AndOr preferences in order of priority [Reported]", a),
                                a),
                  a);
  body->AddMember("subject", Subject(pr.patient(), ctx.patient_id, a), a);
  AddEncounter(prov, body, a);
  // R4 List.source allows no RelatedPerson: a related person's ranking has
  // no source (its Provenance names the informant).
  if (prov.said_by().kind() != v1::Speaker::RELATED_PERSON) {
    Value source = SpeakerRef(prov.said_by(), ctx.patient_id, a);
    if (!source.IsNull()) body->AddMember("source", source, a);
  }
  body->AddMember("orderedBy", json::Concept(json::Coding(codes::kListOrder, "priority", "Sorted by Priority", a), a),
                  a);
  std::vector<std::string> refs;
  if (item_refs != nullptr) {
    refs = *item_refs;
  } else {
    for (const std::string& name : pr.items()) {
      std::string ref = RefOfName(name);
      if (!ref.empty()) refs.push_back(std::move(ref));
    }
  }
  if (!refs.empty()) {
    Value entries(rapidjson::kArrayType);
    for (const std::string& ref : refs) {
      Value entry(rapidjson::kObjectType);
      entry.AddMember("item", json::Reference(ref, "", a), a);
      entries.PushBack(entry, a);
    }
    body->AddMember("entry", entries, a);
  }
}

}  // namespace

// Reference to who said it, or null when not stated.
Value SpeakerRef(const v1::Speaker& s, absl::string_view pid, json::Allocator& a) {
  switch (s.kind()) {
    case v1::Speaker::PATIENT:
      return json::Reference(absl::StrCat("Patient/", pid), "", a);
    case v1::Speaker::RELATED_PERSON:
      return json::Reference(absl::StrCat("#", kSpeakerId), s.name(), a);
    case v1::Speaker::PRACTITIONER:
      return json::Reference(absl::StrCat("Practitioner/", s.practitioner_id()), s.name(), a);
    default:
      return Value();
  }
}

// The contained RelatedPerson of a RELATED_PERSON speaker.
Value SpeakerResource(const v1::Speaker& s, absl::string_view pid, json::Allocator& a) {
  Value r(rapidjson::kObjectType);
  r.AddMember("resourceType", "RelatedPerson", a);
  r.AddMember("id", Str(kSpeakerId, a), a);
  r.AddMember("patient", json::Reference(absl::StrCat("Patient/", pid), "", a), a);
  if (!s.relationship().empty()) {
    Value rel(rapidjson::kObjectType);
    rel.AddMember("text", Str(s.relationship(), a), a);
    Value rels(rapidjson::kArrayType);
    rels.PushBack(rel, a);
    r.AddMember("relationship", rels, a);
  }
  if (!s.name().empty()) {
    Value name(rapidjson::kObjectType);
    name.AddMember("text", Str(s.name(), a), a);
    Value names(rapidjson::kArrayType);
    names.PushBack(name, a);
    r.AddMember("name", names, a);
  }
  return r;
}

Value Array1(Value v, json::Allocator& a) {
  Value arr(rapidjson::kArrayType);
  arr.PushBack(v, a);
  return arr;
}

// The mapped elements of `resource` (no resourceType, id, meta or text).
void GenerateBody(storage::Kind kind, const AnyResource& resource, const GenContext& ctx,
                  const std::vector<std::string>* item_refs, Value* body, json::Allocator& a) {
  body->SetObject();
  switch (kind) {
    case storage::GOAL:
      GenerateGoal(std::get<v1::Goal>(resource), ctx, body, a);
      break;
    case storage::WHAT_MATTERS:
      GenerateWhatMatters(std::get<v1::WhatMatters>(resource), ctx, body, a);
      break;
    case storage::PREFERENCE:
      GeneratePreference(std::get<v1::Preference>(resource), ctx, body, a);
      break;
    case storage::GOAL_SCORE:
      GenerateGoalScore(std::get<v1::GoalScore>(resource), ctx, body, a);
      break;
    case storage::PRIORITIES:
      GeneratePriorities(std::get<v1::Priorities>(resource), ctx, item_refs, body, a);
      break;
    default:
      break;
  }
}

}  // namespace wmty::fhir::internal
