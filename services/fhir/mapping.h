// Mapping between the wmty.v1 model and FHIR R4 JSON (RapidJSON DOM).
//
//   Goal         <-> Goal         (US Core Goal; PACIO ADI PersonalGoal when the
//                                  patient said it; PCO Goal)
//   WhatMatters  <-> Observation  (US Core Care Experience Preference + our
//                                  CodeSystem's what-matters code)
//   Preference   <-> Observation  (US Core Care Experience / Treatment
//                                  Intervention Preference, specific LOINC)
//   GoalScore    <-> Observation  (PCO goal-attainment scaling score)
//   Priorities   <-> List         (PACIO ADI PersonalPrioritiesOrganizer)
//   each version  -> Provenance   (US Core Provenance: author, informant)
// See docs/fhir.md and ../shared/reference/fhir-profiles.md; the full mapping
// (elements, codes) is the comment at the top of mapping.cc, what survives a
// round trip the one at the top of mapping_kept.cc. Helpers: mapping_codes.h (code tables, system and profile
// canonicals), mapping_json.h (RapidJSON helpers; FormatInstant/FormatDateTime/
// ParseDateTime for FHIR instants and dateTimes).
//
// FHIR ids: a resource's FHIR id is its wmty id (a ULID); the List of a
// patient's priorities has the patient id as its id; a Provenance has id
// "s<sequence>" (the change-log sequence of the version it describes).
// R4 elements the wmty.v1 model does not have are kept verbatim in
// Record.fhir_extra_json and merged back on output, so they survive a round
// trip unchanged; elements R4 does not define are refused (or dropped), never
// kept, and never emitted.
//
// Thread safety: pure functions.
#ifndef WMTY_FHIR_MAPPING_H_
#define WMTY_FHIR_MAPPING_H_

#include <string>
#include <variant>
#include <vector>

#include <rapidjson/document.h>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "domain/fhir_types.h"
#include "domain/resources.h"
#include "wmty/storage/record.pb.h"
#include "wmty/v1/resources.pb.h"

namespace wmty::fhir {

// Canonical URL of our CodeSystem (concepts no standard code covers); served
// at [base]/CodeSystem/wmty.
inline constexpr absl::string_view kCodeSystemUrl = "https://fhir.wmty.health/CodeSystem/wmty";
inline constexpr absl::string_view kCodeSystemId = "wmty";

using Allocator = rapidjson::Document::AllocatorType;
using AnyResource = domain::AnyResource;  // the domain's: what the generic writes take

// A FHIR resource as our model sees it.
struct Incoming {
  storage::Kind kind = storage::KIND_UNSPECIFIED;
  // From subject.reference "Patient/<id>" (required).
  std::string patient_id;
  // The mapped resource; names, versions and provenance.recorded_by are left
  // for the caller (provenance.said_by comes from expressedBy/performer).
  AnyResource resource;
  // JSON object of the R4 elements not mapped (never id, meta, text, mapped
  // elements, or elements R4 does not define); "" when there are none. It also holds, verbatim, the original
  // of every mapped element that carries more than the model keeps (extra
  // codings, extensions, display, ...): ToFhir re-emits such an original as
  // long as it still maps to what the model holds (see mapping_kept.cc). Store it
  // as Record.fhir_extra_json (CallContext::fhir_extra_json).
  std::string extra_json;
  // List only: List.entry[].item.reference in order, each "Goal/<id>" or
  // "Observation/<id>" (ids checked against the FHIR id rule). The mapping
  // cannot tell a WhatMatters Observation from a Preference one, so
  // Priorities.items is left empty: the caller resolves each reference (an
  // Observation id is looked up as WHAT_MATTERS, then PREFERENCE) and fills
  // items with domain::FormatName(kind, patient_id, id), in this order.
  // A reference it cannot resolve is a violation on "List.entry[i].item".
  std::vector<std::string> list_item_refs;
  // UnknownElementPolicy::kDrop only: how many elements R4 does not define
  // were dropped (not mapped, not kept), and the FHIR paths of the first
  // kMaxUnknownElementsListed of them, for warnings.
  size_t dropped_count = 0;
  std::vector<std::string> dropped_elements;
};

// What FromFhir does with an element FHIR R4 does not define (elements.h),
// e.g. "foo" or "subject.foo": refuse the resource (a violation per element,
// the description starting with kUnknownElement), or drop the element and
// map the rest (Incoming::dropped_elements).
enum class UnknownElementPolicy { kRefuse, kDrop };
inline constexpr absl::string_view kUnknownElement = "unknown element";
// At most this many are named, one violation (or warning) each; the rest are
// counted in one more, so a body of many small unknown members does not get
// a many times larger answer.
inline constexpr size_t kMaxUnknownElementsListed = 50;

// Maps a parsed FHIR resource of type `resource_type` ("Goal", "Observation",
// "List"). INVALID_ARGUMENT with field violations whose fields are FHIR
// element paths (e.g. "Goal.lifecycleStatus") when it is not one of ours,
// breaks a required binding, or (kRefuse) has elements R4 does not define.
absl::StatusOr<Incoming> FromFhir(absl::string_view resource_type, const rapidjson::Value& json,
                                  UnknownElementPolicy unknown = UnknownElementPolicy::kRefuse);

// The FHIR resource type a stored kind maps to: the domain's table
// (domain/fhir_types.h).
using domain::FhirTypeOf;

// Writes the FHIR resource for a stored version into `out` (an object),
// including id, meta.versionId, meta.lastUpdated, meta.profile and the kept
// extra elements. A retracted version of a Goal has lifecycleStatus
// entered-in-error; of an Observation, status entered-in-error.
absl::Status ToFhir(const storage::Record& record, rapidjson::Value* out, Allocator& alloc);

// The US Core Provenance of one stored version (target: that version).
// US Core requires agent.onBehalfOf when agent.who is a Practitioner: it is
// `organization_reference` (e.g. "Organization/123") with
// `organization_display`, or, without a reference, a display-only reference.
struct ProvenanceOptions {
  std::string organization_reference;
  std::string organization_display = "Organization of the recording practitioner";
};
absl::Status ProvenanceOf(const storage::Record& record, rapidjson::Value* out, Allocator& alloc);
absl::Status ProvenanceOf(const storage::Record& record, const ProvenanceOptions& options, rapidjson::Value* out,
                          Allocator& alloc);
std::string ProvenanceId(const storage::Record& record);
// Why a retracted version was retracted ("" when not retracted or no reason
// was given); DATA_LOSS if the stored resource does not parse.
absl::StatusOr<std::string> RetractReasonOf(const storage::Record& record);

// Our CodeSystem resource (all concepts, with definitions).
void CodeSystem(rapidjson::Value* out, Allocator& alloc);

// Maps a domain field path ("goal.description") to the FHIR element path
// ("Goal.description.text") for OperationOutcome.issue.expression; returns
// the input when there is no better name.
std::string FhirPathFor(storage::Kind kind, absl::string_view field);

}  // namespace wmty::fhir

#endif  // WMTY_FHIR_MAPPING_H_
