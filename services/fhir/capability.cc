#include "fhir/capability.h"

#include <initializer_list>
#include <vector>

#include "absl/strings/str_cat.h"
#include "domain/topics.h"
#include "fhir/mapping_codes.h"
#include "fhir/patient_mapping.h"
#include "fhir/rest.h"
#include "fhir/search.h"
#include "fhir/subscription_mapping.h"

#ifndef WMTY_VERSION
#define WMTY_VERSION "0"
#endif

namespace wmty::fhir {
namespace {

using Alloc = rapidjson::Document::AllocatorType;
using rapidjson::Value;

Value Str(absl::string_view s, Alloc& a) { return Value(s.data(), static_cast<rapidjson::SizeType>(s.size()), a); }

struct Interaction {
  absl::string_view code;
  absl::string_view documentation;
};

Value Interactions(std::initializer_list<Interaction> list, Alloc& a) {
  Value out(rapidjson::kArrayType);
  for (const auto& i : list) {
    Value v(rapidjson::kObjectType);
    v.AddMember("code", Str(i.code, a), a);
    if (!i.documentation.empty()) v.AddMember("documentation", Str(i.documentation, a), a);
    out.PushBack(v, a);
  }
  return out;
}

Value SearchParams(absl::string_view type, Alloc& a) {
  Value out(rapidjson::kArrayType);
  for (const SearchParamDef& d : SearchParamsOf(type)) {
    Value v(rapidjson::kObjectType);
    v.AddMember("name", Str(d.name, a), a);
    v.AddMember("definition", Str(d.definition, a), a);
    v.AddMember("type", Str(d.type, a), a);
    v.AddMember("documentation", Str(d.documentation, a), a);
    out.PushBack(v, a);
  }
  return out;
}

constexpr absl::string_view kRead =
    "ETag W/\"<versionId>\", Last-Modified; If-None-Match answers 304; a deleted (retracted) resource is 410 Gone.";
constexpr absl::string_view kVread = "A deleted version is 410 Gone.";
constexpr absl::string_view kCreate =
    "201 with Location [base]/<type>/<id>/_history/1 and ETag. Prefer: return=minimal|representation|"
    "OperationOutcome. X-Request-Id makes a retry return the first result instead of writing twice. "
    "If-None-Exist: conditional create (unknown parameters in it are refused). The write is recorded by the "
    "token's user (fhirUser Practitioner/<id>, else sub); X-Provenance (a Provenance resource whose author "
    "agent's who is Practitioner/<id>) names on whose behalf.";
constexpr absl::string_view kUpdate =
    "The body's id must equal the URL id (else 400). If-Match W/\"<versionId>\": 412 when stale. Without "
    "If-Match the update is made against the current version. Updating a deleted resource is 409 (it cannot "
    "be brought back). Changing the subject (or, for an Observation, what kind of observation it is) is 400.";
constexpr absl::string_view kDelete =
    "Marks the resource entered in error (kept in history; reads give 410). 204, also for an unknown or "
    "already deleted id. If-Match is honoured.";
constexpr absl::string_view kHistory =
    "Newest first; deleted versions appear as DELETE entries without a resource. _count, _since.";
constexpr absl::string_view kSearch =
    "GET or POST _search. Without patient/subject the whole type is scanned (cost grows with the database). "
    "Result parameters: _count (default 50, max 1000), _sort=_lastUpdated|-_lastUpdated, _summary=count, "
    "_revinclude=Provenance:target. Paging through next links stays consistent while writes happen. Unknown "
    "parameters are ignored (and left out of the self link) unless Prefer: handling=strict.";

// The profiles the mapping declares in meta.profile, per type (mapping.cc, section 1).
std::vector<absl::string_view> ProfilesOf(absl::string_view type) {
  if (type == "Goal") return {codes::kUsCoreGoal, codes::kAdiPersonalGoal, codes::kPcoGasGoal};
  if (type == "Observation") {
    return {codes::kUsCoreCareExperiencePreference, codes::kUsCoreTreatmentInterventionPreference, codes::kPcoGasScore};
  }
  if (type == "List") return {codes::kAdiPersonalPrioritiesOrganizer};
  if (type == "Provenance") return {codes::kUsCoreProvenance};
  if (type == "Patient") return {kUsCorePatientProfile};
  return {};
}

Value CommonResource(absl::string_view type, Alloc& a) {
  Value r(rapidjson::kObjectType);
  r.AddMember("type", Str(type, a), a);
  const std::vector<absl::string_view> profiles = ProfilesOf(type);
  if (!profiles.empty()) {
    Value list(rapidjson::kArrayType);
    for (absl::string_view p : profiles) list.PushBack(Str(p, a), a);
    r.AddMember("supportedProfile", list, a);
  }
  return r;
}

Value ClinicalResource(absl::string_view type, bool deletable, absl::string_view documentation, Alloc& a) {
  Value r = CommonResource(type, a);
  if (!documentation.empty()) r.AddMember("documentation", Str(documentation, a), a);
  if (deletable) {
    r.AddMember("interaction",
                Interactions({{"read", kRead},
                              {"vread", kVread},
                              {"update", kUpdate},
                              {"delete", kDelete},
                              {"history-instance", kHistory},
                              {"history-type", kHistory},
                              {"create", kCreate},
                              {"search-type", kSearch}},
                             a),
                a);
  } else {
    r.AddMember("interaction",
                Interactions({{"read", kRead},
                              {"vread", kVread},
                              {"update",
                               "PUT List/<patient id> sets the patient's ranked priorities (201 the first "
                               "time). The same If-Match rules as other updates."},
                              {"history-instance", kHistory},
                              {"history-type", kHistory},
                              {"create",
                               "POST creates the patient's priorities List when none exists yet (409 "
                               "when it does: use PUT List/<patient id>)."},
                              {"search-type", kSearch}},
                             a),
                a);
  }
  r.AddMember("versioning", "versioned-update", a);
  r.AddMember("readHistory", true, a);
  r.AddMember("updateCreate", !deletable, a);
  r.AddMember("conditionalCreate", true, a);
  r.AddMember("conditionalRead", "not-match", a);
  r.AddMember("conditionalUpdate", false, a);
  r.AddMember("conditionalDelete", "not-supported", a);
  Value rev(rapidjson::kArrayType);
  rev.PushBack("Provenance:target", a);
  r.AddMember("searchRevInclude", rev, a);
  r.AddMember("searchParam", SearchParams(type, a), a);
  return r;
}

// rest.security: SMART on FHIR bearer tokens, and where to get them.
Value Security(const SmartConfiguration& smart, Alloc& a) {
  Value security(rapidjson::kObjectType);
  security.AddMember("cors", false, a);
  Value coding(rapidjson::kObjectType);
  coding.AddMember("system", "http://terminology.hl7.org/CodeSystem/restful-security-service", a);
  coding.AddMember("code", "SMART-on-FHIR", a);
  coding.AddMember("display", "SMART-on-FHIR", a);
  Value codings(rapidjson::kArrayType);
  codings.PushBack(coding, a);
  Value service(rapidjson::kObjectType);
  service.AddMember("coding", codings, a);
  Value services(rapidjson::kArrayType);
  services.PushBack(service, a);
  security.AddMember("service", services, a);
  if (smart.enabled()) {
    Value uris(rapidjson::kArrayType);
    auto add_uri = [&](const char* name, const std::string& url) {
      if (url.empty()) return;
      Value ext(rapidjson::kObjectType);
      ext.AddMember("url", rapidjson::StringRef(name), a);
      ext.AddMember("valueUri", Value(url.c_str(), static_cast<rapidjson::SizeType>(url.size()), a), a);
      uris.PushBack(ext, a);
    };
    add_uri("authorize", smart.authorization_endpoint);
    add_uri("token", smart.token_endpoint);
    add_uri("revoke", smart.revocation_endpoint);
    Value oauth(rapidjson::kObjectType);
    oauth.AddMember("url", "http://fhir-registry.smarthealthit.org/StructureDefinition/oauth-uris", a);
    oauth.AddMember("extension", uris, a);
    Value extensions(rapidjson::kArrayType);
    extensions.PushBack(oauth, a);
    security.AddMember("extension", extensions, a);
  }
  security.AddMember(
      "description",
      rapidjson::StringRef(
          smart.enabled()
              ? "Every request but metadata, CodeSystem and .well-known/smart-configuration needs an OAuth 2 "
                "bearer token (JWT) from the authorization server named here (SMART App Launch 2: EHR and "
                "standalone launch, PKCE S256); SMART v2 scopes decide what it may read and write. Who recorded "
                "a write is the token's user; an X-Provenance author says on whose behalf."
              : "Every request but metadata and CodeSystem needs an OAuth 2 bearer token (JWT) from the "
                "configured issuer; SMART v2 scopes decide what it may read and write. This deployment "
                "names no authorization server for SMART App Launch. Who recorded a write is the token's user; "
                "an X-Provenance author says on whose behalf."),
      a);
  return security;
}

// The CapabilityStatement's own elements: who, what software, which formats.
void AddHeader(absl::string_view base, int64_t date_micros, Value* out, Alloc& a) {
  out->SetObject();
  out->AddMember("resourceType", "CapabilityStatement", a);
  out->AddMember("id", "wmty", a);
  out->AddMember("name", "WmtyFhirServer", a);
  out->AddMember("title", "What Matters To You: FHIR R4 server", a);
  out->AddMember("status", "active", a);
  out->AddMember("experimental", false, a);
  out->AddMember("date", Str(FhirInstant(date_micros), a), a);
  out->AddMember("publisher", "wmty", a);
  out->AddMember("description",
                 "What matters to each patient: their goals (Goal), what-matters answers, preferences and "
                 "goal-attainment scores (Observation), ranked priorities (List), with full version history "
                 "and the Provenance of every version. Resources declare US Core / PACIO ADI / PCO profiles in "
                 "meta.profile; this server does not claim conformance to any whole implementation guide "
                 "(it has no Patient matching of its own: Patient records come from the hospital's systems, PUT).",
                 a);
  out->AddMember("kind", "instance", a);
  Value software(rapidjson::kObjectType);
  software.AddMember("name", "wmty", a);
  software.AddMember("version", WMTY_VERSION, a);
  out->AddMember("software", software, a);
  Value implementation(rapidjson::kObjectType);
  implementation.AddMember("description", "wmty FHIR R4 REST face", a);
  implementation.AddMember("url", Str(base, a), a);
  out->AddMember("implementation", implementation, a);
  out->AddMember("fhirVersion", "4.0.1", a);
  Value format(rapidjson::kArrayType);
  format.PushBack("json", a);
  format.PushBack("application/fhir+json", a);
  format.PushBack("application/json", a);
  out->AddMember("format", format, a);
}

// Provenance: one per stored version, read-only.
Value ProvenanceResource(Alloc& a) {
  Value r = CommonResource("Provenance", a);
  r.AddMember("documentation",
              "One per stored version (id s<change sequence>); read-only. Also returned by "
              "_revinclude=Provenance:target and $everything.",
              a);
  r.AddMember("interaction", Interactions({{"read", ""}, {"search-type", "target is required."}}, a), a);
  r.AddMember("searchParam", SearchParams("Provenance", a), a);
  return r;
}

// AuditEvent: the audit trail, read-only, with its own search parameters.
Value AuditEventResource(Alloc& a) {
  Value r = CommonResource("AuditEvent", a);
  r.AddMember("documentation",
              "The audit trail (IHE BALP): one per access to patient data through either face, refused attempts "
              "included (id a<sequence>). Read-only: create, update and delete are 405. Needs a scope naming "
              "AuditEvent (e.g. system/AuditEvent.rs); patient/ scopes see only their patient's events.",
              a);
  r.AddMember("interaction", Interactions({{"read", ""}, {"search-type", "Oldest first; scans the trail."}}, a), a);
  Value params(rapidjson::kArrayType);
  auto param = [&](absl::string_view name, absl::string_view definition, absl::string_view type,
                   absl::string_view doc) {
    Value v(rapidjson::kObjectType);
    v.AddMember("name", Str(name, a), a);
    v.AddMember("definition", Str(definition, a), a);
    v.AddMember("type", Str(type, a), a);
    v.AddMember("documentation", Str(doc, a), a);
    params.PushBack(v, a);
  };
  param("patient", "http://hl7.org/fhir/SearchParameter/AuditEvent-patient", "reference",
        "<id> or Patient/<id>: events about that patient.");
  param("agent", "http://hl7.org/fhir/SearchParameter/AuditEvent-agent", "reference",
        "The token subject (or client id) that made the request, exactly; comma-separated values OR.");
  param("date", "http://hl7.org/fhir/SearchParameter/AuditEvent-date", "date",
        "When it was recorded; prefixes eq, ne, gt, lt, ge, le, sa, eb; repeat to AND.");
  param("action", "http://hl7.org/fhir/SearchParameter/AuditEvent-action", "token",
        "C, R, U, D or E; comma-separated values OR.");
  r.AddMember("searchParam", params, a);
  return r;
}

// CodeSystem: only ours (CodeSystem/wmty), by id or canonical URL.
Value CodeSystemResource(Alloc& a) {
  Value r = CommonResource("CodeSystem", a);
  r.AddMember("documentation",
              "Only CodeSystem/wmty: the concepts no standard code covers. Also found by its canonical URL "
              "(CodeSystem?url=...).",
              a);
  r.AddMember("interaction", Interactions({{"read", ""}, {"search-type", "url only."}}, a), a);
  Value params(rapidjson::kArrayType);
  Value url(rapidjson::kObjectType);
  url.AddMember("name", "url", a);
  url.AddMember("definition", "http://hl7.org/fhir/SearchParameter/conformance-url", a);
  url.AddMember("type", "uri", a);
  params.PushBack(url, a);
  r.AddMember("searchParam", params, a);
  return r;
}

// Patient: the hospital's demographics, created and updated by PUT, with $everything.
Value PatientResource(Alloc& a) {
  Value r = CommonResource("Patient", a);
  r.AddMember("documentation",
              "Who the patient is, as the hospital's systems send it (US Core Patient; id = the EHR's patient "
              "id): name, birthDate, gender and identifier are interpreted, every other R4 element is kept; "
              "elements R4 Patient does not define are refused. Created and updated by PUT only (POST and "
              "DELETE are 405). $everything (GET, no paging) returns the Patient and at most 1000 resources "
              "of each kind (an OperationOutcome entry says when more exist).",
              a);
  r.AddMember("interaction",
              Interactions({{"read", kRead},
                            {"vread", kVread},
                            {"update",
                             "PUT Patient/<patient id> creates (201) or updates (200) the patient's "
                             "record. If-Match optional: 412 when stale."},
                            {"history-instance", kHistory},
                            {"history-type", kHistory},
                            {"search-type", kSearch}},
                           a),
              a);
  r.AddMember("versioning", "versioned-update", a);
  r.AddMember("readHistory", true, a);
  r.AddMember("updateCreate", true, a);
  r.AddMember("conditionalRead", "not-match", a);
  Value rev(rapidjson::kArrayType);
  rev.PushBack("Provenance:target", a);
  r.AddMember("searchRevInclude", rev, a);
  r.AddMember("searchParam", SearchParams("Patient", a), a);
  Value ops(rapidjson::kArrayType);
  Value op(rapidjson::kObjectType);
  op.AddMember("name", "everything", a);
  op.AddMember("definition", "http://hl7.org/fhir/OperationDefinition/Patient-everything", a);
  ops.PushBack(op, a);
  r.AddMember("operation", ops, a);
  return r;
}

// Subscription (Subscriptions R5 Backport IG 1.1.0): rest-hook, our topics
// listed by the backport's topic-canonical extension.
Value SubscriptionResource(Alloc& a) {
  Value r = CommonResource("Subscription", a);
  Value profiles(rapidjson::kArrayType);
  profiles.PushBack(Str(kBackportSubscriptionProfile, a), a);
  r.AddMember("supportedProfile", profiles, a);
  Value topics(rapidjson::kArrayType);
  for (const domain::SubscriptionTopic& t : domain::SubscriptionTopics()) {
    Value e(rapidjson::kObjectType);
    e.AddMember("url", Str(kBackportTopicCanonical, a), a);
    e.AddMember("valueCanonical", Str(t.url, a), a);
    topics.PushBack(e, a);
  }
  r.AddMember("extension", topics, a);
  r.AddMember("documentation",
              "Topic-based subscriptions (Subscriptions R5 Backport IG 1.1.0): criteria is one of the topic "
              "canonicals in this entry's extensions; filters by backport-filter-criteria (patient on every "
              "topic, code on Observation); channel rest-hook to an https endpoint; payload empty, id-only or "
              "full-resource. Needs Subscription scopes and read on the topic's types; a Subscription is seen "
              "and changed by its owner (or a system/ Subscription scope) only. Header values are never shown.",
              a);
  r.AddMember("interaction",
              Interactions({{"create", "status requested (active is stored as requested: the handshake decides)."},
                            {"read", ""},
                            {"vread", ""},
                            {"update", "The topic cannot change; If-Match optional."},
                            {"delete", "Sets status off (kept in history; reads give 410)."},
                            {"history-instance", ""},
                            {"search-type", "_id, status, criteria."}},
                           a),
              a);
  r.AddMember("versioning", "versioned-update", a);
  r.AddMember("readHistory", true, a);
  Value params(rapidjson::kArrayType);
  for (const auto& [name, type] : {std::pair{"status", "token"}, std::pair{"criteria", "string"}}) {
    Value v(rapidjson::kObjectType);
    v.AddMember("name", Str(name, a), a);
    v.AddMember("definition", Str(absl::StrCat("http://hl7.org/fhir/SearchParameter/Subscription-", name), a), a);
    v.AddMember("type", Str(type, a), a);
    params.PushBack(v, a);
  }
  r.AddMember("searchParam", params, a);
  return r;
}

}  // namespace

void BuildCapabilityStatement(absl::string_view base, int64_t date_micros, const SmartConfiguration& smart, Value* out,
                              Alloc& a) {
  AddHeader(base, date_micros, out, a);
  Value rest(rapidjson::kObjectType);
  rest.AddMember("mode", "server", a);
  rest.AddMember("documentation",
                 "JSON only (XML is 406 Not Acceptable / 415 Unsupported Media Type). _pretty=true pretty-prints. "
                 "Every error is an OperationOutcome. Patient/[id]/$everything returns every current resource of "
                 "the patient with its Provenance. Elements FHIR R4 does not define are refused (400, the issue "
                 "naming each path), or dropped with a warning when the server is configured so; R4 elements not "
                 "mapped are kept. Goal.expressedBy, Observation.performer and List.source may be absent: who said "
                 "it is then recorded as not stated.",
                 a);
  rest.AddMember("security", Security(smart, a), a);

  Value resources(rapidjson::kArrayType);
  resources.PushBack(ClinicalResource("Goal", true, "Patient-stated goals.", a), a);
  resources.PushBack(ClinicalResource("Observation", true,
                                      "What-matters answers and preferences (US Core care experience / treatment "
                                      "intervention preference) and goal-attainment scores (PCO).",
                                      a),
                     a);
  resources.PushBack(ClinicalResource("List", false,
                                      "The patient's ranked priorities (PACIO ADI personal priorities organizer); "
                                      "its id is the patient id.",
                                      a),
                     a);
  resources.PushBack(ProvenanceResource(a), a);
  resources.PushBack(AuditEventResource(a), a);
  resources.PushBack(CodeSystemResource(a), a);
  resources.PushBack(PatientResource(a), a);
  resources.PushBack(SubscriptionResource(a), a);
  rest.AddMember("resource", resources, a);
  Value rests(rapidjson::kArrayType);
  rests.PushBack(rest, a);
  out->AddMember("rest", rests, a);
}

}  // namespace wmty::fhir
