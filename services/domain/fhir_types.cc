// The kind <-> FHIR type table and FHIR ids (see fhir_types.h).
#include "domain/fhir_types.h"

#include <algorithm>
#include <iterator>

#include "domain/names.h"

namespace wmty::domain {
namespace {

struct Row {
  storage::Kind kind;
  absl::string_view fhir_type;
};

// The table of the header, the primary kind of each type first.
constexpr Row kRows[] = {
    {storage::GOAL, "Goal"},
    {storage::WHAT_MATTERS, "Observation"},
    {storage::PREFERENCE, "Observation"},
    {storage::GOAL_SCORE, "Observation"},
    {storage::PRIORITIES, "List"},
    {storage::PATIENT, "Patient"},
    // Not a patient's record: never a chart type nor served by the stored-type rows.
    {storage::SUBSCRIPTION, "Subscription"},
};

}  // namespace

absl::string_view FhirTypeOf(storage::Kind kind) {
  for (const Row& row : kRows) {
    if (row.kind == kind) return row.fhir_type;
  }
  return "Observation";
}

std::vector<storage::Kind> KindsOf(absl::string_view fhir_type) {
  std::vector<storage::Kind> kinds;
  for (const Row& row : kRows) {
    if (row.fhir_type == fhir_type) kinds.push_back(row.kind);
  }
  return kinds;
}

bool IsStoredType(absl::string_view fhir_type) {
  return std::find(std::begin(kStoredTypes), std::end(kStoredTypes), fhir_type) != std::end(kStoredTypes);
}

bool IsChartType(absl::string_view fhir_type) {
  return std::find(std::begin(kChartTypes), std::end(kChartTypes), fhir_type) != std::end(kChartTypes);
}

storage::Kind PrimaryKind(absl::string_view fhir_type) {
  for (const Row& row : kRows) {
    if (row.fhir_type == fhir_type) return row.kind;
  }
  return storage::WHAT_MATTERS;
}

std::string FhirId(const storage::Record& record) {
  return record.kind() == storage::PRIORITIES ? record.patient_id() : record.id();
}

std::string StoredId(storage::Kind kind, absl::string_view fhir_id) {
  return kind == storage::PRIORITIES ? std::string(kPrioritiesId) : std::string(fhir_id);
}

}  // namespace wmty::domain
