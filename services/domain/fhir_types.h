// The one table of which FHIR resource type each stored kind is served as,
// and of the FHIR id of a stored resource, used by the gRPC face (access
// checks name FHIR types, as SMART scopes do), the FHIR face and its mapping:
//
//   kind                                   FHIR type     FHIR id
//   GOAL                                   Goal          the stored id
//   WHAT_MATTERS, PREFERENCE, GOAL_SCORE   Observation   the stored id
//   PRIORITIES                             List          the patient id (one per patient)
//   PATIENT                                Patient       the patient id (= the stored id)
//   SUBSCRIPTION                           Subscription  the stored id (patient id ""; not a stored type below)
//
// Thread safety: pure functions and constants.
#ifndef WMTY_DOMAIN_FHIR_TYPES_H_
#define WMTY_DOMAIN_FHIR_TYPES_H_

#include <string>
#include <vector>

#include "absl/strings/string_view.h"
#include "wmty/storage/record.pb.h"

namespace wmty::domain {

// The types of a patient's chart (GetPatientSummary, $everything): reading
// the chart needs read access to each.
inline constexpr absl::string_view kChartTypes[] = {"Goal", "Observation", "List"};
// Every type a stored kind is served as: the chart's and Patient.
inline constexpr absl::string_view kStoredTypes[] = {"Goal", "Observation", "List", "Patient"};

// The FHIR type of `kind` ("Observation" for any kind not in the table).
absl::string_view FhirTypeOf(storage::Kind kind);

// The kinds served as `fhir_type` (an Observation is one of three); empty
// when none is.
std::vector<storage::Kind> KindsOf(absl::string_view fhir_type);
// True when some stored kind is served as `fhir_type`.
bool IsStoredType(absl::string_view fhir_type);
// True for the chart's types (kChartTypes).
bool IsChartType(absl::string_view fhir_type);
// The first of KindsOf (WHAT_MATTERS for Observation, and for a type that is
// not stored): for messages and field paths before the exact kind is known.
storage::Kind PrimaryKind(absl::string_view fhir_type);

// The FHIR id of a stored resource: its id, or the patient id for the List.
std::string FhirId(const storage::Record& record);
// The stored id of the resource of `kind` whose FHIR id is `fhir_id`.
std::string StoredId(storage::Kind kind, absl::string_view fhir_id);

}  // namespace wmty::domain

#endif  // WMTY_DOMAIN_FHIR_TYPES_H_
