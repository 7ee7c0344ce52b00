// Our CodeSystem (CodeSystem, mapping.h): the concepts no standard code
// covers, served at [base]/CodeSystem/wmty. The concepts themselves are the
// tables of mapping_codes.h.
#include <span>
#include <utility>

#include "fhir/mapping_codes.h"
#include "fhir/mapping_internal.h"

namespace wmty::fhir {

using internal::Narrative;
using json::Str;
using json::Value;

namespace {

// The definition of one of our preference kinds ("" for the kinds LOINC
// codes). Keyed by name, not by position, so that no entry can shift.
absl::string_view PreferenceDefinition(v1::PreferenceKind kind) {
  switch (kind) {
    case v1::COMMUNICATION_CHANNELS:
      return "Communication channels in the patient's order of preference (components preferred-channel).";
    case v1::CONTACT_TIME_WINDOW:
      return "When the patient prefers to be contacted (components contact-day, contact-start-time, "
             "contact-end-time, contact-time-zone).";
    case v1::NAME_TO_USE:
      return "The name the patient wants to be called by (valueString).";
    case v1::FAMILY_INVOLVEMENT:
      return "Who from the patient's family or caregivers should be involved, and how (components "
             "family-member-name, family-member-relationship, family-involvement-how).";
    case v1::OTHER_PREFERENCE:
      return "A preference of another kind, in the patient's words.";
    default:
      return "";
  }
}

// CodeSystem.concept, counting every concept (nested ones too) for
// CodeSystem.count.
class Concepts {
 public:
  explicit Concepts(Allocator& a) : a_(a) {}

  void Add(const codes::Concept& c) {
    concepts_.PushBack(ValueOf(c), a_);
    ++count_;
  }

  // `parent` with `children` as its nested concepts.
  void AddWithChildren(const codes::Concept& parent, std::span<const codes::ValueConcept> children) {
    Value v = ValueOf(parent);
    Value nested(rapidjson::kArrayType);
    for (const codes::ValueConcept& c : children) {
      nested.PushBack(ValueOf(c.term), a_);
      ++count_;
    }
    v.AddMember("concept", nested, a_);
    concepts_.PushBack(v, a_);
    ++count_;
  }

  int count() const { return count_; }
  Value Take() { return std::move(concepts_); }

 private:
  Value ValueOf(const codes::Concept& c) {
    Value v(rapidjson::kObjectType);
    v.AddMember("code", Str(c.code, a_), a_);
    v.AddMember("display", Str(c.display, a_), a_);
    v.AddMember("definition", Str(c.definition, a_), a_);
    return v;
  }

  Allocator& a_;
  Value concepts_{rapidjson::kArrayType};
  int count_ = 0;
};

void AddAllConcepts(Concepts& concepts) {
  concepts.Add(codes::kWhatMattersConcept);
  for (const codes::PreferenceCode& pc : codes::kPreferenceCodes) {
    if (!pc.system.empty()) continue;  // LOINC
    concepts.Add({pc.code, pc.display, PreferenceDefinition(static_cast<v1::PreferenceKind>(pc.kind))});
  }
  concepts.Add(codes::kComponentPrompt);
  concepts.AddWithChildren(codes::kComponentLifeDomain, codes::kLifeDomains);
  concepts.AddWithChildren(codes::kComponentDignity, codes::kDignityElements);
  concepts.AddWithChildren(codes::kComponentChannel, codes::kContactChannels);
  for (const codes::Concept* c :
       {&codes::kComponentDay, &codes::kComponentStart, &codes::kComponentEnd, &codes::kComponentZone,
        &codes::kComponentLanguage, &codes::kComponentInterpreter, &codes::kComponentFamilyName,
        &codes::kComponentFamilyRelationship, &codes::kComponentFamilyHow}) {
    concepts.Add(*c);
  }
}

}  // namespace

void CodeSystem(rapidjson::Value* out, Allocator& a) {
  Concepts concepts(a);
  AddAllConcepts(concepts);
  out->SetObject();
  out->AddMember("resourceType", "CodeSystem", a);
  out->AddMember("id", Str(kCodeSystemId, a), a);
  out->AddMember("text",
                 Narrative("<p>Concepts of the What Matters To You service that no standard code covers: the "
                           "what-matters answer, preference kinds, and the codes of Observation components.</p>",
                           a),
                 a);
  out->AddMember("url", Str(kCodeSystemUrl, a), a);
  out->AddMember("version", "1.0.0", a);
  out->AddMember("name", "WhatMattersToYou", a);
  out->AddMember("title", "What Matters To You concepts", a);
  out->AddMember("status", "active", a);
  out->AddMember("experimental", false, a);
  out->AddMember("publisher", "wmty", a);
  out->AddMember("description",
                 "Codes for what matters to a patient, preference kinds without a LOINC code, and the components "
                 "(question asked, life domains, Donna Hicks' elements of dignity, contact channels and times, "
                 "language, family involvement) that wmty's Observations carry.",
                 a);
  out->AddMember("caseSensitive", true, a);
  out->AddMember("hierarchyMeaning", "grouped-by", a);
  out->AddMember("content", "complete", a);
  out->AddMember("count", concepts.count(), a);
  out->AddMember("concept", concepts.Take(), a);
}

}  // namespace wmty::fhir
