// The Patient resource end to end (issue 17, "the right patient"): the real
// wmtyd, a real HTTP client and the real gRPC client. A hospital feed PUTs
// US Core Patients; they are read, versioned, searched by name, birthdate,
// identifier and _id, refused when they carry what R4 Patient does not
// define, returned with every valid element they came with, and reached only
// with Patient scopes. gRPC GetPatient / UpdatePatient go through the same
// domain rule.
#include <algorithm>
#include <atomic>
#include <fstream>
#include <set>
#include <string>
#include <vector>

#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <rapidjson/document.h>

#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "fhir/http_client.h"
#include "fhir/server_suite.h"
#include "support/test_support.h"
#include "support/test_tokens.h"

namespace wmty::testing {
namespace {

using ::testing::ElementsAre;
using ::testing::HasSubstr;
using ::testing::IsEmpty;
using ::testing::UnorderedElementsAre;

// A US Core Patient as an ADT interface engine sends it, with elements wmty
// does not interpret (telecom, address, an extension, name periods).
std::string PatientJson(const std::string& id, const std::string& family = "Santos",
                        const std::string& birth_date = "1950-03-14", const std::string& mrn = "448812",
                        const std::string& extra = "") {
  return absl::StrCat(
      R"({"resourceType":"Patient","id":")", id, R"(",)",
      R"("extension":[{"url":"http://hl7.org/fhir/us/core/StructureDefinition/us-core-birthsex","valueCode":"F"}],)",
      R"("identifier":[{"use":"usual","type":{"coding":[{"system":"http://terminology.hl7.org/CodeSystem/v2-0203",)",
      R"("code":"MR","display":"Medical record number"}]},"system":"urn:oid:2.16.840.1.113883.19.5","value":")", mrn,
      R"("}],"active":true,)", R"("name":[{"use":"official","family":")", family,
      R"(","given":["Maria","José"],"period":{"start":"1970-01-01"}}],)",
      R"("telecom":[{"system":"phone","value":"555-0100","use":"home"}],"gender":"female","birthDate":")", birth_date,
      R"(","address":[{"line":["1 Harbour Road"],"city":"Porto","postalCode":"4000"}])", extra, "}");
}

void ExpectOutcome(const HttpResponse& r, int status, const std::string& expression = "") {
  EXPECT_EQ(r.status, status) << r.Describe();
  rapidjson::Document d = r.Json();
  EXPECT_EQ(StringAt(d, {"resourceType"}), "OperationOutcome") << r.Describe();
  if (!expression.empty()) {
    bool found = false;
    const rapidjson::Value* issues = JsonAt(d, {"issue"});
    for (const auto& i : issues->GetArray()) {
      const rapidjson::Value* e = JsonAt(i, {"expression"});
      if (e == nullptr) continue;
      for (const auto& x : e->GetArray()) found |= std::string(x.GetString()) == expression;
    }
    EXPECT_TRUE(found) << "no issue at " << expression << ": " << r.Describe();
  }
}

class FhirPatientTest : public RealServerSuite {
 protected:
  // A patient id no other test uses (FHIR ids are at most 64 characters).
  static std::string NewId() {
    static std::atomic<int> n{0};
    const std::string test = ::testing::UnitTest::GetInstance()->current_test_info()->name();
    return absl::StrCat("pt-", test.substr(0, 40), "-", ++n);
  }
  std::vector<std::string> Search(const std::string& query) {
    HttpResponse r = http_->Get("/fhir/Patient?" + query);
    EXPECT_EQ(r.status, 200) << r.Describe();
    return EntryIds(r.Json());
  }
};

TEST_F(FhirPatientTest, PutCreatesThenUpdatesAndReadReturnsEveryElementItCameWith) {
  const std::string id = NewId();
  HttpResponse created = http_->Put("/fhir/Patient/" + id, PatientJson(id));
  ASSERT_EQ(created.status, 201) << created.Describe();
  EXPECT_EQ(created.Header("etag"), "W/\"1\"");
  EXPECT_THAT(created.Header("location"), HasSubstr("/fhir/Patient/" + id + "/_history/1"));

  HttpResponse read = http_->Get("/fhir/Patient/" + id);
  ASSERT_EQ(read.status, 200) << read.Describe();
  rapidjson::Document d = read.Json();
  EXPECT_EQ(StringAt(d, {"resourceType"}), "Patient");
  EXPECT_EQ(StringAt(d, {"id"}), id);
  EXPECT_EQ(StringAt(d, {"meta", "versionId"}), "1");
  EXPECT_EQ(StringAt(d, {"meta", "profile", "0"}), "http://hl7.org/fhir/us/core/StructureDefinition/us-core-patient");
  EXPECT_EQ(StringAt(d, {"name", "0", "family"}), "Santos");
  EXPECT_EQ(StringAt(d, {"name", "0", "given", "1"}), "José");
  EXPECT_EQ(StringAt(d, {"name", "0", "period", "start"}), "1970-01-01") << "kept: the name did not change";
  EXPECT_EQ(StringAt(d, {"identifier", "0", "type", "coding", "0", "display"}), "Medical record number");
  EXPECT_EQ(StringAt(d, {"identifier", "0", "value"}), "448812");
  EXPECT_EQ(StringAt(d, {"birthDate"}), "1950-03-14");
  EXPECT_EQ(StringAt(d, {"gender"}), "female");
  EXPECT_EQ(StringAt(d, {"telecom", "0", "value"}), "555-0100");
  EXPECT_EQ(StringAt(d, {"address", "0", "city"}), "Porto");
  EXPECT_EQ(StringAt(d, {"extension", "0", "valueCode"}), "F");
  EXPECT_THAT(StringAt(d, {"text", "div"}), HasSubstr("Maria José Santos"));
  EXPECT_TRUE(JsonAt(d, {"active"}) != nullptr && JsonAt(d, {"active"})->IsTrue());

  HttpResponse updated = http_->Put("/fhir/Patient/" + id, PatientJson(id, "Santos-Lima"));
  ASSERT_EQ(updated.status, 200) << updated.Describe();
  EXPECT_EQ(StringAt(updated.Json(), {"meta", "versionId"}), "2");
  EXPECT_EQ(StringAt(updated.Json(), {"name", "0", "family"}), "Santos-Lima");

  HttpResponse history = http_->Get("/fhir/Patient/" + id + "/_history");
  ASSERT_EQ(history.status, 200) << history.Describe();
  rapidjson::Document h = history.Json();
  EXPECT_EQ(StringAt(h, {"type"}), "history");
  EXPECT_EQ(StringAt(h, {"entry", "0", "resource", "name", "0", "family"}), "Santos-Lima");
  EXPECT_EQ(StringAt(h, {"entry", "1", "resource", "name", "0", "family"}), "Santos");
  EXPECT_EQ(StringAt(h, {"entry", "1", "request", "method"}), "PUT");
  HttpResponse v1 = http_->Get("/fhir/Patient/" + id + "/_history/1");
  ASSERT_EQ(v1.status, 200) << v1.Describe();
  EXPECT_EQ(StringAt(v1.Json(), {"name", "0", "family"}), "Santos");
}

TEST_F(FhirPatientTest, IfMatchGuardsAnUpdateAndARepeatedRequestIdWritesOnce) {
  const std::string id = NewId();
  ASSERT_EQ(http_->Put("/fhir/Patient/" + id, PatientJson(id)).status, 201);
  ExpectOutcome(http_->Put("/fhir/Patient/" + id, PatientJson(id, "Other"), {{"If-Match", "W/\"7\""}}), 412);
  EXPECT_EQ(http_->Put("/fhir/Patient/" + id, PatientJson(id, "Other"), {{"If-Match", "W/\"1\""}}).status, 200);

  const HeaderList once = {{"X-Request-Id", "adt-msg-" + id}};
  HttpResponse first = http_->Put("/fhir/Patient/" + id, PatientJson(id, "Third"), once);
  HttpResponse again = http_->Put("/fhir/Patient/" + id, PatientJson(id, "Third"), once);
  ASSERT_EQ(first.status, 200) << first.Describe();
  EXPECT_EQ(again.Header("etag"), first.Header("etag"));
  EXPECT_EQ(StringAt(http_->Get("/fhir/Patient/" + id).Json(), {"meta", "versionId"}), "3");
}

TEST_F(FhirPatientTest, RefusesWhatR4PatientDoesNotDefineOrUsCoreRequiresNamingThePath) {
  const std::string id = NewId();
  ExpectOutcome(http_->Put("/fhir/Patient/" + id, PatientJson(id, "Santos", "1950-03-14", "448812", R"(,"foo":1)")),
                400, "Patient.foo");
  ExpectOutcome(http_->Put("/fhir/Patient/" + id, absl::StrCat(R"({"resourceType":"Patient","id":")", id,
                                                               R"(","identifier":[{"system":"urn:x","value":"1"}],)"
                                                               R"("name":[{"family":"A","nickname":"B"}]})")),
                400, "Patient.name[0].nickname");
  ExpectOutcome(http_->Put("/fhir/Patient/" + id,
                           absl::StrCat(R"({"resourceType":"Patient","id":")", id, R"(","name":[{"family":"A"}]})")),
                400, "Patient.identifier");
  ExpectOutcome(http_->Put("/fhir/Patient/" + id, PatientJson(id, "Santos", "3000-01-01")), 400, "Patient.birthDate");
  ExpectOutcome(http_->Put("/fhir/Patient/" + id, PatientJson(id, "Santos", "14/03/1950")), 400, "Patient.birthDate");
  ExpectOutcome(http_->Put("/fhir/Patient/" + id,
                           absl::StrCat(R"({"resourceType":"Patient","id":")", id,
                                        R"(","identifier":[{"system":"urn:x","value":"1"}],"name":[{"family":"A"}],)"
                                        R"("gender":"f"})")),
                400, "Patient.gender");
  // Kept elements must still be FHIR JSON of their type: wmty never serves back what is not.
  ExpectOutcome(http_->Put("/fhir/Patient/" + id,
                           PatientJson(id, "Santos", "1950-03-14", "448812", R"(,"maritalStatus":"M","contact":[])")),
                400, "Patient.maritalStatus");
  ExpectOutcome(
      http_->Put("/fhir/Patient/" + id, absl::StrCat(R"({"resourceType":"Patient","id":")", id,
                                                     R"(","identifier":[{"system":"urn:x","value":"1","type":"MR"}],)"
                                                     R"("name":[{"family":"A","given":["B",""]}],"active":"yes"})")),
      400, "Patient.active");
  ExpectOutcome(
      http_->Put("/fhir/Patient/" + id, absl::StrCat(R"({"resourceType":"Patient","id":")", id,
                                                     R"(","identifier":[{"system":"urn:x","value":"1","type":"MR"}],)"
                                                     R"("name":[{"family":"A","given":["B",""]}]})")),
      400, "Patient.identifier[0].type");
  ExpectOutcome(http_->Put("/fhir/Patient/" + id, absl::StrCat(R"({"resourceType":"Patient","id":")", id,
                                                               R"(","identifier":[{"system":"urn:x","value":"1"}],)"
                                                               R"("name":[{"family":"A","given":["B",""]}]})")),
                400, "Patient.name[0].given");
  ExpectOutcome(http_->Put("/fhir/Patient/" + id, PatientJson("someone-else")), 400, "Patient.id");
  ExpectOutcome(http_->Post("/fhir/Patient", PatientJson(id)), 405);
  ExpectOutcome(http_->Delete("/fhir/Patient/" + id), 405);
  ExpectOutcome(http_->Get("/fhir/Patient/" + id), 404);  // none of the above wrote anything
}

TEST_F(FhirPatientTest, SearchByNameBirthdateIdentifierAndId) {
  const std::string a = NewId(), b = NewId(), c = NewId();
  ASSERT_EQ(http_->Put("/fhir/Patient/" + a, PatientJson(a, "Zabriskie", "1950-03-14", "ZX-1")).status, 201);
  ASSERT_EQ(http_->Put("/fhir/Patient/" + b, PatientJson(b, "Zabala", "1981-11-30", "ZX-2")).status, 201);
  ASSERT_EQ(http_->Put("/fhir/Patient/" + c, PatientJson(c, "Quist", "1950-03-14", "ZX-3")).status, 201);

  EXPECT_THAT(Search("name=zab"), UnorderedElementsAre(a, b)) << "starts with, case-insensitive";
  EXPECT_THAT(Search("name=ZABRISKIE"), ElementsAre(a));
  EXPECT_THAT(Search("name=jos&family=quist"), ElementsAre(c)) << "a given name, and the family name";
  EXPECT_THAT(Search("name=abr"), IsEmpty()) << "not a substring search";
  EXPECT_THAT(Search("birthdate=1950-03-14&name=zab"), ElementsAre(a));
  EXPECT_THAT(Search("birthdate=1981&name=zab"), ElementsAre(b)) << "a year is every day of it";
  EXPECT_THAT(Search("identifier=urn:oid:2.16.840.1.113883.19.5|ZX-3"), ElementsAre(c));
  EXPECT_THAT(Search("identifier=ZX-2"), ElementsAre(b));
  EXPECT_THAT(Search("identifier=urn:other|ZX-2"), IsEmpty());
  EXPECT_THAT(Search(absl::StrCat("_id=", a, ",", c)), UnorderedElementsAre(a, c));
  EXPECT_THAT(Search("gender=female&identifier=ZX-1"), ElementsAre(a));
  ExpectOutcome(http_->Get("/fhir/Patient?birthdate=14-03-1950"), 400);

  // Paging: a next link that brings the rest.
  HttpResponse page = http_->Get("/fhir/Patient?name=zab&_count=1");
  ASSERT_EQ(page.status, 200);
  const std::string next = LinkOf(page.Json(), "next");
  ASSERT_FALSE(next.empty()) << page.Describe();
  HttpResponse rest = http_->Get(next.substr(next.find("/fhir/")));
  ASSERT_EQ(rest.status, 200) << rest.Describe();
  std::vector<std::string> both = EntryIds(page.Json());
  for (const auto& x : EntryIds(rest.Json())) both.push_back(x);
  EXPECT_THAT(both, UnorderedElementsAre(a, b));
}

TEST_F(FhirPatientTest, EverythingStartsWithWhoThePatientIs) {
  const std::string id = NewId();
  ASSERT_EQ(http_->Put("/fhir/Patient/" + id, PatientJson(id)).status, 201);
  HttpResponse r = http_->Get("/fhir/Patient/" + id + "/$everything");
  ASSERT_EQ(r.status, 200) << r.Describe();
  EXPECT_EQ(StringAt(r.Json(), {"entry", "0", "resource", "resourceType"}), "Patient");
  EXPECT_EQ(StringAt(r.Json(), {"entry", "0", "resource", "id"}), id);
}

TEST_F(FhirPatientTest, GrpcReadsWhatFhirWroteAndItsUpdateKeepsTheUninterpretedElements) {
  const std::string id = NewId();
  ASSERT_EQ(http_->Put("/fhir/Patient/" + id, PatientJson(id)).status, 201);
  auto grpc = server_->NewClient();
  v1::GetResourceRequest get;
  get.set_name("patients/" + id);
  auto patient = grpc->GetPatient(get);
  ASSERT_TRUE(patient.ok()) << patient.status();
  ASSERT_EQ(patient->names_size(), 1);
  EXPECT_EQ(patient->names(0).family(), "Santos");
  EXPECT_THAT(patient->names(0).given(), ElementsAre("Maria", "José"));
  EXPECT_EQ(patient->birth_date(), "1950-03-14");
  EXPECT_EQ(patient->gender(), v1::FEMALE);
  ASSERT_EQ(patient->identifiers_size(), 1);
  EXPECT_EQ(patient->identifiers(0).type_code(), "MR");
  EXPECT_EQ(patient->identifiers(0).value(), "448812");

  v1::UpdatePatientRequest update;
  *update.mutable_patient() = *patient;
  update.mutable_patient()->mutable_names(0)->set_family("Lima");
  update.mutable_patient()->mutable_provenance()->mutable_recorded_by()->set_practitioner_id("adt-feed");
  auto written = grpc->UpdatePatient(update);
  ASSERT_TRUE(written.ok()) << written.status();
  EXPECT_EQ(written->version(), 2);

  rapidjson::Document d = http_->Get("/fhir/Patient/" + id).Json();
  EXPECT_EQ(StringAt(d, {"name", "0", "family"}), "Lima");
  EXPECT_EQ(StringAt(d, {"name", "0", "period", "start"}), "") << "the changed name is generated from the model";
  EXPECT_EQ(StringAt(d, {"identifier", "0", "type", "coding", "0", "display"}), "Medical record number")
      << "the unchanged identifier is returned as it came";
  EXPECT_EQ(StringAt(d, {"telecom", "0", "value"}), "555-0100");

  // Bad input over gRPC: INVALID_ARGUMENT naming the field, nothing written.
  v1::UpdatePatientRequest bad = update;
  bad.mutable_patient()->clear_identifiers();
  bad.mutable_patient()->clear_etag();
  auto refused = grpc->UpdatePatient(bad);
  EXPECT_THAT(refused, StatusIs(absl::StatusCode::kInvalidArgument));
  EXPECT_THAT(ViolatedFields(refused.status()), ElementsAre("patient.identifiers"));
  v1::UpdatePatientRequest unknown = update;
  unknown.mutable_patient()->set_name("patients/" + id + "-nobody");
  unknown.mutable_patient()->clear_etag();
  unknown.mutable_patient()->clear_patient();  // output only; would name the first patient
  EXPECT_THAT(grpc->UpdatePatient(unknown), StatusIs(absl::StatusCode::kNotFound)) << "allow_missing not set";
  EXPECT_EQ(StringAt(http_->Get("/fhir/Patient/" + id).Json(), {"meta", "versionId"}), "2");
}

// ---------------------------------------------------------------- scopes

class FhirPatientAuthTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    dir_ = new TempDir();
    auto server = ServerProcess::Start(dir_->path() + "/db", Hs256AuthFlagsIn(dir_->path()));
    ASSERT_TRUE(server.ok()) << server.status();
    server_ = server->release();
  }
  static void TearDownTestSuite() {
    delete server_;
    server_ = nullptr;
    delete dir_;
  }
  void SetUp() override { http_ = std::make_unique<HttpClient>(server_->http_port()); }
  static std::string Token(const std::string& scope, const std::string& patient = "") {
    return SignToken({scope, patient});
  }

  static TempDir* dir_;
  static ServerProcess* server_;
  std::unique_ptr<HttpClient> http_;
};

TempDir* FhirPatientAuthTest::dir_ = nullptr;
ServerProcess* FhirPatientAuthTest::server_ = nullptr;

TEST_F(FhirPatientAuthTest, FeedsWriteWithPatientUpdateAndReadersReachOnlyWhatTheirScopesAllow) {
  const std::string feed = Token("system/Patient.cu");
  ASSERT_EQ(http_->Put("/fhir/Patient/pa", PatientJson("pa"), Bearer(feed)).status, 201);
  ASSERT_EQ(http_->Put("/fhir/Patient/pb", PatientJson("pb", "Other"), Bearer(feed)).status, 201);

  // No token: 401. A reader cannot write; a Goal-only token cannot read Patients.
  EXPECT_EQ(http_->Get("/fhir/Patient/pa").status, 401);
  ExpectOutcome(http_->Put("/fhir/Patient/pa", PatientJson("pa"), Bearer(Token("user/Patient.rs"))), 403);
  ExpectOutcome(http_->Get("/fhir/Patient/pa", Bearer(Token("user/Goal.rs"))), 403);

  // A nurse's user/ token reads and searches every patient.
  const std::string nurse = Token("user/Patient.rs");
  EXPECT_EQ(http_->Get("/fhir/Patient/pb", Bearer(nurse)).status, 200);
  HttpResponse found = http_->Get("/fhir/Patient?name=santos", Bearer(nurse));
  ASSERT_EQ(found.status, 200) << found.Describe();
  EXPECT_THAT(EntryIds(found.Json()), ElementsAre("pa"));

  // A patient/ token reaches its own patient only.
  const std::string own = Token("patient/Patient.rs", "pa");
  EXPECT_EQ(http_->Get("/fhir/Patient/pa", Bearer(own)).status, 200);
  ExpectOutcome(http_->Get("/fhir/Patient/pb", Bearer(own)), 404);
  EXPECT_THAT(EntryIds(http_->Get("/fhir/Patient?_id=pa", Bearer(own)).Json()), ElementsAre("pa"));
  HttpResponse wide = http_->Get("/fhir/Patient?name=other", Bearer(own));
  ExpectOutcome(wide, 403);
  EXPECT_THAT(wide.body, HasSubstr("searches need _id=<the token's patient>"));
  // Nothing the refused calls carried was written.
  EXPECT_EQ(StringAt(http_->Get("/fhir/Patient/pa", Bearer(nurse)).Json(), {"meta", "versionId"}), "1");

  // The feed's write and the nurse's read are in the audit trail (appended
  // after the answer: polled).
  const std::string auditor = Token("system/AuditEvent.rs");
  auto subtypes = [&]() {
    std::set<std::string> out;
    rapidjson::Document d = http_->Get("/fhir/AuditEvent?patient=pa&_count=1000", Bearer(auditor)).Json();
    if (const rapidjson::Value* entries = JsonAt(d, {"entry"}); entries != nullptr) {
      for (const auto& e : entries->GetArray()) {
        if (StringAt(e, {"resource", "outcome"}) == "0") out.insert(StringAt(e, {"resource", "subtype", "0", "code"}));
      }
    }
    return out;
  };
  std::set<std::string> seen;
  for (int attempt = 0; attempt < 100 && !(seen.count("update") && seen.count("read")); ++attempt) {
    seen = subtypes();
    if (!(seen.count("update") && seen.count("read"))) absl::SleepFor(absl::Milliseconds(50));
  }
  EXPECT_TRUE(seen.count("update")) << "the feed's PUT is audited";
  EXPECT_TRUE(seen.count("read")) << "reading who the patient is is audited";
}

TEST_F(FhirPatientAuthTest, GrpcPatientMethodsFollowTheSameScopes) {
  auto client_with = [&](const std::string& token) {
    client::ClientOptions options;
    options.target = server_->target();
    options.bearer_token = token;
    return client::Client::Connect(options);
  };
  v1::UpdatePatientRequest put;
  put.set_allow_missing(true);
  v1::Patient& p = *put.mutable_patient();
  p.set_name("patients/pg");
  auto* n = p.add_names();
  n->set_family("Okafor");
  n->add_given("Ada");
  auto* mrn = p.add_identifiers();
  mrn->set_system("urn:oid:2.16.840.1.113883.19.5");
  mrn->set_value("G-1");
  // Reading scopes do not write; the feed's do.
  EXPECT_THAT(client_with(Token("user/Patient.rs"))->UpdatePatient(put), StatusIs(absl::StatusCode::kPermissionDenied));
  const std::string feed = SignToken({.scope = "system/Patient.cu", .sub = "adt-feed"});
  // Who sends a Patient is the caller, as for every write: a request naming
  // someone else is refused, one naming nobody is recorded as the caller.
  v1::UpdatePatientRequest claimed = put;
  claimed.mutable_patient()->mutable_provenance()->mutable_recorded_by()->set_practitioner_id("rn-99");
  auto refused = client_with(feed)->UpdatePatient(claimed);
  EXPECT_THAT(refused, StatusIs(absl::StatusCode::kInvalidArgument));
  EXPECT_THAT(ViolatedFields(refused.status()), ElementsAre("patient.provenance.recorded_by.practitioner_id"));
  auto written = client_with(feed)->UpdatePatient(put);
  ASSERT_TRUE(written.ok()) << written.status();
  EXPECT_EQ(written->version(), 1);
  EXPECT_EQ(written->provenance().recorded_by().practitioner_id(), "adt-feed");

  v1::GetResourceRequest get;
  get.set_name("patients/pg");
  auto own = client_with(Token("patient/Patient.r", "pg"))->GetPatient(get);
  ASSERT_TRUE(own.ok()) << own.status();
  EXPECT_EQ(own->names(0).family(), "Okafor");
  // Another patient's token: NOT_FOUND, exactly like an unknown patient.
  EXPECT_THAT(client_with(Token("patient/Patient.r", "pa"))->GetPatient(get), StatusIs(absl::StatusCode::kNotFound));
  EXPECT_THAT(client_with(Token("user/Goal.rs"))->GetPatient(get), StatusIs(absl::StatusCode::kPermissionDenied));
}

}  // namespace
}  // namespace wmty::testing
