// Parser: reads one incoming FHIR resource for the mapping (FHIR -> model):
// the subject, who said it, references, contained resources, codings and
// dateTimes, adding a field violation named by FHIR path for each problem
// (it never stops at the first). Internal to the mapping (mapping_internal.h).
//
// Thread safety: a Parser is used by one thread; the static helpers are pure.
#ifndef WMTY_FHIR_MAPPING_PARSER_H_
#define WMTY_FHIR_MAPPING_PARSER_H_

#include <initializer_list>
#include <optional>
#include <span>
#include <string>
#include <vector>

#include <google/protobuf/timestamp.pb.h>

#include "absl/strings/string_view.h"
#include "common/status.h"
#include "fhir/mapping_codes.h"
#include "fhir/mapping_internal.h"

namespace wmty::fhir::internal {

// Reads `json`, a resource of FHIR type `type`; `v` (not owned, outlives the
// Parser) collects the violations, named "<type>.<path>".
class Parser {
 public:
  Parser(absl::string_view type, const Value& json, FieldViolations* v) : type_(type), json_(json), v_(v) {}

  void Fail(absl::string_view path, std::string message);

  // subject.reference -> patient id; identifier -> PatientRef.
  std::string Subject(v1::PatientRef* patient);

  // A reference to who said it. Returns false when `ref` names neither the
  // patient, a related person nor a practitioner (the caller decides whether
  // that is an error, see NamesTypeOf).
  bool Speaker(const Value& ref, absl::string_view path, v1::Speaker* out);

  // Whether `ref` is a reference the model does not map but FHIR allows here:
  // one without a literal reference (display or identifier only), or one to
  // a resource of one of `types` (also a contained one). Such a reference is
  // kept as given (section 3) and the speaker is not stated.
  bool NamesTypeOf(const Value& ref, std::initializer_list<absl::string_view> types) const;

  // The contained resource with id `id`, or nullptr.
  const Value* Contained(absl::string_view id) const;

  // A RelatedPerson's name: name[0].text, else given + family.
  static std::string PersonName(const Value& person);
  // A RelatedPerson's relationship: relationship[0].text, else its first
  // coding's display, else its code.
  static std::string Relationship(const Value& person);

  // A dateTime member into `out`; false (with a violation) when malformed.
  bool DateTime(const Value& o, absl::string_view member, absl::string_view path, google::protobuf::Timestamp* out);

  // Codings of a CodeableConcept (empty when absent).
  static std::vector<const Value*> Codings(const Value* cc);
  // Whether `coding` is system|code.
  static bool Is(const Value& coding, absl::string_view system, absl::string_view code);
  // Whether the CodeableConcept `cc` has a coding system|code.
  static bool HasCoding(const Value* cc, absl::string_view system, absl::string_view code);

  // The value of the first coding of `system` in a CodeableConcept member,
  // looked up in `table`; an unknown code of that system is a violation.
  std::optional<int> Bound(absl::string_view member, absl::string_view system, std::span<const codes::Code> table);

  // The resource read.
  const Value& json() const { return json_; }
  // The subject's id, once Subject has read it.
  const std::string& patient_id() const { return patient_id_; }

 private:
  absl::string_view type_;
  const Value& json_;
  FieldViolations* v_;
  std::string patient_id_;
};

// The id of encounter.reference "Encounter/<id>"; "" when there is none
// (another reference is kept, section 3).
std::string EncounterIdOf(const Value& resource);

// FHIR -> model of each resource family; each fills `out` (kind
// KIND_UNSPECIFIED when the resource is not one of ours).
void ParseGoal(Parser& p, Parsed* out);
void ParseObservation(Parser& p, Parsed* out);
void ParseList(Parser& p, Parsed* out);

}  // namespace wmty::fhir::internal

#endif  // WMTY_FHIR_MAPPING_PARSER_H_
