// End-to-end tests of the gRPC API: the real wmtyd (own data dir, port 0)
// driven through the real C++ client library, plus hand-built request bytes
// where the client would refuse to send them (invalid UTF-8, malformed
// messages). Every refused request is also checked to have written nothing:
// the resource lists stay empty / versions stay put, and the server's own
// committed-change count (logged at "serving" and "stopped") moves only by the
// writes the test expects.
#include <signal.h>
#include <sys/wait.h>

#include <atomic>
#include <map>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "integration/integration_util.h"
#include "support/test_support.h"

namespace wmty::testing {
namespace {

using ::testing::Contains;
using ::testing::ElementsAre;
using ::testing::IsEmpty;
using ::testing::Not;
using ::testing::SizeIs;
using Code = absl::StatusCode;

constexpr char kParent[] = "patients/p1";
constexpr char kService[] = "/wmty.v1.WhatMattersService/";

class GrpcApiTest : public ::testing::Test {
 protected:
  void SetUp() override { Start(); }

  void Start(std::vector<std::string> flags = {}) {
    auto server = ServerProcess::Start(data_dir(), std::move(flags));
    ASSERT_TRUE(server.ok()) << server.status();
    server_ = std::move(*server);
    client_ = server_->NewClient();
  }
  // Stops the running server cleanly and starts it again with `flags`.
  void Restart(std::vector<std::string> flags = {}) {
    client_.reset();
    const int status = server_->Terminate();
    ASSERT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0) << "wait status " << status;
    Start(std::move(flags));
  }

  std::string data_dir() const { return dir_.path() + "/data"; }

  // Stops the server cleanly (it must exit 0) and returns how many changes it
  // committed while it ran, from its own log; -1 if that cannot be told.
  int64_t StopAndCountWrites() {
    client_.reset();
    const int status = server_->Terminate();
    EXPECT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0) << "wait status " << status;
    const std::string log = ReadFile(server_->log_path());
    auto serving = LoggedLastSequence(log, "serving");
    auto stopped = LoggedLastSequence(log, "stopped");
    if (!serving.has_value() || !stopped.has_value()) {
      ADD_FAILURE() << "no serving/stopped line in the log:\n" << log;
      return -1;
    }
    return static_cast<int64_t>(*stopped) - static_cast<int64_t>(*serving);
  }

  // Asserts that `parent` has no resource of any kind (retracted ones included).
  void ExpectNothingStored(const std::string& parent) {
    v1::ListWhatMattersRequest wm;
    wm.set_parent(parent);
    wm.mutable_filter()->set_show_retracted(true);
    auto wms = client_->ListWhatMatters(wm);
    ASSERT_TRUE(wms.ok()) << wms.status();
    EXPECT_THAT(wms->what_matters(), IsEmpty());
    v1::ListGoalsRequest goals;
    goals.set_parent(parent);
    goals.mutable_filter()->set_show_retracted(true);
    auto gs = client_->ListGoals(goals);
    ASSERT_TRUE(gs.ok()) << gs.status();
    EXPECT_THAT(gs->goals(), IsEmpty());
    v1::ListPreferencesRequest prefs;
    prefs.set_parent(parent);
    prefs.mutable_filter()->set_show_retracted(true);
    auto ps = client_->ListPreferences(prefs);
    ASSERT_TRUE(ps.ok()) << ps.status();
    EXPECT_THAT(ps->preferences(), IsEmpty());
    v1::GetResourceRequest pri;
    pri.set_name(parent + "/priorities");
    auto p = client_->GetPriorities(pri);
    ASSERT_TRUE(p.ok()) << p.status();
    EXPECT_EQ(p->version(), 0);
  }

  v1::WhatMatters CreateWhatMatters(const v1::WhatMatters& wm = ValidWhatMatters(),
                                    const std::string& parent = kParent) {
    v1::CreateWhatMattersRequest req;
    req.set_parent(parent);
    *req.mutable_what_matters() = wm;
    auto r = client_->CreateWhatMatters(req);
    EXPECT_TRUE(r.ok()) << r.status();
    return r.value_or(v1::WhatMatters());
  }
  v1::Goal CreateGoal(const v1::Goal& goal = ValidGoal(), const std::string& parent = kParent) {
    v1::CreateGoalRequest req;
    req.set_parent(parent);
    *req.mutable_goal() = goal;
    auto r = client_->CreateGoal(req);
    EXPECT_TRUE(r.ok()) << r.status();
    return r.value_or(v1::Goal());
  }
  v1::Preference CreatePreference(const v1::Preference& p = ValidPreference(), const std::string& parent = kParent) {
    v1::CreatePreferenceRequest req;
    req.set_parent(parent);
    *req.mutable_preference() = p;
    auto r = client_->CreatePreference(req);
    EXPECT_TRUE(r.ok()) << r.status();
    return r.value_or(v1::Preference());
  }
  v1::Goal GetGoal(const std::string& name) {
    v1::GetResourceRequest req;
    req.set_name(name);
    auto r = client_->GetGoal(req);
    EXPECT_TRUE(r.ok()) << r.status();
    return r.value_or(v1::Goal());
  }
  std::vector<v1::Goal> GoalVersions(const std::string& name) {
    v1::ListVersionsRequest req;
    req.set_name(name);
    auto r = client_->ListGoalVersions(req);
    EXPECT_TRUE(r.ok()) << r.status();
    if (!r.ok()) return {};
    return {r->goals().begin(), r->goals().end()};
  }
  v1::RetractRequest Retraction(const std::string& name, const std::string& reason = "entered for the wrong patient") {
    v1::RetractRequest req;
    req.set_name(name);
    req.set_reason(reason);
    req.mutable_retracted_by()->set_practitioner_id("nurse-17");
    return req;
  }

  TempDir dir_;
  std::unique_ptr<ServerProcess> server_;
  std::unique_ptr<client::Client> client_;
};

// ================================================================ happy paths

TEST_F(GrpcApiTest, WhatMattersCreateGetListUpdateRetractVersions) {
  const v1::WhatMatters created = CreateWhatMatters();
  EXPECT_TRUE(absl::StartsWith(created.name(), "patients/p1/whatMatters/")) << created.name();
  EXPECT_EQ(created.version(), 1);
  EXPECT_FALSE(created.etag().empty());
  EXPECT_EQ(created.state(), v1::ACTIVE);
  EXPECT_EQ(created.patient().id(), "p1");
  EXPECT_EQ(created.statement(), "Being home for my garden");
  EXPECT_TRUE(created.has_create_time());
  EXPECT_TRUE(created.provenance().has_said_time());

  v1::GetResourceRequest get;
  get.set_name(created.name());
  auto got = client_->GetWhatMatters(get);
  ASSERT_TRUE(got.ok()) << got.status();
  EXPECT_THAT(*got, EqualsProto(created));

  v1::ListWhatMattersRequest list;
  list.set_parent(kParent);
  auto listed = client_->ListWhatMatters(list);
  ASSERT_TRUE(listed.ok()) << listed.status();
  ASSERT_THAT(listed->what_matters(), SizeIs(1));
  EXPECT_THAT(listed->what_matters(0), EqualsProto(created));

  // Masked update: only the statement changes (the empty prompt sent along is ignored).
  v1::UpdateWhatMattersRequest masked;
  masked.mutable_what_matters()->set_name(created.name());
  masked.mutable_what_matters()->set_etag(created.etag());
  masked.mutable_what_matters()->set_statement("Being home for my garden and my dog");
  *masked.mutable_what_matters()->mutable_provenance() = NurseProvenance();
  masked.mutable_what_matters()->mutable_provenance()->mutable_recorded_by()->set_practitioner_id("nurse-22");
  masked.mutable_update_mask()->add_paths("statement");
  auto v2 = client_->UpdateWhatMatters(masked);
  ASSERT_TRUE(v2.ok()) << v2.status();
  EXPECT_EQ(v2->version(), 2);
  EXPECT_NE(v2->etag(), created.etag());
  EXPECT_EQ(v2->statement(), "Being home for my garden and my dog");
  EXPECT_EQ(v2->prompt(), created.prompt());
  EXPECT_THAT(v2->life_domains(), ElementsAre(v1::HOME_AND_DAILY_LIFE));
  EXPECT_EQ(v2->provenance().recorded_by().practitioner_id(), "nurse-22");
  EXPECT_THAT(v2->create_time(), EqualsProto(created.create_time()));

  // Without a mask every updatable field is replaced.
  v1::UpdateWhatMattersRequest full;
  *full.mutable_what_matters() = ValidWhatMatters("Getting back to my choir");
  full.mutable_what_matters()->set_name(created.name());
  full.mutable_what_matters()->set_etag(v2->etag());
  full.mutable_what_matters()->clear_life_domains();
  full.mutable_what_matters()->clear_prompt();
  auto v3 = client_->UpdateWhatMatters(full);
  ASSERT_TRUE(v3.ok()) << v3.status();
  EXPECT_EQ(v3->version(), 3);
  EXPECT_EQ(v3->statement(), "Getting back to my choir");
  EXPECT_EQ(v3->prompt(), "");
  EXPECT_THAT(v3->life_domains(), IsEmpty());

  v1::RetractRequest retract = Retraction(created.name());
  retract.set_etag(v3->etag());
  auto v4 = client_->RetractWhatMatters(retract);
  ASSERT_TRUE(v4.ok()) << v4.status();
  EXPECT_EQ(v4->version(), 4);
  EXPECT_EQ(v4->state(), v1::RETRACTED);
  EXPECT_EQ(v4->retract_reason(), "entered for the wrong patient");
  EXPECT_EQ(v4->statement(), "Getting back to my choir");

  listed = client_->ListWhatMatters(list);
  ASSERT_TRUE(listed.ok()) << listed.status();
  EXPECT_THAT(listed->what_matters(), IsEmpty());
  list.mutable_filter()->set_show_retracted(true);
  listed = client_->ListWhatMatters(list);
  ASSERT_TRUE(listed.ok()) << listed.status();
  ASSERT_THAT(listed->what_matters(), SizeIs(1));
  EXPECT_THAT(listed->what_matters(0), EqualsProto(*v4));

  got = client_->GetWhatMatters(get);
  ASSERT_TRUE(got.ok()) << got.status();
  EXPECT_THAT(*got, EqualsProto(*v4));

  v1::ListVersionsRequest versions;
  versions.set_name(created.name());
  auto history = client_->ListWhatMattersVersions(versions);
  ASSERT_TRUE(history.ok()) << history.status();
  ASSERT_THAT(history->what_matters(), SizeIs(4));
  EXPECT_THAT(history->what_matters(0), EqualsProto(created));
  EXPECT_THAT(history->what_matters(1), EqualsProto(*v2));
  EXPECT_THAT(history->what_matters(2), EqualsProto(*v3));
  EXPECT_THAT(history->what_matters(3), EqualsProto(*v4));
  EXPECT_EQ(StopAndCountWrites(), 4);
}

TEST_F(GrpcApiTest, ListWhatMattersFiltersByLifeDomain) {
  const v1::WhatMatters home = CreateWhatMatters();
  v1::WhatMatters family_wm = ValidWhatMatters("Sunday dinners with my grandchildren");
  family_wm.clear_life_domains();
  family_wm.add_life_domains(v1::FAMILY_AND_RELATIONSHIPS);
  const v1::WhatMatters family = CreateWhatMatters(family_wm);

  v1::ListWhatMattersRequest list;
  list.set_parent(kParent);
  list.add_life_domains(v1::FAMILY_AND_RELATIONSHIPS);
  auto listed = client_->ListWhatMatters(list);
  ASSERT_TRUE(listed.ok()) << listed.status();
  ASSERT_THAT(listed->what_matters(), SizeIs(1));
  EXPECT_EQ(listed->what_matters(0).name(), family.name());

  list.add_life_domains(v1::HOME_AND_DAILY_LIFE);
  listed = client_->ListWhatMatters(list);
  ASSERT_TRUE(listed.ok()) << listed.status();
  ASSERT_THAT(listed->what_matters(), SizeIs(2));
  EXPECT_EQ(listed->what_matters(0).name(), home.name());  // id order = creation order
  EXPECT_EQ(listed->what_matters(1).name(), family.name());
}

TEST_F(GrpcApiTest, GoalCreateGetListUpdateRetractVersions) {
  const v1::WhatMatters wm = CreateWhatMatters();
  v1::Goal goal = ValidGoal();
  goal.add_what_matters(wm.name());
  v1::Note* note = goal.add_notes();
  note->set_text("She said: I want to walk without the cane");
  note->set_author("nurse-17");
  const v1::Goal created = CreateGoal(goal);
  EXPECT_TRUE(absl::StartsWith(created.name(), "patients/p1/goals/")) << created.name();
  EXPECT_EQ(created.version(), 1);
  EXPECT_EQ(created.description(), goal.description());
  EXPECT_THAT(created.what_matters(), ElementsAre(wm.name()));
  EXPECT_THAT(GetGoal(created.name()), EqualsProto(created));

  v1::UpdateGoalRequest update;
  update.mutable_goal()->set_name(created.name());
  update.mutable_goal()->set_etag(created.etag());
  update.mutable_goal()->set_lifecycle_status(v1::COMPLETED);
  update.mutable_goal()->set_achievement_status(v1::ACHIEVED);
  update.mutable_goal()->set_description("ignored: not in the mask");
  *update.mutable_goal()->mutable_provenance() = NurseProvenance();
  update.mutable_update_mask()->add_paths("lifecycle_status");
  update.mutable_update_mask()->add_paths("achievement_status");
  auto v2 = client_->UpdateGoal(update);
  ASSERT_TRUE(v2.ok()) << v2.status();
  EXPECT_EQ(v2->version(), 2);
  EXPECT_EQ(v2->lifecycle_status(), v1::COMPLETED);
  EXPECT_EQ(v2->achievement_status(), v1::ACHIEVED);
  EXPECT_EQ(v2->description(), created.description());
  EXPECT_EQ(v2->notes_size(), 1);
  EXPECT_THAT(v2->what_matters(), ElementsAre(wm.name()));

  // Lifecycle filter.
  const v1::Goal other = CreateGoal(ValidGoal("Sleep through the night"));
  v1::ListGoalsRequest list;
  list.set_parent(kParent);
  list.add_lifecycle_statuses(v1::COMPLETED);
  auto listed = client_->ListGoals(list);
  ASSERT_TRUE(listed.ok()) << listed.status();
  ASSERT_THAT(listed->goals(), SizeIs(1));
  EXPECT_THAT(listed->goals(0), EqualsProto(*v2));
  list.clear_lifecycle_statuses();
  listed = client_->ListGoals(list);
  ASSERT_TRUE(listed.ok()) << listed.status();
  ASSERT_THAT(listed->goals(), SizeIs(2));
  EXPECT_EQ(listed->goals(1).name(), other.name());

  auto v3 = client_->RetractGoal(Retraction(created.name()));
  ASSERT_TRUE(v3.ok()) << v3.status();
  EXPECT_EQ(v3->version(), 3);
  EXPECT_EQ(v3->state(), v1::RETRACTED);
  listed = client_->ListGoals(list);
  ASSERT_TRUE(listed.ok()) << listed.status();
  ASSERT_THAT(listed->goals(), SizeIs(1));
  EXPECT_EQ(listed->goals(0).name(), other.name());

  const std::vector<v1::Goal> history = GoalVersions(created.name());
  ASSERT_THAT(history, SizeIs(3));
  EXPECT_THAT(history[0], EqualsProto(created));
  EXPECT_THAT(history[1], EqualsProto(*v2));
  EXPECT_THAT(history[2], EqualsProto(*v3));
  EXPECT_EQ(StopAndCountWrites(), 5);
}

TEST_F(GrpcApiTest, PreferenceCreateGetListUpdateRetractVersions) {
  const v1::Preference channels = CreatePreference();
  EXPECT_TRUE(absl::StartsWith(channels.name(), "patients/p1/preferences/")) << channels.name();
  EXPECT_EQ(channels.version(), 1);
  EXPECT_THAT(channels.channel_ranking().channels(), ElementsAre(v1::SMS, v1::PHONE_CALL));

  v1::Preference language_pref;
  language_pref.set_kind(v1::LANGUAGE);
  language_pref.mutable_language()->set_language("es");
  language_pref.mutable_language()->set_interpreter_needed(true);
  *language_pref.mutable_provenance() = NurseProvenance();
  const v1::Preference language = CreatePreference(language_pref);

  v1::GetResourceRequest get;
  get.set_name(language.name());
  auto got = client_->GetPreference(get);
  ASSERT_TRUE(got.ok()) << got.status();
  EXPECT_THAT(*got, EqualsProto(language));

  v1::ListPreferencesRequest list;
  list.set_parent(kParent);
  list.add_kinds(v1::LANGUAGE);
  auto listed = client_->ListPreferences(list);
  ASSERT_TRUE(listed.ok()) << listed.status();
  ASSERT_THAT(listed->preferences(), SizeIs(1));
  EXPECT_THAT(listed->preferences(0), EqualsProto(language));

  v1::UpdatePreferenceRequest update;
  update.mutable_preference()->set_name(channels.name());
  update.mutable_preference()->set_etag(channels.etag());
  update.mutable_preference()->mutable_channel_ranking()->add_channels(v1::PATIENT_PORTAL);
  *update.mutable_preference()->mutable_provenance() = NurseProvenance();
  update.mutable_update_mask()->add_paths("channel_ranking");
  auto v2 = client_->UpdatePreference(update);
  ASSERT_TRUE(v2.ok()) << v2.status();
  EXPECT_EQ(v2->version(), 2);
  EXPECT_THAT(v2->channel_ranking().channels(), ElementsAre(v1::PATIENT_PORTAL));
  EXPECT_EQ(v2->value_text(), channels.value_text());

  auto v3 = client_->RetractPreference(Retraction(channels.name()));
  ASSERT_TRUE(v3.ok()) << v3.status();
  EXPECT_EQ(v3->state(), v1::RETRACTED);
  list.clear_kinds();
  listed = client_->ListPreferences(list);
  ASSERT_TRUE(listed.ok()) << listed.status();
  ASSERT_THAT(listed->preferences(), SizeIs(1));
  EXPECT_EQ(listed->preferences(0).name(), language.name());

  v1::ListVersionsRequest versions;
  versions.set_name(channels.name());
  auto history = client_->ListPreferenceVersions(versions);
  ASSERT_TRUE(history.ok()) << history.status();
  ASSERT_THAT(history->preferences(), SizeIs(3));
  EXPECT_THAT(history->preferences(0), EqualsProto(channels));
  EXPECT_THAT(history->preferences(1), EqualsProto(*v2));
  EXPECT_THAT(history->preferences(2), EqualsProto(*v3));
}

TEST_F(GrpcApiTest, GoalScoreCreateGetListUpdateRetractVersions) {
  v1::CreateGoalRequest goal_req;
  goal_req.set_parent(kParent);
  *goal_req.mutable_goal() = ValidGoal();
  auto goal = client_->CreateGoal(goal_req);
  ASSERT_TRUE(goal.ok()) << goal.status();

  v1::CreateGoalScoreRequest req;
  req.set_parent(kParent);
  req.mutable_goal_score()->set_goal(goal->name());
  req.mutable_goal_score()->set_score_type(v1::INITIAL);
  req.mutable_goal_score()->set_score(-2);
  *req.mutable_goal_score()->mutable_provenance() = NurseProvenance();
  auto initial = client_->CreateGoalScore(req);
  ASSERT_TRUE(initial.ok()) << initial.status();
  req.mutable_goal_score()->set_score_type(v1::PRACTITIONER_FOLLOW_UP);
  req.mutable_goal_score()->set_score(0);
  req.clear_request_id();
  auto follow_up = client_->CreateGoalScore(req);
  ASSERT_TRUE(follow_up.ok()) << follow_up.status();

  v1::GetResourceRequest get;
  get.set_name(initial->name());
  auto got = client_->GetGoalScore(get);
  ASSERT_TRUE(got.ok()) << got.status();
  EXPECT_EQ(got->score(), -2);
  EXPECT_EQ(got->goal(), goal->name());

  v1::UpdateGoalScoreRequest update;
  update.mutable_goal_score()->set_name(follow_up->name());
  update.mutable_goal_score()->set_etag(follow_up->etag());
  update.mutable_goal_score()->set_score(1);
  *update.mutable_goal_score()->mutable_provenance() = NurseProvenance();
  update.mutable_update_mask()->add_paths("score");
  auto updated = client_->UpdateGoalScore(update);
  ASSERT_TRUE(updated.ok()) << updated.status();
  EXPECT_EQ(updated->score(), 1);
  EXPECT_EQ(updated->score_type(), v1::PRACTITIONER_FOLLOW_UP);

  v1::ListGoalScoresRequest list;
  list.set_parent(kParent);
  list.set_goal(goal->name());
  auto scores = client_->ListGoalScores(list);
  ASSERT_TRUE(scores.ok()) << scores.status();
  ASSERT_THAT(scores->goal_scores(), SizeIs(2));
  EXPECT_EQ(scores->goal_scores(0).score(), -2);
  EXPECT_EQ(scores->goal_scores(1).score(), 1);

  v1::RetractRequest retract;
  retract.set_name(initial->name());
  retract.mutable_retracted_by()->set_practitioner_id("nurse-17");
  ASSERT_TRUE(client_->RetractGoalScore(retract).ok());
  EXPECT_THAT(client_->ListGoalScores(list)->goal_scores(), SizeIs(1));

  v1::ListVersionsRequest versions;
  versions.set_name(follow_up->name());
  EXPECT_THAT(client_->ListGoalScoreVersions(versions)->goal_scores(), SizeIs(2));

  req.mutable_goal_score()->set_score(5);
  req.clear_request_id();
  auto bad = client_->CreateGoalScore(req);
  EXPECT_THAT(bad, StatusIs(Code::kInvalidArgument));
  EXPECT_THAT(ViolatedFields(bad.status()), Contains("goal_score.score"));
}

TEST_F(GrpcApiTest, PrioritiesGetUpdateListVersions) {
  v1::GetResourceRequest get;
  get.set_name("patients/p1/priorities");
  auto unset = client_->GetPriorities(get);
  ASSERT_TRUE(unset.ok()) << unset.status();
  EXPECT_EQ(unset->name(), "patients/p1/priorities");
  EXPECT_EQ(unset->version(), 0);
  EXPECT_THAT(unset->items(), IsEmpty());

  const v1::WhatMatters wm = CreateWhatMatters();
  const v1::Goal goal = CreateGoal();
  v1::UpdatePrioritiesRequest first;
  first.mutable_priorities()->set_name("patients/p1/priorities");
  first.mutable_priorities()->add_items(goal.name());
  first.mutable_priorities()->add_items(wm.name());
  *first.mutable_priorities()->mutable_provenance() = NurseProvenance();
  auto v1_result = client_->UpdatePriorities(first);
  ASSERT_TRUE(v1_result.ok()) << v1_result.status();
  EXPECT_EQ(v1_result->version(), 1);
  EXPECT_THAT(v1_result->items(), ElementsAre(goal.name(), wm.name()));

  v1::UpdatePrioritiesRequest second = first;
  second.clear_request_id();
  second.mutable_priorities()->clear_items();
  second.mutable_priorities()->add_items(wm.name());
  second.mutable_priorities()->set_etag(v1_result->etag());
  auto v2 = client_->UpdatePriorities(second);
  ASSERT_TRUE(v2.ok()) << v2.status();
  EXPECT_EQ(v2->version(), 2);
  EXPECT_THAT(v2->items(), ElementsAre(wm.name()));

  auto current = client_->GetPriorities(get);
  ASSERT_TRUE(current.ok()) << current.status();
  EXPECT_THAT(*current, EqualsProto(*v2));

  v1::ListVersionsRequest versions;
  versions.set_name("patients/p1/priorities");
  auto history = client_->ListPrioritiesVersions(versions);
  ASSERT_TRUE(history.ok()) << history.status();
  ASSERT_THAT(history->priorities(), SizeIs(2));
  EXPECT_THAT(history->priorities(0), EqualsProto(*v1_result));
  EXPECT_THAT(history->priorities(1), EqualsProto(*v2));
}

TEST_F(GrpcApiTest, PrioritiesUpdateWithoutEtagOnceSetIsRejected) {
  const v1::Goal goal = CreateGoal();
  v1::UpdatePrioritiesRequest req;
  req.mutable_priorities()->set_name("patients/p1/priorities");
  req.mutable_priorities()->add_items(goal.name());
  *req.mutable_priorities()->mutable_provenance() = NurseProvenance();
  ASSERT_TRUE(client_->UpdatePriorities(req).ok());
  auto again = client_->UpdatePriorities(req);  // a fresh request_id, still no etag
  EXPECT_THAT(again, StatusIs(Code::kInvalidArgument));
  EXPECT_THAT(ViolatedFields(again.status()), Contains("priorities.etag"));
  EXPECT_EQ(StopAndCountWrites(), 2);
}

TEST_F(GrpcApiTest, PrioritiesNamingUnknownResourceRejected) {
  v1::UpdatePrioritiesRequest req;
  req.mutable_priorities()->set_name("patients/p1/priorities");
  req.mutable_priorities()->add_items("patients/p1/goals/01HZZZZZZZZZZZZZZZZZZZZZZZ");
  *req.mutable_priorities()->mutable_provenance() = NurseProvenance();
  auto r = client_->UpdatePriorities(req);
  EXPECT_THAT(r, StatusIs(Code::kInvalidArgument));
  EXPECT_THAT(ViolatedFields(r.status()), Contains("priorities.items[0]"));
  ExpectNothingStored(kParent);
  EXPECT_EQ(StopAndCountWrites(), 0);
}

TEST_F(GrpcApiTest, PatientSummaryOrderedByPrioritiesWithoutRetracted) {
  const v1::WhatMatters wm1 = CreateWhatMatters(ValidWhatMatters("Being home for my garden"));
  const v1::WhatMatters wm2 = CreateWhatMatters(ValidWhatMatters("Seeing my sister in Oaxaca"));
  const v1::WhatMatters wm3 = CreateWhatMatters(ValidWhatMatters("Not being a burden"));
  const v1::WhatMatters wm4 = CreateWhatMatters(ValidWhatMatters("Entered for the wrong patient"));
  const v1::Goal g1 = CreateGoal(ValidGoal("Walk to the mailbox"));
  const v1::Goal g2 = CreateGoal(ValidGoal("Cook for my family again"));
  const v1::Preference pref = CreatePreference();
  // Someone else's records never show up.
  CreateWhatMatters(ValidWhatMatters("Another patient's answer"), "patients/p2");

  v1::UpdatePrioritiesRequest pri;
  pri.mutable_priorities()->set_name("patients/p1/priorities");
  for (const std::string& item : {wm3.name(), g2.name(), wm1.name()}) pri.mutable_priorities()->add_items(item);
  *pri.mutable_priorities()->mutable_provenance() = NurseProvenance();
  auto priorities = client_->UpdatePriorities(pri);
  ASSERT_TRUE(priorities.ok()) << priorities.status();
  ASSERT_TRUE(client_->RetractWhatMatters(Retraction(wm4.name())).ok());

  v1::GetPatientSummaryRequest req;
  req.set_parent(kParent);
  auto summary = client_->GetPatientSummary(req);
  ASSERT_TRUE(summary.ok()) << summary.status();
  EXPECT_EQ(summary->parent(), kParent);
  EXPECT_THAT(summary->priorities(), EqualsProto(*priorities));
  std::vector<std::string> wms, goals, prefs;
  for (const auto& w : summary->what_matters()) wms.push_back(w.name());
  for (const auto& g : summary->goals()) goals.push_back(g.name());
  for (const auto& p : summary->preferences()) prefs.push_back(p.name());
  // Ranked items first in rank order, then the rest (wm2), retracted wm4 hidden.
  EXPECT_THAT(wms, ElementsAre(wm3.name(), wm1.name(), wm2.name()));
  EXPECT_THAT(goals, ElementsAre(g2.name(), g1.name()));
  EXPECT_THAT(prefs, ElementsAre(pref.name()));
  EXPECT_FALSE(summary->truncated());
  EXPECT_THAT(summary->what_matters(0), EqualsProto(wm3));
}

TEST_F(GrpcApiTest, ListPagesThroughEverythingOnce) {
  std::vector<std::string> created;
  for (int i = 0; i < 5; ++i) created.push_back(CreateGoal(ValidGoal(absl::StrCat("Goal number ", i))).name());
  v1::ListGoalsRequest req;
  req.set_parent(kParent);
  req.set_page_size(2);
  std::vector<std::string> seen;
  int pages = 0;
  do {
    auto page = client_->ListGoals(req);
    ASSERT_TRUE(page.ok()) << page.status();
    EXPECT_LE(page->goals_size(), 2);
    for (const auto& g : page->goals()) seen.push_back(g.name());
    req.set_page_token(page->next_page_token());
    ASSERT_LT(++pages, 10);
  } while (!req.page_token().empty());
  EXPECT_EQ(pages, 3);
  EXPECT_EQ(seen, created);
}

TEST_F(GrpcApiTest, ListVersionsPagesThroughEveryVersion) {
  v1::Goal goal = CreateGoal();
  for (int i = 0; i < 4; ++i) {
    v1::UpdateGoalRequest update;
    *update.mutable_goal() = goal;
    update.mutable_goal()->set_description(absl::StrCat("Revision ", i));
    auto next = client_->UpdateGoal(update);
    ASSERT_TRUE(next.ok()) << next.status();
    goal = *next;
  }
  v1::ListVersionsRequest req;
  req.set_name(goal.name());
  req.set_page_size(2);
  std::vector<int64_t> versions;
  for (int pages = 0; pages < 10; ++pages) {
    auto page = client_->ListGoalVersions(req);
    ASSERT_TRUE(page.ok()) << page.status();
    for (const auto& g : page->goals()) versions.push_back(g.version());
    if (page->next_page_token().empty()) break;
    req.set_page_token(page->next_page_token());
  }
  EXPECT_THAT(versions, ElementsAre(1, 2, 3, 4, 5));
}

TEST_F(GrpcApiTest, CreateWithSameRequestIdTwiceCreatesOneRecord) {
  v1::CreateGoalRequest req;
  req.set_parent(kParent);
  *req.mutable_goal() = ValidGoal();
  req.set_request_id("9b1f0c64-6c1e-4c55-8d8e-0d1f3a7b2c10");
  auto first = client_->CreateGoal(req);
  ASSERT_TRUE(first.ok()) << first.status();
  auto second = client_->CreateGoal(req);
  ASSERT_TRUE(second.ok()) << second.status();
  EXPECT_THAT(*second, EqualsProto(*first));

  v1::ListGoalsRequest list;
  list.set_parent(kParent);
  auto listed = client_->ListGoals(list);
  ASSERT_TRUE(listed.ok()) << listed.status();
  ASSERT_THAT(listed->goals(), SizeIs(1));
  EXPECT_EQ(listed->goals(0).name(), first->name());
  EXPECT_EQ(StopAndCountWrites(), 1);
}

TEST_F(GrpcApiTest, UpdateWithSameRequestIdTwiceWritesOneVersion) {
  const v1::Goal goal = CreateGoal();
  v1::UpdateGoalRequest req;
  *req.mutable_goal() = goal;
  req.mutable_goal()->set_description("Dance at the wedding");
  req.set_request_id("update-once-1");
  auto first = client_->UpdateGoal(req);
  ASSERT_TRUE(first.ok()) << first.status();
  // The retry carries the now-stale etag: the first result comes back, no ABORTED.
  auto second = client_->UpdateGoal(req);
  ASSERT_TRUE(second.ok()) << second.status();
  EXPECT_THAT(*second, EqualsProto(*first));
  EXPECT_THAT(GoalVersions(goal.name()), SizeIs(2));
  EXPECT_EQ(StopAndCountWrites(), 2);
}

// ================================================================ bad input

TEST_F(GrpcApiTest, EmptyStatementRejected) {
  v1::CreateWhatMattersRequest req;
  req.set_parent(kParent);
  *req.mutable_what_matters() = ValidWhatMatters("");
  auto r = client_->CreateWhatMatters(req);
  EXPECT_THAT(r, StatusIs(Code::kInvalidArgument));
  EXPECT_THAT(ViolatedFields(r.status()), Contains("what_matters.statement"));
  ExpectNothingStored(kParent);
  EXPECT_EQ(StopAndCountWrites(), 0);
}

TEST_F(GrpcApiTest, WhitespaceOnlyStatementRejected) {
  v1::CreateWhatMattersRequest req;
  req.set_parent(kParent);
  *req.mutable_what_matters() = ValidWhatMatters(" \t\r\n  ");
  auto r = client_->CreateWhatMatters(req);
  EXPECT_THAT(r, StatusIs(Code::kInvalidArgument));
  EXPECT_THAT(ViolatedFields(r.status()), Contains("what_matters.statement"));
  ExpectNothingStored(kParent);
  EXPECT_EQ(StopAndCountWrites(), 0);
}

TEST_F(GrpcApiTest, UnicodeWhitespaceOnlyStatementRejected) {
  v1::CreateWhatMattersRequest req;
  req.set_parent(kParent);
  *req.mutable_what_matters() = ValidWhatMatters("\u00A0\u3000\u2003\uFEFF");
  auto r = client_->CreateWhatMatters(req);
  EXPECT_THAT(r, StatusIs(Code::kInvalidArgument));
  EXPECT_THAT(ViolatedFields(r.status()), Contains("what_matters.statement"));
  ExpectNothingStored(kParent);
  EXPECT_EQ(StopAndCountWrites(), 0);
}

TEST_F(GrpcApiTest, WhitespaceOnlyGoalDescriptionRejected) {
  v1::CreateGoalRequest req;
  req.set_parent(kParent);
  *req.mutable_goal() = ValidGoal("   ");
  auto r = client_->CreateGoal(req);
  EXPECT_THAT(r, StatusIs(Code::kInvalidArgument));
  EXPECT_THAT(ViolatedFields(r.status()), Contains("goal.description"));
  ExpectNothingStored(kParent);
  EXPECT_EQ(StopAndCountWrites(), 0);
}

TEST_F(GrpcApiTest, StatementOver16KiBRejected) {
  v1::CreateWhatMattersRequest req;
  req.set_parent(kParent);
  *req.mutable_what_matters() = ValidWhatMatters(std::string(16 * 1024 + 1, 'a'));
  auto r = client_->CreateWhatMatters(req);
  EXPECT_THAT(r, StatusIs(Code::kInvalidArgument));
  EXPECT_THAT(ViolatedFields(r.status()), Contains("what_matters.statement"));
  ExpectNothingStored(kParent);
  EXPECT_EQ(StopAndCountWrites(), 0);
}

TEST_F(GrpcApiTest, GoalDescriptionOver16KiBRejected) {
  // Multi-byte characters: the limit is in bytes of UTF-8 (5462 x 3 bytes = 16386).
  std::string text;
  for (int i = 0; i < 5462; ++i) text += "\u00e9a";  // 3 bytes each
  ASSERT_GT(text.size(), 16u * 1024);
  v1::CreateGoalRequest req;
  req.set_parent(kParent);
  *req.mutable_goal() = ValidGoal(text);
  auto r = client_->CreateGoal(req);
  EXPECT_THAT(r, StatusIs(Code::kInvalidArgument));
  EXPECT_THAT(ViolatedFields(r.status()), Contains("goal.description"));
  ExpectNothingStored(kParent);
  EXPECT_EQ(StopAndCountWrites(), 0);
}

TEST_F(GrpcApiTest, TextOfExactly16KiBAccepted) {
  const v1::WhatMatters wm = CreateWhatMatters(ValidWhatMatters(std::string(16 * 1024, 'a')));
  EXPECT_EQ(wm.statement().size(), 16u * 1024);
  EXPECT_EQ(wm.version(), 1);
}

// Invalid UTF-8 cannot be built with a protobuf string setter and sent by the
// client (protobuf refuses to serialize it cleanly), so these tests serialize a
// valid request and overwrite a marker with invalid bytes of the same length.
TEST_F(GrpcApiTest, InvalidUtf8GoalDescriptionRejected) {
  v1::CreateGoalRequest req;
  req.set_parent(kParent);
  *req.mutable_goal() = ValidGoal("Dance at my MARKER-0123456789 wedding");
  req.set_request_id("utf8-1");
  const std::string wire = ReplaceMarker(Bytes(req), "MARKER-0123456789", "MARKER-\xc3\x28\xff\xfe\x80\xed\xa0\x80xx");
  RawResult r = RawUnaryCall(server_->target(), absl::StrCat(kService, "CreateGoal"), wire);
  EXPECT_THAT(r.status, StatusIs(Code::kInvalidArgument));
  EXPECT_THAT(ViolatedFields(r.status), Contains("goal.description"));
  ExpectNothingStored(kParent);
  EXPECT_EQ(StopAndCountWrites(), 0);
}

TEST_F(GrpcApiTest, InvalidUtf8InNestedNoteTextRejected) {
  v1::CreateGoalRequest req;
  req.set_parent(kParent);
  *req.mutable_goal() = ValidGoal();
  req.mutable_goal()->add_notes()->set_text("first note");
  req.mutable_goal()->add_notes()->set_text("second MARKER-abcdef note");
  const std::string wire = ReplaceMarker(Bytes(req), "MARKER-abcdef", "MARKER-\xf8\x88\x80\x80\x80\xc0");
  RawResult r = RawUnaryCall(server_->target(), absl::StrCat(kService, "CreateGoal"), wire);
  EXPECT_THAT(r.status, StatusIs(Code::kInvalidArgument));
  EXPECT_THAT(ViolatedFields(r.status), Contains("goal.notes[1].text"));
  ExpectNothingStored(kParent);
  EXPECT_EQ(StopAndCountWrites(), 0);
}

TEST_F(GrpcApiTest, InvalidUtf8StatementInUpdateRejected) {
  const v1::WhatMatters wm = CreateWhatMatters();
  v1::UpdateWhatMattersRequest req;
  *req.mutable_what_matters() = wm;
  req.mutable_what_matters()->set_statement("MARKER-xyz");
  const std::string wire = ReplaceMarker(Bytes(req), "MARKER-xyz", "MARKER-\xff\xff\xff");
  RawResult r = RawUnaryCall(server_->target(), absl::StrCat(kService, "UpdateWhatMatters"), wire);
  EXPECT_THAT(r.status, StatusIs(Code::kInvalidArgument));
  EXPECT_THAT(ViolatedFields(r.status), Contains("what_matters.statement"));
  v1::GetResourceRequest get;
  get.set_name(wm.name());
  auto current = client_->GetWhatMatters(get);
  ASSERT_TRUE(current.ok()) << current.status();
  EXPECT_THAT(*current, EqualsProto(wm));
  EXPECT_EQ(StopAndCountWrites(), 1);
}

TEST_F(GrpcApiTest, MalformedRequestBytesRejected) {
  // Field 2 (goal) claims 100 bytes but only 3 follow.
  RawResult r = RawUnaryCall(server_->target(), absl::StrCat(kService, "CreateGoal"),
                             std::string("\x0a\x0bpatients/p1\x12\x64\x0a\x01x"));
  EXPECT_THAT(r.status, StatusIs(Code::kInvalidArgument));
  ExpectNothingStored(kParent);
  EXPECT_EQ(StopAndCountWrites(), 0);
}

TEST_F(GrpcApiTest, UnknownGoalLifecycleStatusRejected) {
  v1::CreateGoalRequest req;
  req.set_parent(kParent);
  *req.mutable_goal() = ValidGoal();
  req.mutable_goal()->set_lifecycle_status(static_cast<v1::GoalLifecycleStatus>(99));
  auto r = client_->CreateGoal(req);
  EXPECT_THAT(r, StatusIs(Code::kInvalidArgument));
  EXPECT_THAT(ViolatedFields(r.status()), Contains("goal.lifecycle_status"));
  ExpectNothingStored(kParent);
  EXPECT_EQ(StopAndCountWrites(), 0);
}

TEST_F(GrpcApiTest, UnknownLifeDomainRejected) {
  v1::CreateWhatMattersRequest req;
  req.set_parent(kParent);
  *req.mutable_what_matters() = ValidWhatMatters();
  req.mutable_what_matters()->add_life_domains(static_cast<v1::LifeDomain>(42));
  auto r = client_->CreateWhatMatters(req);
  EXPECT_THAT(r, StatusIs(Code::kInvalidArgument));
  EXPECT_THAT(ViolatedFields(r.status()), Contains("what_matters.life_domains[1]"));
  ExpectNothingStored(kParent);
  EXPECT_EQ(StopAndCountWrites(), 0);
}

TEST_F(GrpcApiTest, UnknownPreferenceKindRejected) {
  v1::CreatePreferenceRequest req;
  req.set_parent(kParent);
  *req.mutable_preference() = ValidPreference();
  req.mutable_preference()->clear_channel_ranking();
  req.mutable_preference()->set_kind(static_cast<v1::PreferenceKind>(-3));
  auto r = client_->CreatePreference(req);
  EXPECT_THAT(r, StatusIs(Code::kInvalidArgument));
  EXPECT_THAT(ViolatedFields(r.status()), Contains("preference.kind"));
  ExpectNothingStored(kParent);
  EXPECT_EQ(StopAndCountWrites(), 0);
}

TEST_F(GrpcApiTest, UnknownSpeakerKindRejected) {
  v1::CreateGoalRequest req;
  req.set_parent(kParent);
  *req.mutable_goal() = ValidGoal();
  req.mutable_goal()->mutable_provenance()->mutable_said_by()->set_kind(static_cast<v1::Speaker::Kind>(7));
  auto r = client_->CreateGoal(req);
  EXPECT_THAT(r, StatusIs(Code::kInvalidArgument));
  EXPECT_THAT(ViolatedFields(r.status()), Contains("goal.provenance.said_by.kind"));
  ExpectNothingStored(kParent);
  EXPECT_EQ(StopAndCountWrites(), 0);
}

// An absent said_by is stored and returned as NOT_STATED, on create and on
// update: the server never assumes the patient said it.
TEST_F(GrpcApiTest, AbsentSpeakerIsStoredAsNotStated) {
  v1::Goal goal = ValidGoal();
  goal.mutable_provenance()->clear_said_by();
  const v1::Goal created = CreateGoal(goal);
  EXPECT_EQ(created.provenance().said_by().kind(), v1::Speaker::NOT_STATED);
  EXPECT_EQ(GetGoal(created.name()).provenance().said_by().kind(), v1::Speaker::NOT_STATED);

  v1::UpdateGoalRequest update;
  update.mutable_goal()->set_name(created.name());
  update.mutable_goal()->set_etag(created.etag());
  update.mutable_goal()->set_lifecycle_status(v1::COMPLETED);
  *update.mutable_goal()->mutable_provenance() = NurseProvenance();
  update.mutable_goal()->mutable_provenance()->mutable_said_by()->set_kind(v1::Speaker::KIND_UNSPECIFIED);
  update.mutable_update_mask()->add_paths("lifecycle_status");
  auto v2 = client_->UpdateGoal(update);
  ASSERT_TRUE(v2.ok()) << v2.status();
  EXPECT_EQ(v2->provenance().said_by().kind(), v1::Speaker::NOT_STATED);
}

// A practitioner who scored a goal is the score's speaker, with their id.
TEST_F(GrpcApiTest, PractitionerSpeakerIsKept) {
  const v1::Goal goal = CreateGoal();
  v1::CreateGoalScoreRequest req;
  req.set_parent(kParent);
  req.mutable_goal_score()->set_goal(goal.name());
  req.mutable_goal_score()->set_score_type(v1::PRACTITIONER_FOLLOW_UP);
  req.mutable_goal_score()->set_score(1);
  *req.mutable_goal_score()->mutable_provenance() = NurseProvenance();
  v1::Speaker* by = req.mutable_goal_score()->mutable_provenance()->mutable_said_by();
  by->set_kind(v1::Speaker::PRACTITIONER);
  by->set_name("Dr. Lee");
  auto missing_id = client_->CreateGoalScore(req);
  EXPECT_THAT(missing_id, StatusIs(Code::kInvalidArgument));
  EXPECT_THAT(ViolatedFields(missing_id.status()), Contains("goal_score.provenance.said_by.practitioner_id"));

  by->set_practitioner_id("md-4");
  auto score = client_->CreateGoalScore(req);
  ASSERT_TRUE(score.ok()) << score.status();
  EXPECT_EQ(score->provenance().said_by().kind(), v1::Speaker::PRACTITIONER);
  EXPECT_EQ(score->provenance().said_by().practitioner_id(), "md-4");
  EXPECT_EQ(score->provenance().said_by().name(), "Dr. Lee");
}

TEST_F(GrpcApiTest, SpeakerDetailsWithoutKindRejected) {
  v1::CreateGoalRequest req;
  req.set_parent(kParent);
  *req.mutable_goal() = ValidGoal();
  req.mutable_goal()->mutable_provenance()->mutable_said_by()->set_kind(v1::Speaker::KIND_UNSPECIFIED);
  req.mutable_goal()->mutable_provenance()->mutable_said_by()->set_name("Rosa");
  auto r = client_->CreateGoal(req);
  EXPECT_THAT(r, StatusIs(Code::kInvalidArgument));
  EXPECT_THAT(ViolatedFields(r.status()), Contains("goal.provenance.said_by.kind"));
  ExpectNothingStored(kParent);
  EXPECT_EQ(StopAndCountWrites(), 0);
}

TEST_F(GrpcApiTest, UnknownEnumInListFilterRejected) {
  v1::ListGoalsRequest req;
  req.set_parent(kParent);
  req.add_lifecycle_statuses(v1::GOAL_ACTIVE);
  req.add_lifecycle_statuses(static_cast<v1::GoalLifecycleStatus>(1234));
  auto r = client_->ListGoals(req);
  EXPECT_THAT(r, StatusIs(Code::kInvalidArgument));
  EXPECT_THAT(ViolatedFields(r.status()), Contains("lifecycle_statuses[1]"));
}

TEST_F(GrpcApiTest, PatientIdWithSlashRejected) {
  v1::CreateGoalRequest req;
  req.set_parent("patients/p1/goals");
  *req.mutable_goal() = ValidGoal();
  auto r = client_->CreateGoal(req);
  EXPECT_THAT(r, StatusIs(Code::kInvalidArgument));
  EXPECT_THAT(ViolatedFields(r.status()), Contains("parent"));
  req.set_parent("patients/p1%2Fp2");
  r = client_->CreateGoal(req);
  EXPECT_THAT(r, StatusIs(Code::kInvalidArgument));
  EXPECT_THAT(ViolatedFields(r.status()), Contains("parent"));
  ExpectNothingStored(kParent);
  EXPECT_EQ(StopAndCountWrites(), 0);
}

TEST_F(GrpcApiTest, PatientIdWithControlCharacterRejected) {
  v1::CreateWhatMattersRequest req;
  req.set_parent("patients/p1\x01");
  *req.mutable_what_matters() = ValidWhatMatters();
  auto r = client_->CreateWhatMatters(req);
  EXPECT_THAT(r, StatusIs(Code::kInvalidArgument));
  EXPECT_THAT(ViolatedFields(r.status()), Contains("parent"));
  req.set_parent("patients/p\n1");
  r = client_->CreateWhatMatters(req);
  EXPECT_THAT(r, StatusIs(Code::kInvalidArgument));
  EXPECT_THAT(ViolatedFields(r.status()), Contains("parent"));
  ExpectNothingStored(kParent);
  EXPECT_EQ(StopAndCountWrites(), 0);
}

TEST_F(GrpcApiTest, PatientIdOver64CharactersRejected) {
  const std::string parent = "patients/" + std::string(65, 'a');
  v1::CreatePreferenceRequest req;
  req.set_parent(parent);
  *req.mutable_preference() = ValidPreference();
  auto r = client_->CreatePreference(req);
  EXPECT_THAT(r, StatusIs(Code::kInvalidArgument));
  EXPECT_THAT(ViolatedFields(r.status()), Contains("parent"));
  ExpectNothingStored("patients/" + std::string(64, 'a'));
  EXPECT_EQ(StopAndCountWrites(), 0);
}

TEST_F(GrpcApiTest, PatientIdOf64CharactersAccepted) {
  const std::string parent = "patients/" + std::string(64, 'a');
  const v1::Preference p = CreatePreference(ValidPreference(), parent);
  EXPECT_EQ(p.patient().id(), std::string(64, 'a'));
}

TEST_F(GrpcApiTest, PatientIdInvalidInGetRejected) {
  v1::GetResourceRequest req;
  req.set_name("patients/a b/goals/01J0000000000000000000000");
  EXPECT_THAT(client_->GetGoal(req), StatusIs(Code::kInvalidArgument));
  auto r = client_->GetGoal(req);
  EXPECT_THAT(ViolatedFields(r.status()), Contains("name"));
}

TEST_F(GrpcApiTest, TargetDateBeforeStartDateRejected) {
  v1::CreateGoalRequest req;
  req.set_parent(kParent);
  *req.mutable_goal() = ValidGoal();
  req.mutable_goal()->set_start_date("2027-03-01");
  req.mutable_goal()->set_target_date("2027-02");
  auto r = client_->CreateGoal(req);
  EXPECT_THAT(r, StatusIs(Code::kInvalidArgument));
  EXPECT_THAT(ViolatedFields(r.status()), Contains("goal.target_date"));
  ExpectNothingStored(kParent);
  EXPECT_EQ(StopAndCountWrites(), 0);
}

TEST_F(GrpcApiTest, TargetDateBeforeStartDateInMaskedUpdateRejected) {
  const v1::Goal goal = CreateGoal();  // 2026-11-01 .. 2027-06-15
  v1::UpdateGoalRequest req;
  req.mutable_goal()->set_name(goal.name());
  req.mutable_goal()->set_etag(goal.etag());
  req.mutable_goal()->set_target_date("2026-10-31");
  *req.mutable_goal()->mutable_provenance() = NurseProvenance();
  req.mutable_update_mask()->add_paths("target_date");
  auto r = client_->UpdateGoal(req);
  EXPECT_THAT(r, StatusIs(Code::kInvalidArgument));
  EXPECT_THAT(ViolatedFields(r.status()), Contains("goal.target_date"));
  EXPECT_THAT(GetGoal(goal.name()), EqualsProto(goal));
  EXPECT_EQ(StopAndCountWrites(), 1);
}

TEST_F(GrpcApiTest, UpdatingRetractedResourceFailsPrecondition) {
  const v1::Goal goal = CreateGoal();
  auto retracted = client_->RetractGoal(Retraction(goal.name()));
  ASSERT_TRUE(retracted.ok()) << retracted.status();
  v1::UpdateGoalRequest req;
  *req.mutable_goal() = *retracted;
  req.mutable_goal()->set_description("Changed after retraction");
  auto r = client_->UpdateGoal(req);
  EXPECT_THAT(r, StatusIs(Code::kFailedPrecondition));
  EXPECT_THAT(client_->RetractGoal(Retraction(goal.name())), StatusIs(Code::kFailedPrecondition));
  EXPECT_THAT(GetGoal(goal.name()), EqualsProto(*retracted));
  EXPECT_THAT(GoalVersions(goal.name()), SizeIs(2));
  EXPECT_EQ(StopAndCountWrites(), 2);
}

TEST_F(GrpcApiTest, StaleEtagAborted) {
  const v1::Goal goal = CreateGoal();
  v1::UpdateGoalRequest first;
  *first.mutable_goal() = goal;
  first.mutable_goal()->set_description("First edit");
  auto v2 = client_->UpdateGoal(first);
  ASSERT_TRUE(v2.ok()) << v2.status();
  v1::UpdateGoalRequest stale;
  *stale.mutable_goal() = goal;  // etag of version 1
  stale.mutable_goal()->set_description("Concurrent edit");
  auto r = client_->UpdateGoal(stale);
  EXPECT_THAT(r, StatusIs(Code::kAborted));
  EXPECT_THAT(GetGoal(goal.name()), EqualsProto(*v2));
  // Retract checks a given etag too.
  v1::RetractRequest retract = Retraction(goal.name());
  retract.set_etag(goal.etag());
  EXPECT_THAT(client_->RetractGoal(retract), StatusIs(Code::kAborted));
  EXPECT_THAT(GoalVersions(goal.name()), SizeIs(2));
  EXPECT_EQ(StopAndCountWrites(), 2);
}

TEST_F(GrpcApiTest, MissingEtagRejected) {
  const v1::Goal goal = CreateGoal();
  v1::UpdateGoalRequest req;
  *req.mutable_goal() = goal;
  req.mutable_goal()->clear_etag();
  req.mutable_goal()->set_description("Edit without an etag");
  auto r = client_->UpdateGoal(req);
  EXPECT_THAT(r, StatusIs(Code::kInvalidArgument));
  EXPECT_THAT(ViolatedFields(r.status()), Contains("goal.etag"));
  EXPECT_THAT(GetGoal(goal.name()), EqualsProto(goal));
  EXPECT_EQ(StopAndCountWrites(), 1);
}

TEST_F(GrpcApiTest, UnknownUpdateMaskPathRejected) {
  const v1::Goal goal = CreateGoal();
  v1::UpdateGoalRequest req;
  *req.mutable_goal() = goal;
  req.mutable_goal()->set_version(99);
  req.mutable_update_mask()->add_paths("description");
  req.mutable_update_mask()->add_paths("version");  // output only
  auto r = client_->UpdateGoal(req);
  EXPECT_THAT(r, StatusIs(Code::kInvalidArgument));
  EXPECT_THAT(ViolatedFields(r.status()), Contains("update_mask.paths[1]"));
  EXPECT_THAT(GetGoal(goal.name()), EqualsProto(goal));
  EXPECT_EQ(StopAndCountWrites(), 1);
}

TEST_F(GrpcApiTest, PageSizeAboveMaximumRejected) {
  CreateGoal();
  v1::ListGoalsRequest req;
  req.set_parent(kParent);
  req.set_page_size(1001);
  auto r = client_->ListGoals(req);
  EXPECT_THAT(r, StatusIs(Code::kInvalidArgument));
  EXPECT_THAT(ViolatedFields(r.status()), Contains("page_size"));
  req.set_page_size(1000);
  auto ok = client_->ListGoals(req);
  ASSERT_TRUE(ok.ok()) << ok.status();
  EXPECT_THAT(ok->goals(), SizeIs(1));
}

TEST_F(GrpcApiTest, VersionsPageSizeAboveMaximumRejected) {
  const v1::Goal goal = CreateGoal();
  v1::ListVersionsRequest req;
  req.set_name(goal.name());
  req.set_page_size(5000);
  auto r = client_->ListGoalVersions(req);
  EXPECT_THAT(r, StatusIs(Code::kInvalidArgument));
  EXPECT_THAT(ViolatedFields(r.status()), Contains("page_size"));
}

TEST_F(GrpcApiTest, ForgedPageTokenRejected) {
  for (int i = 0; i < 3; ++i) CreateGoal();
  v1::ListGoalsRequest req;
  req.set_parent(kParent);
  req.set_page_size(1);
  // Well-formed base64url of a plausible cursor, but not signed by the server.
  req.set_page_token("CgtwYXRpZW50cy9wMRIaMDFKMDAwMDAwMDAwMDAwMDAwMDAwMDAwMDAwAAAAAAAAAAAAAAAAAAAAAAA");
  auto r = client_->ListGoals(req);
  EXPECT_THAT(r, StatusIs(Code::kInvalidArgument));
  EXPECT_THAT(ViolatedFields(r.status()), Contains("page_token"));
  req.set_page_token("not base64 at all!");
  r = client_->ListGoals(req);
  EXPECT_THAT(r, StatusIs(Code::kInvalidArgument));
  EXPECT_THAT(ViolatedFields(r.status()), Contains("page_token"));
}

TEST_F(GrpcApiTest, CorruptedPageTokenRejected) {
  for (int i = 0; i < 3; ++i) CreateGoal();
  v1::ListGoalsRequest req;
  req.set_parent(kParent);
  req.set_page_size(1);
  auto first = client_->ListGoals(req);
  ASSERT_TRUE(first.ok()) << first.status();
  const std::string token = first->next_page_token();
  ASSERT_FALSE(token.empty());
  int refused = 0;
  // Every character but the last carries only data bits (the last may hold padding bits).
  for (size_t at : {size_t{0}, token.size() / 2, token.size() - 2}) {
    std::string corrupted = token;
    corrupted[at] = corrupted[at] == 'g' ? 'A' : 'g';
    req.set_page_token(corrupted);
    auto r = client_->ListGoals(req);
    EXPECT_THAT(r, StatusIs(Code::kInvalidArgument)) << "changed position " << at;
    EXPECT_THAT(ViolatedFields(r.status()), Contains("page_token"));
    refused += r.status().code() == Code::kInvalidArgument;
  }
  EXPECT_EQ(refused, 3);
  req.set_page_token(token.substr(0, token.size() - 4));  // truncated
  EXPECT_THAT(client_->ListGoals(req), StatusIs(Code::kInvalidArgument));
  req.set_page_token(token);  // the real one still works
  auto second = client_->ListGoals(req);
  ASSERT_TRUE(second.ok()) << second.status();
  EXPECT_THAT(second->goals(), SizeIs(1));
}

TEST_F(GrpcApiTest, PageTokenOfAnotherQueryRejected) {
  for (int i = 0; i < 3; ++i) CreateGoal();
  CreateGoal(ValidGoal(), "patients/p2");
  v1::ListGoalsRequest req;
  req.set_parent(kParent);
  req.set_page_size(1);
  auto first = client_->ListGoals(req);
  ASSERT_TRUE(first.ok()) << first.status();
  ASSERT_FALSE(first->next_page_token().empty());
  req.set_parent("patients/p2");
  req.set_page_token(first->next_page_token());
  auto r = client_->ListGoals(req);
  EXPECT_THAT(r, StatusIs(Code::kInvalidArgument));
  EXPECT_THAT(ViolatedFields(r.status()), Contains("page_token"));
}

TEST_F(GrpcApiTest, RequestIdReusedForDifferentRequestAlreadyExists) {
  v1::CreateGoalRequest req;
  req.set_parent(kParent);
  *req.mutable_goal() = ValidGoal("Walk my daughter down the aisle");
  req.set_request_id("reused-id-1");
  auto first = client_->CreateGoal(req);
  ASSERT_TRUE(first.ok()) << first.status();
  req.mutable_goal()->set_description("A different goal");
  auto second = client_->CreateGoal(req);
  EXPECT_THAT(second, StatusIs(Code::kAlreadyExists));

  v1::ListGoalsRequest list;
  list.set_parent(kParent);
  auto listed = client_->ListGoals(list);
  ASSERT_TRUE(listed.ok()) << listed.status();
  ASSERT_THAT(listed->goals(), SizeIs(1));
  EXPECT_THAT(listed->goals(0), EqualsProto(*first));
  EXPECT_EQ(StopAndCountWrites(), 1);
}

TEST_F(GrpcApiTest, UnknownResourceNotFound) {
  const std::string id = "01J00000000000000000000000";
  v1::GetResourceRequest get;
  get.set_name(absl::StrCat("patients/p1/whatMatters/", id));
  EXPECT_THAT(client_->GetWhatMatters(get), StatusIs(Code::kNotFound));
  get.set_name(absl::StrCat("patients/p1/goals/", id));
  EXPECT_THAT(client_->GetGoal(get), StatusIs(Code::kNotFound));
  get.set_name(absl::StrCat("patients/p1/preferences/", id));
  EXPECT_THAT(client_->GetPreference(get), StatusIs(Code::kNotFound));

  v1::ListVersionsRequest versions;
  versions.set_name(absl::StrCat("patients/p1/goals/", id));
  EXPECT_THAT(client_->ListGoalVersions(versions), StatusIs(Code::kNotFound));

  v1::UpdateGoalRequest update;
  *update.mutable_goal() = ValidGoal();
  update.mutable_goal()->set_name(absl::StrCat("patients/p1/goals/", id));
  update.mutable_goal()->set_etag("W/\"1\"");
  EXPECT_THAT(client_->UpdateGoal(update), StatusIs(Code::kNotFound));
  EXPECT_THAT(client_->RetractPreference(Retraction(absl::StrCat("patients/p1/preferences/", id))),
              StatusIs(Code::kNotFound));
  // A goal that exists under another patient is not found under this one.
  const v1::Goal other = CreateGoal(ValidGoal(), "patients/p2");
  get.set_name(absl::StrCat("patients/p1/goals/", other.name().substr(other.name().rfind('/') + 1)));
  EXPECT_THAT(client_->GetGoal(get), StatusIs(Code::kNotFound));
  ExpectNothingStored(kParent);
  EXPECT_EQ(StopAndCountWrites(), 1);
}

TEST_F(GrpcApiTest, ExpiredDeadlineOnReadIsDeadlineExceeded) {
  const v1::Goal goal = CreateGoal();
  v1::GetResourceRequest get;
  get.set_name(goal.name());
  EXPECT_THAT(client_->GetGoal(get, absl::ZeroDuration()), StatusIs(Code::kDeadlineExceeded));
  EXPECT_THAT(client_->GetGoal(get, absl::Seconds(-1)), StatusIs(Code::kDeadlineExceeded));
  v1::GetPatientSummaryRequest summary;
  summary.set_parent(kParent);
  EXPECT_THAT(client_->GetPatientSummary(summary, absl::ZeroDuration()), StatusIs(Code::kDeadlineExceeded));
  // The same calls with time to spare succeed.
  EXPECT_TRUE(client_->GetGoal(get).ok());
  EXPECT_TRUE(client_->GetPatientSummary(summary).ok());
}

TEST_F(GrpcApiTest, ExpiredDeadlineOnWriteIsDeadlineExceededAndWritesNothing) {
  v1::CreateGoalRequest req;
  req.set_parent(kParent);
  *req.mutable_goal() = ValidGoal();
  req.set_request_id("deadline-1");
  EXPECT_THAT(client_->CreateGoal(req, absl::ZeroDuration()), StatusIs(Code::kDeadlineExceeded));
  // Sent anyway (raw, past the client library's own check): the server or
  // gRPC refuses it too.
  RawResult raw = RawUnaryCall(server_->target(), absl::StrCat(kService, "CreateGoal"), Bytes(req), absl::Seconds(-1));
  EXPECT_THAT(raw.status, StatusIs(Code::kDeadlineExceeded));
  ExpectNothingStored(kParent);
  EXPECT_EQ(StopAndCountWrites(), 0);
}

// ================================================================ server behaviour

TEST_F(GrpcApiTest, HealthCheckServing) {
  auto status = HealthCheck(server_->target());
  ASSERT_TRUE(status.ok()) << status.status();
  EXPECT_EQ(*status, 1);  // SERVING
  EXPECT_THAT(HealthCheck(server_->target(), "no.such.Service"), StatusIs(Code::kNotFound));
}

TEST_F(GrpcApiTest, ReflectionOnByDefault) {
  auto services = ReflectionListServices(server_->target());
  ASSERT_TRUE(services.ok()) << services.status();
  EXPECT_THAT(*services, Contains("wmty.v1.WhatMattersService"));
  EXPECT_THAT(*services, Contains("grpc.health.v1.Health"));
}

TEST_F(GrpcApiTest, ReflectionOffWithFlag) {
  Restart({"--reflection=false"});
  EXPECT_THAT(ReflectionListServices(server_->target()), StatusIs(Code::kUnimplemented));
  // The API itself is unaffected.
  auto health = HealthCheck(server_->target());
  ASSERT_TRUE(health.ok()) << health.status();
  EXPECT_EQ(*health, 1);
  EXPECT_EQ(CreateGoal().version(), 1);
}

TEST_F(GrpcApiTest, OversizedRequestRefusedAndServerStaysHealthy) {
  Restart({"--max_message_bytes=65536"});
  v1::CreateWhatMattersRequest req;
  req.set_parent(kParent);
  *req.mutable_what_matters() = ValidWhatMatters("Too long");
  req.mutable_what_matters()->set_prompt(std::string(100 * 1024, 'x'));
  auto r = client_->CreateWhatMatters(req);
  EXPECT_THAT(r, StatusIs(Code::kResourceExhausted));

  auto health = HealthCheck(server_->target());
  ASSERT_TRUE(health.ok()) << health.status();
  EXPECT_EQ(*health, 1);
  ExpectNothingStored(kParent);
  EXPECT_EQ(CreateWhatMatters().version(), 1);  // same client, same channel
  EXPECT_EQ(StopAndCountWrites(), 1);
}

TEST_F(GrpcApiTest, SigtermDrainsAndKeepsEveryAcknowledgedWrite) {
  constexpr int kThreads = 6;
  std::atomic<bool> stop{false};
  std::mutex mu;
  std::vector<v1::Goal> acknowledged;  // guarded by mu
  std::atomic<int> failures{0};
  std::vector<std::thread> writers;
  for (int t = 0; t < kThreads; ++t) {
    writers.emplace_back([&, t] {
      auto client = server_->NewClient(absl::Seconds(5));
      for (int i = 0; !stop.load(); ++i) {
        v1::CreateGoalRequest req;
        req.set_parent(absl::StrCat("patients/load-", t));
        *req.mutable_goal() = ValidGoal(absl::StrCat("Goal ", i, " of writer ", t));
        auto r = client->CreateGoal(req);
        if (r.ok()) {
          std::lock_guard<std::mutex> lock(mu);
          acknowledged.push_back(*r);
        } else {
          failures.fetch_add(1);
          absl::SleepFor(absl::Milliseconds(20));
        }
      }
    });
  }
  // Let the load build up (a count, not a speed: waits as long as needed).
  for (int i = 0; i < 3000; ++i) {
    {
      std::lock_guard<std::mutex> lock(mu);
      if (acknowledged.size() >= 30) break;
    }
    absl::SleepFor(absl::Milliseconds(10));
  }
  const int status = server_->Terminate();
  stop.store(true);
  for (auto& w : writers) w.join();
  EXPECT_TRUE(WIFEXITED(status)) << "wait status " << status;
  EXPECT_EQ(WEXITSTATUS(status), 0);
  const std::string log = ReadFile(server_->log_path());
  EXPECT_THAT(log, ::testing::HasSubstr("\"msg\":\"draining\""));
  EXPECT_THAT(log, ::testing::HasSubstr("\"msg\":\"stopped\""));
  ASSERT_GE(acknowledged.size(), 30u);

  Start();
  std::map<std::string, int> listed_per_patient;
  for (int t = 0; t < kThreads; ++t) {
    v1::ListGoalsRequest list;
    list.set_parent(absl::StrCat("patients/load-", t));
    list.set_page_size(1000);
    do {
      auto page = client_->ListGoals(list);
      ASSERT_TRUE(page.ok()) << page.status();
      listed_per_patient[list.parent()] += page->goals_size();
      list.set_page_token(page->next_page_token());
    } while (!list.page_token().empty());
  }
  std::map<std::string, int> acked_per_patient;
  int missing = 0;
  for (const v1::Goal& goal : acknowledged) {
    ++acked_per_patient[absl::StrCat("patients/", goal.patient().id())];
    v1::GetResourceRequest get;
    get.set_name(goal.name());
    auto stored = client_->GetGoal(get);
    if (!stored.ok()) {
      ++missing;
      ADD_FAILURE() << goal.name() << ": " << stored.status();
      continue;
    }
    EXPECT_THAT(*stored, EqualsProto(goal));
  }
  EXPECT_EQ(missing, 0);
  for (const auto& [parent, count] : acked_per_patient) EXPECT_GE(listed_per_patient[parent], count) << parent;
}

TEST_F(GrpcApiTest, NoPatientTextInLogs) {
  // Distinctive patient words, accepted and refused in every way that reaches
  // a different code path (validation, raw parser, size limit, conflicts).
  const std::string accepted = "Kestrel-4471 I want to hear Lucia play the cello";
  const v1::WhatMatters wm = CreateWhatMatters(ValidWhatMatters(accepted));

  const std::string invalid_dates = "Kestrel-5582 walk to the harbour";
  v1::CreateGoalRequest bad_goal;
  bad_goal.set_parent(kParent);
  *bad_goal.mutable_goal() = ValidGoal(invalid_dates);
  bad_goal.mutable_goal()->set_target_date("1999");
  EXPECT_THAT(client_->CreateGoal(bad_goal), StatusIs(Code::kInvalidArgument));

  const std::string bad_utf8 = "Kestrel-6693 MARKER-0000 my cat";
  v1::CreateGoalRequest utf8_goal;
  utf8_goal.set_parent(kParent);
  *utf8_goal.mutable_goal() = ValidGoal(bad_utf8);
  RawResult raw = RawUnaryCall(server_->target(), absl::StrCat(kService, "CreateGoal"),
                               ReplaceMarker(Bytes(utf8_goal), "MARKER-0000", "MARKER-\xff\xfe\xfd\xfc"));
  EXPECT_THAT(raw.status, StatusIs(Code::kInvalidArgument));

  const std::string too_long = "Kestrel-7704 ";
  v1::CreateWhatMattersRequest long_wm;
  long_wm.set_parent(kParent);
  std::string long_text;
  while (long_text.size() <= 16 * 1024) long_text += too_long;
  *long_wm.mutable_what_matters() = ValidWhatMatters(long_text);
  EXPECT_THAT(client_->CreateWhatMatters(long_wm), StatusIs(Code::kInvalidArgument));

  const std::string stale = "Kestrel-8815 no more hospital stays";
  v1::UpdateWhatMattersRequest update;
  *update.mutable_what_matters() = wm;
  update.mutable_what_matters()->set_statement(stale);
  update.mutable_what_matters()->set_etag("W/\"Kestrel-9926\"");
  EXPECT_THAT(client_->UpdateWhatMatters(update), StatusIs(Code::kAborted));

  RawResult garbage = RawUnaryCall(server_->target(), absl::StrCat(kService, "CreateWhatMatters"),
                                   std::string("\x12\x7fKestrel-1037 broken"));
  EXPECT_THAT(garbage.status, StatusIs(Code::kInvalidArgument));

  ASSERT_GE(StopAndCountWrites(), 1);
  const std::string log = ReadFile(server_->log_path());
  // The log was captured (so the absence below means something)...
  EXPECT_THAT(log, ::testing::HasSubstr("\"msg\":\"serving\""));
  EXPECT_THAT(log, ::testing::HasSubstr("\"msg\":\"stopped\""));
  // The invalid UTF-8 made protobuf log a line (naming the field only).
  EXPECT_THAT(log, ::testing::HasSubstr("\"msg\":\"protobuf\""));
  // ...and holds none of the patient's words.
  EXPECT_THAT(log, Not(::testing::HasSubstr("Kestrel"))) << log;
  EXPECT_THAT(log, Not(::testing::HasSubstr("Lucia"))) << log;
  EXPECT_THAT(log, Not(::testing::HasSubstr("harbour"))) << log;
}

}  // namespace
}  // namespace wmty::testing
