// The FHIR resource types the face stores and how their kinds and ids map to
// the domain's: the domain's one table (domain/fhir_types.h), named here for
// the face's files. Internal to the FHIR face. Thread safety: pure functions.
#ifndef WMTY_FHIR_FACE_RESOURCE_TYPES_H_
#define WMTY_FHIR_FACE_RESOURCE_TYPES_H_

#include "domain/fhir_types.h"

namespace wmty::fhir::face {

using domain::FhirId;
using domain::IsStoredType;
using domain::KindsOf;
using domain::PrimaryKind;
using domain::StoredId;

}  // namespace wmty::fhir::face

#endif  // WMTY_FHIR_FACE_RESOURCE_TYPES_H_
