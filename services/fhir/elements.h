// The FHIR R4 (4.0.1) element names of the resources the FHIR face reads
// (Goal, Observation, List, and the RelatedPerson or Practitioner it may find
// contained in them) and of the datatypes inside them: what lets the mapping
// refuse, or drop, an element FHIR does not define ("foo", "subject.foo",
// "component[0].bar") before anything is stored, so that the server never
// keeps and serves back invalid FHIR (mapping.cc section 3).
//
// What is checked: every member name of the resource, and of every complex
// element below it, against R4 (choice types by their typed names, e.g.
// effectiveDateTime; "_x" only for a primitive element x; Element's id and
// extension everywhere, modifierExtension on backbone elements). Not checked:
// value types, cardinality, an extension's value (any type) and the elements
// of a contained resource of a type other than RelatedPerson and
// Practitioner; the mapping checks what it maps.
//
// Thread safety: pure functions over static tables.
#ifndef WMTY_FHIR_ELEMENTS_H_
#define WMTY_FHIR_ELEMENTS_H_

#include <rapidjson/document.h>

#include <string>
#include <vector>

#include "absl/strings/string_view.h"

namespace wmty::fhir {

// One element R4 does not define.
struct UnknownElement {
  // FHIRPath-like location for OperationOutcome.issue.expression, e.g.
  // "Observation.component[0].bar".
  std::string path;
  // JSON Pointer to it in the checked resource, e.g. "/component/0/bar".
  std::string pointer;
};

// The elements of `resource` (a JSON object of type `resource_type`: Goal,
// Observation or List) that FHIR R4 does not define, in document order.
// Empty for a resource type without a table.
std::vector<UnknownElement> UnknownElements(absl::string_view resource_type, const rapidjson::Value& resource);

// Removes `unknown` (as returned by UnknownElements for this resource) from
// `resource`.
void RemoveElements(const std::vector<UnknownElement>& unknown, rapidjson::Value& resource);

}  // namespace wmty::fhir

#endif  // WMTY_FHIR_ELEMENTS_H_
