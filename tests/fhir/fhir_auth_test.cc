// Authorization of the FHIR face end to end (issue 4): the real wmtyd with an
// HS256 secret, real tokens signed with libjwt, a real HTTP client. The token
// matrix over every endpoint: no token, expired, wrong issuer / audience, bad
// signature, alg=none -> 401; patient A's token against patient B's data on
// every read / search / write path -> 404 (reads) or 403; writes without a
// write scope and reads without a read scope -> 403. Every refusal is an
// OperationOutcome, leaks none of B's data, and writes nothing (checked with a
// system/*.cruds token).
#include <fstream>
#include <sstream>

#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <rapidjson/document.h>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_replace.h"
#include "absl/time/clock.h"
#include "fhir/http_client.h"
#include "support/test_support.h"
#include "support/test_tokens.h"

namespace wmty::testing {
namespace {

using ::testing::HasSubstr;
using ::testing::Not;

// B's texts: never in a response to A, nor in the log.
constexpr char kBGoalText[] = "B-secret-goal-text";
constexpr char kBWhatMatters[] = "B-secret-what-matters";

// This face's tokens also carry fhirUser (the audit agent's who).
std::string Sign(TestClaims c, const std::string& key = kTestHs256Secret) {
  c.fhir_user = "Practitioner/rn-17";
  return SignToken(c, key);
}

std::string GoalJson(const std::string& patient, const std::string& description, const std::string& id = "") {
  return absl::StrCat(R"({"resourceType":"Goal",)", id.empty() ? "" : absl::StrCat(R"("id":")", id, R"(",)"),
                      R"("lifecycleStatus":"active","description":{"text":")", description,
                      R"("},"subject":{"reference":"Patient/)", patient, R"("},"expressedBy":{"reference":"Patient/)",
                      patient,
                      R"("},"target":[{"dueDate":"2027-06-15"}],"category":[{"coding":[{"system":"http://loinc.org",)"
                      R"("code":"87528-6"}]}]})");
}

std::string WhatMattersJson(const std::string& patient, const std::string& statement) {
  return absl::StrCat(
      R"({"resourceType":"Observation","status":"final","category":[{"coding":[{"system":)"
      R"("http://hl7.org/fhir/us/core/CodeSystem/us-core-category","code":"care-experience-preference"}]}],)"
      R"("code":{"coding":[{"system":"http://loinc.org","code":"95541-9"},)"
      R"({"system":"https://fhir.wmty.health/CodeSystem/wmty","code":"what-matters"}]},)"
      R"("subject":{"reference":"Patient/)",
      patient, R"("},"effectiveDateTime":"2026-11-23T15:00:00Z","performer":[{"reference":"Patient/)", patient,
      R"("}],"valueString":")", statement, R"("})");
}

std::string ListJson(const std::string& patient, const std::string& goal_id) {
  return absl::StrCat(R"({"resourceType":"List","id":")", patient,
                      R"(","status":"current","mode":"working","title":"What matters most to me",)"
                      R"("code":{"coding":[{"system":"http://loinc.org","code":"81340-2"}]},)"
                      R"("subject":{"reference":"Patient/)",
                      patient, R"("},"source":{"reference":"Patient/)", patient,
                      R"("},"entry":[{"item":{"reference":"Goal/)", goal_id, R"("}}]})");
}

struct Endpoint {
  std::string name;
  std::string method;
  std::string target;
  std::string body;
  HeaderList headers;
};

// One patient's data, made with the system token.
struct Data {
  std::string goal, goal2, obs, provenance, next_page;
};

class FhirAuthTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    dir_ = new TempDir();
    auto server = ServerProcess::Start(dir_->path() + "/db", Hs256AuthFlagsIn(dir_->path()));
    ASSERT_TRUE(server.ok()) << server.status();
    server_ = server->release();

    system_ = Sign({"system/*.cruds", ""});
    a_all_ = Sign({"patient/*.cruds", "pa"});
    a_read_ = Sign({"patient/*.rs launch/patient openid", "pa"});
    a_v1_read_ = Sign({"patient/*.read", "pa"});
    a_write_ = Sign({"patient/*.cud", "pa"});
    user_goal_ = Sign({"user/Goal.rs", ""});

    HttpClient http(server_->http_port());
    auto create = [&](const std::string& target, const std::string& body) {
      HttpResponse r = http.Post(target, body, Bearer(system_));
      EXPECT_EQ(r.status, 201) << r.Describe();
      return StringAt(r.Json(), {"id"});
    };
    for (const std::string p : {"pa", "pb"}) {
      Data& d = p == "pa" ? a_ : b_;
      const std::string text = p == "pa" ? "A goal" : kBGoalText;
      d.goal = create("/fhir/Goal", GoalJson(p, text));
      d.goal2 = create("/fhir/Goal", GoalJson(p, text + std::string(" two")));
      d.obs = create("/fhir/Observation", WhatMattersJson(p, p == "pa" ? "A matters" : kBWhatMatters));
      HttpResponse list = http.Put("/fhir/List/" + p, ListJson(p, d.goal), Bearer(system_));
      EXPECT_EQ(list.status, 201) << list.Describe();
      // A second version of the first goal.
      HttpResponse v2 = http.Put("/fhir/Goal/" + d.goal, GoalJson(p, text, d.goal), Bearer(system_));
      EXPECT_EQ(v2.status, 200) << v2.Describe();
      HttpResponse prov = http.Get("/fhir/Provenance?target=Goal/" + d.goal, Bearer(system_));
      EXPECT_EQ(prov.status, 200) << prov.Describe();
      d.provenance = EntryIds(prov.Json()).empty() ? "" : EntryIds(prov.Json()).front();
      // A next-page link of a search of this patient's goals.
      HttpResponse page = http.Get("/fhir/Goal?patient=" + p + "&_count=1", Bearer(system_));
      d.next_page = PathOf(LinkOf(page.Json(), "next"));
      EXPECT_FALSE(d.next_page.empty()) << page.Describe();
    }
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

  HttpResponse Send(const Endpoint& e, const HeaderList& auth) {
    HeaderList headers = e.headers;
    headers.insert(headers.end(), auth.begin(), auth.end());
    auto r = http_->Send(e.method, e.target, e.body, headers);
    if (!r.ok()) return HttpResponse{-1, {}, std::string(r.status().message()), false};
    return *r;
  }

  // What B has, as seen with the system token: compared before and after.
  std::string BState() {
    std::string out;
    for (const char* t : {"/fhir/Goal?patient=pb", "/fhir/Observation?patient=pb", "/fhir/List?patient=pb"}) {
      HttpResponse r = http_->Get(t, Bearer(system_));
      EXPECT_EQ(r.status, 200) << r.Describe();
      rapidjson::Document d = r.Json();
      if (d.IsObject() && d.HasMember("entry")) {
        for (const auto& e : d["entry"].GetArray()) {
          absl::StrAppend(&out, StringAt(e, {"resource", "id"}), "@", StringAt(e, {"resource", "meta", "versionId"}),
                          ";");
        }
      }
    }
    return out;
  }

  static inline TempDir* dir_ = nullptr;
  static inline ServerProcess* server_ = nullptr;
  static inline Data a_, b_;
  static inline std::string system_, a_all_, a_read_, a_v1_read_, a_write_, user_goal_;
  std::unique_ptr<HttpClient> http_;
};

// Reads (404 to another patient's token), searches (403) and writes (403).
struct Matrix {
  std::vector<Endpoint> reads, searches, writes;
  std::vector<Endpoint> All() const {
    std::vector<Endpoint> all = reads;
    all.insert(all.end(), searches.begin(), searches.end());
    all.insert(all.end(), writes.begin(), writes.end());
    return all;
  }
};

Matrix MatrixFor(const std::string& p, const Data& d, const std::string& writer) {
  Matrix m;
  m.reads = {
      {"read Goal", "GET", "/fhir/Goal/" + d.goal, "", {}},
      {"read Goal If-None-Match", "GET", "/fhir/Goal/" + d.goal, "", {{"If-None-Match", "W/\"2\""}}},
      {"vread Goal", "GET", "/fhir/Goal/" + d.goal + "/_history/1", "", {}},
      {"history instance", "GET", "/fhir/Goal/" + d.goal + "/_history", "", {}},
      {"history instance page", "GET", "/fhir/Goal/" + d.goal + "/_history?_count=1", "", {}},
      {"read Observation", "GET", "/fhir/Observation/" + d.obs, "", {}},
      {"vread Observation", "GET", "/fhir/Observation/" + d.obs + "/_history/1", "", {}},
      {"read List", "GET", "/fhir/List/" + p, "", {}},
      {"history List", "GET", "/fhir/List/" + p + "/_history", "", {}},
      {"read Provenance", "GET", "/fhir/Provenance/" + d.provenance, "", {}},
  };
  m.searches = {
      {"search Goal patient", "GET", "/fhir/Goal?patient=" + p, "", {}},
      {"search Goal subject", "GET", "/fhir/Goal?subject=Patient/" + p, "", {}},
      {"search Goal _id", "GET", "/fhir/Goal?_id=" + d.goal, "", {}},
      {"search Goal no patient", "GET", "/fhir/Goal", "", {}},
      {"search Goal count", "GET", "/fhir/Goal?patient=" + p + "&_summary=count", "", {}},
      {"search Goal sorted", "GET", "/fhir/Goal?patient=" + p + "&_sort=-_lastUpdated", "", {}},
      {"search Goal _revinclude", "GET", "/fhir/Goal?patient=" + p + "&_revinclude=Provenance:target", "", {}},
      {"search Goal next page", "GET", d.next_page, "", {}},
      {"POST _search",
       "POST",
       "/fhir/Goal/_search",
       "patient=" + p,
       {{"Content-Type", "application/x-www-form-urlencoded"}}},
      {"search Observation", "GET", "/fhir/Observation?subject=Patient/" + p, "", {}},
      {"search List", "GET", "/fhir/List?patient=" + p, "", {}},
      {"history type", "GET", "/fhir/Goal/_history", "", {}},
      {"$everything", "GET", "/fhir/Patient/" + p + "/$everything", "", {}},
  };
  const HeaderList json = {{"Content-Type", "application/fhir+json"}};
  m.writes = {
      {"create Goal", "POST", "/fhir/Goal", GoalJson(p, "new"), json},
      {"create Observation", "POST", "/fhir/Observation", WhatMattersJson(p, "new"), json},
      {"update Goal", "PUT", "/fhir/Goal/" + d.goal, GoalJson(p, "changed", d.goal), json},
      {"update Goal as another patient", "PUT", "/fhir/Goal/" + d.goal2, GoalJson(writer, "moved", d.goal2), json},
      {"update Goal If-Match",
       "PUT",
       "/fhir/Goal/" + d.goal,
       GoalJson(p, "changed", d.goal),
       {{"Content-Type", "application/fhir+json"}, {"If-Match", "W/\"2\""}}},
      {"update List", "PUT", "/fhir/List/" + p, ListJson(p, d.goal2), json},
      {"delete Goal", "DELETE", "/fhir/Goal/" + d.goal, "", {}},
      {"delete Observation", "DELETE", "/fhir/Observation/" + d.obs, "", {}},
      {"conditional create",
       "POST",
       "/fhir/Goal",
       GoalJson(p, "cond"),
       {{"Content-Type", "application/fhir+json"}, {"If-None-Exist", "patient=" + p + "&_id=" + d.goal}}},
  };
  return m;
}

void ExpectOutcome(const HttpResponse& r, int status, const std::string& code, const std::string& what) {
  EXPECT_EQ(r.status, status) << what << "\n" << r.Describe();
  EXPECT_THAT(r.Header("content-type"), HasSubstr("application/fhir+json")) << what;
  rapidjson::Document d = r.Json();
  ASSERT_TRUE(d.IsObject()) << what << "\n" << r.Describe();
  EXPECT_EQ(StringAt(d, {"resourceType"}), "OperationOutcome") << what;
  EXPECT_EQ(StringAt(d, {"issue", "0", "code"}), code) << what << "\n" << r.Describe();
}

void ExpectNoBData(const HttpResponse& r, const Data& b, const std::string& what, bool may_echo_ids) {
  EXPECT_THAT(r.body, Not(HasSubstr(kBGoalText))) << what;
  EXPECT_THAT(r.body, Not(HasSubstr(kBWhatMatters))) << what;
  if (!may_echo_ids) {
    for (const std::string& id : {b.goal, b.goal2, b.obs}) EXPECT_THAT(r.body, Not(HasSubstr(id))) << what;
  }
}

TEST_F(FhirAuthTest, MetadataAndCodeSystemArePublic) {
  EXPECT_EQ(http_->Get("/fhir/metadata").status, 200);
  EXPECT_EQ(http_->Get("/fhir/CodeSystem/wmty").status, 200);
  EXPECT_EQ(http_->Get("/fhir/CodeSystem?url=https://fhir.wmty.health/CodeSystem/wmty").status, 200);
}

TEST_F(FhirAuthTest, BadTokensAre401OnEveryEndpoint) {
  const std::string tampered = TamperPayload(Sign({"patient/*.cruds", "pa"}));
  const std::string good = Sign({"system/*.cruds", ""});
  const std::string alg_none = WithHeader(good, R"({"alg":"none","typ":"JWT"})", /*keep_signature=*/false);
  const std::vector<std::pair<std::string, HeaderList>> bad = {
      {"no token", {}},
      {"empty bearer", {{"Authorization", "Bearer "}}},
      {"basic", {{"Authorization", "Basic dXNlcjpwYXNz"}}},
      {"garbage", Bearer("not-a-token")},
      {"expired", Bearer(Sign({.scope = "system/*.cruds", .exp_offset = -3600}))},
      {"wrong issuer", Bearer(Sign({.scope = "system/*.cruds", .iss = "https://evil.test"}))},
      {"wrong audience", Bearer(Sign({.scope = "system/*.cruds", .aud = "https://other.test"}))},
      {"bad signature", Bearer(tampered)},
      {"other secret", Bearer(Sign({"system/*.cruds", ""}, std::string(40, 'x')))},
      {"alg none", Bearer(alg_none)},
  };
  const std::string before = BState();
  Matrix m = MatrixFor("pb", b_, "pb");
  std::vector<Endpoint> all = m.All();
  all.push_back({"unknown type", "GET", "/fhir/Practitioner/pb", "", {}});
  all.push_back({"system search", "GET", "/fhir", "", {}});
  all.push_back({"xml", "GET", "/fhir/Goal/" + b_.goal + "?_format=xml", "", {}});
  for (const auto& [name, headers] : bad) {
    for (const Endpoint& e : all) {
      const std::string what = absl::StrCat(name, " / ", e.name);
      HttpResponse r = Send(e, headers);
      ExpectOutcome(r, 401, "login", what);
      EXPECT_THAT(r.Header("www-authenticate"), HasSubstr("Bearer realm=\"wmty\"")) << what;
      if (name != "no token") {
        EXPECT_THAT(r.Header("www-authenticate"), HasSubstr("error=\"invalid_token\"")) << what;
      }
      ExpectNoBData(r, b_, what, /*may_echo_ids=*/false);
      for (const auto& [h, v] : headers) {
        if (v.size() > 12) {
          EXPECT_THAT(r.body, Not(HasSubstr(v.substr(7)))) << what << ": token echoed";
        }
      }
    }
  }
  EXPECT_EQ(BState(), before) << "a refused request wrote";

  // Every refused request left an AuditEvent (written asynchronously: poll).
  const size_t expected = bad.size() * all.size();
  const std::string auditor = Sign({"system/AuditEvent.rs", ""});
  size_t refused = 0;
  for (int attempt = 0; attempt < 100 && refused < expected; ++attempt) {
    refused = 0;
    std::string next = "/fhir/AuditEvent?_count=1000";
    while (!next.empty()) {
      HttpResponse page = http_->Get(next, Bearer(auditor));
      ASSERT_EQ(page.status, 200) << page.Describe();
      rapidjson::Document d = page.Json();
      if (d.HasMember("entry")) {
        for (const auto& e : d["entry"].GetArray()) {
          if (StringAt(e, {"resource", "outcome"}) == "4" &&
              absl::StartsWith(StringAt(e, {"resource", "outcomeDesc"}), "401")) {
            ++refused;
          }
        }
      }
      next.clear();
      for (const auto& l : d["link"].GetArray()) {
        if (StringAt(l, {"relation"}) == "next") {
          const std::string url = StringAt(l, {"url"});
          next = url.substr(url.find("/fhir/"));
        }
      }
    }
    if (refused < expected) absl::SleepFor(absl::Milliseconds(50));
  }
  EXPECT_EQ(refused, expected) << "refused requests without an AuditEvent";
}

TEST_F(FhirAuthTest, PatientTokenCannotReachAnotherPatient) {
  const std::string before = BState();
  Matrix m = MatrixFor("pb", b_, "pa");
  for (const std::string& token : {a_all_, a_read_, a_v1_read_}) {
    for (const Endpoint& e : m.reads) {
      HttpResponse r = Send(e, Bearer(token));
      // Exactly like an unknown id.
      ExpectOutcome(r, 404, "not-found", e.name);
      ExpectNoBData(r, b_, e.name, /*may_echo_ids=*/true);
    }
    for (const Endpoint& e : m.searches) {
      HttpResponse r = Send(e, Bearer(token));
      ExpectOutcome(r, 403, "forbidden", e.name);
      ExpectNoBData(r, b_, e.name, /*may_echo_ids=*/false);
    }
  }
  for (const Endpoint& e : m.writes) {
    HttpResponse r = Send(e, Bearer(a_all_));
    ExpectOutcome(r, 403, "forbidden", e.name);
    ExpectNoBData(r, b_, e.name, /*may_echo_ids=*/false);
  }
  // Provenance search: B's targets are left out as if unknown.
  for (const std::string& t : {"/fhir/Provenance?target=Goal/" + b_.goal, "/fhir/Provenance?target=" + b_.goal,
                               std::string("/fhir/Provenance?target=List/pb")}) {
    HttpResponse r = http_->Get(t, Bearer(a_all_));
    EXPECT_EQ(r.status, 200) << t << r.Describe();
    EXPECT_TRUE(EntryIds(r.Json()).empty()) << t << r.Describe();
    ExpectNoBData(r, b_, t, /*may_echo_ids=*/true);
  }
  // The same id for A's own goal next to it: only A's.
  HttpResponse mixed = http_->Get("/fhir/Provenance?target=Goal/" + b_.goal + ",Goal/" + a_.goal, Bearer(a_all_));
  ASSERT_EQ(mixed.status, 200) << mixed.Describe();
  EXPECT_EQ(EntryIds(mixed.Json()).size(), 2u) << mixed.Describe();
  ExpectNoBData(mixed, b_, "mixed provenance", /*may_echo_ids=*/true);
  // B's page token with A's patient: not valid for that query (no data).
  HttpResponse swapped = http_->Get(absl::StrReplaceAll(b_.next_page, {{"patient=pb", "patient=pa"}}), Bearer(a_all_));
  ExpectOutcome(swapped, 400, "invalid", "page token of B's query with patient=pa");
  ExpectNoBData(swapped, b_, "swapped page", false);
  // A conditional create whose criteria reach beyond A: 403, nothing written.
  HttpResponse cond =
      http_->Post("/fhir/Goal", GoalJson("pa", "cond"), Bearer(a_all_, {{"If-None-Exist", "_id=" + b_.goal}}));
  ExpectOutcome(cond, 403, "forbidden", "conditional create without patient");
  EXPECT_EQ(BState(), before) << "a refused request wrote";
}

TEST_F(FhirAuthTest, PatientTokenReachesItsOwnPatient) {
  const HeaderList a = Bearer(a_read_);
  EXPECT_EQ(http_->Get("/fhir/Goal/" + a_.goal, a).status, 200);
  EXPECT_EQ(http_->Get("/fhir/Goal/" + a_.goal + "/_history/1", a).status, 200);
  EXPECT_EQ(http_->Get("/fhir/Goal/" + a_.goal + "/_history", a).status, 200);
  EXPECT_EQ(http_->Get("/fhir/Observation/" + a_.obs, a).status, 200);
  EXPECT_EQ(http_->Get("/fhir/List/pa", a).status, 200);
  EXPECT_EQ(http_->Get("/fhir/Provenance/" + a_.provenance, a).status, 200);
  HttpResponse everything = http_->Get("/fhir/Patient/pa/$everything", a);
  EXPECT_EQ(everything.status, 200) << everything.Describe();
  ExpectNoBData(everything, b_, "$everything", false);
  // Paging through A's goals with A's token.
  HttpResponse first = http_->Get("/fhir/Goal?patient=pa&_count=1&_revinclude=Provenance:target", a);
  ASSERT_EQ(first.status, 200) << first.Describe();
  std::string next = PathOf(LinkOf(first.Json(), "next"));
  ASSERT_FALSE(next.empty());
  HttpResponse second = http_->Get(next, a);
  ASSERT_EQ(second.status, 200) << second.Describe();
  EXPECT_EQ(EntryIds(second.Json()).size(), 1u);
  EXPECT_EQ(EntryIds(second.Json(), "include").size(), 1u);
  for (const HttpResponse* r : {&first, &second}) ExpectNoBData(*r, b_, "A's pages", false);
  EXPECT_EQ(http_->Get(a_.next_page, a).status, 200);
  HttpResponse prov = http_->Get("/fhir/Provenance?target=Goal/" + a_.goal, a);
  EXPECT_EQ(EntryIds(prov.Json()).size(), 2u) << prov.Describe();
  // Writes with the cruds token.
  const HeaderList w = Bearer(a_all_);
  HttpResponse created = http_->Post("/fhir/Goal", GoalJson("pa", "mine"), w);
  ASSERT_EQ(created.status, 201) << created.Describe();
  const std::string id = StringAt(created.Json(), {"id"});
  // Without X-Provenance, the write is attributed to the token's fhirUser.
  HttpResponse written_by = http_->Get("/fhir/Provenance?target=Goal/" + id, w);
  EXPECT_NE(written_by.body.find("\"Practitioner/rn-17\""), std::string::npos) << written_by.Describe();
  EXPECT_EQ(written_by.body.find("unattributed"), std::string::npos) << written_by.Describe();
  EXPECT_EQ(http_->Put("/fhir/Goal/" + id, GoalJson("pa", "mine 2", id), w).status, 200);
  HttpResponse cond =
      http_->Post("/fhir/Goal", GoalJson("pa", "mine"), Bearer(a_all_, {{"If-None-Exist", "patient=pa&_id=" + id}}));
  EXPECT_EQ(cond.status, 200) << cond.Describe();
  EXPECT_EQ(http_->Delete("/fhir/Goal/" + id, w).status, 204);
}

TEST_F(FhirAuthTest, MissingPermissionIs403) {
  const std::string before = BState();
  // Read-only token: no writes, on its own patient.
  Matrix own = MatrixFor("pa", a_, "pa");
  for (const std::string& token : {a_read_, a_v1_read_}) {
    for (const Endpoint& e : own.writes) {
      HttpResponse r = Send(e, Bearer(token));
      ExpectOutcome(r, 403, "forbidden", "read-only token: " + e.name);
      EXPECT_THAT(r.Header("www-authenticate"), HasSubstr("insufficient_scope")) << e.name;
    }
  }
  // Write-only token: no reads or searches, even of its own patient.
  for (const Endpoint& e : own.reads) {
    HttpResponse r = Send(e, Bearer(a_write_));
    ExpectOutcome(r, 403, "forbidden", "write-only token: " + e.name);
  }
  for (const Endpoint& e : own.searches) {
    ExpectOutcome(Send(e, Bearer(a_write_)), 403, "forbidden", "write-only token: " + e.name);
  }
  // user/Goal.rs: Goals of everyone, nothing else, no writes.
  const HeaderList g = Bearer(user_goal_);
  EXPECT_EQ(http_->Get("/fhir/Goal/" + b_.goal, g).status, 200);
  EXPECT_EQ(http_->Get("/fhir/Goal", g).status, 200);
  EXPECT_EQ(http_->Get("/fhir/Goal/_history", g).status, 200);
  ExpectOutcome(http_->Get("/fhir/Observation/" + b_.obs, g), 403, "forbidden", "user/Goal.rs on Observation");
  ExpectOutcome(http_->Get("/fhir/Observation?patient=pb", g), 403, "forbidden", "user/Goal.rs search Observation");
  ExpectOutcome(http_->Get("/fhir/Patient/pb/$everything", g), 403, "forbidden", "user/Goal.rs $everything");
  ExpectOutcome(http_->Post("/fhir/Goal", GoalJson("pb", "x"), g), 403, "forbidden", "user/Goal.rs create");
  ExpectOutcome(http_->Delete("/fhir/Goal/" + b_.goal, g), 403, "forbidden", "user/Goal.rs delete");
  EXPECT_EQ(BState(), before) << "a refused request wrote";
}

// ---------------------------------------------------------------- the recorder rule

// The agents of the Provenance of `target`'s version `version`, as
// "type who [display]" strings in order.
std::vector<std::string> AgentsOf(HttpClient& http, const std::string& token, const std::string& target, int version) {
  HttpResponse r = http.Get(absl::StrCat("/fhir/Provenance?target=", target, "/_history/", version), Bearer(token));
  EXPECT_EQ(r.status, 200) << r.Describe();
  rapidjson::Document d = r.Json();
  std::vector<std::string> out;
  if (!d.IsObject() || !d.HasMember("entry") || d["entry"].Empty()) return out;
  for (const auto& agent : d["entry"][0]["resource"]["agent"].GetArray()) {
    std::string line =
        absl::StrCat(StringAt(agent, {"type", "coding", "0", "code"}), " ", StringAt(agent, {"who", "reference"}));
    if (agent["who"].HasMember("display")) absl::StrAppend(&line, " [", StringAt(agent, {"who", "display"}), "]");
    if (StringAt(agent, {"who", "reference"}).rfind("Practitioner/", 0) == 0) {
      EXPECT_TRUE(agent.HasMember("onBehalfOf")) << "US Core: a Practitioner agent has onBehalfOf: " << r.body;
    }
    out.push_back(line);
  }
  return out;
}

constexpr char kForRn17[] =
    R"({"resourceType":"Provenance","agent":[{"type":{"coding":[{"system":)"
    R"("http://terminology.hl7.org/CodeSystem/provenance-participant-type","code":"author"}]},)"
    R"("who":{"reference":"Practitioner/rn-17","display":"Ana Ruiz"},"role":[{"text":"RN"}]}]})";

// Who recorded a write is the token's user; X-Provenance's author is whom it
// was recorded for, shown as the author with the caller as the enterer.
TEST_F(FhirAuthTest, TheTokensUserRecordsAndXProvenanceNamesForWhom) {
  const std::string plugin = SignToken({.scope = "system/*.cruds", .sub = "ehr-plugin"});
  HttpResponse created =
      http_->Post("/fhir/Goal", GoalJson("pa", "for the nurse"), Bearer(plugin, {{"X-Provenance", kForRn17}}));
  ASSERT_EQ(created.status, 201) << created.Describe();
  const std::string goal = "Goal/" + StringAt(created.Json(), {"id"});
  EXPECT_THAT(AgentsOf(*http_, system_, goal, 1),
              ::testing::ElementsAre("author Practitioner/rn-17 [Ana Ruiz]", "enterer Practitioner/ehr-plugin",
                                     "informant Patient/pa"));

  // The nurse's own token naming herself: one author, the display she gave.
  HttpResponse own =
      http_->Post("/fhir/Goal", GoalJson("pa", "by the nurse"), Bearer(a_all_, {{"X-Provenance", kForRn17}}));
  ASSERT_EQ(own.status, 201) << own.Describe();
  EXPECT_THAT(AgentsOf(*http_, system_, "Goal/" + StringAt(own.Json(), {"id"}), 1),
              ::testing::ElementsAre("author Practitioner/rn-17 [Ana Ruiz]", "informant Patient/pa"));

  // A token for dev, claiming rn-17 as the author, is still recorded as dev.
  const std::string dev = SignToken({.scope = "user/*.cruds", .sub = "Practitioner/dev"});
  const std::string ref = goal.substr(5);
  HttpResponse put =
      http_->Put("/fhir/" + goal, GoalJson("pa", "changed by dev", ref), Bearer(dev, {{"X-Provenance", kForRn17}}));
  ASSERT_EQ(put.status, 200) << put.Describe();
  EXPECT_THAT(AgentsOf(*http_, system_, goal, 2),
              ::testing::ElementsAre("author Practitioner/rn-17 [Ana Ruiz]", "enterer Practitioner/dev",
                                     "informant Patient/pa"));

  // A deletion for someone, with a reason.
  const std::string why = R"({"resourceType":"Provenance","reason":[{"text":"Entered on the wrong chart"}],)"
                          R"("agent":[{"who":{"reference":"Practitioner/md-4"}}]})";
  ASSERT_EQ(http_->Delete("/fhir/" + goal, Bearer(plugin, {{"X-Provenance", why}})).status, 204);
  EXPECT_THAT(
      AgentsOf(*http_, system_, goal, 3),
      ::testing::ElementsAre("author Practitioner/md-4", "enterer Practitioner/ehr-plugin", "informant Patient/pa"));

  // A token that names no recorder (no fhirUser, a sub that is no id) reads but does not write.
  const std::string nobody = SignToken({.scope = "user/*.cruds", .sub = "auth0|5f1c"});
  HttpResponse refused = http_->Post("/fhir/Goal", GoalJson("pa", "by nobody"), Bearer(nobody));
  EXPECT_EQ(refused.status, 403) << refused.Describe();
  EXPECT_THAT(refused.body, HasSubstr("fhirUser"));
  EXPECT_EQ(http_->Get("/fhir/Goal/" + a_.goal, Bearer(nobody)).status, 200);
}

TEST_F(FhirAuthTest, LogHasNoTokensOrPatientText) {
  // Make some refused and allowed traffic, then read the log.
  http_->Get("/fhir/Goal/" + b_.goal, Bearer(a_all_));
  http_->Get("/fhir/Goal/" + b_.goal, Bearer("garbage-token-value"));
  std::ifstream in(server_->log_path());
  std::stringstream log;
  log << in.rdbuf();
  for (const std::string& secret : {a_all_, a_read_, system_, std::string("garbage-token-value"), kTestHs256Secret,
                                    std::string(kBGoalText), std::string(kBWhatMatters)}) {
    EXPECT_THAT(log.str(), Not(HasSubstr(secret)));
  }
}

}  // namespace
}  // namespace wmty::testing
