// Validation of API input, shared by every face (gRPC and FHIR call it through PatientRecords).
//
// Limits (documented in docs/api.md):
//   free text (statement, description, value_text, note text, reason): 16 KiB of
//     UTF-8, no control characters other than tab/CR/LF; required ones non-blank
//   short text (names, roles, relationships, codes, prompt...): 256 bytes
//   ids (patient, practitioner, encounter): FHIR id rule (names.h)
//   request_id: 128 bytes; page_size: 0..1000 (0 = 50)
//   repeated: 20 tags, 100 notes, 100 links, 200 priority items; Patient: 20 names,
//     20 identifiers, 10 given names / prefixes / suffixes per name
//   said_by: see CheckSpeaker; absent means NOT_STATED (SpeakerOrNotStated)
// Each function appends violations under `prefix` (e.g. "goal") and writes nothing else.
#ifndef WMTY_DOMAIN_VALIDATION_H_
#define WMTY_DOMAIN_VALIDATION_H_

#include <string>

#include "absl/strings/string_view.h"
#include "absl/time/time.h"
#include "common/status.h"
#include "wmty/v1/resources.pb.h"

namespace wmty::domain {

inline constexpr size_t kMaxTextBytes = 16 * 1024;
inline constexpr size_t kMaxShortTextBytes = 256;
inline constexpr size_t kMaxRequestIdBytes = 128;
inline constexpr int kMaxPageSize = 1000;
inline constexpr int kDefaultPageSize = 50;
inline constexpr int kMaxTags = 20;
inline constexpr int kMaxNotes = 100;
inline constexpr int kMaxLinks = 100;
inline constexpr int kMaxPriorityItems = 200;
// Patient: names and identifiers each, and the parts of one name.
inline constexpr int kMaxPatientNames = 20;
inline constexpr int kMaxPatientIdentifiers = 20;
inline constexpr int kMaxNameParts = 10;

std::string Field(absl::string_view prefix, absl::string_view name);

// Free text: required => non-blank.
void CheckText(absl::string_view value, absl::string_view field, bool required, size_t max_bytes, FieldViolations* v);
void CheckRequestId(absl::string_view request_id, absl::string_view field, FieldViolations* v);
// FHIR date: YYYY, YYYY-MM or YYYY-MM-DD, a real calendar date.
bool IsValidFhirDate(absl::string_view date);

// Common parts. `now` bounds said_time (no more than 5 minutes in the future).
void CheckPatientRef(const v1::PatientRef& ref, absl::string_view patient_id, absl::string_view prefix,
                     FieldViolations* v);
void CheckProvenance(const v1::Provenance& p, bool has, absl::string_view prefix, absl::Time now, FieldViolations* v);
void CheckRecorder(const v1::Recorder& r, bool has, absl::string_view prefix, FieldViolations* v);
// A stated on_behalf_of (Provenance, RetractRequest): a practitioner id is required.
void CheckOnBehalfOf(const v1::Recorder& r, absl::string_view prefix, FieldViolations* v);

// Who said it (provenance.said_by). PATIENT: nothing else needed;
// RELATED_PERSON: name and relationship; PRACTITIONER: practitioner_id (FHIR
// id rule), name optional; NOT_STATED: nothing else. KIND_UNSPECIFIED with no
// other field is valid and means NOT_STATED (SpeakerOrNotStated).
void CheckSpeaker(const v1::Speaker& s, absl::string_view prefix, FieldViolations* v);
inline constexpr absl::string_view kSpeakerKinds = "PATIENT, RELATED_PERSON, PRACTITIONER or NOT_STATED";

// The speaker to store: `s`, or NOT_STATED when no kind was given (an absent
// said_by). The one place that decides it, for every face: the server never
// assumes the patient said something.
v1::Speaker SpeakerOrNotStated(const v1::Speaker& s);

// Whole resources as they would be stored (after merging an update).
void CheckWhatMatters(const v1::WhatMatters& r, absl::string_view patient_id, absl::string_view prefix, absl::Time now,
                      FieldViolations* v);
void CheckGoal(const v1::Goal& r, absl::string_view patient_id, absl::string_view prefix, absl::Time now,
               FieldViolations* v);
void CheckPreference(const v1::Preference& r, absl::string_view patient_id, absl::string_view prefix, absl::Time now,
                     FieldViolations* v);
void CheckGoalScore(const v1::GoalScore& r, absl::string_view patient_id, absl::string_view prefix, absl::Time now,
                    FieldViolations* v);
void CheckPriorities(const v1::Priorities& r, absl::string_view patient_id, absl::string_view prefix, absl::Time now,
                     FieldViolations* v);
// US Core Patient rules: at least one name with a family name, a given name
// or text; at least one identifier with system and value; birth_date a FHIR
// date not after `now`'s day (UTC); gender and name use from their value
// sets. provenance.recorded_by is required (said_by does not apply).
void CheckPatient(const v1::Patient& r, absl::string_view patient_id, absl::string_view prefix, absl::Time now,
                  FieldViolations* v);

}  // namespace wmty::domain

#endif  // WMTY_DOMAIN_VALIDATION_H_
