// The faces agree on the audit trail (issue 18): the same failure, made once
// through gRPC and once through FHIR against one real wmtyd, is recorded with
// the same audit outcome (domain/audit_outcome.h scores both). Read back as
// AuditEvents, each face's request told apart by its own agent (token `sub`).
//
// A deadline is checked through FHIR on a wmtyd whose FHIR requests time out
// at once (the gRPC face cannot be made to miss a deadline without a race;
// it scores DEADLINE_EXCEEDED with the same function, see
// tests/unit/audit_outcome_test.cc). Before the shared function the FHIR face
// scored that 503 as a serious failure (8), gRPC as a minor one (4).
#include <fstream>
#include <functional>

#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <rapidjson/document.h>

#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "fhir/http_client.h"
#include "fhir/server_suite.h"
#include "support/test_support.h"
#include "support/test_tokens.h"
#include "wmty/client/client.h"

namespace wmty::testing {
namespace {

// What an AuditEvent says about how its request ended.
struct Outcome {
  std::string code;  // AuditEvent.outcome: "0", "4", "8" or "12"
  std::string desc;  // outcomeDesc: the gRPC code or the HTTP status
};

// Polls the trail (appended with the next group commit) for the one event of
// `query` recorded by the face `site` ("wmty gRPC API" / "wmty FHIR API").
Outcome FindOutcome(HttpClient& http, const HeaderList& auditor, const std::string& query, absl::string_view site) {
  for (int i = 0; i < 200; ++i) {
    HttpResponse r = http.Get(absl::StrCat("/fhir/AuditEvent?", query, "&_count=1000"), auditor);
    EXPECT_EQ(r.status, 200) << r.Describe();
    const rapidjson::Document d = r.Json();
    if (d.IsObject() && d.HasMember("entry")) {
      for (const auto& e : d["entry"].GetArray()) {
        if (StringAt(e["resource"], {"source", "site"}) == site) {
          return {StringAt(e["resource"], {"outcome"}), StringAt(e["resource"], {"outcomeDesc"})};
        }
      }
    }
    absl::SleepFor(absl::Milliseconds(50));
  }
  ADD_FAILURE() << "no audit event from " << site << " for " << query;
  return {};
}

// A valid goal naming no recorder: each write is recorded as its caller's.
v1::Goal GoalOfTheCaller() {
  v1::Goal goal = ValidGoal();
  goal.mutable_provenance()->mutable_recorded_by()->clear_practitioner_id();
  return goal;
}

constexpr absl::string_view kGrpcSite = "wmty gRPC API";
constexpr absl::string_view kFhirSite = "wmty FHIR API";

class AuditAgreementTest : public RealServerSuite {
 protected:
  // The suite's wmtyd checks tokens (HS256), so each request has an agent.
  static void SetUpTestSuite() {
    StartServer([](const std::string& dir) { return Hs256AuthFlagsIn(dir); });
  }

  // A gRPC client whose calls carry a token for `sub` with `scope`.
  std::unique_ptr<client::Client> GrpcAs(const std::string& sub, const std::string& scope = "system/*.cruds",
                                         const std::string& patient = "") {
    client::ClientOptions options;
    options.target = server_->target();
    options.max_attempts = 1;
    options.bearer_token = SignToken({.scope = scope, .patient = patient, .sub = sub});
    return client::Client::Connect(options);
  }
  static HeaderList FhirAs(const std::string& sub, const std::string& scope = "system/*.cruds",
                           const std::string& patient = "", HeaderList more = {}) {
    return Bearer(SignToken({.scope = scope, .patient = patient, .sub = sub}), std::move(more));
  }

  // The outcomes each face recorded for the one request of its agent.
  void ExpectSameOutcome(const std::string& grpc_agent, const std::string& fhir_agent, absl::string_view expected) {
    const Outcome grpc = FindOutcome(*http_, auditor_, "agent=" + grpc_agent, kGrpcSite);
    const Outcome fhir = FindOutcome(*http_, auditor_, "agent=" + fhir_agent, kFhirSite);
    EXPECT_EQ(grpc.code, fhir.code) << "gRPC " << grpc.desc << " vs FHIR " << fhir.desc;
    EXPECT_EQ(grpc.code, expected) << grpc.desc;
    EXPECT_EQ(fhir.code, expected) << fhir.desc;
  }

  const HeaderList auditor_ = Bearer(SignToken({.scope = "system/AuditEvent.rs", .sub = "auditor-1"}));
};

TEST_F(AuditAgreementTest, AStaleEtagIsAMinorFailureOnBothFaces) {
  auto writer = GrpcAs("Practitioner/stale-writer");
  v1::CreateGoalRequest create;
  create.set_parent("patients/pstale");
  *create.mutable_goal() = GoalOfTheCaller();
  auto goal = writer->CreateGoal(create);
  ASSERT_TRUE(goal.ok()) << goal.status();
  v1::UpdateGoalRequest update;
  *update.mutable_goal() = *goal;
  update.mutable_goal()->mutable_provenance()->mutable_recorded_by()->clear_practitioner_id();
  auto v2 = writer->UpdateGoal(update);
  ASSERT_TRUE(v2.ok()) << v2.status();
  const std::string id = goal->name().substr(goal->name().rfind('/') + 1);
  HttpResponse current = http_->Get("/fhir/Goal/" + id, FhirAs("Practitioner/stale-writer"));
  ASSERT_EQ(current.status, 200) << current.Describe();

  // Both based on version 1, which is no longer current.
  v1::UpdateGoalRequest stale = update;
  stale.mutable_goal()->set_etag(goal->etag());
  EXPECT_EQ(GrpcAs("Practitioner/stale-grpc")->UpdateGoal(stale).status().code(), absl::StatusCode::kAborted);
  HttpResponse put = http_->Put("/fhir/Goal/" + id, current.body,
                                FhirAs("Practitioner/stale-fhir", "system/*.cruds", "", {{"If-Match", goal->etag()}}));
  EXPECT_EQ(put.status, 412) << put.Describe();
  ExpectSameOutcome("Practitioner/stale-grpc", "Practitioner/stale-fhir", "4");
}

TEST_F(AuditAgreementTest, NotFoundIsAMinorFailureOnBothFaces) {
  v1::GetResourceRequest get;
  get.set_name("patients/pnf/goals/no-such-goal");
  EXPECT_EQ(GrpcAs("Practitioner/nf-grpc")->GetGoal(get).status().code(), absl::StatusCode::kNotFound);
  HttpResponse read = http_->Get("/fhir/Goal/no-such-goal", FhirAs("Practitioner/nf-fhir"));
  EXPECT_EQ(read.status, 404) << read.Describe();
  ExpectSameOutcome("Practitioner/nf-grpc", "Practitioner/nf-fhir", "4");
}

TEST_F(AuditAgreementTest, APermissionDenialIsAMinorFailureOnBothFaces) {
  // Read-only scopes for patient pd: creating is not allowed.
  v1::CreateGoalRequest create;
  create.set_parent("patients/pd");
  *create.mutable_goal() = ValidGoal();
  EXPECT_EQ(GrpcAs("Patient/pd-grpc", "patient/*.rs", "pd")->CreateGoal(create).status().code(),
            absl::StatusCode::kPermissionDenied);
  const std::string body = R"({"resourceType":"Goal","lifecycleStatus":"active","description":{"text":"walk"},)"
                           R"("subject":{"reference":"Patient/pd"}})";
  HttpResponse post = http_->Post("/fhir/Goal", body, FhirAs("Patient/pd-fhir", "patient/*.rs", "pd"));
  EXPECT_EQ(post.status, 403) << post.Describe();
  ExpectSameOutcome("Patient/pd-grpc", "Patient/pd-fhir", "4");
}

// A FHIR request past its deadline (503 timeout) is scored as the gRPC face
// scores DEADLINE_EXCEEDED: a minor failure, not a serious one.
TEST(AuditDeadlineTest, AFhirDeadlineIsAMinorFailure) {
  TempDir dir;
  auto server = ServerProcess::Start(dir.path() + "/db", {"--fhir_request_timeout=1ns"});
  ASSERT_TRUE(server.ok()) << server.status();
  // Something to walk (written through gRPC, which has no such deadline).
  v1::CreateGoalRequest create;
  create.set_parent("patients/pdl");
  *create.mutable_goal() = ValidGoal();
  ASSERT_TRUE((*server)->NewClient()->CreateGoal(create).ok());
  HttpClient http((*server)->http_port());
  HttpResponse history = http.Get("/fhir/Goal/_history");
  ASSERT_EQ(history.status, 503) << history.Describe();
  EXPECT_EQ(StringAt(history.Json(), {"issue", "0", "code"}), "timeout");
  const Outcome fhir = FindOutcome(http, {}, "action=R", kFhirSite);
  EXPECT_THAT(fhir.desc, ::testing::StartsWith("503"));
  EXPECT_EQ(fhir.code, "4");
}

}  // namespace
}  // namespace wmty::testing
