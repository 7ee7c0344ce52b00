// Access of the FHIR face, walked over its registration point (issue 18):
// every registered interaction (services/fhir/face/interactions.h), for each
// stored type its path covers, against the real wmtyd with an HS256 key and
// real tokens. Each one answers 401 without a token; 403 to a token with no
// scope for its type (405 for a registered refusal); to a patient/ token of
// another patient what its row declares (403, 404 as if unknown, or 200 with
// that patient's data left out); and each of those answers leaves an
// AuditEvent with the row's action and outcome 4 (or 0). A path no row
// matches is a 404 OperationOutcome.
#include <fstream>
#include <map>
#include <set>
#include <string_view>

#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <rapidjson/document.h>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_replace.h"
#include "absl/time/clock.h"
#include "fhir/face/interactions.h"
#include "fhir/http_client.h"
#include "support/test_support.h"
#include "support/test_tokens.h"

namespace wmty::testing {
namespace {

using fhir::face::Interaction;
using fhir::face::OtherPatient;
using fhir::face::PatientFrom;

std::string GoalJson(const std::string& patient, const std::string& id = "") {
  return absl::StrCat(R"({"resourceType":"Goal",)", id.empty() ? "" : absl::StrCat(R"("id":")", id, R"(",)"),
                      R"("lifecycleStatus":"active","description":{"text":"walk"},"subject":{"reference":"Patient/)",
                      patient, R"("},"expressedBy":{"reference":"Patient/)", patient,
                      R"("},"target":[{"dueDate":"2027-06-15"}],"category":[{"coding":[{"system":"http://loinc.org",)"
                      R"("code":"87528-6"}]}]})");
}

std::string ObservationJson(const std::string& patient, const std::string& id = "") {
  return absl::StrCat(
      R"({"resourceType":"Observation",)", id.empty() ? "" : absl::StrCat(R"("id":")", id, R"(",)"),
      R"("status":"final","category":[{"coding":[{"system":)"
      R"("http://hl7.org/fhir/us/core/CodeSystem/us-core-category","code":"care-experience-preference"}]}],)"
      R"("code":{"coding":[{"system":"http://loinc.org","code":"95541-9"},)"
      R"({"system":"https://fhir.wmty.health/CodeSystem/wmty","code":"what-matters"}]},)"
      R"("subject":{"reference":"Patient/)",
      patient, R"("},"effectiveDateTime":"2026-11-23T15:00:00Z","performer":[{"reference":"Patient/)", patient,
      R"("}],"valueString":"walk"})");
}

std::string ListJson(const std::string& patient) {
  return absl::StrCat(R"({"resourceType":"List","id":")", patient,
                      R"(","status":"current","mode":"working","title":"What matters most to me",)"
                      R"("code":{"coding":[{"system":"http://loinc.org","code":"81340-2"}]},)"
                      R"("subject":{"reference":"Patient/)",
                      patient, R"("},"source":{"reference":"Patient/)", patient, R"("}})");
}

std::string PatientJson(const std::string& id) {
  return absl::StrCat(
      R"({"resourceType":"Patient","id":")", id, R"(",)",
      R"("identifier":[{"use":"usual","type":{"coding":[{"system":"http://terminology.hl7.org/CodeSystem/v2-0203",)",
      R"("code":"MR","display":"Medical record number"}]},"system":"urn:oid:2.16.840.1.113883.19.5","value":"77)",
      R"("}],"active":true,"name":[{"use":"official","family":"Walk","given":["Pat"]}],"gender":"female",)",
      R"("birthDate":"1950-03-14"})");
}

// A Subscription (Backport IG) of the what-matters topic for `patient`.
std::string SubscriptionJson(const std::string& patient, const std::string& id = "") {
  return absl::StrCat(
      R"({"resourceType":"Subscription",)", id.empty() ? "" : absl::StrCat(R"("id":")", id, R"(",)"),
      R"("status":"requested","reason":"walk","criteria":"https://wmty.dev/fhir/SubscriptionTopic/what-matters-changed",)"
      R"("_criteria":{"extension":[{"url":"http://hl7.org/fhir/uv/subscriptions-backport/StructureDefinition/)"
      R"(backport-filter-criteria","valueString":"Goal?patient=Patient/)",
      patient, R"("}]},"channel":{"type":"rest-hook","endpoint":"https://93.184.216.34/hook"}})");
}

// One concrete request for a registered interaction.
struct Request {
  std::string label;  // for failure messages
  const Interaction* row;
  std::string method, target, body, content_type;
};

class FhirAccessTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    dir_ = new TempDir();
    auto server = ServerProcess::Start(dir_->path() + "/db", Hs256AuthFlagsIn(dir_->path()));
    ASSERT_TRUE(server.ok()) << server.status();
    server_ = server->release();
    system_ = SignToken({.scope = "system/*.cruds", .sub = "Practitioner/walk-writer"});
    auditor_ = SignToken({.scope = "system/AuditEvent.rs", .sub = "walk-auditor"});
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

  // Patient pb's data, one of each type, made with the system token.
  void MakeData() {
    ASSERT_EQ(http_->Put("/fhir/Patient/pb", PatientJson("pb"), Bearer(system_)).status, 201);
    HttpResponse goal = http_->Post("/fhir/Goal", GoalJson("pb"), Bearer(system_));
    ASSERT_EQ(goal.status, 201) << goal.Describe();
    ids_["Goal"] = StringAt(goal.Json(), {"id"});
    HttpResponse obs = http_->Post("/fhir/Observation", ObservationJson("pb"), Bearer(system_));
    ASSERT_EQ(obs.status, 201) << obs.Describe();
    ids_["Observation"] = StringAt(obs.Json(), {"id"});
    ASSERT_EQ(http_->Put("/fhir/List/pb", ListJson("pb"), Bearer(system_)).status, 201);
    ids_["List"] = "pb";
    ids_["Patient"] = "pb";
    HttpResponse prov = http_->Get("/fhir/Provenance?target=Goal/" + ids_["Goal"], Bearer(system_));
    ASSERT_EQ(prov.status, 200) << prov.Describe();
    ids_["Provenance"] = StringAt(prov.Json(), {"entry", "0", "resource", "id"});
    // An AuditEvent about pb (the goal's create).
    HttpResponse audit = http_->Get("/fhir/AuditEvent?patient=pb&_count=1", Bearer(auditor_));
    ASSERT_EQ(audit.status, 200) << audit.Describe();
    ids_["AuditEvent"] = StringAt(audit.Json(), {"entry", "0", "resource", "id"});
    // A Subscription (of the system token's, about pb).
    HttpResponse sub = http_->Post("/fhir/Subscription", SubscriptionJson("pb"), Bearer(system_));
    ASSERT_EQ(sub.status, 201) << sub.Describe();
    ids_["Subscription"] = StringAt(sub.Json(), {"id"});
    for (const auto& [type, id] : ids_) ASSERT_FALSE(id.empty()) << type;
  }

  // The body a write of `type` for patient pb sends (`id`: PUT's).
  std::string BodyFor(const std::string& type, const std::string& id) {
    if (type == "Goal") return GoalJson("pb", id);
    if (type == "Observation") return ObservationJson("pb", id);
    if (type == "List") return ListJson("pb");
    if (type == "Subscription") return SubscriptionJson("pb", id);
    return PatientJson("pb");
  }

  // The concrete requests of every registered, non-public interaction: each
  // {type} expanded over the stored types, ids of pb's data, searches for pb.
  std::vector<Request> Walk() {
    std::vector<Request> out;
    std::set<std::string> routed;
    for (const Interaction& row : fhir::face::Interactions()) {
      if (row.access.patient == PatientFrom::kPublic) continue;
      const bool any_type = absl::StrContains(row.path, "{type}");
      const absl::string_view pattern(row.path);
      const std::string head(pattern.substr(0, pattern.find('/')));
      for (const std::string& type : any_type ? std::vector<std::string>{"Goal", "Observation", "List", "Patient"}
                                              : std::vector<std::string>{head}) {
        Request r;
        r.row = &row;
        r.method = std::string(bhttp_verb(row.method));
        std::string path = absl::StrReplaceAll(row.path, {{"{type}", type}, {"{id}", ids_[type]}, {"{vid}", "1"}});
        r.target = "/fhir/" + path;
        // An earlier row (e.g. the refusal of POST Patient) owns this method + path.
        if (!routed.insert(r.method + " " + r.target).second) continue;
        const bool search = absl::string_view(row.name) == "search";
        if (search) {
          const std::string query = type == "Patient"      ? "_id=pb"
                                    : type == "Provenance" ? "target=Goal/" + ids_["Goal"]
                                                           : "patient=pb";
          if (r.method == "POST") {
            r.body = query;
            r.content_type = "application/x-www-form-urlencoded";
          } else {
            r.target += "?" + query;
          }
        } else if (r.method == "POST" || r.method == "PUT") {
          r.body = BodyFor(type, r.method == "PUT" ? ids_[type] : "");
          r.content_type = "application/fhir+json";
        }
        r.label = absl::StrCat(r.method, " ", r.target, " (", row.name, ")");
        out.push_back(std::move(r));
      }
    }
    return out;
  }

  HttpResponse Send(const Request& r, HeaderList headers) {
    if (!r.content_type.empty()) headers.emplace_back("Content-Type", r.content_type);
    auto response = http_->Send(r.method, r.target, r.body, headers);
    EXPECT_TRUE(response.ok()) << r.label << ": " << response.status();
    return response.ok() ? *response : HttpResponse();
  }

  // Waits for the AuditEvent of `agent`'s one request (the trail is appended
  // with the next group commit) and checks its action and outcome.
  void ExpectAudited(const Request& r, const std::string& agent, const std::string& action,
                     const std::string& outcome) {
    for (int i = 0; i < 200; ++i) {
      HttpResponse found = http_->Get("/fhir/AuditEvent?agent=" + agent, Bearer(auditor_));
      ASSERT_EQ(found.status, 200) << found.Describe();
      const rapidjson::Document d = found.Json();
      if (d.HasMember("entry")) {
        EXPECT_EQ(StringAt(d, {"entry", "0", "resource", "action"}), action) << r.label;
        EXPECT_EQ(StringAt(d, {"entry", "0", "resource", "outcome"}), outcome) << r.label;
        return;
      }
      absl::SleepFor(absl::Milliseconds(25));
    }
    ADD_FAILURE() << "no AuditEvent for " << r.label;
  }

  static std::string_view bhttp_verb(boost::beast::http::verb v) {
    const auto s = boost::beast::http::to_string(v);
    return std::string_view(s.data(), s.size());
  }

  static inline TempDir* dir_ = nullptr;
  static inline ServerProcess* server_ = nullptr;
  static inline std::string system_, auditor_;
  std::map<std::string, std::string> ids_;
  std::unique_ptr<HttpClient> http_;
};

// The action a refused (unrouted) request is audited with: its method's.
std::string ActionOf(const Request& r) {
  if (r.row->handler != nullptr) return r.row->access.action;
  return r.method == "POST" ? "C" : r.method == "PUT" ? "U" : r.method == "DELETE" ? "D" : "R";
}

TEST_F(FhirAccessTest, EveryRegisteredInteractionChecksAndAuditsAccess) {
  MakeData();
  const std::vector<Request> walk = Walk();
  ASSERT_GE(walk.size(), 30u);
  int n = 0;
  for (const Request& r : walk) {
    SCOPED_TRACE(r.label);
    // No token: 401, whatever the interaction.
    EXPECT_EQ(Send(r, {}).status, 401);

    // A token with no scope for the type: 403 (a registered refusal: 405).
    const std::string stranger = absl::StrCat("walk-stranger-", n);
    HttpResponse no_scope = Send(r, Bearer(SignToken({.scope = "user/Encounter.cruds", .sub = stranger})));
    EXPECT_EQ(no_scope.status, r.row->handler == nullptr ? 405 : 403) << no_scope.Describe();
    EXPECT_EQ(StringAt(no_scope.Json(), {"resourceType"}), "OperationOutcome");
    ExpectAudited(r, stranger, ActionOf(r), "4");

    // Patient pa's token (every type, the audit trail too) on pb's data.
    const std::string other = absl::StrCat("walk-other-", n++);
    HttpResponse other_patient =
        Send(r, Bearer(SignToken({.scope = "patient/*.cruds patient/AuditEvent.rs", .patient = "pa", .sub = other})));
    if (r.row->handler == nullptr) {
      EXPECT_EQ(other_patient.status, 405) << other_patient.Describe();
      ExpectAudited(r, other, ActionOf(r), "4");
      continue;
    }
    switch (r.row->access.other_patient) {
      case OtherPatient::kForbidden:
        EXPECT_EQ(other_patient.status, 403) << other_patient.Describe();
        break;
      case OtherPatient::kUnknown:
        EXPECT_EQ(other_patient.status, 404) << other_patient.Describe();
        break;
      case OtherPatient::kLeftOut:
        EXPECT_EQ(other_patient.status, 200) << other_patient.Describe();
        EXPECT_FALSE(other_patient.Json().HasMember("entry")) << other_patient.Describe();
        break;
    }
    ExpectAudited(r, other, ActionOf(r), other_patient.status == 200 ? "0" : "4");
  }
}

TEST_F(FhirAccessTest, AnUnregisteredPathIs404) {
  for (const std::string target :
       {"/fhir/Goal/a/b/c/d", "/fhir/Encounter", "/fhir/Goal/a/$op", "/fhir/Provenance/a/b"}) {
    HttpResponse r = http_->Get(target, Bearer(system_));
    EXPECT_EQ(r.status, 404) << target << ": " << r.Describe();
    EXPECT_EQ(StringAt(r.Json(), {"resourceType"}), "OperationOutcome") << target;
  }
}

}  // namespace
}  // namespace wmty::testing
