// The FHIR face's operations and public resources: the CapabilityStatement
// (metadata), our CodeSystem (read and search by url), and
// Patient/[id]/$everything.

#include "absl/strings/str_cat.h"
#include "domain/names.h"
#include "fhir/capability.h"
#include "fhir/face/access.h"
#include "fhir/face/bundle.h"
#include "fhir/face/resource_types.h"
#include "fhir/face/service.h"

namespace wmty::fhir::face {
namespace {

constexpr int kEverythingMaxPerKind = 1000;

}  // namespace

void FhirService::Metadata(const CallPtr& c) {
  Document d;
  BuildCapabilityStatement(c->base, started_micros_, options_.smart, &d, d.GetAllocator());
  ReplyJson(*c, http::Status::ok, d);
}

void FhirService::ReadCodeSystem(const CallPtr& c, absl::string_view id) {
  if (id != kCodeSystemId) {
    return ReplyError(*c, MakeRestError(http::Status::not_found, "not-found",
                                        absl::StrCat("only CodeSystem/", kCodeSystemId, " is served here")));
  }
  Document d;
  d.SetObject();
  CodeSystem(&d, d.GetAllocator());
  ReplyJson(*c, http::Status::ok, d);
}

void FhirService::SearchCodeSystem(const CallPtr& c) {
  bool match = true;
  std::vector<QueryParam> applied;
  for (const auto& p : c->query) {
    if (p.name == "_format" || p.name == "_pretty") continue;
    if (p.name == "url") {
      match = match && p.value == kCodeSystemUrl;
      applied.push_back(p);
    } else if (c->prefer.strict) {
      return ReplyError(*c, Bad("not-supported", "CodeSystem search supports only the url parameter"));
    }
  }
  Document d;
  StartBundle(d, "searchset");
  Alloc& a = d.GetAllocator();
  d.AddMember("total", match ? 1 : 0, a);
  Value links(rapidjson::kArrayType);
  const std::string self = absl::StrCat(c->base, "/CodeSystem");
  AddLink(&links, "self", applied.empty() ? self : absl::StrCat(self, "?", FormatQuery(applied)), a);
  d.AddMember("link", links, a);
  if (match) {
    Value resource;
    CodeSystem(&resource, a);
    Value entry(rapidjson::kObjectType);
    entry.AddMember("fullUrl", Str(absl::StrCat(self, "/", kCodeSystemId), a), a);
    entry.AddMember("resource", resource, a);
    Value search(rapidjson::kObjectType);
    search.AddMember("mode", "match", a);
    entry.AddMember("search", search, a);
    Value entries(rapidjson::kArrayType);
    entries.PushBack(entry, a);
    d.AddMember("entry", entries, a);
  }
  ReplyJson(*c, http::Status::ok, d);
}

void FhirService::Everything(const CallPtr& c, absl::string_view patient) {
  if (!domain::IsValidId(patient)) {
    return ReplyError(*c, MakeRestError(http::Status::not_found, "not-found", "not a valid patient id"));
  }
  AuditTarget(*c, patient, patient);
  // Everything of the patient: r on all three types for that patient.
  for (absl::string_view type : {"Goal", "Observation", "List"}) {
    if (!Authorize(*c, type, auth::kRead, patient)) return;
  }
  for (const auto& p : c->query) {
    if (p.name != "_format" && p.name != "_pretty" && c->prefer.strict) {
      return ReplyError(*c,
                        Bad("not-supported", absl::StrCat("$everything takes no parameter ", p.name.substr(0, 64))));
    }
  }
  Document d;
  StartBundle(d, "searchset");
  Alloc& a = d.GetAllocator();
  Value links(rapidjson::kArrayType), entries(rapidjson::kArrayType);
  AddLink(&links, "self", absl::StrCat(c->base, "/Patient/", patient, "/$everything"), a);
  int64_t total = 0;
  bool truncated = false;
  // The Patient itself (who this is) first, for a caller that may read it.
  const bool with_patient = !c->principal.has_value() ||
                            auth::Authorize(*c->principal, "Patient", auth::kRead, patient) == auth::Decision::kAllow;
  for (Kind kind : {storage::PATIENT, storage::PRIORITIES, storage::GOAL, storage::WHAT_MATTERS, storage::PREFERENCE,
                    storage::GOAL_SCORE}) {
    if (kind == storage::PATIENT && !with_patient) continue;
    int n = 0, scanned = 0;
    absl::Status inner;
    auto s = core_->ScanStoredCurrent(kind, std::string(patient), "", "", [&](const Record& r) {
      if (++scanned % kDeadlineCheckEvery == 0 && absl::Now() > c->ctx.deadline) {
        inner = absl::DeadlineExceededError("$everything ran past its deadline");
        return false;
      }
      if (r.retracted()) return true;
      if (n == kEverythingMaxPerKind) {
        truncated = true;
        return false;
      }
      Value resource(rapidjson::kObjectType), prov(rapidjson::kObjectType);
      if (auto st = ToFhir(r, &resource, a); !st.ok()) {
        inner = st;
        return false;
      }
      if (auto st = ProvenanceOf(r, &prov, a); !st.ok()) {
        inner = st;
        return false;
      }
      Value entry(rapidjson::kObjectType);
      entry.AddMember("fullUrl", Str(absl::StrCat(c->base, "/", FhirTypeOf(kind), "/", FhirId(r)), a), a);
      entry.AddMember("resource", resource, a);
      Value search(rapidjson::kObjectType);
      search.AddMember("mode", "match", a);
      entry.AddMember("search", search, a);
      entries.PushBack(entry, a);
      Value pentry(rapidjson::kObjectType);
      pentry.AddMember("fullUrl", Str(absl::StrCat(c->base, "/Provenance/", ProvenanceId(r)), a), a);
      pentry.AddMember("resource", prov, a);
      Value psearch(rapidjson::kObjectType);
      psearch.AddMember("mode", "include", a);
      pentry.AddMember("search", psearch, a);
      entries.PushBack(pentry, a);
      ++n;
      return true;
    });
    if (!s.ok()) return ReplyError(*c, FromStatus(s, kind));
    if (!inner.ok()) return ReplyError(*c, FromStatus(inner, kind));
    total += n;
  }
  if (truncated) {
    Value oo(rapidjson::kObjectType);
    BuildOperationOutcome({Issue{"warning", "too-costly",
                                 absl::StrCat("more than ", kEverythingMaxPerKind,
                                              " resources of one kind: only the first are included; use search with "
                                              "paging for the rest"),
                                 ""}},
                          &oo, a);
    Value entry(rapidjson::kObjectType);
    entry.AddMember("resource", oo, a);
    Value search(rapidjson::kObjectType);
    search.AddMember("mode", "outcome", a);
    entry.AddMember("search", search, a);
    entries.PushBack(entry, a);
  }
  d.AddMember("total", total, a);
  d.AddMember("link", links, a);
  if (!entries.Empty()) d.AddMember("entry", entries, a);  // FHIR JSON has no empty arrays
  ReplyJson(*c, http::Status::ok, d);
}

}  // namespace wmty::fhir::face
