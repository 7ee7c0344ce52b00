// Internal to the wmty.v1 <-> FHIR R4 mapping (the mapping*.cc files): what
// its parts share. Not for callers outside services/fhir/mapping*.cc; they use
// mapping.h. The specification is the comment at the top of mapping.cc
// (sections 1, 2 and 4), mapping_kept.cc (section 3) and
// mapping_provenance.cc (Provenance).
//
//   mapping.cc               FromFhir, ToFhir, FhirTypeOf, meta.profile
//   mapping_records.cc       stored records and references (names <-> FHIR)
//   mapping_parser.{h,cc}    Parser: reading one FHIR resource, collecting violations
//   mapping_parse.cc         FHIR -> model: Goal, List, and the dispatch
//   mapping_parse_observation.cc  FHIR -> model: the Observations
//   mapping_generate.cc      model -> FHIR elements
//   mapping_kept.cc          what survives a round trip (section 3)
//   mapping_narrative.cc     the generated narrative (text)
//   mapping_provenance.cc    the Provenance of a version
//   mapping_codesystem.cc    our CodeSystem
//   mapping_paths.cc         domain field paths -> FHIR element paths
//
// Errors: parsing collects field violations (FieldViolations) and never
// stops at the first; the rest returns DATA_LOSS for a stored record that
// does not parse. Thread safety: pure functions.
#ifndef WMTY_FHIR_MAPPING_INTERNAL_H_
#define WMTY_FHIR_MAPPING_INTERNAL_H_

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "common/status.h"
#include "fhir/mapping.h"
#include "fhir/mapping_json.h"
#include "wmty/storage/record.pb.h"
#include "wmty/v1/resources.pb.h"

namespace wmty::fhir::internal {

using json::Member;
using json::Str;
using json::StringMember;
using json::StringOf;
using json::Value;

// The id of the contained RelatedPerson that a RELATED_PERSON speaker becomes.
inline constexpr absl::string_view kSpeakerId = "speaker";
// List.title of a patient's priorities.
inline constexpr absl::string_view kListTitle = "What matters most to me";

// ---- Stored records and references (mapping_records.cc)

// "Type/<id>" -> id (FHIR id rule), else nullopt.
std::optional<std::string> RefId(absl::string_view ref, absl::string_view type);
// The id of a resource name ("patients/p/goals/<id>"); "" when it is not one.
std::string IdOfName(absl::string_view name);
// "Goal/<id>", "Observation/<id>" or "List/<patient id>" for a resource name
// (priorities items, goal links); "" when it is not one.
std::string RefOfName(absl::string_view name);

// The model resource of a stored record; DATA_LOSS when it does not parse,
// INVALID_ARGUMENT for a kind that is not one of AnyResource's.
absl::StatusOr<AnyResource> Decode(const storage::Record& record);
// A Patient version's provenance (who wrote it) in a form ProvenanceOf
// reads: Patient is not one of the AnyResource kinds.
absl::StatusOr<AnyResource> PatientAsProvenanceCarrier(const storage::Record& record);
const v1::Provenance& ProvenanceOfResource(const AnyResource& r);
v1::Provenance* MutableProvenanceOf(AnyResource& r);
const std::string& RetractReasonOfResource(const AnyResource& r);

// ---- FHIR -> model (mapping_parse*.cc)

// A FHIR resource mapped to the model; see Incoming (mapping.h).
struct Parsed {
  storage::Kind kind = storage::KIND_UNSPECIFIED;
  std::string patient_id;
  AnyResource resource;
  // List only: entry[].item.reference in order (Incoming::list_item_refs).
  std::vector<std::string> item_refs;
};

// Maps the elements of a FHIR resource of `type` (already checked to be
// ours), adding a violation to `v` per problem.
Parsed ParseResource(absl::string_view type, const Value& resource, FieldViolations* v);

// ---- Model -> FHIR (mapping_generate.cc)

struct GenContext {
  std::string patient_id;
  // Used where a time is required and the model has none (GAS effective).
  int64_t fallback_micros = 0;
};

// The mapped elements of `resource` (no resourceType, id, meta or text) into
// `body`. For PRIORITIES, `item_refs` (when not null) are the entries instead
// of those generated from the item names.
void GenerateBody(storage::Kind kind, const AnyResource& resource, const GenContext& ctx,
                  const std::vector<std::string>* item_refs, Value* body, json::Allocator& a);

// Reference to who said it, or null when not stated.
Value SpeakerRef(const v1::Speaker& s, absl::string_view pid, json::Allocator& a);
// The contained RelatedPerson of a RELATED_PERSON speaker.
Value SpeakerResource(const v1::Speaker& s, absl::string_view pid, json::Allocator& a);
// A one-element array holding `v`.
Value Array1(Value v, json::Allocator& a);

// ---- What survives a round trip (mapping_kept.cc, section 3)

// The elements of an incoming `resource` to keep (Incoming::extra_json): the
// members that belong to no group, and every group that differs from what
// the model generates (`generated`). An empty object when there are none.
Value KeptElements(storage::Kind kind, const Value& resource, const Value& generated, json::Allocator& a);

// The body to emit: `generated` with the kept groups of `extra` that still
// agree with the model.
void MergeKept(storage::Kind kind, const Value& generated, const Value& extra, const GenContext& ctx, Value* out,
               json::Allocator& a);

// Adds to `out` the members of `extra` that belong to no group.
void AddUngrouped(storage::Kind kind, const Value& extra, Value* out, json::Allocator& a);

// Drops contained resources no element refers to (dom-3), keeping those
// referred to by other kept contained resources.
void PruneContained(Value& resource);

// ---- Narrative (mapping_narrative.cc)

// A generated Narrative whose div holds `xhtml_body`.
Value Narrative(const std::string& xhtml_body, json::Allocator& a);
// The narrative XHTML of a resource (`resource`: its FHIR form so far).
std::string NarrativeOf(storage::Kind kind, const AnyResource& r, const Value& resource, bool retracted);

}  // namespace wmty::fhir::internal

#endif  // WMTY_FHIR_MAPPING_INTERNAL_H_
