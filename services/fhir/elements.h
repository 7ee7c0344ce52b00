// The FHIR R4 (4.0.1) element names, types and cardinalities of the
// resources the FHIR face reads (Goal, Observation, List, Patient, and the
// RelatedPerson or Practitioner it may find contained in them) and of the
// datatypes inside them: the one table of R4 elements in wmty. It lets the
// mapping refuse, or drop, an element FHIR does not define ("foo",
// "subject.foo", "component[0].bar") before anything is stored, so that the
// server never keeps and serves back invalid FHIR (mapping_kept.cc); it gives
// the R4 element order of output, and what an element is (Patient checks the
// JSON form of its elements with it, patient_mapping.h).
//
// What is checked: every member name of the resource, and of every complex
// element below it, against R4 (choice types by their typed names, e.g.
// effectiveDateTime; "_x" only for a primitive element x; Element's id and
// extension everywhere, modifierExtension on backbone elements). Not checked:
// value types, cardinality, an extension's value (any type) and the elements
// of a contained resource of a type other than Goal, Observation, List,
// RelatedPerson and Practitioner; the mapping checks what it maps.
//
// Thread safety: pure functions over static tables.
#ifndef WMTY_FHIR_ELEMENTS_H_
#define WMTY_FHIR_ELEMENTS_H_

#include <optional>
#include <string>
#include <vector>

#include <rapidjson/document.h>

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

// What R4 defines member `member` of a value of `type` to be.
struct ElementInfo {
  // The element's type ("CodeableConcept", "string"); for a sibling "_x",
  // the type of x.
  absl::string_view type;
  // Whether it repeats (cardinality ..*): a JSON array.
  bool many = false;
  // Whether its type is a FHIR primitive (lower-case type name).
  bool primitive = false;
  // Whether `member` is the "_x" sibling (id, extension) of primitive x.
  bool sibling = false;
};

// What `member` of a value of R4 type `type` (a resource, a backbone element
// such as "Goal.target", or a datatype) is; nullopt when R4 does not define
// it there, or `type` has no table. Covers Resource and DomainResource
// elements (and resourceType) of a resource, and Element.id / extension
// (modifierExtension on backbone elements) of the others.
std::optional<ElementInfo> ElementOf(absl::string_view type, absl::string_view member);

// The element names of `type` in R4 definition order (a resource's starting
// with resourceType and the Resource and DomainResource elements, without
// "_x" siblings); empty for a type without a table.
const std::vector<absl::string_view>& ElementOrder(absl::string_view type);

// Puts the members of object `resource` (of R4 type `type`) in R4 order: FHIR
// JSON order is not significant, but readers expect it. A "_x" sibling
// follows x; names R4 does not define go last, in their order.
void SortElements(absl::string_view type, rapidjson::Value& resource, rapidjson::Document::AllocatorType& alloc);

// Removes `unknown` (as returned by UnknownElements for this resource) from
// `resource`.
void RemoveElements(const std::vector<UnknownElement>& unknown, rapidjson::Value& resource);

}  // namespace wmty::fhir

#endif  // WMTY_FHIR_ELEMENTS_H_
