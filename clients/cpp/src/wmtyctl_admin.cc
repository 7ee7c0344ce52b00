#include "wmtyctl_admin.h"

#include <cstdio>
#include <fstream>
#include <optional>
#include <sstream>
#include <string>
#include <vector>

#include <google/protobuf/util/json_util.h>
#include <google/protobuf/util/time_util.h>
#include <grpcpp/grpcpp.h>

#include "absl/algorithm/container.h"
#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/time/time.h"
#include "common/log.h"
#include "common/status.h"
#include "storage/backup.h"
#include "wmty/admin/v1/admin.grpc.pb.h"

namespace wmty::ctl {
namespace {

namespace adminpb = ::wmty::admin::v1;

constexpr int kExitOk = 0;
constexpr int kExitFailed = 1;
constexpr int kExitUsage = 2;

struct AdminCommand {
  const char* name;
  const char* summary;
  const char* usage;  // after "wmtyctl [global flags] admin "
  const char* details;
};

constexpr AdminCommand kBackup{
    "backup", "Take a backup of the running server now (then apply --backup_keep).", "backup",
    "The server copies its database into its --backup_dir while it keeps serving. The backup holds\n"
    "every write acknowledged before this command started. Prints the new backup. Default timeout: 30m.\n"
    "Needs a token with scope system/wmty.admin (unless the server runs with --auth_disabled).\n"};
constexpr AdminCommand kListBackups{"list-backups", "List the server's backups, newest first.", "list-backups",
                                    "Prints id, time (UTC), size, files and the last change sequence each "
                                    "backup holds.\nNeeds scope system/wmty.admin.\n"};
constexpr AdminCommand kVerifyBackup{
    "verify-backup", "Re-read one backup on the server and check every file's size and checksum.",
    "verify-backup --id=N",
    "Exit status 0: the backup is intact and can be restored; 1 with DATA_LOSS: it is damaged.\n"
    "Default timeout: 30m. Needs scope system/wmty.admin.\n"};
constexpr AdminCommand kRestore{
    "restore", "Restore a backup into a NEW data directory (offline, no server; run it on the server's host).",
    "restore --backup_dir=DIR --data_dir=NEW_DIR [--id=N]",
    "Runs locally: reads DIR (a wmtyd --backup_dir) and writes NEW_DIR, which must be missing or empty\n"
    "(a non-empty directory is refused, so live data is never overwritten). Without --id the newest\n"
    "backup is restored. The backup's checksums are verified first; the restored database is then\n"
    "opened and its integrity checked (current records, versions, id index and change log agree).\n"
    "Start wmtyd with --data_dir=NEW_DIR afterwards. --target, --token and --timeout do not apply.\n"};

constexpr const AdminCommand* kCommands[] = {&kBackup, &kListBackups, &kVerifyBackup, &kRestore};

const AdminCommand* FindAdminCommand(absl::string_view name) {
  for (const AdminCommand* c : kCommands) {
    if (name == c->name) return c;
  }
  return nullptr;
}

void PrintAdminHelp(FILE* to) {
  std::fprintf(to,
               "wmtyctl admin: operator commands (backups).\n\n"
               "Usage: wmtyctl [global flags] admin <command> [flags]\n\nCommands:\n");
  PrintAdminCommandList(to);
  std::fprintf(to,
               "\nRun 'wmtyctl admin <command> --help' for details. Global flags (--target, --token, --timeout,\n"
               "--json) may come before or after 'admin'. Runbook: docs/operations.md, \"Backup and restore\".\n"
               "Exit status: 0 ok, 1 failed, 2 usage error.\n");
}

void PrintAdminCommandHelp(const AdminCommand& c) {
  std::printf("wmtyctl admin %s: %s\n\nUsage: wmtyctl [global flags] admin %s\n\n%s", c.name, c.summary, c.usage,
              c.details);
}

struct AdminArgs {
  GlobalFlags globals;
  const AdminCommand* command = nullptr;
  std::optional<uint32_t> id;
  std::string backup_dir;
  std::string data_dir;
};

absl::Status Usage(absl::string_view message) { return absl::InvalidArgumentError(message); }

// One admin flag (not a global one) into `out`.
absl::Status TakeAdminFlag(const std::string& name, const std::string& value, AdminArgs& out) {
  if (name == "id") {
    uint32_t id = 0;
    if (!absl::SimpleAtoi(value, &id) || id == 0) {
      return Usage(absl::StrCat("--id: '", value, "' is not a backup id (a positive number)"));
    }
    out.id = id;
  } else if (name == "backup_dir") {
    out.backup_dir = value;
  } else if (name == "data_dir") {
    out.data_dir = value;
  } else {
    return Usage(absl::StrCat("unknown flag --", name));
  }
  return absl::OkStatus();
}

absl::StatusOr<AdminArgs> Parse(GlobalFlags globals, const std::vector<std::string>& args) {
  AdminArgs out;
  out.globals = std::move(globals);
  absl::Status walked = WalkFlags(
      args, {}, out.globals,
      [&](const std::string& name, const std::string& value) { return TakeAdminFlag(name, value, out); },
      [&](const std::string& arg) {
        if (out.command != nullptr) return Usage(absl::StrCat("unexpected argument '", arg, "'"));
        if ((out.command = FindAdminCommand(arg)) == nullptr) {
          return Usage(absl::StrCat("unknown admin command '", arg, "' (run 'wmtyctl admin --help' for the list)"));
        }
        return absl::OkStatus();
      });
  if (!walked.ok()) return walked;
  if (out.command == nullptr || out.globals.help) return out;
  // Each command takes only its own flags, so a misplaced one is not ignored.
  const bool is_restore = out.command == &kRestore;
  if (out.id.has_value() && out.command != &kVerifyBackup && !is_restore) {
    return Usage(absl::StrCat("admin ", out.command->name, " takes no --id"));
  }
  if (!is_restore && (!out.backup_dir.empty() || !out.data_dir.empty())) {
    return Usage(absl::StrCat("admin ", out.command->name,
                              " takes no --backup_dir/--data_dir (the server uses its own; restore is offline)"));
  }
  if (out.command == &kVerifyBackup && !out.id.has_value()) return Usage("admin verify-backup needs --id=N");
  if (is_restore && (out.backup_dir.empty() || out.data_dir.empty())) {
    return Usage("admin restore needs --backup_dir=DIR and --data_dir=NEW_DIR");
  }
  return out;
}

std::string Json(const google::protobuf::Message& m) {
  google::protobuf::util::JsonPrintOptions options;
  options.preserve_proto_field_names = true;
  options.add_whitespace = true;
  std::string out;
  (void)google::protobuf::util::MessageToJsonString(m, &out, options);
  if (!absl::EndsWith(out, "\n")) out.push_back('\n');
  return out;
}

std::string HumanBytes(uint64_t bytes) {
  if (bytes < 1024) return absl::StrCat(bytes, " B");
  if (bytes < (uint64_t{1} << 20)) return absl::StrFormat("%.1f KiB", bytes / 1024.0);
  if (bytes < (uint64_t{1} << 30)) return absl::StrFormat("%.1f MiB", bytes / 1048576.0);
  return absl::StrFormat("%.2f GiB", bytes / 1073741824.0);
}

std::string Line(const adminpb::Backup& b) {
  return absl::StrFormat("%-6u %-20s %12s %6u %14u", b.id(),
                         google::protobuf::util::TimeUtil::ToString(b.create_time()), HumanBytes(b.size_bytes()),
                         b.file_count(), b.last_sequence());
}

std::string Header() {
  return absl::StrFormat("%-6s %-20s %12s %6s %14s\n", "ID", "CREATED (UTC)", "SIZE", "FILES", "LAST_SEQUENCE");
}

void PrintFailure(const AdminCommand& c, const absl::Status& s) {
  std::fprintf(stderr, "wmtyctl admin %s: %s: %s\n", c.name, absl::StatusCodeToString(s.code()).c_str(),
               std::string(s.message()).c_str());
  if (s.code() == absl::StatusCode::kPermissionDenied) {
    std::fprintf(stderr, "  (the token needs the scope system/wmty.admin)\n");
  }
}

int Restore(const AdminArgs& a) {
  // The storage layer logs as a server would; the operator reads our summary.
  log::SetMinLevel(log::Level::kWarning);
  storage::Backups::RestoreRequest request;
  request.backup_dir = a.backup_dir;
  request.backup_id = a.id;
  request.data_dir = a.data_dir;
  auto restored = storage::Backups::Restore(request);
  if (!restored.ok()) {
    PrintFailure(kRestore, restored.status());
    return kExitFailed;
  }
  adminpb::RestoreReport report;
  adminpb::Backup& b = *report.mutable_backup();
  b.set_id(restored->backup.id);
  b.mutable_create_time()->set_seconds(absl::ToUnixSeconds(restored->backup.time));
  b.set_size_bytes(restored->backup.size_bytes);
  b.set_file_count(restored->backup.file_count);
  b.set_last_sequence(restored->backup.last_sequence);
  report.set_data_dir(a.data_dir);
  report.set_restored_last_sequence(restored->last_sequence);
  if (a.globals.json) {
    std::fputs(Json(report).c_str(), stdout);
    return kExitOk;
  }
  std::printf("restored backup %u into %s\n", b.id(), a.data_dir.c_str());
  std::fputs(Header().c_str(), stdout);
  std::printf("%s\n", Line(b).c_str());
  std::printf(
      "integrity: OK; the restored database ends at change sequence %llu\n"
      "next: start wmtyd with --data_dir=%s\n",
      static_cast<unsigned long long>(restored->last_sequence), a.data_dir.c_str());
  return kExitOk;
}

int CallServer(const AdminArgs& a) {
  const AdminCommand& c = *a.command;
  auto credentials = ChannelCredentialsFor(a.globals.tls);
  if (!credentials.ok()) {
    std::fprintf(stderr, "wmtyctl admin: %s\n", std::string(credentials.status().message()).c_str());
    return 2;
  }
  auto stub = adminpb::AdminService::NewStub(grpc::CreateChannel(a.globals.target, *credentials));
  const bool long_running = &c == &kBackup || &c == &kVerifyBackup;
  const absl::Duration timeout = a.globals.timeout.value_or(long_running ? absl::Minutes(30) : absl::Seconds(5));
  grpc::ClientContext ctx;
  ctx.set_deadline(absl::ToChronoTime(absl::Now() + timeout));
  if (!a.globals.token.empty()) ctx.AddMetadata("authorization", "Bearer " + a.globals.token);
  // No retries: a backup is not idempotent (a retry would take a second one),
  // and the operator sees the failure at once.
  if (&c == &kListBackups) {
    adminpb::ListBackupsResponse resp;
    const absl::Status s = FromGrpcStatus(stub->ListBackups(&ctx, adminpb::ListBackupsRequest(), &resp));
    if (!s.ok()) {
      PrintFailure(c, s);
      return kExitFailed;
    }
    if (a.globals.json) {
      std::fputs(Json(resp).c_str(), stdout);
      return kExitOk;
    }
    if (resp.backups().empty()) std::printf("(no backups)\n");
    if (!resp.backups().empty()) std::fputs(Header().c_str(), stdout);
    for (const auto& b : resp.backups()) std::printf("%s\n", Line(b).c_str());
    for (uint32_t id : resp.corrupt_backup_ids()) std::printf("%-6u CORRUPT (metadata unreadable)\n", id);
    return kExitOk;
  }
  adminpb::Backup resp;
  absl::Status s;
  if (&c == &kBackup) {
    s = FromGrpcStatus(stub->CreateBackup(&ctx, adminpb::CreateBackupRequest(), &resp));
  } else {
    adminpb::VerifyBackupRequest req;
    req.set_backup_id(*a.id);
    s = FromGrpcStatus(stub->VerifyBackup(&ctx, req, &resp));
  }
  if (!s.ok()) {
    PrintFailure(c, s);
    return kExitFailed;
  }
  if (a.globals.json) {
    std::fputs(Json(resp).c_str(), stdout);
    return kExitOk;
  }
  std::printf("%s\n", &c == &kBackup ? "backup created" : "backup verified: every file's size and checksum match");
  std::fputs(Header().c_str(), stdout);
  std::printf("%s\n", Line(resp).c_str());
  return kExitOk;
}

}  // namespace

void PrintAdminCommandList(FILE* to) {
  for (const AdminCommand* c : kCommands) {
    std::fprintf(to, "  %-28s %s\n", absl::StrCat("admin ", c->name).c_str(), c->summary);
  }
}

absl::StatusOr<std::shared_ptr<grpc::ChannelCredentials>> ChannelCredentialsFor(const TlsFiles& tls) {
  if (tls.cert_file.empty() != tls.key_file.empty()) {
    return absl::InvalidArgumentError("--tls_cert_file and --tls_key_file go together");
  }
  if (tls.ca_file.empty()) {
    if (!tls.cert_file.empty()) return absl::InvalidArgumentError("a client certificate needs --tls_ca_file");
    return grpc::InsecureChannelCredentials();
  }
  auto read = [](const std::string& path) -> absl::StatusOr<std::string> {
    std::ifstream in(path, std::ios::binary);
    std::ostringstream content;
    content << in.rdbuf();
    if (!in.good() && !in.eof()) return absl::InvalidArgumentError(absl::StrCat("cannot read ", path));
    if (content.str().empty())
      return absl::InvalidArgumentError(absl::StrCat("cannot read ", path, " (empty or missing)"));
    return std::move(content).str();
  };
  grpc::SslCredentialsOptions ssl;
  auto ca = read(tls.ca_file);
  if (!ca.ok()) return ca.status();
  ssl.pem_root_certs = *ca;
  if (!tls.cert_file.empty()) {
    auto cert = read(tls.cert_file);
    if (!cert.ok()) return cert.status();
    auto key = read(tls.key_file);
    if (!key.ok()) return key.status();
    ssl.pem_cert_chain = *cert;
    ssl.pem_private_key = *key;
  }
  return grpc::SslCredentials(ssl);
}

bool TakeTlsFlag(const std::string& name, const std::string& value, TlsFiles& tls) {
  if (name == "tls_ca_file") {
    tls.ca_file = value;
  } else if (name == "tls_cert_file") {
    tls.cert_file = value;
  } else if (name == "tls_key_file") {
    tls.key_file = value;
  } else {
    return false;
  }
  return true;
}

namespace {

// A global flag that takes a value; false if `name` is none.
absl::StatusOr<bool> TakeGlobalFlag(const std::string& name, const std::string& value, GlobalFlags& globals) {
  if (name == "target") {
    globals.target = value;
  } else if (name == "token") {
    globals.token = value;
  } else if (name == "timeout") {
    absl::Duration d;
    if (!absl::ParseDuration(value, &d) || d <= absl::ZeroDuration()) {
      return Usage(absl::StrCat("--timeout: '", value, "' is not a positive duration such as 5s or 30m"));
    }
    globals.timeout = d;
  } else {
    return TakeTlsFlag(name, value, globals.tls);
  }
  return true;
}

}  // namespace

absl::Status WalkFlags(const std::vector<std::string>& args, std::initializer_list<absl::string_view> bools,
                       GlobalFlags& globals,
                       absl::FunctionRef<absl::Status(const std::string& name, const std::string& value)> take,
                       absl::FunctionRef<absl::Status(const std::string& arg)> positional) {
  for (size_t i = 0; i < args.size(); ++i) {
    const std::string& arg = args[i];
    if (arg == "-h") {
      globals.help = true;
      continue;
    }
    if (!absl::StartsWith(arg, "--")) {
      if (absl::Status s = positional(arg); !s.ok()) return s;
      continue;
    }
    const std::string flag = arg.substr(2);
    const size_t eq = flag.find('=');
    const std::string name = flag.substr(0, eq);
    std::optional<std::string> value;
    if (eq != std::string::npos) value = flag.substr(eq + 1);
    if (name == "help" || name == "json" || absl::c_linear_search(bools, name)) {
      bool v = true;
      if (value.has_value() && !absl::SimpleAtob(*value, &v)) {
        return Usage(absl::StrCat("--", name, ": '", *value, "' is not true or false"));
      }
      if (name == "help" || name == "json") {
        (name == "help" ? globals.help : globals.json) = v;
      } else if (absl::Status s = take(name, v ? "true" : "false"); !s.ok()) {
        return s;
      }
      continue;
    }
    if (!value.has_value()) {
      if (i + 1 >= args.size()) return Usage(absl::StrCat("--", name, " needs a value"));
      value = args[++i];
    }
    absl::StatusOr<bool> global = TakeGlobalFlag(name, *value, globals);
    if (!global.ok()) return global.status();
    if (*global) continue;
    if (absl::Status s = take(name, *value); !s.ok()) return s;
  }
  return absl::OkStatus();
}

int AdminMain(GlobalFlags globals, const std::vector<std::string>& args) {
  auto parsed = Parse(std::move(globals), args);
  if (!parsed.ok()) {
    std::fprintf(stderr, "wmtyctl admin: %s\n", std::string(parsed.status().message()).c_str());
    return kExitUsage;
  }
  if (parsed->command == nullptr) {
    PrintAdminHelp(parsed->globals.help ? stdout : stderr);
    return parsed->globals.help ? kExitOk : kExitUsage;
  }
  if (parsed->globals.help) {
    PrintAdminCommandHelp(*parsed->command);
    return kExitOk;
  }
  if (parsed->command == &kRestore) return Restore(*parsed);
  return CallServer(*parsed);
}

}  // namespace wmty::ctl
