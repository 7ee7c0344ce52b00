// FHIR R4 Patient (US Core Patient) <-> wmty.v1.Patient: the demographics the
// hospital's systems send, which wmty shows so that a nurse can confirm the
// right patient.
//
// Interpreted: name (HumanName use, text, family, given, prefix, suffix),
// birthDate, gender, identifier (system, value, and the v2-0203 type code).
// Every other element R4 Patient defines (telecom, address, extension,
// communication, ...) is kept verbatim and returned. An element R4 Patient
// does not define is refused, naming its path ("Patient.foo",
// "Patient.name[0].foo"); so are modifierExtension and implicitRules (their
// meaning could not be kept), and an element whose JSON form is not its
// type's (a string where a CodeableConcept belongs, an empty list or string):
// what is kept is served back, so it must be FHIR JSON. The contents of kept
// complex elements (an address's parts) are not checked further.
//
// Round trip: the incoming resource (without id, meta and text) is stored as
// Record.fhir_extra_json. On output each interpreted element is the stored
// original when it still says what the model holds (so extensions, periods,
// extra codings survive), otherwise it is generated from the model (a gRPC
// write changed it).
//
// Thread safety: pure functions.
#ifndef WMTY_FHIR_PATIENT_MAPPING_H_
#define WMTY_FHIR_PATIENT_MAPPING_H_

#include <string>

#include <rapidjson/document.h>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "wmty/storage/record.pb.h"
#include "wmty/v1/resources.pb.h"

namespace wmty::fhir {

inline constexpr absl::string_view kUsCorePatientProfile =
    "http://hl7.org/fhir/us/core/StructureDefinition/us-core-patient";

struct IncomingPatient {
  // names, birth_date, gender, identifiers; name, provenance and the output
  // fields are left to the caller.
  v1::Patient patient;
  // The resource as sent, without resourceType, id, meta and text ("" when
  // nothing is left): CallContext::fhir_extra_json.
  std::string extra_json;
};

// INVALID_ARGUMENT with field violations named by FHIR path when `json` is
// not an R4 Patient we can keep (the domain checks the US Core rules).
absl::StatusOr<IncomingPatient> PatientFromFhir(const rapidjson::Value& json);

// The Patient resource of a stored PATIENT version (id, meta, narrative).
absl::Status PatientToFhir(const storage::Record& record, rapidjson::Value* out,
                           rapidjson::Document::AllocatorType& alloc);

// A domain field path ("patient.names[0].family") as a FHIR path
// ("Patient.name[0].family").
std::string PatientFhirPath(absl::string_view field);

}  // namespace wmty::fhir

#endif  // WMTY_FHIR_PATIENT_MAPPING_H_
