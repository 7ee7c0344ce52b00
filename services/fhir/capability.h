// The CapabilityStatement of the FHIR face (GET [base]/metadata): exactly the
// resources, interactions, search parameters and operations FhirService
// implements. Keep it in step with the registered interactions
// (face/interactions.cc) and search.cc.
//
// Thread safety: pure function.
#ifndef WMTY_FHIR_CAPABILITY_H_
#define WMTY_FHIR_CAPABILITY_H_

#include <cstdint>

#include <rapidjson/document.h>

#include "absl/strings/string_view.h"
#include "fhir/smart_configuration.h"

namespace wmty::fhir {

// `base` is the service base URL (implementation.url); `date_micros` the
// statement's date (when the server started); `smart` the authorization
// server that rest.security names (its OAuth URIs when enabled).
void BuildCapabilityStatement(absl::string_view base, int64_t date_micros, const SmartConfiguration& smart,
                              rapidjson::Value* out, rapidjson::Document::AllocatorType& alloc);

}  // namespace wmty::fhir

#endif  // WMTY_FHIR_CAPABILITY_H_
