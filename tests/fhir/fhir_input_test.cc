// What the FHIR face accepts from other systems, end to end: the real wmtyd
// (port 0), a real HTTP client and the real gRPC client to check what was
// stored. US Core payloads without a speaker or with a coded-only goal are
// accepted ("not stated", never the patient); elements FHIR R4 does not
// define are refused with their path and nothing is stored (or, with
// --fhir_unknown_elements=drop, dropped with a warning); _pretty=true indents
// the resources of a Bundle too.
#include <atomic>
#include <memory>
#include <string>

#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <rapidjson/document.h>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "fhir/http_client.h"
#include "fhir/server_suite.h"
#include "support/test_support.h"

namespace wmty::testing {
namespace {

using ::testing::HasSubstr;
using ::testing::IsEmpty;
using ::testing::Not;
using ::testing::SizeIs;

const HeaderList kRecorder = {
    {"X-Provenance", R"({"resourceType":"Provenance","agent":[{"type":{"coding":[{"system":)"
                     R"("http://terminology.hl7.org/CodeSystem/provenance-participant-type","code":"author"}]},)"
                     R"("who":{"reference":"Practitioner/rn-17","display":"Ana Ruiz"}}]})"}};

// Shaped as US Core 7's Goal example: no expressedBy.
std::string UsCoreGoal(const std::string& patient, const std::string& description = "") {
  return absl::StrCat(R"({"resourceType": "Goal",
    "meta": {"profile": ["http://hl7.org/fhir/us/core/StructureDefinition/us-core-goal"]},
    "lifecycleStatus": "active",
    "description": )",
                      description.empty() ? R"({"text": "Patient is targeting a pulse oximetry of 92%"})" : description,
                      R"(, "subject": {"reference": "Patient/)", patient, R"(", "display": "Amy V. Shaw"},
    "target": [{"dueDate": "2027-04-05"}]})");
}

// Shaped as US Core 7's Care Experience Preference example: no performer.
std::string UsCoreCareExperiencePreference(const std::string& patient) {
  return absl::StrCat(R"({"resourceType": "Observation",
    "meta": {"profile": ["http://hl7.org/fhir/us/core/StructureDefinition/us-core-care-experience-preference"]},
    "status": "final",
    "category": [{"coding": [{"system": "http://hl7.org/fhir/us/core/CodeSystem/us-core-category",
                              "code": "care-experience-preference", "display": "Care experience preference"}]}],
    "code": {"coding": [{"system": "http://loinc.org", "code": "95541-9",
                         "display": "Care experience preference"}], "text": "Care experience preference"},
    "subject": {"reference": "Patient/)",
                      patient, R"("},
    "effectiveDateTime": "2026-02-22",
    "valueString": "I would like the television volume kept low at night"})");
}

class FhirInputTest : public RealServerSuite {
 protected:
  static std::string NewPatient() {
    static std::atomic<int> n{0};
    return absl::StrCat("in-", ::testing::UnitTest::GetInstance()->current_test_info()->name(), "-", ++n);
  }

  // Creates over FHIR (201 expected) and returns the new id.
  std::string Create(const std::string& type, const std::string& json) {
    HttpResponse r = http_->Post("/fhir/" + type, json, kRecorder);
    EXPECT_EQ(r.status, 201) << r.Describe();
    return StringAt(r.Json(), {"id"});
  }

  v1::Goal GoalOverGrpc(const std::string& patient, const std::string& id) {
    v1::GetResourceRequest get;
    get.set_name(absl::StrCat("patients/", patient, "/goals/", id));
    auto goal = grpc_->GetGoal(get);
    EXPECT_TRUE(goal.ok()) << goal.status();
    return goal.value_or(v1::Goal());
  }

  int GoalCount(const std::string& patient) {
    v1::ListGoalsRequest list;
    list.set_parent("patients/" + patient);
    list.mutable_filter()->set_show_retracted(true);
    auto goals = grpc_->ListGoals(list);
    EXPECT_TRUE(goals.ok()) << goals.status();
    return goals.ok() ? goals->goals_size() : -1;
  }
};

// ---------------------------------------------------------------- not stated

TEST_F(FhirInputTest, AUsCoreGoalWithoutExpressedByIsStoredAsNotStated) {
  const std::string patient = NewPatient();
  const std::string id = Create("Goal", UsCoreGoal(patient));
  ASSERT_FALSE(id.empty());
  EXPECT_EQ(GoalOverGrpc(patient, id).provenance().said_by().kind(), v1::Speaker::NOT_STATED);

  HttpResponse read = http_->Get("/fhir/Goal/" + id);
  ASSERT_EQ(read.status, 200) << read.Describe();
  rapidjson::Document goal = read.Json();
  EXPECT_EQ(JsonAt(goal, {"expressedBy"}), nullptr) << read.body;  // never the patient by default
  EXPECT_THAT(StringAt(goal, {"text", "div"}), HasSubstr("not stated"));

  // Its Provenance names who recorded it and no informant.
  HttpResponse search = http_->Get("/fhir/Goal?_id=" + id + "&_revinclude=Provenance:target");
  ASSERT_EQ(search.status, 200) << search.Describe();
  EXPECT_THAT(EntryIds(search.Json(), "include"), SizeIs(1));
  EXPECT_THAT(search.body, Not(HasSubstr("informant")));
}

TEST_F(FhirInputTest, AUsCorePreferenceWithoutPerformerIsStoredAsNotStated) {
  const std::string patient = NewPatient();
  const std::string id = Create("Observation", UsCoreCareExperiencePreference(patient));
  ASSERT_FALSE(id.empty());
  v1::GetResourceRequest get;
  get.set_name(absl::StrCat("patients/", patient, "/preferences/", id));
  auto pref = grpc_->GetPreference(get);
  ASSERT_TRUE(pref.ok()) << pref.status();
  EXPECT_EQ(pref->kind(), v1::CARE_EXPERIENCE_PREFERENCE);
  EXPECT_EQ(pref->provenance().said_by().kind(), v1::Speaker::NOT_STATED);
  HttpResponse read = http_->Get("/fhir/Observation/" + id);
  EXPECT_EQ(JsonAt(read.Json(), {"performer"}), nullptr) << read.body;
}

TEST_F(FhirInputTest, APrioritiesListWithoutSourceIsStoredAsNotStated) {
  const std::string patient = NewPatient();
  const std::string goal = Create("Goal", UsCoreGoal(patient));
  HttpResponse r = http_->Put("/fhir/List/" + patient,
                              absl::StrCat(R"({"resourceType": "List", "id": ")", patient,
                                           R"(", "status": "current", "mode": "working",
    "code": {"coding": [{"system": "http://loinc.org", "code": "81340-2"}]},
    "subject": {"reference": "Patient/)",
                                           patient, R"("},
    "entry": [{"item": {"reference": "Goal/)",
                                           goal, R"("}}]})"),
                              kRecorder);
  ASSERT_EQ(r.status, 201) << r.Describe();
  EXPECT_EQ(JsonAt(r.Json(), {"source"}), nullptr) << r.body;
  v1::GetResourceRequest get;
  get.set_name(absl::StrCat("patients/", patient, "/priorities"));
  auto priorities = grpc_->GetPriorities(get);
  ASSERT_TRUE(priorities.ok()) << priorities.status();
  EXPECT_EQ(priorities->provenance().said_by().kind(), v1::Speaker::NOT_STATED);
}

TEST_F(FhirInputTest, AGoalScoreByAPractitionerKeepsThePractitioner) {
  const std::string patient = NewPatient();
  const std::string goal = Create("Goal", UsCoreGoal(patient));
  const std::string id = Create("Observation", absl::StrCat(R"({"resourceType": "Observation", "status": "final",
    "code": {"coding": [{"system": "http://loinc.org", "code": "107333-7"}]},
    "subject": {"reference": "Patient/)",
                                                            patient, R"("}, "focus": [{"reference": "Goal/)", goal,
                                                            R"("}],
    "performer": [{"reference": "Practitioner/md-4", "display": "Dr. Lee"}],
    "valueCodeableConcept": {"coding": [{"system": "http://loinc.org", "code": "LA34481-4"}]}})"));
  ASSERT_FALSE(id.empty());
  v1::GetResourceRequest get;
  get.set_name(absl::StrCat("patients/", patient, "/goalScores/", id));
  auto score = grpc_->GetGoalScore(get);
  ASSERT_TRUE(score.ok()) << score.status();
  EXPECT_EQ(score->provenance().said_by().kind(), v1::Speaker::PRACTITIONER);
  EXPECT_EQ(score->provenance().said_by().practitioner_id(), "md-4");
  HttpResponse read = http_->Get("/fhir/Observation/" + id);
  EXPECT_EQ(StringAt(read.Json(), {"performer", "0", "reference"}), "Practitioner/md-4") << read.body;
}

// ---------------------------------------------------------------- coded-only goals

TEST_F(FhirInputTest, ACodedOnlyGoalIsAcceptedAndReturnedWithItsCoding) {
  const std::string patient = NewPatient();
  const std::string coded =
      R"({"coding": [{"system": "http://snomed.info/sct", "code": "289169006", "display": "Able to walk"}]})";
  const std::string id = Create("Goal", UsCoreGoal(patient, coded));
  ASSERT_FALSE(id.empty());
  EXPECT_EQ(GoalOverGrpc(patient, id).description(), "Able to walk");
  HttpResponse read = http_->Get("/fhir/Goal/" + id);
  rapidjson::Document goal = read.Json();
  EXPECT_EQ(StringAt(goal, {"description", "coding", "0", "code"}), "289169006") << read.body;
  EXPECT_EQ(JsonAt(goal, {"description", "text"}), nullptr) << read.body;
}

TEST_F(FhirInputTest, AGoalWithoutAnyDescriptionIsRefusedSayingWhatToSend) {
  const std::string patient = NewPatient();
  HttpResponse r = http_->Post("/fhir/Goal",
                               UsCoreGoal(patient, R"({"coding": [{"system": "http://snomed.info/sct"}]})"), kRecorder);
  EXPECT_EQ(r.status, 400) << r.Describe();
  rapidjson::Document oo = r.Json();
  EXPECT_EQ(StringAt(oo, {"issue", "0", "expression", "0"}), "Goal.description.text") << r.body;
  EXPECT_THAT(StringAt(oo, {"issue", "0", "diagnostics"}), HasSubstr("description.coding with a display or code"));
  EXPECT_EQ(GoalCount(patient), 0);
}

// ---------------------------------------------------------------- unknown elements

TEST_F(FhirInputTest, UnknownElementsAreRefusedWithTheirPathAndNothingIsStored) {
  const std::string patient = NewPatient();
  std::string body = UsCoreGoal(patient);
  body.insert(body.find("\"lifecycleStatus\""), R"("foo": 1, )");
  body.insert(body.find("\"display\": \"Amy V. Shaw\""), R"("foo": {"bar": 2}, )");
  HttpResponse r = http_->Post("/fhir/Goal", body, kRecorder);
  EXPECT_EQ(r.status, 400) << r.Describe();
  rapidjson::Document oo = r.Json();
  EXPECT_EQ(StringAt(oo, {"resourceType"}), "OperationOutcome");
  EXPECT_EQ(StringAt(oo, {"issue", "0", "code"}), "structure") << r.body;
  EXPECT_EQ(StringAt(oo, {"issue", "0", "expression", "0"}), "Goal.foo") << r.body;
  EXPECT_EQ(StringAt(oo, {"issue", "1", "expression", "0"}), "Goal.subject.foo") << r.body;
  EXPECT_EQ(GoalCount(patient), 0);

  // An update is refused the same way and leaves the stored version alone.
  const std::string id = Create("Goal", UsCoreGoal(patient));
  std::string update = UsCoreGoal(patient);
  update.insert(1, absl::StrCat(R"("id": ")", id, R"(", )"));
  update.insert(update.find("\"dueDate\""), R"("when": "soon", )");
  HttpResponse put = http_->Put("/fhir/Goal/" + id, update, kRecorder);
  EXPECT_EQ(put.status, 400) << put.Describe();
  EXPECT_EQ(StringAt(put.Json(), {"issue", "0", "expression", "0"}), "Goal.target[0].when") << put.body;
  EXPECT_EQ(GoalOverGrpc(patient, id).version(), 1);
}

TEST_F(FhirInputTest, R4ElementsWeDoNotMapAreStillKept) {
  const std::string patient = NewPatient();
  std::string body = UsCoreGoal(patient);
  body.insert(body.find("\"lifecycleStatus\""),
              R"("identifier": [{"system": "urn:oid:1.2.3", "value": "goal-42"}], "statusDate": "2026-02-01", )");
  const std::string id = Create("Goal", body);
  HttpResponse read = http_->Get("/fhir/Goal/" + id);
  rapidjson::Document goal = read.Json();
  EXPECT_EQ(StringAt(goal, {"identifier", "0", "value"}), "goal-42") << read.body;
  EXPECT_EQ(StringAt(goal, {"statusDate"}), "2026-02-01") << read.body;
}

TEST(FhirInputDropTest, DropModeStoresTheRestAndWarnsAboutEachDroppedElement) {
  TempDir dir;
  auto server = ServerProcess::Start(dir.path() + "/db", {"--fhir_unknown_elements=drop"});
  ASSERT_TRUE(server.ok()) << server.status();
  HttpClient http((*server)->http_port());
  std::string body = UsCoreGoal("drop-1");
  body.insert(body.find("\"lifecycleStatus\""), R"("foo": 1, )");
  HttpResponse r = http.Post("/fhir/Goal", body, kRecorder);
  ASSERT_EQ(r.status, 201) << r.Describe();
  rapidjson::Document oo = r.Json();
  EXPECT_EQ(StringAt(oo, {"resourceType"}), "OperationOutcome") << r.body;
  EXPECT_EQ(StringAt(oo, {"issue", "1", "severity"}), "warning") << r.body;
  EXPECT_EQ(StringAt(oo, {"issue", "1", "expression", "0"}), "Goal.foo") << r.body;
  const std::string location = r.Header("location");
  ASSERT_THAT(location, HasSubstr("/Goal/"));
  const std::string id =
      location.substr(location.find("/Goal/") + 6, location.find("/_history") - location.find("/Goal/") - 6);
  HttpResponse read = http.Get("/fhir/Goal/" + id);
  ASSERT_EQ(read.status, 200) << read.Describe();
  EXPECT_THAT(read.body, Not(HasSubstr("foo")));
}

TEST(FhirInputDropTest, AnUnknownPolicyIsRefusedAtStartup) {
  TempDir dir;
  auto server = ServerProcess::Start(dir.path() + "/db", {"--fhir_unknown_elements=keep"});
  EXPECT_FALSE(server.ok());
}

// ---------------------------------------------------------------- _pretty

TEST_F(FhirInputTest, PrettyIndentsTheResourcesOfABundleToo) {
  const std::string patient = NewPatient();
  Create("Goal", UsCoreGoal(patient));
  HttpResponse compact = http_->Get("/fhir/Goal?patient=" + patient);
  ASSERT_EQ(compact.status, 200) << compact.Describe();
  EXPECT_THAT(compact.body, Not(HasSubstr("\n")));
  HttpResponse pretty = http_->Get("/fhir/Goal?patient=" + patient + "&_pretty=true&_revinclude=Provenance:target");
  ASSERT_EQ(pretty.status, 200) << pretty.Describe();
  // entry[0].resource's members are on lines of their own, indented below it.
  EXPECT_THAT(pretty.body, HasSubstr("\"resource\": {\n        \"resourceType\": \"Goal\",\n"));
  EXPECT_THAT(pretty.body, HasSubstr("\n        \"lifecycleStatus\": \"active\""));
  EXPECT_THAT(pretty.body, HasSubstr("\"resource\": {\n        \"resourceType\": \"Provenance\",\n"));
  // The same content either way.
  rapidjson::Document a = compact.Json(), b = pretty.Json();
  EXPECT_TRUE(*JsonAt(a, {"entry", "0", "resource"}) == *JsonAt(b, {"entry", "0", "resource"}));
}

TEST_F(FhirInputTest, PrettyIndentsEveryOtherAnswerToo) {
  const std::string patient = NewPatient();
  const std::string id = Create("Goal", UsCoreGoal(patient));
  HttpResponse read = http_->Get("/fhir/Goal/" + id + "?_pretty=true");
  EXPECT_THAT(read.body, HasSubstr("{\n  \"resourceType\": \"Goal\",\n")) << read.body;
  for (const std::string& bundle :
       {"/fhir/Goal/" + id + "/_history?_pretty=true", "/fhir/Patient/" + patient + "/$everything?_pretty=true"}) {
    HttpResponse r = http_->Get(bundle);
    ASSERT_EQ(r.status, 200) << r.Describe();
    EXPECT_THAT(r.body, HasSubstr("\"resource\": {\n        \"resourceType\": \"Goal\",\n")) << bundle;
  }
}

}  // namespace
}  // namespace wmty::testing
