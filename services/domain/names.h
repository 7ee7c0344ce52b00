// Resource names (AIP-122):
//   patients/{patient}                      a patient (the parent of everything), and the
//                                           Patient resource (its demographics; stored id =
//                                           the patient id)
//   patients/{patient}/whatMatters/{id}
//   patients/{patient}/goals/{id}
//   patients/{patient}/preferences/{id}
//   patients/{patient}/goalScores/{id}
//   patients/{patient}/priorities           singleton per patient
// Patient and resource ids follow FHIR's id rule: 1-64 of [A-Za-z0-9-.].
#ifndef WMTY_DOMAIN_NAMES_H_
#define WMTY_DOMAIN_NAMES_H_

#include <string>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "wmty/storage/record.pb.h"

namespace wmty::domain {

struct ResourceName {
  storage::Kind kind = storage::KIND_UNSPECIFIED;
  std::string patient_id;
  std::string id;  // "priorities" for the singleton; the patient id for the Patient
};

inline constexpr absl::string_view kPrioritiesId = "priorities";

// FHIR id rule: 1-64 characters of A-Z a-z 0-9 - . (so no slashes, spaces or
// control characters).
bool IsValidId(absl::string_view id);

// "patients/{patient}" -> patient id. INVALID_ARGUMENT naming `field` otherwise.
absl::StatusOr<std::string> ParseParent(absl::string_view parent, absl::string_view field);

// Parses any resource name ("patients/{patient}" is the PATIENT).
// INVALID_ARGUMENT naming `field` when malformed.
absl::StatusOr<ResourceName> ParseName(absl::string_view name, absl::string_view field);
// Same, but the name must be of `kind`.
absl::StatusOr<ResourceName> ParseNameOfKind(absl::string_view name, storage::Kind kind, absl::string_view field);

std::string FormatName(storage::Kind kind, absl::string_view patient_id, absl::string_view id);
std::string FormatParent(absl::string_view patient_id);

// "whatMatters", "goals", "preferences", "goalScores", "priorities" ("" for PATIENT).
absl::string_view CollectionOf(storage::Kind kind);

// The message of every NOT_FOUND for a resource, on both faces:
// "<label> <name> not found", e.g. "goal patients/p1/goals/g1 not found"
// (gRPC) or "Goal g1 not found" (FHIR: the type and the id). A resource of
// another patient that must look absent gets exactly this message too, so
// the answer does not tell the two apart.
std::string NotFoundMessage(absl::string_view label, absl::string_view name);

}  // namespace wmty::domain

#endif  // WMTY_DOMAIN_NAMES_H_
