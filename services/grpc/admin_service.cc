#include "grpc/admin_service.h"

#include <string>
#include <utility>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/time/time.h"
#include "auth/scopes.h"
#include "common/log.h"
#include "common/status.h"
#include "domain/audit_outcome.h"
#include "grpc/call_auth.h"
#include "wmty/admin/v1/admin.grpc.pb.h"

namespace wmty::grpc_api {
namespace {

namespace adminpb = ::wmty::admin::v1;

// What the audit trail says about an admin call.
struct Operation {
  absl::string_view method;       // for logs
  absl::string_view interaction;  // AuditRecord.interaction
  absl::string_view action;       // FHIR audit-event-action: E execute, R read
};

constexpr Operation kCreateBackup{"CreateBackup", "backup", "E"};
constexpr Operation kListBackups{"ListBackups", "list-backups", "R"};
constexpr Operation kVerifyBackup{"VerifyBackup", "verify-backup", "E"};

void ToProto(const storage::BackupInfo& in, adminpb::Backup* out) {
  out->set_id(in.id);
  out->mutable_create_time()->set_seconds(absl::ToUnixSeconds(in.time));
  out->set_size_bytes(in.size_bytes);
  out->set_file_count(in.file_count);
  out->set_last_sequence(in.last_sequence);
}

class AdminServiceImpl final : public adminpb::AdminService::CallbackService {
 public:
  AdminServiceImpl(domain::PatientRecords* audit_sink, storage::Backups* backups,
                   std::shared_ptr<const auth::TokenVerifier> verifier)
      : audit_sink_(audit_sink), backups_(backups), verifier_(std::move(verifier)) {}

  grpc::ServerUnaryReactor* CreateBackup(grpc::CallbackServerContext* ctx, const adminpb::CreateBackupRequest*,
                                         adminpb::Backup* response) override {
    return Run(ctx, kCreateBackup, absl::OkStatus(), [this, response](storage::AuditRecord* audit) -> absl::Status {
      auto created = backups_->Create();
      if (!created.ok()) return created.status();
      audit->set_resource_id(std::to_string(created->id));
      ToProto(*created, response);
      return absl::OkStatus();
    });
  }

  grpc::ServerUnaryReactor* ListBackups(grpc::CallbackServerContext* ctx, const adminpb::ListBackupsRequest*,
                                        adminpb::ListBackupsResponse* response) override {
    return Run(ctx, kListBackups, absl::OkStatus(), [this, response](storage::AuditRecord*) -> absl::Status {
      std::vector<uint32_t> corrupt;
      auto listed = backups_->List(&corrupt);
      if (!listed.ok()) return listed.status();
      for (const auto& b : *listed) ToProto(b, response->add_backups());
      for (uint32_t id : corrupt) response->add_corrupt_backup_ids(id);
      return absl::OkStatus();
    });
  }

  grpc::ServerUnaryReactor* VerifyBackup(grpc::CallbackServerContext* ctx, const adminpb::VerifyBackupRequest* request,
                                         adminpb::Backup* response) override {
    const absl::Status valid = request->backup_id() == 0
                                   ? InvalidField("backup_id", "is required (ids start at 1; see ListBackups)")
                                   : absl::OkStatus();
    const uint32_t id = request->backup_id();
    return Run(ctx, kVerifyBackup, valid, [this, id, response](storage::AuditRecord* audit) -> absl::Status {
      audit->set_resource_id(std::to_string(id));
      auto verified = backups_->Verify(id);
      if (!verified.ok()) return verified.status();
      ToProto(*verified, response);
      return absl::OkStatus();
    });
  }

 private:
  // Authenticates and authorizes, then runs `job` on the backup thread and
  // finishes the call from there. `valid` is the request's own check, made
  // after authorization (so an unauthorized caller learns nothing from it).
  template <class Job>
  grpc::ServerUnaryReactor* Run(grpc::CallbackServerContext* ctx, const Operation& op, absl::Status valid, Job job) {
    auto* reactor = ctx->DefaultReactor();
    storage::AuditRecord audit;
    audit.set_source("grpc");
    audit.set_interaction(std::string(op.interaction));
    audit.set_action(std::string(op.action));
    audit.set_remote(ctx->peer());
    absl::Status admitted = Admit(*ctx, op, &audit);
    if (admitted.ok()) admitted = valid;
    if (admitted.ok() && backups_ == nullptr) {
      admitted = absl::FailedPreconditionError("backups are disabled: start wmtyd with --backup_dir");
    }
    if (!admitted.ok()) {
      Finish(reactor, op, admitted, &audit);
      return reactor;
    }
    backups_->Post([this, reactor, op, audit = std::move(audit), job = std::move(job)]() mutable {
      const absl::Status s = job(&audit);
      Finish(reactor, op, s, &audit);
    });
    return reactor;
  }

  absl::Status Admit(const grpc::CallbackServerContext& ctx, const Operation& op, storage::AuditRecord* audit) const {
    if (verifier_ == nullptr) return absl::OkStatus();
    auto principal = AuthenticateCall(ctx, *verifier_);
    if (!principal.ok()) {
      LogRefusal(op, principal.status());
      return principal.status();
    }
    audit->set_agent(principal->subject);
    audit->set_client_id(principal->client_id);
    if (!principal->admin) {
      absl::Status denied = absl::PermissionDeniedError(absl::StrCat("insufficient scope: needs ", auth::kAdminScope));
      LogRefusal(op, denied);
      return denied;
    }
    return absl::OkStatus();
  }

  static void LogRefusal(const Operation& op, const absl::Status& status) {
    log::Info("request refused",
              {{"method", std::string(op.method)}, {"code", absl::StatusCodeToString(status.code())}});
  }

  void Finish(grpc::ServerUnaryReactor* reactor, const Operation& op, const absl::Status& status,
              storage::AuditRecord* audit) {
    if (domain::AuditOutcomeOf(status.code()) == domain::kAuditSeriousFailure) {
      // Messages of these come from the backup engine (paths, reasons), never from patient data.
      log::Error("admin request failed", {{"method", std::string(op.method)},
                                          {"code", absl::StatusCodeToString(status.code())},
                                          {"error", std::string(status.message())}});
    }
    audit->set_outcome(domain::AuditOutcomeOf(status.code()));
    audit->set_outcome_detail(absl::StatusCodeToString(status.code()));
    audit_sink_->Audit(std::move(*audit));
    reactor->Finish(ToGrpcStatus(status));
  }

  domain::PatientRecords* const audit_sink_;
  storage::Backups* const backups_;                            // null: backups disabled
  const std::shared_ptr<const auth::TokenVerifier> verifier_;  // null: auth disabled
};

}  // namespace

std::unique_ptr<grpc::Service> NewAdminService(domain::PatientRecords* audit_sink, storage::Backups* backups,
                                               std::shared_ptr<const auth::TokenVerifier> verifier) {
  return std::make_unique<AdminServiceImpl>(audit_sink, backups, std::move(verifier));
}

}  // namespace wmty::grpc_api
