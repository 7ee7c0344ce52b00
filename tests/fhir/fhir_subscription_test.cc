// The Subscription resource (issue 19, Subscriptions Backport IG 1.1.0)
// against the real wmtyd through a real HTTP client: two servers, one with
// an HS256 key and --subscription_allow_private_endpoints (CRUD, search,
// history, validation, authorization, audit, header values never shown or
// logged), one with authentication disabled and the default SSRF policy.
// Plus the agreement of the domain's Observation codes (topic code filter)
// with what the FHIR mapping renders.
#include <fstream>
#include <sstream>

#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <rapidjson/document.h>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_replace.h"
#include "absl/time/clock.h"
#include "domain/topics.h"
#include "fhir/http_client.h"
#include "fhir/mapping.h"
#include "support/test_support.h"
#include "support/test_tokens.h"

namespace wmty::testing {
namespace {

using ::testing::Contains;
using ::testing::HasSubstr;
using ::testing::Not;

constexpr char kReceiverSecret[] = "Bearer receiver-secret-4711";
const std::string kWhatMatters(domain::kTopicWhatMattersChanged);
const std::string kGoalChanged(domain::kTopicGoalChanged);

// A backport Subscription; `filters` are backport-filter-criteria strings.
std::string SubscriptionJson(const std::string& topic, const std::vector<std::string>& filters = {},
                             const std::string& endpoint = "http://127.0.0.1:9/hook",
                             const std::string& channel_type = "rest-hook",
                             const std::string& payload = "application/fhir+json",
                             const std::string& content = "id-only", const std::string& extra = "") {
  std::string criteria_ext;
  for (const std::string& f : filters) {
    absl::StrAppend(&criteria_ext, criteria_ext.empty() ? "" : ",",
                    R"({"url":"http://hl7.org/fhir/uv/subscriptions-backport/StructureDefinition/)"
                    R"(backport-filter-criteria","valueString":")",
                    f, R"("})");
  }
  return absl::StrCat(
      R"({"resourceType":"Subscription",)", extra, R"("status":"requested","reason":"tell the care team",)",
      R"("criteria":")", topic, R"(",)",
      criteria_ext.empty() ? "" : absl::StrCat(R"("_criteria":{"extension":[)", criteria_ext, "]},"),
      R"("channel":{"extension":[{"url":"http://hl7.org/fhir/uv/subscriptions-backport/StructureDefinition/)"
      R"(backport-heartbeat-period","valueUnsignedInt":60},{"url":"http://hl7.org/fhir/uv/subscriptions-backport/)"
      R"(StructureDefinition/backport-timeout","valueUnsignedInt":10}],"type":")",
      channel_type, R"(","endpoint":")", endpoint, R"(","payload":")", payload,
      R"(","_payload":{"extension":[{"url":"http://hl7.org/fhir/uv/subscriptions-backport/StructureDefinition/)"
      R"(backport-payload-content","valueCode":")",
      content, R"("}]},"header":["Authorization: )", kReceiverSecret, R"("]}})");
}

std::string Sign(TestClaims c) {
  c.fhir_user = "Practitioner/rn-17";
  return SignToken(c, kTestHs256Secret);
}

class FhirSubscriptionTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    dir_ = new TempDir();
    std::vector<std::string> flags = Hs256AuthFlagsIn(dir_->path());
    flags.push_back("--subscription_allow_private_endpoints");
    auto server = ServerProcess::Start(dir_->path() + "/db", flags);
    ASSERT_TRUE(server.ok()) << server.status();
    server_ = server->release();
    auto open = ServerProcess::Start(dir_->path() + "/db-open");
    ASSERT_TRUE(open.ok()) << open.status();
    open_server_ = open->release();
  }
  static void TearDownTestSuite() {
    delete server_;
    delete open_server_;
    delete dir_;
  }
  void SetUp() override {
    ASSERT_NE(server_, nullptr);
    http_ = std::make_unique<HttpClient>(server_->http_port());
  }

  // The ids of the subscriptions the system token sees.
  std::vector<std::string> AllIds() {
    HttpResponse r = http_->Get("/fhir/Subscription?_count=200", Bearer(system_));
    EXPECT_EQ(r.status, 200) << r.Describe();
    return EntryIds(r.Json());
  }

  static inline TempDir* dir_ = nullptr;
  static inline ServerProcess* server_ = nullptr;
  static inline ServerProcess* open_server_ = nullptr;
  const std::string system_ = Sign({"system/Subscription.cruds system/*.rs system/AuditEvent.rs", ""});
  const std::string nurse_ = Sign({"user/*.rs user/Subscription.cruds", "", "Practitioner/nurse"});
  const std::string other_nurse_ = Sign({"user/*.rs user/Subscription.cruds", "", "Practitioner/other"});
  const std::string patient_a_ = Sign({"patient/*.rs patient/Subscription.cruds", "pa", "Patient/pa"});
  std::unique_ptr<HttpClient> http_;
};

TEST_F(FhirSubscriptionTest, CapabilityStatementListsTheTopics) {
  HttpResponse r = http_->Get("/fhir/metadata");
  ASSERT_EQ(r.status, 200) << r.Describe();
  rapidjson::Document d = r.Json();
  const rapidjson::Value* resources = JsonAt(d, {"rest", "0", "resource"});
  ASSERT_NE(resources, nullptr);
  std::vector<std::string> topics;
  for (const auto& res : resources->GetArray()) {
    if (StringAt(res, {"type"}) != "Subscription") continue;
    EXPECT_EQ(StringAt(res, {"supportedProfile", "0"}),
              "http://hl7.org/fhir/uv/subscriptions-backport/StructureDefinition/backport-subscription");
    for (const auto& e : res["extension"].GetArray()) {
      EXPECT_EQ(StringAt(e, {"url"}),
                "http://hl7.org/fhir/uv/subscriptions-backport/StructureDefinition/"
                "capabilitystatement-subscriptiontopic-canonical");
      topics.push_back(StringAt(e, {"valueCanonical"}));
    }
  }
  EXPECT_THAT(topics, ::testing::ElementsAre(kWhatMatters, kGoalChanged, std::string(domain::kTopicGoalScoreRecorded)));
}

TEST_F(FhirSubscriptionTest, CreateReadUpdateDeleteAndHistory) {
  HttpResponse created = http_->Post(
      "/fhir/Subscription", SubscriptionJson(kWhatMatters, {"Observation?patient=Patient/pa"}), Bearer(nurse_));
  ASSERT_EQ(created.status, 201) << created.Describe();
  rapidjson::Document body = created.Json();
  const std::string id = StringAt(body, {"id"});
  ASSERT_FALSE(id.empty());
  EXPECT_THAT(created.Header("location"), HasSubstr("/Subscription/" + id + "/_history/1"));
  EXPECT_EQ(StringAt(body, {"status"}), "requested");
  EXPECT_EQ(StringAt(body, {"criteria"}), kWhatMatters);
  EXPECT_EQ(StringAt(body, {"_criteria", "extension", "0", "valueString"}), "Observation?patient=Patient/pa");
  EXPECT_EQ(StringAt(body, {"channel", "_payload", "extension", "0", "valueCode"}), "id-only");
  EXPECT_EQ(StringAt(body, {"channel", "header", "0"}), "Authorization: (hidden)");
  EXPECT_EQ(StringAt(body, {"meta", "profile", "0"}),
            "http://hl7.org/fhir/uv/subscriptions-backport/StructureDefinition/backport-subscription");
  EXPECT_THAT(created.body, Not(HasSubstr("receiver-secret")));

  HttpResponse read = http_->Get("/fhir/Subscription/" + id, Bearer(nurse_));
  ASSERT_EQ(read.status, 200) << read.Describe();
  EXPECT_EQ(read.Header("etag"), "W/\"1\"");
  EXPECT_THAT(read.body, Not(HasSubstr("receiver-secret")));

  // PUT back what was read (masked header), with a new reason and status active: still requested.
  std::string again =
      SubscriptionJson(kWhatMatters, {"Observation?patient=Patient/pa"}, "http://127.0.0.1:9/hook", "rest-hook",
                       "application/fhir+json", "full-resource", absl::StrCat(R"("id":")", id, R"(",)"));
  again = absl::StrReplaceAll(again, {{kReceiverSecret, "(hidden)"}, {"\"requested\"", "\"active\""}});
  HttpResponse updated = http_->Put("/fhir/Subscription/" + id, again, Bearer(nurse_, {{"If-Match", "W/\"1\""}}));
  ASSERT_EQ(updated.status, 200) << updated.Describe();
  EXPECT_EQ(StringAt(updated.Json(), {"status"}), "requested");
  EXPECT_EQ(StringAt(updated.Json(), {"channel", "_payload", "extension", "0", "valueCode"}), "full-resource");
  EXPECT_EQ(http_->Put("/fhir/Subscription/" + id, again, Bearer(nurse_, {{"If-Match", "W/\"1\""}})).status, 412);

  HttpResponse v1 = http_->Get("/fhir/Subscription/" + id + "/_history/1", Bearer(nurse_));
  EXPECT_EQ(v1.status, 200) << v1.Describe();
  EXPECT_EQ(StringAt(v1.Json(), {"meta", "versionId"}), "1");

  HttpResponse found = http_->Get("/fhir/Subscription?status=requested&criteria=" + kWhatMatters, Bearer(nurse_));
  ASSERT_EQ(found.status, 200) << found.Describe();
  EXPECT_THAT(EntryIds(found.Json()), Contains(id));

  EXPECT_EQ(http_->Delete("/fhir/Subscription/" + id, Bearer(nurse_)).status, 204);
  EXPECT_EQ(http_->Get("/fhir/Subscription/" + id, Bearer(nurse_)).status, 410);
  EXPECT_EQ(http_->Delete("/fhir/Subscription/" + id, Bearer(nurse_)).status, 204);
  HttpResponse history = http_->Get("/fhir/Subscription/" + id + "/_history", Bearer(nurse_));
  ASSERT_EQ(history.status, 200) << history.Describe();
  rapidjson::Document h = history.Json();
  // Create, update and delete, plus any status the server set itself (its
  // handshake to port 9, where nobody listens, fails: error), each a version.
  ASSERT_GE(h["entry"].Size(), 3u);
  EXPECT_EQ(StringAt(h, {"entry", "0", "request", "method"}), "DELETE");
  EXPECT_EQ(StringAt(h, {"entry", std::to_string(h["entry"].Size() - 2), "resource", "status"}), "requested");
  // Its changes are in the change log, but a Subscription has no Provenance:
  // no Provenance/s<n> (n = a change sequence) of this server is one.
  for (int n = 1; n <= 60; ++n) {
    HttpResponse p = http_->Get(absl::StrCat("/fhir/Provenance/s", n), Bearer(system_));
    EXPECT_THAT(p.status, ::testing::AnyOf(200, 404)) << p.Describe();
    EXPECT_THAT(StringAt(p.Json(), {"target", "0", "reference"}), Not(HasSubstr("Subscription")));
  }
  HttpResponse after = http_->Get("/fhir/Subscription?_id=" + id, Bearer(nurse_));
  EXPECT_TRUE(EntryIds(after.Json()).empty()) << after.Describe();
}

TEST_F(FhirSubscriptionTest, BadSubscriptionsAre400AndStoreNothing) {
  const std::vector<std::string> before = AllIds();
  struct Case {
    std::string body;
    std::string expression;
  };
  const std::vector<Case> cases = {
      {SubscriptionJson("https://wmty.dev/fhir/SubscriptionTopic/unknown"), "Subscription.criteria"},
      {SubscriptionJson(kGoalChanged, {"Goal?category=dietary"}), "Subscription.criteria.extension[0]"},
      {SubscriptionJson(kGoalChanged, {"Observation?patient=pa"}), "Subscription.criteria.extension[0]"},
      {SubscriptionJson(kGoalChanged, {"patient=pa"}), "Subscription.criteria.extension[0]"},
      {SubscriptionJson(kGoalChanged, {}, "http://127.0.0.1:9/hook", "websocket"), "Subscription.channel.type"},
      {SubscriptionJson(kGoalChanged, {}, "http://127.0.0.1:9/hook", "rest-hook", "application/fhir+xml"),
       "Subscription.channel.payload"},
      {SubscriptionJson(kGoalChanged, {}, "http://127.0.0.1:9/hook", "rest-hook", "application/fhir+json", "all"),
       "Subscription.channel.payload.extension"},
      {SubscriptionJson(kGoalChanged, {}, "not-a-url"), "Subscription.channel.endpoint"},
      {SubscriptionJson(kGoalChanged, {}, "ftp://127.0.0.1/x"), "Subscription.channel.endpoint"},
      {SubscriptionJson(kGoalChanged, {}, "/relative/hook"), "Subscription.channel.endpoint"},
      {SubscriptionJson(kGoalChanged, {}, "http://127.0.0.1:9/hook", "rest-hook", "application/fhir+json", "id-only",
                        R"("status2":"x",)"),
       "Subscription.status2"},
      {SubscriptionJson(kGoalChanged, {}, "http://127.0.0.1:9/hook", "rest-hook", "application/fhir+json", "id-only",
                        R"("modifierExtension":[],)"),
       "Subscription.modifierExtension"},
      {absl::StrReplaceAll(SubscriptionJson(kGoalChanged), {{R"("status":"requested")", R"("status":"error")"}}),
       "Subscription.status"},
      {absl::StrReplaceAll(SubscriptionJson(kGoalChanged), {{R"("reason":"tell the care team",)", ""}}),
       "Subscription.reason"},
      {absl::StrReplaceAll(SubscriptionJson(kGoalChanged), {{kReceiverSecret, "a\\r\\nHost: evil"}}),
       "Subscription.channel.header[0]"},
  };
  for (const Case& c : cases) {
    HttpResponse r = http_->Post("/fhir/Subscription", c.body, Bearer(system_));
    EXPECT_EQ(r.status, 400) << c.expression << " " << r.Describe();
    rapidjson::Document d = r.Json();
    EXPECT_EQ(StringAt(d, {"resourceType"}), "OperationOutcome") << r.Describe();
    EXPECT_EQ(StringAt(d, {"issue", "0", "expression", "0"}), c.expression) << r.Describe();
  }
  EXPECT_EQ(AllIds(), before);
}

TEST_F(FhirSubscriptionTest, PrivateAndPlainHttpEndpointsNeedTheFlag) {
  HttpClient open(open_server_->http_port());
  for (const std::string endpoint : {"http://203.0.113.9/hook", "https://127.0.0.1/hook", "https://localhost:8443/x",
                                     "https://169.254.169.254/latest/meta-data", "https://[::1]/hook",
                                     "https://10.1.2.3/hook", "https://[fd12::1]/hook"}) {
    HttpResponse r = open.Post("/fhir/Subscription", SubscriptionJson(kGoalChanged, {}, endpoint));
    EXPECT_EQ(r.status, 400) << endpoint << " " << r.Describe();
    EXPECT_EQ(StringAt(r.Json(), {"issue", "0", "expression", "0"}), "Subscription.channel.endpoint");
  }
  HttpResponse none = open.Get("/fhir/Subscription");
  EXPECT_TRUE(EntryIds(none.Json()).empty()) << none.Describe();
  // The flag's server takes the same loopback http endpoint.
  EXPECT_EQ(http_->Post("/fhir/Subscription", SubscriptionJson(kGoalChanged), Bearer(system_)).status, 201);
}

TEST_F(FhirSubscriptionTest, Authorization) {
  const std::string no_sub_scope = Sign({"user/*.rs", "", "Practitioner/nurse"});
  EXPECT_EQ(http_->Post("/fhir/Subscription", SubscriptionJson(kGoalChanged), Bearer(no_sub_scope)).status, 403);
  // Subscription scopes, but no read on what the topic delivers.
  const std::string goals_only = Sign({"user/Goal.rs user/Subscription.cruds", "", "Practitioner/nurse"});
  EXPECT_EQ(http_->Post("/fhir/Subscription", SubscriptionJson(kWhatMatters), Bearer(goals_only)).status, 403);
  EXPECT_EQ(http_->Post("/fhir/Subscription", SubscriptionJson(kGoalChanged), Bearer(goals_only)).status, 201);
  // A patient token: its own patient only.
  EXPECT_EQ(
      http_->Post("/fhir/Subscription", SubscriptionJson(kWhatMatters, {"Goal?patient=Patient/pb"}), Bearer(patient_a_))
          .status,
      403);
  HttpResponse own = http_->Post("/fhir/Subscription", SubscriptionJson(kWhatMatters), Bearer(patient_a_));
  ASSERT_EQ(own.status, 201) << own.Describe();
  const std::string id = StringAt(own.Json(), {"id"});
  // Only the owner (and system/ Subscription scopes) see it.
  EXPECT_EQ(http_->Get("/fhir/Subscription/" + id, Bearer(patient_a_)).status, 200);
  EXPECT_EQ(http_->Get("/fhir/Subscription/" + id, Bearer(system_)).status, 200);
  EXPECT_EQ(http_->Get("/fhir/Subscription/" + id, Bearer(other_nurse_)).status, 404);
  EXPECT_EQ(http_->Get("/fhir/Subscription/" + id + "/_history", Bearer(other_nurse_)).status, 404);
  EXPECT_EQ(http_->Delete("/fhir/Subscription/" + id, Bearer(other_nurse_)).status, 404);  // as if unknown
  EXPECT_EQ(http_->Delete("/fhir/Subscription/no-such-id", Bearer(other_nurse_)).status, 404);
  EXPECT_THAT(EntryIds(http_->Get("/fhir/Subscription", Bearer(other_nurse_)).Json()), Not(Contains(id)));
  EXPECT_EQ(http_->Get("/fhir/Subscription/" + id, Bearer(patient_a_)).status, 200);  // not deleted
  EXPECT_EQ(http_->Get("/fhir/Subscription/" + id).status, 401);
}

TEST_F(FhirSubscriptionTest, AuditedAndHeaderValuesNeverLogged) {
  const std::string auditor = Sign({"user/*.rs user/Subscription.cruds", "", "Practitioner/audited-subscriber"});
  HttpResponse created = http_->Post("/fhir/Subscription", SubscriptionJson(kGoalChanged), Bearer(auditor));
  ASSERT_EQ(created.status, 201) << created.Describe();
  const std::string id = StringAt(created.Json(), {"id"});
  ASSERT_EQ(http_->Get("/fhir/Subscription/" + id, Bearer(auditor)).status, 200);
  // The audit records ride along with the next group commit: wait for both.
  int about_it = 0;
  for (int attempt = 0; attempt < 200 && about_it < 2; ++attempt) {
    if (attempt > 0) absl::SleepFor(absl::Milliseconds(25));
    HttpResponse audit =
        http_->Get("/fhir/AuditEvent?agent=Practitioner/audited-subscriber&_count=100", Bearer(system_));
    ASSERT_EQ(audit.status, 200) << audit.Describe();
    const rapidjson::Document d = audit.Json();
    const rapidjson::Value* entries = JsonAt(d, {"entry"});
    about_it = 0;
    for (rapidjson::SizeType i = 0; entries != nullptr && i < entries->Size(); ++i) {
      const rapidjson::Value* entities = JsonAt((*entries)[i], {"resource", "entity"});
      for (rapidjson::SizeType j = 0; entities != nullptr && j < entities->Size(); ++j) {
        if (StringAt((*entities)[j], {"what", "reference"}) == "Subscription/" + id) ++about_it;
      }
    }
  }
  EXPECT_GE(about_it, 2) << "create and read of Subscription/" << id;
  std::ifstream log(server_->log_path());
  std::stringstream text;
  text << log.rdbuf();
  EXPECT_THAT(text.str(), Not(HasSubstr("receiver-secret")));
}

// The domain's codes of a stored Observation (the code filter) are codings
// the FHIR mapping renders for it.
TEST(SubscriptionCodesTest, DomainCodesAreRenderedCodings) {
  std::vector<storage::Record> records;
  auto add = [&](storage::Kind kind, const google::protobuf::Message& m) {
    storage::Record r;
    r.set_kind(kind);
    r.set_patient_id("p1");
    r.set_id(absl::StrCat("o", records.size()));
    r.set_version(1);
    r.set_resource(m.SerializeAsString());
    records.push_back(r);
  };
  add(storage::WHAT_MATTERS, ValidWhatMatters());
  for (v1::PreferenceKind k : {v1::TREATMENT_INTERVENTION, v1::LANGUAGE, v1::CARE_EXPERIENCE_PREFERENCE}) {
    v1::Preference p = ValidPreference();
    p.set_kind(k);
    add(storage::PREFERENCE, p);
  }
  for (v1::GoalScoreType t :
       {v1::INITIAL, v1::PATIENT_FOLLOW_UP, v1::PRACTITIONER_FOLLOW_UP, v1::CAREGIVER_FOLLOW_UP}) {
    v1::GoalScore g;
    g.set_goal("patients/p1/goals/g1");
    g.set_score_type(t);
    add(storage::GOAL_SCORE, g);
  }
  for (const storage::Record& r : records) {
    rapidjson::Document d;
    d.SetObject();
    ASSERT_TRUE(fhir::ToFhir(r, &d, d.GetAllocator()).ok()) << r.kind();
    std::vector<std::string> rendered;
    for (const auto& c : d["code"]["coding"].GetArray()) {
      rendered.push_back(absl::StrCat(StringAt(c, {"system"}), "|", StringAt(c, {"code"})));
    }
    const std::vector<std::string> codes = domain::ObservationCodesOf(r);
    EXPECT_FALSE(codes.empty()) << r.kind();
    for (const std::string& code : codes) EXPECT_THAT(rendered, Contains(code)) << r.kind();
  }
}

}  // namespace
}  // namespace wmty::testing
