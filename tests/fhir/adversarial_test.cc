// Hostile HTTP against the real wmtyd (tests/support ServerProcess): absurd
// JSON (deep nesting, huge arrays, huge strings, NUL bytes, invalid UTF-8,
// duplicate members, numbers and dates out of range), path traversal in ids,
// header floods, and request smuggling (Content-Length with chunked, two
// Content-Lengths, obs-fold, chunk-size overflow, a body whose length lies).
// Raw sockets where a normal client cannot say the attack.
//
// Every attack must get a clean 4xx (or, for framing attacks, the connection
// closed) and never a 5xx; nothing may be stored (the newest entry of the
// change log, read through type history, is unchanged, and the patients the
// attacks name have no records), no smuggled request may run, and the server
// must answer a normal request afterwards (TearDown).
#include <atomic>
#include <optional>
#include <string>
#include <vector>

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "absl/strings/escaping.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_replace.h"
#include "absl/time/time.h"
#include "fhir/http_client.h"
#include "fhir/server_suite.h"
#include "support/test_support.h"

namespace wmty::testing {
namespace {

using namespace std::string_literals;  // "...\0..."s keeps NUL bytes

using ::testing::AllOf;
using ::testing::AnyOf;
using ::testing::Each;
using ::testing::Ge;
using ::testing::HasSubstr;
using ::testing::Lt;

constexpr size_t kBodyLimit = 1024 * 1024;  // wmtyd's default --http_max_body_bytes

std::string GoalJson(absl::string_view patient, absl::string_view description, absl::string_view extra = "") {
  return absl::StrCat(R"({"resourceType":"Goal","lifecycleStatus":"active","description":{"text":")", description,
                      R"("},"subject":{"reference":"Patient/)", patient, R"("},"expressedBy":{"reference":"Patient/)",
                      patient, R"("},"target":[{"dueDate":"2027-06-15"}])", extra, "}");
}

std::string PostBytes(absl::string_view target, absl::string_view body, absl::string_view extra_headers = "") {
  return absl::StrCat("POST ", target, " HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/fhir+json\r\n",
                      extra_headers, "Content-Length: ", body.size(), "\r\n\r\n", body);
}

class AdversarialHttpTest : public RealServerSuite {
 protected:
  void SetUp() override {
    RealServerSuite::SetUp();
    mark_ = ChangeLogMark();
  }

  // Nothing was written by the attacks, and the server still serves: a
  // normal read and a normal write succeed (on a fresh connection).
  void TearDown() override {
    if (server_ == nullptr) return;
    EXPECT_EQ(ChangeLogMark(), mark_) << "an attack wrote something";
    for (const std::string& patient : attacked_patients_) {
      v1::ListGoalsRequest goals;
      goals.set_parent("patients/" + patient);
      auto listed = grpc_->ListGoals(goals);
      ASSERT_TRUE(listed.ok()) << listed.status();
      EXPECT_EQ(listed->goals_size(), 0) << patient << ": a smuggled or refused request was stored";
    }
    HttpClient fresh(server_->http_port());
    EXPECT_EQ(fresh.Get("/fhir/metadata").status, 200) << "the server no longer answers";
    const HttpResponse created = fresh.Post("/fhir/Goal", GoalJson(NewPatient(), "still standing"));
    EXPECT_EQ(created.status, 201) << created.Describe();
  }

  // The newest entry of the change log of every type we store (type history,
  // newest first): any write, even a partial one, changes it.
  std::string ChangeLogMark() {
    std::string mark;
    for (const char* type : {"Goal", "Observation", "List"}) {
      HttpResponse r = http_->Get(absl::StrCat("/fhir/", type, "/_history?_count=1"));
      EXPECT_EQ(r.status, 200) << r.Describe();
      rapidjson::Document d = r.Json();
      if (d.IsObject() && d.HasMember("entry") && d["entry"].IsArray() && !d["entry"].Empty()) {
        const auto& e = d["entry"][0];
        if (e.HasMember("fullUrl") && e["fullUrl"].IsString()) absl::StrAppend(&mark, e["fullUrl"].GetString());
        if (e.HasMember("response") && e["response"].HasMember("etag")) {
          absl::StrAppend(&mark, " ", e["response"]["etag"].GetString());
        }
      }
      absl::StrAppend(&mark, ";");
    }
    return mark;
  }

  // A patient id for an attack; TearDown checks it has no records.
  std::string AttackedPatient() {
    attacked_patients_.push_back(NewPatient());
    return attacked_patients_.back();
  }
  static std::string NewPatient() {
    static std::atomic<int> n{0};
    return absl::StrCat("adv-", ::testing::UnitTest::GetInstance()->current_test_info()->name(), "-", ++n);
  }

  // Sends raw bytes on a fresh connection and reads what comes back: the
  // first response, then anything more until the server closes or is quiet
  // for `quiet` (framing attacks wait longer: a smuggled request would be
  // answered in that time; it asks for Connection: close, so it ends the
  // wait when it does run).
  RawConnection::Received Raw(absl::string_view bytes, absl::Duration quiet = absl::Milliseconds(300)) {
    RawConnection conn(server_->http_port());
    EXPECT_TRUE(conn.ok());
    conn.SendUntilAnswered(bytes);
    return conn.Read(1, quiet);
  }

  // A clean refusal: a 4xx FHIR OperationOutcome.
  static void ExpectClean4xx(const HttpResponse& r, const std::string& what) {
    EXPECT_GE(r.status, 400) << what << "\n" << r.Describe();
    EXPECT_LT(r.status, 500) << what << "\n" << r.Describe();
    rapidjson::Document d = r.Json();
    ASSERT_TRUE(d.IsObject()) << what << "\n" << r.Describe();
    EXPECT_STREQ(d.HasMember("resourceType") ? d["resourceType"].GetString() : "", "OperationOutcome") << what;
  }
  // A read that reaches nothing: a clean 4xx, or (a search or $everything
  // for an id that cannot exist) a Bundle without entries.
  static void ExpectNothingReached(const HttpResponse& r, const std::string& what) {
    if (r.status != 200) return ExpectClean4xx(r, what);
    rapidjson::Document d = r.Json();
    ASSERT_TRUE(d.IsObject()) << what << "\n" << r.Describe();
    EXPECT_STREQ(d.HasMember("resourceType") ? d["resourceType"].GetString() : "", "Bundle") << what;
    EXPECT_FALSE(d.HasMember("entry")) << what << " reached something:\n" << r.Describe();
  }
  void ExpectRefused(absl::string_view type, const std::string& body, const std::string& what, int status = 400) {
    HttpResponse r = http_->Post(absl::StrCat("/fhir/", type), body);
    ExpectClean4xx(r, what);
    EXPECT_EQ(r.status, status) << what << "\n" << r.Describe();
  }

  std::string mark_;
  std::vector<std::string> attacked_patients_;
};

// ---------------------------------------------------------------- JSON bodies

TEST_F(AdversarialHttpTest, DeeplyNestedJson) {
  const std::string patient = AttackedPatient();
  const std::string open(100000, '['), close(100000, ']');
  ExpectRefused("Goal", open, "100k unclosed [");
  ExpectRefused("Goal", open + close, "100k balanced []");
  ExpectRefused("Goal", GoalJson(patient, "x", absl::StrCat(R"(,"extension":)", open, close)), "100k [] inside a Goal");
  std::string objects;
  for (int i = 0; i < 50000; ++i) objects += R"({"a":)";
  objects.append("1").append(50000, '}');
  ExpectRefused("Goal", GoalJson(patient, "x", absl::StrCat(R"(,"extension":)", objects)), "50k nested objects");
  ExpectRefused("Observation", open + close, "100k balanced [] as an Observation");
  HttpResponse put = http_->Put("/fhir/Goal/x", open + close);
  ExpectClean4xx(put, "100k [] in a PUT");
}

TEST_F(AdversarialHttpTest, HugeArraysWithinTheBodyLimit) {
  const std::string patient = AttackedPatient();
  // ~500k elements: as many as fit in the default 1 MiB body.
  std::string zeros = "0";
  for (int i = 1; i < 500000; ++i) zeros += ",0";
  ASSERT_LT(zeros.size() + 300, kBodyLimit);
  ExpectRefused("Goal", GoalJson(patient, "x", absl::StrCat(R"(,"note":[)", zeros, "]")), "500k numbers as notes");
  // Many well-formed notes: more than the domain allows (100).
  std::string notes = R"({"text":"n"})";
  for (int i = 1; i < 60000; ++i) notes += R"(,{"text":"n"})";
  HttpResponse r = http_->Post("/fhir/Goal", GoalJson(patient, "x", absl::StrCat(R"(,"note":[)", notes, "]")));
  ExpectClean4xx(r, "60k notes");
  EXPECT_EQ(r.status, 400);
  // The refusal says so once, it does not list 60k violations.
  EXPECT_LT(r.body.size(), 64u * 1024) << r.body.substr(0, 2000);
}

// Elements the mapping keeps verbatim (section 3 of services/fhir/mapping.cc)
// are bounded only by the body limit: large ones are stored, read back, found
// and listed without trouble.
TEST_F(AdversarialHttpTest, LargeKeptElementsAreStoredAndReadBack) {
  const std::string patient = NewPatient();
  std::string zeros = "0";
  for (int i = 1; i < 400000; ++i) zeros += ",0";
  const std::string big(900 * 1000, 'a');
  for (const std::string& extra :
       {absl::StrCat(R"(,"category":[)", zeros, "]"), absl::StrCat(R"(,"priority":{"text":")", big, R"("})"),
        absl::StrCat(R"(,"identifier":[{"system":"urn:x","value":")", big, R"("}])")}) {
    HttpResponse created = http_->Post("/fhir/Goal", GoalJson(patient, "kept", extra));
    ASSERT_EQ(created.status, 201) << created.Describe();
    const std::string id = created.Json()["id"].GetString();
    HttpResponse read = http_->Get("/fhir/Goal/" + id);
    ASSERT_EQ(read.status, 200) << read.Describe();
    EXPECT_EQ(read.body, created.body);
    EXPECT_EQ(http_->Get("/fhir/Goal/" + id + "/_history").status, 200);
    HttpResponse put = http_->Put("/fhir/Goal/" + id, read.body, {{"If-Match", "W/\"1\""}});
    EXPECT_EQ(put.status, 200) << put.Describe();
  }
  HttpResponse search = http_->Get("/fhir/Goal?patient=" + patient);
  EXPECT_EQ(search.status, 200) << search.Describe();
  v1::ListGoalsRequest list;
  list.set_parent("patients/" + patient);
  auto goals = grpc_->ListGoals(list);
  ASSERT_TRUE(goals.ok()) << goals.status();
  EXPECT_EQ(goals->goals_size(), 3);
  mark_ = ChangeLogMark();  // these writes were meant
}

TEST(AdversarialHttpLimitsTest, MillionElementArrayUnderARaisedBodyLimit) {
  TempDir dir;
  auto server = ServerProcess::Start(dir.path() + "/db", {"--http_max_body_bytes=4194304"});
  ASSERT_TRUE(server.ok()) << server.status();
  HttpClient http((*server)->http_port());
  std::string zeros = "0";
  for (int i = 1; i < 1000000; ++i) zeros += ",0";
  // Notes are mapped (at most 100): refused.
  HttpResponse notes = http.Post("/fhir/Goal", GoalJson("adv-million", "x", absl::StrCat(R"(,"note":[)", zeros, "]")));
  EXPECT_EQ(notes.status, 400) << notes.Describe();
  // Codings we do not understand in category, and addresses that are not
  // references, are kept verbatim (mapping.cc section 3): stored, and they
  // read back unchanged.
  int kept = 0;
  for (const char* member : {"category", "addresses"}) {
    HttpResponse r =
        http.Post("/fhir/Goal", GoalJson("adv-million", "x", absl::StrCat(",\"", member, "\":[", zeros, "]")));
    ASSERT_EQ(r.status, 201) << member << "\n" << r.Describe();
    ++kept;
    HttpResponse read = http.Get(absl::StrCat("/fhir/Goal/", r.Json()["id"].GetString()));
    EXPECT_EQ(read.status, 200) << read.Describe();
    EXPECT_EQ(read.body, r.body) << member;
  }
  // An array of strings inside an object whose shape we do not model is no
  // error of ours; wherever it lands it must not take the server down.
  std::string strings = "\"a\"";
  for (int i = 1; i < 1000000; ++i) strings += ",\"a\"";
  HttpResponse r =
      http.Post("/fhir/Observation", absl::StrCat(R"({"resourceType":"Observation","x":[)", strings, "]}"));
  EXPECT_EQ(r.status, 400) << r.Describe();
  EXPECT_EQ(http.Get("/fhir/metadata").status, 200);
  v1::ListGoalsRequest list;
  list.set_parent("patients/adv-million");
  auto goals = (*server)->NewClient()->ListGoals(list);
  ASSERT_TRUE(goals.ok()) << goals.status();
  EXPECT_EQ(goals->goals_size(), kept);
}

TEST_F(AdversarialHttpTest, BodyOverTheLimitIs413) {
  // 10 MB declared: refused from the header, before the body is read.
  {
    RawConnection conn(server_->http_port());
    ASSERT_TRUE(conn.ok());
    const std::string body = GoalJson(AttackedPatient(), std::string(10 * 1000 * 1000, 'a'));
    conn.SendUntilAnswered(PostBytes("/fhir/Goal", body));
    const auto got = conn.Read();
    EXPECT_THAT(got.statuses(), ::testing::ElementsAre(413)) << got.bytes.substr(0, 500);
  }
  // 10 MB chunked (no length up front): refused once the limit is crossed.
  {
    RawConnection conn(server_->http_port());
    ASSERT_TRUE(conn.ok());
    std::string bytes =
        "POST /fhir/Goal HTTP/1.1\r\nHost: x\r\nContent-Type: application/fhir+json\r\n"
        "Transfer-Encoding: chunked\r\n\r\n";
    const std::string chunk(64 * 1024, 'a');
    for (int i = 0; i < 160; ++i) absl::StrAppend(&bytes, "10000\r\n", chunk, "\r\n");
    bytes += "0\r\n\r\n";
    conn.SendUntilAnswered(bytes);
    const auto got = conn.Read();
    EXPECT_THAT(got.statuses(), ::testing::ElementsAre(413)) << got.bytes.substr(0, 500);
  }
  // One chunk declared larger than the limit.
  const auto big_chunk =
      Raw("POST /fhir/Goal HTTP/1.1\r\nHost: x\r\nContent-Type: application/fhir+json\r\n"
          "Transfer-Encoding: chunked\r\n\r\n10000000\r\naaaa");
  EXPECT_THAT(big_chunk.statuses(), ::testing::ElementsAre(413)) << big_chunk.bytes.substr(0, 500);
}

TEST_F(AdversarialHttpTest, LargeStringJustUnderTheLimit) {
  const std::string patient = AttackedPatient();
  const std::string big(900 * 1000, 'a');
  // In a mapped text field: over the domain's 16 KiB text limit, named.
  HttpResponse r = http_->Post("/fhir/Goal", GoalJson(patient, big));
  ExpectClean4xx(r, "900 KB description");
  EXPECT_EQ(r.status, 400);
  EXPECT_THAT(r.body, HasSubstr("Goal.description"));
  EXPECT_LT(r.body.size(), 16u * 1024) << "the refusal echoes the text";
  // In a short field (256 bytes) and in the patient id (64).
  ExpectRefused("Goal", GoalJson(std::string(400 * 1000, 'p'), "x"), "400 KB patient id (twice in the body)");
  // An X-Request-Id over its 128 bytes.
  HttpResponse id = http_->Post("/fhir/Goal", GoalJson(patient, "x"), {{"X-Request-Id", std::string(200, 'r')}});
  ExpectClean4xx(id, "200-byte X-Request-Id");
}

TEST_F(AdversarialHttpTest, NulBytes) {
  const std::string patient = AttackedPatient();
  // Escaped NUL in text: a control character, refused by the domain's text check.
  ExpectRefused("Goal", GoalJson(patient, R"(before\u0000after)"), "\\u0000 in description");
  // A raw NUL inside a JSON string is not JSON.
  ExpectRefused("Goal", GoalJson(patient, "before\0after"s), "raw NUL in description");
  ExpectRefused("Goal", GoalJson("p\0q"s, "x"), "raw NUL in the patient id");
  ExpectRefused("Goal", GoalJson(R"(p\u0000q)", "x"), "\\u0000 in the patient id");
  // NUL in the URL: encoded (an id that cannot exist) and raw (not HTTP).
  for (const std::string target : {"/fhir/Goal/ab%00cd", "/fhir/Goal?patient=a%00b", "/fhir/Goal/%00",
                                   "/fhir/Patient/a%00b/$everything", "/fhir/Observation?subject=Patient/%00"}) {
    ExpectNothingReached(http_->Get(target), target);
  }
  const auto raw = Raw("GET /fhir/Goal/ab\0cd HTTP/1.1\r\nHost: x\r\n\r\n"s);
  EXPECT_THAT(raw.statuses(), ::testing::ElementsAre(400)) << raw.bytes;
  const auto header = Raw("GET /fhir/metadata HTTP/1.1\r\nHost: x\r\nX-A: a\0b\r\n\r\n"s);
  EXPECT_THAT(header.statuses(), ::testing::ElementsAre(400)) << header.bytes;
}

TEST_F(AdversarialHttpTest, InvalidUtf8) {
  const std::string patient = AttackedPatient();
  for (const std::string& bad : {std::string("\xff"), std::string("\xc0\xaf"), std::string("\xed\xa0\x80"),
                                 std::string("\xf4\x90\x80\x80"), std::string("\xe2\x82")}) {
    ExpectRefused("Goal", GoalJson(patient, "bad " + bad + " byte"), "invalid UTF-8 in description");
    ExpectRefused("Goal", GoalJson(patient, "x", absl::StrCat(R"(,"identifier":[{"value":")", bad, R"("}])")),
                  "invalid UTF-8 in a kept element");
  }
  // Escaped lone surrogates decode to no valid character.
  ExpectRefused("Goal", GoalJson(patient, R"(lone \ud800 high)"), "lone high surrogate");
  ExpectRefused("Goal", GoalJson(patient, R"(lone \udc00 low)"), "lone low surrogate");
  ExpectRefused("Goal", GoalJson(patient, "x", R"(,"identifier":[{"value":"\udc00"}])"),
                "lone low surrogate in a kept element");
  // In the query: percent-encoded and raw.
  for (const std::string target : {"/fhir/Goal?patient=%ff", "/fhir/Goal?patient=%c0%af", "/fhir/Goal?%ff=1",
                                   "/fhir/Observation?category=%ed%a0%80", "/fhir/Goal?identifier=%ff%fe",
                                   "/fhir/Goal/%ff", "/fhir/Patient/%ff/$everything"}) {
    ExpectNothingReached(http_->Get(target), target);
  }
  const auto raw = Raw("GET /fhir/Goal?patient=\xff\xfe HTTP/1.1\r\nHost: x\r\n\r\n");
  ASSERT_FALSE(raw.statuses().empty()) << raw.bytes;
  EXPECT_THAT(raw.statuses()[0], AnyOf(400, 404)) << raw.bytes;
}

TEST_F(AdversarialHttpTest, DuplicateMembersAreRejected) {
  const std::string patient = AttackedPatient();
  const std::string twice = absl::StrCat(R"({"resourceType":"Goal","lifecycleStatus":"active","lifecycleStatus":)"
                                         R"("cancelled","description":{"text":"x"},"subject":{"reference":"Patient/)",
                                         patient, R"("}})");
  ExpectRefused("Goal", twice, "lifecycleStatus twice");
  ExpectRefused(
      "Goal",
      absl::StrCat(R"({"resourceType":"Goal","lifecycleStatus":"active","description":{"text":"a","text":"b"},)"
                   R"("subject":{"reference":"Patient/)",
                   patient, R"("}})"),
      "description.text twice");
  ExpectRefused("Goal", GoalJson(patient, "x", absl::StrCat(R"(,"subject":{"reference":"Patient/other"})")),
                "subject twice (another patient second)");
  // Escapes that spell the same name are the same member.
  ExpectRefused("Goal", GoalJson(patient, "x", R"(,"lifecycle\u0053tatus":"cancelled")"), "escaped duplicate");
}

TEST_F(AdversarialHttpTest, NumbersAndDatesOutOfRange) {
  const std::string patient = AttackedPatient();
  for (const std::string value : {"1e999", "-1e999", "-0", "99999999999999999999999999", "3", "-3", "2.5", "1e2",
                                  "-9223372036854775809", "18446744073709551616"}) {
    const std::string score = absl::StrCat(
        R"({"resourceType":"Observation","status":"final","code":{"coding":[{"system":"http://loinc.org",)"
        R"("code":"107334-5"}]},"subject":{"reference":"Patient/)",
        patient, R"("},"focus":[{"reference":"Goal/01J0000000000000000000000"}],"valueInteger":)", value, "}");
    HttpResponse r = http_->Post("/fhir/Observation", score);
    ExpectClean4xx(r, "GAS valueInteger " + value);
  }
  for (const std::string date : {"99999-01-01", "0000-01-01", "2027-13-01", "2027-02-30", "-2027-01-01",
                                 "2027-01-01T25:00:00Z", "20270101", "9999999999"}) {
    ExpectRefused("Goal",
                  absl::StrReplaceAll(GoalJson(patient, "x"),
                                      {{R"("dueDate":"2027-06-15")", absl::StrCat(R"("dueDate":")", date, "\"")}}),
                  "dueDate " + date);
    ExpectRefused("Goal", GoalJson(patient, "x", absl::StrCat(R"(,"startDate":")", date, "\"")), "startDate " + date);
  }
  for (const std::string when : {"99999-01-01T00:00:00Z", "2027-01-01T00:00:61Z", "2027-01-01T00:00:00+99:00"}) {
    HttpResponse r = http_->Get("/fhir/Goal?patient=" + patient + "&_lastUpdated=gt" + when);
    ExpectClean4xx(r, "_lastUpdated " + when);
  }
  HttpResponse count = http_->Get("/fhir/Goal?patient=" + patient + "&_count=1e999");
  ExpectClean4xx(count, "_count=1e999");
  HttpResponse vid = http_->Get("/fhir/Goal/x/_history/-0");
  ExpectClean4xx(vid, "vid -0");
}

TEST_F(AdversarialHttpTest, PathTraversalInIds) {
  const std::string patient = AttackedPatient();
  HttpResponse created = http_->Post("/fhir/Goal", GoalJson(NewPatient(), "a real goal"));
  ASSERT_EQ(created.status, 201) << created.Describe();
  mark_ = ChangeLogMark();
  const std::vector<std::string> ids = {
      "..",          "../Observation/x", "%2e%2e%2fx",         "%2e%2e/%2e%2e/metadata", "a%2Fb", "a%2fb",
      "..%5c..%5cx", "%252e%252e%252f",  std::string(65, 'a'), std::string(8000, 'a'),   "a b",   "%20"};
  for (const std::string& id : ids) {
    for (const std::string& target : {"/fhir/Goal/" + id, "/fhir/Goal/" + id + "/_history",
                                      "/fhir/Goal/" + id + "/_history/1", "/fhir/Patient/" + id + "/$everything"}) {
      // ".." is a valid FHIR id ([A-Za-z0-9\-.]{1,64}) and ids are key
      // bytes, never paths: it can only name a resource called "..".
      ExpectNothingReached(http_->Get(target), target.substr(0, 200));
    }
    HttpResponse put = http_->Put("/fhir/Goal/" + id, GoalJson(patient, "x", absl::StrCat(R"(,"id":")", id, "\"")));
    ExpectClean4xx(put, "PUT " + id.substr(0, 100));
    HttpResponse del = http_->Delete("/fhir/Goal/" + id);
    EXPECT_THAT(del.status, AnyOf(204, Ge(400))) << del.Describe();
    EXPECT_LT(del.status, 500) << del.Describe();
  }
  // Traversal in the body's references.
  for (const std::string ref : {"Patient/../x", "Patient/%2e%2e", "Patient/a/b", "Patient/", "../Patient/x"}) {
    ExpectRefused("Goal",
                  absl::StrReplaceAll(GoalJson(patient, "x"), {{"\"Patient/" + patient + "\"", "\"" + ref + "\""}}),
                  "subject " + ref);
  }
}

// ---------------------------------------------------------------- headers

TEST_F(AdversarialHttpTest, HeaderFloods) {
  // Thousands of small headers: over the 16 KiB header limit.
  std::string many = "GET /fhir/metadata HTTP/1.1\r\nHost: x\r\n";
  for (int i = 0; i < 5000; ++i) absl::StrAppend(&many, "X-Flood-", i, ": v\r\n");
  many += "\r\n";
  const auto flood = Raw(many);
  EXPECT_THAT(flood.statuses(), ::testing::ElementsAre(431)) << flood.bytes.substr(0, 500);
  EXPECT_TRUE(flood.closed);
  // One header of 100 KB.
  const auto one =
      Raw(absl::StrCat("GET /fhir/metadata HTTP/1.1\r\nHost: x\r\nX-Big: ", std::string(100 * 1024, 'b'), "\r\n\r\n"));
  EXPECT_THAT(one.statuses(), ::testing::ElementsAre(431)) << one.bytes.substr(0, 500);
  // A 100 KB request line (a long id).
  const auto line = Raw(absl::StrCat("GET /fhir/Goal/", std::string(100 * 1024, 'a'), " HTTP/1.1\r\nHost: x\r\n\r\n"));
  ASSERT_FALSE(line.statuses().empty());
  EXPECT_THAT(line.statuses()[0], AnyOf(400, 414, 431)) << line.bytes.substr(0, 500);
  // Many headers within the limit are merely headers.
  std::string within = "GET /fhir/metadata HTTP/1.1\r\nHost: x\r\n";
  for (int i = 0; i < 1000; ++i) absl::StrAppend(&within, "A", i, ":\r\n");
  within += "\r\n";
  const auto fine = Raw(within);
  EXPECT_THAT(fine.statuses(), ::testing::ElementsAre(200)) << fine.bytes.substr(0, 500);
  // Repeated Authorization / Content-Type / X-Request-Id headers.
  const std::string patient = AttackedPatient();
  const auto types = Raw(PostBytes("/fhir/Goal", GoalJson(patient, "x"), "Content-Type: text/plain\r\n"));
  ASSERT_FALSE(types.statuses().empty());
  EXPECT_THAT(types.statuses()[0], AllOf(Ge(400), Lt(500))) << types.bytes.substr(0, 500);
  const auto ids = Raw(PostBytes("/fhir/Goal", GoalJson(patient, "x"), "X-Request-Id: a\r\nX-Request-Id: b\r\n"));
  ASSERT_FALSE(ids.statuses().empty());
  EXPECT_THAT(ids.statuses()[0], AllOf(Ge(400), Lt(500))) << ids.bytes.substr(0, 500);
}

// ---------------------------------------------------------------- request smuggling

// The request a smuggling attempt tries to slip through: a Goal create for
// `patient` (TearDown checks that patient has no records).
std::string Smuggled(absl::string_view patient) {
  return PostBytes("/fhir/Goal", GoalJson(patient, "smuggled"), "Connection: close\r\n");
}

TEST_F(AdversarialHttpTest, ContentLengthWithChunked) {
  const std::string patient = AttackedPatient();
  const std::string body = "0\r\n\r\n" + Smuggled(patient);
  for (const std::string& headers :
       {absl::StrCat("Content-Length: ", body.size(), "\r\nTransfer-Encoding: chunked\r\n"),
        absl::StrCat("Transfer-Encoding: chunked\r\nContent-Length: ", body.size(), "\r\n"),
        absl::StrCat("Content-Length: ", body.size(), "\r\nTransfer-Encoding: identity, chunked\r\n"),
        absl::StrCat("Content-Length: ", body.size(), "\r\nTransfer-Encoding : chunked\r\n"),
        absl::StrCat("Content-Length: ", body.size(), "\r\nTransfer-Encoding: xchunked\r\n")}) {
    const auto got = Raw(absl::StrCat("POST /fhir/Goal HTTP/1.1\r\nHost: x\r\nContent-Type: application/fhir+json\r\n",
                                      headers, "\r\n", body),
                         absl::Seconds(1));
    const auto statuses = got.statuses();
    ASSERT_FALSE(statuses.empty()) << headers;
    EXPECT_THAT(statuses, Each(AllOf(Ge(400), Lt(500)))) << headers << got.bytes.substr(0, 1000);
    EXPECT_EQ(statuses.size(), 1u) << "a second request ran: " << headers;
  }
}

TEST_F(AdversarialHttpTest, TwoContentLengths) {
  const std::string patient = AttackedPatient();
  const std::string body = GoalJson(patient, "first");
  const std::string smuggled = Smuggled(patient);
  for (const std::string& headers :
       {absl::StrCat("Content-Length: ", body.size(), "\r\nContent-Length: ", body.size() + smuggled.size(), "\r\n"),
        absl::StrCat("Content-Length: ", body.size() + smuggled.size(), "\r\nContent-Length: ", body.size(), "\r\n"),
        absl::StrCat("Content-Length: ", body.size(), ", ", body.size() + smuggled.size(), "\r\n"),
        absl::StrCat("Content-Length: +", body.size(), "\r\n"), absl::StrCat("Content-Length: -1\r\n"),
        absl::StrCat("Content-Length: 99999999999999999999999\r\n"),
        absl::StrCat("Content-Length: 0x", absl::Hex(body.size()), "\r\n")}) {
    const auto got = Raw(absl::StrCat("POST /fhir/Goal HTTP/1.1\r\nHost: x\r\nContent-Type: application/fhir+json\r\n",
                                      headers, "\r\n", body, smuggled),
                         absl::Seconds(1));
    const auto statuses = got.statuses();
    ASSERT_FALSE(statuses.empty()) << headers;
    EXPECT_THAT(statuses, Each(AllOf(Ge(400), Lt(500)))) << headers << got.bytes.substr(0, 1000);
    EXPECT_EQ(statuses.size(), 1u) << "a second request ran: " << headers;
  }
}

TEST_F(AdversarialHttpTest, ObsFold) {
  const std::string patient = AttackedPatient();
  const std::string body = GoalJson(patient, "folded");
  // A folded Transfer-Encoding next to a Content-Length, and a folded
  // Content-Length: neither may frame the body differently from the other.
  for (const std::string& headers :
       {absl::StrCat("Content-Length: ", body.size(), "\r\nTransfer-Encoding:\r\n chunked\r\n"),
        absl::StrCat("Content-Length:\r\n ", body.size(), "\r\n"),
        absl::StrCat("X-Folded: a\r\n b\r\nContent-Length: ", body.size(), "\r\n")}) {
    const auto got = Raw(absl::StrCat("POST /fhir/Goal HTTP/1.1\r\nHost: x\r\nContent-Type: application/fhir+json\r\n",
                                      headers, "\r\n", body, Smuggled(patient)),
                         absl::Seconds(1));
    const auto statuses = got.statuses();
    ASSERT_FALSE(statuses.empty()) << headers;
    EXPECT_THAT(statuses, Each(AllOf(Ge(400), Lt(500)))) << headers << got.bytes.substr(0, 1000);
    EXPECT_EQ(statuses.size(), 1u) << "a second request ran: " << headers;
  }
}

TEST_F(AdversarialHttpTest, ChunkSizeOverflow) {
  const std::string patient = AttackedPatient();
  for (const std::string size :
       {"ffffffffffffffffff", "10000000000000000", "fffffffffffffff1", "-1", "0x10", "1 ; x", " 5", "g"}) {
    const auto got = Raw(absl::StrCat("POST /fhir/Goal HTTP/1.1\r\nHost: x\r\nContent-Type: application/fhir+json\r\n"
                                      "Transfer-Encoding: chunked\r\n\r\n",
                                      size, "\r\n{}\r\n0\r\n\r\n", Smuggled(patient)),
                         absl::Seconds(1));
    const auto statuses = got.statuses();
    ASSERT_FALSE(statuses.empty()) << size;
    EXPECT_THAT(statuses, Each(AllOf(Ge(400), Lt(500)))) << size << got.bytes.substr(0, 1000);
    EXPECT_EQ(statuses.size(), 1u) << "a second request ran after chunk size " << size;
  }
}

TEST_F(AdversarialHttpTest, BodyWithAWrongLength) {
  const std::string patient = AttackedPatient();
  const std::string body = GoalJson(patient, "first");
  const std::string smuggled = Smuggled(patient);
  // Content-Length shorter than the body, cut so that what is left over is
  // exactly another request: the body as framed is not JSON, so it is
  // refused and the connection closed, and the rest never runs.
  {
    const std::string cut = body.substr(0, body.size() - 10);
    const auto got = Raw(absl::StrCat("POST /fhir/Goal HTTP/1.1\r\nHost: x\r\nContent-Type: application/fhir+json\r\n"
                                      "Content-Length: ",
                                      cut.size(), "\r\n\r\n", cut, smuggled),
                         absl::Seconds(1));
    EXPECT_THAT(got.statuses(), ::testing::ElementsAre(400)) << got.bytes.substr(0, 1000);
    EXPECT_TRUE(got.closed) << "the connection stayed open after a body that did not parse";
  }
  // Content-Length longer than the body: the smuggled request is read as
  // part of the first body, which is then not JSON.
  {
    const auto got = Raw(absl::StrCat("POST /fhir/Goal HTTP/1.1\r\nHost: x\r\nContent-Type: application/fhir+json\r\n"
                                      "Content-Length: ",
                                      body.size() + smuggled.size(), "\r\n\r\n", body, smuggled),
                         absl::Seconds(1));
    EXPECT_THAT(got.statuses(), ::testing::ElementsAre(400)) << got.bytes.substr(0, 1000);
  }
  // A GET with a body: the body is not a second request.
  {
    const auto got = Raw(absl::StrCat("GET /fhir/metadata HTTP/1.1\r\nHost: x\r\nContent-Length: ", smuggled.size(),
                                      "\r\n\r\n", smuggled),
                         absl::Seconds(1));
    const auto statuses = got.statuses();
    ASSERT_FALSE(statuses.empty());
    EXPECT_EQ(statuses.size(), 1u) << got.bytes.substr(0, 1000);
  }
}

TEST_F(AdversarialHttpTest, MalformedRequestLines) {
  for (const std::string& bytes :
       {std::string("GET /fhir/metadata HTTP/1.1\nHost: x\n\n"), std::string("GET  /fhir/metadata HTTP/1.1\r\n\r\n"),
        std::string("GET /fhir/metadata HTTP/9.9\r\nHost: x\r\n\r\n"),
        std::string("G\x01T /fhir/metadata HTTP/1.1\r\n\r\n"),
        std::string("GET /fhir/metadata HTTP/1.1\r\nHost x\r\n\r\n"),
        std::string("GET /fhir/metadata HTTP/1.1\r\n: x\r\n\r\n"),
        std::string("GET fhir/metadata HTTP/1.1\r\nHost: x\r\n\r\n"), std::string("\r\n\r\n\r\n"),
        std::string("POST /fhir/Goal HTTP/1.0\r\nContent-Type: application/fhir+json\r\n\r\n{}")}) {
    const auto got = Raw(bytes);
    const auto statuses = got.statuses();
    EXPECT_THAT(statuses, Each(Lt(500))) << absl::CEscape(bytes) << "\n" << got.bytes.substr(0, 500);
    if (!statuses.empty() && statuses[0] == 200) {
      // Tolerated forms of a valid request (bare LF line ends) are fine.
      EXPECT_THAT(bytes, HasSubstr("metadata")) << absl::CEscape(bytes);
    }
  }
}

}  // namespace
}  // namespace wmty::testing
