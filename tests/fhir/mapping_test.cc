// The wmty.v1 <-> FHIR R4 mapping (services/fhir/mapping.h): both directions
// for every kind, round trips that keep extensions, extra codings and notes
// unchanged, refusals naming the FHIR path, meta and profiles, retracted
// versions, Provenance, our CodeSystem and FhirPathFor.
#include "fhir/mapping.h"

#include <algorithm>
#include <cstdlib>
#include <fstream>
#include <functional>
#include <optional>
#include <set>
#include <string>
#include <vector>

#include <gmock/gmock.h>
#include <google/protobuf/util/message_differencer.h>
#include <gtest/gtest.h>
#include <rapidjson/pointer.h>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_replace.h"
#include "common/status.h"
#include "fhir/elements.h"
#include "fhir/mapping_codes.h"
#include "fhir/mapping_json.h"
#include "support/test_support.h"

namespace wmty::fhir {
namespace {

using ::testing::Contains;
using ::testing::ElementsAre;
using ::testing::HasSubstr;
using ::testing::IsEmpty;
using ::testing::Not;
using ::wmty::testing::StatusIs;
using ::wmty::testing::ViolatedFields;

constexpr char kPid[] = "pat-1";
// 2026-11-23T16:33:29.520Z
constexpr int64_t kUpdateMicros = 1795451609520000;
constexpr char kUpdateInstant[] = "2026-11-23T16:33:29.520Z";

// ---- helpers

rapidjson::Document Parse(const std::string& text) {
  rapidjson::Document d;
  EXPECT_TRUE(json::Parse(text, &d).ok()) << text;
  return d;
}

std::string Str(const rapidjson::Value& v) { return json::Serialize(v); }

const rapidjson::Value* At(const rapidjson::Value& root, const char* pointer) {
  return rapidjson::Pointer(pointer).Get(root);
}

std::string StringAt(const rapidjson::Value& root, const char* pointer) {
  const rapidjson::Value* v = At(root, pointer);
  return v != nullptr && v->IsString() ? std::string(v->GetString(), v->GetStringLength()) : "<absent>";
}

std::vector<std::string> Profiles(const rapidjson::Value& r) {
  std::vector<std::string> out;
  if (const rapidjson::Value* p = At(r, "/meta/profile")) {
    for (const auto& e : p->GetArray()) out.emplace_back(e.GetString());
  }
  return out;
}

Incoming MustFromFhir(const std::string& text) {
  rapidjson::Document d = Parse(text);
  absl::StatusOr<Incoming> in = FromFhir(json::StringMember(d, "resourceType").value_or(""), d);
  EXPECT_TRUE(in.ok()) << in.status() << "\n" << text;
  return in.ok() ? *std::move(in) : Incoming();
}

std::vector<std::string> RefusedFields(const std::string& type, const std::string& text) {
  rapidjson::Document d = Parse(text);
  absl::StatusOr<Incoming> in = FromFhir(type, d);
  EXPECT_THAT(in, StatusIs(absl::StatusCode::kInvalidArgument));
  return in.ok() ? std::vector<std::string>{} : ViolatedFields(in.status());
}

v1::Provenance Nurse(v1::Speaker::Kind said_by = v1::Speaker::PATIENT) {
  v1::Provenance p = ::wmty::testing::NurseProvenance();
  p.mutable_said_by()->set_kind(said_by);
  if (said_by == v1::Speaker::RELATED_PERSON) {
    p.mutable_said_by()->set_name("Maria Lopez");
    p.mutable_said_by()->set_relationship("daughter");
  }
  p.mutable_said_time()->set_seconds(1795450000);
  return p;
}

template <class R>
storage::Record MakeRecord(storage::Kind kind, const R& resource, const std::string& id, int64_t version = 1,
                           const std::string& extra = "", bool retracted = false) {
  storage::Record r;
  r.set_kind(kind);
  r.set_patient_id(kPid);
  r.set_id(id);
  r.set_version(version);
  r.set_retracted(retracted);
  r.set_sequence(42);
  r.set_update_time_micros(kUpdateMicros);
  r.set_resource(resource.SerializeAsString());
  r.set_fhir_extra_json(extra);
  return r;
}

// What the domain adds to what came from FHIR before storing it.
template <class R>
R AsStored(R r, storage::Kind kind, const std::string& id) {
  r.set_name(kind == storage::PRIORITIES ? absl::StrCat("patients/", kPid, "/priorities")
                                         : absl::StrCat("patients/", kPid, "/x/", id));
  *r.mutable_provenance()->mutable_recorded_by() = ::wmty::testing::NurseProvenance().recorded_by();
  r.mutable_provenance()->set_channel(v1::EHR_PLUGIN);
  if (!r.provenance().has_said_time()) r.mutable_provenance()->mutable_said_time()->set_seconds(1795450000);
  return r;
}

// FHIR's rule that no element is empty ({}, [], "" or null), and the other
// invariants every resource we return must keep.
void ExpectNoEmptyElements(const rapidjson::Value& v, const std::string& path = "") {
  if (v.IsObject()) {
    EXPECT_FALSE(v.ObjectEmpty()) << "empty object at " << path;
    for (auto it = v.MemberBegin(); it != v.MemberEnd(); ++it) {
      ExpectNoEmptyElements(it->value, path + "/" + it->name.GetString());
    }
  } else if (v.IsArray()) {
    EXPECT_FALSE(v.Empty()) << "empty array at " << path;
    for (rapidjson::SizeType i = 0; i < v.Size(); ++i) ExpectNoEmptyElements(v[i], absl::StrCat(path, "/", i));
  } else if (v.IsString()) {
    EXPECT_NE(v.GetStringLength(), 0u) << "empty string at " << path;
  } else {
    EXPECT_FALSE(v.IsNull()) << "null at " << path;
  }
}

void ExpectValidShape(const rapidjson::Value& r) {
  ExpectNoEmptyElements(r);
  const std::string type = StringAt(r, "/resourceType");
  EXPECT_NE(StringAt(r, "/id"), "<absent>");
  EXPECT_EQ(StringAt(r, "/text/status"), "generated");
  EXPECT_TRUE(absl::StartsWith(StringAt(r, "/text/div"), "<div xmlns=\"http://www.w3.org/1999/xhtml\">"));
  if (type == "Observation") {
    EXPECT_NE(StringAt(r, "/status"), "<absent>");
    EXPECT_NE(At(r, "/code"), nullptr);
  } else if (type == "List") {
    EXPECT_NE(StringAt(r, "/status"), "<absent>");
    EXPECT_NE(StringAt(r, "/mode"), "<absent>");
  } else if (type == "Goal") {
    EXPECT_NE(StringAt(r, "/lifecycleStatus"), "<absent>");
    // The patient's words, or (a goal coded only) the codings as they came.
    EXPECT_TRUE(StringAt(r, "/description/text") != "<absent>" || At(r, "/description/coding/0") != nullptr);
  }
  // Every contained resource is referenced (dom-3), every local reference resolves.
  std::vector<std::string> contained_ids;
  if (const rapidjson::Value* c = At(r, "/contained")) {
    for (const auto& e : c->GetArray()) contained_ids.emplace_back(e["id"].GetString());
  }
  const std::string text = Str(r);
  for (const std::string& id : contained_ids) {
    EXPECT_THAT(text, HasSubstr(absl::StrCat("\"reference\":\"#", id, "\""))) << "unreferenced contained " << id;
  }
}

// With WMTY_FHIR_DUMP_DIR set, every resource a test produces is written
// there (one JSON file each) so that it can be run through a FHIR validator,
// e.g. tests/conformance's @medplum/core validation.
void Dump(const rapidjson::Value& resource) {
  const char* dir = std::getenv("WMTY_FHIR_DUMP_DIR");
  if (dir == nullptr || *dir == '\0') return;
  static int n = 0;
  const auto* info = ::testing::UnitTest::GetInstance()->current_test_info();
  std::ofstream(absl::StrCat(dir, "/", info->test_suite_name(), ".", info->name(), ".", n++, ".json"))
      << json::Serialize(resource);
}

rapidjson::Document ToJson(const storage::Record& record) {
  rapidjson::Document d;
  absl::Status s = ToFhir(record, &d, d.GetAllocator());
  EXPECT_TRUE(s.ok()) << s;
  ExpectValidShape(d);
  Dump(d);
  return d;
}

// Every top-level element of `in` except id, meta and text comes back equal.
void ExpectElementsKept(const rapidjson::Value& in, const rapidjson::Value& out) {
  for (auto it = in.MemberBegin(); it != in.MemberEnd(); ++it) {
    const std::string name = it->name.GetString();
    if (name == "id" || name == "meta" || name == "text") continue;
    const rapidjson::Value* got = json::Member(out, name);
    ASSERT_NE(got, nullptr) << name << " missing in " << Str(out);
    EXPECT_EQ(Str(it->value), Str(*got)) << name;
    EXPECT_TRUE(it->value == *got) << name;
  }
}

// ---- Goal

constexpr char kPlainGoal[] = R"json({
  "resourceType": "Goal",
  "lifecycleStatus": "active",
  "achievementStatus": {"coding": [{"system": "http://terminology.hl7.org/CodeSystem/goal-achievement",
                                    "code": "improving", "display": "Improving"}]},
  "category": [{"coding": [{"system": "http://loinc.org", "code": "87528-6", "display": "Personal health goal"}]},
               {"coding": [{"system": "http://terminology.hl7.org/CodeSystem/goal-category", "code": "behavioral",
                            "display": "Behavioral"}]}],
  "priority": {"coding": [{"system": "http://terminology.hl7.org/CodeSystem/goal-priority",
                           "code": "high-priority", "display": "High Priority"}]},
  "description": {"text": "Walk my daughter down the aisle in June"},
  "subject": {"reference": "Patient/pat-1"},
  "startDate": "2026-11-01",
  "target": [{"dueDate": "2027-06-15"}],
  "expressedBy": {"reference": "Patient/pat-1"},
  "addresses": [{"reference": "Observation/wm-1"}],
  "note": [{"authorString": "nurse-17", "time": "2026-11-20T10:00:00Z", "text": "Practising with a cane"}]
})json";

TEST(GoalFromFhir, MapsEveryElement) {
  Incoming in = MustFromFhir(kPlainGoal);
  EXPECT_EQ(in.kind, storage::GOAL);
  EXPECT_EQ(in.patient_id, kPid);
  const auto& g = std::get<v1::Goal>(in.resource);
  EXPECT_EQ(g.patient().id(), kPid);
  EXPECT_EQ(g.description(), "Walk my daughter down the aisle in June");
  EXPECT_EQ(g.lifecycle_status(), v1::GOAL_ACTIVE);
  EXPECT_EQ(g.achievement_status(), v1::IMPROVING);
  EXPECT_EQ(g.priority(), v1::HIGH_PRIORITY);
  EXPECT_THAT(g.categories(), ElementsAre(v1::PERSONAL_HEALTH_GOAL, v1::BEHAVIORAL));
  EXPECT_EQ(g.start_date(), "2026-11-01");
  EXPECT_EQ(g.target_date(), "2027-06-15");
  EXPECT_THAT(g.what_matters(), ElementsAre("patients/pat-1/whatMatters/wm-1"));
  ASSERT_EQ(g.notes_size(), 1);
  EXPECT_EQ(g.notes(0).text(), "Practising with a cane");
  EXPECT_EQ(g.notes(0).author(), "nurse-17");
  EXPECT_EQ(g.notes(0).time().seconds(), 1795168800);
  EXPECT_EQ(g.provenance().said_by().kind(), v1::Speaker::PATIENT);
  // Everything was understood exactly: nothing to keep.
  EXPECT_EQ(in.extra_json, "");
}

TEST(GoalToFhir, HasMetaProfilesAndEveryElement) {
  v1::Goal g = ::wmty::testing::ValidGoal();
  g.set_name("patients/pat-1/goals/g-1");
  g.mutable_patient()->set_id(kPid);
  *g.mutable_provenance() = Nurse();
  g.add_what_matters("patients/pat-1/whatMatters/wm-1");
  v1::Note* n = g.add_notes();
  n->set_text("Practising with a cane");
  n->set_author("nurse-17");
  n->mutable_time()->set_seconds(1795168800);
  rapidjson::Document d = ToJson(MakeRecord(storage::GOAL, g, "g-1", 3));
  EXPECT_EQ(StringAt(d, "/resourceType"), "Goal");
  EXPECT_EQ(StringAt(d, "/id"), "g-1");
  EXPECT_EQ(StringAt(d, "/meta/versionId"), "3");
  EXPECT_EQ(StringAt(d, "/meta/lastUpdated"), kUpdateInstant);
  EXPECT_THAT(Profiles(d), ElementsAre(std::string(codes::kUsCoreGoal), std::string(codes::kAdiPersonalGoal)));
  EXPECT_EQ(StringAt(d, "/lifecycleStatus"), "active");
  EXPECT_EQ(StringAt(d, "/achievementStatus/coding/0/code"), "in-progress");
  EXPECT_EQ(StringAt(d, "/priority/coding/0/code"), "high-priority");
  EXPECT_EQ(StringAt(d, "/category/0/coding/0/code"), "87528-6");
  EXPECT_EQ(StringAt(d, "/description/text"), "Walk my daughter down the aisle in June");
  EXPECT_EQ(StringAt(d, "/subject/reference"), "Patient/pat-1");
  EXPECT_EQ(StringAt(d, "/startDate"), "2026-11-01");
  EXPECT_EQ(StringAt(d, "/target/0/dueDate"), "2027-06-15");
  EXPECT_EQ(StringAt(d, "/expressedBy/reference"), "Patient/pat-1");
  EXPECT_EQ(StringAt(d, "/addresses/0/reference"), "Observation/wm-1");
  EXPECT_EQ(StringAt(d, "/note/0/text"), "Practising with a cane");
  EXPECT_EQ(StringAt(d, "/note/0/authorString"), "nurse-17");
  EXPECT_EQ(StringAt(d, "/note/0/time"), "2026-11-20T10:00:00Z");
  EXPECT_THAT(StringAt(d, "/text/div"), HasSubstr("Walk my daughter down the aisle in June"));

  // And back: the same model.
  Incoming back = MustFromFhir(Str(d));
  const auto& g2 = std::get<v1::Goal>(back.resource);
  EXPECT_EQ(g2.description(), g.description());
  EXPECT_THAT(g2.categories(), ElementsAre(v1::PERSONAL_HEALTH_GOAL));
  EXPECT_EQ(g2.notes(0).time().seconds(), 1795168800);
  EXPECT_EQ(back.extra_json, "");
}

TEST(GoalToFhir, AdiPersonalGoalOnlyWhenThePatientSaidIt) {
  v1::Goal g = ::wmty::testing::ValidGoal();
  *g.mutable_provenance() = Nurse(v1::Speaker::RELATED_PERSON);
  rapidjson::Document d = ToJson(MakeRecord(storage::GOAL, g, "g-1"));
  EXPECT_THAT(Profiles(d), ElementsAre(std::string(codes::kUsCoreGoal)));
  EXPECT_EQ(StringAt(d, "/expressedBy/reference"), "#speaker");
  EXPECT_EQ(StringAt(d, "/expressedBy/display"), "Maria Lopez");
  EXPECT_EQ(StringAt(d, "/contained/0/resourceType"), "RelatedPerson");
  EXPECT_EQ(StringAt(d, "/contained/0/id"), "speaker");
  EXPECT_EQ(StringAt(d, "/contained/0/patient/reference"), "Patient/pat-1");
  EXPECT_EQ(StringAt(d, "/contained/0/name/0/text"), "Maria Lopez");
  EXPECT_EQ(StringAt(d, "/contained/0/relationship/0/text"), "daughter");

  Incoming back = MustFromFhir(Str(d));
  const v1::Speaker& s = std::get<v1::Goal>(back.resource).provenance().said_by();
  EXPECT_EQ(s.kind(), v1::Speaker::RELATED_PERSON);
  EXPECT_EQ(s.name(), "Maria Lopez");
  EXPECT_EQ(s.relationship(), "daughter");
  EXPECT_EQ(back.extra_json, "");

  // The patient said it and it has an identifier: expressedBy repeats subject exactly.
  *g.mutable_provenance() = Nurse();
  g.mutable_patient()->set_identifier_system("urn:oid:2.16.840.1.113883.19.5");
  g.mutable_patient()->set_identifier_value("MRN-1");
  rapidjson::Document with_id = ToJson(MakeRecord(storage::GOAL, g, "g-1"));
  EXPECT_EQ(StringAt(with_id, "/subject/identifier/value"), "MRN-1");
  EXPECT_TRUE(*At(with_id, "/subject") == *At(with_id, "/expressedBy"));
  EXPECT_THAT(Profiles(with_id), Contains(std::string(codes::kAdiPersonalGoal)));
  EXPECT_EQ(std::get<v1::Goal>(MustFromFhir(Str(with_id)).resource).patient().identifier_value(), "MRN-1");
  // A display on expressedBy but not on subject: no longer subject = expressedBy.
  Incoming shown = MustFromFhir(R"json({"resourceType": "Goal", "lifecycleStatus": "active",
    "category": [{"coding": [{"system": "http://loinc.org", "code": "87528-6", "display": "Personal health goal"}]}],
    "description": {"text": "Walk"}, "subject": {"reference": "Patient/pat-1"},
    "expressedBy": {"reference": "Patient/pat-1", "display": "Bea"}})json");
  EXPECT_THAT(
      Profiles(ToJson(MakeRecord(storage::GOAL, AsStored(std::get<v1::Goal>(shown.resource), storage::GOAL, "g-2"),
                                 "g-2", 1, shown.extra_json))),
      Not(Contains(std::string(codes::kAdiPersonalGoal))));

  g.clear_categories();  // the patient said it, but not a personal health goal
  *g.mutable_provenance() = Nurse();
  EXPECT_THAT(Profiles(ToJson(MakeRecord(storage::GOAL, g, "g-1"))), ElementsAre(std::string(codes::kUsCoreGoal)));
}

TEST(GoalFromFhir, ReadsAContainedRelatedPersonOfAnyShape) {
  Incoming in = MustFromFhir(R"json({
    "resourceType": "Goal", "lifecycleStatus": "proposed",
    "contained": [{"resourceType": "RelatedPerson", "id": "rp1", "patient": {"reference": "Patient/pat-1"},
                   "name": [{"given": ["Maria", "José"], "family": "Lopez"}],
                   "relationship": [{"coding": [{"system": "http://terminology.hl7.org/CodeSystem/v3-RoleCode",
                                                 "code": "DAU", "display": "natural daughter"}]}]}],
    "description": {"text": "Be home for the harvest"},
    "subject": {"reference": "Patient/pat-1"},
    "expressedBy": {"reference": "#rp1"}
  })json");
  const v1::Speaker& s = std::get<v1::Goal>(in.resource).provenance().said_by();
  EXPECT_EQ(s.kind(), v1::Speaker::RELATED_PERSON);
  EXPECT_EQ(s.name(), "Maria José Lopez");
  EXPECT_EQ(s.relationship(), "natural daughter");
  // Kept as given: the contained resource and the reference to it.
  rapidjson::Document extra = Parse(in.extra_json);
  EXPECT_EQ(StringAt(extra, "/expressedBy/reference"), "#rp1");
  EXPECT_EQ(StringAt(extra, "/contained/0/id"), "rp1");
}

// An incoming Goal with everything a real client may add.
constexpr char kRichGoal[] = R"json({
  "resourceType": "Goal",
  "id": "ignored-id",
  "meta": {"versionId": "99", "profile": ["http://example.org/x"]},
  "text": {"status": "generated", "div": "<div xmlns=\"http://www.w3.org/1999/xhtml\">theirs</div>"},
  "extension": [
    {"url": "http://hl7.org/fhir/us/pco/StructureDefinition/pco-goal-attainment-scaling",
     "extension": [{"url": "level", "valueCoding": {"system": "http://loinc.org", "code": "LA34481-4",
                                                     "display": "Expected outcome"}},
                   {"url": "text", "valueString": "I walk to the mailbox every day"}]}],
  "identifier": [{"system": "urn:oid:1.2.3", "value": "G-77"}],
  "lifecycleStatus": "active",
  "_lifecycleStatus": {"extension": [{"url": "http://example.org/why", "valueString": "agreed at bedside"}]},
  "achievementStatus": {"coding": [{"system": "http://terminology.hl7.org/CodeSystem/goal-achievement",
                                    "code": "improving"}], "text": "Getting better"},
  "category": [{"coding": [{"system": "http://loinc.org", "code": "87528-6"},
                           {"system": "http://snomed.info/sct", "code": "736366004", "display": "Advance care plan"}],
                "text": "Personal"}],
  "priority": {"coding": [{"system": "http://terminology.hl7.org/CodeSystem/goal-priority", "code": "low-priority"}]},
  "description": {"text": "Walk to the mailbox", "extension": [{"url": "http://example.org/lang", "valueCode": "en"}]},
  "subject": {"reference": "Patient/pat-1", "display": "Bea Smith"},
  "startDate": "2026-11-01",
  "target": [{"measure": {"coding": [{"system": "http://loinc.org", "code": "107332-9"}]},
              "detailString": "walk daily", "dueDate": "2027-02-01"}],
  "expressedBy": {"reference": "Patient/pat-1", "display": "Bea Smith"},
  "addresses": [{"reference": "Observation/wm-1"}, {"reference": "Condition/c-9", "display": "Hip fracture"}],
  "note": [{"authorReference": {"reference": "Practitioner/nurse-17", "display": "Ana Ruiz"},
            "time": "2026-11-20T10:00:00+01:00", "text": "Practising with a cane",
            "extension": [{"url": "http://example.org/seen", "valueBoolean": true}]},
           {"text": "Wants her dog along"}],
  "outcomeReference": [{"reference": "Observation/score-1"}]
})json";

TEST(GoalRoundTrip, KeepsExtensionsExtraCodingsAndNotesUnchanged) {
  rapidjson::Document original = Parse(kRichGoal);
  Incoming in = MustFromFhir(kRichGoal);
  const auto& g = std::get<v1::Goal>(in.resource);
  EXPECT_EQ(g.description(), "Walk to the mailbox");
  EXPECT_EQ(g.achievement_status(), v1::IMPROVING);
  EXPECT_EQ(g.priority(), v1::LOW_PRIORITY);
  EXPECT_THAT(g.categories(), ElementsAre(v1::PERSONAL_HEALTH_GOAL));
  EXPECT_EQ(g.target_date(), "2027-02-01");
  EXPECT_THAT(g.what_matters(), ElementsAre("patients/pat-1/whatMatters/wm-1"));
  ASSERT_EQ(g.notes_size(), 2);
  EXPECT_EQ(g.notes(0).author(), "Ana Ruiz");
  EXPECT_EQ(g.notes(0).time().seconds(), 1795165200);  // +01:00
  // The header never goes to extra_json.
  rapidjson::Document extra = Parse(in.extra_json);
  EXPECT_EQ(json::Member(extra, "id"), nullptr);
  EXPECT_EQ(json::Member(extra, "meta"), nullptr);
  EXPECT_EQ(json::Member(extra, "text"), nullptr);
  // Elements we generate exactly are not kept.
  EXPECT_EQ(json::Member(extra, "startDate"), nullptr);

  v1::Goal stored = AsStored(g, storage::GOAL, "g-1");
  rapidjson::Document out = ToJson(MakeRecord(storage::GOAL, stored, "g-1", 1, in.extra_json));
  ExpectElementsKept(original, out);
  EXPECT_EQ(StringAt(out, "/id"), "g-1");
  EXPECT_EQ(StringAt(out, "/meta/versionId"), "1");
  EXPECT_THAT(Profiles(out), Contains(std::string(codes::kPcoGasGoal)));
  EXPECT_THAT(Profiles(out), Contains(std::string(codes::kAdiPersonalGoal)));
  EXPECT_THAT(StringAt(out, "/text/div"), Not(HasSubstr("theirs")));
}

TEST(GoalRoundTrip, AnElementChangedThroughTheModelIsRegeneratedTheRestKept) {
  rapidjson::Document original = Parse(kRichGoal);
  Incoming in = MustFromFhir(kRichGoal);
  v1::Goal stored = AsStored(std::get<v1::Goal>(in.resource), storage::GOAL, "g-1");
  // A gRPC update: new categories and priority, same everything else.
  stored.clear_categories();
  stored.add_categories(v1::DIETARY);
  stored.set_priority(v1::HIGH_PRIORITY);
  rapidjson::Document out = ToJson(MakeRecord(storage::GOAL, stored, "g-1", 2, in.extra_json));
  EXPECT_EQ(Str(*At(out, "/category")),
            R"([{"coding":[{"system":"http://terminology.hl7.org/CodeSystem/goal-category","code":"dietary",)"
            R"("display":"Dietary"}]}])");
  EXPECT_EQ(StringAt(out, "/priority/coding/0/code"), "high-priority");
  for (const char* kept : {"note", "description", "achievementStatus", "extension", "addresses", "target"}) {
    EXPECT_TRUE(*json::Member(original, kept) == *json::Member(out, kept)) << kept;
  }
  EXPECT_THAT(Profiles(out), Not(Contains(std::string(codes::kAdiPersonalGoal))));

  // A related person now said it: expressedBy and the contained speaker follow the model.
  *stored.mutable_provenance()->mutable_said_by() = Nurse(v1::Speaker::RELATED_PERSON).said_by();
  rapidjson::Document out2 = ToJson(MakeRecord(storage::GOAL, stored, "g-1", 3, in.extra_json));
  EXPECT_EQ(StringAt(out2, "/expressedBy/reference"), "#speaker");
  EXPECT_EQ(StringAt(out2, "/contained/0/name/0/text"), "Maria Lopez");
}

TEST(GoalRoundTrip, KeptContainedResourcesSurviveAChangedSpeaker) {
  Incoming in = MustFromFhir(R"json({
    "resourceType": "Goal", "lifecycleStatus": "active",
    "contained": [{"resourceType": "RelatedPerson", "id": "rp1", "patient": {"reference": "Patient/pat-1"},
                   "name": [{"text": "Maria"}], "relationship": [{"text": "daughter"}]},
                  {"resourceType": "Condition", "id": "c1", "subject": {"reference": "Patient/pat-1"},
                   "code": {"text": "Hip fracture"}}],
    "description": {"text": "Dance at the wedding"},
    "subject": {"reference": "Patient/pat-1"},
    "expressedBy": {"reference": "#rp1"},
    "addresses": [{"reference": "#c1"}]
  })json");
  v1::Goal stored = AsStored(std::get<v1::Goal>(in.resource), storage::GOAL, "g-1");
  stored.mutable_provenance()->mutable_said_by()->set_kind(v1::Speaker::PATIENT);
  rapidjson::Document out = ToJson(MakeRecord(storage::GOAL, stored, "g-1", 2, in.extra_json));
  EXPECT_EQ(StringAt(out, "/expressedBy/reference"), "Patient/pat-1");
  // The Condition is still there (referenced); the related person is gone (no longer referenced).
  ASSERT_NE(At(out, "/contained"), nullptr);
  EXPECT_EQ(At(out, "/contained")->Size(), 1u);
  EXPECT_EQ(StringAt(out, "/contained/0/id"), "c1");
  EXPECT_EQ(StringAt(out, "/addresses/0/reference"), "#c1");
}

TEST(GoalRoundTrip, AContainedSpeakerSurvivesAChangeElsewhere) {
  const std::string text = R"json({
    "resourceType": "Goal", "lifecycleStatus": "active",
    "contained": [{"resourceType": "RelatedPerson", "id": "rp1", "patient": {"reference": "Patient/pat-1"},
                   "name": [{"text": "Maria"}], "relationship": [{"text": "daughter"}],
                   "telecom": [{"system": "phone", "value": "555-0100"}]}],
    "description": {"text": "Dance at the wedding"},
    "subject": {"reference": "Patient/pat-1"},
    "expressedBy": {"reference": "#rp1", "display": "Maria"}
  })json";
  rapidjson::Document original = Parse(text);
  Incoming in = MustFromFhir(text);
  v1::Goal stored = AsStored(std::get<v1::Goal>(in.resource), storage::GOAL, "g-1");
  stored.set_lifecycle_status(v1::COMPLETED);  // through gRPC
  rapidjson::Document out = ToJson(MakeRecord(storage::GOAL, stored, "g-1", 2, in.extra_json));
  EXPECT_EQ(StringAt(out, "/lifecycleStatus"), "completed");
  EXPECT_TRUE(*At(original, "/expressedBy") == *At(out, "/expressedBy")) << Str(out);
  EXPECT_TRUE(*At(original, "/contained") == *At(out, "/contained")) << Str(out);
}

TEST(GoalToFhir, RetractedIsEnteredInError) {
  v1::Goal g = ::wmty::testing::ValidGoal();
  rapidjson::Document d = ToJson(MakeRecord(storage::GOAL, g, "g-1", 4, "", /*retracted=*/true));
  EXPECT_EQ(StringAt(d, "/lifecycleStatus"), "entered-in-error");
  EXPECT_EQ(StringAt(d, "/meta/versionId"), "4");
}

TEST(GoalFromFhir, RefusalsNameTheFhirPath) {
  auto goal = [](const std::string& members) { return absl::StrCat(R"({"resourceType": "Goal", )", members, "}"); };
  const std::string subject = R"("subject": {"reference": "Patient/pat-1"})";
  const std::string description = R"("description": {"text": "Walk"})";
  EXPECT_THAT(RefusedFields(
                  "Goal", goal(absl::StrCat(R"("lifecycleStatus": "entered-in-error", )", description, ", ", subject))),
              ElementsAre("Goal.lifecycleStatus"));
  EXPECT_THAT(
      RefusedFields("Goal", goal(absl::StrCat(R"("lifecycleStatus": "dreaming", )", description, ", ", subject))),
      ElementsAre("Goal.lifecycleStatus"));
  EXPECT_THAT(RefusedFields("Goal", goal(absl::StrCat(description, ", ", subject))),
              ElementsAre("Goal.lifecycleStatus"));
  EXPECT_THAT(RefusedFields("Goal", goal(absl::StrCat(R"("lifecycleStatus": "active", )", subject))),
              ElementsAre("Goal.description.text"));
  EXPECT_THAT(RefusedFields("Goal", goal(absl::StrCat(R"("lifecycleStatus": "active", )", description))),
              ElementsAre("Goal.subject"));
  EXPECT_THAT(RefusedFields("Goal", goal(absl::StrCat(R"("lifecycleStatus": "active", )", description,
                                                      R"(, "subject": {"reference": "Group/7"})"))),
              ElementsAre("Goal.subject.reference"));
  EXPECT_THAT(RefusedFields("Goal", goal(absl::StrCat(R"("lifecycleStatus": "active", )", description, ", ", subject,
                                                      R"(, "note": [{"text": "ok"}, {"text": "x", "time": "soon"}])"))),
              ElementsAre("Goal.note[1].time"));
  EXPECT_THAT(RefusedFields("Goal", goal(absl::StrCat(R"("lifecycleStatus": "active", )", description, ", ", subject,
                                                      R"(, "note": [{"authorString": "me"}])"))),
              ElementsAre("Goal.note[0].text"));
  EXPECT_THAT(RefusedFields(
                  "Goal", goal(absl::StrCat(R"("lifecycleStatus": "active", )", description, ", ", subject,
                                            R"(, "modifierExtension": [{"url": "http://x", "valueBoolean": true}])"))),
              ElementsAre("Goal.modifierExtension"));
  EXPECT_THAT(RefusedFields("Goal", goal(absl::StrCat(R"("lifecycleStatus": "active", )", description, ", ", subject,
                                                      R"(, "expressedBy": {"reference": "Organization/o1"})"))),
              ElementsAre("Goal.expressedBy"));
  EXPECT_THAT(RefusedFields("Goal", goal(absl::StrCat(R"("lifecycleStatus": "active", )", description, ", ", subject,
                                                      R"(, "expressedBy": {"reference": "Patient/other"})"))),
              ElementsAre("Goal.expressedBy"));
  EXPECT_THAT(RefusedFields("Goal", goal(absl::StrCat(R"("lifecycleStatus": "active", )", description, ", ", subject,
                                                      R"(, "expressedBy": {"reference": "#nobody"})"))),
              ElementsAre("Goal.expressedBy"));
  EXPECT_THAT(
      RefusedFields(
          "Goal",
          goal(absl::StrCat(
              R"("lifecycleStatus": "active", )", description, ", ", subject,
              R"(, "achievementStatus": {"coding": [{"system": "http://terminology.hl7.org/CodeSystem/goal-achievement", "code": "meh"}]})"))),
      ElementsAre("Goal.achievementStatus"));
  EXPECT_THAT(
      RefusedFields(
          "Goal",
          goal(absl::StrCat(
              R"("lifecycleStatus": "active", )", description, ", ", subject,
              R"(, "category": [{"text": "x"}, {"coding": [{"system": "http://terminology.hl7.org/CodeSystem/goal-category", "code": "fun"}]}])"))),
      ElementsAre("Goal.category[1]"));
  EXPECT_THAT(RefusedFields("Goal", goal(absl::StrCat(R"("lifecycleStatus": "active", )", description, ", ", subject,
                                                      R"(, "addresses": [{"reference": "Observation/a b"}])"))),
              ElementsAre("Goal.addresses[0].reference"));
  // Every violation at once.
  EXPECT_THAT(RefusedFields("Goal", R"({"resourceType": "Goal"})"),
              ElementsAre("Goal.subject", "Goal.lifecycleStatus", "Goal.description.text"));
}

TEST(FromFhir, WrongOrUnsupportedResourceTypeIsRefusedOnResourceType) {
  EXPECT_THAT(RefusedFields("Goal", R"({"resourceType": "Observation"})"), ElementsAre("resourceType"));
  EXPECT_THAT(RefusedFields("Goal", R"({"lifecycleStatus": "active"})"), ElementsAre("resourceType"));
  EXPECT_THAT(RefusedFields("Goal", R"([1, 2])"), ElementsAre("resourceType"));
  EXPECT_THAT(RefusedFields("Patient", R"({"resourceType": "Patient"})"), ElementsAre("resourceType"));
}

// ---- WhatMatters

constexpr char kWhatMatters[] = R"json({
  "resourceType": "Observation",
  "status": "final",
  "category": [{"coding": [{"system": "http://hl7.org/fhir/us/core/CodeSystem/us-core-category",
                            "code": "care-experience-preference", "display": "Care experience preference"}]}],
  "code": {"coding": [{"system": "http://loinc.org", "code": "95541-9", "display": "Care experience preference"},
                      {"system": "https://fhir.wmty.health/CodeSystem/wmty", "code": "what-matters",
                       "display": "What matters to me"}]},
  "subject": {"reference": "Patient/pat-1"},
  "encounter": {"reference": "Encounter/enc-1"},
  "effectiveDateTime": "2026-11-23T15:00:00Z",
  "performer": [{"reference": "Patient/pat-1"}],
  "valueString": "Being home for my garden",
  "component": [
    {"code": {"coding": [{"system": "https://fhir.wmty.health/CodeSystem/wmty", "code": "prompt",
                          "display": "Question asked"}]},
     "valueString": "What matters most to you today?"},
    {"code": {"coding": [{"system": "https://fhir.wmty.health/CodeSystem/wmty", "code": "life-domain",
                          "display": "Life domain"}]},
     "valueCodeableConcept": {"coding": [{"system": "https://fhir.wmty.health/CodeSystem/wmty",
                                          "code": "home-and-daily-life", "display": "Home and daily life"}]}},
    {"code": {"coding": [{"system": "https://fhir.wmty.health/CodeSystem/wmty", "code": "dignity-element",
                          "display": "Element of dignity"}]},
     "valueCodeableConcept": {"coding": [{"system": "https://fhir.wmty.health/CodeSystem/wmty",
                                          "code": "independence", "display": "Independence"}]}}]
})json";

TEST(WhatMattersFromFhir, MapsEveryElement) {
  Incoming in = MustFromFhir(kWhatMatters);
  EXPECT_EQ(in.kind, storage::WHAT_MATTERS);
  const auto& wm = std::get<v1::WhatMatters>(in.resource);
  EXPECT_EQ(wm.statement(), "Being home for my garden");
  EXPECT_EQ(wm.prompt(), "What matters most to you today?");
  EXPECT_THAT(wm.life_domains(), ElementsAre(v1::HOME_AND_DAILY_LIFE));
  EXPECT_THAT(wm.dignity_elements(), ElementsAre(v1::INDEPENDENCE));
  EXPECT_EQ(wm.provenance().said_by().kind(), v1::Speaker::PATIENT);
  EXPECT_EQ(wm.provenance().said_time().seconds(), 1795446000);
  EXPECT_EQ(wm.provenance().encounter_id(), "enc-1");
  EXPECT_EQ(in.extra_json, "");
}

TEST(WhatMattersToFhir, IsACareExperiencePreferenceWithOurCode) {
  v1::WhatMatters wm = ::wmty::testing::ValidWhatMatters();
  *wm.mutable_provenance() = Nurse();
  rapidjson::Document d = ToJson(MakeRecord(storage::WHAT_MATTERS, wm, "wm-1", 2));
  EXPECT_EQ(StringAt(d, "/resourceType"), "Observation");
  EXPECT_THAT(Profiles(d), ElementsAre(std::string(codes::kUsCoreCareExperiencePreference)));
  EXPECT_EQ(StringAt(d, "/status"), "final");
  EXPECT_EQ(StringAt(d, "/category/0/coding/0/code"), "care-experience-preference");
  EXPECT_EQ(StringAt(d, "/code/coding/0/code"), "95541-9");
  EXPECT_EQ(StringAt(d, "/code/coding/1/system"), std::string(kCodeSystemUrl));
  EXPECT_EQ(StringAt(d, "/code/coding/1/code"), "what-matters");
  EXPECT_EQ(StringAt(d, "/valueString"), "Being home for my garden");
  EXPECT_EQ(StringAt(d, "/performer/0/reference"), "Patient/pat-1");
  EXPECT_EQ(StringAt(d, "/encounter/reference"), "Encounter/enc-1");
  EXPECT_EQ(StringAt(d, "/effectiveDateTime"), "2026-11-23T16:06:40Z");
  EXPECT_EQ(StringAt(d, "/component/0/code/coding/0/code"), "prompt");
  EXPECT_EQ(StringAt(d, "/component/1/valueCodeableConcept/coding/0/code"), "home-and-daily-life");
  EXPECT_EQ(StringAt(d, "/component/2/valueCodeableConcept/coding/0/code"), "independence");

  Incoming back = MustFromFhir(Str(d));
  wm.clear_name();
  wm.mutable_patient()->set_id(kPid);
  v1::WhatMatters expected = wm;
  expected.mutable_provenance()->clear_recorded_by();
  expected.mutable_provenance()->clear_channel();
  EXPECT_TRUE(google::protobuf::util::MessageDifferencer::Equals(std::get<v1::WhatMatters>(back.resource), expected))
      << std::get<v1::WhatMatters>(back.resource).DebugString();
  EXPECT_EQ(back.extra_json, "");
}

TEST(WhatMattersRoundTrip, KeepsForeignCodingsComponentsAndNotes) {
  const std::string text = R"json({
    "resourceType": "Observation",
    "extension": [{"url": "http://example.org/asked-by", "valueString": "chaplain"}],
    "status": "amended",
    "category": [{"coding": [{"system": "http://hl7.org/fhir/us/core/CodeSystem/us-core-category",
                              "code": "care-experience-preference"}]},
                 {"coding": [{"system": "http://hl7.org/fhir/us/pco/CodeSystem/pco-concepts",
                              "code": "what-matters"}]}],
    "code": {"coding": [{"system": "http://loinc.org", "code": "95541-9"},
                        {"system": "https://fhir.wmty.health/CodeSystem/wmty", "code": "what-matters"},
                        {"system": "http://snomed.info/sct", "code": "247751003", "display": "Sense of purpose"}],
             "text": "What matters"},
    "subject": {"reference": "Patient/pat-1"},
    "effectiveDateTime": "2026-11-23",
    "performer": [{"reference": "Practitioner/nurse-17"}, {"reference": "Patient/pat-1"}],
    "valueString": "Seeing my grandson graduate",
    "note": [{"text": "Said with tears in her eyes"}],
    "component": [{"code": {"coding": [{"system": "http://loinc.org", "code": "75281-6"}]},
                   "valueString": "faith matters"},
                  {"code": {"coding": [{"system": "https://fhir.wmty.health/CodeSystem/wmty", "code": "life-domain"}]},
                   "valueCodeableConcept": {"coding": [{"system": "https://fhir.wmty.health/CodeSystem/wmty",
                                                        "code": "family-and-relationships"}]}}],
    "derivedFrom": [{"reference": "QuestionnaireResponse/qr-1"}]
  })json";
  rapidjson::Document original = Parse(text);
  Incoming in = MustFromFhir(text);
  const auto& wm = std::get<v1::WhatMatters>(in.resource);
  EXPECT_EQ(wm.statement(), "Seeing my grandson graduate");
  EXPECT_THAT(wm.life_domains(), ElementsAre(v1::FAMILY_AND_RELATIONSHIPS));
  EXPECT_EQ(wm.provenance().said_by().kind(), v1::Speaker::PATIENT);
  EXPECT_EQ(wm.provenance().said_time().seconds(), 1795392000);  // date = start of day, UTC
  rapidjson::Document out =
      ToJson(MakeRecord(storage::WHAT_MATTERS, AsStored(wm, storage::WHAT_MATTERS, "wm-1"), "wm-1", 1, in.extra_json));
  ExpectElementsKept(original, out);
}

TEST(WhatMattersFromFhir, RefusalsNameTheFhirPath) {
  auto obs = [](const std::string& members) {
    return absl::StrCat(
        R"({"resourceType": "Observation", "subject": {"reference": "Patient/pat-1"},)"
        R"( "code": {"coding": [{"system": "https://fhir.wmty.health/CodeSystem/wmty", "code": "what-matters"}]})",
        members, "}");
  };
  EXPECT_THAT(RefusedFields("Observation", obs(R"(, "status": "final")")), ElementsAre("Observation.valueString"));
  EXPECT_THAT(RefusedFields("Observation", obs(R"(, "status": "entered-in-error", "valueString": "x")")),
              ElementsAre("Observation.status"));
  EXPECT_THAT(RefusedFields("Observation", obs(R"(, "status": "preliminary", "valueString": "x")")),
              ElementsAre("Observation.status"));
  EXPECT_THAT(RefusedFields("Observation", obs(R"(, "valueString": "x")")), ElementsAre("Observation.status"));
  EXPECT_THAT(RefusedFields("Observation",
                            obs(R"(, "status": "final", "valueString": "x", "effectiveDateTime": "2026-11-23T10:00")")),
              ElementsAre("Observation.effectiveDateTime"));
  EXPECT_THAT(
      RefusedFields(
          "Observation",
          obs(R"(, "status": "final", "valueString": "x", "component": [{"code": {"coding": [{"system": "https://fhir.wmty.health/CodeSystem/wmty", "code": "life-domain"}]}, "valueCodeableConcept": {"coding": [{"system": "https://fhir.wmty.health/CodeSystem/wmty", "code": "gardening"}]}}])")),
      ElementsAre("Observation.component[0].valueCodeableConcept"));
  EXPECT_THAT(
      RefusedFields("Observation",
                    R"({"resourceType": "Observation", "status": "final", "subject": {"reference": "Patient/pat-1"},
                                "code": {"coding": [{"system": "http://loinc.org", "code": "8867-4"}]}, "valueString": "x"})"),
      ElementsAre("Observation.code"));
}

// ---- Preference

TEST(PreferenceToFhir, EveryKindHasItsCodesCategoryAndProfileAndComesBack) {
  struct Case {
    v1::PreferenceKind kind;
    std::string second_system;  // "" = no second coding
    std::string second_code;
  };
  const std::string ours(kCodeSystemUrl);
  const std::vector<Case> cases = {
      {v1::CARE_EXPERIENCE_PREFERENCE, "", ""},
      {v1::TREATMENT_INTERVENTION, "", ""},
      {v1::COMMUNICATION_CHANNELS, ours, "communication-channels"},
      {v1::CONTACT_TIME_WINDOW, ours, "contact-time-window"},
      {v1::NAME_TO_USE, ours, "name-to-use"},
      {v1::PRONOUNS, "http://loinc.org", "90778-2"},
      {v1::LANGUAGE, "http://loinc.org", "54899-0"},
      {v1::FAMILY_INVOLVEMENT, ours, "family-involvement"},
      {v1::SPIRITUAL_CULTURAL, "http://loinc.org", "81364-2"},
      {v1::LIKES_AND_JOYS, "http://loinc.org", "81360-0"},
      {v1::DISLIKES_AND_FEARS, "http://loinc.org", "81362-6"},
      {v1::OTHER_PREFERENCE, ours, "other-preference"},
  };
  for (const Case& c : cases) {
    SCOPED_TRACE(v1::PreferenceKind_Name(c.kind));
    v1::Preference p;
    p.set_kind(c.kind);
    p.set_value_text("In my words");
    *p.mutable_provenance() = Nurse();
    rapidjson::Document d = ToJson(MakeRecord(storage::PREFERENCE, p, "pr-1"));
    const bool treatment = c.kind == v1::TREATMENT_INTERVENTION;
    EXPECT_EQ(StringAt(d, "/code/coding/0/system"), "http://loinc.org");
    EXPECT_EQ(StringAt(d, "/code/coding/0/code"), treatment ? "75773-2" : "95541-9");
    EXPECT_EQ(StringAt(d, "/category/0/coding/0/code"),
              treatment ? "treatment-intervention-preference" : "care-experience-preference");
    EXPECT_THAT(Profiles(d), ElementsAre(std::string(treatment ? codes::kUsCoreTreatmentInterventionPreference
                                                               : codes::kUsCoreCareExperiencePreference)));
    if (c.second_code.empty()) {
      EXPECT_EQ(At(d, "/code/coding/1"), nullptr);
    } else {
      EXPECT_EQ(StringAt(d, "/code/coding/1/system"), c.second_system);
      EXPECT_EQ(StringAt(d, "/code/coding/1/code"), c.second_code);
    }
    EXPECT_EQ(StringAt(d, "/valueString"), "In my words");
    Incoming back = MustFromFhir(Str(d));
    EXPECT_EQ(back.kind, storage::PREFERENCE);
    EXPECT_EQ(std::get<v1::Preference>(back.resource).kind(), c.kind);
    EXPECT_EQ(back.extra_json, "");
  }
}

v1::Preference Stripped(v1::Preference p) {
  p.clear_name();
  p.mutable_provenance()->clear_recorded_by();
  p.mutable_provenance()->clear_channel();
  p.mutable_patient()->set_id(kPid);
  return p;
}

TEST(PreferenceRoundTrip, EveryDetailComesBackAsComponents) {
  std::vector<v1::Preference> prefs;
  {
    v1::Preference p = ::wmty::testing::ValidPreference();  // channel ranking SMS, phone
    prefs.push_back(p);
  }
  {
    v1::Preference p;
    p.set_kind(v1::CONTACT_TIME_WINDOW);
    auto* w = p.mutable_contact_window();
    w->add_days_of_week(1);
    w->add_days_of_week(3);
    w->add_days_of_week(7);
    w->set_start_time("09:00");
    w->set_end_time("17:30");
    w->set_time_zone("America/Chicago");
    prefs.push_back(p);
  }
  {
    v1::Preference p;
    p.set_kind(v1::LANGUAGE);
    p.mutable_language()->set_language("pt-BR");
    p.mutable_language()->set_interpreter_needed(true);
    prefs.push_back(p);
  }
  {
    v1::Preference p;
    p.set_kind(v1::FAMILY_INVOLVEMENT);
    p.mutable_family_involvement()->set_person_name("Maria Lopez");
    p.mutable_family_involvement()->set_relationship("daughter");
    p.mutable_family_involvement()->set_how("present for care decisions");
    prefs.push_back(p);
  }
  {
    v1::Preference p;
    p.set_kind(v1::PRONOUNS);
    p.mutable_value_code()->set_system("http://loinc.org");
    p.mutable_value_code()->set_code("LA29519-8");
    p.mutable_value_code()->set_display("she/her/her/hers/herself");
    p.set_value_text("she/her");
    prefs.push_back(p);
  }
  for (v1::Preference p : prefs) {
    SCOPED_TRACE(v1::PreferenceKind_Name(p.kind()));
    *p.mutable_provenance() = Nurse(v1::Speaker::RELATED_PERSON);
    rapidjson::Document d = ToJson(MakeRecord(storage::PREFERENCE, p, "pr-1"));
    Incoming back = MustFromFhir(Str(d));
    EXPECT_TRUE(
        google::protobuf::util::MessageDifferencer::Equals(std::get<v1::Preference>(back.resource), Stripped(p)))
        << std::get<v1::Preference>(back.resource).DebugString() << "\n"
        << Str(d);
    EXPECT_EQ(back.extra_json, "");
  }
}

TEST(PreferenceToFhir, DetailComponentsAreCodedFromOurCodeSystem) {
  v1::Preference p = ::wmty::testing::ValidPreference();
  rapidjson::Document d = ToJson(MakeRecord(storage::PREFERENCE, p, "pr-1"));
  EXPECT_EQ(StringAt(d, "/component/0/code/coding/0/code"), "preferred-channel");
  EXPECT_EQ(StringAt(d, "/component/0/valueCodeableConcept/coding/0/code"), "sms");
  EXPECT_EQ(StringAt(d, "/component/1/valueCodeableConcept/coding/0/code"), "phone-call");

  v1::Preference w;
  w.set_kind(v1::CONTACT_TIME_WINDOW);
  w.mutable_contact_window()->add_days_of_week(2);
  w.mutable_contact_window()->set_start_time("09:00");
  *w.mutable_provenance() = Nurse();
  rapidjson::Document dw = ToJson(MakeRecord(storage::PREFERENCE, w, "pr-2"));
  EXPECT_EQ(StringAt(dw, "/component/0/valueCodeableConcept/coding/0/system"), "http://hl7.org/fhir/days-of-week");
  EXPECT_EQ(StringAt(dw, "/component/0/valueCodeableConcept/coding/0/code"), "tue");
  EXPECT_EQ(StringAt(dw, "/component/1/valueTime"), "09:00:00");
  EXPECT_EQ(At(dw, "/valueString"), nullptr);
}

TEST(PreferenceFromFhir, RefusalsNameTheFhirPath) {
  auto pref = [](const std::string& components) {
    return absl::StrCat(
        R"({"resourceType": "Observation", "status": "final", "subject": {"reference": "Patient/pat-1"},)"
        R"( "code": {"coding": [{"system": "http://loinc.org", "code": "95541-9"}]}, "component": )",
        components, "}");
  };
  const std::string channel =
      R"({"code": {"coding": [{"system": "https://fhir.wmty.health/CodeSystem/wmty", "code": "preferred-channel"}]},)"
      R"( "valueCodeableConcept": {"coding": [{"system": "https://fhir.wmty.health/CodeSystem/wmty", "code": "sms"}]}})";
  const std::string start_with_seconds =
      R"({"code": {"coding": [{"system": "https://fhir.wmty.health/CodeSystem/wmty", "code": "contact-start-time"}]},)"
      R"( "valueTime": "09:00:30"})";
  EXPECT_THAT(RefusedFields("Observation", pref(absl::StrCat("[", channel, ", ", start_with_seconds, "]"))),
              ElementsAre("Observation.component[1]"));
  EXPECT_THAT(RefusedFields("Observation", pref(absl::StrCat("[", start_with_seconds, "]"))),
              ElementsAre("Observation.component[0].valueTime"));
  EXPECT_THAT(
      RefusedFields(
          "Observation",
          pref(
              R"([{"code": {"coding": [{"system": "https://fhir.wmty.health/CodeSystem/wmty", "code": "interpreter-needed"}]}, "valueString": "yes"}])")),
      ElementsAre("Observation.component[0].valueBoolean"));
}

// ---- GoalScore

TEST(GoalScoreFromFhir, MapsCodeFocusAnswerAndTime) {
  Incoming in = MustFromFhir(R"json({
    "resourceType": "Observation", "status": "final",
    "category": [{"coding": [{"system": "http://terminology.hl7.org/CodeSystem/observation-category",
                              "code": "survey"}]}],
    "code": {"coding": [{"system": "http://loinc.org", "code": "107334-5"}]},
    "subject": {"reference": "Patient/pat-1"},
    "focus": [{"reference": "Goal/g-1"}],
    "effectiveDateTime": "2027-01-05T10:15:00Z",
    "performer": [{"reference": "Patient/pat-1"}],
    "valueCodeableConcept": {"coding": [{"system": "http://loinc.org", "code": "LA34480-6"}]},
    "note": [{"text": "Walked every day but one"}]
  })json");
  EXPECT_EQ(in.kind, storage::GOAL_SCORE);
  const auto& s = std::get<v1::GoalScore>(in.resource);
  EXPECT_EQ(s.score_type(), v1::PATIENT_FOLLOW_UP);
  EXPECT_EQ(s.score(), 1);
  EXPECT_EQ(s.goal(), "patients/pat-1/goals/g-1");
  EXPECT_EQ(s.effective_time().seconds(), 1799144100);
  EXPECT_EQ(s.note(), "Walked every day but one");
  EXPECT_EQ(s.provenance().said_by().kind(), v1::Speaker::PATIENT);

  // The PCO ballot's baseline code and a bare integer are accepted too.
  Incoming baseline = MustFromFhir(R"json({
    "resourceType": "Observation", "status": "final", "subject": {"reference": "Patient/pat-1"},
    "code": {"coding": [{"system": "http://loinc.org", "code": "107332-9"}]},
    "focus": [{"reference": "Goal/g-1"}], "valueInteger": -2
  })json");
  EXPECT_EQ(std::get<v1::GoalScore>(baseline.resource).score_type(), v1::INITIAL);
  EXPECT_EQ(std::get<v1::GoalScore>(baseline.resource).score(), -2);

  // A period: its start is the effective time, and the period itself survives.
  const std::string with_period = R"json({
    "resourceType": "Observation", "status": "final", "subject": {"reference": "Patient/pat-1"},
    "code": {"coding": [{"system": "http://loinc.org", "code": "107333-7"}]}, "focus": [{"reference": "Goal/g-1"}],
    "effectivePeriod": {"start": "2027-01-05T10:15:00Z", "end": "2027-01-05T11:00:00Z"},
    "performer": [{"reference": "Patient/pat-1"}],
    "valueCodeableConcept": {"coding": [{"system": "http://loinc.org", "code": "LA34481-4"}]}
  })json";
  Incoming period = MustFromFhir(with_period);
  EXPECT_EQ(std::get<v1::GoalScore>(period.resource).effective_time().seconds(), 1799144100);
  rapidjson::Document out = ToJson(
      MakeRecord(storage::GOAL_SCORE, AsStored(std::get<v1::GoalScore>(period.resource), storage::GOAL_SCORE, "sc-1"),
                 "sc-1", 1, period.extra_json));
  EXPECT_TRUE(*At(Parse(with_period), "/effectivePeriod") == *At(out, "/effectivePeriod"));
  EXPECT_EQ(At(out, "/effectiveDateTime"), nullptr);
}

TEST(GoalScoreToFhir, UsesPcoCodesAndLoincAnswers) {
  const std::vector<std::pair<int, std::string>> answers = {
      {-2, "LA34484-8"}, {-1, "LA34483-0"}, {0, "LA34481-4"}, {1, "LA34480-6"}, {2, "LA34479-8"}};
  const std::vector<std::pair<v1::GoalScoreType, std::string>> types = {{v1::INITIAL, "112296-9"},
                                                                        {v1::PATIENT_FOLLOW_UP, "107334-5"},
                                                                        {v1::PRACTITIONER_FOLLOW_UP, "107333-7"},
                                                                        {v1::CAREGIVER_FOLLOW_UP, "107331-1"}};
  for (const auto& [type, code] : types) {
    for (const auto& [score, answer] : answers) {
      SCOPED_TRACE(absl::StrCat(code, " ", score));
      v1::GoalScore s;
      s.set_goal("patients/pat-1/goals/g-1");
      s.set_score_type(type);
      s.set_score(score);
      s.mutable_effective_time()->set_seconds(1799144100);
      *s.mutable_provenance() = Nurse();
      rapidjson::Document d = ToJson(MakeRecord(storage::GOAL_SCORE, s, "sc-1"));
      EXPECT_THAT(Profiles(d), ElementsAre(std::string(codes::kPcoGasScore)));
      EXPECT_EQ(StringAt(d, "/code/coding/0/code"), code);
      EXPECT_EQ(StringAt(d, "/valueCodeableConcept/coding/0/system"), "http://loinc.org");
      EXPECT_EQ(StringAt(d, "/valueCodeableConcept/coding/0/code"), answer);
      EXPECT_EQ(StringAt(d, "/focus/0/reference"), "Goal/g-1");
      EXPECT_EQ(StringAt(d, "/effectiveDateTime"), "2027-01-05T10:15:00Z");
      EXPECT_EQ(StringAt(d, "/category/0/coding/0/code"), "survey");
      Incoming back = MustFromFhir(Str(d));
      EXPECT_EQ(std::get<v1::GoalScore>(back.resource).score(), score);
      EXPECT_EQ(std::get<v1::GoalScore>(back.resource).score_type(), type);
      EXPECT_EQ(back.extra_json, "");
    }
  }
}

TEST(GoalScoreToFhir, EffectiveFallsBackToTheUpdateTime) {
  v1::GoalScore s;
  s.set_goal("patients/pat-1/goals/g-1");
  s.set_score_type(v1::PRACTITIONER_FOLLOW_UP);
  *s.mutable_provenance() = Nurse();
  s.mutable_provenance()->clear_said_time();
  rapidjson::Document d = ToJson(MakeRecord(storage::GOAL_SCORE, s, "sc-1", 1, "", /*retracted=*/true));
  EXPECT_EQ(StringAt(d, "/effectiveDateTime"), "2026-11-23T16:33:29.52Z");
  EXPECT_EQ(StringAt(d, "/status"), "entered-in-error");
}

TEST(GoalScoreFromFhir, RefusalsNameTheFhirPath) {
  const std::string base =
      R"({"resourceType": "Observation", "status": "final", "subject": {"reference": "Patient/pat-1"},)"
      R"( "code": {"coding": [{"system": "http://loinc.org", "code": "107333-7"}]})";
  EXPECT_THAT(
      RefusedFields(
          "Observation",
          absl::StrCat(
              base, R"(, "valueCodeableConcept": {"coding": [{"system": "http://loinc.org", "code": "LA34481-4"}]}})")),
      ElementsAre("Observation.focus"));
  EXPECT_THAT(RefusedFields("Observation", absl::StrCat(base, R"(, "focus": [{"reference": "Goal/g-1"}]})")),
              ElementsAre("Observation.valueCodeableConcept"));
  EXPECT_THAT(
      RefusedFields("Observation", absl::StrCat(base, R"(, "focus": [{"reference": "Goal/g-1"}], "valueInteger": 3})")),
      ElementsAre("Observation.valueCodeableConcept"));
}

// ---- Priorities (List)

TEST(PrioritiesFromFhir, ReturnsTheItemReferencesInOrder) {
  Incoming in = MustFromFhir(R"json({
    "resourceType": "List", "status": "current", "mode": "working", "title": "What matters most to me",
    "code": {"coding": [{"system": "http://loinc.org", "code": "81340-2"}]},
    "subject": {"reference": "Patient/pat-1"},
    "source": {"reference": "Patient/pat-1"},
    "entry": [{"item": {"reference": "Observation/wm-1"}}, {"item": {"reference": "Goal/g-1"}},
              {"item": {"reference": "Observation/pr-1"}}]
  })json");
  EXPECT_EQ(in.kind, storage::PRIORITIES);
  EXPECT_THAT(in.list_item_refs, ElementsAre("Observation/wm-1", "Goal/g-1", "Observation/pr-1"));
  const auto& pr = std::get<v1::Priorities>(in.resource);
  EXPECT_THAT(pr.items(), IsEmpty());
  EXPECT_EQ(pr.provenance().said_by().kind(), v1::Speaker::PATIENT);
  // The entries are what we would generate: not kept.
  rapidjson::Document extra = in.extra_json.empty() ? Parse("{}") : Parse(in.extra_json);
  EXPECT_EQ(json::Member(extra, "entry"), nullptr);
}

TEST(PrioritiesToFhir, IsAnAdiPersonalPrioritiesOrganizer) {
  v1::Priorities pr;
  pr.set_name("patients/pat-1/priorities");
  pr.mutable_patient()->set_id(kPid);
  pr.add_items("patients/pat-1/whatMatters/wm-1");
  pr.add_items("patients/pat-1/goals/g-1");
  pr.add_items("patients/pat-1/preferences/pr-1");
  *pr.mutable_provenance() = Nurse();
  rapidjson::Document d = ToJson(MakeRecord(storage::PRIORITIES, pr, "priorities", 5));
  EXPECT_EQ(StringAt(d, "/resourceType"), "List");
  EXPECT_EQ(StringAt(d, "/id"), kPid);
  EXPECT_THAT(Profiles(d), ElementsAre(std::string(codes::kAdiPersonalPrioritiesOrganizer)));
  EXPECT_EQ(StringAt(d, "/status"), "current");
  EXPECT_EQ(StringAt(d, "/mode"), "working");
  EXPECT_EQ(StringAt(d, "/title"), "What matters most to me");
  EXPECT_EQ(StringAt(d, "/code/coding/0/code"), "81340-2");
  EXPECT_EQ(StringAt(d, "/orderedBy/coding/0/system"), "http://terminology.hl7.org/CodeSystem/list-order");
  EXPECT_EQ(StringAt(d, "/orderedBy/coding/0/code"), "priority");
  EXPECT_EQ(StringAt(d, "/source/reference"), "Patient/pat-1");
  EXPECT_EQ(StringAt(d, "/entry/0/item/reference"), "Observation/wm-1");
  EXPECT_EQ(StringAt(d, "/entry/1/item/reference"), "Goal/g-1");
  EXPECT_EQ(StringAt(d, "/entry/2/item/reference"), "Observation/pr-1");

  Incoming back = MustFromFhir(Str(d));
  EXPECT_THAT(back.list_item_refs, ElementsAre("Observation/wm-1", "Goal/g-1", "Observation/pr-1"));
  EXPECT_EQ(back.extra_json, "");

  pr.clear_items();  // an empty list is valid (no entry element)
  rapidjson::Document empty = ToJson(MakeRecord(storage::PRIORITIES, pr, "priorities", 6));
  EXPECT_EQ(At(empty, "/entry"), nullptr);
}

TEST(PrioritiesRoundTrip, KeepsEntryDetailsTitleAndExtensions) {
  const std::string text = R"json({
    "resourceType": "List",
    "extension": [{"url": "http://example.org/context", "valueString": "end of life"}],
    "status": "current", "mode": "working", "title": "Lo más importante para mí",
    "code": {"coding": [{"system": "http://loinc.org", "code": "81340-2",
                         "display": "Goals AndOr preferences in order of priority [Reported]"}]},
    "subject": {"reference": "Patient/pat-1"},
    "date": "2026-11-23T15:00:00Z",
    "entry": [{"item": {"reference": "Goal/g-1", "display": "Mailbox walk"}, "date": "2026-11-23"},
              {"item": {"reference": "Observation/wm-1"}}]
  })json";
  rapidjson::Document original = Parse(text);
  Incoming in = MustFromFhir(text);
  v1::Priorities pr = std::get<v1::Priorities>(in.resource);
  pr.add_items("patients/pat-1/goals/g-1");  // resolved by the service
  pr.add_items("patients/pat-1/whatMatters/wm-1");
  pr.mutable_provenance()->mutable_said_by()->set_kind(v1::Speaker::RELATED_PERSON);  // no source emitted
  rapidjson::Document out = ToJson(
      MakeRecord(storage::PRIORITIES, AsStored(pr, storage::PRIORITIES, "priorities"), "priorities", 1, in.extra_json));
  ExpectElementsKept(original, out);
  EXPECT_EQ(At(out, "/source"), nullptr);

  // Reordered through the model: the entries are regenerated in the new order.
  pr.clear_items();
  pr.add_items("patients/pat-1/whatMatters/wm-1");
  pr.add_items("patients/pat-1/goals/g-1");
  rapidjson::Document reordered = ToJson(
      MakeRecord(storage::PRIORITIES, AsStored(pr, storage::PRIORITIES, "priorities"), "priorities", 2, in.extra_json));
  EXPECT_EQ(Str(*At(reordered, "/entry")),
            R"([{"item":{"reference":"Observation/wm-1"}},{"item":{"reference":"Goal/g-1"}}])");
  EXPECT_EQ(StringAt(reordered, "/title"), "Lo más importante para mí");
}

TEST(PrioritiesFromFhir, RefusalsNameTheFhirPath) {
  const std::string subject = R"("subject": {"reference": "Patient/pat-1"})";
  const std::string code = R"("code": {"coding": [{"system": "http://loinc.org", "code": "81340-2"}]})";
  EXPECT_THAT(RefusedFields("List", absl::StrCat(R"({"resourceType": "List", "status": "current", )", subject, "}")),
              ElementsAre("List.code"));
  EXPECT_THAT(RefusedFields("List", absl::StrCat(R"({"resourceType": "List", "status": "entered-in-error", )", subject,
                                                 ", ", code, "}")),
              ElementsAre("List.status"));
  EXPECT_THAT(
      RefusedFields(
          "List",
          absl::StrCat(
              R"({"resourceType": "List", "status": "current", )", subject, ", ", code,
              R"(, "entry": [{"item": {"reference": "Goal/g-1"}}, {"item": {"reference": "Condition/c-1"}}]})")),
      ElementsAre("List.entry[1].item"));
  EXPECT_THAT(RefusedFields("List", absl::StrCat(R"({"resourceType": "List", "status": "current", )", subject, ", ",
                                                 code, R"(, "source": {"reference": "RelatedPerson/r-1"}})")),
              ElementsAre("List.source"));
}

TEST(PrioritiesToFhir, RetractedIsEnteredInError) {
  v1::Priorities pr;
  *pr.mutable_provenance() = Nurse();
  rapidjson::Document d = ToJson(MakeRecord(storage::PRIORITIES, pr, "priorities", 2, "", /*retracted=*/true));
  EXPECT_EQ(StringAt(d, "/status"), "entered-in-error");
}

// ---- Who said it: not stated, a practitioner

// Drops the member `name` from a JSON object text.
std::string Without(const std::string& text, const char* name) {
  rapidjson::Document d = Parse(text);
  json::Remove(d, name);
  return Str(d);
}

// What the domain stores for an absent speaker (domain::SpeakerOrNotStated).
template <class R>
R NotStated(R r) {
  r.mutable_provenance()->mutable_said_by()->set_kind(v1::Speaker::NOT_STATED);
  return r;
}

TEST(SpeakerFromFhir, AbsentExpressedByPerformerOrSourceIsNotStated) {
  Incoming goal = MustFromFhir(Without(kPlainGoal, "expressedBy"));
  EXPECT_EQ(std::get<v1::Goal>(goal.resource).provenance().said_by().kind(), v1::Speaker::KIND_UNSPECIFIED);
  EXPECT_EQ(goal.extra_json, "");
  Incoming wm = MustFromFhir(Without(kWhatMatters, "performer"));
  EXPECT_EQ(std::get<v1::WhatMatters>(wm.resource).provenance().said_by().kind(), v1::Speaker::KIND_UNSPECIFIED);
  EXPECT_EQ(wm.extra_json, "");
  Incoming list = MustFromFhir(R"json({
    "resourceType": "List", "status": "current", "mode": "working",
    "code": {"coding": [{"system": "http://loinc.org", "code": "81340-2"}]},
    "subject": {"reference": "Patient/pat-1"}, "entry": [{"item": {"reference": "Goal/g-1"}}]
  })json");
  EXPECT_EQ(std::get<v1::Priorities>(list.resource).provenance().said_by().kind(), v1::Speaker::KIND_UNSPECIFIED);
}

TEST(SpeakerToFhir, NotStatedHasNoSpeakerElementAndSaysSoInTheNarrative) {
  v1::Goal g = ::wmty::testing::ValidGoal();
  *g.mutable_provenance() = Nurse(v1::Speaker::NOT_STATED);
  rapidjson::Document goal = ToJson(MakeRecord(storage::GOAL, g, "g-1"));
  EXPECT_EQ(At(goal, "/expressedBy"), nullptr);
  EXPECT_THAT(StringAt(goal, "/text/div"), HasSubstr("<b>Said by</b>: not stated"));
  // Not stated is not the patient: no ADI PersonalGoal (expressedBy = subject).
  EXPECT_THAT(Profiles(goal), ElementsAre(std::string(codes::kUsCoreGoal)));

  v1::WhatMatters wm = ::wmty::testing::ValidWhatMatters();
  *wm.mutable_provenance() = Nurse(v1::Speaker::NOT_STATED);
  rapidjson::Document obs = ToJson(MakeRecord(storage::WHAT_MATTERS, wm, "wm-1"));
  EXPECT_EQ(At(obs, "/performer"), nullptr);
  EXPECT_THAT(StringAt(obs, "/text/div"), HasSubstr("not stated"));

  v1::Priorities pr;
  *pr.mutable_provenance() = Nurse(v1::Speaker::NOT_STATED);
  rapidjson::Document list = ToJson(MakeRecord(storage::PRIORITIES, pr, "priorities"));
  EXPECT_EQ(At(list, "/source"), nullptr);

  rapidjson::Document prov;
  ASSERT_TRUE(ProvenanceOf(MakeRecord(storage::GOAL, g, "g-1"), &prov, prov.GetAllocator()).ok());
  ASSERT_EQ(At(prov, "/agent")->Size(), 1u);  // the author only: no informant is invented
  EXPECT_EQ(StringAt(prov, "/agent/0/type/coding/0/code"), "author");
}

TEST(SpeakerRoundTrip, APractitionerOnEveryResourceType) {
  Incoming goal = MustFromFhir(absl::StrReplaceAll(
      kPlainGoal, {{R"("expressedBy": {"reference": "Patient/pat-1"})",
                    R"("expressedBy": {"reference": "Practitioner/md-4", "display": "Dr. Lee"})"}}));
  const v1::Speaker& by = std::get<v1::Goal>(goal.resource).provenance().said_by();
  EXPECT_EQ(by.kind(), v1::Speaker::PRACTITIONER);
  EXPECT_EQ(by.practitioner_id(), "md-4");
  EXPECT_EQ(by.name(), "Dr. Lee");
  EXPECT_EQ(goal.extra_json, "");
  rapidjson::Document g =
      ToJson(MakeRecord(storage::GOAL, AsStored(std::get<v1::Goal>(goal.resource), storage::GOAL, "g-1"), "g-1"));
  EXPECT_EQ(StringAt(g, "/expressedBy/reference"), "Practitioner/md-4");
  EXPECT_EQ(StringAt(g, "/expressedBy/display"), "Dr. Lee");
  EXPECT_THAT(StringAt(g, "/text/div"), HasSubstr("Dr. Lee (practitioner md-4)"));

  // The practitioner who scored a goal is the score's performer.
  Incoming score = MustFromFhir(R"json({
    "resourceType": "Observation", "status": "final", "subject": {"reference": "Patient/pat-1"},
    "code": {"coding": [{"system": "http://loinc.org", "code": "107333-7"}]}, "focus": [{"reference": "Goal/g-1"}],
    "performer": [{"reference": "Practitioner/md-4"}],
    "valueCodeableConcept": {"coding": [{"system": "http://loinc.org", "code": "LA34481-4"}]}
  })json");
  EXPECT_EQ(std::get<v1::GoalScore>(score.resource).provenance().said_by().kind(), v1::Speaker::PRACTITIONER);
  EXPECT_THAT(score.extra_json, Not(HasSubstr("performer")));  // mapped exactly: not kept
  rapidjson::Document sc = ToJson(MakeRecord(
      storage::GOAL_SCORE, AsStored(std::get<v1::GoalScore>(score.resource), storage::GOAL_SCORE, "sc-1"), "sc-1"));
  EXPECT_EQ(Str(*At(sc, "/performer")), R"([{"reference":"Practitioner/md-4"}])");
  EXPECT_THAT(StringAt(sc, "/text/div"), HasSubstr("<b>Scored by</b>: practitioner md-4"));

  // R4 List.source allows a Practitioner.
  Incoming list = MustFromFhir(R"json({
    "resourceType": "List", "status": "current", "mode": "working",
    "code": {"coding": [{"system": "http://loinc.org", "code": "81340-2"}]},
    "subject": {"reference": "Patient/pat-1"}, "source": {"reference": "Practitioner/md-4"}
  })json");
  EXPECT_EQ(std::get<v1::Priorities>(list.resource).provenance().said_by().practitioner_id(), "md-4");
  rapidjson::Document l = ToJson(
      MakeRecord(storage::PRIORITIES,
                 AsStored(std::get<v1::Priorities>(list.resource), storage::PRIORITIES, "priorities"), "priorities"));
  EXPECT_EQ(StringAt(l, "/source/reference"), "Practitioner/md-4");
}

TEST(SpeakerFromFhir, ThePatientOrARelatedPersonOutranksAListedPractitioner) {
  Incoming in = MustFromFhir(absl::StrReplaceAll(
      kWhatMatters, {{R"("performer": [{"reference": "Patient/pat-1"}])",
                      R"("performer": [{"reference": "Practitioner/nurse-17"}, {"reference": "Patient/pat-1"}])"}}));
  EXPECT_EQ(std::get<v1::WhatMatters>(in.resource).provenance().said_by().kind(), v1::Speaker::PATIENT);
}

TEST(SpeakerFromFhir, ReferencesTheModelCannotHoldAreKeptAndTheSpeakerIsNotStated) {
  const std::string text = absl::StrReplaceAll(
      kWhatMatters, {{R"("performer": [{"reference": "Patient/pat-1"}])",
                      R"("performer": [{"reference": "Organization/hosp-1", "display": "General Hospital"}])"}});
  Incoming in = MustFromFhir(text);
  const auto& wm = std::get<v1::WhatMatters>(in.resource);
  EXPECT_EQ(wm.provenance().said_by().kind(), v1::Speaker::KIND_UNSPECIFIED);
  rapidjson::Document out = ToJson(MakeRecord(
      storage::WHAT_MATTERS, NotStated(AsStored(wm, storage::WHAT_MATTERS, "wm-1")), "wm-1", 1, in.extra_json));
  EXPECT_TRUE(*At(Parse(text), "/performer") == *At(out, "/performer")) << Str(out);

  Incoming role =
      MustFromFhir(absl::StrReplaceAll(kPlainGoal, {{R"("expressedBy": {"reference": "Patient/pat-1"})",
                                                     R"("expressedBy": {"reference": "PractitionerRole/pr-1"})"}}));
  EXPECT_EQ(std::get<v1::Goal>(role.resource).provenance().said_by().kind(), v1::Speaker::KIND_UNSPECIFIED);
  EXPECT_THAT(role.extra_json, HasSubstr("PractitionerRole/pr-1"));
}

TEST(Provenance, APractitionerInformantActsOnBehalfOfTheOrganization) {
  v1::GoalScore s;
  s.set_goal("patients/pat-1/goals/g-1");
  s.set_score_type(v1::PRACTITIONER_FOLLOW_UP);
  *s.mutable_provenance() = Nurse(v1::Speaker::PRACTITIONER);
  s.mutable_provenance()->mutable_said_by()->set_practitioner_id("md-4");
  rapidjson::Document d;
  ASSERT_TRUE(ProvenanceOf(MakeRecord(storage::GOAL_SCORE, s, "sc-1"), &d, d.GetAllocator()).ok());
  ExpectValidShape(d);
  EXPECT_EQ(StringAt(d, "/agent/1/type/coding/0/code"), "informant");
  EXPECT_EQ(StringAt(d, "/agent/1/who/reference"), "Practitioner/md-4");
  EXPECT_NE(StringAt(d, "/agent/1/onBehalfOf/display"), "<absent>");  // US Core provenance-1
}

// ---- US Core payloads from other systems

// A US Core Goal (shaped as US Core's examples) coded only, without expressedBy.
std::string CodedGoal(const std::string& coding) {
  return absl::StrCat(R"json({
    "resourceType": "Goal", "meta": {"profile": ["http://hl7.org/fhir/us/core/StructureDefinition/us-core-goal"]},
    "lifecycleStatus": "active", "description": {"coding": [)json",
                      coding, R"json(]},
    "subject": {"reference": "Patient/pat-1", "display": "Amy Shaw"},
    "target": [{"dueDate": "2027-04-05"}]
  })json");
}

TEST(GoalFromFhir, ACodedOnlyDescriptionIsAcceptedAndComesBackAsItCame) {
  const std::string text =
      CodedGoal(R"({"system": "http://snomed.info/sct", "code": "289169006", "display": "Able to walk"})");
  Incoming in = MustFromFhir(text);
  const auto& g = std::get<v1::Goal>(in.resource);
  EXPECT_EQ(g.description(), "Able to walk");                                 // the coding's display
  EXPECT_EQ(g.provenance().said_by().kind(), v1::Speaker::KIND_UNSPECIFIED);  // no expressedBy: not stated
  rapidjson::Document out =
      ToJson(MakeRecord(storage::GOAL, NotStated(AsStored(g, storage::GOAL, "g-1")), "g-1", 1, in.extra_json));
  EXPECT_TRUE(*At(Parse(text), "/description") == *At(out, "/description")) << Str(out);
  EXPECT_EQ(At(out, "/description/text"), nullptr);
  EXPECT_THAT(StringAt(out, "/text/div"), HasSubstr("Able to walk"));

  // No display: the code is what the domain stores.
  Incoming code_only = MustFromFhir(CodedGoal(R"({"system": "http://snomed.info/sct", "code": "289169006"})"));
  EXPECT_EQ(std::get<v1::Goal>(code_only.resource).description(), "289169006");
}

TEST(GoalFromFhir, ADescriptionWithNeitherTextNorACodeIsRefusedSayingWhatToSend) {
  rapidjson::Document d = Parse(R"json({
    "resourceType": "Goal", "lifecycleStatus": "active", "subject": {"reference": "Patient/pat-1"},
    "description": {"coding": [{"system": "http://snomed.info/sct"}]}
  })json");
  absl::StatusOr<Incoming> in = FromFhir("Goal", d);
  ASSERT_THAT(in, StatusIs(absl::StatusCode::kInvalidArgument));
  EXPECT_THAT(ViolatedFields(in.status()), ElementsAre("Goal.description.text"));
  EXPECT_THAT(in.status().ToString(), HasSubstr("description.coding with a display or code"));
}

// ---- Elements FHIR R4 does not define

std::vector<std::string> UnknownPaths(const std::string& type, const std::string& text) {
  std::vector<std::string> out;
  for (const UnknownElement& u : UnknownElements(type, Parse(text))) out.push_back(u.path);
  return out;
}

TEST(UnknownElements, AreRefusedWithTheirPathAtAnyDepth) {
  const std::string goal = absl::StrReplaceAll(
      kPlainGoal,
      {{R"("lifecycleStatus": "active",)", R"("lifecycleStatus": "active", "foo": 1,)"},
       {R"("subject": {"reference": "Patient/pat-1"})", R"("subject": {"reference": "Patient/pat-1", "foo": true})"},
       {R"("target": [{"dueDate": "2027-06-15"}])", R"("target": [{"dueDate": "2027-06-15", "bar": "x"}])"}});
  EXPECT_THAT(RefusedFields("Goal", goal), ElementsAre("Goal.foo", "Goal.subject.foo", "Goal.target[0].bar"));

  const std::string obs = absl::StrReplaceAll(
      kWhatMatters, {{R"("valueString": "What matters most to you today?")",
                      R"("valueString": "What matters most to you today?", "bar": 1)"},
                     {R"("effectiveDateTime": "2026-11-23T15:00:00Z",)",
                      R"("effectiveDateTime": "2026-11-23T15:00:00Z", "_effectiveDateTime": {"foo": 1},)"}});
  EXPECT_THAT(RefusedFields("Observation", obs),
              ElementsAre("Observation._effectiveDateTime.foo", "Observation.component[0].bar"));
  rapidjson::Document d = Parse(obs);
  absl::StatusOr<Incoming> in = FromFhir("Observation", d);
  EXPECT_THAT(in.status().ToString(), HasSubstr("unknown element of FHIR R4 Observation"));
}

TEST(UnknownElements, CoverContainedResourcesExtensionsAndPrimitiveSiblings) {
  EXPECT_THAT(UnknownPaths("Goal", R"json({"resourceType": "Goal",
    "contained": [{"resourceType": "RelatedPerson", "id": "rp", "name": [{"text": "Rosa", "nick": "R"}], "hobby": 1},
                  {"resourceType": "Device", "id": "d", "whatever": 1}],
    "extension": [{"url": "http://x", "valueString": "ok", "colour": "red"},
                  {"url": "http://y", "extension": [{"url": "a", "valueCoding": {"anything": 1}, "b": 2}]}],
    "_subject": {"extension": []},
    "_startDate": {"id": "s", "extension": [{"url": "http://z", "valueBoolean": true}], "foo": 1}})json"),
              ElementsAre("Goal.contained[0].name[0].nick", "Goal.contained[0].hobby", "Goal.extension[0].colour",
                          "Goal.extension[1].extension[0].b", "Goal._subject", "Goal._startDate.foo"));
}

// Element.id is a FHIRPath String, not a FHIR primitive: "_id" is R4 JSON
// only on a resource. The Goal/Observation/List check used to accept it on
// any element while the Patient check refused it; one table, one rule.
TEST(UnknownElements, OnlyAResourceIdHasAPrimitiveSibling) {
  EXPECT_THAT(UnknownPaths("Goal", R"json({"resourceType": "Goal", "_id": {"extension": []},
    "subject": {"reference": "Patient/pat-1", "_id": {"extension": []}},
    "target": [{"_id": {}, "dueDate": "2027-06-15"}]})json"),
              ElementsAre("Goal.subject._id", "Goal.target[0]._id"));
}

// A contained resource the mapping does not read there (a Patient) is not
// checked, though Patient has a table.
TEST(UnknownElements, AContainedPatientIsNotChecked) {
  EXPECT_THAT(UnknownPaths("Goal", R"json({"resourceType": "Goal",
    "contained": [{"resourceType": "Patient", "id": "p", "foo": 1}]})json"),
              IsEmpty());
}

TEST(ElementTable, GivesR4OrderTypesAndCardinality) {
  const std::vector<absl::string_view>& order = ElementOrder("Observation");
  auto at = [&](absl::string_view name) { return std::find(order.begin(), order.end(), name) - order.begin(); };
  EXPECT_EQ(order.front(), "resourceType");
  EXPECT_LT(at("performer"), at("valueQuantity"));
  EXPECT_LT(at("valuePeriod"), at("dataAbsentReason"));
  EXPECT_EQ(at("component"), static_cast<std::ptrdiff_t>(order.size()) - 1);
  EXPECT_TRUE(ElementOrder("NoSuchType").empty());

  std::optional<ElementInfo> name = ElementOf("Patient", "name");
  ASSERT_TRUE(name.has_value());
  EXPECT_EQ(name->type, "HumanName");
  EXPECT_TRUE(name->many);
  EXPECT_FALSE(name->primitive);
  std::optional<ElementInfo> given = ElementOf("HumanName", "_given");
  ASSERT_TRUE(given.has_value());
  EXPECT_TRUE(given->sibling && given->many && given->primitive);
  std::optional<ElementInfo> gender = ElementOf("Patient", "gender");
  ASSERT_TRUE(gender.has_value());
  EXPECT_FALSE(gender->many);
  EXPECT_FALSE(ElementOf("Patient", "_name").has_value());
  EXPECT_FALSE(ElementOf("Patient", "foo").has_value());
  EXPECT_FALSE(ElementOf("HumanName", "modifierExtension").has_value());
  EXPECT_TRUE(ElementOf("Goal.target", "modifierExtension").has_value());
}

TEST(ElementTable, SortsMembersIntoR4OrderSiblingsAfterTheirElementUnknownLast) {
  rapidjson::Document d = Parse(R"json({"zzz": 1, "subject": {}, "_lifecycleStatus": {}, "id": "g",
    "lifecycleStatus": "active", "resourceType": "Goal"})json");
  SortElements("Goal", d, d.GetAllocator());
  std::vector<std::string> names;
  for (auto it = d.MemberBegin(); it != d.MemberEnd(); ++it) names.emplace_back(it->name.GetString());
  EXPECT_THAT(names, ElementsAre("resourceType", "id", "lifecycleStatus", "_lifecycleStatus", "subject", "zzz"));
}

TEST(UnknownElements, EveryR4ElementWeDoNotMapIsAcceptedAndKept) {
  const std::string text = R"json({
    "resourceType": "Observation", "id": "x", "meta": {"versionId": "9", "tag": [{"code": "t"}]}, "language": "en",
    "identifier": [{"system": "urn:ietf:rfc:3986", "value": "urn:uuid:1", "period": {"start": "2026-01-01"}}],
    "basedOn": [{"reference": "CarePlan/cp-1"}], "partOf": [{"reference": "Procedure/p-1"}],
    "status": "final", "_status": {"extension": [{"url": "http://x", "valueString": "y"}]},
    "code": {"coding": [{"system": "http://loinc.org", "code": "95541-9", "userSelected": true}]},
    "subject": {"reference": "Patient/pat-1", "type": "Patient", "identifier": {"value": "MRN-1"}},
    "issued": "2026-11-23T15:00:00Z",
    "valueString": "Quiet at night",
    "interpretation": [{"text": "n/a"}], "bodySite": {"text": "n/a"}, "method": {"text": "asked"},
    "referenceRange": [{"text": "n/a", "age": {"low": {"value": 1}}}],
    "hasMember": [{"reference": "Observation/o-2"}], "derivedFrom": [{"reference": "QuestionnaireResponse/q"}],
    "note": [{"authorReference": {"reference": "Practitioner/nurse-17"}, "text": "asked twice"}]
  })json";
  EXPECT_THAT(UnknownPaths("Observation", text), IsEmpty());
  Incoming in = MustFromFhir(text);
  EXPECT_THAT(in.extra_json, HasSubstr("CarePlan/cp-1"));
  EXPECT_THAT(in.extra_json, HasSubstr("referenceRange"));
}

TEST(UnknownElements, DropPolicyMapsTheRestAndNamesWhatItDropped) {
  const std::string text = absl::StrReplaceAll(
      kPlainGoal,
      {{R"("lifecycleStatus": "active",)", R"("lifecycleStatus": "active", "foo": 1,)"},
       {R"("subject": {"reference": "Patient/pat-1"})", R"("subject": {"reference": "Patient/pat-1", "foo": true})"}});
  rapidjson::Document d = Parse(text);
  absl::StatusOr<Incoming> in = FromFhir("Goal", d, UnknownElementPolicy::kDrop);
  ASSERT_TRUE(in.ok()) << in.status();
  EXPECT_THAT(in->dropped_elements, ElementsAre("Goal.foo", "Goal.subject.foo"));
  EXPECT_EQ(in->extra_json, "");  // nothing kept: the rest is exactly what we generate
  EXPECT_EQ(std::get<v1::Goal>(in->resource).description(), "Walk my daughter down the aisle in June");
}

TEST(UnknownElements, AtMostFiftyAreNamedTheRestCounted) {
  std::string members;
  for (int i = 0; i < 60; ++i) absl::StrAppend(&members, "\"x", i, "\": 1, ");
  const std::string text = absl::StrReplaceAll(
      kPlainGoal, {{R"("lifecycleStatus": "active",)", absl::StrCat(members, R"("lifecycleStatus": "active",)")}});
  std::vector<std::string> fields = RefusedFields("Goal", text);
  ASSERT_EQ(fields.size(), kMaxUnknownElementsListed + 1);
  EXPECT_EQ(fields.front(), "Goal.x0");
  EXPECT_EQ(fields.back(), "Goal");  // "unknown elements: 10 more ..."
  rapidjson::Document d = Parse(text);
  absl::StatusOr<Incoming> dropped = FromFhir("Goal", d, UnknownElementPolicy::kDrop);
  ASSERT_TRUE(dropped.ok()) << dropped.status();
  EXPECT_EQ(dropped->dropped_count, 60u);
  EXPECT_EQ(dropped->dropped_elements.size(), kMaxUnknownElementsListed);
}

TEST(UnknownElements, KeptByAnOlderVersionAreNotEmitted) {
  v1::Goal g = ::wmty::testing::ValidGoal();
  *g.mutable_provenance() = Nurse();
  rapidjson::Document out =
      ToJson(MakeRecord(storage::GOAL, g, "g-1", 1,
                        R"({"foo": 1, "identifier": [{"value": "id-1", "bar": 2}], "statusDate": "2026-01-02"})"));
  EXPECT_EQ(At(out, "/foo"), nullptr);
  EXPECT_EQ(Str(*At(out, "/identifier")), R"([{"value":"id-1"}])");
  EXPECT_EQ(StringAt(out, "/statusDate"), "2026-01-02");
}

// Shaped as the Multiple Chronic Conditions care plan IG's example goals: a
// clinician's goal with a measured target and addresses beyond ours.
TEST(GoalFromFhir, AClinicianGoalWithAMeasuredTargetIsAcceptedAndKept) {
  const std::string text = R"json({
    "resourceType": "Goal", "lifecycleStatus": "active",
    "achievementStatus": {"coding": [{"system": "http://terminology.hl7.org/CodeSystem/goal-achievement",
                                      "code": "in-progress", "display": "In Progress"}], "text": "In Progress"},
    "priority": {"coding": [{"system": "http://terminology.hl7.org/CodeSystem/goal-priority",
                             "code": "high-priority", "display": "High Priority"}], "text": "high"},
    "description": {"text": "Keep a carb consistent diet consuming 45-60 gms of carbohydrates per meal"},
    "subject": {"reference": "Patient/pat-1"}, "startDate": "2021-05-19",
    "target": [{"measure": {"coding": [{"system": "http://loinc.org", "code": "2339-0"}]},
                "detailQuantity": {"value": 180, "comparator": "<", "unit": "mg/dl",
                                   "system": "http://unitsofmeasure.org", "code": "mg/dL"},
                "dueDate": "2021-11-19"}],
    "expressedBy": {"reference": "Practitioner/P0522-Practitioner-JohnSmith"},
    "addresses": [{"reference": "Condition/P0522-mcc-cond-sdoh-nutrition"}],
    "note": [{"text": "Betsy has been keeping a food diary."}]
  })json";
  EXPECT_THAT(UnknownPaths("Goal", text), IsEmpty());
  Incoming in = MustFromFhir(text);
  const auto& g = std::get<v1::Goal>(in.resource);
  EXPECT_EQ(g.provenance().said_by().kind(), v1::Speaker::PRACTITIONER);
  EXPECT_EQ(g.provenance().said_by().practitioner_id(), "P0522-Practitioner-JohnSmith");
  EXPECT_EQ(g.target_date(), "2021-11-19");
  rapidjson::Document out =
      ToJson(MakeRecord(storage::GOAL, AsStored(g, storage::GOAL, "g-1"), "g-1", 1, in.extra_json));
  ExpectElementsKept(Parse(text), out);
}

// ---- Provenance

TEST(Provenance, DescribesTheVersionWhoRecordedAndWhoSaidIt) {
  v1::Goal g = ::wmty::testing::ValidGoal();
  *g.mutable_provenance() = Nurse();
  rapidjson::Document d;
  ASSERT_TRUE(ProvenanceOf(MakeRecord(storage::GOAL, g, "g-1", 1), &d, d.GetAllocator()).ok());
  ExpectValidShape(d);
  Dump(d);
  EXPECT_EQ(StringAt(d, "/resourceType"), "Provenance");
  EXPECT_EQ(StringAt(d, "/id"), "s42");
  EXPECT_THAT(Profiles(d), ElementsAre(std::string(codes::kUsCoreProvenance)));
  EXPECT_EQ(StringAt(d, "/target/0/reference"), "Goal/g-1/_history/1");
  EXPECT_EQ(StringAt(d, "/recorded"), kUpdateInstant);
  EXPECT_EQ(StringAt(d, "/occurredDateTime"), "2026-11-23T16:06:40Z");
  EXPECT_EQ(StringAt(d, "/activity/coding/0/code"), "CREATE");
  EXPECT_EQ(StringAt(d, "/agent/0/type/coding/0/code"), "author");
  EXPECT_EQ(StringAt(d, "/agent/0/who/reference"), "Practitioner/rn-17");
  EXPECT_EQ(StringAt(d, "/agent/0/who/display"), "Ana Ruiz");
  EXPECT_EQ(StringAt(d, "/agent/0/role/0/text"), "RN");
  EXPECT_NE(StringAt(d, "/agent/0/onBehalfOf/display"), "<absent>");
  EXPECT_EQ(StringAt(d, "/agent/1/type/coding/0/code"), "informant");
  EXPECT_EQ(StringAt(d, "/agent/1/who/reference"), "Patient/pat-1");
  EXPECT_EQ(ProvenanceId(MakeRecord(storage::GOAL, g, "g-1")), "s42");
}

// Recorded by a client for a named user: the user is the author, the
// authenticated caller the enterer; both Practitioners with the Organization
// US Core requires as onBehalfOf.
TEST(Provenance, RecordedOnBehalfOfSomeoneHasAuthorAndEnterer) {
  v1::Goal g = ::wmty::testing::ValidGoal();
  *g.mutable_provenance() = Nurse();
  g.mutable_provenance()->mutable_recorded_by()->set_practitioner_id("ehr-plugin");
  g.mutable_provenance()->mutable_recorded_by()->clear_display_name();
  g.mutable_provenance()->mutable_recorded_by()->clear_role();
  g.mutable_provenance()->mutable_on_behalf_of()->set_practitioner_id("rn-17");
  g.mutable_provenance()->mutable_on_behalf_of()->set_display_name("Ana Ruiz");
  rapidjson::Document d;
  ASSERT_TRUE(ProvenanceOf(MakeRecord(storage::GOAL, g, "g-1", 1), &d, d.GetAllocator()).ok());
  ExpectValidShape(d);
  EXPECT_EQ(StringAt(d, "/agent/0/type/coding/0/code"), "author");
  EXPECT_EQ(StringAt(d, "/agent/0/who/reference"), "Practitioner/rn-17");
  EXPECT_EQ(StringAt(d, "/agent/0/who/display"), "Ana Ruiz");
  EXPECT_NE(StringAt(d, "/agent/0/onBehalfOf/display"), "<absent>");
  EXPECT_EQ(StringAt(d, "/agent/1/type/coding/0/code"), "enterer");
  EXPECT_EQ(StringAt(d, "/agent/1/type/coding/0/system"),
            "http://terminology.hl7.org/CodeSystem/provenance-participant-type");
  EXPECT_EQ(StringAt(d, "/agent/1/who/reference"), "Practitioner/ehr-plugin");
  EXPECT_NE(StringAt(d, "/agent/1/onBehalfOf/display"), "<absent>");
  EXPECT_EQ(StringAt(d, "/agent/2/type/coding/0/code"), "informant");
  EXPECT_EQ(StringAt(d, "/agent/3/type/coding/0/code"), "<absent>");
}

TEST(Provenance, ADeletionShowsItsReason) {
  v1::Goal g = ::wmty::testing::ValidGoal();
  *g.mutable_provenance() = Nurse();
  g.set_retract_reason("Recorded on the wrong patient");
  rapidjson::Document d;
  ASSERT_TRUE(ProvenanceOf(MakeRecord(storage::GOAL, g, "g-1", 2, "", /*retracted=*/true), &d, d.GetAllocator()).ok());
  ExpectValidShape(d);
  EXPECT_EQ(StringAt(d, "/activity/coding/0/code"), "DELETE");
  EXPECT_EQ(StringAt(d, "/reason/0/text"), "Recorded on the wrong patient");
  EXPECT_EQ(RetractReasonOf(MakeRecord(storage::GOAL, g, "g-1", 2, "", true)).value_or("?"),
            "Recorded on the wrong patient");
  // Not retracted: no reason, whatever the field holds.
  rapidjson::Document live;
  ASSERT_TRUE(ProvenanceOf(MakeRecord(storage::GOAL, g, "g-1", 1), &live, live.GetAllocator()).ok());
  EXPECT_EQ(StringAt(live, "/reason/0/text"), "<absent>");
}

TEST(Provenance, ActivityFollowsTheVersionAndARelatedPersonIsContained) {
  v1::WhatMatters wm = ::wmty::testing::ValidWhatMatters();
  *wm.mutable_provenance() = Nurse(v1::Speaker::RELATED_PERSON);
  ProvenanceOptions options;
  options.organization_reference = "Organization/hosp-1";
  options.organization_display = "General Hospital";
  rapidjson::Document d;
  ASSERT_TRUE(ProvenanceOf(MakeRecord(storage::WHAT_MATTERS, wm, "wm-1", 2), options, &d, d.GetAllocator()).ok());
  ExpectValidShape(d);
  Dump(d);
  EXPECT_EQ(StringAt(d, "/target/0/reference"), "Observation/wm-1/_history/2");
  EXPECT_EQ(StringAt(d, "/activity/coding/0/code"), "UPDATE");
  EXPECT_EQ(StringAt(d, "/agent/0/onBehalfOf/reference"), "Organization/hosp-1");
  EXPECT_EQ(StringAt(d, "/agent/1/who/reference"), "#speaker");
  EXPECT_EQ(StringAt(d, "/contained/0/resourceType"), "RelatedPerson");
  EXPECT_EQ(StringAt(d, "/contained/0/relationship/0/text"), "daughter");

  rapidjson::Document del;
  ASSERT_TRUE(ProvenanceOf(MakeRecord(storage::WHAT_MATTERS, wm, "wm-1", 3, "", true), &del, del.GetAllocator()).ok());
  EXPECT_EQ(StringAt(del, "/activity/coding/0/code"), "DELETE");

  v1::Priorities pr;
  *pr.mutable_provenance() = Nurse();
  rapidjson::Document list;
  ASSERT_TRUE(ProvenanceOf(MakeRecord(storage::PRIORITIES, pr, "priorities", 7), &list, list.GetAllocator()).ok());
  EXPECT_EQ(StringAt(list, "/target/0/reference"), "List/pat-1/_history/7");
}

// ---- CodeSystem

TEST(CodeSystemResource, HasEveryConceptWithDisplayAndDefinition) {
  rapidjson::Document d;
  CodeSystem(&d, d.GetAllocator());
  ExpectNoEmptyElements(d);
  Dump(d);
  EXPECT_EQ(StringAt(d, "/resourceType"), "CodeSystem");
  EXPECT_EQ(StringAt(d, "/id"), "wmty");
  EXPECT_EQ(StringAt(d, "/url"), std::string(kCodeSystemUrl));
  EXPECT_EQ(StringAt(d, "/status"), "active");
  EXPECT_EQ(StringAt(d, "/content"), "complete");
  std::vector<std::string> codes_seen;
  std::function<void(const rapidjson::Value&)> walk = [&](const rapidjson::Value& concepts) {
    for (const auto& c : concepts.GetArray()) {
      codes_seen.emplace_back(c["code"].GetString());
      EXPECT_GT(c["display"].GetStringLength(), 0u) << codes_seen.back();
      EXPECT_GT(c["definition"].GetStringLength(), 0u) << codes_seen.back();
      if (c.HasMember("concept")) walk(c["concept"]);
    }
  };
  walk(d["concept"]);
  EXPECT_EQ(d["count"].GetInt(), static_cast<int>(codes_seen.size()));
  std::set<std::string> unique(codes_seen.begin(), codes_seen.end());
  EXPECT_EQ(unique.size(), codes_seen.size()) << "codes must be unique";
  for (const char* c : {"what-matters",
                        "communication-channels",
                        "contact-time-window",
                        "name-to-use",
                        "family-involvement",
                        "other-preference",
                        "prompt",
                        "life-domain",
                        "dignity-element",
                        "preferred-channel",
                        "contact-day",
                        "contact-start-time",
                        "contact-end-time",
                        "contact-time-zone",
                        "language",
                        "interpreter-needed",
                        "family-member-name",
                        "family-member-relationship",
                        "family-involvement-how",
                        "home-and-daily-life",
                        "sms",
                        "acceptance-of-identity",
                        "inclusion",
                        "safety",
                        "acknowledgment",
                        "recognition",
                        "fairness",
                        "benefit-of-the-doubt",
                        "understanding",
                        "independence",
                        "accountability"}) {
    EXPECT_THAT(codes_seen, Contains(std::string(c)));
  }
}

// ---- FhirPathFor

TEST(FhirPathFor, MapsDomainFieldsToFhirPaths) {
  EXPECT_EQ(FhirPathFor(storage::GOAL, "goal.description"), "Goal.description.text");
  EXPECT_EQ(FhirPathFor(storage::GOAL, "goal.lifecycle_status"), "Goal.lifecycleStatus");
  EXPECT_EQ(FhirPathFor(storage::GOAL, "goal.target_date"), "Goal.target[0].dueDate");
  EXPECT_EQ(FhirPathFor(storage::GOAL, "goal.notes[3].time"), "Goal.note[3].time");
  EXPECT_EQ(FhirPathFor(storage::GOAL, "goal.what_matters[1]"), "Goal.addresses");
  EXPECT_EQ(FhirPathFor(storage::GOAL, "goal.provenance.said_by.relationship"), "Goal.expressedBy");
  EXPECT_EQ(FhirPathFor(storage::GOAL_SCORE, "goal_score.provenance.said_by.practitioner_id"), "Observation.performer");
  EXPECT_EQ(FhirPathFor(storage::WHAT_MATTERS, "what_matters.statement"), "Observation.valueString");
  EXPECT_EQ(FhirPathFor(storage::WHAT_MATTERS, "what_matters.provenance.said_by.kind"), "Observation.performer");
  EXPECT_EQ(FhirPathFor(storage::WHAT_MATTERS, "what_matters.provenance.said_time"), "Observation.effectiveDateTime");
  EXPECT_EQ(FhirPathFor(storage::PREFERENCE, "preference.value_text"), "Observation.valueString");
  EXPECT_EQ(FhirPathFor(storage::PREFERENCE, "preference.value_code.code"),
            "Observation.valueCodeableConcept.coding[0].code");
  EXPECT_EQ(FhirPathFor(storage::PREFERENCE, "preference.contact_window.days_of_week[2]"), "Observation.component");
  EXPECT_EQ(FhirPathFor(storage::GOAL_SCORE, "goal_score.score"), "Observation.valueCodeableConcept");
  EXPECT_EQ(FhirPathFor(storage::GOAL_SCORE, "goal_score.goal"), "Observation.focus");
  EXPECT_EQ(FhirPathFor(storage::PRIORITIES, "priorities.items[4]"), "List.entry[4].item");
  EXPECT_EQ(FhirPathFor(storage::PRIORITIES, "priorities.provenance.said_by.kind"), "List.source");
  EXPECT_EQ(FhirPathFor(storage::GOAL, "goal.patient.id"), "Goal.subject.reference");
  // No better name: unchanged.
  EXPECT_EQ(FhirPathFor(storage::GOAL, "goal.provenance.recorded_by.practitioner_id"),
            "goal.provenance.recorded_by.practitioner_id");
  EXPECT_EQ(FhirPathFor(storage::GOAL, "goal.provenance.said_time"), "goal.provenance.said_time");
  EXPECT_EQ(FhirPathFor(storage::GOAL, "request_id"), "request_id");
  EXPECT_EQ(FhirPathFor(storage::GOAL, "goal.etag"), "goal.etag");
}

// ---- primitives

TEST(FhirTime, InstantsAndDateTimes) {
  EXPECT_EQ(json::FormatInstant(kUpdateMicros), kUpdateInstant);
  google::protobuf::Timestamp t;
  ASSERT_TRUE(json::ParseDateTime("2026-11-23T16:33:29.520Z", &t));
  EXPECT_EQ(t.seconds(), 1795451609);
  EXPECT_EQ(t.nanos(), 520000000);
  EXPECT_EQ(json::FormatDateTime(t), "2026-11-23T16:33:29.52Z");
  ASSERT_TRUE(json::ParseDateTime("2026-11-23T17:33:29+01:00", &t));
  EXPECT_EQ(t.seconds(), 1795451609);
  ASSERT_TRUE(json::ParseDateTime("2026-11", &t));
  EXPECT_EQ(json::FormatDateTime(t), "2026-11-01T00:00:00Z");
  EXPECT_FALSE(json::ParseDateTime("2026-11-23T16:33Z", &t));
  EXPECT_FALSE(json::ParseDateTime("2026-11-23T16:33:29", &t));
  EXPECT_FALSE(json::ParseDateTime("2026-02-30", &t));
  EXPECT_FALSE(json::ParseDateTime("yesterday", &t));
}

TEST(ToFhir, CorruptStoredDataIsDataLoss) {
  storage::Record r = MakeRecord(storage::GOAL, ::wmty::testing::ValidGoal(), "g-1", 1, "{not json");
  rapidjson::Document d;
  EXPECT_THAT(ToFhir(r, &d, d.GetAllocator()), StatusIs(absl::StatusCode::kDataLoss));
  r.set_fhir_extra_json("");
  r.set_resource("\xff\xff\xff");
  EXPECT_THAT(ToFhir(r, &d, d.GetAllocator()), StatusIs(absl::StatusCode::kDataLoss));
}

}  // namespace
}  // namespace wmty::fhir
