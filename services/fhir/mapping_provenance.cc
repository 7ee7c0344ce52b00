// The US Core Provenance of one stored version (ProvenanceOf, mapping.h).
//
// Provenance (ProvenanceOf): target = <Type>/<id>/_history/<version>; recorded = update time;
//   occurredDateTime = said_time; reason[0].text = retract_reason (a deletion's, when given);
//   activity v3-DataOperation CREATE (version 1), UPDATE, DELETE (retracted); agent author
//   (provenance-participant-type) = Practitioner/<recorded_by.practitioner_id> with display_name,
//   role as agent.role text and onBehalfOf (ProvenanceOptions); when recorded on behalf of someone
//   (provenance.on_behalf_of), that user is the author and recorded_by (the authenticated caller)
//   an agent of type enterer, both as above (US Core types onBehalfOf as an Organization, so the
//   user cannot go there); agent informant = the speaker (Patient, a contained RelatedPerson
//   "#speaker", or Practitioner/<id> with onBehalfOf as for the author); no informant when NOT_STATED.
#include "absl/strings/str_cat.h"
#include "domain/fhir_types.h"
#include "domain/names.h"
#include "fhir/mapping_codes.h"
#include "fhir/mapping_internal.h"

namespace wmty::fhir {
namespace {

using internal::Array1;
using internal::Decode;
using internal::Narrative;
using internal::PatientAsProvenanceCarrier;
using internal::ProvenanceOfResource;
using internal::RetractReasonOfResource;
using internal::SpeakerRef;
using internal::SpeakerResource;
using json::Str;
using json::Value;

// The organization a practitioner agent acts for (ProvenanceOptions).
Value OrganizationOf(const ProvenanceOptions& options, Allocator& a) {
  Value org(rapidjson::kObjectType);
  if (!options.organization_reference.empty()) org.AddMember("reference", Str(options.organization_reference, a), a);
  if (!options.organization_display.empty()) org.AddMember("display", Str(options.organization_display, a), a);
  return org;
}

// v3-DataOperation of a version: CREATE (version 1), UPDATE, DELETE (retracted).
struct Activity {
  absl::string_view code;
  absl::string_view display;
};
Activity ActivityOf(const storage::Record& record) {
  if (record.retracted()) return {"DELETE", "delete"};
  if (record.version() <= 1) return {"CREATE", "create"};
  return {"UPDATE", "update"};
}

Value Agent(absl::string_view type, absl::string_view display, Value who, Allocator& a) {
  Value ag(rapidjson::kObjectType);
  ag.AddMember("type", json::Concept(json::Coding(codes::kParticipantType, type, display, a), a), a);
  ag.AddMember("who", who, a);
  return ag;
}

// US Core provenance-1: onBehalfOf (an Organization) when who is a
// Practitioner.
void AddOnBehalfOf(const ProvenanceOptions& options, Value* agent, Allocator& a) {
  Value on_behalf_of = OrganizationOf(options, a);
  if (!on_behalf_of.ObjectEmpty()) agent->AddMember("onBehalfOf", on_behalf_of, a);
}

// A practitioner agent: the recorder `r`, its role as agent.role text.
Value PractitionerAgent(absl::string_view type, absl::string_view display, const v1::Recorder& r,
                        const ProvenanceOptions& options, Allocator& a) {
  Value ag =
      Agent(type, display, json::Reference(absl::StrCat("Practitioner/", r.practitioner_id()), r.display_name(), a), a);
  if (!r.role().empty()) {
    Value role(rapidjson::kObjectType);
    role.AddMember("text", Str(r.role(), a), a);
    ag.AddMember("role", Array1(std::move(role), a), a);
  }
  AddOnBehalfOf(options, &ag, a);
  return ag;
}

bool Named(const v1::Recorder& r) { return !r.practitioner_id().empty() && domain::IsValidId(r.practitioner_id()); }

// author (and enterer), informant; an unknown author when there is none
// (Provenance.agent is 1..*).
Value Agents(const v1::Provenance& prov, absl::string_view pid, const ProvenanceOptions& options, Allocator& a) {
  Value agents(rapidjson::kArrayType);
  // Recorded for a named user: that user is the author (responsible for
  // what was recorded), the authenticated caller who recorded it the enterer.
  const bool for_someone = prov.has_on_behalf_of() && Named(prov.on_behalf_of());
  if (for_someone) agents.PushBack(PractitionerAgent("author", "Author", prov.on_behalf_of(), options, a), a);
  if (Named(prov.recorded_by())) {
    agents.PushBack(for_someone ? PractitionerAgent("enterer", "Enterer", prov.recorded_by(), options, a)
                                : PractitionerAgent("author", "Author", prov.recorded_by(), options, a),
                    a);
  }
  const v1::Speaker& speaker = prov.said_by();
  Value who = SpeakerRef(speaker, pid, a);
  if (!who.IsNull()) {
    Value informant = Agent("informant", "Informant", std::move(who), a);
    if (speaker.kind() == v1::Speaker::PRACTITIONER) AddOnBehalfOf(options, &informant, a);
    agents.PushBack(informant, a);
  }
  if (agents.Empty()) {
    Value unknown(rapidjson::kObjectType);
    unknown.AddMember("display", "Unknown recorder", a);
    agents.PushBack(Agent("author", "Author", std::move(unknown), a), a);
  }
  return agents;
}

// resourceType, id, meta and text of the Provenance of `record`.
void AddHeader(const storage::Record& record, absl::string_view recorded, absl::string_view target, Value* out,
               Allocator& a) {
  out->AddMember("resourceType", "Provenance", a);
  out->AddMember("id", Str(ProvenanceId(record), a), a);
  Value meta(rapidjson::kObjectType);
  meta.AddMember("versionId", "1", a);
  meta.AddMember("lastUpdated", Str(recorded, a), a);
  meta.AddMember("profile", Array1(Str(codes::kUsCoreProvenance, a), a), a);
  out->AddMember("meta", meta, a);
  out->AddMember("text",
                 Narrative(absl::StrCat("<p>", ActivityOf(record).display, " of ", json::XhtmlEscape(target),
                                        ", recorded ", recorded, "</p>"),
                           a),
                 a);
}

}  // namespace

std::string ProvenanceId(const storage::Record& record) { return absl::StrCat("s", record.sequence()); }

absl::Status ProvenanceOf(const storage::Record& record, rapidjson::Value* out, Allocator& alloc) {
  return ProvenanceOf(record, ProvenanceOptions(), out, alloc);
}

absl::Status ProvenanceOf(const storage::Record& record, const ProvenanceOptions& options, rapidjson::Value* out,
                          Allocator& a) {
  auto resource = record.kind() == storage::PATIENT ? PatientAsProvenanceCarrier(record) : Decode(record);
  if (!resource.ok()) return resource.status();
  const v1::Provenance& prov = ProvenanceOfResource(*resource);
  const std::string& pid = record.patient_id();
  const std::string recorded = json::FormatInstant(record.update_time_micros());
  const std::string target =
      absl::StrCat(FhirTypeOf(record.kind()), "/", domain::FhirId(record), "/_history/", record.version());
  out->SetObject();
  AddHeader(record, recorded, target, out, a);
  if (prov.said_by().kind() == v1::Speaker::RELATED_PERSON) {
    out->AddMember("contained", Array1(SpeakerResource(prov.said_by(), pid, a), a), a);
  }
  out->AddMember("target", Array1(json::Reference(target, "", a), a), a);
  if (prov.has_said_time()) out->AddMember("occurredDateTime", Str(json::FormatDateTime(prov.said_time()), a), a);
  out->AddMember("recorded", Str(recorded, a), a);
  if (const std::string& why = RetractReasonOfResource(*resource); record.retracted() && !why.empty()) {
    Value reason(rapidjson::kObjectType);
    reason.AddMember("text", Str(why, a), a);
    out->AddMember("reason", Array1(std::move(reason), a), a);
  }
  const Activity activity = ActivityOf(record);
  out->AddMember("activity", json::Concept(json::Coding(codes::kDataOperation, activity.code, activity.display, a), a),
                 a);
  out->AddMember("agent", Agents(prov, pid, options, a), a);
  return absl::OkStatus();
}

}  // namespace wmty::fhir
