// The one audit scoring of a status (services/domain/audit_outcome.h) that
// the gRPC, admin and FHIR faces share. Before it there were three copies:
// the admin service scored ABORTED as a serious failure (8), and the FHIR
// face scored every 5xx as 8, so a deadline or an overload refusal (both
// 503) was a serious failure there and a minor one (4) on gRPC.
#include "domain/audit_outcome.h"

#include <gtest/gtest.h>

namespace wmty::domain {
namespace {

TEST(AuditOutcomeTest, SuccessIsZero) { EXPECT_EQ(AuditOutcomeOf(absl::StatusCode::kOk), kAuditSuccess); }

TEST(AuditOutcomeTest, RefusalsAndTheCallersFailuresAreMinor) {
  for (absl::StatusCode code :
       {absl::StatusCode::kInvalidArgument, absl::StatusCode::kNotFound, absl::StatusCode::kAlreadyExists,
        absl::StatusCode::kPermissionDenied, absl::StatusCode::kUnauthenticated, absl::StatusCode::kFailedPrecondition,
        absl::StatusCode::kOutOfRange, absl::StatusCode::kCancelled, absl::StatusCode::kUnimplemented,
        // A stale etag: the caller's precondition, nothing changed.
        absl::StatusCode::kAborted,
        // The caller's deadline passed: nothing was committed.
        absl::StatusCode::kDeadlineExceeded,
        // Load shedding: refused before doing anything, retry later.
        absl::StatusCode::kResourceExhausted}) {
    EXPECT_EQ(AuditOutcomeOf(code), kAuditMinorFailure) << absl::StatusCodeToString(code);
  }
}

TEST(AuditOutcomeTest, FailuresOnOurSideAreSerious) {
  for (absl::StatusCode code : {absl::StatusCode::kInternal, absl::StatusCode::kDataLoss, absl::StatusCode::kUnknown,
                                absl::StatusCode::kUnavailable}) {
    EXPECT_EQ(AuditOutcomeOf(code), kAuditSeriousFailure) << absl::StatusCodeToString(code);
  }
}

TEST(AuditOutcomeTest, ValuesAreFhirAuditEventOutcomeCodes) {
  EXPECT_EQ(static_cast<int>(kAuditSuccess), 0);
  EXPECT_EQ(static_cast<int>(kAuditMinorFailure), 4);
  EXPECT_EQ(static_cast<int>(kAuditSeriousFailure), 8);
  EXPECT_EQ(static_cast<int>(kAuditMajorFailure), 12);
}

}  // namespace
}  // namespace wmty::domain
