// The EHR plugin example (clients/ehr-plugin-example) end to end: the real
// ehr-plugin-example binary against the real wmtyd (port 0, temp data dir,
// authentication on with an HS256 secret and tokens minted by wmty_devtoken).
// What the example wrote is read back through the client library, so the
// assertions are on stored fields as well as on the printed card.
#include <netinet/in.h>
#include <signal.h>
#include <sys/socket.h>
#include <unistd.h>

#include <fstream>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/strip.h"
#include "support/child_process.h"
#include "support/test_support.h"
#include "wmty/v1/service.pb.h"

namespace wmty::testing {
namespace {

using ::testing::HasSubstr;
using ::testing::IsEmpty;
using ::testing::Not;
using ::testing::StartsWith;

constexpr char kSecret[] = "ehr-plugin-test-secret-0123456789-abcdefghijklmnop";

struct Result {
  int exit_code;
  std::string out, err;
};

// One server with authentication for the suite; each test uses its own patient.
class EhrPluginTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    dir_ = new TempDir();
    secret_file_ = new std::string(dir_->path() + "/hs256.secret");
    std::ofstream(*secret_file_) << kSecret << "\n";
    auto server = ServerProcess::Start(dir_->path() + "/data", AuthFlags());
    ASSERT_TRUE(server.ok()) << server.status();
    server_ = server->release();
    // The signed-in clinician's own token (SMART user launch): writes are recorded by rn-17.
    token_ = new std::string(Mint({"--scope=user/*.cruds", "--subject=Practitioner/rn-17"}));
  }
  static void TearDownTestSuite() {
    delete server_;
    delete dir_;
    delete secret_file_;
    delete token_;
    server_ = nullptr;
  }

  // A token from wmty_devtoken, as scripts/run.sh makes them.
  static std::string Mint(std::vector<std::string> flags) {
    flags.insert(flags.begin(), {WMTY_DEVTOKEN_PATH, "--secret_file=" + *secret_file_});
    std::string out;
    EXPECT_EQ(RunCommand(flags, &out), 0) << out;
    return std::string(absl::StripAsciiWhitespace(out));
  }

  // The example's environment: the server and the token, as an EHR host would
  // pass them.
  static std::vector<std::string> Env(const std::string& token) {
    std::vector<std::string> env = {"WMTY_TARGET=" + server_->target()};
    if (!token.empty()) env.push_back("WMTY_TOKEN=" + token);
    return env;
  }
  static std::vector<std::string> Argv(std::vector<std::string> args) {
    args.insert(args.begin(), EHR_PLUGIN_PATH);
    return args;
  }

  static Result Run(std::vector<std::string> args, std::vector<std::string> env = Env(*token_)) {
    ChildProcess child(Argv(std::move(args)), env);
    const int code = child.Wait();
    return {code, child.out(), child.err()};
  }

  // What every server of these tests checks tokens with (the devtoken's HS256).
  static std::vector<std::string> AuthFlags() {
    return {"--auth_hs256_secret_file=" + *secret_file_, "--auth_issuer=wmty-dev", "--auth_audience=wmty"};
  }

  // A client of the server at `target` (default: the suite's) with the clinician's token.
  static std::unique_ptr<client::Client> Writer(const std::string& target = "") {
    client::ClientOptions options;
    options.target = target.empty() ? server_->target() : target;
    options.timeout = absl::Seconds(10);
    options.bearer_token = *token_;
    return client::Client::Connect(options);
  }

  static v1::PatientSummary Summary(const std::string& patient) {
    v1::GetPatientSummaryRequest req;
    req.set_parent("patients/" + patient);
    auto summary = Writer()->GetPatientSummary(req);
    EXPECT_TRUE(summary.ok()) << summary.status();
    return summary.ok() ? *summary : v1::PatientSummary();
  }

  static TempDir* dir_;
  static ServerProcess* server_;
  static std::string* secret_file_;
  static std::string* token_;
};

TempDir* EhrPluginTest::dir_ = nullptr;
ServerProcess* EhrPluginTest::server_ = nullptr;
std::string* EhrPluginTest::secret_file_ = nullptr;
std::string* EhrPluginTest::token_ = nullptr;

TEST_F(EhrPluginTest, ChartOpenOnEmptyPatientShowsEmptyCard) {
  Result r = Run({"chart-open", "--patient=empty-1", "--deadline=30s"});
  EXPECT_EQ(r.exit_code, 0) << r.err;
  EXPECT_THAT(r.out, StartsWith("+-- What matters to patient empty-1 (as of "));
  EXPECT_THAT(r.out, HasSubstr("Nothing recorded yet"));
  EXPECT_THAT(r.out, Not(HasSubstr("unavailable")));
  EXPECT_THAT(r.err, IsEmpty());
}

TEST_F(EhrPluginTest, RecordPreferenceThenChartOpenShowsItWithWhoSaidIt) {
  Result by_daughter = Run({"record-preference", "--patient=rec-1", "--kind=care_experience_preference",
                            "--text=Knock and wait before coming in", "--said_by_name=Maria Lopez",
                            "--said_by_relationship=daughter", "--encounter=enc-9"});
  ASSERT_EQ(by_daughter.exit_code, 0) << by_daughter.err;
  EXPECT_THAT(by_daughter.out, StartsWith("recorded patients/rec-1/preferences/"));
  // Kind in kebab case too; no speaker flags: the patient said it.
  Result by_patient =
      Run({"record-preference", "--patient=rec-1", "--kind=likes-and-joys", "--text=Jazz on the radio"});
  ASSERT_EQ(by_patient.exit_code, 0) << by_patient.err;

  // Stored with full provenance.
  const v1::PatientSummary summary = Summary("rec-1");
  ASSERT_EQ(summary.preferences_size(), 2);
  const v1::Preference& jazz = summary.preferences(0);  // most recently changed first
  const v1::Preference& knock = summary.preferences(1);
  EXPECT_EQ(knock.kind(), v1::CARE_EXPERIENCE_PREFERENCE);
  EXPECT_EQ(knock.value_text(), "Knock and wait before coming in");
  EXPECT_EQ(knock.provenance().said_by().kind(), v1::Speaker::RELATED_PERSON);
  EXPECT_EQ(knock.provenance().said_by().name(), "Maria Lopez");
  EXPECT_EQ(knock.provenance().said_by().relationship(), "daughter");
  EXPECT_EQ(knock.provenance().recorded_by().practitioner_id(), "rn-17");
  EXPECT_EQ(knock.provenance().encounter_id(), "enc-9");
  EXPECT_EQ(knock.provenance().channel(), v1::EHR_PLUGIN);
  EXPECT_EQ(jazz.kind(), v1::LIKES_AND_JOYS);
  EXPECT_EQ(jazz.provenance().said_by().kind(), v1::Speaker::PATIENT);
  EXPECT_THAT(by_daughter.out, HasSubstr(knock.name()));

  Result card = Run({"chart-open", "--patient=rec-1", "--deadline=30s"});
  ASSERT_EQ(card.exit_code, 0) << card.err;
  EXPECT_THAT(card.out, HasSubstr("Care experience preference: \"Knock and wait before coming in\""));
  EXPECT_THAT(card.out, HasSubstr("said by Maria Lopez (daughter) on "));
  EXPECT_THAT(card.out, HasSubstr("Likes and joys: \"Jazz on the radio\""));
  EXPECT_THAT(card.out, HasSubstr("said by the patient on "));
  EXPECT_THAT(card.out, HasSubstr("recorded by rn-17"));
}

// A plugin with a system token of its own records for the clinician signed in
// to the EHR: wmty records the plugin (the token) and keeps the clinician as
// on whose behalf, and the card shows both.
TEST_F(EhrPluginTest, SystemTokenRecordsOnBehalfOfTheSignedInClinician) {
  const std::string plugin = Mint({"--scope=system/*.cruds", "--subject=ehr-plugin"});
  Result r =
      Run({"record-preference", "--patient=obo-1", "--kind=pronouns", "--text=they/them", "--on_behalf_of=rn-17"},
          Env(plugin));
  ASSERT_EQ(r.exit_code, 0) << r.err;
  const v1::PatientSummary summary = Summary("obo-1");
  ASSERT_EQ(summary.preferences_size(), 1);
  const v1::Provenance& p = summary.preferences(0).provenance();
  EXPECT_EQ(p.recorded_by().practitioner_id(), "ehr-plugin");
  EXPECT_EQ(p.on_behalf_of().practitioner_id(), "rn-17");
  Result card = Run({"chart-open", "--patient=obo-1", "--deadline=30s"});
  ASSERT_EQ(card.exit_code, 0) << card.err;
  EXPECT_THAT(card.out, HasSubstr("recorded by rn-17 via ehr-plugin"));
}

TEST_F(EhrPluginTest, ChartOpenFollowsThePatientsPriorityOrder) {
  auto writer = Writer();
  v1::CreateWhatMattersRequest wm;
  wm.set_parent("patients/rank-1");
  *wm.mutable_what_matters() = ValidWhatMatters("Tending my tomatoes");
  auto garden = writer->CreateWhatMatters(wm);
  ASSERT_TRUE(garden.ok()) << garden.status();
  *wm.mutable_what_matters() = ValidWhatMatters("Being at my granddaughter's wedding");
  wm.clear_request_id();
  auto wedding = writer->CreateWhatMatters(wm);
  ASSERT_TRUE(wedding.ok()) << wedding.status();
  v1::CreateGoalRequest goal_req;
  goal_req.set_parent("patients/rank-1");
  *goal_req.mutable_goal() = ValidGoal("Walk down the aisle with her");
  auto goal = writer->CreateGoal(goal_req);
  ASSERT_TRUE(goal.ok()) << goal.status();
  // The patient ranks the garden above the wedding, and the goal second.
  v1::UpdatePrioritiesRequest prio;
  prio.mutable_priorities()->set_name("patients/rank-1/priorities");
  prio.mutable_priorities()->add_items(garden->name());
  prio.mutable_priorities()->add_items(goal->name());
  prio.mutable_priorities()->add_items(wedding->name());
  *prio.mutable_priorities()->mutable_provenance() = NurseProvenance();
  ASSERT_TRUE(writer->UpdatePriorities(prio).ok());

  Result r = Run({"chart-open", "--patient=rank-1", "--deadline=30s"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  const size_t first = r.out.find("#1  \"Tending my tomatoes\"");
  const size_t third = r.out.find("#3  \"Being at my granddaughter's wedding\"");
  ASSERT_NE(first, std::string::npos) << r.out;
  ASSERT_NE(third, std::string::npos) << r.out;
  EXPECT_LT(first, third) << r.out;
  EXPECT_THAT(r.out, HasSubstr("#2  \"Walk down the aisle with her\""));
  EXPECT_THAT(r.out, HasSubstr("active, in progress, high priority; target 2027-06-15"));
  EXPECT_THAT(r.out, HasSubstr("recorded by Ana Ruiz, RN (rn-17)"));
}

TEST_F(EhrPluginTest, RetryWithTheSameRequestIdWritesOnce) {
  const std::vector<std::string> args = {"record-preference", "--patient=idem-1", "--kind=pronouns", "--text=she/her",
                                         "--request_id=ehr-event-4711"};
  Result first = Run(args);
  ASSERT_EQ(first.exit_code, 0) << first.err;
  Result again = Run(args);
  ASSERT_EQ(again.exit_code, 0) << again.err;
  EXPECT_EQ(first.out, again.out);  // same name, version, request id
  EXPECT_THAT(first.out, HasSubstr("request_id ehr-event-4711"));
  EXPECT_EQ(Summary("idem-1").preferences_size(), 1);
  // The same id for something else is refused, not written.
  std::vector<std::string> other = args;
  other[3] = "--text=he/him";
  Result reused = Run(other);
  EXPECT_EQ(reused.exit_code, 2);
  EXPECT_THAT(reused.err, HasSubstr("ALREADY_EXISTS"));
  EXPECT_EQ(Summary("idem-1").preferences_size(), 1);
}

// A server that accepts TCP connections but never answers (hung, or a dead
// proxy): only the deadline ends the call.
class BlackHole {
 public:
  BlackHole() {
    fd_ = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    sockaddr_in addr{};
    addr.sin_family = AF_INET;
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    socklen_t len = sizeof(addr);
    if (fd_ < 0 || bind(fd_, reinterpret_cast<sockaddr*>(&addr), len) != 0 || listen(fd_, 16) != 0 ||
        getsockname(fd_, reinterpret_cast<sockaddr*>(&addr), &len) != 0) {
      std::abort();
    }
    port_ = ntohs(addr.sin_port);
  }
  ~BlackHole() { close(fd_); }
  std::string target() const { return absl::StrCat("127.0.0.1:", port_); }

 private:
  int fd_ = -1;
  int port_ = 0;
};

TEST_F(EhrPluginTest, ChartOpenPastItsDeadlineShowsDegradedCardAndExits3) {
  BlackHole hung;
  Result r = Run({"chart-open", "--patient=slow-1", "--deadline=300ms", "--target=" + hung.target()});
  EXPECT_EQ(r.exit_code, 3) << r.out << r.err;  // -2 would mean it hung
  EXPECT_THAT(r.out, HasSubstr("what-matters unavailable (no answer in time: DEADLINE_EXCEEDED)"));
  EXPECT_THAT(r.err, HasSubstr("DEADLINE_EXCEEDED"));

  // A budget already spent by the time the call would go out (1us, counted
  // from program start) fails the same way against the real server.
  Result tiny = Run({"chart-open", "--patient=slow-1", "--deadline=1us"});
  EXPECT_EQ(tiny.exit_code, 3) << tiny.out << tiny.err;
  EXPECT_THAT(tiny.out, HasSubstr("what-matters unavailable"));

  // Nobody listening: UNAVAILABLE, retried inside the deadline, then degraded.
  Result refused = Run({"chart-open", "--patient=slow-1", "--deadline=300ms", "--target=127.0.0.1:1"});
  EXPECT_EQ(refused.exit_code, 3) << refused.out << refused.err;
  EXPECT_THAT(refused.out, HasSubstr("what-matters unavailable"));
}

// follow is pushed the change: while nothing changes it reads nothing (only
// heartbeats come), and the write of another client reaches it as a change
// that leads to one summary read and the new card.
TEST_F(EhrPluginTest, FollowShowsAChangePushedWithoutPolling) {
  ChildProcess follow(Argv({"follow", "--patient=follow-1", "--heartbeat=1s", "--deadline=30s", "--max_updates=1",
                            "--exit_after=120s", "--log_events"}),
                      Env(*token_));
  // The first card (empty patient) comes from the summary the watch starts
  // with: every change after it will be pushed.
  ASSERT_TRUE(follow.ReadStdoutUntil("\n+--\n")) << follow.out() << follow.err();
  EXPECT_THAT(follow.out(), HasSubstr("Nothing recorded yet"));
  // Idle: heartbeats, and no summary read.
  ASSERT_TRUE(follow.ReadStderrUntil("follow: heartbeat, caught up to ", 2)) << follow.out() << follow.err();
  EXPECT_THAT(follow.err(), Not(HasSubstr("reading the summary"))) << follow.err();
  EXPECT_EQ(Count(follow.out(), "+-- What matters"), 1) << follow.out();

  v1::CreateWhatMattersRequest req;
  req.set_parent("patients/follow-1");
  *req.mutable_what_matters() = ValidWhatMatters("Getting back to choir practice");
  req.mutable_what_matters()->mutable_provenance()->mutable_said_by()->set_kind(v1::Speaker::RELATED_PERSON);
  req.mutable_what_matters()->mutable_provenance()->mutable_said_by()->set_name("Sam Lee");
  req.mutable_what_matters()->mutable_provenance()->mutable_said_by()->set_relationship("son");
  auto created = Writer()->CreateWhatMatters(req);
  ASSERT_TRUE(created.ok()) << created.status();

  // --max_updates=1: it exits after printing the changed card.
  EXPECT_EQ(follow.Wait(), 0) << follow.out() << follow.err();
  EXPECT_EQ(Count(follow.out(), "+-- What matters to patient follow-1"), 2) << follow.out();  // no repeats
  EXPECT_THAT(follow.out(), HasSubstr("* updated: 1 added, 0 changed, 0 removed"));
  EXPECT_THAT(follow.out(), HasSubstr("\"Getting back to choir practice\""));
  EXPECT_THAT(follow.out(), HasSubstr("said by Sam Lee (son)"));
  // One summary read, for the one change; its log line names the resource,
  // never its text.
  EXPECT_EQ(Count(follow.err(), "reading the summary"), 1) << follow.err();
  EXPECT_THAT(follow.err(), HasSubstr(absl::StrCat("(create ", created->name(), " version 1), reading the summary")));
  EXPECT_THAT(follow.err(), Not(HasSubstr("choir")));
  EXPECT_THAT(follow.err(), Not(HasSubstr("unavailable")));
}

TEST_F(EhrPluginTest, FollowSeesAChangeAndARetraction) {
  auto writer = Writer();
  v1::CreatePreferenceRequest create;
  create.set_parent("patients/follow-2");
  *create.mutable_preference() = ValidPreference();
  auto pref = writer->CreatePreference(create);
  ASSERT_TRUE(pref.ok()) << pref.status();

  ChildProcess follow(Argv({"follow", "--patient=follow-2", "--deadline=30s", "--max_updates=2", "--exit_after=120s"}),
                      Env(*token_));
  ASSERT_TRUE(follow.ReadStdoutUntil("\n+--\n")) << follow.out() << follow.err();
  v1::UpdatePreferenceRequest update;
  *update.mutable_preference() = *pref;
  update.mutable_preference()->set_value_text("Call after 5pm");
  update.mutable_update_mask()->add_paths("value_text");
  auto updated = writer->UpdatePreference(update);
  ASSERT_TRUE(updated.ok()) << updated.status();
  ASSERT_TRUE(follow.ReadStdoutUntil("Call after 5pm")) << follow.out() << follow.err();
  v1::RetractRequest retract;
  retract.set_name(pref->name());
  retract.mutable_retracted_by()->set_practitioner_id("rn-17");
  ASSERT_TRUE(writer->RetractPreference(retract).ok());

  EXPECT_EQ(follow.Wait(), 0) << follow.out() << follow.err();
  EXPECT_THAT(follow.out(), HasSubstr("* updated: 0 added, 1 changed, 0 removed"));
  EXPECT_THAT(follow.out(), HasSubstr("* updated: 0 added, 0 changed, 1 removed"));
  EXPECT_EQ(Count(follow.out(), "+-- What matters to patient follow-2"), 3) << follow.out();
}

// follow keeps its card through a server restart and picks up, without a
// gap, a change made while it was reconnecting: the watch resumes where it
// was. A server of its own (this one is killed).
TEST_F(EhrPluginTest, FollowResumesAcrossAServerRestart) {
  TempDir dir;
  const std::vector<std::string> flags = AuthFlags();
  auto first = ServerProcess::Start(dir.path() + "/data", flags);
  ASSERT_TRUE(first.ok()) << first.status();
  const std::string target = (*first)->target();
  ChildProcess follow(Argv({"follow", "--patient=restart-1", "--heartbeat=1s", "--deadline=30s", "--max_updates=1",
                            "--exit_after=120s", "--target=" + target}),
                      Env(*token_));
  ASSERT_TRUE(follow.ReadStdoutUntil("\n+--\n")) << follow.out() << follow.err();
  (*first)->Kill();
  ASSERT_TRUE(follow.ReadStderrUntil("follow: what-matters unavailable, reconnecting", 1))
      << follow.out() << follow.err();
  std::vector<std::string> same_port = flags;
  same_port.push_back("--grpc_listen=" + target);
  auto second = ServerProcess::Start(dir.path() + "/data", same_port);
  ASSERT_TRUE(second.ok()) << second.status();
  v1::CreateGoalRequest goal;
  goal.set_parent("patients/restart-1");
  *goal.mutable_goal() = ValidGoal("Sing at the spring concert");
  ASSERT_TRUE(Writer(target)->CreateGoal(goal).ok());

  EXPECT_EQ(follow.Wait(), 0) << follow.out() << follow.err();
  EXPECT_THAT(follow.out(), HasSubstr("* updated: 1 added, 0 changed, 0 removed"));
  EXPECT_THAT(follow.out(), HasSubstr("\"Sing at the spring concert\""));
  EXPECT_EQ(Count(follow.err(), "follow: what-matters unavailable"), 1) << follow.err();  // once per outage
  EXPECT_THAT(follow.err(), HasSubstr("follow: reconnected, no change missed"));
}

// Changes missed beyond what the server's change log still holds: follow is
// stopped (SIGSTOP) while its server is killed, restarted with a retention of
// one change and written to; when it runs again its resumed watch is
// OUT_OF_RANGE, and it starts again from a fresh summary that shows the
// change it missed.
TEST_F(EhrPluginTest, FollowStartsAgainFromAFreshSummaryWhenChangesWereMissed) {
  TempDir dir;
  const std::vector<std::string> flags = AuthFlags();
  auto first = ServerProcess::Start(dir.path() + "/data", flags);
  ASSERT_TRUE(first.ok()) << first.status();
  const std::string target = (*first)->target();
  ChildProcess follow(Argv({"follow", "--patient=trim-1", "--deadline=30s", "--max_updates=1", "--exit_after=120s",
                            "--target=" + target}),
                      Env(*token_));
  ASSERT_TRUE(follow.ReadStdoutUntil("\n+--\n")) << follow.out() << follow.err();  // watching after sequence 0
  follow.Signal(SIGSTOP);
  (*first)->Kill();
  std::vector<std::string> trimming = flags;
  for (const char* f : {"--change_log_retention_changes=1", "--change_log_trim_interval=50ms"}) trimming.push_back(f);
  trimming.push_back("--grpc_listen=" + target);
  auto second = ServerProcess::Start(dir.path() + "/data", trimming);
  ASSERT_TRUE(second.ok()) << second.status();
  auto writer = Writer(target);
  v1::CreateGoalRequest goal;
  goal.set_parent("patients/trim-1");
  *goal.mutable_goal() = ValidGoal("Bake bread with my grandson");
  ASSERT_TRUE(writer->CreateGoal(goal).ok());
  for (int i = 0; i < 2; ++i) {
    goal.set_parent("patients/trim-other");
    goal.clear_request_id();
    ASSERT_TRUE(writer->CreateGoal(goal).ok());
  }
  // Until retention has trimmed what follow would resume from.
  for (const absl::Time give_up = absl::Now() + absl::Seconds(60);;) {
    client::WatchOptions probe;
    probe.start_after = 0;
    probe.max_retries = 1;
    absl::StatusOr<v1::WatchChangesResponse> m = writer->WatchChanges(probe)->Next(absl::Seconds(10));
    if (m.status().code() == absl::StatusCode::kOutOfRange) break;
    ASSERT_LT(absl::Now(), give_up) << "the log was not trimmed: " << m.status();
    absl::SleepFor(absl::Milliseconds(50));
  }
  follow.Signal(SIGCONT);

  EXPECT_EQ(follow.Wait(), 0) << follow.out() << follow.err();
  EXPECT_THAT(follow.err(), HasSubstr("follow: changes were missed (the server's change log moved on)"));
  EXPECT_THAT(follow.out(), HasSubstr("* updated: 1 added, 0 changed, 0 removed"));
  EXPECT_THAT(follow.out(), HasSubstr("\"Bake bread with my grandson\""));
}

TEST_F(EhrPluginTest, TokenFromFileOrEnvironmentAndRefusals) {
  // From a file (here with no WMTY_TOKEN in the environment).
  const std::string token_file = dir_->path() + "/token";
  std::ofstream(token_file) << *token_ << "\n";
  Result from_file = Run({"chart-open", "--patient=auth-1", "--deadline=30s", "--token_file=" + token_file}, Env(""));
  EXPECT_EQ(from_file.exit_code, 0) << from_file.err;

  // No token at all: refused (exit 2), with a degraded card and a hint.
  Result none = Run({"chart-open", "--patient=auth-1", "--deadline=30s"}, Env(""));
  EXPECT_EQ(none.exit_code, 2);
  EXPECT_THAT(none.out, HasSubstr("what-matters unavailable (not authorized: UNAUTHENTICATED)"));
  EXPECT_THAT(none.err, HasSubstr("WMTY_TOKEN"));

  // A patient-scoped token (SMART EHR launch) with the scopes docs/integration.md
  // lists as enough for the plugin, and only for its patient.
  const std::string p1_only =
      Mint({"--scope=patient/Goal.r patient/Observation.cr patient/List.r", "--patient=auth-1"});
  EXPECT_EQ(Run({"chart-open", "--patient=auth-1", "--deadline=30s"}, Env(p1_only)).exit_code, 0);
  Result recorded = Run({"record-preference", "--patient=auth-1", "--kind=name_to_use", "--text=Bea"}, Env(p1_only));
  EXPECT_EQ(recorded.exit_code, 0) << recorded.err;
  Result elsewhere = Run({"record-preference", "--patient=auth-2", "--kind=name_to_use", "--text=Bea"}, Env(p1_only));
  EXPECT_EQ(elsewhere.exit_code, 2);
  EXPECT_THAT(elsewhere.err, HasSubstr("PERMISSION_DENIED"));
  Result other = Run({"chart-open", "--patient=auth-2", "--deadline=30s"}, Env(p1_only));
  EXPECT_EQ(other.exit_code, 2);
  EXPECT_THAT(other.err, HasSubstr("PERMISSION_DENIED"));
  Result follow_other = Run({"follow", "--patient=auth-2", "--deadline=30s", "--exit_after=60s"}, Env(p1_only));
  EXPECT_EQ(follow_other.exit_code, 2);
  EXPECT_THAT(follow_other.err, HasSubstr("PERMISSION_DENIED"));
}

TEST_F(EhrPluginTest, BadArgumentsGetAClearError) {
  struct Case {
    std::vector<std::string> args;
    int exit_code;
    std::string err;
  };
  const std::vector<Case> cases = {
      {{}, 1, "missing command"},
      {{"open-chart", "--patient=bad-1"}, 1, "unknown command 'open-chart'"},
      {{"chart-open", "extra", "--patient=bad-1"}, 1, "one command only"},
      {{"chart-open"}, 1, "chart-open needs --patient"},
      {{"chart-open", "--patient=bad-1", "--deadline=soon"}, 1, "deadline"},
      {{"chart-open", "--patient=bad-1", "--deadline=0s"}, 1, "deadlines must be positive"},
      {{"chart-open", "--patient=bad-1", "--no_such_flag"}, 1, "no_such_flag"},
      {{"chart-open", "--patient=bad-1", "--token_file=/nonexistent/token"}, 1, "cannot read --token_file"},
      {{"chart-open", "--patient=bad-1", "--tls_cert_file=c.pem"}, 1, "need --tls_ca_file"},
      {{"follow", "--patient=bad-1", "--heartbeat=0s"}, 1, "--heartbeat must be between 1s and 5m"},
      {{"follow", "--patient=bad-1", "--interval=10s"}, 1, "interval"},  // polling is gone
      {{"record-preference", "--patient=bad-1", "--text=x"}, 1, "needs --kind"},
      {{"record-preference", "--patient=bad-1", "--kind=hobbies", "--text=x"},
       1,
       "unknown --kind 'hobbies' (one of care_experience_preference,"},
      // Checked by the server: field violations, exit 2.
      {{"chart-open", "--patient=bad 1", "--deadline=30s"}, 2, "INVALID_ARGUMENT: parent: "},
      {{"record-preference", "--patient=bad-1", "--kind=likes_and_joys", "--text=Cards", "--said_by_name=Bob"},
       2,
       "  preference.provenance.said_by.relationship: "},
      {{"record-preference", "--patient=bad-1", "--kind=language", "--text=Spanish"}, 2, "  preference.language: "},
      {{"record-preference", "--patient=bad-1", "--kind=likes_and_joys", "--text=Cards", "--on_behalf_of=rn 17"},
       2,
       "  preference.provenance.on_behalf_of.practitioner_id: "},
  };
  for (const Case& c : cases) {
    Result r = Run(c.args);
    EXPECT_EQ(r.exit_code, c.exit_code) << absl::StrJoin(c.args, " ") << "\n" << r.out << r.err;
    EXPECT_THAT(r.err, HasSubstr(c.err)) << absl::StrJoin(c.args, " ");
    // A usage error contacts nobody and prints no card.
    if (c.exit_code == 1) {
      EXPECT_THAT(r.out, IsEmpty()) << absl::StrJoin(c.args, " ");
    }
  }
  // Nothing was written by any of them.
  EXPECT_EQ(Summary("bad-1").preferences_size(), 0);
}

// TLS with a client certificate (mutual TLS), certificates made by openssl.
TEST(EhrPluginTlsTest, ChartOpenOverMutualTls) {
  TempDir dir;
  const std::string& d = dir.path();
  auto openssl = [](std::vector<std::string> args) {
    args.insert(args.begin(), "/usr/bin/openssl");
    std::string out;
    ASSERT_EQ(RunCommand(args, &out), 0) << out;
  };
  std::ofstream(d + "/san.ext") << "subjectAltName=IP:127.0.0.1,DNS:localhost\n";
  openssl({"req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", d + "/ca.key", "-out", d + "/ca.pem", "-days",
           "1", "-subj", "/CN=ehr-test-ca"});
  for (const char* who : {"server", "client"}) {
    const std::string base = absl::StrCat(d, "/", who);
    openssl({"req", "-newkey", "rsa:2048", "-nodes", "-keyout", base + ".key", "-out", base + ".csr", "-subj",
             absl::StrCat("/CN=", who)});
    openssl({"x509", "-req", "-in", base + ".csr", "-CA", d + "/ca.pem", "-CAkey", d + "/ca.key", "-CAcreateserial",
             "-out", base + ".pem", "-days", "1", "-extfile", d + "/san.ext"});
  }
  auto server =
      ServerProcess::Start(d + "/data", {"--tls_cert_file=" + d + "/server.pem", "--tls_key_file=" + d + "/server.key",
                                         "--tls_client_ca_file=" + d + "/ca.pem"});
  ASSERT_TRUE(server.ok()) << server.status();
  auto run = [&](std::vector<std::string> tls_flags) {
    std::vector<std::string> argv = {EHR_PLUGIN_PATH, "chart-open", "--patient=tls-1", "--deadline=30s",
                                     "--target=" + (*server)->target()};
    argv.insert(argv.end(), tls_flags.begin(), tls_flags.end());
    ChildProcess child(argv, {});
    const int code = child.Wait();
    return Result{code, child.out(), child.err()};
  };
  Result ok = run({"--tls_ca_file=" + d + "/ca.pem", "--tls_cert_file=" + d + "/client.pem",
                   "--tls_key_file=" + d + "/client.key"});
  EXPECT_EQ(ok.exit_code, 0) << ok.err;
  EXPECT_THAT(ok.out, HasSubstr("Nothing recorded yet"));
  // Without the client certificate the handshake fails: degraded, not hung.
  Result no_cert = run({"--tls_ca_file=" + d + "/ca.pem", "--deadline=2s"});
  EXPECT_EQ(no_cert.exit_code, 3) << no_cert.out << no_cert.err;
  EXPECT_THAT(no_cert.out, HasSubstr("what-matters unavailable"));
}

}  // namespace
}  // namespace wmty::testing
