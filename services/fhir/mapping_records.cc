// Stored records and references, as every part of the mapping reads them:
// decoding a Record into its model resource, the FHIR id of a record, and
// resource names <-> FHIR references ("Goal/<id>").
#include <utility>

#include "absl/strings/str_cat.h"
#include "absl/strings/strip.h"
#include "domain/names.h"
#include "fhir/mapping_internal.h"

namespace wmty::fhir::internal {

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

const v1::Provenance& ProvenanceOfResource(const AnyResource& r) {
  return std::visit([](const auto& m) -> const v1::Provenance& { return m.provenance(); }, r);
}

const std::string& RetractReasonOfResource(const AnyResource& r) {
  return std::visit([](const auto& m) -> const std::string& { return m.retract_reason(); }, r);
}

v1::Provenance* MutableProvenanceOf(AnyResource& r) {
  return std::visit([](auto& m) { return m.mutable_provenance(); }, r);
}

}  // namespace wmty::fhir::internal
