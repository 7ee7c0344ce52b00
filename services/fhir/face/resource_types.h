// The FHIR resource types the face stores, and how their kinds and ids map to
// the domain's: an Observation is one of three kinds (what matters, a
// preference, a goal score); a patient's priorities List is keyed by the
// patient. Internal to the FHIR face. Thread safety: pure functions.
#ifndef WMTY_FHIR_FACE_RESOURCE_TYPES_H_
#define WMTY_FHIR_FACE_RESOURCE_TYPES_H_

#include <string>
#include <vector>

#include "absl/strings/string_view.h"
#include "wmty/storage/record.pb.h"

namespace wmty::fhir::face {

// Goal, Observation, List or Patient.
bool IsStoredType(absl::string_view t);
// The stored kinds a FHIR type covers (empty for one we do not store).
std::vector<storage::Kind> KindsOf(absl::string_view t);
// For FhirPathFor on errors before the exact kind is known.
storage::Kind PrimaryKind(absl::string_view t);
// The FHIR id of a stored resource: its id, or the patient id for the List.
std::string FhirId(const storage::Record& r);
// The stored id for a FHIR id of `kind`.
std::string StoredId(storage::Kind kind, absl::string_view fhir_id);

}  // namespace wmty::fhir::face

#endif  // WMTY_FHIR_FACE_RESOURCE_TYPES_H_
