// The FHIR face's audit trail (issue 4) end to end: the real wmtyd with an
// HS256 secret and real tokens. Reads, searches, creates, refused reads and
// unauthenticated requests each leave an AuditEvent findable by patient,
// agent, action and date with the right outcome; AuditEvents carry the
// mandatory R4 elements and never patient text or tokens; they need a scope
// naming AuditEvent, and cannot be created, changed or deleted.
#include <fstream>

#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <rapidjson/document.h>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "fhir/http_client.h"
#include "support/test_support.h"
#include "support/test_tokens.h"

namespace wmty::testing {
namespace {

using ::testing::HasSubstr;
using ::testing::Not;

constexpr char kGoalText[] = "PHI-goal-text-never-audited";

std::string GoalJson(const std::string& patient, const std::string& description) {
  return absl::StrCat(R"({"resourceType":"Goal","lifecycleStatus":"active","description":{"text":")", description,
                      R"("},"subject":{"reference":"Patient/)", patient, R"("},"expressedBy":{"reference":"Patient/)",
                      patient,
                      R"("},"target":[{"dueDate":"2027-06-15"}],"category":[{"coding":[{"system":"http://loinc.org",)"
                      R"("code":"87528-6"}]}]})");
}

// The R4 AuditEvent cardinalities we rely on: type 1..1, recorded 1..1,
// agent 1..* each with requestor 1..1, source 1..1 with observer 1..1.
void ExpectMandatory(const rapidjson::Value& e) {
  EXPECT_EQ(StringAt(e, {"resourceType"}), "AuditEvent");
  EXPECT_EQ(StringAt(e, {"type", "system"}), "http://terminology.hl7.org/CodeSystem/audit-event-type");
  EXPECT_EQ(StringAt(e, {"type", "code"}), "rest");
  EXPECT_FALSE(StringAt(e, {"recorded"}).empty());
  const rapidjson::Value* agents = JsonAt(e, {"agent"});
  ASSERT_TRUE(agents != nullptr && agents->IsArray() && agents->Size() >= 1);
  for (const auto& a : agents->GetArray()) {
    ASSERT_TRUE(a.HasMember("requestor") && a["requestor"].IsBool());
  }
  EXPECT_FALSE(StringAt(e, {"source", "observer", "display"}).empty());
  EXPECT_THAT(StringAt(e, {"outcome"}), ::testing::AnyOf("0", "4", "8", "12"));
}

class FhirAuditTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    dir_ = new TempDir();
    auto server = ServerProcess::Start(dir_->path() + "/db", Hs256AuthFlagsIn(dir_->path()));
    ASSERT_TRUE(server.ok()) << server.status();
    server_ = server->release();
    start_ = absl::FormatTime("%Y-%m-%dT%H:%M:%SZ", absl::Now() - absl::Seconds(2), absl::UTCTimeZone());
    system_ = SignToken({.scope = "system/*.cruds", .sub = "Practitioner/writer-1"});
    auditor_ = SignToken({.scope = "system/AuditEvent.rs", .sub = "auditor-1"});
    a_ = SignToken({.scope = "patient/*.rs", .patient = "pa", .sub = "Patient/pa-user"});
    a_auditor_ = SignToken({.scope = "patient/AuditEvent.rs", .patient = "pa", .sub = "Patient/pa-user"});
  }
  static void TearDownTestSuite() {
    delete server_;
    server_ = nullptr;
    delete dir_;
  }
  void SetUp() override {
    ASSERT_NE(server_, nullptr);
    http_ = std::make_unique<HttpClient>(server_->http_port());
  }

  std::string CreateGoal(const std::string& patient) {
    HttpResponse r = http_->Post("/fhir/Goal", GoalJson(patient, kGoalText), Bearer(system_));
    EXPECT_EQ(r.status, 201) << r.Describe();
    return StringAt(r.Json(), {"id"});
  }

  // Searches (as the auditor) until an event matching `pred` shows up: the
  // trail is appended asynchronously, with the next group commit.
  rapidjson::Document FindEvent(const std::string& query, const std::function<bool(const rapidjson::Value&)>& pred) {
    for (int i = 0; i < 100; ++i) {
      HttpResponse r = http_->Get("/fhir/AuditEvent?" + query + "&_count=1000", Bearer(auditor_));
      EXPECT_EQ(r.status, 200) << r.Describe();
      rapidjson::Document d = r.Json();
      if (d.IsObject() && d.HasMember("entry")) {
        for (const auto& e : d["entry"].GetArray()) {
          if (pred(e["resource"])) {
            rapidjson::Document out;
            out.CopyFrom(e["resource"], out.GetAllocator());
            return out;
          }
        }
      }
      absl::SleepFor(absl::Milliseconds(50));
    }
    ADD_FAILURE() << "no audit event for " << query;
    return rapidjson::Document();
  }

  static bool Has(const rapidjson::Value& e, absl::string_view subtype, absl::string_view outcome,
                  absl::string_view what = "") {
    if (StringAt(e, {"subtype", "0", "code"}) != subtype || StringAt(e, {"outcome"}) != outcome) return false;
    if (what.empty()) return true;
    const rapidjson::Value* entities = JsonAt(e, {"entity"});
    if (entities == nullptr || !entities->IsArray()) return false;
    for (const auto& en : entities->GetArray()) {
      if (StringAt(en, {"what", "reference"}) == what) return true;
    }
    return false;
  }

  static inline TempDir* dir_ = nullptr;
  static inline ServerProcess* server_ = nullptr;
  static inline std::string start_, system_, auditor_, a_, a_auditor_;
  std::unique_ptr<HttpClient> http_;
};

TEST_F(FhirAuditTest, CreateReadSearchAndRefusalsAreAudited) {
  const std::string goal_a = CreateGoal("pa");
  const std::string goal_b = CreateGoal("pb");
  ASSERT_FALSE(goal_a.empty());
  ASSERT_FALSE(goal_b.empty());

  // Create (by the system token), found by patient, agent, action and date.
  rapidjson::Document created =
      FindEvent(absl::StrCat("patient=pa&agent=Practitioner/writer-1&action=C&date=ge", start_),
                [&](const rapidjson::Value& e) { return Has(e, "create", "0", "Goal/" + goal_a); });
  ExpectMandatory(created);
  EXPECT_EQ(StringAt(created, {"action"}), "C");
  EXPECT_EQ(StringAt(created, {"agent", "0", "who", "identifier", "value"}), "Practitioner/writer-1");
  EXPECT_EQ(StringAt(created, {"entity", "0", "what", "reference"}), "Patient/pa");
  EXPECT_EQ(StringAt(created, {"agent", "0", "network", "address"}), "127.0.0.1");

  // A read and a search by patient A's token, the read with a spoofed peer header.
  HttpResponse read = http_->Get("/fhir/Goal/" + goal_a, Bearer(a_, {{"X-Wmty-Remote", "6.6.6.6:1"}}));
  ASSERT_EQ(read.status, 200) << read.Describe();
  HttpResponse search = http_->Get("/fhir/Goal?patient=pa", Bearer(a_));
  ASSERT_EQ(search.status, 200) << search.Describe();
  rapidjson::Document read_event = FindEvent("patient=Patient/pa&agent=Patient/pa-user&action=R",
                                             [&](const auto& e) { return Has(e, "read", "0", "Goal/" + goal_a); });
  ExpectMandatory(read_event);
  EXPECT_EQ(StringAt(read_event, {"agent", "0", "network", "address"}), "127.0.0.1");
  rapidjson::Document search_event =
      FindEvent("patient=pa&agent=Patient/pa-user&action=E", [&](const auto& e) { return Has(e, "search-type", "0"); });
  ExpectMandatory(search_event);

  // A refused read of B's goal (404 to A): outcome 4, still about B.
  HttpResponse refused = http_->Get("/fhir/Goal/" + goal_b, Bearer(a_));
  ASSERT_EQ(refused.status, 404) << refused.Describe();
  rapidjson::Document refused_event = FindEvent("patient=pb&agent=Patient/pa-user&action=R",
                                                [&](const auto& e) { return Has(e, "read", "4", "Goal/" + goal_b); });
  EXPECT_THAT(StringAt(refused_event, {"outcomeDesc"}), HasSubstr("404"));

  // No token at all: 401, audited without an agent identity.
  HttpResponse anonymous = http_->Get("/fhir/Goal/" + goal_a);
  ASSERT_EQ(anonymous.status, 401) << anonymous.Describe();
  rapidjson::Document anonymous_event = FindEvent(absl::StrCat("action=R&date=ge", start_), [&](const auto& e) {
    return StringAt(e, {"outcome"}) == "4" && absl::StrContains(StringAt(e, {"outcomeDesc"}), "401");
  });
  ExpectMandatory(anonymous_event);
  EXPECT_EQ(StringAt(anonymous_event, {"agent", "0", "who", "identifier", "value"}), "");

  // Dates: nothing is recorded before the server started.
  HttpResponse before = http_->Get("/fhir/AuditEvent?date=lt2000-01-01", Bearer(auditor_));
  ASSERT_EQ(before.status, 200) << before.Describe();
  EXPECT_FALSE(before.Json().HasMember("entry"));

  // Never patient text or a token, anywhere in the trail.
  HttpResponse all = http_->Get("/fhir/AuditEvent?_count=1000", Bearer(auditor_));
  ASSERT_EQ(all.status, 200) << all.Describe();
  EXPECT_THAT(all.body, Not(HasSubstr(kGoalText)));
  for (const std::string& token : {system_, auditor_, a_}) {
    EXPECT_THAT(all.body, Not(HasSubstr(token.substr(token.rfind('.') + 1))));
    EXPECT_THAT(all.body, Not(HasSubstr(token.substr(0, 30))));
  }
  // Named: a range-for over a member of the temporary Json() would read it after it is destroyed.
  const rapidjson::Document all_json = all.Json();
  for (const auto& e : all_json["entry"].GetArray()) ExpectMandatory(e["resource"]);
}

TEST_F(FhirAuditTest, ReadByIdAndPaging) {
  CreateGoal("pa");
  rapidjson::Document any = FindEvent("patient=pa", [](const auto&) { return true; });
  const std::string id = StringAt(any, {"id"});
  ASSERT_FALSE(id.empty());
  HttpResponse r = http_->Get("/fhir/AuditEvent/" + id, Bearer(auditor_));
  ASSERT_EQ(r.status, 200) << r.Describe();
  ExpectMandatory(r.Json());
  EXPECT_EQ(StringAt(r.Json(), {"id"}), id);
  EXPECT_EQ(http_->Get("/fhir/AuditEvent/a999999999", Bearer(auditor_)).status, 404);
  EXPECT_EQ(http_->Get("/fhir/AuditEvent/nonsense", Bearer(auditor_)).status, 404);

  // Paging with next links: every event once. Audit records are written
  // asynchronously: wait until at least five are visible, so there are pages.
  for (int i = 0; i < 100; ++i) {
    rapidjson::Document all = http_->Get("/fhir/AuditEvent?_count=1000", Bearer(auditor_)).Json();
    if (all.IsObject() && all.HasMember("entry") && all["entry"].Size() >= 5) break;
    absl::SleepFor(absl::Milliseconds(50));
  }
  std::set<std::string> seen;
  std::string next = "/fhir/AuditEvent?_count=2";
  int pages = 0;
  while (!next.empty() && pages < 1000) {
    HttpResponse page = http_->Get(next, Bearer(auditor_));
    ASSERT_EQ(page.status, 200) << page.Describe();
    rapidjson::Document d = page.Json();
    if (d.HasMember("entry")) {
      for (const auto& e : d["entry"].GetArray()) EXPECT_TRUE(seen.insert(StringAt(e, {"resource", "id"})).second);
    }
    next.clear();
    for (const auto& l : d["link"].GetArray()) {
      if (StringAt(l, {"relation"}) == "next") next = PathOf(StringAt(l, {"url"}));
    }
    ++pages;
  }
  EXPECT_GT(pages, 1);
}

TEST_F(FhirAuditTest, NeedsAnAuditEventScope) {
  // Wildcard clinical scopes do not reach the audit trail.
  for (const std::string& token : {system_, a_, SignToken({.scope = "user/Goal.rs", .sub = "u"})}) {
    HttpResponse r = http_->Get("/fhir/AuditEvent?patient=pa", Bearer(token));
    EXPECT_EQ(r.status, 403) << r.Describe();
    EXPECT_EQ(StringAt(r.Json(), {"resourceType"}), "OperationOutcome");
    EXPECT_EQ(http_->Get("/fhir/AuditEvent/a1", Bearer(token)).status, 403);
  }
  EXPECT_EQ(http_->Get("/fhir/AuditEvent?patient=pa").status, 401);
  // patient/AuditEvent.rs: only its own patient's events.
  EXPECT_EQ(http_->Get("/fhir/AuditEvent?patient=pa", Bearer(a_auditor_)).status, 200);
  EXPECT_EQ(http_->Get("/fhir/AuditEvent?patient=pb", Bearer(a_auditor_)).status, 403);
  EXPECT_EQ(http_->Get("/fhir/AuditEvent", Bearer(a_auditor_)).status, 403);
}

TEST_F(FhirAuditTest, CannotBeChangedOrDeleted) {
  CreateGoal("pa");
  rapidjson::Document any = FindEvent("patient=pa", [](const auto&) { return true; });
  const std::string id = StringAt(any, {"id"});
  ASSERT_FALSE(id.empty());
  const std::string before = http_->Get("/fhir/AuditEvent/" + id, Bearer(auditor_)).body;
  const std::string forged = R"({"resourceType":"AuditEvent","id":")" + id + R"("})";
  for (const std::string& token : {system_, auditor_, SignToken({.scope = "system/AuditEvent.cruds", .sub = "w"})}) {
    HttpResponse post = http_->Post("/fhir/AuditEvent", forged, Bearer(token));
    EXPECT_EQ(post.status, 405) << post.Describe();
    EXPECT_EQ(StringAt(post.Json(), {"resourceType"}), "OperationOutcome");
    EXPECT_EQ(http_->Put("/fhir/AuditEvent/" + id, forged, Bearer(token)).status, 405);
    EXPECT_EQ(http_->Delete("/fhir/AuditEvent/" + id, Bearer(token)).status, 405);
  }
  HttpResponse after = http_->Get("/fhir/AuditEvent/" + id, Bearer(auditor_));
  ASSERT_EQ(after.status, 200);
  EXPECT_EQ(after.body, before);
}

TEST_F(FhirAuditTest, BadSearchParameters) {
  EXPECT_EQ(http_->Get("/fhir/AuditEvent?action=X", Bearer(auditor_)).status, 400);
  EXPECT_EQ(http_->Get("/fhir/AuditEvent?date=yesterday", Bearer(auditor_)).status, 400);
  EXPECT_EQ(http_->Get("/fhir/AuditEvent?patient=a/b", Bearer(auditor_)).status, 400);
  EXPECT_EQ(http_->Get("/fhir/AuditEvent?_page_token=forged", Bearer(auditor_)).status, 400);
}

}  // namespace
}  // namespace wmty::testing
