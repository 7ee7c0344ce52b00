// The wmty.v1 <-> FHIR R4 mapping. This comment is the specification of the
// mapping (docs/fhir.md is written from it); keep it true when the code
// changes. Codes, systems and profile canonicals are in mapping_codes.h.
//
// ============================================================================
// 1. Resources and ids
// ============================================================================
//   kind           FHIR         id              meta.profile
//   GOAL           Goal         wmty id         us-core-goal; + ADI-PersonalGoal when said_by is PATIENT, a
//                                               category is LOINC 87528-6 and expressedBy equals subject (ADI's
//                                               invariant); + pco-gas-goal-profile when the Goal
//                                               carries the PCO goal-attainment-scaling extension and a startDate
//   WHAT_MATTERS   Observation  wmty id         us-core-care-experience-preference
//   PREFERENCE     Observation  wmty id         us-core-care-experience-preference, or
//                                               us-core-treatment-intervention-preference (TREATMENT_INTERVENTION)
//   GOAL_SCORE     Observation  wmty id         pco-gas-score-observation
//   PRIORITIES     List         the patient id  ADI-PersonalPrioritiesOrganizer
//   each version   Provenance   "s<sequence>"   us-core-provenance
// meta.versionId = the version; meta.lastUpdated = the update time as a FHIR
// instant in UTC with milliseconds. Every resource gets a generated narrative
// (text.status "generated"; PACIO profiles require text). id, meta and text of
// an incoming resource are ignored (the server owns them).
//
// ============================================================================
// 2. Elements
// ============================================================================
// Common: subject.reference "Patient/<id>" <-> patient id (required on input,
//   FHIR id rule; relative reference only); subject.identifier.system/value
//   <-> patient.identifier_system/value.
// Who said it (provenance.said_by; for a GoalScore, who scored it) is
//   Goal.expressedBy, Observation.performer and List.source. Of several performers, the first
//   patient or related person is the speaker, else the first practitioner:
//     NOT_STATED     <-> the element absent (never the patient by default: the domain stores an
//                        absent said_by as NOT_STATED, domain::SpeakerOrNotStated)
//     PATIENT        <-> {"reference": "Patient/<subject id>"}  (another patient is refused; Goal.expressedBy
//                        repeats subject exactly, identifier included)
//     PRACTITIONER   <-> {"reference": "Practitioner/<practitioner_id>", "display": name}
//     RELATED_PERSON  -> {"reference": "#speaker", "display": name} plus a contained
//                        RelatedPerson {id "speaker", patient, name[0].text = name,
//                        relationship[0].text = relationship}
//                    <-  "#<id>" of a contained RelatedPerson (name: name[0].text, else
//                        given + family; relationship: relationship[0].text, else its first
//                        coding's display, else code), or "RelatedPerson/<id>" (name = display;
//                        no relationship, which the domain then requires: use a contained one).
//   References FHIR allows there that the model cannot hold (a PractitionerRole, an Organization
//   or CareTeam performer, a Device source, a reference with only a display or identifier) are
//   kept (see 3) and the speaker is NOT_STATED. Goal.expressedBy of another type is refused.
//   R4 List.source allows Practitioner, PractitionerRole, Patient and Device: a RelatedPerson
//   source is refused, and a related person's priorities carry no source (their Provenance
//   names the informant).
// Goal:
//   description.text <-> description (required; a goal coded only, as US Core allows: description =
//     the first coding's display, else its code; the codings are kept, so it comes back as it came)
//   lifecycleStatus <-> lifecycle_status (goal-status; "entered-in-error" refused: retract with DELETE)
//   achievementStatus (goal-achievement) <-> achievement_status; priority (goal-priority) <-> priority
//   category: LOINC 87528-6 <-> PERSONAL_HEALTH_GOAL, goal-category dietary|safety|behavioral|nursing|
//     physiotherapy <-> the others; other codings ignored
//   startDate <-> start_date; target[0].dueDate <-> target_date
//   note[i] <-> notes[i]: text, authorString (input: also authorReference -> its display, else the id after
//     the last '/'), time
//   addresses "Observation/<id>" <-> what_matters "patients/<pid>/whatMatters/<id>" (other addresses kept)
// Observation: which kind is decided by code:
//   a coding (our CodeSystem, "what-matters")      -> WhatMatters
//   a LOINC GAS score code (112296-9, 107332-9, 107334-5, 107333-7, 107331-1) -> GoalScore
//   otherwise a Preference: the specific coding (table kPreferenceCodes: LOINC 90778-2 pronouns,
//     54899-0 language, 81364-2 religious/cultural, 81360-0 likes, 81362-6 dislikes; our codes
//     communication-channels, contact-time-window, name-to-use, family-involvement, other-preference),
//     else LOINC 75773-2 -> TREATMENT_INTERVENTION, else LOINC 95541-9 -> CARE_EXPERIENCE_PREFERENCE,
//     else refused ("Observation.code").
//   status: final (output), final|amended|corrected accepted; entered-in-error refused (DELETE).
//   category: us-core-category care-experience-preference / treatment-intervention-preference;
//     observation-category survey for GAS scores (as in PCO's examples). Not read on input.
//   encounter "Encounter/<id>" <-> provenance.encounter_id (also List.encounter).
//   WhatMatters: code = LOINC 95541-9 + ours "what-matters"; valueString <-> statement (required);
//     effectiveDateTime <-> provenance.said_time (input: also effectiveInstant, effectivePeriod.start;
//     the same for the other Observations); components (code from our CodeSystem):
//       prompt (valueString) <-> prompt; life-domain (valueCodeableConcept, ours) <-> life_domains,
//       one per domain; dignity-element (valueCodeableConcept, ours) <-> dignity_elements.
//   Preference: code = LOINC 95541-9 (or 75773-2) + the specific coding; effectiveDateTime <->
//     provenance.said_time; value_code -> valueCodeableConcept.coding[0] with value_text as its text;
//     value_text alone -> valueString (input: valueCodeableConcept.coding[0] -> value_code, .text ->
//     value_text; valueString -> value_text). Details as components coded from our CodeSystem:
//       channel_ranking: preferred-channel (valueCodeableConcept, ours) per channel, most preferred first;
//       contact_window: contact-day (valueCodeableConcept http://hl7.org/fhir/days-of-week) per day,
//         contact-start-time / contact-end-time (valueTime "HH:MM:00"; input seconds must be 00),
//         contact-time-zone (valueString);
//       language: language (valueCodeableConcept, urn:ietf:bcp:47), interpreter-needed (valueBoolean);
//       family_involvement: family-member-name, family-member-relationship, family-involvement-how
//         (valueString). Components of two different details are refused.
//   GoalScore: code by score_type (kGoalScoreCodes; PCO 1.0.0 uses 112296-9 for the baseline);
//     focus[0] "Goal/<id>" <-> goal (required); valueCodeableConcept LOINC LL6900-6 answer <-> score
//     (LA34484-8 -2, LA34483-0 -1, LA34481-4 0, LA34480-6 +1, LA34479-8 +2; input also valueInteger
//     -2..2); effectiveDateTime <-> effective_time (output falls back to said_time, then the update
//     time: PCO requires it); note[0].text <-> note.
// List: status current (input: current; entered-in-error refused), mode working, title
//   "What matters most to me", code LOINC 81340-2 (required on input), orderedBy list-order#priority,
//   entry[i].item <-> items[i] ("Goal/<id>"; whatMatters and preferences are "Observation/<id>").
//   On input the references are returned raw in Incoming::list_item_refs (see mapping.h).
// Retracted versions: Goal.lifecycleStatus, Observation.status and List.status are
//   "entered-in-error".
// Provenance: see mapping_provenance.cc.
// Narrative: every resource's text also says who said it ("Said by", "Scored by" for a
//   GoalScore): the patient, name (relationship), name (practitioner id), or "not stated".
// Not mapped from FHIR: recorded_by and channel (the caller sets them); Goal has no FHIR element for
//   said_time or encounter (their Provenance shows said_time as occurredDateTime).
//
// ============================================================================
// 3. What survives a round trip: extra_json
// ============================================================================
// Specified at the top of mapping_kept.cc, which implements it.
//
// ============================================================================
// 4. Errors
// ============================================================================
// FromFhir: INVALID_ARGUMENT with one violation per problem, field = the FHIR
// path ("Goal.note[1].time", "Observation.component[2].valueTime",
// "resourceType"). Domain violations (e.g. "goal.description") map to FHIR
// paths with FhirPathFor. ToFhir/ProvenanceOf: DATA_LOSS when the stored
// record or its extras do not parse.
//
// This file holds the entry points (FromFhir, ToFhir, FhirTypeOf,
// RetractReasonOf) and meta.profile; the parts are listed in
// mapping_internal.h.
#include "fhir/mapping.h"

#include <algorithm>
#include <utility>

#include "absl/strings/str_cat.h"
#include "common/status.h"
#include "domain/fhir_types.h"
#include "fhir/elements.h"
#include "fhir/mapping_codes.h"
#include "fhir/mapping_internal.h"
#include "fhir/patient_mapping.h"

namespace wmty::fhir {

namespace {

using internal::AddUngrouped;
using internal::Decode;
using internal::GenContext;
using internal::GenerateBody;
using internal::KeptElements;
using internal::MergeKept;
using internal::Narrative;
using internal::NarrativeOf;
using internal::Parsed;
using internal::ParseResource;
using internal::PruneContained;
using internal::RetractReasonOfResource;
using json::Member;
using json::Str;
using json::StringMember;
using json::Value;

std::vector<absl::string_view> ProfilesOf(storage::Kind kind, const AnyResource& r, const Value& resource) {
  switch (kind) {
    case storage::GOAL: {
      const auto& g = std::get<v1::Goal>(r);
      std::vector<absl::string_view> out = {codes::kUsCoreGoal};
      const bool personal =
          std::find(g.categories().begin(), g.categories().end(), v1::PERSONAL_HEALTH_GOAL) != g.categories().end();
      const Value* by = Member(resource, "expressedBy");
      const Value* subject = Member(resource, "subject");
      if (g.provenance().said_by().kind() == v1::Speaker::PATIENT && personal && by != nullptr && subject != nullptr &&
          *by == *subject) {
        out.push_back(codes::kAdiPersonalGoal);
      }
      bool gas = false;
      if (const Value* ext = Member(resource, "extension"); ext != nullptr && ext->IsArray()) {
        for (const Value& e : ext->GetArray()) {
          if (StringMember(e, "url").value_or("") == codes::kPcoGasScalingExtension) gas = true;
        }
      }
      if (gas && Member(resource, "startDate") != nullptr) out.push_back(codes::kPcoGasGoal);
      return out;
    }
    case storage::WHAT_MATTERS:
      return {codes::kUsCoreCareExperiencePreference};
    case storage::PREFERENCE:
      return {std::get<v1::Preference>(r).kind() == v1::TREATMENT_INTERVENTION
                  ? codes::kUsCoreTreatmentInterventionPreference
                  : codes::kUsCoreCareExperiencePreference};
    case storage::GOAL_SCORE:
      return {codes::kPcoGasScore};
    case storage::PRIORITIES:
      return {codes::kAdiPersonalPrioritiesOrganizer};
    default:
      return {};
  }
}

// FromFhir of a resource whose type is checked and whose elements are all R4's.
absl::StatusOr<Incoming> MapResource(absl::string_view resource_type, const rapidjson::Value& resource) {
  FieldViolations v;
  for (absl::string_view refused : {"modifierExtension", "implicitRules"}) {
    if (Member(resource, refused) != nullptr) {
      v.Add(absl::StrCat(resource_type, ".", refused),
            "not supported: it would change the meaning of the resource in a way this server cannot keep");
    }
  }
  Parsed parsed = ParseResource(resource_type, resource, &v);
  if (!v.empty()) return v.ToStatus();

  Incoming in;
  in.kind = parsed.kind;
  in.patient_id = parsed.patient_id;
  in.list_item_refs = parsed.item_refs;

  // Section 3: what to keep.
  rapidjson::Document doc;
  auto& a = doc.GetAllocator();
  Value generated;
  GenContext ctx{parsed.patient_id, 0};
  GenerateBody(parsed.kind, parsed.resource, ctx, parsed.kind == storage::PRIORITIES ? &parsed.item_refs : nullptr,
               &generated, a);
  Value extra = KeptElements(parsed.kind, resource, generated, a);
  if (!extra.ObjectEmpty()) in.extra_json = json::Serialize(extra);
  in.resource = std::move(parsed.resource);
  return in;
}

}  // namespace

absl::StatusOr<Incoming> FromFhir(absl::string_view resource_type, const rapidjson::Value& resource,
                                  UnknownElementPolicy policy) {
  if (!domain::IsChartType(resource_type)) {
    return InvalidField("resourceType", "not supported here: Goal, Observation or List");
  }
  if (!resource.IsObject()) return InvalidField("resourceType", "the body must be a JSON object (a FHIR resource)");
  if (StringMember(resource, "resourceType").value_or("") != resource_type) {
    return InvalidField("resourceType", absl::StrCat("must be ", resource_type));
  }
  // Section 3: an element R4 does not define is never kept.
  const std::vector<UnknownElement> unknown = UnknownElements(resource_type, resource);
  if (unknown.empty()) return MapResource(resource_type, resource);
  const size_t listed = std::min(unknown.size(), kMaxUnknownElementsListed);
  if (policy == UnknownElementPolicy::kRefuse) {
    FieldViolations v;
    for (size_t i = 0; i < listed; ++i) {
      v.Add(unknown[i].path, absl::StrCat(kUnknownElement, " of FHIR R4 ", resource_type,
                                          ": remove it, or send what it means as an extension"));
    }
    if (unknown.size() > listed) {
      v.Add(std::string(resource_type), absl::StrCat(kUnknownElement, "s: ", unknown.size() - listed,
                                                     " more that FHIR R4 does not define (not listed)"));
    }
    return v.ToStatus();
  }
  rapidjson::Document cleaned;
  cleaned.CopyFrom(resource, cleaned.GetAllocator());
  RemoveElements(unknown, cleaned);
  auto in = MapResource(resource_type, cleaned);
  if (!in.ok()) return in;
  in->dropped_count = unknown.size();
  for (size_t i = 0; i < listed; ++i) in->dropped_elements.push_back(unknown[i].path);
  return in;
}

absl::Status ToFhir(const storage::Record& record, rapidjson::Value* out, Allocator& alloc) {
  if (record.kind() == storage::PATIENT) return PatientToFhir(record, out, alloc);
  auto resource = Decode(record);
  if (!resource.ok()) return resource.status();
  const storage::Kind kind = record.kind();
  rapidjson::Document scratch;
  auto& a = scratch.GetAllocator();
  GenContext ctx{record.patient_id(), record.update_time_micros()};
  Value generated;
  GenerateBody(kind, *resource, ctx, nullptr, &generated, a);

  rapidjson::Document extra_doc;
  absl::StatusOr<const Value*> stored = json::ParseStoredElements(record.fhir_extra_json(), &extra_doc);
  if (!stored.ok()) return stored.status();
  const Value* extra = *stored;
  Value body;
  if (extra != nullptr) {
    MergeKept(kind, generated, *extra, ctx, &body, a);
  } else {
    body.CopyFrom(generated, a);
  }

  out->SetObject();
  out->AddMember("resourceType", Str(FhirTypeOf(kind), alloc), alloc);
  out->AddMember("id", Str(domain::FhirId(record), alloc), alloc);
  out->AddMember("meta", Value(rapidjson::kObjectType), alloc);
  out->AddMember("text", Value(rapidjson::kObjectType), alloc);
  for (auto it = body.MemberBegin(); it != body.MemberEnd(); ++it) {
    out->AddMember(Value(it->name, alloc), Value(it->value, alloc), alloc);
  }
  if (extra != nullptr) AddUngrouped(kind, *extra, out, alloc);
  if (record.retracted()) {
    json::Set(*out, kind == storage::GOAL ? "lifecycleStatus" : "status", Str("entered-in-error", alloc), alloc);
  }
  // Versions stored before unknown elements were refused may keep some:
  // they are not emitted (only kept elements can hold them).
  if (extra != nullptr) RemoveElements(UnknownElements(FhirTypeOf(kind), *out), *out);
  PruneContained(*out);
  SortElements(FhirTypeOf(kind), *out, alloc);

  Value meta(rapidjson::kObjectType);
  meta.AddMember("versionId", Str(absl::StrCat(record.version()), alloc), alloc);
  meta.AddMember("lastUpdated", Str(json::FormatInstant(record.update_time_micros()), alloc), alloc);
  Value profiles(rapidjson::kArrayType);
  for (absl::string_view p : ProfilesOf(kind, *resource, *out)) profiles.PushBack(Str(p, alloc), alloc);
  meta.AddMember("profile", profiles, alloc);
  *json::MutableMember(*out, "meta") = std::move(meta);
  *json::MutableMember(*out, "text") = Narrative(NarrativeOf(kind, *resource, *out, record.retracted()), alloc);
  return absl::OkStatus();
}

absl::StatusOr<std::string> RetractReasonOf(const storage::Record& record) {
  if (!record.retracted()) return std::string();
  auto resource = Decode(record);
  if (!resource.ok()) return resource.status();
  return RetractReasonOfResource(*resource);
}

}  // namespace wmty::fhir
