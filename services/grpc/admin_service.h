// The operator face of the gRPC server: wmty.admin.v1.AdminService (online
// backups: create, list, verify; see proto/wmty/admin/v1/admin.proto).
//
// Authorization: with a verifier, every call needs a bearer token holding
// auth::kAdminScope (`system/wmty.admin`) -> otherwise PERMISSION_DENIED; no
// FHIR resource scope grants it. `verifier` null (--auth_disabled, loopback
// only) allows every call, as on wmty.v1. Every call, refused ones included,
// leaves an audit record (source "grpc", interaction "backup",
// "list-backups" or "verify-backup", no patient).
//
// Backup work can take minutes, so it never runs on a gRPC thread: the call
// is handed to the backup thread (storage::Backups::Post) and finished from
// there.
//
// Ownership: `audit_sink` and `backups` must outlive the service. `backups`
// null means backups are disabled (no --backup_dir): every call (once
// authorized) fails with FAILED_PRECONDITION.
// Thread safety: safe for gRPC's concurrent use.
#ifndef WMTY_GRPC_ADMIN_SERVICE_H_
#define WMTY_GRPC_ADMIN_SERVICE_H_

#include <memory>

#include <grpcpp/grpcpp.h>

#include "auth/token_verifier.h"
#include "domain/patient_records.h"
#include "storage/backup.h"

namespace wmty::grpc_api {

std::unique_ptr<grpc::Service> NewAdminService(domain::PatientRecords* audit_sink, storage::Backups* backups,
                                               std::shared_ptr<const auth::TokenVerifier> verifier);

}  // namespace wmty::grpc_api

#endif  // WMTY_GRPC_ADMIN_SERVICE_H_
