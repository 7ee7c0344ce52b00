// Code systems, codes and profile canonicals of the FHIR mapping (mapping.cc).
// One table per binding, each entry pairing a wmty.v1 enum value with its FHIR
// code, so both directions read the same row. Sources are named per table;
// see also ../shared/reference/fhir-profiles.md and docs/fhir.md.
//
// Thread safety: constants only.
#ifndef WMTY_FHIR_MAPPING_CODES_H_
#define WMTY_FHIR_MAPPING_CODES_H_

#include <optional>
#include <span>

#include "absl/strings/string_view.h"

namespace wmty::fhir::codes {

// ---- Code systems.
inline constexpr absl::string_view kLoinc = "http://loinc.org";
inline constexpr absl::string_view kGoalAchievement = "http://terminology.hl7.org/CodeSystem/goal-achievement";
inline constexpr absl::string_view kGoalPriority = "http://terminology.hl7.org/CodeSystem/goal-priority";
inline constexpr absl::string_view kGoalCategory = "http://terminology.hl7.org/CodeSystem/goal-category";
inline constexpr absl::string_view kUsCoreCategory = "http://hl7.org/fhir/us/core/CodeSystem/us-core-category";
inline constexpr absl::string_view kObservationCategory = "http://terminology.hl7.org/CodeSystem/observation-category";
inline constexpr absl::string_view kListOrder = "http://terminology.hl7.org/CodeSystem/list-order";
inline constexpr absl::string_view kDaysOfWeek = "http://hl7.org/fhir/days-of-week";
inline constexpr absl::string_view kBcp47 = "urn:ietf:bcp:47";
inline constexpr absl::string_view kParticipantType =
    "http://terminology.hl7.org/CodeSystem/provenance-participant-type";
inline constexpr absl::string_view kDataOperation = "http://terminology.hl7.org/CodeSystem/v3-DataOperation";

// ---- Profiles (canonicals checked against the published IGs: US Core 8.0.0,
// PACIO ADI 1.0.0, PCO 1.0.0). Declared without a version.
inline constexpr absl::string_view kUsCoreGoal = "http://hl7.org/fhir/us/core/StructureDefinition/us-core-goal";
inline constexpr absl::string_view kUsCoreCareExperiencePreference =
    "http://hl7.org/fhir/us/core/StructureDefinition/us-core-care-experience-preference";
inline constexpr absl::string_view kUsCoreTreatmentInterventionPreference =
    "http://hl7.org/fhir/us/core/StructureDefinition/us-core-treatment-intervention-preference";
inline constexpr absl::string_view kUsCoreProvenance =
    "http://hl7.org/fhir/us/core/StructureDefinition/us-core-provenance";
inline constexpr absl::string_view kAdiPersonalGoal =
    "http://hl7.org/fhir/us/pacio-adi/StructureDefinition/ADI-PersonalGoal";
inline constexpr absl::string_view kAdiPersonalPrioritiesOrganizer =
    "http://hl7.org/fhir/us/pacio-adi/StructureDefinition/ADI-PersonalPrioritiesOrganizer";
inline constexpr absl::string_view kPcoGoal = "http://hl7.org/fhir/us/pco/StructureDefinition/pco-goal-profile";
inline constexpr absl::string_view kPcoGasGoal = "http://hl7.org/fhir/us/pco/StructureDefinition/pco-gas-goal-profile";
inline constexpr absl::string_view kPcoGasScore =
    "http://hl7.org/fhir/us/pco/StructureDefinition/pco-gas-score-observation";
// PCO extension carrying the five GAS levels of a Goal (its presence makes a
// Goal a PCO GAS goal).
inline constexpr absl::string_view kPcoGasScalingExtension =
    "http://hl7.org/fhir/us/pco/StructureDefinition/pco-goal-attainment-scaling";

// ---- LOINC codes (fhir-profiles.md).
inline constexpr absl::string_view kLoincCareExperiencePreference = "95541-9";
inline constexpr absl::string_view kLoincTreatmentInterventionPreference = "75773-2";
inline constexpr absl::string_view kLoincPersonalHealthGoal = "87528-6";
inline constexpr absl::string_view kLoincPrioritiesList = "81340-2";

// A row of a binding table: the wmty.v1 enum value and its FHIR code.
struct Code {
  int value;
  absl::string_view code;
  absl::string_view display;
};

inline const Code* ByValue(std::span<const Code> table, int value) {
  for (const Code& c : table) {
    if (c.value == value) return &c;
  }
  return nullptr;
}
inline const Code* ByCode(std::span<const Code> table, absl::string_view code) {
  for (const Code& c : table) {
    if (c.code == code) return &c;
  }
  return nullptr;
}

// Goal.lifecycleStatus (http://hl7.org/fhir/goal-status, required binding).
// entered-in-error is not in the table: it is a retracted version.
inline constexpr Code kGoalLifecycle[] = {
    {1, "proposed", "Proposed"},   {2, "planned", "Planned"},   {3, "accepted", "Accepted"},
    {4, "active", "Active"},       {5, "on-hold", "On Hold"},   {6, "completed", "Completed"},
    {7, "cancelled", "Cancelled"}, {8, "rejected", "Rejected"},
};

// Goal.achievementStatus (kGoalAchievement).
inline constexpr Code kGoalAchievementCodes[] = {
    {1, "in-progress", "In Progress"},   {2, "improving", "Improving"},     {3, "worsening", "Worsening"},
    {4, "no-change", "No Change"},       {5, "achieved", "Achieved"},       {6, "sustaining", "Sustaining"},
    {7, "not-achieved", "Not Achieved"}, {8, "no-progress", "No Progress"}, {9, "not-attainable", "Not Attainable"},
};

// Goal.priority (kGoalPriority).
inline constexpr Code kGoalPriorityCodes[] = {
    {1, "high-priority", "High Priority"},
    {2, "medium-priority", "Medium Priority"},
    {3, "low-priority", "Low Priority"},
};

// Goal.category: PERSONAL_HEALTH_GOAL (1) is LOINC 87528-6; the rest are
// kGoalCategory codes.
inline constexpr Code kGoalCategoryCodes[] = {
    {2, "dietary", "Dietary"},
    {3, "safety", "Safety"},
    {4, "behavioral", "Behavioral"},
    {5, "nursing", "Nursing"},
    {6, "physiotherapy", "Physiotherapy"},
};

// PCO goal-attainment scaling score Observation.code (LOINC), by
// v1::GoalScoreType. PCO 1.0.0 (published) binds the baseline score to
// 112296-9 "Goal attainment scale GAS baseline"; 107332-9 "Goal attainment
// scale - Reported" (the ballot's code, now Goal.target.measure) is accepted
// on input as the initial score too.
inline constexpr Code kGoalScoreCodes[] = {
    {1, "112296-9", "Goal attainment scale GAS baseline"},
    {2, "107334-5", "Patient follow-up goal attainment scaling score"},
    {3, "107333-7", "Practitioner follow-up goal attainment scaling score"},
    {4, "107331-1", "Caregiver follow-up goal attainment scaling score"},
};
inline constexpr Code kGoalScoreInputAliases[] = {
    {1, "107332-9", "Goal attainment scale - Reported"},
};

// GAS score answers, LOINC answer list LL6900-6, by score -2..+2 (codes as
// used by the HL7 PCO IG's examples).
inline constexpr Code kGasAnswers[] = {
    {2, "LA34479-8", "Much better than expected"}, {1, "LA34480-6", "Better than expected"},
    {0, "LA34481-4", "Expected outcome"},          {-1, "LA34483-0", "Less than expected"},
    {-2, "LA34484-8", "Much less than expected"},
};

// Preference kinds: Observation.code. Every kind but TREATMENT_INTERVENTION
// is a care experience preference (LOINC 95541-9) and, except the generic
// CARE_EXPERIENCE_PREFERENCE, carries a second, specific coding: LOINC where
// one exists, else our CodeSystem (system "" below means kCodeSystemUrl).
struct PreferenceCode {
  int kind;
  absl::string_view system;  // "" = our CodeSystem; kLoinc otherwise
  absl::string_view code;
  absl::string_view display;
};
inline constexpr PreferenceCode kPreferenceCodes[] = {
    {3, "", "communication-channels", "Preferred communication channels"},
    {4, "", "contact-time-window", "Preferred contact time"},
    {5, "", "name-to-use", "Name to use"},
    {6, kLoinc, "90778-2", "Personal pronouns - Reported"},
    {7, kLoinc, "54899-0", "Preferred language"},
    {8, "", "family-involvement", "Family and caregiver involvement"},
    {9, kLoinc, "81364-2", "Religious or cultural beliefs"},
    {10, kLoinc, "81360-0", ""},
    {11, kLoinc, "81362-6", ""},
    {12, "", "other-preference", "Other preference"},
};

// A term of our CodeSystem (kCodeSystemUrl in mapping.h).
struct Concept {
  absl::string_view code;
  absl::string_view display;
  absl::string_view definition;
};

inline constexpr Concept kWhatMattersConcept = {
    "what-matters", "What matters to me",
    "The patient's answer, in their own words, to \"What matters to you?\" (IHI Age-Friendly Health Systems, the "
    "4Ms). No LOINC code exists for it; an Observation with this code is a wmty WhatMatters entry."};

// Observation.component codes of our CodeSystem.
inline constexpr Concept kComponentPrompt = {"prompt", "Question asked",
                                             "The question the patient answered, e.g. \"What matters most to you "
                                             "today?\" (valueString)."};
inline constexpr Concept kComponentLifeDomain = {
    "life-domain", "Life domain",
    "The area of life the answer speaks to (valueCodeableConcept, one of the child concepts). One component per "
    "domain."};
inline constexpr Concept kComponentDignity = {
    "dignity-element", "Element of dignity",
    "Which of Donna Hicks' ten essential elements of dignity the answer speaks to (valueCodeableConcept, one of the "
    "child concepts). One component per element."};
inline constexpr Concept kComponentChannel = {
    "preferred-channel", "Preferred contact channel",
    "A communication channel the patient accepts (valueCodeableConcept, one of the child concepts). One component "
    "per channel, in the patient's order of preference: the first component is the most preferred."};
inline constexpr Concept kComponentDay = {
    "contact-day", "Contact day",
    "A weekday on which the patient may be contacted (valueCodeableConcept from http://hl7.org/fhir/days-of-week). "
    "One component per day."};
inline constexpr Concept kComponentStart = {"contact-start-time", "Contact window start",
                                            "Earliest local time of day for contact (valueTime)."};
inline constexpr Concept kComponentEnd = {"contact-end-time", "Contact window end",
                                          "Latest local time of day for contact (valueTime)."};
inline constexpr Concept kComponentZone = {"contact-time-zone", "Contact window time zone",
                                           "IANA time zone of the contact window times, e.g. America/Chicago "
                                           "(valueString)."};
inline constexpr Concept kComponentLanguage = {
    "language", "Language", "The preferred language as a BCP-47 tag (valueCodeableConcept, system urn:ietf:bcp:47)."};
inline constexpr Concept kComponentInterpreter = {"interpreter-needed", "Interpreter needed",
                                                  "Whether the patient needs an interpreter (valueBoolean)."};
inline constexpr Concept kComponentFamilyName = {"family-member-name", "Family member or caregiver",
                                                 "Name of the person the patient wants involved (valueString)."};
inline constexpr Concept kComponentFamilyRelationship = {"family-member-relationship", "Relationship",
                                                         "That person's relationship to the patient (valueString)."};
inline constexpr Concept kComponentFamilyHow = {
    "family-involvement-how", "How to involve them",
    "How the patient wants that person involved, e.g. present for care decisions (valueString)."};

// Life domains (v1::LifeDomain), children of kComponentLifeDomain.
struct ValueConcept {
  int value;
  Concept term;
};
inline constexpr ValueConcept kLifeDomains[] = {
    {1, {"family-and-relationships", "Family and relationships", "Family, friends, relationships and community."}},
    {2, {"independence-and-mobility", "Independence and mobility", "Getting around and doing things for oneself."}},
    {3, {"comfort-and-symptoms", "Comfort and symptoms", "Pain, comfort and the burden of symptoms."}},
    {4, {"work-and-purpose", "Work and purpose", "Work, roles and a sense of purpose."}},
    {5, {"hobbies-and-joy", "Hobbies and joy", "Pastimes and what brings joy."}},
    {6, {"spirituality-and-culture", "Spirituality and culture", "Faith, spirituality, culture and traditions."}},
    {7, {"home-and-daily-life", "Home and daily life", "Home, routines and daily living."}},
    {8, {"fears-and-worries", "Fears and worries", "What the person fears or worries about."}},
    {9, {"care-experience", "Care experience", "How the person wants to be treated while receiving care."}},
    {10, {"finances", "Finances", "Money, costs of care and financial security."}},
};

// Dr. Donna Hicks' ten essential elements of dignity (v1::DignityElement),
// children of kComponentDignity (definitions paraphrased).
inline constexpr ValueConcept kDignityElements[] = {
    {1,
     {"acceptance-of-identity", "Acceptance of identity",
      "Approach people as neither inferior nor superior to you; accept who they are."}},
    {2, {"inclusion", "Inclusion", "Make others feel that they belong."}},
    {3,
     {"safety", "Safety",
      "Put people at ease physically and psychologically, so they can speak without fear of humiliation."}},
    {4,
     {"acknowledgment", "Acknowledgment",
      "Give people full attention: listen to, validate and respond to their concerns and experiences."}},
    {5, {"recognition", "Recognition", "Validate people for their talents, effort, thoughtfulness and help."}},
    {6, {"fairness", "Fairness", "Treat people justly, with equality, and in an even-handed way."}},
    {7,
     {"benefit-of-the-doubt", "Benefit of the doubt",
      "Treat people as trustworthy, starting from the premise that they have good motives."}},
    {8,
     {"understanding", "Understanding",
      "Believe that what others think matters and give them the chance to explain their perspective."}},
    {9,
     {"independence", "Independence",
      "Encourage people to act on their own behalf, so that they feel in control of their lives."}},
    {10,
     {"accountability", "Accountability",
      "Take responsibility for your actions and apologize if you have violated another's dignity."}},
};

// Contact channels (v1::ContactChannel), children of kComponentChannel.
inline constexpr ValueConcept kContactChannels[] = {
    {1, {"phone-call", "Phone call", "A voice telephone call."}},
    {2, {"sms", "Text message", "An SMS text message."}},
    {3, {"email", "Email", "Electronic mail."}},
    {4, {"patient-portal", "Patient portal", "A message in the patient portal."}},
    {5, {"postal-mail", "Postal mail", "A letter by post."}},
    {6, {"in-person", "In person", "Face to face."}},
    {7, {"video-visit", "Video visit", "A video call."}},
};

inline const ValueConcept* ConceptByValue(std::span<const ValueConcept> table, int value) {
  for (const ValueConcept& c : table) {
    if (c.value == value) return &c;
  }
  return nullptr;
}
inline const ValueConcept* ConceptByCode(std::span<const ValueConcept> table, absl::string_view code) {
  for (const ValueConcept& c : table) {
    if (c.term.code == code) return &c;
  }
  return nullptr;
}

// http://hl7.org/fhir/days-of-week, by ISO weekday 1 (Monday) .. 7.
inline constexpr Code kDays[] = {
    {1, "mon", "Monday"}, {2, "tue", "Tuesday"},  {3, "wed", "Wednesday"}, {4, "thu", "Thursday"},
    {5, "fri", "Friday"}, {6, "sat", "Saturday"}, {7, "sun", "Sunday"},
};

}  // namespace wmty::fhir::codes

#endif  // WMTY_FHIR_MAPPING_CODES_H_
