// The FHIR R4 REST face end to end: the real wmtyd (ServerProcess, HTTP and
// gRPC on port 0), a real HTTP client (Boost.Beast, tests/fhir/http_client.h)
// and the real gRPC client, so data written through one face is checked
// through the other.
#include <atomic>
#include <fstream>
#include <set>
#include <sstream>
#include <thread>

#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <rapidjson/document.h>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_replace.h"
#include "fhir/http_client.h"
#include "fhir/server_suite.h"
#include "support/test_support.h"

namespace wmty::testing {
namespace {

using ::testing::Contains;
using ::testing::ElementsAre;
using ::testing::HasSubstr;
using ::testing::IsEmpty;
using ::testing::Not;
using ::testing::UnorderedElementsAreArray;

constexpr absl::string_view kXProvenance =
    R"({"resourceType":"Provenance","agent":[{"type":{"coding":[{"system":)"
    R"("http://terminology.hl7.org/CodeSystem/provenance-participant-type","code":"author"}]},)"
    R"("who":{"reference":"Practitioner/rn-17","display":"Ana Ruiz"},"role":[{"text":"RN"}]}]})";

std::string IdOf(const std::string& name) { return name.substr(name.rfind('/') + 1); }

std::string GoalJson(const std::string& patient, const std::string& description, const std::string& extra = "") {
  return absl::StrCat(R"({"resourceType":"Goal","lifecycleStatus":"active","description":{"text":")", description,
                      R"("},"subject":{"reference":"Patient/)", patient, R"("},"expressedBy":{"reference":"Patient/)",
                      patient,
                      R"("},"target":[{"dueDate":"2027-06-15"}],"category":[{"coding":[{"system":"http://loinc.org",)"
                      R"("code":"87528-6"}]}])",
                      extra, "}");
}

// Checks an error response: status, an OperationOutcome body, the first issue's code.
void ExpectOutcome(const HttpResponse& r, int status, const std::string& code) {
  EXPECT_EQ(r.status, status) << r.Describe();
  EXPECT_THAT(r.Header("content-type"), HasSubstr("application/fhir+json")) << r.Describe();
  rapidjson::Document d = r.Json();
  ASSERT_TRUE(d.IsObject()) << r.Describe();
  EXPECT_EQ(StringAt(d, {"resourceType"}), "OperationOutcome") << r.Describe();
  EXPECT_EQ(StringAt(d, {"issue", "0", "severity"}), "error") << r.Describe();
  if (!code.empty()) {
    EXPECT_EQ(StringAt(d, {"issue", "0", "code"}), code) << r.Describe();
  }
}

class FhirServiceTest : public RealServerSuite {
 protected:
  // A patient id no other test uses.
  static std::string NewPatient() {
    static std::atomic<int> n{0};
    return absl::StrCat("fp-", ::testing::UnitTest::GetInstance()->current_test_info()->name(), "-", ++n);
  }

  v1::Goal CreateGoalGrpc(const std::string& patient, const std::string& description = "Garden again") {
    v1::CreateGoalRequest req;
    req.set_parent("patients/" + patient);
    *req.mutable_goal() = ValidGoal(description);
    auto goal = grpc_->CreateGoal(req);
    EXPECT_TRUE(goal.ok()) << goal.status();
    return goal.ok() ? *goal : v1::Goal();
  }

  std::string CreateGoalFhir(const std::string& patient, const std::string& description = "Garden again",
                             const std::string& extra = "") {
    HttpResponse r =
        http_->Post("/fhir/Goal", GoalJson(patient, description, extra), {{"X-Provenance", std::string(kXProvenance)}});
    EXPECT_EQ(r.status, 201) << r.Describe();
    return StringAt(r.Json(), {"id"});
  }
};

// ---------------------------------------------------------------- the two faces agree

TEST_F(FhirServiceTest, GoalRecordedOverGrpcIsReadableOverFhir) {
  const std::string patient = NewPatient();
  const v1::Goal goal = CreateGoalGrpc(patient, "Walk my daughter down the aisle in June");
  HttpResponse r = http_->Get("/fhir/Goal/" + IdOf(goal.name()));
  ASSERT_EQ(r.status, 200) << r.Describe();
  EXPECT_THAT(r.Header("content-type"), HasSubstr("application/fhir+json"));
  EXPECT_EQ(r.Header("etag"), "W/\"1\"");
  EXPECT_THAT(r.Header("last-modified"), HasSubstr("GMT"));
  rapidjson::Document d = r.Json();
  EXPECT_EQ(StringAt(d, {"resourceType"}), "Goal");
  EXPECT_EQ(StringAt(d, {"id"}), IdOf(goal.name()));
  EXPECT_EQ(StringAt(d, {"meta", "versionId"}), "1");
  EXPECT_EQ(StringAt(d, {"description", "text"}), "Walk my daughter down the aisle in June");
  EXPECT_EQ(StringAt(d, {"lifecycleStatus"}), "active");
  EXPECT_EQ(StringAt(d, {"subject", "reference"}), "Patient/" + patient);
  EXPECT_EQ(StringAt(d, {"target", "0", "dueDate"}), "2027-06-15");
  EXPECT_EQ(StringAt(d, {"startDate"}), "2026-11-01");
}

TEST_F(FhirServiceTest, GoalWrittenOverFhirIsReadableOverGrpc) {
  const std::string patient = NewPatient();
  const std::string id = CreateGoalFhir(patient, "Dance at the wedding");
  ASSERT_FALSE(id.empty());
  v1::GetResourceRequest get;
  get.set_name(absl::StrCat("patients/", patient, "/goals/", id));
  auto goal = grpc_->GetGoal(get);
  ASSERT_TRUE(goal.ok()) << goal.status();
  EXPECT_EQ(goal->description(), "Dance at the wedding");
  EXPECT_EQ(goal->lifecycle_status(), v1::GOAL_ACTIVE);
  EXPECT_EQ(goal->target_date(), "2027-06-15");
  EXPECT_THAT(goal->categories(), ElementsAre(v1::PERSONAL_HEALTH_GOAL));
  EXPECT_EQ(goal->provenance().said_by().kind(), v1::Speaker::PATIENT);
  // Who recorded it comes from X-Provenance.
  EXPECT_EQ(goal->provenance().recorded_by().practitioner_id(), "rn-17");
  EXPECT_EQ(goal->provenance().recorded_by().display_name(), "Ana Ruiz");
  EXPECT_EQ(goal->provenance().recorded_by().role(), "RN");
  EXPECT_EQ(goal->version(), 1);

  // An update over gRPC shows up over FHIR, and the FHIR-only elements stay.
  const std::string with_extension =
      CreateGoalFhir(patient, "Keep my garden", R"(,"identifier":[{"system":"urn:ehr:goals","value":"G-1"}])");
  get.set_name(absl::StrCat("patients/", patient, "/goals/", with_extension));
  auto kept = grpc_->GetGoal(get);
  ASSERT_TRUE(kept.ok()) << kept.status();
  v1::UpdateGoalRequest update;
  *update.mutable_goal() = *kept;
  update.mutable_goal()->set_lifecycle_status(v1::ON_HOLD);
  auto updated = grpc_->UpdateGoal(update);
  ASSERT_TRUE(updated.ok()) << updated.status();
  HttpResponse r = http_->Get("/fhir/Goal/" + with_extension);
  ASSERT_EQ(r.status, 200) << r.Describe();
  rapidjson::Document d = r.Json();
  EXPECT_EQ(StringAt(d, {"lifecycleStatus"}), "on-hold");
  EXPECT_EQ(StringAt(d, {"identifier", "0", "value"}), "G-1");
  EXPECT_EQ(StringAt(d, {"meta", "versionId"}), "2");
}

TEST_F(FhirServiceTest, WritesWithoutXProvenanceAreUnattributed) {
  const std::string patient = NewPatient();
  HttpResponse r = http_->Post("/fhir/Goal", GoalJson(patient, "Sleep through the night"));
  ASSERT_EQ(r.status, 201) << r.Describe();
  v1::GetResourceRequest get;
  get.set_name(absl::StrCat("patients/", patient, "/goals/", StringAt(r.Json(), {"id"})));
  auto goal = grpc_->GetGoal(get);
  ASSERT_TRUE(goal.ok()) << goal.status();
  EXPECT_EQ(goal->provenance().recorded_by().practitioner_id(), "unattributed");
  ExpectOutcome(http_->Post("/fhir/Goal", GoalJson(patient, "x"), {{"X-Provenance", "{\"resourceType\":\"Goal\"}"}}),
                400, "invalid");
}

TEST_F(FhirServiceTest, ObservationsOfEveryKindRoundTrip) {
  const std::string patient = NewPatient();
  v1::CreateWhatMattersRequest wm;
  wm.set_parent("patients/" + patient);
  *wm.mutable_what_matters() = ValidWhatMatters("Being home for my garden");
  auto what_matters = grpc_->CreateWhatMatters(wm);
  ASSERT_TRUE(what_matters.ok()) << what_matters.status();
  v1::CreatePreferenceRequest pref;
  pref.set_parent("patients/" + patient);
  *pref.mutable_preference() = ValidPreference();
  auto preference = grpc_->CreatePreference(pref);
  ASSERT_TRUE(preference.ok()) << preference.status();
  const v1::Goal goal = CreateGoalGrpc(patient);
  v1::CreateGoalScoreRequest score;
  score.set_parent("patients/" + patient);
  score.mutable_goal_score()->set_goal(goal.name());
  score.mutable_goal_score()->set_score_type(v1::INITIAL);
  score.mutable_goal_score()->set_score(-1);
  *score.mutable_goal_score()->mutable_provenance() = NurseProvenance();
  auto goal_score = grpc_->CreateGoalScore(score);
  ASSERT_TRUE(goal_score.ok()) << goal_score.status();

  for (const std::string& name : {what_matters->name(), preference->name(), goal_score->name()}) {
    SCOPED_TRACE(name);
    const std::string id = IdOf(name);
    HttpResponse r = http_->Get("/fhir/Observation/" + id);
    ASSERT_EQ(r.status, 200) << r.Describe();
    rapidjson::Document d = r.Json();
    EXPECT_EQ(StringAt(d, {"resourceType"}), "Observation");
    EXPECT_EQ(StringAt(d, {"subject", "reference"}), "Patient/" + patient);
    // PUT back what was read: a new version with the same content.
    HttpResponse put = http_->Put("/fhir/Observation/" + id, r.body, {{"If-Match", "W/\"1\""}});
    ASSERT_EQ(put.status, 200) << put.Describe();
    EXPECT_EQ(put.Header("etag"), "W/\"2\"");
    // POST it as a new resource (the id is ignored on create).
    HttpResponse post = http_->Post("/fhir/Observation", r.body);
    ASSERT_EQ(post.status, 201) << post.Describe();
    EXPECT_NE(StringAt(post.Json(), {"id"}), id);
    // The code of what was read finds it.
    const std::string code =
        absl::StrCat(StringAt(d, {"code", "coding", "0", "system"}), "|", StringAt(d, {"code", "coding", "0", "code"}));
    HttpResponse found = http_->Get("/fhir/Observation?patient=" + patient + "&code=" + code);
    ASSERT_EQ(found.status, 200) << found.Describe();
    EXPECT_THAT(EntryIds(found.Json()), Contains(id));
  }
  // The statement read back over gRPC is unchanged after the FHIR round trip.
  v1::GetResourceRequest get;
  get.set_name(what_matters->name());
  auto after = grpc_->GetWhatMatters(get);
  ASSERT_TRUE(after.ok()) << after.status();
  EXPECT_EQ(after->statement(), "Being home for my garden");
  EXPECT_EQ(after->version(), 2);

  // focus finds the goal's score.
  HttpResponse focus = http_->Get("/fhir/Observation?focus=Goal/" + IdOf(goal.name()));
  ASSERT_EQ(focus.status, 200) << focus.Describe();
  EXPECT_THAT(EntryIds(focus.Json()), Contains(IdOf(goal_score->name())));
}

TEST_F(FhirServiceTest, PrioritiesListOverBothFaces) {
  const std::string patient = NewPatient();
  const v1::Goal goal = CreateGoalGrpc(patient);
  v1::CreateWhatMattersRequest wm;
  wm.set_parent("patients/" + patient);
  *wm.mutable_what_matters() = ValidWhatMatters();
  auto what_matters = grpc_->CreateWhatMatters(wm);
  ASSERT_TRUE(what_matters.ok()) << what_matters.status();
  // Not set yet: not found (and no List to delete).
  ExpectOutcome(http_->Get("/fhir/List/" + patient), 404, "not-found");
  ExpectOutcome(http_->Delete("/fhir/List/" + patient), 405, "not-supported");

  v1::UpdatePrioritiesRequest set;
  set.mutable_priorities()->set_name(absl::StrCat("patients/", patient, "/priorities"));
  set.mutable_priorities()->add_items(goal.name());
  *set.mutable_priorities()->mutable_provenance() = NurseProvenance();
  auto priorities = grpc_->UpdatePriorities(set);
  ASSERT_TRUE(priorities.ok()) << priorities.status();

  HttpResponse r = http_->Get("/fhir/List/" + patient);
  ASSERT_EQ(r.status, 200) << r.Describe();
  rapidjson::Document d = r.Json();
  EXPECT_EQ(StringAt(d, {"resourceType"}), "List");
  EXPECT_EQ(StringAt(d, {"id"}), patient);
  EXPECT_EQ(StringAt(d, {"entry", "0", "item", "reference"}), "Goal/" + IdOf(goal.name()));

  // PUT a new order naming an Observation: resolved to the what-matters entry.
  std::string body = r.body;
  const std::string goal_ref = "\"Goal/" + IdOf(goal.name()) + "\"";
  const std::string obs_ref = "\"Observation/" + IdOf(what_matters->name()) + "\"";
  body = absl::StrReplaceAll(
      body, {{absl::StrCat("{\"item\":{\"reference\":", goal_ref, "}}"),
              absl::StrCat("{\"item\":{\"reference\":", obs_ref, "}},{\"item\":{\"reference\":", goal_ref, "}}")}});
  ASSERT_NE(body, r.body) << "entry layout changed: " << r.body;
  HttpResponse put = http_->Put("/fhir/List/" + patient, body, {{"If-Match", "W/\"1\""}});
  ASSERT_EQ(put.status, 200) << put.Describe();
  v1::GetResourceRequest get;
  get.set_name(absl::StrCat("patients/", patient, "/priorities"));
  auto after = grpc_->GetPriorities(get);
  ASSERT_TRUE(after.ok()) << after.status();
  EXPECT_THAT(after->items(), ElementsAre(what_matters->name(), goal.name()));

  // An unknown item is refused, pointing at the entry.
  const std::string bad = absl::StrReplaceAll(body, {{obs_ref, "\"Observation/NOSUCHID\""}});
  HttpResponse refused = http_->Put("/fhir/List/" + patient, bad);
  ExpectOutcome(refused, 400, "value");
  EXPECT_EQ(StringAt(refused.Json(), {"issue", "0", "expression", "0"}), "List.entry[0].item");

  // PUT as create for a new patient (id = the patient id), then POST is a conflict.
  const std::string other = NewPatient();
  const v1::Goal other_goal = CreateGoalGrpc(other);
  std::string fresh = absl::StrReplaceAll(r.body, {{"Patient/" + patient, "Patient/" + other},
                                                   {"\"id\":\"" + patient + "\"", "\"id\":\"" + other + "\""},
                                                   {"Goal/" + IdOf(goal.name()), "Goal/" + IdOf(other_goal.name())}});
  HttpResponse created = http_->Put("/fhir/List/" + other, fresh);
  ASSERT_EQ(created.status, 201) << created.Describe();
  EXPECT_EQ(created.Header("etag"), "W/\"1\"");
  ExpectOutcome(http_->Post("/fhir/List", fresh), 409, "duplicate");
  // The List id must be the subject's.
  ExpectOutcome(http_->Put("/fhir/List/" + patient, fresh), 400, "invalid");
}

// ---------------------------------------------------------------- interactions

TEST_F(FhirServiceTest, CreateAnswersLocationEtagAndHonoursPrefer) {
  const std::string patient = NewPatient();
  HttpResponse r = http_->Post("/fhir/Goal", GoalJson(patient, "Paint again"));
  ASSERT_EQ(r.status, 201) << r.Describe();
  const std::string id = StringAt(r.Json(), {"id"});
  EXPECT_EQ(r.Header("location"), absl::StrCat(server_->http_base(), "/Goal/", id, "/_history/1"));
  EXPECT_EQ(r.Header("etag"), "W/\"1\"");
  EXPECT_FALSE(r.Header("last-modified").empty());

  HttpResponse minimal = http_->Post("/fhir/Goal", GoalJson(patient, "Paint again"), {{"Prefer", "return=minimal"}});
  ASSERT_EQ(minimal.status, 201) << minimal.Describe();
  EXPECT_TRUE(minimal.body.empty());
  EXPECT_THAT(minimal.Header("location"), HasSubstr("/_history/1"));

  HttpResponse outcome =
      http_->Post("/fhir/Goal", GoalJson(patient, "Paint again"), {{"Prefer", "return=OperationOutcome"}});
  ASSERT_EQ(outcome.status, 201) << outcome.Describe();
  EXPECT_EQ(StringAt(outcome.Json(), {"resourceType"}), "OperationOutcome");
  EXPECT_EQ(StringAt(outcome.Json(), {"issue", "0", "severity"}), "information");
}

TEST_F(FhirServiceTest, XRequestIdMakesCreateIdempotent) {
  const std::string patient = NewPatient();
  const HeaderList once = {{"X-Request-Id", "req-" + patient}};
  HttpResponse first = http_->Post("/fhir/Goal", GoalJson(patient, "Swim"), once);
  HttpResponse again = http_->Post("/fhir/Goal", GoalJson(patient, "Swim"), once);
  ASSERT_EQ(first.status, 201) << first.Describe();
  ASSERT_EQ(again.status, 201) << again.Describe();
  EXPECT_EQ(StringAt(first.Json(), {"id"}), StringAt(again.Json(), {"id"}));
  HttpResponse search = http_->Get("/fhir/Goal?patient=" + patient);
  EXPECT_EQ(EntryIds(search.Json()).size(), 1u);
  // The same id for another request.
  ExpectOutcome(http_->Post("/fhir/Goal", GoalJson(patient, "Run"), once), 409, "conflict");
  ExpectOutcome(http_->Post("/fhir/Goal", GoalJson(patient, "Run"), {{"X-Request-Id", std::string(200, 'x')}}), 400,
                "value");
}

TEST_F(FhirServiceTest, XRequestIdMakesUpdatesAndDeletesIdempotent) {
  const std::string patient = NewPatient();
  const std::string id = CreateGoalFhir(patient, "v1");
  std::string body = GoalJson(patient, "v2");
  body.insert(1, "\"id\":\"" + id + "\",");
  // Without If-Match: the retry replays the first result.
  const HeaderList blind = {{"X-Request-Id", "put-" + patient}};
  HttpResponse first = http_->Put("/fhir/Goal/" + id, body, blind);
  HttpResponse retry = http_->Put("/fhir/Goal/" + id, body, blind);
  ASSERT_EQ(first.status, 200) << first.Describe();
  ASSERT_EQ(retry.status, 200) << retry.Describe();
  EXPECT_EQ(retry.Header("etag"), "W/\"2\"");
  // With If-Match likewise.
  std::string v3 = GoalJson(patient, "v3");
  v3.insert(1, "\"id\":\"" + id + "\",");
  const HeaderList guarded = {{"X-Request-Id", "put3-" + patient}, {"If-Match", "W/\"2\""}};
  ASSERT_EQ(http_->Put("/fhir/Goal/" + id, v3, guarded).status, 200);
  HttpResponse again = http_->Put("/fhir/Goal/" + id, v3, guarded);
  ASSERT_EQ(again.status, 200) << again.Describe();
  EXPECT_EQ(again.Header("etag"), "W/\"3\"");
  // A delete retried.
  const HeaderList del = {{"X-Request-Id", "del-" + patient}};
  EXPECT_EQ(http_->Delete("/fhir/Goal/" + id, del).status, 204);
  EXPECT_EQ(http_->Delete("/fhir/Goal/" + id, del).status, 204);
  HttpResponse history = http_->Get("/fhir/Goal/" + id + "/_history");
  EXPECT_EQ(history.Json()["total"].GetInt(), 4);
}

// A retried PUT without If-Match replays its first result even after another
// write: the domain fingerprints "any version", not a guessed etag (the face
// used to retry with version - 1, which refused this retry as a reused id).
TEST_F(FhirServiceTest, RetriedBlindUpdateReplaysAfterAnotherWrite) {
  const std::string patient = NewPatient();
  const std::string id = CreateGoalFhir(patient, "v1");
  auto body = [&](const std::string& description) {
    std::string b = GoalJson(patient, description);
    b.insert(1, "\"id\":\"" + id + "\",");
    return b;
  };
  const HeaderList blind = {{"X-Request-Id", "put-" + patient}};
  HttpResponse first = http_->Put("/fhir/Goal/" + id, body("v2"), blind);
  ASSERT_EQ(first.status, 200) << first.Describe();
  ASSERT_EQ(http_->Put("/fhir/Goal/" + id, body("v3")).status, 200);
  HttpResponse retry = http_->Put("/fhir/Goal/" + id, body("v2"), blind);
  ASSERT_EQ(retry.status, 200) << retry.Describe();
  EXPECT_EQ(retry.Header("etag"), "W/\"2\"");
  EXPECT_EQ(http_->Get("/fhir/Goal/" + id).Header("etag"), "W/\"3\"") << "the replay wrote nothing";
}

TEST_F(FhirServiceTest, ConditionalCreate) {
  const std::string patient = NewPatient();
  const std::string identifier = R"(,"identifier":[{"system":"urn:ehr","value":")" + patient + R"("}])";
  const HeaderList condition = {{"If-None-Exist", "identifier=urn:ehr|" + patient}};
  HttpResponse first = http_->Post("/fhir/Goal", GoalJson(patient, "Bake bread", identifier), condition);
  ASSERT_EQ(first.status, 201) << first.Describe();
  HttpResponse second = http_->Post("/fhir/Goal", GoalJson(patient, "Bake bread", identifier), condition);
  ASSERT_EQ(second.status, 200) << second.Describe();
  EXPECT_EQ(StringAt(second.Json(), {"id"}), StringAt(first.Json(), {"id"}));
  EXPECT_EQ(second.Header("etag"), "W/\"1\"");
  // A second resource with the same identifier: the criteria are ambiguous.
  ASSERT_EQ(http_->Post("/fhir/Goal", GoalJson(patient, "Bake bread", identifier)).status, 201);
  ExpectOutcome(http_->Post("/fhir/Goal", GoalJson(patient, "Bake bread", identifier), condition), 412,
                "multiple-matches");
  // Unknown parameters are refused (never ignored) in If-None-Exist.
  ExpectOutcome(http_->Post("/fhir/Goal", GoalJson(patient, "x"), {{"If-None-Exist", "nonsense=1"}}), 400,
                "not-supported");
}

TEST_F(FhirServiceTest, ReadUnknownDeletedAndConditional) {
  const std::string patient = NewPatient();
  ExpectOutcome(http_->Get("/fhir/Goal/NOSUCHGOAL"), 404, "not-found");
  ExpectOutcome(http_->Get("/fhir/Observation/NOSUCH"), 404, "not-found");
  ExpectOutcome(http_->Get("/fhir/Goal/bad%20id"), 404, "not-found");
  const std::string id = CreateGoalFhir(patient);
  HttpResponse same = http_->Get("/fhir/Goal/" + id, {{"If-None-Match", "W/\"1\""}});
  EXPECT_EQ(same.status, 304) << same.Describe();
  EXPECT_TRUE(same.body.empty());
  ASSERT_EQ(http_->Delete("/fhir/Goal/" + id).status, 204);
  HttpResponse gone = http_->Get("/fhir/Goal/" + id);
  ExpectOutcome(gone, 410, "deleted");
  EXPECT_EQ(gone.Header("etag"), "W/\"2\"");
}

TEST_F(FhirServiceTest, VreadEveryVersion) {
  const std::string patient = NewPatient();
  const std::string id = CreateGoalFhir(patient, "Version one");
  std::string v2 = GoalJson(patient, "Version two");
  v2.insert(1, "\"id\":\"" + id + "\",");
  ASSERT_EQ(http_->Put("/fhir/Goal/" + id, v2).status, 200);
  ASSERT_EQ(http_->Delete("/fhir/Goal/" + id).status, 204);
  HttpResponse r1 = http_->Get("/fhir/Goal/" + id + "/_history/1");
  ASSERT_EQ(r1.status, 200) << r1.Describe();
  EXPECT_EQ(StringAt(r1.Json(), {"description", "text"}), "Version one");
  EXPECT_EQ(StringAt(r1.Json(), {"meta", "versionId"}), "1");
  EXPECT_EQ(r1.Header("etag"), "W/\"1\"");
  HttpResponse r2 = http_->Get("/fhir/Goal/" + id + "/_history/2");
  ASSERT_EQ(r2.status, 200) << r2.Describe();
  EXPECT_EQ(StringAt(r2.Json(), {"description", "text"}), "Version two");
  ExpectOutcome(http_->Get("/fhir/Goal/" + id + "/_history/3"), 410, "deleted");
  ExpectOutcome(http_->Get("/fhir/Goal/" + id + "/_history/4"), 404, "not-found");
  ExpectOutcome(http_->Get("/fhir/Goal/" + id + "/_history/x"), 404, "not-found");
}

TEST_F(FhirServiceTest, UpdateRules) {
  const std::string patient = NewPatient();
  const std::string id = CreateGoalFhir(patient, "One");
  auto body = [&](const std::string& text, const std::string& with_id) {
    std::string b = GoalJson(patient, text);
    if (!with_id.empty()) b.insert(1, "\"id\":\"" + with_id + "\",");
    return b;
  };
  HttpResponse ok = http_->Put("/fhir/Goal/" + id, body("Two", id), {{"If-Match", "W/\"1\""}});
  ASSERT_EQ(ok.status, 200) << ok.Describe();
  EXPECT_EQ(ok.Header("etag"), "W/\"2\"");
  EXPECT_EQ(StringAt(ok.Json(), {"description", "text"}), "Two");
  // Stale If-Match.
  ExpectOutcome(http_->Put("/fhir/Goal/" + id, body("Three", id), {{"If-Match", "W/\"1\""}}), 412, "conflict");
  ExpectOutcome(http_->Put("/fhir/Goal/" + id, body("Three", id), {{"If-Match", "banana"}}), 400, "value");
  // Without If-Match: against the current version.
  HttpResponse blind = http_->Put("/fhir/Goal/" + id, body("Three", id));
  ASSERT_EQ(blind.status, 200) << blind.Describe();
  EXPECT_EQ(blind.Header("etag"), "W/\"3\"");
  // The body's id must be the URL's.
  ExpectOutcome(http_->Put("/fhir/Goal/" + id, body("Four", "SOMETHINGELSE")), 400, "invalid");
  ExpectOutcome(http_->Put("/fhir/Goal/" + id, body("Four", "")), 400, "required");
  // Another patient.
  std::string moved = body("Four", id);
  moved = absl::StrReplaceAll(moved, {{"Patient/" + patient, "Patient/someone-else"}});
  ExpectOutcome(http_->Put("/fhir/Goal/" + id, moved), 400, "invalid");
  // Unknown id: this server assigns ids (405, FHIR http.html).
  ExpectOutcome(http_->Put("/fhir/Goal/NOSUCHGOAL", body("x", "NOSUCHGOAL")), 405, "not-supported");
  // Deleted: cannot change any more.
  ASSERT_EQ(http_->Delete("/fhir/Goal/" + id).status, 204);
  ExpectOutcome(http_->Put("/fhir/Goal/" + id, body("Five", id)), 409, "deleted");
}

TEST_F(FhirServiceTest, ConcurrentBlindUpdatesAllSucceed) {
  const std::string patient = NewPatient();
  const std::string id = CreateGoalFhir(patient, "Start");
  std::vector<std::thread> threads;
  std::atomic<int> ok{0};
  for (int t = 0; t < 4; ++t) {
    threads.emplace_back([&, t] {
      HttpClient client(server_->http_port());
      for (int i = 0; i < 5; ++i) {
        std::string b = GoalJson(patient, absl::StrCat("Writer ", t, " step ", i));
        b.insert(1, "\"id\":\"" + id + "\",");
        if (client.Put("/fhir/Goal/" + id, b).status == 200) ++ok;
      }
    });
  }
  for (auto& th : threads) th.join();
  EXPECT_EQ(ok.load(), 20);
  EXPECT_EQ(http_->Get("/fhir/Goal/" + id).Header("etag"), "W/\"21\"");
}

TEST_F(FhirServiceTest, DeleteSemantics) {
  const std::string patient = NewPatient();
  const std::string id = CreateGoalFhir(patient);
  ExpectOutcome(http_->Delete("/fhir/Goal/" + id, {{"If-Match", "W/\"7\""}}), 412, "conflict");
  HttpResponse del = http_->Delete("/fhir/Goal/" + id, {{"If-Match", "W/\"1\""}});
  EXPECT_EQ(del.status, 204) << del.Describe();
  EXPECT_TRUE(del.body.empty());
  // Already deleted, or never existed: 204 as well (http.html).
  EXPECT_EQ(http_->Delete("/fhir/Goal/" + id).status, 204);
  EXPECT_EQ(http_->Delete("/fhir/Goal/NEVERWAS").status, 204);
  // Retracted in the domain; gone from search, kept in history.
  v1::GetResourceRequest get;
  get.set_name(absl::StrCat("patients/", patient, "/goals/", id));
  auto goal = grpc_->GetGoal(get);
  ASSERT_TRUE(goal.ok()) << goal.status();
  EXPECT_EQ(goal->state(), v1::RETRACTED);
  EXPECT_THAT(EntryIds(http_->Get("/fhir/Goal?patient=" + patient).Json()), IsEmpty());
}

// The bedside's "entered in error": the reason rides in X-Provenance
// (reason[0].text) and shows in the domain, the deletion's Provenance and the
// instance history.
TEST_F(FhirServiceTest, DeleteKeepsTheRetractionReason) {
  const std::string patient = NewPatient();
  const std::string id = CreateGoalFhir(patient);
  // JSON escapes carry non-ASCII words in a header (browsers send Latin-1 only).
  const std::string why = R"({"resourceType":"Provenance","reason":[{"text":"Wrong patient \u00e9 chart"}]})";
  // A reason is a deletion's only: elsewhere it would be dropped, so it is refused.
  std::string b = GoalJson(patient, "changed");
  b.insert(1, "\"id\":\"" + id + "\",");
  ExpectOutcome(http_->Put("/fhir/Goal/" + id, b, {{"X-Provenance", why}}), 400, "invalid");
  const std::string too_long =
      absl::StrCat(R"({"resourceType":"Provenance","reason":[{"text":")", std::string(1100, 'x'), R"("}]})");
  ExpectOutcome(http_->Delete("/fhir/Goal/" + id, {{"X-Provenance", too_long}}), 400, "");
  ASSERT_EQ(http_->Get("/fhir/Goal/" + id).status, 200);  // refused: nothing changed

  HttpResponse del = http_->Delete("/fhir/Goal/" + id, {{"If-Match", "W/\"1\""}, {"X-Provenance", why}});
  ASSERT_EQ(del.status, 204) << del.Describe();
  v1::GetResourceRequest get;
  get.set_name(absl::StrCat("patients/", patient, "/goals/", id));
  auto goal = grpc_->GetGoal(get);
  ASSERT_TRUE(goal.ok()) << goal.status();
  EXPECT_EQ(goal->retract_reason(), "Wrong patient \xC3\xA9 chart");

  HttpResponse prov = http_->Get("/fhir/Provenance?target=Goal/" + id + "/_history/2");
  ASSERT_EQ(prov.status, 200) << prov.Describe();
  rapidjson::Document p = prov.Json();
  EXPECT_EQ(StringAt(p, {"entry", "0", "resource", "activity", "coding", "0", "code"}), "DELETE");
  EXPECT_EQ(StringAt(p, {"entry", "0", "resource", "reason", "0", "text"}), "Wrong patient \xC3\xA9 chart");
  HttpResponse first = http_->Get("/fhir/Provenance?target=Goal/" + id + "/_history/1");
  EXPECT_FALSE(first.Json()["entry"][0]["resource"].HasMember("reason")) << first.Describe();

  HttpResponse history = http_->Get("/fhir/Goal/" + id + "/_history");
  ASSERT_EQ(history.status, 200) << history.Describe();
  rapidjson::Document h = history.Json();
  EXPECT_EQ(StringAt(h, {"entry", "0", "request", "method"}), "DELETE");
  EXPECT_EQ(StringAt(h, {"entry", "0", "response", "outcome", "resourceType"}), "OperationOutcome");
  EXPECT_EQ(StringAt(h, {"entry", "0", "response", "outcome", "issue", "0", "details", "text"}),
            "Wrong patient \xC3\xA9 chart");
  EXPECT_FALSE(h["entry"][1]["response"].HasMember("outcome"));
}

TEST_F(FhirServiceTest, InstanceHistoryNewestFirstWithDeletes) {
  const std::string patient = NewPatient();
  const std::string id = CreateGoalFhir(patient, "v1");
  for (int v = 2; v <= 4; ++v) {
    std::string b = GoalJson(patient, absl::StrCat("v", v));
    b.insert(1, "\"id\":\"" + id + "\",");
    ASSERT_EQ(http_->Put("/fhir/Goal/" + id, b).status, 200);
  }
  ASSERT_EQ(http_->Delete("/fhir/Goal/" + id).status, 204);
  HttpResponse r = http_->Get("/fhir/Goal/" + id + "/_history?_count=2");
  ASSERT_EQ(r.status, 200) << r.Describe();
  rapidjson::Document d = r.Json();
  EXPECT_EQ(StringAt(d, {"type"}), "history");
  ASSERT_EQ(d["entry"].Size(), 2u);
  EXPECT_EQ(StringAt(d, {"entry", "0", "request", "method"}), "DELETE");
  EXPECT_FALSE(d["entry"][0].HasMember("resource"));
  EXPECT_EQ(StringAt(d, {"entry", "0", "response", "etag"}), "W/\"5\"");
  EXPECT_EQ(StringAt(d, {"entry", "1", "request", "method"}), "PUT");
  EXPECT_EQ(StringAt(d, {"entry", "1", "resource", "description", "text"}), "v4");
  std::vector<std::string> methods;
  std::string next = LinkOf(d, "next");
  while (!next.empty()) {
    HttpResponse page = http_->Get(PathOf(next));
    ASSERT_EQ(page.status, 200) << page.Describe();
    rapidjson::Document p = page.Json();
    for (const auto& e : p["entry"].GetArray()) methods.push_back(StringAt(e, {"request", "method"}));
    next = LinkOf(p, "next");
  }
  EXPECT_THAT(methods, ElementsAre("PUT", "PUT", "POST"));
  ExpectOutcome(http_->Get("/fhir/Goal/NOSUCH/_history"), 404, "not-found");
}

TEST_F(FhirServiceTest, TypeHistoryPagesNewestFirst) {
  const std::string patient = NewPatient();
  std::vector<std::string> ids;
  for (int i = 0; i < 3; ++i) ids.push_back(CreateGoalFhir(patient, absl::StrCat("history ", i)));
  ASSERT_EQ(http_->Delete("/fhir/Goal/" + ids[0]).status, 204);
  // Changes to other types are not in Goal's history.
  v1::CreateWhatMattersRequest wm;
  wm.set_parent("patients/" + patient);
  *wm.mutable_what_matters() = ValidWhatMatters();
  ASSERT_TRUE(grpc_->CreateWhatMatters(wm).ok());
  HttpResponse r = http_->Get("/fhir/Goal/_history?_count=3");
  ASSERT_EQ(r.status, 200) << r.Describe();
  rapidjson::Document d = r.Json();
  ASSERT_EQ(d["entry"].Size(), 3u);
  EXPECT_EQ(StringAt(d, {"entry", "0", "request", "method"}), "DELETE");
  EXPECT_EQ(StringAt(d, {"entry", "0", "fullUrl"}), absl::StrCat(server_->http_base(), "/Goal/", ids[0]));
  EXPECT_EQ(StringAt(d, {"entry", "1", "resource", "id"}), ids[2]);
  EXPECT_EQ(StringAt(d, {"entry", "2", "resource", "id"}), ids[1]);
  const std::string next = LinkOf(d, "next");
  ASSERT_FALSE(next.empty());
  HttpResponse page2 = http_->Get(PathOf(next));
  ASSERT_EQ(page2.status, 200) << page2.Describe();
  EXPECT_EQ(StringAt(page2.Json(), {"entry", "0", "resource", "id"}), ids[0]);
  EXPECT_EQ(StringAt(page2.Json(), {"entry", "0", "request", "method"}), "POST");
  // A token of another query is refused.
  ExpectOutcome(http_->Get(absl::StrReplaceAll(PathOf(next), {{"/Goal/", "/Observation/"}})), 400, "invalid");
}

// ---------------------------------------------------------------- search

TEST_F(FhirServiceTest, SearchParameters) {
  const std::string patient = NewPatient();
  const std::string a =
      CreateGoalFhir(patient, "A", R"(,"identifier":[{"system":"urn:s","value":"A-)" + patient + R"("}])");
  std::string b_json = GoalJson(patient, "B");
  b_json =
      absl::StrReplaceAll(b_json, {{"\"active\"", "\"completed\""},
                                   {"2027-06-15", "2029-01-01"},
                                   {"http://loinc.org\",\"code\":\"87528-6\"",
                                    "http://terminology.hl7.org/CodeSystem/goal-category\",\"code\":\"dietary\""}});
  HttpResponse b_resp = http_->Post("/fhir/Goal", b_json);
  ASSERT_EQ(b_resp.status, 201) << b_resp.Describe();
  const std::string b = StringAt(b_resp.Json(), {"id"});
  auto ids = [&](const std::string& query) {
    HttpResponse r = http_->Get("/fhir/Goal?" + query);
    EXPECT_EQ(r.status, 200) << query << "\n" << r.Describe();
    return EntryIds(r.Json());
  };
  const std::string p = "patient=" + patient;
  EXPECT_THAT(ids(p), ElementsAre(a, b));  // creation (id) order
  EXPECT_THAT(ids("subject=Patient/" + patient), ElementsAre(a, b));
  EXPECT_THAT(ids(p + "&lifecycle-status=active"), ElementsAre(a));
  EXPECT_THAT(ids(p + "&lifecycle-status=active,completed"), ElementsAre(a, b));
  EXPECT_THAT(ids(p + "&lifecycle-status=http://hl7.org/fhir/goal-status|completed"), ElementsAre(b));
  EXPECT_THAT(ids(p + "&category=http://loinc.org|87528-6"), ElementsAre(a));
  EXPECT_THAT(ids(p + "&category=dietary"), ElementsAre(b));
  EXPECT_THAT(ids(p + "&target-date=ge2028"), ElementsAre(b));
  EXPECT_THAT(ids(p + "&target-date=lt2028&target-date=gt2027-01"), ElementsAre(a));
  EXPECT_THAT(ids(p + "&_id=" + b), ElementsAre(b));
  EXPECT_THAT(ids("_id=" + a + "," + b), ElementsAre(a, b));
  EXPECT_THAT(ids(p + "&_lastUpdated=ge2020-01-01"), ElementsAre(a, b));
  EXPECT_THAT(ids(p + "&_lastUpdated=lt2020-01-01"), IsEmpty());
  EXPECT_THAT(ids("identifier=urn:s|A-" + patient), ElementsAre(a));  // across patients
  EXPECT_THAT(ids(p + "&_sort=-_lastUpdated"), ElementsAre(b, a));
  EXPECT_THAT(ids(p + "&_sort=_lastUpdated"), ElementsAre(a, b));
  EXPECT_THAT(ids("patient=" + patient + "-nobody"), IsEmpty());

  // _summary=count: the total only.
  HttpResponse count = http_->Get("/fhir/Goal?" + p + "&_summary=count");
  ASSERT_EQ(count.status, 200) << count.Describe();
  rapidjson::Document c = count.Json();
  ASSERT_TRUE(c.HasMember("total"));
  EXPECT_EQ(c["total"].GetInt(), 2);
  EXPECT_FALSE(c.HasMember("entry"));

  // POST _search: the same, parameters in the body.
  auto posted = http_->Send("POST", "/fhir/Goal/_search", p + "&lifecycle-status=completed",
                            {{"Content-Type", "application/x-www-form-urlencoded"}});
  ASSERT_TRUE(posted.ok());
  EXPECT_EQ(posted->status, 200) << posted->Describe();
  EXPECT_THAT(EntryIds(posted->Json()), ElementsAre(b));
  auto wrong_type = http_->Send("POST", "/fhir/Goal/_search", "{}", {{"Content-Type", "application/json"}});
  ASSERT_TRUE(wrong_type.ok());
  ExpectOutcome(*wrong_type, 415, "not-supported");

  // Malformed values are errors whatever the handling.
  ExpectOutcome(http_->Get("/fhir/Goal?" + p + "&target-date=tomorrow"), 400, "invalid");
  ExpectOutcome(http_->Get("/fhir/Goal?" + p + "&_count=-3"), 400, "invalid");
  ExpectOutcome(http_->Get("/fhir/Goal?" + p + "&_page_token=forged"), 400, "invalid");
}

TEST_F(FhirServiceTest, UnknownParametersLenientByDefaultStrictOnRequest) {
  const std::string patient = NewPatient();
  const std::string id = CreateGoalFhir(patient);
  HttpResponse lenient = http_->Get("/fhir/Goal?patient=" + patient + "&colour=blue");
  ASSERT_EQ(lenient.status, 200) << lenient.Describe();
  rapidjson::Document d = lenient.Json();
  EXPECT_THAT(EntryIds(d), ElementsAre(id));
  EXPECT_EQ(LinkOf(d, "self"), absl::StrCat(server_->http_base(), "/Goal?patient=", patient));
  ExpectOutcome(http_->Get("/fhir/Goal?patient=" + patient + "&colour=blue", {{"Prefer", "handling=strict"}}), 400,
                "not-supported");
  EXPECT_EQ(http_->Get("/fhir/Goal?patient=" + patient, {{"Prefer", "handling=strict"}}).status, 200);
}

TEST_F(FhirServiceTest, RevincludeProvenanceAndProvenanceReads) {
  const std::string patient = NewPatient();
  const std::string id = CreateGoalFhir(patient);
  std::string b = GoalJson(patient, "changed");
  b.insert(1, "\"id\":\"" + id + "\",");
  ASSERT_EQ(http_->Put("/fhir/Goal/" + id, b, {{"X-Provenance", std::string(kXProvenance)}}).status, 200);
  HttpResponse r = http_->Get("/fhir/Goal?patient=" + patient + "&_revinclude=Provenance:target");
  ASSERT_EQ(r.status, 200) << r.Describe();
  rapidjson::Document d = r.Json();
  EXPECT_THAT(EntryIds(d, "match"), ElementsAre(id));
  const std::vector<std::string> included = EntryIds(d, "include");
  ASSERT_EQ(included.size(), 1u);
  // The Provenance of the current version, readable by its id.
  HttpResponse prov = http_->Get("/fhir/Provenance/" + included[0]);
  ASSERT_EQ(prov.status, 200) << prov.Describe();
  rapidjson::Document p = prov.Json();
  EXPECT_EQ(StringAt(p, {"resourceType"}), "Provenance");
  EXPECT_EQ(StringAt(p, {"target", "0", "reference"}), "Goal/" + id + "/_history/2");
  EXPECT_THAT(prov.body, HasSubstr("Practitioner/rn-17"));
  // Provenance search by target: every version.
  HttpResponse all = http_->Get("/fhir/Provenance?target=Goal/" + id);
  ASSERT_EQ(all.status, 200) << all.Describe();
  EXPECT_EQ(EntryIds(all.Json()).size(), 2u);
  HttpResponse one = http_->Get("/fhir/Provenance?target=Goal/" + id + "/_history/1");
  EXPECT_EQ(EntryIds(one.Json()).size(), 1u);
  ExpectOutcome(http_->Get("/fhir/Provenance"), 400, "required");
  ExpectOutcome(http_->Get("/fhir/Provenance/s999999999"), 404, "not-found");
  ExpectOutcome(http_->Get("/fhir/Provenance/nonsense"), 404, "not-found");
}

TEST_F(FhirServiceTest, EverythingForAPatient) {
  const std::string patient = NewPatient();
  const v1::Goal goal = CreateGoalGrpc(patient);
  v1::CreateWhatMattersRequest wm;
  wm.set_parent("patients/" + patient);
  *wm.mutable_what_matters() = ValidWhatMatters();
  auto what_matters = grpc_->CreateWhatMatters(wm);
  ASSERT_TRUE(what_matters.ok());
  const std::string deleted = CreateGoalFhir(patient);
  ASSERT_EQ(http_->Delete("/fhir/Goal/" + deleted).status, 204);
  HttpResponse r = http_->Get("/fhir/Patient/" + patient + "/$everything");
  ASSERT_EQ(r.status, 200) << r.Describe();
  rapidjson::Document d = r.Json();
  EXPECT_EQ(StringAt(d, {"type"}), "searchset");
  EXPECT_THAT(EntryIds(d, "match"), UnorderedElementsAreArray({IdOf(goal.name()), IdOf(what_matters->name())}));
  EXPECT_EQ(EntryIds(d, "include").size(), 2u);
  EXPECT_EQ(d["total"].GetInt(), 2);
  HttpResponse empty = http_->Get("/fhir/Patient/nobody-at-all/$everything");
  ASSERT_EQ(empty.status, 200);
  EXPECT_FALSE(empty.Json().HasMember("entry"));
  // No Patient record was sent for this patient: reading it is an unknown id.
  ExpectOutcome(http_->Get("/fhir/Patient/" + patient), 404, "not-found");
}

TEST_F(FhirServiceTest, MetadataListsWhatIsImplemented) {
  HttpResponse r = http_->Get("/fhir/metadata");
  ASSERT_EQ(r.status, 200) << r.Describe();
  rapidjson::Document d = r.Json();
  EXPECT_EQ(StringAt(d, {"resourceType"}), "CapabilityStatement");
  EXPECT_EQ(StringAt(d, {"status"}), "active");
  EXPECT_EQ(StringAt(d, {"kind"}), "instance");
  EXPECT_EQ(StringAt(d, {"fhirVersion"}), "4.0.1");
  EXPECT_EQ(StringAt(d, {"implementation", "url"}), server_->http_base());
  std::map<std::string, std::set<std::string>> interactions;
  for (const auto& res : d["rest"][0]["resource"].GetArray()) {
    auto& set = interactions[StringAt(res, {"type"})];
    if (res.HasMember("interaction")) {
      for (const auto& i : res["interaction"].GetArray()) set.insert(StringAt(i, {"code"}));
    }
  }
  const std::set<std::string> full = {"read",         "vread",  "update",     "delete", "history-instance",
                                      "history-type", "create", "search-type"};
  EXPECT_EQ(interactions["Goal"], full);
  EXPECT_EQ(interactions["Observation"], full);
  std::set<std::string> list = full;
  list.erase("delete");
  EXPECT_EQ(interactions["List"], list);
  EXPECT_EQ(interactions["Provenance"], (std::set<std::string>{"read", "search-type"}));
  EXPECT_EQ(interactions["CodeSystem"], (std::set<std::string>{"read", "search-type"}));
  EXPECT_THAT(r.body, HasSubstr("Patient-everything"));
  // CodeSystem/wmty is served.
  HttpResponse cs = http_->Get("/fhir/CodeSystem/wmty");
  ASSERT_EQ(cs.status, 200) << cs.Describe();
  EXPECT_EQ(StringAt(cs.Json(), {"resourceType"}), "CodeSystem");
  ExpectOutcome(http_->Get("/fhir/CodeSystem/other"), 404, "not-found");
  // ... and found by its canonical URL.
  HttpResponse by_url = http_->Get("/fhir/CodeSystem?url=https://fhir.wmty.health/CodeSystem/wmty");
  EXPECT_EQ(by_url.status, 200);
  EXPECT_EQ(StringAt(by_url.Json(), {"entry", "0", "resource", "id"}), "wmty");
}

// ---------------------------------------------------------------- paging under writes

// Pages through `first` following next links; returns the ids in order.
std::vector<std::string> PageThrough(HttpClient& http, const std::string& first, int* pages) {
  std::vector<std::string> seen;
  std::string target = first;
  *pages = 0;
  while (!target.empty()) {
    HttpResponse r = http.Get(target);
    EXPECT_EQ(r.status, 200) << r.Describe();
    if (r.status != 200) break;
    rapidjson::Document d = r.Json();
    for (const auto& id : EntryIds(d)) seen.push_back(id);
    ++*pages;
    const std::string next = LinkOf(d, "next");
    target = next.empty() ? "" : PathOf(next);
  }
  return seen;
}

TEST_F(FhirServiceTest, PagingStaysCorrectWhileWritesHappen) {
  const std::string patient = NewPatient();
  std::vector<std::string> before;
  for (int i = 0; i < 40; ++i) before.push_back(IdOf(CreateGoalGrpc(patient, absl::StrCat("goal ", i)).name()));
  std::atomic<bool> stop{false};
  std::atomic<int> written{0};
  std::thread writer([&] {
    auto client = server_->NewClient();
    while (!stop.load()) {
      v1::CreateGoalRequest req;
      req.set_parent("patients/" + patient);
      *req.mutable_goal() = ValidGoal("written while paging");
      if (client->CreateGoal(req).ok()) ++written;
    }
  });
  for (const std::string& query : {"/fhir/Goal?patient=" + patient + "&_count=7",
                                   "/fhir/Goal?patient=" + patient + "&_count=6&_sort=_lastUpdated"}) {
    SCOPED_TRACE(query);
    const int floor = written.load();
    int pages = 0;
    const std::vector<std::string> seen = PageThrough(*http_, query, &pages);
    const std::set<std::string> unique(seen.begin(), seen.end());
    EXPECT_EQ(unique.size(), seen.size()) << "duplicates across pages";
    for (const std::string& id : before) EXPECT_TRUE(unique.count(id)) << "skipped " << id;
    EXPECT_GE(seen.size(), before.size() + static_cast<size_t>(floor));
    EXPECT_GT(pages, 5);
    if (query.find("_sort") == std::string::npos) {
      EXPECT_TRUE(std::is_sorted(seen.begin(), seen.end())) << "not in id (creation) order";
    }
  }
  stop = true;
  writer.join();
  EXPECT_GT(written.load(), 0);
}

TEST_F(FhirServiceTest, PagingAcrossPatientsWithoutPatient) {
  const std::string tag = NewPatient();
  std::set<std::string> expected;
  for (int i = 0; i < 9; ++i) {
    expected.insert(CreateGoalFhir(absl::StrCat(tag, "-", i % 3), "shared",
                                   R"(,"identifier":[{"system":"urn:tag","value":")" + tag + R"("}])"));
  }
  int pages = 0;
  const std::vector<std::string> seen =
      PageThrough(*http_, "/fhir/Goal?identifier=urn:tag|" + tag + "&_count=2", &pages);
  EXPECT_EQ(std::set<std::string>(seen.begin(), seen.end()), expected);
  EXPECT_EQ(seen.size(), expected.size());
  EXPECT_EQ(pages, 5);
}

// ---------------------------------------------------------------- errors

TEST_F(FhirServiceTest, EveryErrorIsAnOperationOutcome) {
  const std::string patient = NewPatient();
  // Malformed JSON, not an object, wrong resourceType.
  ExpectOutcome(http_->Post("/fhir/Goal", "{\"resourceType\":"), 400, "structure");
  ExpectOutcome(http_->Post("/fhir/Goal", "[1,2]"), 400, "structure");
  ExpectOutcome(http_->Post("/fhir/Goal", ""), 400, "structure");
  ExpectOutcome(http_->Post("/fhir/Goal", "{\"resourceType\":\"Observation\"}"), 400, "invalid");
  ExpectOutcome(http_->Post("/fhir/Goal", "{\"lifecycleStatus\":\"active\"}"), 400, "structure");
  // Invalid UTF-8, duplicate members, absurd nesting.
  ExpectOutcome(http_->Post("/fhir/Goal", GoalJson(patient, "bad \xff byte")), 400, "structure");
  ExpectOutcome(http_->Post("/fhir/Goal", R"({"resourceType":"Goal","resourceType":"Goal"})"), 400, "structure");
  ExpectOutcome(http_->Post("/fhir/Goal", absl::StrCat(R"({"resourceType":"Goal","x":)", std::string(5000, '['),
                                                       std::string(5000, ']'), "}")),
                400, "structure");
  // Missing required elements and codes outside a required binding name the element.
  HttpResponse missing =
      http_->Post("/fhir/Goal", absl::StrReplaceAll(GoalJson(patient, "x"), {{R"("lifecycleStatus":"active",)", ""}}));
  ExpectOutcome(missing, 400, "required");
  EXPECT_EQ(StringAt(missing.Json(), {"issue", "0", "expression", "0"}), "Goal.lifecycleStatus");
  HttpResponse binding =
      http_->Post("/fhir/Goal", absl::StrReplaceAll(GoalJson(patient, "x"), {{"\"active\"", "\"dreaming\""}}));
  EXPECT_EQ(binding.status, 400) << binding.Describe();
  EXPECT_EQ(StringAt(binding.Json(), {"issue", "0", "expression", "0"}), "Goal.lifecycleStatus");
  HttpResponse blank = http_->Post("/fhir/Goal", GoalJson(patient, "   "));
  EXPECT_EQ(blank.status, 400) << blank.Describe();
  EXPECT_THAT(StringAt(blank.Json(), {"issue", "0", "expression", "0"}), HasSubstr("Goal.description"));
  // Media types.
  auto xml = http_->Send("POST", "/fhir/Goal", "<Goal/>", {{"Content-Type", "application/fhir+xml"}});
  ASSERT_TRUE(xml.ok());
  ExpectOutcome(*xml, 415, "not-supported");
  auto none = http_->Send("POST", "/fhir/Goal", GoalJson(patient, "x"));
  ASSERT_TRUE(none.ok());
  ExpectOutcome(*none, 415, "not-supported");
  ExpectOutcome(http_->Get("/fhir/metadata", {{"Accept", "application/fhir+xml"}}), 406, "not-supported");
  ExpectOutcome(http_->Get("/fhir/metadata?_format=xml"), 406, "not-supported");
  EXPECT_EQ(http_->Get("/fhir/metadata?_format=json").status, 200);
  EXPECT_THAT(http_->Get("/fhir/metadata", {{"Accept", "application/json"}}).Header("content-type"),
              HasSubstr("application/json"));
  // Unknown types, paths and methods.
  ExpectOutcome(http_->Get("/fhir/Condition/1"), 404, "not-supported");
  ExpectOutcome(http_->Get("/nothing-here"), 404, "not-found");
  ExpectOutcome(http_->Get("/fhir"), 400, "not-supported");
  auto patch = http_->Send("PATCH", "/fhir/Goal/x", "{}", {{"Content-Type", "application/json-patch+json"}});
  ASSERT_TRUE(patch.ok());
  ExpectOutcome(*patch, 405, "not-supported");
  EXPECT_FALSE(patch->Header("allow").empty());
  // Bad query strings.
  ExpectOutcome(http_->Get("/fhir/Goal?patient=%zz"), 400, "invalid");
}

TEST_F(FhirServiceTest, TooLargeAndMalformedHttp) {
  // A body over the limit (1 MiB): refused from its Content-Length.
  auto big =
      http_->SendRaw(absl::StrCat("POST /fhir/Goal HTTP/1.1\r\nHost: x\r\nContent-Type: application/fhir+json\r\n"
                                  "Content-Length: 2000000\r\n\r\n",
                                  std::string(65536, ' ')));
  ASSERT_TRUE(big.ok()) << big.status();
  ExpectOutcome(*big, 413, "too-long");
  auto garbage = http_->SendRaw("THIS IS NOT HTTP\r\n\r\n");
  ASSERT_TRUE(garbage.ok()) << garbage.status();
  ExpectOutcome(*garbage, 400, "structure");
  // The server is still fine.
  EXPECT_EQ(http_->Get("/fhir/metadata").status, 200);
}

TEST(FhirServerLimitsTest, BodyLimitFlag) {
  TempDir dir;
  auto server = ServerProcess::Start(dir.path() + "/db", {"--http_max_body_bytes=2000"});
  ASSERT_TRUE(server.ok()) << server.status();
  HttpClient http((*server)->http_port());
  HttpResponse big = http.Post("/fhir/Goal", GoalJson("p1", std::string(3000, 'a')));
  ExpectOutcome(big, 413, "too-long");
  HttpClient again((*server)->http_port());
  EXPECT_EQ(again.Post("/fhir/Goal", GoalJson("p1", "small")).status, 201);
}

TEST_F(FhirServiceTest, KeepAliveReusesOneConnection) {
  HttpClient http(server_->http_port());
  for (int i = 0; i < 5; ++i) {
    HttpResponse r = http.Get("/fhir/metadata");
    ASSERT_EQ(r.status, 200);
    EXPECT_TRUE(r.keep_alive);
  }
  // Errors keep the connection too.
  EXPECT_EQ(http.Get("/fhir/Goal/NOSUCH").status, 404);
  EXPECT_EQ(http.Get("/fhir/metadata").status, 200);
  EXPECT_EQ(http.connections_opened(), 1);
}

TEST_F(FhirServiceTest, NoInputCrashesTheServer) {
  const std::string patient = NewPatient();
  const std::vector<std::string> bodies = {
      "null",
      "true",
      "1e999",
      "\"x\"",
      "{}",
      R"({"resourceType":null})",
      R"({"resourceType":"Goal","subject":7})",
      R"({"resourceType":"Goal","description":[],"lifecycleStatus":{}})",
      R"({"resourceType":"Goal","lifecycleStatus":"active","description":{"text":"x"},"subject":{"reference":"Patient/../x"}})",
      R"({"resourceType":"Goal","target":[null,{"dueDate":12}],"note":"x"})",
      std::string("{\"a\":\"\0\"}", 9)};
  for (const std::string& body : bodies) {
    for (const std::string type : {"Goal", "Observation", "List"}) {
      HttpResponse r = http_->Post("/fhir/" + type, body);
      EXPECT_TRUE(r.status == 400) << type << " " << body << "\n" << r.Describe();
      HttpResponse u = http_->Put("/fhir/" + type + "/x", body);
      EXPECT_GE(u.status, 400) << r.Describe();
      EXPECT_LT(u.status, 500) << r.Describe();
    }
  }
  for (const std::string target :
       {"/fhir/Goal/_history/../../x", "/fhir//Goal", "/fhir/Goal?_count=99999999999999999999",
        "/fhir/Goal?target-date=ge", "/fhir/Observation?date=2024-01-01T99:99", "/fhir/Goal?_sort=",
        "/fhir/Goal?subject:=1", "/fhir/Goal?patient=,", "/fhir/Provenance?target=", "/fhir/Provenance/s0",
        "/fhir/Provenance/s18446744073709551615", "/fhir/Goal/x/_history/999999999999999999999",
        "/fhir/Patient/../$everything", "/fhir/List?code=|", "/fhir/Goal?_page_token=%00"}) {
    HttpResponse r = http_->Get(target);
    EXPECT_GT(r.status, 0) << target;
    EXPECT_LT(r.status, 500) << target << "\n" << r.Describe();
  }
  EXPECT_EQ(http_->Get("/fhir/metadata").status, 200);
}

TEST_F(FhirServiceTest, PatientWordsNeverReachTheLog) {
  const std::string patient = NewPatient();
  const std::string words = "Zanzibar-marmalade-" + patient;
  CreateGoalFhir(patient, words);
  http_->Get("/fhir/Goal?patient=" + patient + "&identifier=" + words);
  http_->Post("/fhir/Goal", GoalJson(patient, words, ",\"bogus\":"));
  std::ifstream in(server_->log_path());
  std::stringstream log;
  log << in.rdbuf();
  EXPECT_THAT(log.str(), Not(HasSubstr("Zanzibar")));
}

}  // namespace
}  // namespace wmty::testing
