// wmtyctl end to end: the real wmtyctl binary against the real wmtyd (port 0,
// temp data dir). Responses are read back with --json into the wmty.v1
// messages, so assertions are on parsed fields, not on text layout.
#include "support/wmtyctl.h"

#include <signal.h>

#include <memory>
#include <string>
#include <vector>

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "absl/strings/ascii.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "support/child_process.h"
#include "support/test_support.h"
#include "wmty/v1/service.pb.h"

namespace wmty::testing {
namespace {

using ::testing::ElementsAre;
using ::testing::HasSubstr;
using ::testing::IsEmpty;
using ::testing::Not;
using ::testing::StartsWith;

std::string KebabCase(const std::string& camel) {
  std::string out;
  for (char c : camel) {
    if (absl::ascii_isupper(c) && !out.empty()) out.push_back('-');
    out.push_back(absl::ascii_tolower(c));
  }
  return out;
}

std::vector<std::string> Provenance(const std::string& prefix) {
  return {absl::StrCat("--", prefix, ".provenance.recorded_by.practitioner_id=nurse-1"),
          absl::StrCat("--", prefix, ".provenance.said_by.kind=PATIENT")};
}

std::vector<std::string> Concat(std::vector<std::string> a, const std::vector<std::string>& b) {
  a.insert(a.end(), b.begin(), b.end());
  return a;
}

// One server for the suite; each test uses its own patient.
class WmtyctlTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    dir_ = new TempDir();
    auto server = ServerProcess::Start(dir_->path() + "/data");
    ASSERT_TRUE(server.ok()) << server.status();
    server_ = server->release();
  }
  static void TearDownTestSuite() {
    delete server_;
    delete dir_;
    server_ = nullptr;
    dir_ = nullptr;
  }

  // wmtyctl --target=<server> --json <args...>
  static CtlResult Json(std::vector<std::string> args) {
    args.insert(args.begin(), {"--target=" + server_->target(), "--json"});
    return RunCtl(std::move(args));
  }
  static CtlResult Text(std::vector<std::string> args) {
    args.insert(args.begin(), "--target=" + server_->target());
    return RunCtl(std::move(args));
  }

  static v1::Goal CreateGoal(const std::string& parent, const std::string& description) {
    return ParseJson<v1::Goal>(Json(Concat({"create-goal", "--parent=" + parent, "--goal.description=" + description,
                                            "--goal.lifecycle_status=GOAL_ACTIVE"},
                                           Provenance("goal"))));
  }

  static TempDir* dir_;
  static ServerProcess* server_;
};

TempDir* WmtyctlTest::dir_ = nullptr;
ServerProcess* WmtyctlTest::server_ = nullptr;

TEST_F(WmtyctlTest, GoalLifecycle) {
  // Create with field flags, including a repeated enum and a JSON sub-message.
  CtlResult created_out = Json(Concat(
      {"create-goal", "--parent=patients/p1", "--goal.description=Walk to the mailbox",
       "--goal.lifecycle_status=GOAL_ACTIVE", "--goal.categories=PERSONAL_HEALTH_GOAL", "--goal.categories=BEHAVIORAL",
       "--goal.start_date=2026-01", R"(--goal.notes={"text":"Said at bedside","author":"nurse-1"})",
       "--goal.provenance.said_time=2024-05-01T09:30:00Z"},
      Provenance("goal")));
  // Proto field names, enums by name.
  EXPECT_THAT(created_out.output, HasSubstr(R"("lifecycle_status": "GOAL_ACTIVE")"));
  EXPECT_THAT(created_out.output, HasSubstr(R"("practitioner_id": "nurse-1")"));
  const auto created = ParseJson<v1::Goal>(created_out);
  EXPECT_THAT(created.name(), StartsWith("patients/p1/goals/"));
  EXPECT_EQ(created.description(), "Walk to the mailbox");
  EXPECT_EQ(created.lifecycle_status(), v1::GOAL_ACTIVE);
  EXPECT_THAT(created.categories(), ElementsAre(v1::PERSONAL_HEALTH_GOAL, v1::BEHAVIORAL));
  EXPECT_EQ(created.start_date(), "2026-01");
  ASSERT_EQ(created.notes_size(), 1);
  EXPECT_EQ(created.notes(0).author(), "nurse-1");
  EXPECT_EQ(created.provenance().recorded_by().practitioner_id(), "nurse-1");
  EXPECT_EQ(created.provenance().said_by().kind(), v1::Speaker::PATIENT);
  EXPECT_EQ(created.provenance().said_time().seconds(), 1714555800);
  EXPECT_EQ(created.version(), 1);
  EXPECT_EQ(created.etag(), R"(W/"1")");

  // Get: JSON and the readable header line.
  const auto got = ParseJson<v1::Goal>(Json({"get-goal", "--name=" + created.name()}));
  EXPECT_EQ(got.name(), created.name());
  EXPECT_EQ(got.description(), "Walk to the mailbox");
  CtlResult text = Text({"get-goal", "--name", created.name()});
  EXPECT_EQ(text.exit_code, 0) << text.output;
  EXPECT_THAT(text.output, StartsWith(absl::StrCat("Goal ", created.name(), R"( (version 1, etag W/"1"))")));
  EXPECT_THAT(text.output, HasSubstr("lifecycle_status: GOAL_ACTIVE"));

  // Update two fields through the mask; the rest is kept.
  const auto updated = ParseJson<v1::Goal>(
      Json(Concat({"update-goal", "--goal.name=" + created.name(), "--goal.etag=" + created.etag(),
                   "--update_mask=achievement_status,priority", "--goal.achievement_status=IMPROVING",
                   "--goal.priority=HIGH_PRIORITY", "--goal.description=ignored: not in the mask"},
                  Provenance("goal"))));
  EXPECT_EQ(updated.version(), 2);
  EXPECT_EQ(updated.achievement_status(), v1::IMPROVING);
  EXPECT_EQ(updated.priority(), v1::HIGH_PRIORITY);
  EXPECT_EQ(updated.description(), "Walk to the mailbox");

  // The old etag is now stale.
  CtlResult stale = Json(Concat({"update-goal", "--goal.name=" + created.name(), "--goal.etag=" + created.etag(),
                                 "--update_mask=priority", "--goal.priority=LOW_PRIORITY"},
                                Provenance("goal")));
  EXPECT_EQ(stale.exit_code, 1);
  EXPECT_THAT(stale.output, HasSubstr("ABORTED"));

  const auto listed = ParseJson<v1::ListGoalsResponse>(Json({"list-goals", "--parent=patients/p1"}));
  ASSERT_EQ(listed.goals_size(), 1);
  EXPECT_EQ(listed.goals(0).name(), created.name());
  EXPECT_EQ(listed.goals(0).version(), 2);
  const auto filtered =
      ParseJson<v1::ListGoalsResponse>(Json({"list-goals", "--parent=patients/p1", "--lifecycle_statuses=COMPLETED"}));
  EXPECT_EQ(filtered.goals_size(), 0);

  const auto versions = ParseJson<v1::ListGoalsResponse>(Json({"list-goal-versions", "--name=" + created.name()}));
  ASSERT_EQ(versions.goals_size(), 2);
  EXPECT_EQ(versions.goals(0).version(), 1);
  EXPECT_EQ(versions.goals(0).achievement_status(), v1::GOAL_ACHIEVEMENT_STATUS_UNSPECIFIED);
  EXPECT_EQ(versions.goals(1).version(), 2);
  EXPECT_EQ(versions.goals(1).achievement_status(), v1::IMPROVING);

  const auto retracted =
      ParseJson<v1::Goal>(Json({"retract-goal", "--name=" + created.name(), "--etag=" + updated.etag(),
                                "--reason=Entered for the wrong patient", "--retracted_by.practitioner_id=nurse-2"}));
  EXPECT_EQ(retracted.state(), v1::RETRACTED);
  EXPECT_EQ(retracted.version(), 3);
  EXPECT_EQ(retracted.retract_reason(), "Entered for the wrong patient");
  EXPECT_EQ(ParseJson<v1::ListGoalsResponse>(Json({"list-goals", "--parent=patients/p1"})).goals_size(), 0);
  // A bare bool flag means true.
  const auto with_retracted =
      ParseJson<v1::ListGoalsResponse>(Json({"list-goals", "--parent=patients/p1", "--filter.show_retracted"}));
  ASSERT_EQ(with_retracted.goals_size(), 1);
  EXPECT_EQ(with_retracted.goals(0).state(), v1::RETRACTED);
  CtlResult retracted_text = Text({"get-goal", "--name=" + created.name()});
  EXPECT_THAT(retracted_text.output, HasSubstr(R"((version 3, etag W/"3", RETRACTED))"));
}

TEST_F(WmtyctlTest, RequestIdMakesCreateIdempotent) {
  const std::vector<std::string> args = Concat(
      {"create-goal", "--parent=patients/p2", "--goal.description=Sleep through", "--goal.lifecycle_status=PROPOSED"},
      Provenance("goal"));
  const auto first = ParseJson<v1::Goal>(Json(Concat(args, {"--request_id=ctl-test-1"})));
  const auto second = ParseJson<v1::Goal>(Json(Concat(args, {"--request_id=ctl-test-1"})));
  EXPECT_EQ(first.name(), second.name());
  EXPECT_EQ(ParseJson<v1::ListGoalsResponse>(Json({"list-goals", "--parent=patients/p2"})).goals_size(), 1);
  // Without --request_id the client makes a fresh one per invocation.
  EXPECT_NE(ParseJson<v1::Goal>(Json(args)).name(), ParseJson<v1::Goal>(Json(args)).name());
  EXPECT_EQ(ParseJson<v1::ListGoalsResponse>(Json({"list-goals", "--parent=patients/p2"})).goals_size(), 3);
}

TEST_F(WmtyctlTest, WhatMattersPreferencesPrioritiesAndSummary) {
  const std::string parent = "patients/p3";
  const auto wm = ParseJson<v1::WhatMatters>(
      Json(Concat({"create-what-matters", "--parent=" + parent, "--what_matters.statement=Being home for my garden",
                   "--what_matters.life_domains=HOME_AND_DAILY_LIFE", "--what_matters.life_domains=HOBBIES_AND_JOY",
                   "--what_matters.dignity_elements=INDEPENDENCE"},
                  Provenance("what_matters"))));
  EXPECT_THAT(wm.name(), StartsWith(parent + "/whatMatters/"));
  EXPECT_THAT(wm.life_domains(), ElementsAre(v1::HOME_AND_DAILY_LIFE, v1::HOBBIES_AND_JOY));
  EXPECT_EQ(ParseJson<v1::WhatMatters>(Json({"get-what-matters", "--name=" + wm.name()})).statement(),
            "Being home for my garden");
  EXPECT_EQ(ParseJson<v1::ListWhatMattersResponse>(
                Json({"list-what-matters", "--parent=" + parent, "--life_domains=HOBBIES_AND_JOY"}))
                .what_matters_size(),
            1);
  EXPECT_EQ(ParseJson<v1::ListWhatMattersResponse>(
                Json({"list-what-matters", "--parent=" + parent, "--life_domains=FINANCES"}))
                .what_matters_size(),
            0);
  const auto wm2 = ParseJson<v1::WhatMatters>(
      Json(Concat({"update-what-matters", "--what_matters.name=" + wm.name(), "--what_matters.etag=" + wm.etag(),
                   "--update_mask=prompt", "--what_matters.prompt=What matters most to you today?"},
                  Provenance("what_matters"))));
  EXPECT_EQ(wm2.prompt(), "What matters most to you today?");
  EXPECT_EQ(ParseJson<v1::ListWhatMattersResponse>(Json({"list-what-matters-versions", "--name=" + wm.name()}))
                .what_matters_size(),
            2);

  // The whole request as JSON; a field flag overrides the JSON's parent.
  const std::string request = R"({"parent": "patients/elsewhere", "preference": {
      "kind": "COMMUNICATION_CHANNELS", "value_text": "Text me first, then call",
      "channel_ranking": {"channels": ["EMAIL"]},
      "provenance": {"recorded_by": {"practitioner_id": "nurse-1"}, "said_by": {"kind": "PATIENT"}}}})";
  const auto pref = ParseJson<v1::Preference>(
      Json({"create-preference", "--request=" + request, "--parent=" + parent,
            "--preference.channel_ranking.channels=SMS", "--preference.channel_ranking.channels=PHONE_CALL"}));
  EXPECT_THAT(pref.name(), StartsWith(parent + "/preferences/"));
  EXPECT_EQ(pref.kind(), v1::COMMUNICATION_CHANNELS);
  // Flags replace a repeated field from the JSON rather than appending to it.
  EXPECT_THAT(pref.channel_ranking().channels(), ElementsAre(v1::SMS, v1::PHONE_CALL));
  EXPECT_EQ(ParseJson<v1::Preference>(Json({"get-preference", "--name=" + pref.name()})).value_text(),
            "Text me first, then call");
  EXPECT_EQ(ParseJson<v1::ListPreferencesResponse>(
                Json({"list-preferences", "--parent=" + parent, "--kinds=COMMUNICATION_CHANNELS"}))
                .preferences_size(),
            1);

  const auto g1 = CreateGoal(parent, "Dance at the wedding");
  const auto g2 = CreateGoal(parent, "Walk the dog");

  // Before the first update the priorities exist empty at version 0.
  const auto empty = ParseJson<v1::Priorities>(Json({"get-priorities", "--name=" + parent + "/priorities"}));
  EXPECT_EQ(empty.version(), 0);
  EXPECT_THAT(empty.items(), IsEmpty());

  // Ranked g1 before g2: the opposite of the default (most recent first).
  const auto prio = ParseJson<v1::Priorities>(Json(
      Concat({"update-priorities", "--priorities.name=" + parent + "/priorities", "--priorities.items=" + g1.name(),
              "--priorities.items=" + pref.name(), "--priorities.items=" + g2.name()},
             Provenance("priorities"))));
  EXPECT_EQ(prio.version(), 1);
  EXPECT_THAT(prio.items(), ElementsAre(g1.name(), pref.name(), g2.name()));
  EXPECT_EQ(ParseJson<v1::Priorities>(Json({"get-priorities", "--name=" + parent + "/priorities"})).etag(),
            prio.etag());
  EXPECT_EQ(ParseJson<v1::ListPrioritiesVersionsResponse>(
                Json({"list-priorities-versions", "--name=" + parent + "/priorities"}))
                .priorities_size(),
            1);

  const auto summary = ParseJson<v1::PatientSummary>(Json({"get-patient-summary", "--parent=" + parent}));
  EXPECT_EQ(summary.parent(), parent);
  EXPECT_THAT(summary.priorities().items(), ElementsAre(g1.name(), pref.name(), g2.name()));
  ASSERT_EQ(summary.goals_size(), 2);
  EXPECT_EQ(summary.goals(0).name(), g1.name());
  EXPECT_EQ(summary.goals(1).name(), g2.name());
  ASSERT_EQ(summary.what_matters_size(), 1);
  EXPECT_EQ(summary.what_matters(0).version(), 2);
  ASSERT_EQ(summary.preferences_size(), 1);

  // Retracting hides an entry from the summary.
  const auto pref_gone = ParseJson<v1::Preference>(
      Json({"retract-preference", "--name=" + pref.name(), "--retracted_by.practitioner_id=nurse-1"}));
  EXPECT_EQ(pref_gone.state(), v1::RETRACTED);
  EXPECT_EQ(ParseJson<v1::ListPreferencesResponse>(Json({"list-preference-versions", "--name=" + pref.name()}))
                .preferences_size(),
            2);
  const auto wm_gone = ParseJson<v1::WhatMatters>(
      Json({"retract-what-matters", "--name=" + wm.name(), "--retracted_by.practitioner_id=nurse-1"}));
  EXPECT_EQ(wm_gone.state(), v1::RETRACTED);
  const auto after = ParseJson<v1::PatientSummary>(Json({"get-patient-summary", "--parent=" + parent}));
  EXPECT_EQ(after.preferences_size(), 0);
  EXPECT_EQ(after.what_matters_size(), 0);
  EXPECT_EQ(after.goals_size(), 2);

  // The readable summary names each section.
  CtlResult text = Text({"get-patient-summary", "--parent=" + parent});
  EXPECT_EQ(text.exit_code, 0) << text.output;
  EXPECT_THAT(text.output, HasSubstr("goals: 2 items"));
  EXPECT_THAT(text.output, HasSubstr(absl::StrCat("Goal ", g1.name(), " (version 1")));
}

TEST_F(WmtyctlTest, InvalidRequestPrintsFieldViolations) {
  CtlResult r = Json(
      Concat({"create-goal", "--parent=patients/p4", "--goal.description=   ", "--goal.lifecycle_status=GOAL_ACTIVE"},
             Provenance("goal")));
  EXPECT_EQ(r.exit_code, 1) << r.output;
  EXPECT_THAT(r.output, HasSubstr("INVALID_ARGUMENT"));
  EXPECT_THAT(r.output, HasSubstr("  goal.description: "));
  EXPECT_EQ(ParseJson<v1::ListGoalsResponse>(Json({"list-goals", "--parent=patients/p4"})).goals_size(), 0);

  CtlResult missing = Json({"get-goal", "--name=patients/p4/goals/NOSUCHGOAL"});
  EXPECT_EQ(missing.exit_code, 1);
  EXPECT_THAT(missing.output, HasSubstr("NOT_FOUND"));
}

// The readable output shows the patient's words as stored: no quotes and no
// escapes that would read as part of them.
TEST_F(WmtyctlTest, ReadableOutputShowsTextAsStored) {
  const std::string words = "Being home in time for my granddaughter's \"big day\"\nand dancing\tall night";
  const auto created = ParseJson<v1::WhatMatters>(
      Json(Concat({"create-what-matters", "--parent=patients/p-text", "--what_matters.statement=" + words},
                  Provenance("what_matters"))));
  ASSERT_EQ(created.statement(), words);
  CtlResult text = Text({"get-what-matters", "--name=" + created.name()});
  ASSERT_EQ(text.exit_code, 0) << text.output;
  EXPECT_THAT(
      text.output,
      HasSubstr("  statement: Being home in time for my granddaughter's \"big day\"\n    and dancing\tall night\n"));
  EXPECT_THAT(text.output, Not(HasSubstr("\\'")));
  EXPECT_THAT(text.output, Not(HasSubstr("\\\"")));
  EXPECT_THAT(text.output, Not(HasSubstr("\\n")));
}

// `wmtyctl watch` as it runs: one line per change without patient text,
// heartbeats on request, a clean stop on SIGINT with the sequence to resume
// from, and a resumed watch with --resources and --json.
TEST_F(WmtyctlTest, WatchPrintsChangesAndStopsCleanlyOnSigint) {
  ChildProcess watch({WMTYCTL_PATH, "--target=" + server_->target(), "watch", "--parent=patients/watch-1",
                      "--heartbeat_interval=1s", "--heartbeats"},
                     {});
  // A heartbeat: the watch is on, every later change will be printed.
  ASSERT_TRUE(watch.ReadStdoutUntil("heartbeat head ")) << watch.out() << watch.err();
  const v1::Goal goal = CreateGoal("patients/watch-1", "Dance at my granddaughter's wedding");
  CreateGoal("patients/watch-2", "Another patient's goal");  // filtered out by --parent
  CtlResult retract = Json(
      {"retract-goal", "--name=" + goal.name(), "--reason=Entered twice", "--retracted_by.practitioner_id=nurse-1"});
  ASSERT_EQ(retract.exit_code, 0) << retract.output;
  ASSERT_TRUE(watch.ReadStdoutUntil(" RETRACT ")) << watch.out() << watch.err();
  watch.Signal(SIGINT);
  EXPECT_EQ(watch.Wait(), 0) << watch.out() << watch.err();

  std::vector<std::vector<std::string>> changes;  // SEQUENCE KIND NAME VERSION OPERATION TIME
  for (absl::string_view line : absl::StrSplit(watch.out(), '\n', absl::SkipEmpty())) {
    if (!absl::StartsWith(line, "heartbeat ")) changes.push_back(absl::StrSplit(line, ' '));
  }
  ASSERT_EQ(changes.size(), 2u) << watch.out();
  EXPECT_THAT(changes[0], ElementsAre(::testing::_, "GOAL", goal.name(), "1", "CREATE", ::testing::EndsWith("Z")));
  EXPECT_THAT(changes[1], ElementsAre(::testing::_, "GOAL", goal.name(), "2", "RETRACT", ::testing::EndsWith("Z")));
  EXPECT_THAT(watch.out(), Not(HasSubstr("Dance")));  // no patient text without --resources
  EXPECT_THAT(watch.out(), Not(HasSubstr("watch-2")));
  const std::string last = changes[1][0];
  EXPECT_THAT(watch.err(), HasSubstr("wmtyctl watch: stopped after sequence "));
  EXPECT_THAT(watch.err(), Not(HasSubstr("reconnecting")));

  // Resumed from before the first change: both again, with the resource.
  const std::string first_minus_one = std::to_string(std::stoull(changes[0][0]) - 1);
  CtlResult resumed =
      Text({"watch", "--parent=patients/watch-1", "--start_after=" + first_minus_one, "--resources", "--max_events=2"});
  ASSERT_EQ(resumed.exit_code, 0) << resumed.output;
  EXPECT_THAT(resumed.output, HasSubstr(absl::StrCat(changes[0][0], " GOAL ", goal.name(), " 1 CREATE ")));
  EXPECT_THAT(resumed.output, HasSubstr("  Goal " + goal.name() + " (version 1"));
  EXPECT_THAT(resumed.output, HasSubstr("description: Dance at my granddaughter's wedding"));
  EXPECT_THAT(resumed.output,
              HasSubstr(absl::StrCat("stopped after sequence ", last, " (resume with --start_after=", last, ")")));
  // --json: one wmty.v1.WatchChangesResponse per line.
  CtlResult json = Json(
      {"watch", "--parent=patients/watch-1", "--start_after=" + first_minus_one, "--kinds=goal", "--max_events=2"});
  ASSERT_EQ(json.exit_code, 0) << json.output;
  std::vector<std::string> lines = absl::StrSplit(json.output, '\n', absl::SkipEmpty());
  ASSERT_GE(lines.size(), 2u) << json.output;
  v1::WatchChangesResponse m;
  ASSERT_TRUE(google::protobuf::util::JsonStringToMessage(lines[1], &m).ok()) << lines[1];
  EXPECT_EQ(m.change().name(), goal.name());
  EXPECT_EQ(m.change().operation(), v1::ChangeEvent::RETRACT);
  EXPECT_EQ(std::to_string(m.change().sequence()), last);
}

TEST_F(WmtyctlTest, WatchFailuresAndUsageErrors) {
  CtlResult future = Text({"watch", "--start_after=99999999"});  // beyond the head
  EXPECT_EQ(future.exit_code, 1) << future.output;
  EXPECT_THAT(future.output, HasSubstr("wmtyctl watch: INVALID_ARGUMENT"));
  EXPECT_THAT(future.output, HasSubstr("start_after"));
  for (const auto& [args, message] : std::vector<std::pair<std::vector<std::string>, std::string>>{
           {{"watch", "--kinds=hobbies"}, "--kinds: unknown kind 'hobbies'"},
           {{"watch", "--start_after=-1"}, "--start_after: '-1' is not a sequence"},
           {{"watch", "--heartbeat_interval=soon"}, "--heartbeat_interval: 'soon'"},
           {{"watch", "--max_events=0"}, "--max_events: '0'"},
           {{"watch", "--frobnicate=1"}, "unknown flag --frobnicate"},
           {{"watch", "extra"}, "unexpected argument 'extra'"},
       }) {
    CtlResult r = Text(args);
    EXPECT_EQ(r.exit_code, 2) << r.output;
    EXPECT_THAT(r.output, HasSubstr(message));
  }
  CtlResult help = RunCtl({"watch", "--help"});
  EXPECT_EQ(help.exit_code, 0);
  EXPECT_THAT(help.output, HasSubstr("SEQUENCE KIND NAME VERSION OPERATION TIME"));
  EXPECT_EQ(RunCtl({"help", "watch"}).output, help.output);
  EXPECT_THAT(RunCtl({"help"}).output, HasSubstr("  watch "));
}

// A --start_after older than the server's change log: exit 1 with
// OUT_OF_RANGE and where the log starts now (a server with a retention of
// one change).
TEST(WmtyctlWatchTest, AStartAfterTheLogNoLongerHoldsIsOutOfRange) {
  TempDir dir;
  auto server = ServerProcess::Start(dir.path() + "/data",
                                     {"--change_log_retention_changes=1", "--change_log_trim_interval=50ms"});
  ASSERT_TRUE(server.ok()) << server.status();
  auto writer = (*server)->NewClient();
  for (int i = 0; i < 3; ++i) {
    v1::CreateGoalRequest req;
    req.set_parent("patients/trim-ctl");
    *req.mutable_goal() = ValidGoal();
    ASSERT_TRUE(writer->CreateGoal(req).ok());
  }
  CtlResult r;
  for (const absl::Time give_up = absl::Now() + absl::Seconds(60);;) {  // until retention has trimmed
    r = RunCtl({"--target=" + (*server)->target(), "watch", "--start_after=0", "--max_events=3"});
    if (r.exit_code != 0) break;
    ASSERT_LT(absl::Now(), give_up) << "the log was not trimmed: " << r.output;
    absl::SleepFor(absl::Milliseconds(50));
  }
  EXPECT_EQ(r.exit_code, 1) << r.output;
  EXPECT_THAT(r.output, HasSubstr("wmtyctl watch: OUT_OF_RANGE: "));
  // Retention keeps one change, so the log starts at 2 or 3 (a trim may have
  // run between the writes).
  EXPECT_THAT(r.output, ::testing::ContainsRegex("the server's change log starts at sequence [23]: earlier changes "
                                                 "are gone"));
  EXPECT_THAT(r.output, ::testing::ContainsRegex("or with --start_after=[12] for what is left"));
}

TEST(WmtyctlUsageTest, HelpHidesOutputOnlyFields) {
  CtlResult create = RunCtl({"create-goal", "--help"});
  ASSERT_EQ(create.exit_code, 0) << create.output;
  EXPECT_THAT(create.output, HasSubstr("--goal.description"));
  for (const char* output_only : {"--goal.name ", "--goal.etag ", "--goal.version ", "--goal.create_time ",
                                  "--goal.update_time ", "--goal.state ", "--goal.retract_reason "}) {
    EXPECT_THAT(create.output, Not(HasSubstr(output_only))) << output_only;
  }
  // An update names the version it changes: name and etag are input there.
  CtlResult update = RunCtl({"update-goal", "--help"});
  EXPECT_THAT(update.output, HasSubstr("--goal.name "));
  EXPECT_THAT(update.output, HasSubstr("--goal.etag "));
  EXPECT_THAT(update.output, Not(HasSubstr("--goal.version ")));
  EXPECT_THAT(update.output, Not(HasSubstr("--goal.state ")));
  EXPECT_THAT(RunCtl({"update-priorities", "--help"}).output, Not(HasSubstr("--priorities.create_time ")));
  // Setting one is a usage error rather than silently ignored by the server.
  CtlResult set = RunCtl({"create-goal", "--goal.version=3"});
  EXPECT_EQ(set.exit_code, 2);
  EXPECT_THAT(set.output, HasSubstr("--goal.version is output only"));
}

TEST(WmtyctlUsageTest, UnknownCommandIsAUsageError) {
  CtlResult r = RunCtl({"frobnicate-goal"});
  EXPECT_EQ(r.exit_code, 2);
  EXPECT_THAT(r.output, HasSubstr("unknown command 'frobnicate-goal'"));
  EXPECT_EQ(RunCtl({}).exit_code, 2);
}

TEST(WmtyctlUsageTest, UnknownFieldAndBadValuesAreUsageErrors) {
  CtlResult unknown = RunCtl({"create-goal", "--goal.descripton=Walk"});
  EXPECT_EQ(unknown.exit_code, 2);
  EXPECT_THAT(unknown.output, HasSubstr("unknown field --goal.descripton"));
  EXPECT_THAT(unknown.output, HasSubstr("descripton"));

  CtlResult bad_enum = RunCtl({"create-goal", "--goal.lifecycle_status=ACTIV"});
  EXPECT_EQ(bad_enum.exit_code, 2);
  EXPECT_THAT(bad_enum.output, HasSubstr("GOAL_ACTIVE"));

  CtlResult bad_int = RunCtl({"list-goals", "--page_size=many"});
  EXPECT_EQ(bad_int.exit_code, 2);
  EXPECT_THAT(bad_int.output, HasSubstr("--page_size"));

  CtlResult bad_time = RunCtl({"list-goals", "--filter.updated_since=yesterday"});
  EXPECT_EQ(bad_time.exit_code, 2);
  EXPECT_THAT(bad_time.output, HasSubstr("RFC 3339"));

  CtlResult bad_json = RunCtl({"list-goals", "--request={not json"});
  EXPECT_EQ(bad_json.exit_code, 2);
  EXPECT_THAT(bad_json.output, HasSubstr("--request"));

  CtlResult bad_timeout = RunCtl({"--timeout=soon", "list-goals"});
  EXPECT_EQ(bad_timeout.exit_code, 2);
  EXPECT_THAT(bad_timeout.output, HasSubstr("--timeout"));

  CtlResult no_value = RunCtl({"get-goal", "--name"});
  EXPECT_EQ(no_value.exit_code, 2);
  EXPECT_THAT(no_value.output, HasSubstr("--name needs a value"));
}

TEST(WmtyctlUsageTest, HelpCoversEveryRpcAndItsFields) {
  const auto* service = v1::GetResourceRequest::descriptor()->file()->FindServiceByName("WhatMattersService");
  ASSERT_NE(service, nullptr);
  CtlResult overview = RunCtl({"--help"});
  EXPECT_EQ(overview.exit_code, 0);
  EXPECT_EQ(RunCtl({"help"}).output, overview.output);
  for (int i = 0; i < service->method_count(); ++i) {
    const auto* method = service->method(i);
    const std::string command = KebabCase(method->name());
    SCOPED_TRACE(command);
    EXPECT_THAT(overview.output, HasSubstr("  " + command + " "));
    CtlResult help = RunCtl({command, "--help"});
    EXPECT_EQ(help.exit_code, 0) << help.output;
    EXPECT_THAT(help.output, HasSubstr("wmtyctl " + command + ":"));
    EXPECT_THAT(help.output, HasSubstr("Example:\n  wmtyctl " + command + " "));
    for (int f = 0; f < method->input_type()->field_count(); ++f) {
      EXPECT_THAT(help.output, HasSubstr("  --" + method->input_type()->field(f)->name()));
    }
    EXPECT_EQ(RunCtl({"help", command}).output, help.output);
  }
  CtlResult create_goal = RunCtl({"create-goal", "--help"});
  EXPECT_THAT(create_goal.output, HasSubstr("--goal.provenance.said_by.kind"));
  EXPECT_THAT(create_goal.output, HasSubstr("PATIENT|RELATED_PERSON"));
  EXPECT_THAT(create_goal.output, HasSubstr("--goal.provenance.said_time"));
  EXPECT_THAT(create_goal.output, Not(HasSubstr("UNSPECIFIED")));
  EXPECT_THAT(RunCtl({"update-goal", "--help"}).output, HasSubstr("--update_mask"));
}

}  // namespace
}  // namespace wmty::testing
