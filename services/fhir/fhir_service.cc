#include "fhir/fhir_service.h"

// Placeholder so the library links while the service is written.
namespace wmty::fhir {

std::unique_ptr<http::Handler> NewFhirService(domain::PatientRecords*, FhirServiceOptions) { return nullptr; }

}  // namespace wmty::fhir
