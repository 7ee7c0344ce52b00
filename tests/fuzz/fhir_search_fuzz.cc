// Fuzz target: FHIR search parameters (services/fhir/search.h, and the
// AuditEvent search of services/fhir/audit_event.h).
//
// Input: one byte, then a query string. The byte's low 3 bits choose the
// resource type searched (Goal, Observation, List, Provenance, AuditEvent,
// Patient: a type without parameters); bit 3 is Prefer: handling=strict. The
// query string goes through what a search does with it: ParseQueryString,
// then ParseSearch (or ParseAuditQuery), CanonicalQuery (a page token's
// query), and Matches against a Goal, an Observation and a List as ToFhir
// renders them. Each value is also read as a date range and a reference.
// Invariants: the self link's parameters (FormatQuery of `applied`) decode
// to the same parameters and parse as the same search.
#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

#include <rapidjson/document.h>

#include "absl/strings/string_view.h"
#include "fhir/audit_event.h"
#include "fhir/search.h"
#include "fuzz/fuzz_check.h"
#include "wmty/storage/record.pb.h"

namespace {

using namespace wmty::fhir;  // NOLINT: a test driver

constexpr absl::string_view kTypes[] = {"Goal", "Observation", "List", "Provenance", "AuditEvent", "Patient"};

// Resources as ToFhir renders them (trimmed): every element a parameter looks at.
constexpr absl::string_view kResources[] = {
    R"({"resourceType": "Goal", "id": "g1", "lifecycleStatus": "active",
        "achievementStatus": {"coding": [{"system": "http://terminology.hl7.org/CodeSystem/goal-achievement",
                                          "code": "in-progress"}]},
        "category": [{"coding": [{"system": "http://loinc.org", "code": "87528-6"}]}, {"coding": [{"code": "x"}]}],
        "identifier": [{"system": "urn:ehr", "value": "G-7"}],
        "target": [{"dueDate": "2027-06-15"}, {"dueDate": "2028-01"}],
        "subject": {"reference": "Patient/p1"}, "meta": {"versionId": "2", "lastUpdated": "2026-11-23T16:33:29.520Z"}})",
    R"({"resourceType": "Observation", "id": "o1", "status": "final",
        "category": [{"coding": [{"system": "http://terminology.hl7.org/CodeSystem/observation-category",
                                  "code": "survey"}]}],
        "code": {"coding": [{"system": "http://loinc.org", "code": "95541-9"}]},
        "effectivePeriod": {"start": "2024-03-01"}, "focus": [{"reference": "Goal/g1"}],
        "identifier": [{"value": "no-system"}], "subject": {"reference": "Patient/p1"}})",
    R"({"resourceType": "Observation", "id": "o2", "status": "final", "effectiveDateTime": "2024-03-01T10:00:00+02:00",
        "code": {"coding": [{"system": "https://fhir.wmty.health/CodeSystem/wmty", "code": "what-matters"}]},
        "subject": {"reference": "Patient/p1"}})",
    R"({"resourceType": "List", "id": "p1", "status": "current", "mode": "working",
        "code": {"coding": [{"system": "http://loinc.org", "code": "81338-6"}]},
        "subject": {"reference": "Patient/p1"}, "entry": [{"item": {"reference": "Goal/g1"}}]})",
};

const std::vector<rapidjson::Document>& Resources() {
  static const auto* docs = [] {
    auto* out = new std::vector<rapidjson::Document>();
    for (absl::string_view text : kResources) {
      out->emplace_back();
      out->back().Parse(text.data(), text.size());
      if (out->back().HasParseError()) std::abort();
    }
    return out;
  }();
  return *docs;
}

void FuzzAudit(const std::vector<QueryParam>& params, bool strict) {
  auto q = ParseAuditQuery(params, strict);
  if (!q.ok()) return;
  wmty::storage::AuditRecord record;
  record.set_sequence(12);
  record.set_time_micros(1795451609520000);
  record.set_interaction("read");
  record.set_action("R");
  record.set_patient_id("p1");
  record.set_agent("nurse-17");
  (void)AuditMatches(*q, record);
  auto again = ParseQueryString(FormatQuery(q->link_params));
  WMTY_FUZZ_CHECK(again.ok() && *again == q->link_params, "an AuditEvent next link does not decode to its parameters");
  auto reparsed = ParseAuditQuery(*again, strict);
  WMTY_FUZZ_CHECK(reparsed.ok(), "an AuditEvent next link is not a valid search");
  WMTY_FUZZ_CHECK(reparsed->canonical == q->canonical, "an AuditEvent next link is another search");
}

void FuzzSearch(absl::string_view type, const std::vector<QueryParam>& params, bool strict) {
  auto spec = ParseSearch(type, params, strict);
  if (!spec.ok()) return;
  const std::string canonical = CanonicalQuery(*spec);
  for (const rapidjson::Document& resource : Resources()) {
    // _lastUpdated is matched against a stored update time (the store's
    // clock): the epoch, a real one, and the last microsecond of year 9999.
    for (int64_t updated : {int64_t{0}, int64_t{1795451609520000}, int64_t{253402300799999999}}) {
      (void)Matches(*spec, resource, updated);
    }
  }
  // The self link repeats `applied`: it must mean the same search.
  auto again = ParseQueryString(FormatQuery(spec->applied));
  WMTY_FUZZ_CHECK(again.ok(), "the self link's query does not decode");
  WMTY_FUZZ_CHECK(*again == spec->applied, "the self link's query decodes to other parameters");
  auto reparsed = ParseSearch(type, *again, strict);
  WMTY_FUZZ_CHECK(reparsed.ok(), "the self link is not a valid search");
  WMTY_FUZZ_CHECK(CanonicalQuery(*reparsed) == canonical, "the self link is another search");
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size == 0) return 0;
  const absl::string_view type = kTypes[(data[0] & 7) % std::size(kTypes)];
  const bool strict = (data[0] & 8) != 0;
  const absl::string_view query(reinterpret_cast<const char*>(data + 1), size - 1);

  auto params = ParseQueryString(query);
  if (!params.ok()) return 0;
  for (const QueryParam& p : *params) {
    (void)ParseFhirDateRange(p.value);
    (void)ParseReference(p.value);
    (void)EncodeQueryComponent(p.value);
  }
  if (type == "AuditEvent") {
    FuzzAudit(*params, strict);
  } else {
    FuzzSearch(type, *params, strict);
  }
  return 0;
}
