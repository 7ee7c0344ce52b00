// Which FHIR resource types are stored, and how their ids and kinds map to
// the domain's (an Observation is one of three kinds; a List is keyed by its
// patient).

#include "fhir/face/resource_types.h"

#include "domain/names.h"
#include "fhir/face/call.h"

namespace wmty::fhir::face {

bool IsStoredType(absl::string_view t) { return t == "Goal" || t == "Observation" || t == "List" || t == "Patient"; }

// The stored kinds a FHIR type covers (an Observation is one of three).
std::vector<Kind> KindsOf(absl::string_view t) {
  if (t == "Goal") return {storage::GOAL};
  if (t == "Observation") return {storage::WHAT_MATTERS, storage::PREFERENCE, storage::GOAL_SCORE};
  if (t == "List") return {storage::PRIORITIES};
  if (t == "Patient") return {storage::PATIENT};
  return {};
}

// For FhirPathFor on errors before the exact kind is known.
Kind PrimaryKind(absl::string_view t) {
  if (t == "Goal") return storage::GOAL;
  if (t == "List") return storage::PRIORITIES;
  if (t == "Patient") return storage::PATIENT;
  return storage::WHAT_MATTERS;
}

// The FHIR id of a stored resource: its id, or the patient id for the List.
std::string FhirId(const Record& r) { return r.kind() == storage::PRIORITIES ? r.patient_id() : r.id(); }
// The stored id for a FHIR id of `kind`.
std::string StoredId(Kind kind, absl::string_view fhir_id) {
  return kind == storage::PRIORITIES ? std::string(domain::kPrioritiesId) : std::string(fhir_id);
}

}  // namespace wmty::fhir::face
