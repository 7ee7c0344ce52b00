// Clean restarts of the real wmtyd on the same data dir: everything written
// before SIGTERM reads back byte-for-byte identical afterwards (current
// versions, history, lists, priorities, the summary), and writes continue
// with the right versions, etags, idempotency and page tokens.
#include <sys/wait.h>

#include <map>
#include <string>
#include <vector>

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "absl/strings/str_cat.h"
#include "integration/integration_util.h"
#include "support/test_support.h"

namespace wmty::testing {
namespace {

using ::testing::ElementsAre;
using ::testing::SizeIs;
using Code = absl::StatusCode;

// Everything the API returns for some patients, as deterministic bytes keyed
// by what was asked (debug text kept for readable failures).
struct Snapshot {
  std::map<std::string, std::string> bytes;
  std::map<std::string, std::string> text;
  void Add(const std::string& key, const google::protobuf::Message& m) {
    bytes[key] = Bytes(m);
    text[key] = m.ShortDebugString();
  }
};

void ExpectSame(const Snapshot& before, const Snapshot& after) {
  EXPECT_EQ(before.bytes.size(), after.bytes.size());
  for (const auto& [key, value] : before.bytes) {
    auto it = after.bytes.find(key);
    if (it == after.bytes.end()) {
      ADD_FAILURE() << "missing after restart: " << key;
      continue;
    }
    EXPECT_EQ(it->second, value) << key << "\n  before: " << before.text.at(key)
                                 << "\n  after:  " << after.text.at(key);
  }
}

class RestartTest : public ::testing::Test {
 protected:
  void SetUp() override { Start(); }

  void Start() {
    auto server = ServerProcess::Start(data_dir());
    ASSERT_TRUE(server.ok()) << server.status();
    server_ = std::move(*server);
    client_ = server_->NewClient();
  }
  // SIGTERM, which must exit 0, then start again on the same data dir.
  void Restart() {
    client_.reset();
    const int status = server_->Terminate();
    ASSERT_TRUE(WIFEXITED(status)) << "wait status " << status;
    ASSERT_EQ(WEXITSTATUS(status), 0);
    const std::optional<uint64_t> stopped = LoggedLastSequence(ReadFile(server_->log_path()), "stopped");
    ASSERT_TRUE(stopped.has_value());
    Start();
    // The restarted store resumes at the sequence the stopped one closed with.
    EXPECT_EQ(LoggedLastSequence(ReadFile(server_->log_path()), "serving"), stopped);
  }
  std::string data_dir() const { return dir_.path() + "/data"; }

  template <class Resp>
  Resp Ok(absl::StatusOr<Resp> r) {
    EXPECT_TRUE(r.ok()) << r.status();
    return r.value_or(Resp());
  }

  v1::WhatMatters CreateWhatMatters(const std::string& parent, const v1::WhatMatters& wm) {
    v1::CreateWhatMattersRequest req;
    req.set_parent(parent);
    *req.mutable_what_matters() = wm;
    return Ok(client_->CreateWhatMatters(req));
  }
  v1::Goal CreateGoal(const std::string& parent, const v1::Goal& goal, const std::string& request_id = "") {
    v1::CreateGoalRequest req;
    req.set_parent(parent);
    *req.mutable_goal() = goal;
    req.set_request_id(request_id);
    return Ok(client_->CreateGoal(req));
  }
  v1::Preference CreatePreference(const std::string& parent, const v1::Preference& p) {
    v1::CreatePreferenceRequest req;
    req.set_parent(parent);
    *req.mutable_preference() = p;
    return Ok(client_->CreatePreference(req));
  }
  v1::Priorities SetPriorities(const std::string& parent, const std::vector<std::string>& items,
                               const std::string& etag) {
    v1::UpdatePrioritiesRequest req;
    req.mutable_priorities()->set_name(parent + "/priorities");
    for (const auto& item : items) req.mutable_priorities()->add_items(item);
    req.mutable_priorities()->set_etag(etag);
    *req.mutable_priorities()->mutable_provenance() = NurseProvenance();
    return Ok(client_->UpdatePriorities(req));
  }
  v1::RetractRequest Retraction(const std::string& name) {
    v1::RetractRequest req;
    req.set_name(name);
    req.set_reason("duplicate entry");
    req.mutable_retracted_by()->set_practitioner_id("nurse-17");
    return req;
  }

  // Everything readable about `parents` and the resources in `names`.
  Snapshot Take(const std::vector<std::string>& parents, const std::vector<std::string>& names) {
    Snapshot s;
    for (const std::string& parent : parents) {
      v1::ListWhatMattersRequest wm;
      wm.set_parent(parent);
      wm.set_page_size(1000);
      wm.mutable_filter()->set_show_retracted(true);
      s.Add("list whatMatters " + parent, Ok(client_->ListWhatMatters(wm)));
      v1::ListGoalsRequest goals;
      goals.set_parent(parent);
      goals.set_page_size(1000);
      goals.mutable_filter()->set_show_retracted(true);
      s.Add("list goals " + parent, Ok(client_->ListGoals(goals)));
      v1::ListPreferencesRequest prefs;
      prefs.set_parent(parent);
      prefs.set_page_size(1000);
      prefs.mutable_filter()->set_show_retracted(true);
      s.Add("list preferences " + parent, Ok(client_->ListPreferences(prefs)));
      v1::GetResourceRequest pri;
      pri.set_name(parent + "/priorities");
      s.Add("priorities " + parent, Ok(client_->GetPriorities(pri)));
      v1::ListVersionsRequest pri_versions;
      pri_versions.set_name(parent + "/priorities");
      s.Add("priorities versions " + parent, Ok(client_->ListPrioritiesVersions(pri_versions)));
      v1::GetPatientSummaryRequest summary;
      summary.set_parent(parent);
      s.Add("summary " + parent, Ok(client_->GetPatientSummary(summary)));
    }
    for (const std::string& name : names) {
      v1::GetResourceRequest get;
      get.set_name(name);
      v1::ListVersionsRequest versions;
      versions.set_name(name);
      if (name.find("/whatMatters/") != std::string::npos) {
        s.Add("get " + name, Ok(client_->GetWhatMatters(get)));
        s.Add("versions " + name, Ok(client_->ListWhatMattersVersions(versions)));
      } else if (name.find("/goals/") != std::string::npos) {
        s.Add("get " + name, Ok(client_->GetGoal(get)));
        s.Add("versions " + name, Ok(client_->ListGoalVersions(versions)));
      } else {
        s.Add("get " + name, Ok(client_->GetPreference(get)));
        s.Add("versions " + name, Ok(client_->ListPreferenceVersions(versions)));
      }
    }
    return s;
  }

  TempDir dir_;
  std::unique_ptr<ServerProcess> server_;
  std::unique_ptr<client::Client> client_;
};

TEST_F(RestartTest, EverythingReadsBackIdenticallyAfterCleanRestart) {
  const std::string p1 = "patients/p1", p2 = "patients/p2.b-7";
  std::vector<std::string> names;

  // p1: a what-matters answer edited twice, one retracted, linked goals,
  // three kinds of preference, priorities set twice.
  v1::WhatMatters wm1 = CreateWhatMatters(p1, ValidWhatMatters("Being home for my garden"));
  v1::UpdateWhatMattersRequest wm_update;
  *wm_update.mutable_what_matters() = wm1;
  wm_update.mutable_what_matters()->set_statement("Being home for my garden, and my dog Pepa");
  wm_update.mutable_update_mask()->add_paths("statement");
  wm1 = Ok(client_->UpdateWhatMatters(wm_update));
  wm_update.clear_request_id();
  *wm_update.mutable_what_matters() = wm1;
  wm_update.mutable_what_matters()->add_dignity_elements(v1::SAFETY);
  wm_update.clear_update_mask();
  wm1 = Ok(client_->UpdateWhatMatters(wm_update));
  ASSERT_EQ(wm1.version(), 3);
  const v1::WhatMatters wm2 = CreateWhatMatters(p1, ValidWhatMatters("Written on the wrong chart"));
  ASSERT_EQ(Ok(client_->RetractWhatMatters(Retraction(wm2.name()))).version(), 2);
  const v1::WhatMatters wm3 = CreateWhatMatters(p1, ValidWhatMatters("Qué me importa: mi familia 家族 🌻"));

  v1::Goal g1 = ValidGoal("Walk to the end of the pier");
  g1.add_what_matters(wm1.name());
  g1.add_what_matters(wm3.name());
  v1::Note* note = g1.add_notes();
  note->set_text("Physio agrees: 3 short walks a day");
  note->set_author("pt-3");
  g1 = CreateGoal(p1, g1);
  v1::UpdateGoalRequest goal_update;
  goal_update.mutable_goal()->set_name(g1.name());
  goal_update.mutable_goal()->set_etag(g1.etag());
  goal_update.mutable_goal()->set_achievement_status(v1::IMPROVING);
  *goal_update.mutable_goal()->mutable_provenance() = NurseProvenance();
  goal_update.mutable_update_mask()->add_paths("achievement_status");
  g1 = Ok(client_->UpdateGoal(goal_update));
  const v1::Goal g2 = CreateGoal(p1, ValidGoal("Eat Christmas dinner at home"));

  v1::Preference channels = CreatePreference(p1, ValidPreference());
  v1::Preference window;
  window.set_kind(v1::CONTACT_TIME_WINDOW);
  window.mutable_contact_window()->add_days_of_week(1);
  window.mutable_contact_window()->add_days_of_week(3);
  window.mutable_contact_window()->set_start_time("09:30");
  window.mutable_contact_window()->set_end_time("12:00");
  window.mutable_contact_window()->set_time_zone("America/Chicago");
  *window.mutable_provenance() = NurseProvenance();
  window = CreatePreference(p1, window);
  v1::Preference family;
  family.set_kind(v1::FAMILY_INVOLVEMENT);
  family.mutable_family_involvement()->set_person_name("Rosa");
  family.mutable_family_involvement()->set_relationship("daughter");
  family.mutable_family_involvement()->set_how("present for care decisions");
  family.set_value_text("Rosa decides with me");
  *family.mutable_provenance() = NurseProvenance();
  family.mutable_provenance()->mutable_said_by()->set_kind(v1::Speaker::RELATED_PERSON);
  family.mutable_provenance()->mutable_said_by()->set_name("Rosa");
  family.mutable_provenance()->mutable_said_by()->set_relationship("daughter");
  family = CreatePreference(p1, family);

  v1::Priorities pri = SetPriorities(p1, {g1.name(), wm1.name()}, "");
  pri = SetPriorities(p1, {wm3.name(), g1.name(), family.name(), wm1.name()}, pri.etag());
  ASSERT_EQ(pri.version(), 2);

  // p2: a little of everything.
  const v1::WhatMatters p2_wm = CreateWhatMatters(p2, ValidWhatMatters("Going back to work"));
  const v1::Goal p2_goal = CreateGoal(p2, ValidGoal("Drive again by spring"));
  SetPriorities(p2, {p2_goal.name()}, "");

  for (const auto* m : std::vector<const google::protobuf::Message*>{&wm1, &wm2, &wm3, &g1, &g2, &channels, &window,
                                                                     &family, &p2_wm, &p2_goal}) {
    names.push_back(m->GetReflection()->GetString(*m, m->GetDescriptor()->FindFieldByName("name")));
  }
  ASSERT_THAT(names, SizeIs(10));
  for (const auto& n : names) ASSERT_FALSE(n.empty());

  const Snapshot before = Take({p1, p2}, names);
  ASSERT_NO_FATAL_FAILURE(Restart());
  const Snapshot after = Take({p1, p2}, names);
  ExpectSame(before, after);

  // A second restart with nothing written in between changes nothing either.
  ASSERT_NO_FATAL_FAILURE(Restart());
  ExpectSame(before, Take({p1, p2}, names));
}

TEST_F(RestartTest, WritesContinueWithCorrectVersionsAfterRestart) {
  const std::string parent = "patients/p1";
  v1::Goal goal = CreateGoal(parent, ValidGoal("Garden again"), "create-goal-1");
  const v1::Goal created = goal;
  v1::UpdateGoalRequest update;
  *update.mutable_goal() = goal;
  update.mutable_goal()->set_description("Garden again, raised beds");
  goal = Ok(client_->UpdateGoal(update));
  ASSERT_EQ(goal.version(), 2);
  const v1::Goal before_restart = goal;
  CreateGoal(parent, ValidGoal("Second goal"));
  CreateGoal(parent, ValidGoal("Third goal"));
  const v1::Priorities pri = SetPriorities(parent, {goal.name()}, "");

  v1::ListGoalsRequest list;
  list.set_parent(parent);
  list.set_page_size(1);
  const v1::ListGoalsResponse first_page = Ok(client_->ListGoals(list));
  ASSERT_FALSE(first_page.next_page_token().empty());

  ASSERT_NO_FATAL_FAILURE(Restart());

  // Etags from before the restart still work, and versions continue.
  update.clear_request_id();
  *update.mutable_goal() = before_restart;
  update.mutable_goal()->set_description("Garden again, raised beds and tomatoes");
  auto v3 = client_->UpdateGoal(update);
  ASSERT_TRUE(v3.ok()) << v3.status();
  EXPECT_EQ(v3->version(), 3);
  EXPECT_THAT(v3->create_time(), EqualsProto(created.create_time()));
  // ...and a stale one is still refused.
  update.clear_request_id();
  *update.mutable_goal() = created;
  EXPECT_THAT(client_->UpdateGoal(update), StatusIs(Code::kAborted));

  v1::ListVersionsRequest versions;
  versions.set_name(goal.name());
  const v1::ListGoalsResponse history = Ok(client_->ListGoalVersions(versions));
  ASSERT_THAT(history.goals(), SizeIs(3));
  EXPECT_THAT(history.goals(0), EqualsProto(created));
  EXPECT_THAT(history.goals(1), EqualsProto(before_restart));
  EXPECT_THAT(history.goals(2), EqualsProto(*v3));

  const v1::Priorities pri2 = SetPriorities(parent, {goal.name()}, pri.etag());
  EXPECT_EQ(pri2.version(), 2);

  // A request id used before the restart still replays its first result.
  v1::CreateGoalRequest replay;
  replay.set_parent(parent);
  *replay.mutable_goal() = ValidGoal("Garden again");
  replay.set_request_id("create-goal-1");
  auto replayed = client_->CreateGoal(replay);
  ASSERT_TRUE(replayed.ok()) << replayed.status();
  EXPECT_THAT(*replayed, EqualsProto(created));
  replay.mutable_goal()->set_description("Something else");
  EXPECT_THAT(client_->CreateGoal(replay), StatusIs(Code::kAlreadyExists));

  // A page token from before the restart continues where it left off.
  list.set_page_token(first_page.next_page_token());
  const v1::ListGoalsResponse second_page = Ok(client_->ListGoals(list));
  ASSERT_THAT(second_page.goals(), SizeIs(1));
  EXPECT_EQ(second_page.goals(0).description(), "Second goal");

  // New resources start at version 1 and list after the old ones.
  const v1::Goal fresh = CreateGoal(parent, ValidGoal("Fourth goal"));
  EXPECT_EQ(fresh.version(), 1);
  v1::ListGoalsRequest all;
  all.set_parent(parent);
  const v1::ListGoalsResponse listed = Ok(client_->ListGoals(all));
  ASSERT_THAT(listed.goals(), SizeIs(4));
  EXPECT_EQ(listed.goals(3).name(), fresh.name());

  auto retracted = client_->RetractGoal(Retraction(goal.name()));
  ASSERT_TRUE(retracted.ok()) << retracted.status();
  EXPECT_EQ(retracted->version(), 4);

  // And all of it survives one more restart.
  ASSERT_NO_FATAL_FAILURE(Restart());
  v1::GetResourceRequest get;
  get.set_name(goal.name());
  auto after = client_->GetGoal(get);
  ASSERT_TRUE(after.ok()) << after.status();
  EXPECT_THAT(*after, EqualsProto(*retracted));
  std::vector<int64_t> all_versions;
  const v1::ListGoalsResponse final_history = Ok(client_->ListGoalVersions(versions));
  for (const auto& g : final_history.goals()) all_versions.push_back(g.version());
  EXPECT_THAT(all_versions, ElementsAre(1, 2, 3, 4));
}

}  // namespace
}  // namespace wmty::testing
