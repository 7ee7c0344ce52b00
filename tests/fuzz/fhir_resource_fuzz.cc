// Fuzz target: a FHIR create/update body, as the FHIR face reads it.
//
// The bytes are the request body. They go through what FhirService::Create
// and ::Update do before anything is written (ParseBody: RapidJSON with
// kParseIterativeFlag | kParseValidateEncodingFlag, CheckJsonShape at depth
// 64, object with a resourceType; then FromFhir for that type), then the
// domain validation of the mapped resource (domain::Check*, what
// PatientRecords runs before committing). A resource the domain accepts is
// stamped as the store would (name, version, etag, times), rendered back with
// ToFhir and ProvenanceOf, and the rendered JSON must map again (FromFhir) to
// the same kind: what a client reading and re-sending it would do. A refusal
// is mapped to the OperationOutcome the face would answer with; a body refused
// is also mapped as --fhir_unknown_elements=drop would, and nothing rendered
// may hold an element FHIR R4 does not define.
// A body whose resourceType is "Provenance" is read as the X-Provenance
// header instead (ParseXProvenance), the other JSON the face parses.
#include <cstddef>
#include <cstdint>
#include <string>
#include <type_traits>
#include <variant>

#include <rapidjson/document.h>
#include <rapidjson/error/en.h>

#include "absl/strings/string_view.h"
#include "absl/time/time.h"
#include "common/status.h"
#include "domain/names.h"
#include "domain/validation.h"
#include "fhir/elements.h"
#include "fhir/mapping.h"
#include "fhir/mapping_json.h"
#include "fhir/rest.h"
#include "fhir/search.h"
#include "fuzz/fuzz_check.h"

namespace {

using namespace wmty;  // NOLINT: a test driver

// FhirService's kMaxJsonDepth (services/fhir/face/write_input.cc).
constexpr int kMaxJsonDepth = 64;
// A fixed clock: validation bounds said_time by "now".
const absl::Time kNow = absl::FromUnixSeconds(1795451609);

storage::Kind PrimaryKind(absl::string_view type) {
  if (type == "Goal") return storage::GOAL;
  if (type == "List") return storage::PRIORITIES;
  return storage::WHAT_MATTERS;
}

void RenderRefusal(const absl::Status& status, storage::Kind kind) {
  fhir::RestError error = fhir::FromStatus(status, kind, /*fields_are_fhir_paths=*/true);
  rapidjson::Document outcome;
  fhir::BuildOperationOutcome(error.issues, &outcome, outcome.GetAllocator());
  (void)fhir::json::Serialize(outcome);
}

template <class R>
void Check(const R& r, const std::string& patient, FieldViolations* v) {
  if constexpr (std::is_same_v<R, v1::WhatMatters>) domain::CheckWhatMatters(r, patient, "what_matters", kNow, v);
  if constexpr (std::is_same_v<R, v1::Goal>) domain::CheckGoal(r, patient, "goal", kNow, v);
  if constexpr (std::is_same_v<R, v1::Preference>) domain::CheckPreference(r, patient, "preference", kNow, v);
  if constexpr (std::is_same_v<R, v1::GoalScore>) domain::CheckGoalScore(r, patient, "goal_score", kNow, v);
  if constexpr (std::is_same_v<R, v1::Priorities>) domain::CheckPriorities(r, patient, "priorities", kNow, v);
}

// What PatientRecords' create sets on the version it writes (StampServerFields).
template <class R>
void Stamp(R* r, storage::Kind kind, const std::string& patient, const std::string& id) {
  google::protobuf::Timestamp now;
  now.set_seconds(absl::ToUnixSeconds(kNow));
  r->set_name(domain::FormatName(kind, patient, id));
  r->mutable_patient()->set_id(patient);
  r->set_version(1);
  r->set_etag("W/\"1\"");
  *r->mutable_create_time() = now;
  *r->mutable_update_time() = now;
  r->set_state(v1::ACTIVE);
  if (!r->provenance().has_said_time()) *r->mutable_provenance()->mutable_said_time() = now;
  *r->mutable_provenance()->mutable_said_by() = domain::SpeakerOrNotStated(r->provenance().said_by());
  if constexpr (std::is_same_v<R, v1::GoalScore>) {
    if (!r->has_effective_time()) *r->mutable_effective_time() = now;
  }
}

void FuzzResource(const rapidjson::Document& doc, absl::string_view type) {
  absl::StatusOr<fhir::Incoming> incoming = fhir::FromFhir(type, doc);
  if (!incoming.ok()) {
    RenderRefusal(incoming.status(), PrimaryKind(type));
    // --fhir_unknown_elements=drop: what it maps must be free of them.
    incoming = fhir::FromFhir(type, doc, fhir::UnknownElementPolicy::kDrop);
    if (!incoming.ok()) return RenderRefusal(incoming.status(), PrimaryKind(type));
  }

  // The recorder comes from the token or X-Provenance, never from the body.
  std::visit([](auto& r) { r.mutable_provenance()->mutable_recorded_by()->set_practitioner_id("fuzz-nurse"); },
             incoming->resource);
  if (incoming->kind == storage::PRIORITIES) {
    // FhirService::ResolvePriorityItems without the store: Goal/<id> is a
    // goal, Observation/<id> taken as a what-matters answer.
    auto& priorities = std::get<v1::Priorities>(incoming->resource);
    for (const std::string& ref : incoming->list_item_refs) {
      auto parsed = fhir::ParseReference(ref);
      if (!parsed.has_value()) return;
      priorities.add_items(domain::FormatName(parsed->type == "Goal" ? storage::GOAL : storage::WHAT_MATTERS,
                                              incoming->patient_id, parsed->id));
    }
  }

  const std::string id =
      incoming->kind == storage::PRIORITIES ? incoming->patient_id : std::string("01JFUZZ0000000000000000000");
  FieldViolations violations;
  storage::Record record;
  std::visit(
      [&](auto& r) {
        Check(r, incoming->patient_id, &violations);
        Stamp(&r, incoming->kind, incoming->patient_id, id);
        record.set_resource(r.SerializeAsString());
      },
      incoming->resource);
  if (!violations.empty()) return RenderRefusal(violations.ToStatus(), incoming->kind);

  record.set_kind(incoming->kind);
  record.set_patient_id(incoming->patient_id);
  record.set_id(id);
  record.set_version(1);
  record.set_sequence(7);
  record.set_update_time_micros(absl::ToUnixMicros(kNow));
  record.set_fhir_extra_json(incoming->extra_json);

  rapidjson::Document out;
  const absl::Status rendered = fhir::ToFhir(record, &out, out.GetAllocator());
  WMTY_FUZZ_CHECK(rendered.ok(), "ToFhir refused a resource that FromFhir and the domain accepted");
  rapidjson::Document provenance;
  WMTY_FUZZ_CHECK(fhir::ProvenanceOf(record, &provenance, provenance.GetAllocator()).ok(),
                  "ProvenanceOf refused an accepted resource");
  WMTY_FUZZ_CHECK(fhir::UnknownElements(fhir::FhirTypeOf(incoming->kind), out).empty(),
                  "ToFhir emitted an element FHIR R4 does not define");
  const std::string text = fhir::json::Serialize(out);
  (void)fhir::json::Serialize(provenance);

  // What a client gets back must be readable as a request again.
  rapidjson::Document again;
  again.Parse<rapidjson::kParseIterativeFlag | rapidjson::kParseValidateEncodingFlag>(text.data(), text.size());
  WMTY_FUZZ_CHECK(!again.HasParseError(), "ToFhir output is not JSON");
  auto reread = fhir::FromFhir(fhir::FhirTypeOf(incoming->kind), again);
  WMTY_FUZZ_CHECK(reread.ok(), "ToFhir output does not map back (FromFhir refused it)");
  WMTY_FUZZ_CHECK(reread->kind == incoming->kind, "ToFhir output maps back to another kind");

  // A retracted version of the same record renders too.
  record.set_retracted(true);
  rapidjson::Document retracted;
  WMTY_FUZZ_CHECK(fhir::ToFhir(record, &retracted, retracted.GetAllocator()).ok(), "ToFhir refused a retraction");
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const absl::string_view body(reinterpret_cast<const char*>(data), size);
  rapidjson::Document doc;
  doc.Parse<rapidjson::kParseIterativeFlag | rapidjson::kParseValidateEncodingFlag>(body.data(), body.size());
  if (doc.HasParseError()) {
    (void)rapidjson::GetParseError_En(doc.GetParseError());
    return 0;
  }
  if (!fhir::CheckJsonShape(doc, kMaxJsonDepth).ok() || !doc.IsObject()) return 0;
  const std::optional<absl::string_view> type = fhir::json::StringMember(doc, "resourceType");
  if (!type.has_value()) return 0;
  if (*type == "Provenance") {
    (void)fhir::ParseXProvenance(body);
    return 0;
  }
  FuzzResource(doc, *type);
  return 0;
}
