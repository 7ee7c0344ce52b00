// Authentication and authorization of the gRPC face (issue 4), end to end:
// the real wmtyd started with an HS256 secret, real tokens signed with libjwt,
// sent as `authorization: Bearer <t>` metadata on hand-built calls, so every
// RPC of wmty.v1.WhatMattersService is driven from one table.
//
// The matrix: no / expired / wrong-issuer / wrong-audience / bad-signature /
// alg=none tokens on every RPC -> UNAUTHENTICATED; patient A's token against
// patient B's data on every RPC -> NOT_FOUND (reads by name) or
// PERMISSION_DENIED, with B's data unchanged (checked through a system token);
// missing read/write scope -> PERMISSION_DENIED; correct patient, user and
// system tokens work. The server log is checked to hold neither tokens nor
// patient text.
#include <sys/wait.h>

#include <functional>
#include <future>
#include <map>
#include <set>
#include <string>
#include <vector>

#include <gmock/gmock.h>
#include <google/protobuf/unknown_field_set.h>
#include <grpcpp/generic/generic_stub.h>
#include <grpcpp/grpcpp.h>
#include <gtest/gtest.h>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_replace.h"
#include "absl/strings/str_split.h"
#include "absl/time/clock.h"
#include "common/status.h"
#include "integration/integration_util.h"
#include "storage/store.h"
#include "support/test_support.h"
#include "support/test_tokens.h"
#include "wmty/v1/service.pb.h"

namespace wmty::testing {
namespace {

using Code = absl::StatusCode;

constexpr char kService[] = "/wmty.v1.WhatMattersService/";
constexpr char kA[] = "pA";
constexpr char kB[] = "pB";

struct CallResult {
  absl::Status status;
  std::string response;
};

// One RPC of the table: how to build its request against a patient's data.
struct Rpc {
  std::string method;
  std::string type;  // FHIR type of the scope ("" = the summary: r on all three)
  char permission;   // c r u d s
  bool by_name;      // Get / ListVersions: another patient's -> NOT_FOUND
  bool write;
};

// The patient's seeded resources (names), refreshed before each request.
struct Seed {
  std::string patient;
  std::string what_matters, goal, preference, goal_score;
};

class GrpcAuthTest : public ::testing::Test {
 protected:
  void SetUp() override {
    const std::string secret_file = dir_.path() + "/secret";
    {
      FILE* f = fopen(secret_file.c_str(), "w");
      ASSERT_NE(f, nullptr);
      fputs((kTestHs256Secret + "\n").c_str(), f);
      fclose(f);
    }
    auto server = ServerProcess::Start(dir_.path() + "/data", Hs256AuthFlags(secret_file));
    ASSERT_TRUE(server.ok()) << server.status();
    server_ = std::move(*server);
    channel_ = grpc::CreateChannel(server_->target(), grpc::InsecureChannelCredentials());
    system_ = SignToken({"system/*.cruds", ""});
    a_ = SeedPatient(kA);
    b_ = SeedPatient(kB);
  }

  // A call with `token` ("" = no authorization header at all; `raw_header`
  // overrides the whole header value).
  CallResult Call(const std::string& method, const google::protobuf::Message& request, const std::string& token,
                  const std::string* raw_header = nullptr) {
    grpc::GenericStub stub(channel_);
    grpc::ClientContext ctx;
    ctx.set_deadline(absl::ToChronoTime(absl::Now() + absl::Seconds(10)));
    if (raw_header != nullptr) {
      ctx.AddMetadata("authorization", *raw_header);
    } else if (!token.empty()) {
      ctx.AddMetadata("authorization", "Bearer " + token);
    }
    const std::string bytes = request.SerializeAsString();
    grpc::Slice slice(bytes);
    grpc::ByteBuffer in(&slice, 1);
    grpc::ByteBuffer out;
    std::promise<grpc::Status> done;
    stub.UnaryCall(&ctx, kService + method, grpc::StubOptions(), &in, &out,
                   [&done](grpc::Status s) { done.set_value(s); });
    grpc::Status status = done.get_future().get();
    CallResult r;
    r.status = FromGrpcStatus(status);
    if (status.ok()) {
      grpc::Slice s;
      EXPECT_TRUE(out.DumpToSingleSlice(&s).ok());
      r.response.assign(reinterpret_cast<const char*>(s.begin()), s.size());
    }
    return r;
  }

  template <class Resp>
  Resp SystemCall(const std::string& method, const google::protobuf::Message& request) {
    CallResult r = Call(method, request, system_);
    EXPECT_TRUE(r.status.ok()) << method << ": " << r.status;
    Resp resp;
    EXPECT_TRUE(resp.ParseFromString(r.response));
    return resp;
  }

  Seed SeedPatient(const std::string& patient) {
    Seed s;
    s.patient = patient;
    const std::string parent = "patients/" + patient;
    v1::CreateWhatMattersRequest wm;
    wm.set_parent(parent);
    *wm.mutable_what_matters() = ValidWhatMatters("Secret garden words of " + patient);
    s.what_matters = SystemCall<v1::WhatMatters>("CreateWhatMatters", wm).name();
    v1::CreateGoalRequest goal;
    goal.set_parent(parent);
    *goal.mutable_goal() = ValidGoal("Secret aisle walk of " + patient);
    s.goal = SystemCall<v1::Goal>("CreateGoal", goal).name();
    v1::CreatePreferenceRequest pref;
    pref.set_parent(parent);
    *pref.mutable_preference() = ValidPreference();
    s.preference = SystemCall<v1::Preference>("CreatePreference", pref).name();
    v1::CreateGoalScoreRequest score;
    score.set_parent(parent);
    score.mutable_goal_score()->set_goal(s.goal);
    score.mutable_goal_score()->set_score_type(v1::INITIAL);
    score.mutable_goal_score()->set_score(-1);
    *score.mutable_goal_score()->mutable_provenance() = NurseProvenance();
    s.goal_score = SystemCall<v1::GoalScore>("CreateGoalScore", score).name();
    v1::UpdatePrioritiesRequest pri;
    pri.mutable_priorities()->set_name(parent + "/priorities");
    pri.mutable_priorities()->set_etag(Etag("GetPriorities", parent + "/priorities"));  // "" when none yet
    pri.mutable_priorities()->add_items(s.goal);
    *pri.mutable_priorities()->mutable_provenance() = NurseProvenance();
    SystemCall<v1::Priorities>("UpdatePriorities", pri);
    return s;
  }

  std::string Etag(const std::string& get_method, const std::string& name) {
    v1::GetResourceRequest req;
    req.set_name(name);
    CallResult r = Call(get_method, req, system_);
    EXPECT_TRUE(r.status.ok()) << get_method << ": " << r.status;
    // etag is field 41 of every resource.
    google::protobuf::UnknownFieldSet fields;
    EXPECT_TRUE(fields.ParseFromString(r.response));
    for (int i = 0; i < fields.field_count(); ++i) {
      if (fields.field(i).number() == 41) return fields.field(i).length_delimited();
    }
    return "";
  }

  static std::vector<Rpc> Rpcs() {
    // In an order where every write of the table succeeds once on a fresh
    // seed (priorities before what they list is retracted, scores before
    // their goal is).
    std::vector<Rpc> out;
    out.push_back({"GetPriorities", "List", 'r', true, false});
    out.push_back({"UpdatePriorities", "List", 'u', false, true});
    out.push_back({"ListPrioritiesVersions", "List", 'r', true, false});
    out.push_back({"GetPatientSummary", "", 'r', false, false});
    for (const auto& [res, type] : std::vector<std::pair<std::string, std::string>>{{"GoalScore", "Observation"},
                                                                                    {"WhatMatters", "Observation"},
                                                                                    {"Preference", "Observation"},
                                                                                    {"Goal", "Goal"}}) {
      const std::string plural = res == "WhatMatters" ? res : res + "s";
      out.push_back({"Create" + res, type, 'c', false, true});
      out.push_back({"Get" + res, type, 'r', true, false});
      out.push_back({"List" + plural, type, 's', false, false});
      out.push_back({"Update" + res, type, 'u', false, true});
      out.push_back({"Retract" + res, type, 'd', false, true});
      out.push_back({"List" + res + "Versions", type, 'r', true, false});
    }
    return out;
  }

  // The request of `rpc` against `s`'s data (fresh etags for writes).
  std::unique_ptr<google::protobuf::Message> Request(const Rpc& rpc, const Seed& s) {
    const std::string parent = "patients/" + s.patient;
    const std::string& m = rpc.method;
    auto name_of = [&]() -> std::string {
      if (absl::StrContains(m, "GoalScore")) return s.goal_score;
      if (absl::StrContains(m, "WhatMatters")) return s.what_matters;
      if (absl::StrContains(m, "Preference")) return s.preference;
      if (absl::StrContains(m, "Priorities")) return parent + "/priorities";
      return s.goal;
    };
    auto get_of = [&]() {
      if (absl::StrContains(m, "GoalScore")) return std::string("GetGoalScore");
      if (absl::StrContains(m, "WhatMatters")) return std::string("GetWhatMatters");
      if (absl::StrContains(m, "Preference")) return std::string("GetPreference");
      if (absl::StrContains(m, "Priorities")) return std::string("GetPriorities");
      return std::string("GetGoal");
    };
    if (m == "GetPatientSummary") {
      auto r = std::make_unique<v1::GetPatientSummaryRequest>();
      r->set_parent(parent);
      return r;
    }
    if (absl::StartsWith(m, "Get")) {
      auto r = std::make_unique<v1::GetResourceRequest>();
      r->set_name(name_of());
      return r;
    }
    if (absl::EndsWith(m, "Versions")) {
      auto r = std::make_unique<v1::ListVersionsRequest>();
      r->set_name(name_of());
      return r;
    }
    if (absl::StartsWith(m, "Retract")) {
      auto r = std::make_unique<v1::RetractRequest>();
      r->set_name(name_of());
      r->set_etag(Etag(get_of(), name_of()));
      r->set_reason("entered in error");  // retracted_by: the caller, set by the server
      return r;
    }
    if (m == "CreateWhatMatters") {
      auto r = std::make_unique<v1::CreateWhatMattersRequest>();
      r->set_parent(parent);
      *r->mutable_what_matters() = ValidWhatMatters("Another secret statement");
      return r;
    }
    if (m == "CreateGoal") {
      auto r = std::make_unique<v1::CreateGoalRequest>();
      r->set_parent(parent);
      *r->mutable_goal() = ValidGoal("Another secret goal");
      return r;
    }
    if (m == "CreatePreference") {
      auto r = std::make_unique<v1::CreatePreferenceRequest>();
      r->set_parent(parent);
      *r->mutable_preference() = ValidPreference();
      return r;
    }
    if (m == "CreateGoalScore") {
      auto r = std::make_unique<v1::CreateGoalScoreRequest>();
      r->set_parent(parent);
      r->mutable_goal_score()->set_goal(s.goal);
      r->mutable_goal_score()->set_score_type(v1::PRACTITIONER_FOLLOW_UP);
      r->mutable_goal_score()->set_score(1);
      *r->mutable_goal_score()->mutable_provenance() = NurseProvenance();
      return r;
    }
    if (m == "ListWhatMatters") {
      auto r = std::make_unique<v1::ListWhatMattersRequest>();
      r->set_parent(parent);
      return r;
    }
    if (m == "ListGoals") {
      auto r = std::make_unique<v1::ListGoalsRequest>();
      r->set_parent(parent);
      return r;
    }
    if (m == "ListPreferences") {
      auto r = std::make_unique<v1::ListPreferencesRequest>();
      r->set_parent(parent);
      return r;
    }
    if (m == "ListGoalScores") {
      auto r = std::make_unique<v1::ListGoalScoresRequest>();
      r->set_parent(parent);
      return r;
    }
    const std::string etag = Etag(get_of(), name_of());
    if (m == "UpdateWhatMatters") {
      auto r = std::make_unique<v1::UpdateWhatMattersRequest>();
      r->mutable_what_matters()->set_name(name_of());
      r->mutable_what_matters()->set_etag(etag);
      r->mutable_what_matters()->set_statement("Changed secret statement");
      *r->mutable_what_matters()->mutable_provenance() = NurseProvenance();
      r->mutable_update_mask()->add_paths("statement");
      return r;
    }
    if (m == "UpdateGoal") {
      auto r = std::make_unique<v1::UpdateGoalRequest>();
      r->mutable_goal()->set_name(name_of());
      r->mutable_goal()->set_etag(etag);
      r->mutable_goal()->set_achievement_status(v1::IMPROVING);
      *r->mutable_goal()->mutable_provenance() = NurseProvenance();
      r->mutable_update_mask()->add_paths("achievement_status");
      return r;
    }
    if (m == "UpdatePreference") {
      auto r = std::make_unique<v1::UpdatePreferenceRequest>();
      r->mutable_preference()->set_name(name_of());
      r->mutable_preference()->set_etag(etag);
      r->mutable_preference()->set_value_text("Changed secret preference");
      *r->mutable_preference()->mutable_provenance() = NurseProvenance();
      r->mutable_update_mask()->add_paths("value_text");
      return r;
    }
    if (m == "UpdateGoalScore") {
      auto r = std::make_unique<v1::UpdateGoalScoreRequest>();
      r->mutable_goal_score()->set_name(name_of());
      r->mutable_goal_score()->set_etag(etag);
      r->mutable_goal_score()->set_score(2);
      *r->mutable_goal_score()->mutable_provenance() = NurseProvenance();
      r->mutable_update_mask()->add_paths("score");
      return r;
    }
    if (m == "UpdatePriorities") {
      auto r = std::make_unique<v1::UpdatePrioritiesRequest>();
      r->mutable_priorities()->set_name(name_of());
      r->mutable_priorities()->set_etag(etag);
      r->mutable_priorities()->add_items(s.what_matters);
      *r->mutable_priorities()->mutable_provenance() = NurseProvenance();
      return r;
    }
    ADD_FAILURE() << "no request for " << m;
    return std::make_unique<v1::GetResourceRequest>();
  }

  // Everything stored for `s.patient`, every version, read with the system token.
  std::string Snapshot(const Seed& s) {
    const std::string parent = "patients/" + s.patient;
    std::string out;
    auto add = [&](const std::string& method, const google::protobuf::Message& req) {
      CallResult r = Call(method, req, system_);
      EXPECT_TRUE(r.status.ok()) << method << ": " << r.status;
      absl::StrAppend(&out, method, ":", absl::BytesToHexString(r.response), "\n");
    };
    v1::ListWhatMattersRequest wm;
    wm.set_parent(parent);
    wm.mutable_filter()->set_show_retracted(true);
    wm.set_page_size(100);
    add("ListWhatMatters", wm);
    v1::ListGoalsRequest goals;
    goals.set_parent(parent);
    goals.mutable_filter()->set_show_retracted(true);
    goals.set_page_size(100);
    add("ListGoals", goals);
    v1::ListPreferencesRequest prefs;
    prefs.set_parent(parent);
    prefs.mutable_filter()->set_show_retracted(true);
    prefs.set_page_size(100);
    add("ListPreferences", prefs);
    v1::ListGoalScoresRequest scores;
    scores.set_parent(parent);
    scores.mutable_filter()->set_show_retracted(true);
    scores.set_page_size(100);
    add("ListGoalScores", scores);
    for (const auto& [method, name] :
         std::vector<std::pair<std::string, std::string>>{{"ListWhatMattersVersions", s.what_matters},
                                                          {"ListGoalVersions", s.goal},
                                                          {"ListPreferenceVersions", s.preference},
                                                          {"ListGoalScoreVersions", s.goal_score},
                                                          {"ListPrioritiesVersions", parent + "/priorities"}}) {
      v1::ListVersionsRequest v;
      v.set_name(name);
      v.set_page_size(100);
      add(method, v);
    }
    return out;
  }

  std::string Log() { return ReadFile(server_->log_path()); }

  TempDir dir_;
  std::unique_ptr<ServerProcess> server_;
  std::shared_ptr<grpc::Channel> channel_;
  std::string system_;
  Seed a_, b_;
};

// Does `scope` (space-separated) grant `permission` on `type` (the test's own
// model, independent of the server's)?
bool Grants(const std::string& scopes, const std::string& type, char permission) {
  if (type.empty())
    return Grants(scopes, "Goal", 'r') && Grants(scopes, "Observation", 'r') && Grants(scopes, "List", 'r');
  for (absl::string_view scope : absl::StrSplit(scopes, ' ', absl::SkipEmpty())) {
    if (absl::StrContains(scope, "?")) continue;
    const size_t slash = scope.find('/'), dot = scope.find('.');
    if (slash == absl::string_view::npos || dot == absl::string_view::npos) continue;
    const absl::string_view t = scope.substr(slash + 1, dot - slash - 1);
    std::string perms(scope.substr(dot + 1));
    if (perms == "read") perms = "rs";
    if (perms == "write") perms = "cud";
    if (perms == "*") perms = "cruds";
    if ((t == "*" || t == type) && perms.find(permission) != std::string::npos) return true;
  }
  return false;
}

// Stops the server (it must exit 0) and reads its audit trail from the store.
std::vector<storage::AuditRecord> StopAndReadAudit(ServerProcess& server, const std::string& data_dir) {
  const int status = server.Terminate();
  EXPECT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0);
  storage::StoreOptions options;
  options.path = data_dir;
  auto store = storage::Store::Open(options);
  EXPECT_TRUE(store.ok()) << store.status();
  std::vector<storage::AuditRecord> audits;
  if (!store.ok()) return audits;
  EXPECT_TRUE((*store)
                  ->NewReader()
                  ->ScanAudit(0,
                              [&](const storage::AuditRecord& a) {
                                audits.push_back(a);
                                return true;
                              })
                  .ok());
  return audits;
}

int CountOutcome(const std::vector<storage::AuditRecord>& audits, absl::string_view detail) {
  int n = 0;
  for (const auto& a : audits) n += a.outcome() == 4 && a.outcome_detail() == detail ? 1 : 0;
  return n;
}

TEST_F(GrpcAuthTest, BadTokensAreUnauthenticatedOnEveryRpc) {
  const std::string before_a = Snapshot(a_), before_b = Snapshot(b_);
  const std::string good = SignToken({"system/*.cruds", ""});
  const std::string tampered = TamperPayload(good);
  const std::string payload = TokenPayload(good);
  constexpr char kHeaderNone[] = R"({"alg":"none","typ":"JWT"})";
  struct Bad {
    std::string label;
    std::string header;  // the whole authorization value; "" = no header
  };
  const std::vector<Bad> bad = {
      {"no token", ""},
      {"empty bearer", "Bearer "},
      {"basic scheme", "Basic dXNlcjpwYXNz"},
      {"bare token, no scheme", good},
      {"garbage", "Bearer not-a-token"},
      {"expired", "Bearer " + SignToken({.scope = "system/*.cruds", .exp_offset = -3600})},
      {"wrong issuer", "Bearer " + SignToken({.scope = "system/*.cruds", .iss = "https://evil.test"})},
      {"wrong audience", "Bearer " + SignToken({.scope = "system/*.cruds", .aud = "https://other.test"})},
      {"bad signature", "Bearer " + tampered},
      {"other secret", "Bearer " + SignToken({"system/*.cruds", ""}, std::string(40, 'x'))},
      {"alg none", "Bearer " + WithHeader(good, kHeaderNone, /*keep_signature=*/false)},
      {"alg none with signature", "Bearer " + WithHeader(good, kHeaderNone, /*keep_signature=*/true)},
  };
  for (const Rpc& rpc : Rpcs()) {
    auto req = Request(rpc, b_);
    for (const Bad& b : bad) {
      CallResult r = b.header.empty() ? Call(rpc.method, *req, "") : Call(rpc.method, *req, "", &b.header);
      EXPECT_EQ(r.status.code(), Code::kUnauthenticated) << rpc.method << " / " << b.label << ": " << r.status;
      EXPECT_TRUE(r.response.empty());
    }
  }
  EXPECT_EQ(Snapshot(a_), before_a);
  EXPECT_EQ(Snapshot(b_), before_b);
  // Nothing of the tokens or the patients' words reaches the log.
  const std::string log = Log();
  EXPECT_FALSE(absl::StrContains(log, payload));
  EXPECT_FALSE(absl::StrContains(log, tampered));
  EXPECT_FALSE(absl::StrContains(log, "Secret"));
  EXPECT_TRUE(absl::StrContains(log, "request refused"));
  EXPECT_TRUE(absl::StrContains(log, "UNAUTHENTICATED"));
  // Every refused call left an audit record.
  const auto audits = StopAndReadAudit(*server_, dir_.path() + "/data");
  EXPECT_EQ(CountOutcome(audits, "UNAUTHENTICATED"), static_cast<int>(Rpcs().size() * bad.size()));
}

TEST_F(GrpcAuthTest, PatientTokenCannotReachAnotherPatientOnAnyRpc) {
  const std::string before_b = Snapshot(b_);
  for (const char* scope :
       {"patient/*.cruds", "patient/*.*", "patient/Goal.cruds patient/Observation.cruds patient/List.cruds"}) {
    const std::string token_a = SignToken({scope, kA});
    for (const Rpc& rpc : Rpcs()) {
      auto req = Request(rpc, b_);
      CallResult r = Call(rpc.method, *req, token_a);
      EXPECT_EQ(r.status.code(), rpc.by_name ? Code::kNotFound : Code::kPermissionDenied)
          << scope << " " << rpc.method << ": " << r.status;
      EXPECT_TRUE(r.response.empty()) << rpc.method;
      if (rpc.by_name) {
        // The same answer as for an id that does not exist: nothing leaks.
        std::string existing = r.status.ToString();
        EXPECT_FALSE(absl::StrContains(existing, "Secret"));
      }
    }
  }
  // A's page token cannot page B's data either.
  {
    const std::string token_a = SignToken({"patient/*.cruds", kA});
    v1::CreateGoalRequest more;
    more.set_parent("patients/" + std::string(kA));
    *more.mutable_goal() = ValidGoal("A second goal of A");
    ASSERT_TRUE(Call("CreateGoal", more, token_a).status.ok());
    v1::ListGoalsRequest list;
    list.set_parent("patients/" + std::string(kA));
    list.set_page_size(1);
    CallResult first = Call("ListGoals", list, token_a);
    ASSERT_TRUE(first.status.ok()) << first.status;
    v1::ListGoalsResponse page;
    ASSERT_TRUE(page.ParseFromString(first.response));
    ASSERT_FALSE(page.next_page_token().empty());
    list.set_parent("patients/" + std::string(kB));
    list.set_page_token(page.next_page_token());
    EXPECT_EQ(Call("ListGoals", list, token_a).status.code(), Code::kPermissionDenied);
    // Even a system token cannot move a page token to another parent.
    EXPECT_EQ(Call("ListGoals", list, system_).status.code(), Code::kInvalidArgument);
  }
  EXPECT_EQ(Snapshot(b_), before_b);
  // NOT_FOUND for another patient's resource reads exactly like a missing one.
  const std::string token_a = SignToken({"patient/*.cruds", kA});
  v1::GetResourceRequest get;
  get.set_name(b_.goal);
  const absl::Status hidden = Call("GetGoal", get, token_a).status;
  const std::string missing_name = "patients/" + std::string(kB) + "/goals/doesnotexist";
  get.set_name(missing_name);
  const absl::Status missing = Call("GetGoal", get, system_).status;
  EXPECT_EQ(hidden.code(), missing.code());
  EXPECT_EQ(std::string(hidden.message()),
            absl::StrReplaceAll(std::string(missing.message()), {{missing_name, b_.goal}}));
  const std::string log = Log();
  EXPECT_FALSE(absl::StrContains(log, "Secret"));
  EXPECT_FALSE(absl::StrContains(log, token_a.substr(token_a.find('.') + 1, 20)));
  EXPECT_TRUE(absl::StrContains(log, "PERMISSION_DENIED"));
}

TEST_F(GrpcAuthTest, CorrectPatientTokenWorksOnEveryRpc) {
  const std::string token_a = SignToken({"patient/*.cruds openid fhirUser", kA});
  for (const Rpc& rpc : Rpcs()) {
    auto req = Request(rpc, a_);
    CallResult r = Call(rpc.method, *req, token_a);
    EXPECT_TRUE(r.status.ok()) << rpc.method << ": " << r.status;
  }
  // Summary and lists hold only A's data.
  v1::GetPatientSummaryRequest summary;
  summary.set_parent("patients/" + std::string(kA));
  CallResult r = Call("GetPatientSummary", summary, token_a);
  ASSERT_TRUE(r.status.ok());
  EXPECT_FALSE(absl::StrContains(r.response, "/" + std::string(kB) + "/"));
}

TEST_F(GrpcAuthTest, MissingScopeIsPermissionDeniedAndWritesNothing) {
  const std::vector<std::string> scopes = {
      "patient/Goal.rs",                                      // read Goal only
      "patient/Observation.read",                             // v1 read
      "patient/Goal.r patient/Observation.r patient/List.r",  // reads by id, no search
      "patient/List.s user/Goal.s",                           // search only
      "openid fhirUser launch/patient",                       // no resource scope
      "patient/Goal.rs?category=x patient/*.cruds?status=y",  // filters grant nothing yet
      "user/Observation.rs",                                  // user read
  };
  const std::string before_a = Snapshot(a_), before_b = Snapshot(b_);
  for (const std::string& scope : scopes) {
    const std::string token = SignToken({scope, kA});
    for (const Rpc& rpc : Rpcs()) {
      auto req = Request(rpc, a_);
      CallResult r = Call(rpc.method, *req, token);
      if (Grants(scope, rpc.type, rpc.permission)) {
        EXPECT_TRUE(r.status.ok()) << scope << " " << rpc.method << ": " << r.status;
      } else {
        EXPECT_EQ(r.status.code(), Code::kPermissionDenied) << scope << " " << rpc.method << ": " << r.status;
        EXPECT_TRUE(r.response.empty());
      }
    }
  }
  EXPECT_EQ(Snapshot(a_), before_a);
  EXPECT_EQ(Snapshot(b_), before_b);

  // Write scopes without read: writes go through, reads are refused.
  const std::string writer = SignToken({"patient/*.cud", kA});
  for (const Rpc& rpc : Rpcs()) {
    auto req = Request(rpc, a_);
    CallResult r = Call(rpc.method, *req, writer);
    if (rpc.write) {
      EXPECT_TRUE(r.status.ok()) << rpc.method << ": " << r.status;
    } else {
      EXPECT_EQ(r.status.code(), Code::kPermissionDenied) << rpc.method << ": " << r.status;
    }
  }
}

TEST_F(GrpcAuthTest, SystemAndUserScopesWorkAcrossPatients) {
  for (const char* scope : {"system/*.cruds", "user/*.cruds", "system/*.*"}) {
    // A patient claim does not narrow system/ or user/ scopes.
    for (const std::string& patient : {std::string(), std::string(kA)}) {
      const std::string token = SignToken({scope, patient});
      for (const std::string& who : {std::string(kA), std::string(kB)}) {
        const Seed s = SeedPatient(who);  // fresh: the table retracts what it uses
        for (const Rpc& rpc : Rpcs()) {
          auto req = Request(rpc, s);
          CallResult r = Call(rpc.method, *req, token);
          EXPECT_TRUE(r.status.ok()) << scope << " " << who << " " << rpc.method << ": " << r.status;
        }
      }
    }
  }
  // user/Observation.cruds: every Observation RPC, nothing on Goal or List.
  const std::string obs = SignToken({"user/Observation.cruds", ""});
  for (const Rpc& rpc : Rpcs()) {
    auto req = Request(rpc, b_);
    CallResult r = Call(rpc.method, *req, obs);
    if (rpc.type == "Observation") {
      EXPECT_TRUE(r.status.ok()) << rpc.method << ": " << r.status;
    } else {
      EXPECT_EQ(r.status.code(), Code::kPermissionDenied) << rpc.method << ": " << r.status;
    }
  }
}

// ---------------------------------------------------------------- the recorder rule
//
// Who recorded a write is the authenticated caller, never what the request
// body says (domain/recorder.h); a client acting for someone names them in
// on_behalf_of, and both are kept.

// The description of the field violation on `field`, or "" if none.
std::string ViolationOn(const absl::Status& status, const std::string& field) {
  const google::rpc::BadRequest bad = GetFieldViolations(status);
  for (const auto& v : bad.field_violations()) {
    if (v.field() == field) return v.description();
  }
  return "";
}

TEST_F(GrpcAuthTest, TheRecorderIsTheCallerNeverTheRequestBody) {
  const std::string dev = SignToken({.scope = "user/*.cruds", .sub = "Practitioner/dev"});
  v1::CreateGoalRequest create;
  create.set_parent(std::string("patients/") + kA);
  *create.mutable_goal() = ValidGoal("Walk to the chapel");
  create.mutable_goal()->mutable_provenance()->mutable_recorded_by()->set_practitioner_id("rn-17");
  // A token for dev cannot record as rn-17: refused, with the way to say it.
  CallResult as_other = Call("CreateGoal", create, dev);
  EXPECT_EQ(as_other.status.code(), Code::kInvalidArgument) << as_other.status;
  const std::string why = ViolationOn(as_other.status, "goal.provenance.recorded_by.practitioner_id");
  EXPECT_THAT(why, ::testing::HasSubstr("(dev)"));
  EXPECT_THAT(why, ::testing::HasSubstr("goal.provenance.on_behalf_of"));
  v1::ListGoalsRequest list;
  list.set_parent(create.parent());
  EXPECT_EQ(SystemCall<v1::ListGoalsResponse>("ListGoals", list).goals_size(), 1) << "nothing written";

  // Left empty: the caller, with the display name and role the request gave.
  create.mutable_goal()->mutable_provenance()->mutable_recorded_by()->clear_practitioner_id();
  CallResult created = Call("CreateGoal", create, dev);
  ASSERT_TRUE(created.status.ok()) << created.status;
  v1::Goal goal;
  ASSERT_TRUE(goal.ParseFromString(created.response));
  EXPECT_EQ(goal.provenance().recorded_by().practitioner_id(), "dev");
  EXPECT_EQ(goal.provenance().recorded_by().display_name(), "Ana Ruiz");
  EXPECT_FALSE(goal.provenance().has_on_behalf_of());

  // An update and a retraction follow the same rule.
  v1::UpdateGoalRequest update;
  *update.mutable_goal() = goal;
  update.mutable_goal()->set_description("Walk to the chapel and back");
  update.mutable_goal()->mutable_provenance()->mutable_recorded_by()->set_practitioner_id("rn-17");
  CallResult updated = Call("UpdateGoal", update, dev);
  EXPECT_EQ(updated.status.code(), Code::kInvalidArgument);
  EXPECT_NE(ViolationOn(updated.status, "goal.provenance.recorded_by.practitioner_id"), "");
  v1::RetractRequest retract;
  retract.set_name(goal.name());
  retract.mutable_retracted_by()->set_practitioner_id("rn-17");
  CallResult retracted = Call("RetractGoal", retract, dev);
  EXPECT_EQ(retracted.status.code(), Code::kInvalidArgument);
  EXPECT_THAT(ViolationOn(retracted.status, "retracted_by.practitioner_id"), ::testing::HasSubstr("on_behalf_of"));
  v1::GetResourceRequest get;
  get.set_name(goal.name());
  EXPECT_EQ(SystemCall<v1::Goal>("GetGoal", get).version(), 1) << "nothing written";
  v1::UpdatePrioritiesRequest priorities;
  priorities.mutable_priorities()->set_name(std::string("patients/") + kA + "/priorities");
  priorities.mutable_priorities()->set_etag(Etag("GetPriorities", priorities.priorities().name()));
  *priorities.mutable_priorities()->mutable_provenance() = NurseProvenance();  // names rn-17
  EXPECT_EQ(Call("UpdatePriorities", priorities, dev).status.code(), Code::kInvalidArgument);

  // fhirUser (absolute, as SMART servers send it) wins over sub.
  const std::string md = SignToken(
      {.scope = "user/*.cruds", .sub = "auth0|5f1c", .fhir_user = "https://ehr.example/fhir/Practitioner/md-4"});
  create.clear_request_id();
  CallResult by_md = Call("CreateGoal", create, md);
  ASSERT_TRUE(by_md.status.ok()) << by_md.status;
  ASSERT_TRUE(goal.ParseFromString(by_md.response));
  EXPECT_EQ(goal.provenance().recorded_by().practitioner_id(), "md-4");
  // A token that names no recorder reads but does not write.
  const std::string nobody = SignToken({.scope = "user/*.cruds", .sub = "auth0|5f1c"});
  EXPECT_EQ(Call("CreateGoal", create, nobody).status.code(), Code::kPermissionDenied);
  EXPECT_TRUE(Call("GetGoal", get, nobody).status.ok());
}

TEST_F(GrpcAuthTest, AWriteWithoutProvenanceIsTheCallersAndSaidByNotStated) {
  const std::string dev = SignToken({.scope = "user/*.cruds", .sub = "Practitioner/dev"});
  v1::CreateGoalRequest create;
  create.set_parent(std::string("patients/") + kA);
  *create.mutable_goal() = ValidGoal("Sleep through the night");
  create.mutable_goal()->clear_provenance();
  CallResult created = Call("CreateGoal", create, dev);
  ASSERT_TRUE(created.status.ok()) << created.status;
  v1::Goal goal;
  ASSERT_TRUE(goal.ParseFromString(created.response));
  EXPECT_EQ(goal.provenance().recorded_by().practitioner_id(), "dev") << "nothing to state: the caller records";
  EXPECT_EQ(goal.provenance().said_by().kind(), v1::Speaker::NOT_STATED) << "never assumed to be the patient";
}

TEST_F(GrpcAuthTest, OnBehalfOfIsKeptNextToTheCaller) {
  // An EHR plugin's system token, recording for the clinician signed in to the EHR.
  const std::string plugin = SignToken({.scope = "system/*.cruds", .sub = "ehr-plugin"});
  v1::CreatePreferenceRequest create;
  create.set_parent(std::string("patients/") + kA);
  *create.mutable_preference() = ValidPreference();
  v1::Provenance* p = create.mutable_preference()->mutable_provenance();
  p->clear_recorded_by();
  p->mutable_on_behalf_of()->set_practitioner_id("rn-17");
  p->mutable_on_behalf_of()->set_display_name("Ana Ruiz");
  p->mutable_on_behalf_of()->set_role("RN");
  CallResult created = Call("CreatePreference", create, plugin);
  ASSERT_TRUE(created.status.ok()) << created.status;
  v1::Preference pref;
  ASSERT_TRUE(pref.ParseFromString(created.response));
  EXPECT_EQ(pref.provenance().recorded_by().practitioner_id(), "ehr-plugin");
  EXPECT_EQ(pref.provenance().on_behalf_of().practitioner_id(), "rn-17");
  EXPECT_EQ(pref.provenance().on_behalf_of().display_name(), "Ana Ruiz");
  v1::GetResourceRequest get;
  get.set_name(pref.name());
  const v1::Preference stored = SystemCall<v1::Preference>("GetPreference", get);
  EXPECT_EQ(stored.provenance().recorded_by().practitioner_id(), "ehr-plugin");
  EXPECT_EQ(stored.provenance().on_behalf_of().practitioner_id(), "rn-17");

  // on_behalf_of needs an id; naming the caller itself adds nothing and is dropped.
  p->mutable_on_behalf_of()->clear_practitioner_id();
  create.clear_request_id();
  CallResult no_id = Call("CreatePreference", create, plugin);
  EXPECT_EQ(no_id.status.code(), Code::kInvalidArgument);
  EXPECT_NE(ViolationOn(no_id.status, "preference.provenance.on_behalf_of.practitioner_id"), "");
  p->mutable_on_behalf_of()->set_practitioner_id("ehr-plugin");
  CallResult self = Call("CreatePreference", create, plugin);
  ASSERT_TRUE(self.status.ok()) << self.status;
  ASSERT_TRUE(pref.ParseFromString(self.response));
  EXPECT_FALSE(pref.provenance().has_on_behalf_of());
  EXPECT_EQ(pref.provenance().recorded_by().display_name(), "Ana Ruiz");

  // A retraction for the clinician: the retracted version says both, and not
  // the on_behalf_of of the version before.
  v1::RetractRequest retract;
  retract.set_name(stored.name());
  retract.set_reason("wrong patient");
  CallResult retracted = Call("RetractPreference", retract, plugin);
  ASSERT_TRUE(retracted.status.ok()) << retracted.status;
  ASSERT_TRUE(pref.ParseFromString(retracted.response));
  EXPECT_EQ(pref.state(), v1::RETRACTED);
  EXPECT_EQ(pref.provenance().recorded_by().practitioner_id(), "ehr-plugin");
  EXPECT_FALSE(pref.provenance().has_on_behalf_of());
  create.clear_request_id();
  p->mutable_on_behalf_of()->set_practitioner_id("rn-17");
  ASSERT_TRUE(pref.ParseFromString(Call("CreatePreference", create, plugin).response));
  retract.set_name(pref.name());
  retract.mutable_on_behalf_of()->set_practitioner_id("md-4");
  retracted = Call("RetractPreference", retract, plugin);
  ASSERT_TRUE(retracted.status.ok()) << retracted.status;
  ASSERT_TRUE(pref.ParseFromString(retracted.response));
  EXPECT_EQ(pref.provenance().recorded_by().practitioner_id(), "ehr-plugin");
  EXPECT_EQ(pref.provenance().on_behalf_of().practitioner_id(), "md-4");
}

TEST_F(GrpcAuthTest, MalformedNamesAreInvalidArgumentAfterAuthentication) {
  const std::string token_a = SignToken({"patient/*.cruds", kA});
  v1::GetResourceRequest get;
  get.set_name("patients/p A/goals/x");
  EXPECT_EQ(Call("GetGoal", get, token_a).status.code(), Code::kInvalidArgument);
  EXPECT_EQ(Call("GetGoal", get, system_).status.code(), Code::kInvalidArgument);
  EXPECT_EQ(Call("GetGoal", get, "").status.code(), Code::kUnauthenticated);
  v1::CreateGoalRequest create;
  create.set_parent("nonsense");
  EXPECT_EQ(Call("CreateGoal", create, token_a).status.code(), Code::kInvalidArgument);
  EXPECT_EQ(Call("CreateGoal", create, SignToken({"patient/Goal.r", kA})).status.code(), Code::kInvalidArgument);
}

}  // namespace
}  // namespace wmty::testing

namespace wmty::testing {
namespace {

// Every call leaves an audit record (refused ones too), read back from the
// store after the server stops; none holds patient text or tokens.
TEST_F(GrpcAuthTest, EveryCallIsAuditedWithoutPatientText) {
  const std::string token_a = SignToken({"patient/*.cruds", kA});
  v1::GetResourceRequest b_goal;
  b_goal.set_name(b_.goal);
  EXPECT_EQ(Call("GetGoal", b_goal, "").status.code(), Code::kUnauthenticated);
  EXPECT_EQ(Call("GetGoal", b_goal, token_a).status.code(), Code::kNotFound);
  v1::GetResourceRequest a_goal;
  a_goal.set_name(a_.goal);
  EXPECT_TRUE(Call("GetGoal", a_goal, token_a).status.ok());

  const std::string data_dir = dir_.path() + "/data";
  const int status = server_->Terminate();
  ASSERT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0);
  storage::StoreOptions options;
  options.path = data_dir;
  auto store = storage::Store::Open(options);
  ASSERT_TRUE(store.ok()) << store.status();
  std::vector<storage::AuditRecord> audits;
  ASSERT_TRUE((*store)
                  ->NewReader()
                  ->ScanAudit(0,
                              [&](const storage::AuditRecord& a) {
                                audits.push_back(a);
                                return true;
                              })
                  .ok());
  // The seeding (system token) and the three calls above, in order.
  ASSERT_GE(audits.size(), 3u);
  const auto& unauthenticated = audits[audits.size() - 3];
  const auto& other_patient = audits[audits.size() - 2];
  const auto& own = audits[audits.size() - 1];
  EXPECT_EQ(unauthenticated.outcome(), 4);
  EXPECT_EQ(unauthenticated.outcome_detail(), "UNAUTHENTICATED");
  EXPECT_EQ(unauthenticated.agent(), "");
  EXPECT_EQ(other_patient.outcome(), 4);
  EXPECT_EQ(other_patient.outcome_detail(), "NOT_FOUND");
  EXPECT_EQ(other_patient.agent(), "Practitioner/rn-17");
  EXPECT_EQ(other_patient.patient_id(), kB);
  EXPECT_EQ(other_patient.resource_type(), "Goal");
  EXPECT_EQ(other_patient.interaction(), "read");
  EXPECT_EQ(own.outcome(), 0);
  EXPECT_EQ(own.patient_id(), kA);
  EXPECT_EQ(own.resource_id(), a_.goal.substr(a_.goal.rfind('/') + 1));
  EXPECT_EQ(own.source(), "grpc");
  EXPECT_FALSE(own.remote().empty());
  int creates = 0;
  for (const auto& a : audits) {
    const std::string all = a.DebugString();
    EXPECT_EQ(all.find("Secret"), std::string::npos) << all;
    EXPECT_EQ(all.find(token_a), std::string::npos);
    if (a.interaction() == "create" && a.outcome() == 0) {
      ++creates;
      EXPECT_FALSE(a.resource_id().empty());
    }
  }
  EXPECT_GE(creates, 8);  // both patients' seeded resources
}

}  // namespace
}  // namespace wmty::testing
