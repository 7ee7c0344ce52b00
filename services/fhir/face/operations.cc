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

// One searchset entry of $everything: a resource (mode "match") or its
// Provenance (mode "include").
void AddEverythingEntry(const std::string& full_url, Value& resource, const char* mode, Value* entries, Alloc& a) {
  Value entry(rapidjson::kObjectType);
  entry.AddMember("fullUrl", Str(full_url, a), a);
  entry.AddMember("resource", resource, a);
  Value search(rapidjson::kObjectType);
  search.AddMember("mode", rapidjson::StringRef(mode), a);
  entry.AddMember("search", search, a);
  entries->PushBack(entry, a);
}

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
  for (absl::string_view type : domain::kChartTypes) {
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
  // The Patient itself (who this is) first, for a caller that may read it;
  // then the patient's chart as the summary shows it (domain::PatientChart:
  // the summary's order and limits), with the goal scores.
  domain::ChartOptions chart_options;
  chart_options.with_patient = !c->principal.has_value() || auth::Authorize(*c->principal, "Patient", auth::kRead,
                                                                            patient) == auth::Decision::kAllow;
  chart_options.with_goal_scores = true;
  auto chart = core_->ReadChart(patient, chart_options, c->ctx);
  if (!chart.ok()) return ReplyError(*c, FromStatus(chart.status(), storage::PATIENT));
  std::vector<const Record*> records;
  for (const auto* single : {&chart->patient, &chart->priorities}) {
    if (single->has_value()) records.push_back(&**single);
  }
  for (const auto* list : {&chart->goals, &chart->what_matters, &chart->preferences, &chart->goal_scores}) {
    for (const Record& r : *list) records.push_back(&r);
  }
  for (const Record* r : records) {
    Value resource(rapidjson::kObjectType), prov(rapidjson::kObjectType);
    if (auto st = ToFhir(*r, &resource, a); !st.ok()) return ReplyError(*c, FromStatus(st, r->kind()));
    if (auto st = ProvenanceOf(*r, &prov, a); !st.ok()) return ReplyError(*c, FromStatus(st, r->kind()));
    AddEverythingEntry(absl::StrCat(c->base, "/", FhirTypeOf(r->kind()), "/", FhirId(*r)), resource, "match", &entries,
                       a);
    AddEverythingEntry(absl::StrCat(c->base, "/Provenance/", ProvenanceId(*r)), prov, "include", &entries, a);
  }
  const int64_t total = static_cast<int64_t>(records.size());
  const bool truncated = chart->truncated;
  if (truncated) {
    Value oo(rapidjson::kObjectType);
    BuildOperationOutcome({Issue{"warning", "too-costly",
                                 absl::StrCat("more than ", domain::kChartMaxPerKind,
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
