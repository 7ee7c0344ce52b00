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
// Provenance (ProvenanceOf): target = <Type>/<id>/_history/<version>; recorded = update time;
//   occurredDateTime = said_time; reason[0].text = retract_reason (a deletion's, when given);
//   activity v3-DataOperation CREATE (version 1), UPDATE, DELETE (retracted); agent author
//   (provenance-participant-type) = Practitioner/<recorded_by.practitioner_id> with display_name,
//   role as agent.role text and onBehalfOf (ProvenanceOptions); when recorded on behalf of someone
//   (provenance.on_behalf_of), that user is the author and recorded_by (the authenticated caller)
//   an agent of type enterer, both as above (US Core types onBehalfOf as an Organization, so the
//   user cannot go there); agent informant = the speaker (Patient, a contained RelatedPerson
//   "#speaker", or Practitioner/<id> with onBehalfOf as for the author); no informant when NOT_STATED.
// Narrative: every resource's text also says who said it ("Said by", "Scored by" for a
//   GoalScore): the patient, name (relationship), name (practitioner id), or "not stated".
// Not mapped from FHIR: recorded_by and channel (the caller sets them); Goal has no FHIR element for
//   said_time or encounter (their Provenance shows said_time as occurredDateTime).
//
// ============================================================================
// 3. What survives a round trip: extra_json
// ============================================================================
// Mapped elements are handled in groups: an element together with its
// primitive-extension sibling and its other choice types ("startDate",
// "_startDate", "startCodeableConcept" are one group; "entry" and
// "emptyReason" are one group). On input:
//   * first, every member name, at the top and inside every element below it,
//     is checked against FHIR R4 (elements.h: the element tables of Goal,
//     Observation, List, a contained RelatedPerson or Practitioner, and the
//     datatypes inside them). One R4 does not define ("foo", "subject.foo",
//     "component[0].bar") is refused with its path (UnknownElementPolicy
//     kRefuse, the default), or dropped before mapping (kDrop, wmtyd's
//     --fhir_unknown_elements=drop): it is never kept, so never served;
//   * a member that belongs to no group (extension, identifier, basedOn,
//     derivedFrom, ...) is kept verbatim in extra_json;
//   * a group is kept verbatim (all its members as given) when what we would
//     generate from the mapped model differs from what came in: extra codings,
//     extensions, a display, a text, a note's authorReference, more targets,
//     other addresses, foreign components... The rule is "keep the entire
//     original of every element we only partly understand";
//   * resourceType, id, meta and text are never kept; modifierExtension and
//     implicitRules are refused (we cannot honour what they change).
// On output the model is generated, then every kept group replaces its
// generated counterpart if the kept original still maps to what the model
// holds now (checked by mapping the candidate resource back and comparing the
// generated result): first all kept groups together; when that fails, kept
// contained resources are all kept (our "speaker" regenerated) and every other
// group is checked on its own. A group changed since through the gRPC face
// (e.g. new categories) is generated from the model instead, losing that
// element's FHIR-only parts; the other groups stay as they came. Contained
// resources no longer referenced are dropped (dom-3). Members that belong to
// no group are added as they came; elements R4 does not define (kept by
// versions stored before they were refused) are left out. Output elements
// are in R4 order. JSON numbers go through RapidJSON (double), so 1.50 comes
// back as 1.5.
//
// ============================================================================
// 4. Errors
// ============================================================================
// FromFhir: INVALID_ARGUMENT with one violation per problem, field = the FHIR
// path ("Goal.note[1].time", "Observation.component[2].valueTime",
// "resourceType"). Domain violations (e.g. "goal.description") map to FHIR
// paths with FhirPathFor. ToFhir/ProvenanceOf: DATA_LOSS when the stored
// record or its extras do not parse.
#include "fhir/mapping.h"

#include <algorithm>
#include <functional>
#include <set>
#include <utility>

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_replace.h"
#include "absl/strings/strip.h"
#include "common/status.h"
#include "domain/fhir_types.h"
#include "domain/names.h"
#include "fhir/elements.h"
#include "fhir/mapping_codes.h"
#include "fhir/mapping_json.h"
#include "fhir/patient_mapping.h"

namespace wmty::fhir {

namespace {

using json::Member;
using json::Str;
using json::StringMember;
using json::StringOf;
using json::Value;

constexpr absl::string_view kSpeakerId = "speaker";
constexpr absl::string_view kListTitle = "What matters most to me";

// ---------------------------------------------------------------------------
// Groups of mapped elements (section 3).

struct Group {
  absl::string_view name;
  std::vector<absl::string_view> members;
};

const std::vector<Group>& GoalGroups() {
  static const auto* g = new std::vector<Group>{
      {"contained", {"contained"}},
      {"lifecycleStatus", {"lifecycleStatus", "_lifecycleStatus"}},
      {"achievementStatus", {"achievementStatus"}},
      {"category", {"category"}},
      {"priority", {"priority"}},
      {"description", {"description"}},
      {"subject", {"subject"}},
      {"start", {"startDate", "_startDate", "startCodeableConcept"}},
      {"target", {"target"}},
      {"expressedBy", {"expressedBy"}},
      {"addresses", {"addresses"}},
      {"note", {"note"}},
  };
  return *g;
}

const std::vector<Group>& ObservationGroups() {
  static const auto* g = new std::vector<Group>{
      {"contained", {"contained"}},
      {"status", {"status", "_status"}},
      {"category", {"category"}},
      {"code", {"code"}},
      {"subject", {"subject"}},
      {"focus", {"focus"}},
      {"encounter", {"encounter"}},
      {"effective",
       {"effectiveDateTime", "_effectiveDateTime", "effectivePeriod", "effectiveTiming", "effectiveInstant",
        "_effectiveInstant"}},
      {"performer", {"performer"}},
      {"value",
       {"valueQuantity", "valueCodeableConcept", "valueString", "_valueString", "valueBoolean", "_valueBoolean",
        "valueInteger", "_valueInteger", "valueRange", "valueRatio", "valueSampledData", "valueTime", "_valueTime",
        "valueDateTime", "_valueDateTime", "valuePeriod", "dataAbsentReason"}},
      {"note", {"note"}},
      {"component", {"component"}},
  };
  return *g;
}

const std::vector<Group>& ListGroups() {
  static const auto* g = new std::vector<Group>{
      {"contained", {"contained"}}, {"status", {"status", "_status"}},
      {"mode", {"mode", "_mode"}},  {"title", {"title", "_title"}},
      {"code", {"code"}},           {"subject", {"subject"}},
      {"encounter", {"encounter"}}, {"source", {"source"}},
      {"orderedBy", {"orderedBy"}}, {"entry", {"entry", "emptyReason"}},
  };
  return *g;
}

const std::vector<Group>& GroupsFor(storage::Kind kind) {
  switch (kind) {
    case storage::GOAL:
      return GoalGroups();
    case storage::PRIORITIES:
      return ListGroups();
    default:
      return ObservationGroups();
  }
}

const Group* GroupOf(storage::Kind kind, absl::string_view member) {
  for (const Group& g : GroupsFor(kind)) {
    for (absl::string_view m : g.members) {
      if (m == member) return &g;
    }
  }
  return nullptr;
}

bool IsHeader(absl::string_view name) {
  return name == "resourceType" || name == "id" || name == "meta" || name == "text";
}

// The members of group `g` present in object `o`, as an object (copied).
Value GroupValue(const Value& o, const Group& g, json::Allocator& alloc) {
  Value out(rapidjson::kObjectType);
  for (absl::string_view m : g.members) {
    if (const Value* v = Member(o, m)) out.AddMember(Str(m, alloc), Value(*v, alloc), alloc);
  }
  return out;
}

// Replaces the members of group `g` in `o` with those of `with` (an object).
void ReplaceGroup(Value& o, const Group& g, const Value& with, json::Allocator& alloc) {
  for (absl::string_view m : g.members) json::Remove(o, m);
  for (auto it = with.MemberBegin(); it != with.MemberEnd(); ++it) {
    o.AddMember(Value(it->name, alloc), Value(it->value, alloc), alloc);
  }
}

// ---------------------------------------------------------------------------
// References.

// "Type/<id>" -> id (FHIR id rule), else nullopt.
std::optional<std::string> RefId(absl::string_view ref, absl::string_view type) {
  if (!absl::ConsumePrefix(&ref, type) || !absl::ConsumePrefix(&ref, "/")) return std::nullopt;
  if (!domain::IsValidId(ref)) return std::nullopt;
  return std::string(ref);
}

std::string IdOfName(absl::string_view name) {
  auto parsed = domain::ParseName(name, "name");
  return parsed.ok() ? parsed->id : std::string();
}

// FHIR type and id of an item name (priorities, goal links).
std::string RefOfName(absl::string_view name) {
  auto parsed = domain::ParseName(name, "name");
  if (!parsed.ok()) return "";
  switch (parsed->kind) {
    case storage::GOAL:
      return absl::StrCat("Goal/", parsed->id);
    case storage::PRIORITIES:
      return absl::StrCat("List/", parsed->patient_id);
    default:
      return absl::StrCat("Observation/", parsed->id);
  }
}

// Collects every Reference.reference string starting with '#' in `v`.
void CollectLocalRefs(const Value& v, std::set<std::string>* out) {
  if (v.IsObject()) {
    for (auto it = v.MemberBegin(); it != v.MemberEnd(); ++it) {
      absl::string_view name(it->name.GetString(), it->name.GetStringLength());
      if (name == "reference" && it->value.IsString()) {
        absl::string_view ref = StringOf(it->value);
        if (absl::StartsWith(ref, "#")) out->insert(std::string(ref.substr(1)));
      } else {
        CollectLocalRefs(it->value, out);
      }
    }
  } else if (v.IsArray()) {
    for (const Value& e : v.GetArray()) CollectLocalRefs(e, out);
  }
}

// Drops contained resources no element refers to (dom-3), keeping those
// referred to by other kept contained resources.
void PruneContained(Value& resource) {
  Value* contained = json::MutableMember(resource, "contained");
  if (contained == nullptr) return;
  if (!contained->IsArray()) return;
  std::set<std::string> refs;
  for (auto it = resource.MemberBegin(); it != resource.MemberEnd(); ++it) {
    if (absl::string_view(it->name.GetString(), it->name.GetStringLength()) == "contained") continue;
    CollectLocalRefs(it->value, &refs);
  }
  std::vector<bool> keep(contained->Size(), false);
  bool changed = true;
  while (changed) {
    changed = false;
    for (rapidjson::SizeType i = 0; i < contained->Size(); ++i) {
      if (keep[i]) continue;
      auto id = StringMember((*contained)[i], "id");
      if (id && refs.count(std::string(*id)) > 0) {
        keep[i] = true;
        changed = true;
        CollectLocalRefs((*contained)[i], &refs);
      }
    }
  }
  for (rapidjson::SizeType i = contained->Size(); i > 0; --i) {
    if (!keep[i - 1]) contained->Erase(contained->Begin() + (i - 1));
  }
  if (contained->Empty()) json::Remove(resource, "contained");
}

// ---------------------------------------------------------------------------
// Parsing (FHIR -> model). Collects violations; never stops at the first.

struct Parsed {
  storage::Kind kind = storage::KIND_UNSPECIFIED;
  std::string patient_id;
  AnyResource resource;
  std::vector<std::string> item_refs;
};

class Parser {
 public:
  Parser(absl::string_view type, const Value& json, FieldViolations* v) : type_(type), json_(json), v_(v) {}

  void Fail(absl::string_view path, std::string message) {
    v_->Add(absl::StrCat(type_, ".", path), std::move(message));
  }

  // subject.reference -> patient id; identifier -> PatientRef.
  std::string Subject(v1::PatientRef* patient) {
    const Value* subject = Member(json_, "subject");
    auto ref = subject != nullptr ? StringMember(*subject, "reference") : std::nullopt;
    if (!ref) {
      Fail("subject", "required: a reference to the patient (Patient/<id>)");
      return "";
    }
    auto id = RefId(*ref, "Patient");
    if (!id) {
      Fail("subject.reference", "must be Patient/<id> (id: 1-64 characters of A-Z a-z 0-9 - .)");
      return "";
    }
    patient->set_id(*id);
    if (const Value* identifier = Member(*subject, "identifier")) {
      patient->set_identifier_system(std::string(StringMember(*identifier, "system").value_or("")));
      patient->set_identifier_value(std::string(StringMember(*identifier, "value").value_or("")));
    }
    patient_id_ = *id;
    return *id;
  }

  // A reference to who said it. Returns false when `ref` names neither the
  // patient, a related person nor a practitioner (the caller decides whether
  // that is an error, see NamesTypeOf).
  bool Speaker(const Value& ref, absl::string_view path, v1::Speaker* out) {
    auto r = StringMember(ref, "reference");
    if (!r) return false;
    if (absl::StartsWith(*r, "Practitioner/")) {
      auto id = RefId(*r, "Practitioner");
      if (!id) {
        Fail(path, "must be Practitioner/<id> (id: 1-64 characters of A-Z a-z 0-9 - .)");
        return true;
      }
      out->set_kind(v1::Speaker::PRACTITIONER);
      out->set_practitioner_id(*id);
      out->set_name(std::string(StringMember(ref, "display").value_or("")));
      return true;
    }
    if (absl::StartsWith(*r, "Patient/")) {
      auto id = RefId(*r, "Patient");
      if (!id || *id != patient_id_) {
        Fail(path, "a patient who said it must be the subject patient (Patient/<subject id>)");
        return true;
      }
      out->set_kind(v1::Speaker::PATIENT);
      return true;
    }
    if (absl::StartsWith(*r, "RelatedPerson/")) {
      out->set_kind(v1::Speaker::RELATED_PERSON);
      out->set_name(std::string(StringMember(ref, "display").value_or("")));
      return true;
    }
    if (absl::StartsWith(*r, "#")) {
      const Value* person = Contained(r->substr(1));
      if (person == nullptr) {
        Fail(path, absl::StrCat("no contained resource with id \"", r->substr(1), "\""));
        return true;
      }
      if (StringMember(*person, "resourceType").value_or("") != "RelatedPerson") return false;
      out->set_kind(v1::Speaker::RELATED_PERSON);
      out->set_name(PersonName(*person));
      out->set_relationship(Relationship(*person));
      return true;
    }
    return false;
  }

  // Whether `ref` is a reference the model does not map but FHIR allows here:
  // one without a literal reference (display or identifier only), or one to
  // a resource of one of `types` (also a contained one). Such a reference is
  // kept as given (section 3) and the speaker is not stated.
  bool NamesTypeOf(const Value& ref, std::initializer_list<absl::string_view> types) const {
    auto r = StringMember(ref, "reference");
    if (!r) return ref.IsObject();
    absl::string_view type;
    if (absl::StartsWith(*r, "#")) {
      const Value* contained = Contained(r->substr(1));
      if (contained == nullptr) return false;
      type = StringMember(*contained, "resourceType").value_or("");
    } else {
      absl::string_view path = *r;
      const size_t history = path.find("/_history/");
      if (history != absl::string_view::npos) path = path.substr(0, history);
      const size_t last = path.rfind('/');
      if (last == absl::string_view::npos) return false;
      path = path.substr(0, last);
      type = path.substr(path.rfind('/') + 1);
    }
    return std::find(types.begin(), types.end(), type) != types.end();
  }

  const Value* Contained(absl::string_view id) const {
    const Value* contained = Member(json_, "contained");
    if (contained == nullptr || !contained->IsArray()) return nullptr;
    for (const Value& r : contained->GetArray()) {
      if (StringMember(r, "id").value_or("") == id) return &r;
    }
    return nullptr;
  }

  static std::string PersonName(const Value& person) {
    const Value* names = Member(person, "name");
    if (names == nullptr || !names->IsArray() || names->Empty()) return "";
    const Value& name = (*names)[0];
    if (auto text = StringMember(name, "text"); text && !text->empty()) return std::string(*text);
    std::vector<std::string> parts;
    if (const Value* given = Member(name, "given"); given != nullptr && given->IsArray()) {
      for (const Value& g : given->GetArray()) {
        if (g.IsString()) parts.emplace_back(StringOf(g));
      }
    }
    if (auto family = StringMember(name, "family")) parts.emplace_back(*family);
    return absl::StrJoin(parts, " ");
  }

  static std::string Relationship(const Value& person) {
    const Value* rels = Member(person, "relationship");
    if (rels == nullptr || !rels->IsArray() || rels->Empty()) return "";
    const Value& rel = (*rels)[0];
    if (auto text = StringMember(rel, "text"); text && !text->empty()) return std::string(*text);
    const Value* codings = Member(rel, "coding");
    if (codings == nullptr || !codings->IsArray() || codings->Empty()) return "";
    const Value& c = (*codings)[0];
    if (auto display = StringMember(c, "display"); display && !display->empty()) return std::string(*display);
    return std::string(StringMember(c, "code").value_or(""));
  }

  // A dateTime member into `out`; false (with a violation) when malformed.
  bool DateTime(const Value& o, absl::string_view member, absl::string_view path, google::protobuf::Timestamp* out) {
    const Value* v = Member(o, member);
    if (v == nullptr) return false;
    if (!v->IsString() || !json::ParseDateTime(StringOf(*v), out)) {
      Fail(path, "must be a FHIR dateTime, e.g. 2025-02-15T15:15:00Z");
      return false;
    }
    return true;
  }

  // Codings of a CodeableConcept (empty when absent).
  static std::vector<const Value*> Codings(const Value* cc) {
    std::vector<const Value*> out;
    if (cc == nullptr) return out;
    const Value* codings = Member(*cc, "coding");
    if (codings == nullptr || !codings->IsArray()) return out;
    for (const Value& c : codings->GetArray()) {
      if (c.IsObject()) out.push_back(&c);
    }
    return out;
  }
  static bool Is(const Value& coding, absl::string_view system, absl::string_view code) {
    return StringMember(coding, "system").value_or("") == system && StringMember(coding, "code").value_or("") == code;
  }
  static bool HasCoding(const Value* cc, absl::string_view system, absl::string_view code) {
    for (const Value* c : Codings(cc)) {
      if (Is(*c, system, code)) return true;
    }
    return false;
  }

  // The value of the first coding of `system` in a CodeableConcept member,
  // looked up in `table`; an unknown code of that system is a violation.
  std::optional<int> Bound(absl::string_view member, absl::string_view system, std::span<const codes::Code> table) {
    for (const Value* c : Codings(Member(json_, member))) {
      if (StringMember(*c, "system").value_or("") != system) continue;
      absl::string_view code = StringMember(*c, "code").value_or("");
      if (const codes::Code* row = codes::ByCode(table, code)) return row->value;
      Fail(member, absl::StrCat("unknown code \"", code, "\" of ", system));
      return std::nullopt;
    }
    return std::nullopt;
  }

  const Value& json() const { return json_; }
  const std::string& patient_id() const { return patient_id_; }

 private:
  absl::string_view type_;
  const Value& json_;
  FieldViolations* v_;
  std::string patient_id_;
};

v1::Provenance* ProvenanceOfAny(AnyResource& r) {
  return std::visit([](auto& m) { return m.mutable_provenance(); }, r);
}

// What the model stores as a Goal's description: description.text, else (a
// goal coded only, as US Core allows) the first coding's display, else its
// code. The codings themselves are kept (section 3) and returned as they came.
std::optional<std::string> GoalDescription(const Value* description) {
  if (description == nullptr) return std::nullopt;
  if (auto text = StringMember(*description, "text")) return std::string(*text);
  for (const Value* c : Parser::Codings(description)) {
    if (auto display = StringMember(*c, "display"); display && !display->empty()) return std::string(*display);
  }
  for (const Value* c : Parser::Codings(description)) {
    if (auto code = StringMember(*c, "code"); code && !code->empty()) return std::string(*code);
  }
  return std::nullopt;
}

void ParseGoal(Parser& p, Parsed* out) {
  v1::Goal g;
  const Value& j = p.json();
  const std::string pid = p.Subject(g.mutable_patient());

  if (auto status = StringMember(j, "lifecycleStatus")) {
    if (*status == "entered-in-error") {
      p.Fail("lifecycleStatus", "entered-in-error is not set by update: retract the goal with DELETE");
    } else if (const codes::Code* row = codes::ByCode(codes::kGoalLifecycle, *status)) {
      g.set_lifecycle_status(static_cast<v1::GoalLifecycleStatus>(row->value));
    } else {
      p.Fail("lifecycleStatus", absl::StrCat("unknown goal-status code \"", *status, "\""));
    }
  } else {
    p.Fail("lifecycleStatus",
           "required: a goal-status code (proposed, planned, accepted, active, on-hold, completed, cancelled or "
           "rejected)");
  }
  if (auto v = p.Bound("achievementStatus", codes::kGoalAchievement, codes::kGoalAchievementCodes)) {
    g.set_achievement_status(static_cast<v1::GoalAchievementStatus>(*v));
  }
  if (auto v = p.Bound("priority", codes::kGoalPriority, codes::kGoalPriorityCodes)) {
    g.set_priority(static_cast<v1::GoalPriority>(*v));
  }
  if (const Value* categories = Member(j, "category"); categories != nullptr && categories->IsArray()) {
    std::set<int> seen;
    for (rapidjson::SizeType i = 0; i < categories->Size(); ++i) {
      for (const Value* c : Parser::Codings(&(*categories)[i])) {
        int value = 0;
        if (Parser::Is(*c, codes::kLoinc, codes::kLoincPersonalHealthGoal)) {
          value = v1::PERSONAL_HEALTH_GOAL;
        } else if (StringMember(*c, "system").value_or("") == codes::kGoalCategory) {
          absl::string_view code = StringMember(*c, "code").value_or("");
          const codes::Code* row = codes::ByCode(codes::kGoalCategoryCodes, code);
          if (row == nullptr) {
            p.Fail(absl::StrCat("category[", i, "]"), absl::StrCat("unknown goal-category code \"", code, "\""));
            continue;
          }
          value = row->value;
        }
        if (value != 0 && seen.insert(value).second) g.add_categories(static_cast<v1::GoalCategory>(value));
      }
    }
  }
  if (auto description = GoalDescription(Member(j, "description"))) {
    g.set_description(*description);
  } else {
    p.Fail("description.text",
           "required: the goal in the patient's own words (description.text), or a coded goal "
           "(description.coding with a display or code)");
  }
  if (auto start = StringMember(j, "startDate")) g.set_start_date(std::string(*start));
  if (const Value* targets = Member(j, "target"); targets != nullptr && targets->IsArray()) {
    for (const Value& t : targets->GetArray()) {
      if (auto due = StringMember(t, "dueDate")) {
        g.set_target_date(std::string(*due));
        break;
      }
    }
  }
  if (const Value* by = Member(j, "expressedBy")) {
    if (!p.Speaker(*by, "expressedBy", g.mutable_provenance()->mutable_said_by()) &&
        !p.NamesTypeOf(*by, {"PractitionerRole"})) {
      p.Fail("expressedBy",
             "must be the patient (Patient/<id>), a related person (a contained RelatedPerson or "
             "RelatedPerson/<id>), a practitioner (Practitioner/<id>) or a PractitionerRole; or leave expressedBy "
             "out when the source did not say who expressed the goal");
    }
  }
  if (const Value* addresses = Member(j, "addresses"); addresses != nullptr && addresses->IsArray()) {
    for (rapidjson::SizeType i = 0; i < addresses->Size(); ++i) {
      auto ref = StringMember((*addresses)[i], "reference");
      if (!ref || !absl::StartsWith(*ref, "Observation/")) continue;
      auto id = RefId(*ref, "Observation");
      if (!id) {
        p.Fail(absl::StrCat("addresses[", i, "].reference"), "must be Observation/<id>");
        continue;
      }
      g.add_what_matters(domain::FormatName(storage::WHAT_MATTERS, pid, *id));
    }
  }
  if (const Value* notes = Member(j, "note"); notes != nullptr && notes->IsArray()) {
    for (rapidjson::SizeType i = 0; i < notes->Size(); ++i) {
      const Value& n = (*notes)[i];
      const std::string path = absl::StrCat("note[", i, "]");
      v1::Note* note = g.add_notes();
      if (auto t = StringMember(n, "text")) {
        note->set_text(std::string(*t));
      } else {
        p.Fail(absl::StrCat(path, ".text"), "required: the note's text (leave out a note without text)");
      }
      if (auto author = StringMember(n, "authorString")) {
        note->set_author(std::string(*author));
      } else if (const Value* ref = Member(n, "authorReference")) {
        if (auto display = StringMember(*ref, "display"); display && !display->empty()) {
          note->set_author(std::string(*display));
        } else if (auto r = StringMember(*ref, "reference")) {
          note->set_author(std::string(r->substr(r->rfind('/') + 1)));
        }
      }
      if (Member(n, "time") != nullptr) {
        google::protobuf::Timestamp t;
        if (p.DateTime(n, "time", absl::StrCat(path, ".time"), &t)) *note->mutable_time() = t;
      }
    }
  }
  out->kind = storage::GOAL;
  out->patient_id = pid;
  out->resource = std::move(g);
}

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

void ParseComponents(Parser& p, storage::Kind kind, AnyResource* resource) {
  const Value* components = Member(p.json(), "component");
  if (components == nullptr || !components->IsArray()) return;
  const std::string ours(kCodeSystemUrl);
  // Which Preference detail the components describe (at most one).
  std::string detail;
  auto use_detail = [&](absl::string_view name, const std::string& path) {
    if (detail.empty()) detail = std::string(name);
    if (detail == name) return true;
    p.Fail(path, absl::StrCat("components of two details (", detail, " and ", name, "): a preference has one"));
    return false;
  };
  for (rapidjson::SizeType i = 0; i < components->Size(); ++i) {
    const Value& comp = (*components)[i];
    std::string code;
    for (const Value* c : Parser::Codings(Member(comp, "code"))) {
      if (StringMember(*c, "system").value_or("") == ours) code = std::string(StringMember(*c, "code").value_or(""));
    }
    if (code.empty()) continue;  // not ours: kept with the element
    const std::string path = absl::StrCat("component[", i, "]");
    auto string_value = [&](absl::string_view what) -> std::optional<std::string> {
      auto s = StringMember(comp, "valueString");
      if (!s) p.Fail(absl::StrCat(path, ".valueString"), absl::StrCat("required for ", what));
      return s ? std::optional<std::string>(std::string(*s)) : std::nullopt;
    };
    // The code of the first coding of `system` in valueCodeableConcept.
    auto coded_value = [&](absl::string_view system) -> std::optional<std::string> {
      for (const Value* c : Parser::Codings(Member(comp, "valueCodeableConcept"))) {
        if (StringMember(*c, "system").value_or("") == system) {
          return std::string(StringMember(*c, "code").value_or(""));
        }
      }
      p.Fail(absl::StrCat(path, ".valueCodeableConcept"), absl::StrCat("required: a coding of ", system));
      return std::nullopt;
    };
    auto unknown = [&](absl::string_view value) {
      p.Fail(absl::StrCat(path, ".valueCodeableConcept"), absl::StrCat("unknown code \"", value, "\""));
    };
    if (kind == storage::WHAT_MATTERS) {
      auto& wm = std::get<v1::WhatMatters>(*resource);
      if (code == codes::kComponentPrompt.code) {
        if (auto s = string_value("a prompt")) wm.set_prompt(*s);
      } else if (code == codes::kComponentLifeDomain.code) {
        if (auto v = coded_value(ours)) {
          const codes::ValueConcept* row = codes::ConceptByCode(codes::kLifeDomains, *v);
          row != nullptr ? wm.add_life_domains(static_cast<v1::LifeDomain>(row->value)) : unknown(*v);
        }
      } else if (code == codes::kComponentDignity.code) {
        if (auto v = coded_value(ours)) {
          const codes::ValueConcept* row = codes::ConceptByCode(codes::kDignityElements, *v);
          row != nullptr ? wm.add_dignity_elements(static_cast<v1::DignityElement>(row->value)) : unknown(*v);
        }
      }
      continue;
    }
    if (kind != storage::PREFERENCE) continue;
    auto& pref = std::get<v1::Preference>(*resource);
    if (code == codes::kComponentChannel.code) {
      if (!use_detail("channel_ranking", path)) continue;
      if (auto v = coded_value(ours)) {
        const codes::ValueConcept* row = codes::ConceptByCode(codes::kContactChannels, *v);
        if (row != nullptr) {
          pref.mutable_channel_ranking()->add_channels(static_cast<v1::ContactChannel>(row->value));
        } else {
          unknown(*v);
        }
      }
    } else if (code == codes::kComponentDay.code || code == codes::kComponentStart.code ||
               code == codes::kComponentEnd.code || code == codes::kComponentZone.code) {
      if (!use_detail("contact_window", path)) continue;
      v1::ContactTimeWindow* w = pref.mutable_contact_window();
      if (code == codes::kComponentDay.code) {
        if (auto v = coded_value(codes::kDaysOfWeek)) {
          const codes::Code* row = codes::ByCode(codes::kDays, *v);
          row != nullptr ? w->add_days_of_week(row->value) : unknown(*v);
        }
      } else if (code == codes::kComponentZone.code) {
        if (auto s = string_value("a time zone")) w->set_time_zone(*s);
      } else {
        auto t = StringMember(comp, "valueTime");
        auto hhmm = t ? TimeOfDay(*t) : std::nullopt;
        if (!hhmm) {
          p.Fail(absl::StrCat(path, ".valueTime"), "required: a time of day hh:mm:00");
        } else if (code == codes::kComponentStart.code) {
          w->set_start_time(*hhmm);
        } else {
          w->set_end_time(*hhmm);
        }
      }
    } else if (code == codes::kComponentLanguage.code || code == codes::kComponentInterpreter.code) {
      if (!use_detail("language", path)) continue;
      v1::LanguagePreference* l = pref.mutable_language();
      if (code == codes::kComponentLanguage.code) {
        if (auto v = coded_value(codes::kBcp47)) l->set_language(*v);
      } else {
        const Value* b = Member(comp, "valueBoolean");
        if (b == nullptr || !b->IsBool()) {
          p.Fail(absl::StrCat(path, ".valueBoolean"), "required: true or false");
        } else {
          l->set_interpreter_needed(b->GetBool());
        }
      }
    } else if (code == codes::kComponentFamilyName.code || code == codes::kComponentFamilyRelationship.code ||
               code == codes::kComponentFamilyHow.code) {
      if (!use_detail("family_involvement", path)) continue;
      v1::FamilyInvolvement* f = pref.mutable_family_involvement();
      if (auto s = string_value("family involvement")) {
        if (code == codes::kComponentFamilyName.code) {
          f->set_person_name(*s);
        } else if (code == codes::kComponentFamilyRelationship.code) {
          f->set_relationship(*s);
        } else {
          f->set_how(*s);
        }
      }
    }
  }
}

void ParseObservation(Parser& p, Parsed* out) {
  const Value& j = p.json();
  v1::PatientRef patient;
  const std::string pid = p.Subject(&patient);

  if (auto status = StringMember(j, "status")) {
    if (*status == "entered-in-error") {
      p.Fail("status", "entered-in-error is not set by update: retract the observation with DELETE");
    } else if (*status != "final" && *status != "amended" && *status != "corrected") {
      p.Fail("status", "must be final, amended or corrected");
    }
  } else {
    p.Fail("status", "required: final (amended and corrected are accepted too)");
  }
  const Value* code = Member(j, "code");
  ObservationKind kind = KindOfObservation(code);
  if (kind.kind == storage::KIND_UNSPECIFIED) {
    p.Fail("code", code == nullptr ? "required: LOINC 95541-9 or 75773-2 (preferences), a goal-attainment scaling "
                                     "score code, or our what-matters code"
                                   : "not one of ours: LOINC 95541-9 or 75773-2 (preferences), a goal-attainment "
                                     "scaling score code, or our what-matters code");
    out->kind = storage::KIND_UNSPECIFIED;
    return;
  }

  google::protobuf::Timestamp effective;
  bool has_effective = false;
  if (Member(j, "effectiveDateTime") != nullptr) {
    has_effective = p.DateTime(j, "effectiveDateTime", "effectiveDateTime", &effective);
  } else if (Member(j, "effectiveInstant") != nullptr) {
    has_effective = p.DateTime(j, "effectiveInstant", "effectiveInstant", &effective);
  } else if (const Value* period = Member(j, "effectivePeriod"); period != nullptr && Member(*period, "start")) {
    has_effective = p.DateTime(*period, "start", "effectivePeriod.start", &effective);
  }
  // The patient or a related person listed as a performer said it; a
  // practitioner only when no one else is listed (the recording nurse is
  // often listed next to the patient).
  v1::Speaker said_by;
  if (const Value* performers = Member(j, "performer"); performers != nullptr && performers->IsArray()) {
    for (rapidjson::SizeType i = 0; i < performers->Size(); ++i) {
      v1::Speaker s;
      if (!p.Speaker((*performers)[i], absl::StrCat("performer[", i, "]"), &s)) continue;
      if (s.kind() != v1::Speaker::PRACTITIONER) {
        said_by = s;
        break;
      }
      if (said_by.kind() == v1::Speaker::KIND_UNSPECIFIED) said_by = s;
    }
  }
  std::string encounter;
  if (const Value* e = Member(j, "encounter")) {
    if (auto id = RefId(StringMember(*e, "reference").value_or(""), "Encounter")) encounter = *id;
  }

  switch (kind.kind) {
    case storage::WHAT_MATTERS: {
      v1::WhatMatters wm;
      *wm.mutable_patient() = patient;
      if (auto s = StringMember(j, "valueString")) {
        wm.set_statement(std::string(*s));
      } else {
        p.Fail("valueString", "required: the answer in the patient's own words");
      }
      if (has_effective) *wm.mutable_provenance()->mutable_said_time() = effective;
      out->resource = std::move(wm);
      break;
    }
    case storage::PREFERENCE: {
      v1::Preference pref;
      *pref.mutable_patient() = patient;
      pref.set_kind(static_cast<v1::PreferenceKind>(kind.subtype));
      if (auto s = StringMember(j, "valueString")) {
        pref.set_value_text(std::string(*s));
      } else if (const Value* cc = Member(j, "valueCodeableConcept")) {
        auto codings = Parser::Codings(cc);
        if (!codings.empty()) {
          v1::Coding* c = pref.mutable_value_code();
          c->set_system(std::string(StringMember(*codings[0], "system").value_or("")));
          c->set_code(std::string(StringMember(*codings[0], "code").value_or("")));
          c->set_display(std::string(StringMember(*codings[0], "display").value_or("")));
        }
        if (auto t = StringMember(*cc, "text")) pref.set_value_text(std::string(*t));
      }
      if (has_effective) *pref.mutable_provenance()->mutable_said_time() = effective;
      out->resource = std::move(pref);
      break;
    }
    case storage::GOAL_SCORE: {
      v1::GoalScore score;
      *score.mutable_patient() = patient;
      score.set_score_type(static_cast<v1::GoalScoreType>(kind.subtype));
      bool has_score = false;
      for (const Value* c : Parser::Codings(Member(j, "valueCodeableConcept"))) {
        if (StringMember(*c, "system").value_or("") != codes::kLoinc) continue;
        if (const codes::Code* row = codes::ByCode(codes::kGasAnswers, StringMember(*c, "code").value_or(""))) {
          score.set_score(row->value);
          has_score = true;
          break;
        }
      }
      if (!has_score) {
        if (const Value* i = Member(j, "valueInteger");
            i != nullptr && i->IsInt() && i->GetInt() >= -2 && i->GetInt() <= 2) {
          score.set_score(i->GetInt());
          has_score = true;
        }
      }
      if (!has_score) {
        p.Fail("valueCodeableConcept",
               "required: a LOINC answer of LL6900-6 (LA34484-8 -2, LA34483-0 -1, LA34481-4 0, LA34480-6 +1, "
               "LA34479-8 +2)");
      }
      bool has_goal = false;
      if (const Value* focus = Member(j, "focus"); focus != nullptr && focus->IsArray()) {
        for (const Value& f : focus->GetArray()) {
          if (auto id = RefId(StringMember(f, "reference").value_or(""), "Goal")) {
            score.set_goal(domain::FormatName(storage::GOAL, pid, *id));
            has_goal = true;
            break;
          }
        }
      }
      if (!has_goal) p.Fail("focus", "required: a reference to the scored goal (Goal/<id>)");
      if (has_effective) *score.mutable_effective_time() = effective;
      if (const Value* notes = Member(j, "note"); notes != nullptr && notes->IsArray() && !notes->Empty()) {
        if (auto t = StringMember((*notes)[0], "text")) score.set_note(std::string(*t));
      }
      out->resource = std::move(score);
      break;
    }
    default:
      break;
  }
  ParseComponents(p, kind.kind, &out->resource);
  if (said_by.kind() != v1::Speaker::KIND_UNSPECIFIED) *ProvenanceOfAny(out->resource)->mutable_said_by() = said_by;
  if (!encounter.empty()) ProvenanceOfAny(out->resource)->set_encounter_id(encounter);
  out->kind = kind.kind;
  out->patient_id = pid;
}

void ParseList(Parser& p, Parsed* out) {
  const Value& j = p.json();
  v1::Priorities pr;
  const std::string pid = p.Subject(pr.mutable_patient());
  if (!Parser::HasCoding(Member(j, "code"), codes::kLoinc, codes::kLoincPrioritiesList)) {
    p.Fail("code", "required: LOINC 81340-2 (goals and preferences in order of priority)");
  }
  if (auto status = StringMember(j, "status")) {
    if (*status == "entered-in-error") {
      p.Fail("status", "a patient's priorities cannot be entered in error: send an empty list instead");
    } else if (*status != "current") {
      p.Fail("status", "must be current");
    }
  } else {
    p.Fail("status", "required: current");
  }
  if (const Value* source = Member(j, "source")) {
    // R4 List.source: Practitioner | PractitionerRole | Patient | Device.
    const bool related = p.NamesTypeOf(*source, {"RelatedPerson"}) && StringMember(*source, "reference");
    if (related || (!p.Speaker(*source, "source", pr.mutable_provenance()->mutable_said_by()) &&
                    !p.NamesTypeOf(*source, {"PractitionerRole", "Device"}))) {
      p.Fail("source",
             "must be the patient (Patient/<id>), a practitioner (Practitioner/<id>), a PractitionerRole or a "
             "Device (FHIR R4 allows no RelatedPerson here); leave source out when the source did not say who "
             "ranked the list");
    }
  }
  if (const Value* e = Member(j, "encounter")) {
    if (auto id = RefId(StringMember(*e, "reference").value_or(""), "Encounter")) {
      pr.mutable_provenance()->set_encounter_id(*id);
    }
  }
  if (const Value* entries = Member(j, "entry"); entries != nullptr && entries->IsArray()) {
    for (rapidjson::SizeType i = 0; i < entries->Size(); ++i) {
      const Value* item = Member((*entries)[i], "item");
      absl::string_view ref = item != nullptr ? StringMember(*item, "reference").value_or("") : "";
      if (RefId(ref, "Goal") || RefId(ref, "Observation")) {
        out->item_refs.emplace_back(ref);
      } else {
        p.Fail(absl::StrCat("entry[", i, "].item"), "must reference Goal/<id> or Observation/<id>");
      }
    }
  }
  out->kind = storage::PRIORITIES;
  out->patient_id = pid;
  out->resource = std::move(pr);
}

// Maps the elements of a FHIR resource of `type` (already checked to be ours).
Parsed ParseResource(absl::string_view type, const Value& resource, FieldViolations* v) {
  Parser p(type, resource, v);
  Parsed out;
  if (type == "Goal") {
    ParseGoal(p, &out);
  } else if (type == "List") {
    ParseList(p, &out);
  } else {
    ParseObservation(p, &out);
  }
  return out;
}

// ---------------------------------------------------------------------------
// Generation (model -> FHIR).

struct GenContext {
  std::string patient_id;
  // Used where a time is required and the model has none (GAS effective).
  int64_t fallback_micros = 0;
};

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

Value Array1(Value v, json::Allocator& a) {
  Value arr(rapidjson::kArrayType);
  arr.PushBack(v, a);
  return arr;
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
  if (g.categories_size() > 0) {
    Value categories(rapidjson::kArrayType);
    for (int c : g.categories()) {
      if (c == v1::PERSONAL_HEALTH_GOAL) {
        categories.PushBack(
            json::Concept(json::Coding(codes::kLoinc, codes::kLoincPersonalHealthGoal, "Personal health goal", a), a),
            a);
      } else if (const codes::Code* row = codes::ByValue(codes::kGoalCategoryCodes, c)) {
        categories.PushBack(json::Concept(json::Coding(codes::kGoalCategory, row->code, row->display, a), a), a);
      }
    }
    if (!categories.Empty()) body->AddMember("category", categories, a);
  }
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
  if (g.notes_size() > 0) {
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
  for (int d : wm.life_domains()) {
    if (const codes::ValueConcept* row = codes::ConceptByValue(codes::kLifeDomains, d)) {
      components.PushBack(
          Component(codes::kComponentLifeDomain, "valueCodeableConcept", json::Concept(OurCoding(row->term, a), a), a),
          a);
    }
  }
  for (int d : wm.dignity_elements()) {
    if (const codes::ValueConcept* row = codes::ConceptByValue(codes::kDignityElements, d)) {
      components.PushBack(
          Component(codes::kComponentDignity, "valueCodeableConcept", json::Concept(OurCoding(row->term, a), a), a), a);
    }
  }
  if (!components.Empty()) body->AddMember("component", components, a);
}

std::string HhMmSs(absl::string_view hhmm) { return absl::StrCat(hhmm, ":00"); }

void GeneratePreference(const v1::Preference& pref, const GenContext& ctx, Value* body, json::Allocator& a) {
  const v1::Provenance& prov = pref.provenance();
  const bool treatment = pref.kind() == v1::TREATMENT_INTERVENTION;
  AddContainedSpeaker(prov.said_by(), ctx.patient_id, body, a);
  body->AddMember("status", "final", a);
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
  body->AddMember("subject", Subject(pref.patient(), ctx.patient_id, a), a);
  AddEncounter(prov, body, a);
  AddEffective(prov.has_said_time() ? &prov.said_time() : nullptr, body, a);
  AddPerformer(prov.said_by(), ctx.patient_id, body, a);
  if (!pref.value_code().code().empty()) {
    const v1::Coding& c = pref.value_code();
    Value cc = json::Concept(json::Coding(c.system(), c.code(), c.display(), a), a);
    if (!pref.value_text().empty()) cc.AddMember("text", Str(pref.value_text(), a), a);
    body->AddMember("valueCodeableConcept", cc, a);
  } else if (!pref.value_text().empty()) {
    body->AddMember("valueString", Str(pref.value_text(), a), a);
  }
  Value components(rapidjson::kArrayType);
  auto add_string = [&](const codes::Concept& c, const std::string& s) {
    if (!s.empty()) components.PushBack(Component(c, "valueString", Str(s, a), a), a);
  };
  switch (pref.detail_case()) {
    case v1::Preference::kChannelRanking:
      for (int ch : pref.channel_ranking().channels()) {
        if (const codes::ValueConcept* row = codes::ConceptByValue(codes::kContactChannels, ch)) {
          components.PushBack(
              Component(codes::kComponentChannel, "valueCodeableConcept", json::Concept(OurCoding(row->term, a), a), a),
              a);
        }
      }
      break;
    case v1::Preference::kContactWindow: {
      const v1::ContactTimeWindow& w = pref.contact_window();
      for (int day : w.days_of_week()) {
        if (const codes::Code* row = codes::ByValue(codes::kDays, day)) {
          components.PushBack(
              Component(codes::kComponentDay, "valueCodeableConcept",
                        json::Concept(json::Coding(codes::kDaysOfWeek, row->code, row->display, a), a), a),
              a);
        }
      }
      if (!w.start_time().empty()) {
        components.PushBack(Component(codes::kComponentStart, "valueTime", Str(HhMmSs(w.start_time()), a), a), a);
      }
      if (!w.end_time().empty()) {
        components.PushBack(Component(codes::kComponentEnd, "valueTime", Str(HhMmSs(w.end_time()), a), a), a);
      }
      add_string(codes::kComponentZone, w.time_zone());
      break;
    }
    case v1::Preference::kLanguage: {
      const v1::LanguagePreference& l = pref.language();
      if (!l.language().empty()) {
        components.PushBack(Component(codes::kComponentLanguage, "valueCodeableConcept",
                                      json::Concept(json::Coding(codes::kBcp47, l.language(), "", a), a), a),
                            a);
      }
      components.PushBack(Component(codes::kComponentInterpreter, "valueBoolean", Value(l.interpreter_needed()), a), a);
      break;
    }
    case v1::Preference::kFamilyInvolvement: {
      const v1::FamilyInvolvement& f = pref.family_involvement();
      add_string(codes::kComponentFamilyName, f.person_name());
      add_string(codes::kComponentFamilyRelationship, f.relationship());
      add_string(codes::kComponentFamilyHow, f.how());
      break;
    }
    default:
      break;
  }
  if (!components.Empty()) body->AddMember("component", components, a);
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

// Whether `candidate` (a body) maps to a model that generates `generated`.
bool Consistent(storage::Kind kind, const Value& candidate, const Value& generated, const GenContext& ctx) {
  rapidjson::Document doc;
  auto& a = doc.GetAllocator();
  Value resource(rapidjson::kObjectType);
  const absl::string_view type = FhirTypeOf(kind);
  resource.AddMember("resourceType", Str(type, a), a);
  for (auto it = candidate.MemberBegin(); it != candidate.MemberEnd(); ++it) {
    resource.AddMember(Value(it->name, a), Value(it->value, a), a);
  }
  FieldViolations v;
  Parsed parsed = ParseResource(type, resource, &v);
  if (!v.empty() || parsed.kind != kind || parsed.patient_id != ctx.patient_id) return false;
  Value regenerated;
  GenerateBody(kind, parsed.resource, ctx, kind == storage::PRIORITIES ? &parsed.item_refs : nullptr, &regenerated, a);
  return regenerated == generated;
}

// The body to emit: `generated` with the kept groups of `extra` that still
// agree with the model (section 3).
void MergeKept(storage::Kind kind, const Value& generated, const Value& extra, const GenContext& ctx, Value* out,
               json::Allocator& a) {
  out->CopyFrom(generated, a);
  std::vector<const Group*> kept;
  for (const Group& g : GroupsFor(kind)) {
    for (absl::string_view m : g.members) {
      if (Member(extra, m) != nullptr) {
        kept.push_back(&g);
        break;
      }
    }
  }
  if (kept.empty()) return;
  Value all(generated, a);
  for (const Group* g : kept) ReplaceGroup(all, *g, GroupValue(extra, *g, a), a);
  if (Consistent(kind, all, generated, ctx)) {
    out->Swap(all);
    return;
  }
  // Something changed through the model. Contained resources are all kept
  // (ours, "speaker", regenerated); then each other kept group is used when,
  // with them, it still maps to the model.
  Value contained(rapidjson::kArrayType);
  if (const Value* kept_contained = Member(extra, "contained");
      kept_contained != nullptr && kept_contained->IsArray()) {
    for (const Value& r : kept_contained->GetArray()) {
      if (StringMember(r, "id").value_or("") != kSpeakerId) contained.PushBack(Value(r, a), a);
    }
  }
  if (const Value* ours = Member(generated, "contained"); ours != nullptr && ours->IsArray()) {
    for (const Value& r : ours->GetArray()) contained.PushBack(Value(r, a), a);
  }
  json::Remove(*out, "contained");
  if (!contained.Empty()) out->AddMember("contained", Value(contained, a), a);
  Value base(*out, a);
  for (const Group* g : kept) {
    if (g->name == "contained") continue;
    Value one(base, a);
    Value original = GroupValue(extra, *g, a);
    ReplaceGroup(one, *g, original, a);
    if (Consistent(kind, one, generated, ctx)) ReplaceGroup(*out, *g, original, a);
  }
}

// R4 element order of each resource type (FHIR JSON order is not significant,
// but readers expect it); a "_x" sibling follows x; unknown names go last.
const std::vector<absl::string_view>& ElementOrder(storage::Kind kind) {
  static const auto* goal = new std::vector<absl::string_view>{"resourceType",
                                                               "id",
                                                               "meta",
                                                               "implicitRules",
                                                               "language",
                                                               "text",
                                                               "contained",
                                                               "extension",
                                                               "modifierExtension",
                                                               "identifier",
                                                               "lifecycleStatus",
                                                               "achievementStatus",
                                                               "category",
                                                               "priority",
                                                               "description",
                                                               "subject",
                                                               "startDate",
                                                               "startCodeableConcept",
                                                               "target",
                                                               "statusDate",
                                                               "statusReason",
                                                               "expressedBy",
                                                               "addresses",
                                                               "note",
                                                               "outcomeCode",
                                                               "outcomeReference"};
  static const auto* observation = new std::vector<absl::string_view>{"resourceType",
                                                                      "id",
                                                                      "meta",
                                                                      "implicitRules",
                                                                      "language",
                                                                      "text",
                                                                      "contained",
                                                                      "extension",
                                                                      "modifierExtension",
                                                                      "identifier",
                                                                      "basedOn",
                                                                      "partOf",
                                                                      "status",
                                                                      "category",
                                                                      "code",
                                                                      "subject",
                                                                      "focus",
                                                                      "encounter",
                                                                      "effectiveDateTime",
                                                                      "effectivePeriod",
                                                                      "effectiveTiming",
                                                                      "effectiveInstant",
                                                                      "issued",
                                                                      "performer",
                                                                      "valueQuantity",
                                                                      "valueCodeableConcept",
                                                                      "valueString",
                                                                      "valueBoolean",
                                                                      "valueInteger",
                                                                      "valueRange",
                                                                      "valueRatio",
                                                                      "valueSampledData",
                                                                      "valueTime",
                                                                      "valueDateTime",
                                                                      "valuePeriod",
                                                                      "dataAbsentReason",
                                                                      "interpretation",
                                                                      "note",
                                                                      "bodySite",
                                                                      "method",
                                                                      "specimen",
                                                                      "device",
                                                                      "referenceRange",
                                                                      "hasMember",
                                                                      "derivedFrom",
                                                                      "component"};
  static const auto* list = new std::vector<absl::string_view>{"resourceType",  "id",        "meta",
                                                               "implicitRules", "language",  "text",
                                                               "contained",     "extension", "modifierExtension",
                                                               "identifier",    "status",    "mode",
                                                               "title",         "code",      "subject",
                                                               "encounter",     "date",      "source",
                                                               "orderedBy",     "note",      "entry",
                                                               "emptyReason"};
  switch (kind) {
    case storage::GOAL:
      return *goal;
    case storage::PRIORITIES:
      return *list;
    default:
      return *observation;
  }
}

void SortElements(storage::Kind kind, Value& resource, json::Allocator& a) {
  const auto& order = ElementOrder(kind);
  auto rank = [&](absl::string_view name) {
    const bool primitive_extension = absl::ConsumePrefix(&name, "_");
    auto it = std::find(order.begin(), order.end(), name);
    const size_t base = it == order.end() ? order.size() : static_cast<size_t>(it - order.begin());
    return base * 2 + (primitive_extension ? 1 : 0);
  };
  std::vector<std::pair<size_t, size_t>> ranked;  // (rank, original position)
  std::vector<Value> names, values;
  for (auto it = resource.MemberBegin(); it != resource.MemberEnd(); ++it) {
    ranked.emplace_back(rank(absl::string_view(it->name.GetString(), it->name.GetStringLength())), names.size());
    names.emplace_back(std::move(it->name));
    values.emplace_back(std::move(it->value));
  }
  std::stable_sort(ranked.begin(), ranked.end());
  resource.SetObject();
  for (const auto& [r, i] : ranked) resource.AddMember(names[i], values[i], a);
}

// ---------------------------------------------------------------------------
// Records.

absl::StatusOr<AnyResource> Decode(const storage::Record& record) {
  auto decode = [&](auto message) -> absl::StatusOr<AnyResource> {
    if (!message.ParseFromString(record.resource())) {
      return absl::DataLossError("stored resource does not parse");
    }
    return AnyResource(std::move(message));
  };
  switch (record.kind()) {
    case storage::WHAT_MATTERS:
      return decode(v1::WhatMatters());
    case storage::GOAL:
      return decode(v1::Goal());
    case storage::PREFERENCE:
      return decode(v1::Preference());
    case storage::GOAL_SCORE:
      return decode(v1::GoalScore());
    case storage::PRIORITIES:
      return decode(v1::Priorities());
    default:
      return absl::InvalidArgumentError("record of unknown kind");
  }
}

// A Patient version's provenance (who wrote it) in a form ProvenanceOf
// reads: Patient is not one of the AnyResource kinds.
absl::StatusOr<AnyResource> PatientAsProvenanceCarrier(const storage::Record& record) {
  v1::Patient patient;
  if (!patient.ParseFromString(record.resource())) return absl::DataLossError("stored resource does not parse");
  v1::Priorities carrier;
  *carrier.mutable_provenance() = patient.provenance();
  return AnyResource(std::move(carrier));
}

const v1::Provenance& ProvenanceOfRecord(const AnyResource& r) {
  return std::visit([](const auto& m) -> const v1::Provenance& { return m.provenance(); }, r);
}

const std::string& RetractReasonOfResource(const AnyResource& r) {
  return std::visit([](const auto& m) -> const std::string& { return m.retract_reason(); }, r);
}

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

Value Narrative(const std::string& xhtml_body, json::Allocator& a) {
  Value text(rapidjson::kObjectType);
  text.AddMember("status", "generated", a);
  text.AddMember("div", Str(absl::StrCat("<div xmlns=\"http://www.w3.org/1999/xhtml\">", xhtml_body, "</div>"), a), a);
  return text;
}

std::string Para(absl::string_view label, absl::string_view value) {
  return absl::StrCat("<p><b>", json::XhtmlEscape(label), "</b>: ", json::XhtmlEscape(value), "</p>");
}

// Who said it, for people: "not stated" when the source did not say.
std::string SpeakerText(const v1::Speaker& s) {
  switch (s.kind()) {
    case v1::Speaker::PATIENT:
      return "the patient";
    case v1::Speaker::RELATED_PERSON:
      return absl::StrCat(s.name(), " (", s.relationship(), ")");
    case v1::Speaker::PRACTITIONER:
      return s.name().empty() ? absl::StrCat("practitioner ", s.practitioner_id())
                              : absl::StrCat(s.name(), " (practitioner ", s.practitioner_id(), ")");
    default:
      return "not stated";
  }
}

std::string NarrativeOf(storage::Kind kind, const AnyResource& r, const Value& resource, bool retracted) {
  std::string out;
  if (retracted) out += "<p><b>Entered in error</b></p>";
  switch (kind) {
    case storage::GOAL: {
      const auto& g = std::get<v1::Goal>(r);
      out += Para("Goal", g.description());
      if (auto status = StringMember(resource, "lifecycleStatus")) out += Para("Status", *status);
      if (!g.target_date().empty()) out += Para("Target date", g.target_date());
      break;
    }
    case storage::WHAT_MATTERS: {
      const auto& wm = std::get<v1::WhatMatters>(r);
      if (!wm.prompt().empty()) out += Para("Question", wm.prompt());
      out += Para("What matters", wm.statement());
      break;
    }
    case storage::PREFERENCE: {
      const auto& p = std::get<v1::Preference>(r);
      std::string value = p.value_text();
      if (value.empty()) value = p.value_code().display().empty() ? p.value_code().code() : p.value_code().display();
      std::string kind_name = absl::AsciiStrToLower(v1::PreferenceKind_Name(p.kind()));
      absl::StrReplaceAll({{"_", " "}}, &kind_name);
      out += Para(absl::StrCat("Preference (", kind_name, ")"), value.empty() ? "see details" : value);
      break;
    }
    case storage::GOAL_SCORE: {
      const auto& s = std::get<v1::GoalScore>(r);
      const codes::Code* row = codes::ByValue(codes::kGasAnswers, s.score());
      out += Para("Goal attainment score", absl::StrCat(s.score() > 0 ? "+" : "", s.score(), row != nullptr ? " " : "",
                                                        row != nullptr ? absl::StrCat("(", row->display, ")") : ""));
      if (!s.note().empty()) out += Para("Note", s.note());
      break;
    }
    case storage::PRIORITIES: {
      out += absl::StrCat("<p><b>", kListTitle, "</b>, most important first</p>");
      const Value* entries = Member(resource, "entry");
      if (entries != nullptr && entries->IsArray() && !entries->Empty()) {
        out += "<ol>";
        for (const Value& e : entries->GetArray()) {
          const Value* item = Member(e, "item");
          out += absl::StrCat("<li>", json::XhtmlEscape(item ? StringMember(*item, "reference").value_or("") : ""),
                              "</li>");
        }
        out += "</ol>";
      }
      break;
    }
    default:
      break;
  }
  out += Para(kind == storage::GOAL_SCORE ? "Scored by" : "Said by", SpeakerText(ProvenanceOfRecord(r).said_by()));
  return out;
}

}  // namespace

// ---------------------------------------------------------------------------
// Public functions.

namespace {

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
  Value extra(rapidjson::kObjectType);
  for (auto it = resource.MemberBegin(); it != resource.MemberEnd(); ++it) {
    absl::string_view name(it->name.GetString(), it->name.GetStringLength());
    if (IsHeader(name) || GroupOf(parsed.kind, name) != nullptr) continue;
    extra.AddMember(Value(it->name, a), Value(it->value, a), a);
  }
  for (const Group& g : GroupsFor(parsed.kind)) {
    Value original = GroupValue(resource, g, a);
    if (original.ObjectEmpty()) continue;
    if (original == GroupValue(generated, g, a)) continue;
    for (auto it = original.MemberBegin(); it != original.MemberEnd(); ++it) {
      extra.AddMember(Value(it->name, a), Value(it->value, a), a);
    }
  }
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
  const Value* extra = nullptr;
  if (!record.fhir_extra_json().empty()) {
    if (!json::Parse(record.fhir_extra_json(), &extra_doc).ok() || !extra_doc.IsObject()) {
      return absl::DataLossError("stored FHIR elements do not parse");
    }
    extra = &extra_doc;
  }
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
  if (extra != nullptr) {
    for (auto it = extra->MemberBegin(); it != extra->MemberEnd(); ++it) {
      absl::string_view name(it->name.GetString(), it->name.GetStringLength());
      if (IsHeader(name) || GroupOf(kind, name) != nullptr) continue;
      out->AddMember(Value(it->name, alloc), Value(it->value, alloc), alloc);
    }
  }
  if (record.retracted()) {
    json::Set(*out, kind == storage::GOAL ? "lifecycleStatus" : "status", Str("entered-in-error", alloc), alloc);
  }
  // Versions stored before unknown elements were refused may keep some:
  // they are not emitted (only kept elements can hold them).
  if (extra != nullptr) RemoveElements(UnknownElements(FhirTypeOf(kind), *out), *out);
  PruneContained(*out);
  SortElements(kind, *out, alloc);

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

std::string ProvenanceId(const storage::Record& record) { return absl::StrCat("s", record.sequence()); }

absl::StatusOr<std::string> RetractReasonOf(const storage::Record& record) {
  if (!record.retracted()) return std::string();
  auto resource = Decode(record);
  if (!resource.ok()) return resource.status();
  return RetractReasonOfResource(*resource);
}

namespace {
// The organization a practitioner agent acts for (ProvenanceOptions).
Value OrganizationOf(const ProvenanceOptions& options, Allocator& a) {
  Value org(rapidjson::kObjectType);
  if (!options.organization_reference.empty()) org.AddMember("reference", Str(options.organization_reference, a), a);
  if (!options.organization_display.empty()) org.AddMember("display", Str(options.organization_display, a), a);
  return org;
}
}  // namespace

absl::Status ProvenanceOf(const storage::Record& record, rapidjson::Value* out, Allocator& alloc) {
  return ProvenanceOf(record, ProvenanceOptions(), out, alloc);
}

absl::Status ProvenanceOf(const storage::Record& record, const ProvenanceOptions& options, rapidjson::Value* out,
                          Allocator& a) {
  auto resource = record.kind() == storage::PATIENT ? PatientAsProvenanceCarrier(record) : Decode(record);
  if (!resource.ok()) return resource.status();
  const v1::Provenance& prov = ProvenanceOfRecord(*resource);
  const std::string pid = record.patient_id();
  const std::string recorded = json::FormatInstant(record.update_time_micros());
  const std::string target =
      absl::StrCat(FhirTypeOf(record.kind()), "/", domain::FhirId(record), "/_history/", record.version());

  absl::string_view op = "UPDATE", op_display = "update";
  if (record.retracted()) {
    op = "DELETE";
    op_display = "delete";
  } else if (record.version() <= 1) {
    op = "CREATE";
    op_display = "create";
  }

  out->SetObject();
  out->AddMember("resourceType", "Provenance", a);
  out->AddMember("id", Str(ProvenanceId(record), a), a);
  Value meta(rapidjson::kObjectType);
  meta.AddMember("versionId", "1", a);
  meta.AddMember("lastUpdated", Str(recorded, a), a);
  meta.AddMember("profile", Array1(Str(codes::kUsCoreProvenance, a), a), a);
  out->AddMember("meta", meta, a);
  out->AddMember(
      "text",
      Narrative(absl::StrCat("<p>", op_display, " of ", json::XhtmlEscape(target), ", recorded ", recorded, "</p>"), a),
      a);
  const v1::Speaker& speaker = prov.said_by();
  if (speaker.kind() == v1::Speaker::RELATED_PERSON) {
    out->AddMember("contained", Array1(SpeakerResource(speaker, pid, a), a), a);
  }
  out->AddMember("target", Array1(json::Reference(target, "", a), a), a);
  if (prov.has_said_time()) out->AddMember("occurredDateTime", Str(json::FormatDateTime(prov.said_time()), a), a);
  out->AddMember("recorded", Str(recorded, a), a);
  if (const std::string& why = RetractReasonOfResource(*resource); record.retracted() && !why.empty()) {
    Value reason(rapidjson::kObjectType);
    reason.AddMember("text", Str(why, a), a);
    out->AddMember("reason", Array1(std::move(reason), a), a);
  }
  out->AddMember("activity", json::Concept(json::Coding(codes::kDataOperation, op, op_display, a), a), a);

  Value agents(rapidjson::kArrayType);
  auto agent = [&](absl::string_view type, absl::string_view display, Value who) {
    Value ag(rapidjson::kObjectType);
    ag.AddMember("type", json::Concept(json::Coding(codes::kParticipantType, type, display, a), a), a);
    ag.AddMember("who", who, a);
    return ag;
  };
  // A practitioner agent; US Core requires onBehalfOf (an Organization) when
  // who is a Practitioner.
  auto practitioner = [&](absl::string_view type, absl::string_view display, const v1::Recorder& r) {
    Value ag =
        agent(type, display, json::Reference(absl::StrCat("Practitioner/", r.practitioner_id()), r.display_name(), a));
    if (!r.role().empty()) {
      Value role(rapidjson::kObjectType);
      role.AddMember("text", Str(r.role(), a), a);
      ag.AddMember("role", Array1(std::move(role), a), a);
    }
    Value on_behalf_of(rapidjson::kObjectType);
    if (!options.organization_reference.empty()) {
      on_behalf_of.AddMember("reference", Str(options.organization_reference, a), a);
    }
    if (!options.organization_display.empty()) {
      on_behalf_of.AddMember("display", Str(options.organization_display, a), a);
    }
    if (!on_behalf_of.ObjectEmpty()) ag.AddMember("onBehalfOf", on_behalf_of, a);
    return ag;
  };
  const auto named = [](const v1::Recorder& r) {
    return !r.practitioner_id().empty() && domain::IsValidId(r.practitioner_id());
  };
  // Recorded for a named user: that user is the author (responsible for
  // what was recorded), the authenticated caller who recorded it the enterer.
  const bool for_someone = prov.has_on_behalf_of() && named(prov.on_behalf_of());
  if (for_someone) agents.PushBack(practitioner("author", "Author", prov.on_behalf_of()), a);
  if (named(prov.recorded_by())) {
    agents.PushBack(for_someone ? practitioner("enterer", "Enterer", prov.recorded_by())
                                : practitioner("author", "Author", prov.recorded_by()),
                    a);
  }
  Value who = SpeakerRef(speaker, pid, a);
  if (!who.IsNull()) {
    Value informant = agent("informant", "Informant", std::move(who));
    // US Core provenance-1: onBehalfOf when who is a Practitioner.
    if (speaker.kind() == v1::Speaker::PRACTITIONER) {
      Value on_behalf_of = OrganizationOf(options, a);
      if (!on_behalf_of.ObjectEmpty()) informant.AddMember("onBehalfOf", on_behalf_of, a);
    }
    agents.PushBack(informant, a);
  }
  if (agents.Empty()) {
    // Provenance.agent is 1..*: name the recorder even when unknown.
    Value unknown(rapidjson::kObjectType);
    unknown.AddMember("display", "Unknown recorder", a);
    agents.PushBack(agent("author", "Author", std::move(unknown)), a);
  }
  out->AddMember("agent", agents, a);
  return absl::OkStatus();
}

void CodeSystem(rapidjson::Value* out, Allocator& a) {
  auto concept_value = [&](const codes::Concept& c) {
    Value v(rapidjson::kObjectType);
    v.AddMember("code", Str(c.code, a), a);
    v.AddMember("display", Str(c.display, a), a);
    v.AddMember("definition", Str(c.definition, a), a);
    return v;
  };
  int count = 0;
  Value concepts(rapidjson::kArrayType);
  auto add = [&](const codes::Concept& c) {
    concepts.PushBack(concept_value(c), a);
    ++count;
  };
  auto add_with_children = [&](const codes::Concept& parent, std::span<const codes::ValueConcept> children) {
    Value v = concept_value(parent);
    Value nested(rapidjson::kArrayType);
    for (const codes::ValueConcept& c : children) {
      nested.PushBack(concept_value(c.term), a);
      ++count;
    }
    v.AddMember("concept", nested, a);
    concepts.PushBack(v, a);
    ++count;
  };
  add(codes::kWhatMattersConcept);
  static constexpr absl::string_view kPreferenceDefinitions[] = {
      "",
      "",
      "",
      "Communication channels in the patient's order of preference (components preferred-channel).",
      "When the patient prefers to be contacted (components contact-day, contact-start-time, contact-end-time, "
      "contact-time-zone).",
      "The name the patient wants to be called by (valueString).",
      "",
      "",
      "Who from the patient's family or caregivers should be involved, and how (components "
      "family-member-name, family-member-relationship, family-involvement-how).",
      "",
      "",
      "",
      "A preference of another kind, in the patient's words."};
  for (const codes::PreferenceCode& pc : codes::kPreferenceCodes) {
    if (!pc.system.empty()) continue;  // LOINC
    add({pc.code, pc.display, kPreferenceDefinitions[pc.kind]});
  }
  add(codes::kComponentPrompt);
  add_with_children(codes::kComponentLifeDomain, codes::kLifeDomains);
  add_with_children(codes::kComponentDignity, codes::kDignityElements);
  add_with_children(codes::kComponentChannel, codes::kContactChannels);
  for (const codes::Concept* c :
       {&codes::kComponentDay, &codes::kComponentStart, &codes::kComponentEnd, &codes::kComponentZone,
        &codes::kComponentLanguage, &codes::kComponentInterpreter, &codes::kComponentFamilyName,
        &codes::kComponentFamilyRelationship, &codes::kComponentFamilyHow}) {
    add(*c);
  }

  out->SetObject();
  out->AddMember("resourceType", "CodeSystem", a);
  out->AddMember("id", Str(kCodeSystemId, a), a);
  out->AddMember("text",
                 Narrative("<p>Concepts of the What Matters To You service that no standard code covers: the "
                           "what-matters answer, preference kinds, and the codes of Observation components.</p>",
                           a),
                 a);
  out->AddMember("url", Str(kCodeSystemUrl, a), a);
  out->AddMember("version", "1.0.0", a);
  out->AddMember("name", "WhatMattersToYou", a);
  out->AddMember("title", "What Matters To You concepts", a);
  out->AddMember("status", "active", a);
  out->AddMember("experimental", false, a);
  out->AddMember("publisher", "wmty", a);
  out->AddMember("description",
                 "Codes for what matters to a patient, preference kinds without a LOINC code, and the components "
                 "(question asked, life domains, Donna Hicks' elements of dignity, contact channels and times, "
                 "language, family involvement) that wmty's Observations carry.",
                 a);
  out->AddMember("caseSensitive", true, a);
  out->AddMember("hierarchyMeaning", "grouped-by", a);
  out->AddMember("content", "complete", a);
  out->AddMember("count", count, a);
  out->AddMember("concept", concepts, a);
}

std::string FhirPathFor(storage::Kind kind, absl::string_view field) {
  if (kind == storage::PATIENT) return PatientFhirPath(field);
  // Domain paths are "<prefix>.<field path>" (prefix: goal, what_matters,
  // preference, goal_score, priorities); indices become "[i]" for lookup.
  const size_t dot = field.find('.');
  if (dot == absl::string_view::npos) return std::string(field);
  std::string rest(field.substr(dot + 1));
  std::vector<std::string> indices;
  std::string pattern;
  for (size_t i = 0; i < rest.size(); ++i) {
    if (rest[i] == '[') {
      const size_t close = rest.find(']', i);
      if (close == std::string::npos) return std::string(field);
      indices.push_back(rest.substr(i + 1, close - i - 1));
      pattern += "[i]";
      i = close;
    } else {
      pattern += rest[i];
    }
  }
  const std::string type(FhirTypeOf(kind));
  const bool observation = type == "Observation";
  const std::string speaker = kind == storage::GOAL ? "Goal.expressedBy"
                              : observation         ? "Observation.performer"
                                                    : "List.source";
  std::vector<std::pair<std::string, std::string>> table = {
      {"name", type + ".id"},
      {"patient", type + ".subject"},
      {"patient.id", type + ".subject.reference"},
      {"patient.identifier_system", type + ".subject.identifier.system"},
      {"patient.identifier_value", type + ".subject.identifier.value"},
      {"provenance", speaker},
      {"provenance.said_by", speaker},
      {"provenance.encounter_id", type + ".encounter"},
      // Set by the server, not by the FHIR resource: no better name.
      {"provenance.recorded_by", ""},
      {"provenance.on_behalf_of", ""},  // from the X-Provenance header
      {"provenance.channel", ""},
      {"provenance.said_time", ""},
  };
  if (observation) table.push_back({"provenance.said_time", "Observation.effectiveDateTime"});
  switch (kind) {
    case storage::GOAL:
      table.insert(table.end(), {
                                    {"description", "Goal.description.text"},
                                    {"lifecycle_status", "Goal.lifecycleStatus"},
                                    {"achievement_status", "Goal.achievementStatus"},
                                    {"priority", "Goal.priority"},
                                    {"categories", "Goal.category"},
                                    {"categories[i]", "Goal.category"},
                                    {"start_date", "Goal.startDate"},
                                    {"target_date", "Goal.target[0].dueDate"},
                                    {"notes", "Goal.note"},
                                    {"notes[i]", "Goal.note[i]"},
                                    {"notes[i].text", "Goal.note[i].text"},
                                    {"notes[i].author", "Goal.note[i].authorString"},
                                    {"notes[i].time", "Goal.note[i].time"},
                                    // addresses may hold other references too: no index.
                                    {"what_matters", "Goal.addresses"},
                                    {"what_matters[i]", "Goal.addresses"},
                                });
      break;
    case storage::WHAT_MATTERS:
      table.insert(table.end(), {
                                    {"statement", "Observation.valueString"},
                                    {"prompt", "Observation.component"},
                                    {"life_domains", "Observation.component"},
                                    {"dignity_elements", "Observation.component"},
                                });
      break;
    case storage::PREFERENCE:
      table.insert(table.end(), {
                                    {"kind", "Observation.code"},
                                    {"value_code", "Observation.valueCodeableConcept"},
                                    {"value_code.system", "Observation.valueCodeableConcept.coding[0].system"},
                                    {"value_code.code", "Observation.valueCodeableConcept.coding[0].code"},
                                    {"value_code.display", "Observation.valueCodeableConcept.coding[0].display"},
                                    {"value_text", "Observation.valueString"},
                                    {"channel_ranking", "Observation.component"},
                                    {"contact_window", "Observation.component"},
                                    {"language", "Observation.component"},
                                    {"family_involvement", "Observation.component"},
                                });
      break;
    case storage::GOAL_SCORE:
      table.insert(table.end(), {
                                    {"goal", "Observation.focus"},
                                    {"score_type", "Observation.code"},
                                    {"score", "Observation.valueCodeableConcept"},
                                    {"effective_time", "Observation.effectiveDateTime"},
                                    {"note", "Observation.note[0].text"},
                                });
      break;
    case storage::PRIORITIES:
      table.insert(table.end(), {
                                    {"items", "List.entry"},
                                    {"items[i]", "List.entry[i].item"},
                                });
      break;
    default:
      break;
  }
  // Longest matching prefix of the path (by segments).
  std::string probe = pattern;
  while (!probe.empty()) {
    // The last entry for a path wins (kind-specific ones come last).
    for (auto entry = table.rbegin(); entry != table.rend(); ++entry) {
      const auto& [from, to] = *entry;
      if (from != probe) continue;
      if (to.empty()) return std::string(field);
      // Substitute the indices of the matched part, in order.
      std::string result;
      size_t next = 0;
      for (size_t i = 0; i < to.size(); ++i) {
        if (to.compare(i, 3, "[i]") == 0 && next < indices.size()) {
          absl::StrAppend(&result, "[", indices[next++], "]");
          i += 2;
        } else {
          result += to[i];
        }
      }
      return result;
    }
    const size_t cut = probe.find_last_of('.');
    if (cut == std::string::npos) break;
    probe.resize(cut);
  }
  return std::string(field);
}

}  // namespace wmty::fhir
