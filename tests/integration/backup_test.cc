// Online backup and offline restore end to end: the real wmtyd (port 0) with
// --backup_dir, the real wmtyctl binary for `admin backup / list-backups /
// verify-backup / restore`, writers on the real C++ client the whole time.
//
// The guarantee checked: every write acknowledged before `wmtyctl admin
// backup` was started is in the backup, byte for byte as it was acknowledged,
// read back through a second wmtyd started on the restored directory; the
// restored database passes VerifyIntegrity. And the admin RPCs need the admin
// scope (no resource scope grants it) and are audited.
#include <sys/wait.h>

#include <atomic>
#include <filesystem>
#include <fstream>
#include <map>
#include <string>
#include <thread>
#include <vector>

#include <gmock/gmock.h>
#include <grpcpp/grpcpp.h>
#include <gtest/gtest.h>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/synchronization/mutex.h"
#include "common/status.h"
#include "integration/integration_util.h"
#include "storage/store.h"
#include "support/test_support.h"
#include "support/test_tokens.h"
#include "support/wmtyctl.h"
#include "wmty/admin/v1/admin.grpc.pb.h"

namespace wmty::testing {
namespace {

namespace fs = std::filesystem;
namespace adminpb = ::wmty::admin::v1;
using ::testing::HasSubstr;

absl::Status OpenAndVerifyIntegrity(const std::string& data_dir) {
  storage::StoreOptions options;
  options.path = data_dir;
  options.block_cache_bytes = size_t{8} << 20;
  auto store = storage::Store::Open(options);
  if (!store.ok()) return store.status();
  return (*store)->VerifyIntegrity();
}

// Writers create and update goals over gRPC until stopped, remembering every
// acknowledged version exactly as the server returned it.
class Writers {
 public:
  Writers(const ServerProcess& server, int n) {
    for (int w = 0; w < n; ++w) {
      threads_.emplace_back([this, &server, w] { Run(server, w); });
    }
  }
  ~Writers() { Stop(); }

  void Stop() {
    stop_ = true;
    for (auto& t : threads_) {
      if (t.joinable()) t.join();
    }
  }

  // Waits (bounded) until at least `n` writes were acknowledged.
  bool AwaitAcknowledged(size_t n) {
    absl::MutexLock lock(&mu_);
    auto enough = [this, n]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) { return acknowledged_count_ >= n || failed_; };
    mu_.AwaitWithTimeout(absl::Condition(&enough), absl::Seconds(60));
    return acknowledged_count_ >= n;
  }

  // The latest acknowledged version of every goal, by name.
  std::map<std::string, v1::Goal> Snapshot() {
    absl::MutexLock lock(&mu_);
    return latest_;
  }
  size_t acknowledged() {
    absl::MutexLock lock(&mu_);
    return acknowledged_count_;
  }
  std::string failure() {
    absl::MutexLock lock(&mu_);
    return failure_;
  }

 private:
  void Run(const ServerProcess& server, int w) {
    auto client = server.NewClient();
    const std::string patient = absl::StrCat("patients/bk", w);
    std::string last_name;
    for (int i = 0; !stop_; ++i) {
      absl::StatusOr<v1::Goal> goal;
      if (i % 3 == 2 && !last_name.empty()) {
        // Every third write updates the previous goal (a new version).
        v1::UpdateGoalRequest req;
        {
          absl::MutexLock lock(&mu_);
          *req.mutable_goal() = latest_[last_name];
        }
        req.mutable_goal()->set_description(absl::StrCat("Goal ", w, "-", i, " — updated, ünïcode"));
        req.mutable_goal()->mutable_provenance()->CopyFrom(NurseProvenance());
        req.mutable_update_mask()->add_paths("description");
        goal = client->UpdateGoal(req);
      } else {
        v1::CreateGoalRequest req;
        req.set_parent(patient);
        *req.mutable_goal() = ValidGoal(absl::StrCat("Goal ", w, "-", i, ": walk to the bakery"));
        goal = client->CreateGoal(req);
      }
      absl::MutexLock lock(&mu_);
      if (!goal.ok()) {
        failed_ = true;
        failure_ = goal.status().ToString();
        return;
      }
      last_name = goal->name();
      latest_[goal->name()] = *goal;
      ++acknowledged_count_;
    }
  }

  std::atomic<bool> stop_{false};
  absl::Mutex mu_;
  std::map<std::string, v1::Goal> latest_ ABSL_GUARDED_BY(mu_);
  size_t acknowledged_count_ ABSL_GUARDED_BY(mu_) = 0;
  bool failed_ ABSL_GUARDED_BY(mu_) = false;
  std::string failure_ ABSL_GUARDED_BY(mu_);
  std::vector<std::thread> threads_;
};

TEST(BackupRestoreTest, BackupUnderWriteLoadRestoresEveryWriteAcknowledgedBeforeIt) {
  TempDir dir;
  const std::string data_dir = dir.path() + "/data";
  const std::string backup_dir = dir.path() + "/backups";
  auto server = ServerProcess::Start(data_dir, {"--backup_dir=" + backup_dir});
  ASSERT_TRUE(server.ok()) << server.status();

  Writers writers(**server, 3);
  ASSERT_TRUE(writers.AwaitAcknowledged(150)) << writers.failure();
  // Everything acknowledged before the backup command starts.
  const std::map<std::string, v1::Goal> before = writers.Snapshot();
  const CtlResult backup = RunCtl({"--target=" + (*server)->target(), "admin", "backup", "--json"});
  const size_t acknowledged_by_end = writers.acknowledged();
  // Keep writing a little after the backup too, then stop.
  ASSERT_TRUE(writers.AwaitAcknowledged(acknowledged_by_end + 20)) << writers.failure();
  writers.Stop();
  ASSERT_EQ(writers.failure(), "");
  const auto created = ParseJson<adminpb::Backup>(backup);
  ASSERT_EQ(created.id(), 1u) << backup.output;
  EXPECT_GT(created.file_count(), 0u);
  EXPECT_GE(created.last_sequence(), before.size());
  RecordProperty("acknowledged_before_backup", static_cast<int>(before.size()));
  RecordProperty("acknowledged_by_end_of_backup", static_cast<int>(acknowledged_by_end));

  const CtlResult listed = RunCtl({"--target=" + (*server)->target(), "admin", "list-backups"});
  EXPECT_EQ(listed.exit_code, 0) << listed.output;
  EXPECT_THAT(listed.output, HasSubstr("LAST_SEQUENCE"));
  EXPECT_THAT(listed.output, HasSubstr(absl::StrCat(created.last_sequence())));
  const CtlResult verified = RunCtl({"--target=" + (*server)->target(), "admin", "verify-backup", "--id=1"});
  EXPECT_EQ(verified.exit_code, 0) << verified.output;
  EXPECT_THAT(verified.output, HasSubstr("backup verified"));

  // Offline restore into a new directory, while the first server still runs
  // (restore reads only the backup directory).
  const std::string restored_dir = dir.path() + "/restored";
  const CtlResult restored =
      RunCtl({"admin", "restore", "--backup_dir=" + backup_dir, "--data_dir=" + restored_dir, "--id=1", "--json"});
  const auto report = ParseJson<adminpb::RestoreReport>(restored);
  EXPECT_EQ(report.backup().id(), 1u);
  EXPECT_GE(report.restored_last_sequence(), created.last_sequence());

  auto second = ServerProcess::Start(restored_dir);
  ASSERT_TRUE(second.ok()) << second.status();
  auto client = (*second)->NewClient();
  for (const auto& [name, acknowledged] : before) {
    v1::GetResourceRequest req;
    req.set_name(name);
    auto got = client->GetGoal(req);
    ASSERT_TRUE(got.ok()) << name << " acknowledged before the backup is missing: " << got.status();
    // At least the acknowledged version (a later update may have made it in).
    ASSERT_GE(got->version(), acknowledged.version()) << name;
    if (got->version() == acknowledged.version()) {
      EXPECT_THAT(*got, EqualsProto(acknowledged)) << name;
    } else {
      v1::ListVersionsRequest versions;
      versions.set_name(name);
      auto all = client->ListGoalVersions(versions);
      ASSERT_TRUE(all.ok()) << all.status();
      bool found = false;
      for (const auto& g : all->goals()) found = found || Bytes(g) == Bytes(acknowledged);
      EXPECT_TRUE(found) << name << " version " << acknowledged.version() << " differs from what was acknowledged";
    }
  }
  ASSERT_EQ((*second)->Terminate(), 0);
  auto integrity = OpenAndVerifyIntegrity(restored_dir);
  EXPECT_TRUE(integrity.ok()) << integrity;

  // No patient text in either server's log.
  EXPECT_THAT(ReadFile((*server)->log_path()), ::testing::Not(HasSubstr("bakery")));
  EXPECT_THAT(ReadFile((*second)->log_path()), ::testing::Not(HasSubstr("bakery")));
}

TEST(BackupRestoreTest, RestoreRefusesANonEmptyDataDirectory) {
  TempDir dir;
  auto server = ServerProcess::Start(dir.path() + "/data", {"--backup_dir=" + dir.path() + "/backups"});
  ASSERT_TRUE(server.ok()) << server.status();
  ASSERT_EQ(RunCtl({"--target=" + (*server)->target(), "admin", "backup"}).exit_code, 0);
  fs::create_directories(dir.path() + "/busy");
  std::ofstream(dir.path() + "/busy/CURRENT") << "someone's database";
  const CtlResult r =
      RunCtl({"admin", "restore", "--backup_dir=" + dir.path() + "/backups", "--data_dir=" + dir.path() + "/busy"});
  EXPECT_EQ(r.exit_code, 1) << r.output;
  EXPECT_THAT(r.output, HasSubstr("FAILED_PRECONDITION"));
  EXPECT_EQ(ReadFile(dir.path() + "/busy/CURRENT"), "someone's database");
  // Over the running server's own data dir: refused the same way.
  const CtlResult live =
      RunCtl({"admin", "restore", "--backup_dir=" + dir.path() + "/backups", "--data_dir=" + dir.path() + "/data"});
  EXPECT_EQ(live.exit_code, 1) << live.output;
  EXPECT_THAT(live.output, HasSubstr("FAILED_PRECONDITION"));
}

TEST(BackupRestoreTest, WithoutBackupDirTheRpcsAreFailedPrecondition) {
  TempDir dir;
  auto server = ServerProcess::Start(dir.path() + "/data");
  ASSERT_TRUE(server.ok()) << server.status();
  for (const std::vector<std::string>& cmd :
       {std::vector<std::string>{"backup"}, {"list-backups"}, {"verify-backup", "--id=1"}}) {
    std::vector<std::string> args = {"--target=" + (*server)->target(), "admin"};
    args.insert(args.end(), cmd.begin(), cmd.end());
    const CtlResult r = RunCtl(args);
    EXPECT_EQ(r.exit_code, 1) << cmd[0] << ": " << r.output;
    EXPECT_THAT(r.output, HasSubstr("FAILED_PRECONDITION")) << cmd[0];
  }
}

TEST(BackupRestoreTest, WmtyctlAdminUsage) {
  const CtlResult help = RunCtl({"admin", "--help"});
  EXPECT_EQ(help.exit_code, 0);
  for (const char* c : {"backup", "list-backups", "verify-backup", "restore"}) {
    EXPECT_THAT(help.output, HasSubstr(c));
  }
  const CtlResult restore_help = RunCtl({"admin", "restore", "--help"});
  EXPECT_EQ(restore_help.exit_code, 0);
  EXPECT_THAT(restore_help.output, HasSubstr("--data_dir=NEW_DIR"));
  EXPECT_THAT(RunCtl({"help"}).output, HasSubstr("admin verify-backup"));
  EXPECT_EQ(RunCtl({"admin", "verify-backup"}).exit_code, 2);  // needs --id
  EXPECT_EQ(RunCtl({"admin", "verify-backup", "--id=x"}).exit_code, 2);
  EXPECT_EQ(RunCtl({"admin", "backup", "--id=3"}).exit_code, 2);              // not its flag
  EXPECT_EQ(RunCtl({"admin", "restore", "--data_dir=/tmp/x"}).exit_code, 2);  // needs --backup_dir
  EXPECT_EQ(RunCtl({"admin", "frobnicate"}).exit_code, 2);
  EXPECT_EQ(RunCtl({"admin"}).exit_code, 2);
}

// ---------------------------------------------------------------- the admin scope

// An operator's token with `scope`.
std::string Sign(const std::string& scope) { return SignToken({.scope = scope, .sub = "Practitioner/ops-1"}); }

TEST(AdminAuthTest, AdminRpcsNeedTheAdminScopeAndAreAudited) {
  TempDir dir;
  const std::string data_dir = dir.path() + "/data";
  std::vector<std::string> flags = Hs256AuthFlagsIn(dir.path());
  flags.push_back("--backup_dir=" + dir.path() + "/backups");
  auto server = ServerProcess::Start(data_dir, flags);
  ASSERT_TRUE(server.ok()) << server.status();
  auto stub =
      adminpb::AdminService::NewStub(grpc::CreateChannel((*server)->target(), grpc::InsecureChannelCredentials()));
  auto call = [&](const std::string& token, const std::string& method) -> absl::Status {
    grpc::ClientContext ctx;
    ctx.set_deadline(absl::ToChronoTime(absl::Now() + absl::Seconds(60)));
    if (!token.empty()) ctx.AddMetadata("authorization", "Bearer " + token);
    if (method == "CreateBackup") {
      adminpb::Backup out;
      return FromGrpcStatus(stub->CreateBackup(&ctx, adminpb::CreateBackupRequest(), &out));
    }
    if (method == "ListBackups") {
      adminpb::ListBackupsResponse out;
      return FromGrpcStatus(stub->ListBackups(&ctx, adminpb::ListBackupsRequest(), &out));
    }
    adminpb::VerifyBackupRequest req;
    req.set_backup_id(1);
    adminpb::Backup out;
    return FromGrpcStatus(stub->VerifyBackup(&ctx, req, &out));
  };

  int refused = 0;
  for (const std::string method : {"CreateBackup", "ListBackups", "VerifyBackup"}) {
    EXPECT_THAT(call("", method), StatusIs(absl::StatusCode::kUnauthenticated)) << method;
    ++refused;
    // Every resource scope, wildcards and all contexts included, is not enough.
    for (const std::string scope : {"system/*.*", "system/*.cruds", "user/*.* system/AuditEvent.rs", "patient/*.*",
                                    "system/wmty.*", "system/wmty.admin?x=1", "user/wmty.admin"}) {
      EXPECT_THAT(call(Sign(scope), method), StatusIs(absl::StatusCode::kPermissionDenied)) << method << " " << scope;
      ++refused;
    }
  }
  const std::string admin = Sign("openid system/wmty.admin");
  ASSERT_TRUE(call(admin, "CreateBackup").ok());
  EXPECT_TRUE(call(admin, "ListBackups").ok());
  EXPECT_TRUE(call(admin, "VerifyBackup").ok());

  // The real wmtyctl with --token (and $WMTY_TOKEN's flag form) behaves the same.
  const CtlResult denied =
      RunCtl({"--target=" + (*server)->target(), "--token=" + Sign("system/*.*"), "admin", "list-backups"});
  EXPECT_EQ(denied.exit_code, 1);
  EXPECT_THAT(denied.output, HasSubstr("PERMISSION_DENIED"));
  const CtlResult allowed = RunCtl({"--target=" + (*server)->target(), "admin", "list-backups", "--token=" + admin});
  EXPECT_EQ(allowed.exit_code, 0) << allowed.output;

  // The admin scope grants no patient data.
  {
    client::ClientOptions options;
    options.target = (*server)->target();
    options.bearer_token = admin;
    auto c = client::Client::Connect(options);
    v1::ListGoalsRequest req;
    req.set_parent("patients/p1");
    EXPECT_THAT(c->ListGoals(req), StatusIs(absl::StatusCode::kPermissionDenied));
  }

  // Every call is in the audit trail, refused ones included.
  const int status = (*server)->Terminate();
  EXPECT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0);
  storage::StoreOptions options;
  options.path = data_dir;
  auto store = storage::Store::Open(options);
  ASSERT_TRUE(store.ok()) << store.status();
  std::map<std::string, int> by_outcome;  // "interaction outcome_detail" -> count
  ASSERT_TRUE((*store)
                  ->NewReader()
                  ->ScanAudit(0,
                              [&](const storage::AuditRecord& a) {
                                if (a.source() == "grpc" && a.patient_id().empty()) {
                                  ++by_outcome[absl::StrCat(a.interaction(), " ", a.outcome_detail())];
                                }
                                return true;
                              })
                  .ok());
  EXPECT_EQ(by_outcome["backup OK"], 1);
  EXPECT_EQ(by_outcome["list-backups OK"], 2);  // the RPC and wmtyctl
  EXPECT_EQ(by_outcome["verify-backup OK"], 1);
  int audited_refusals = 0;
  for (const auto& [key, n] : by_outcome) {
    if (absl::EndsWith(key, "UNAUTHENTICATED") || absl::EndsWith(key, "PERMISSION_DENIED")) {
      if (absl::StartsWith(key, "backup ") || absl::StartsWith(key, "list-backups ") ||
          absl::StartsWith(key, "verify-backup ")) {
        audited_refusals += n;
      }
    }
  }
  EXPECT_EQ(audited_refusals, refused + 1);  // + wmtyctl's refused list-backups
  // Neither tokens nor their claims in the log.
  EXPECT_THAT(ReadFile((*server)->log_path()), ::testing::Not(HasSubstr(admin.substr(0, 40))));
}

}  // namespace
}  // namespace wmty::testing
