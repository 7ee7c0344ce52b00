// How a status is scored in the audit trail (see audit_outcome.h).
#include "domain/audit_outcome.h"

namespace wmty::domain {

AuditOutcome AuditOutcomeOf(absl::StatusCode code) {
  switch (code) {
    case absl::StatusCode::kOk:
      return kAuditSuccess;
    // Our side failed: what an operator looks for in the trail.
    case absl::StatusCode::kInternal:
    case absl::StatusCode::kDataLoss:
    case absl::StatusCode::kUnknown:
    case absl::StatusCode::kUnavailable:
      return kAuditSeriousFailure;
    // Refused or not done, nothing changed: the caller's input or
    // precondition (including a stale etag, ABORTED), the caller's deadline
    // or cancellation, or a refusal for overload (RESOURCE_EXHAUSTED, which
    // is load shedding working as designed, not an error).
    default:
      return kAuditMinorFailure;
  }
}

}  // namespace wmty::domain
