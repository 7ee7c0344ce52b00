// The one scoring of how a request ended for the audit trail
// (storage::AuditRecord.outcome, FHIR AuditEvent.outcome), shared by the
// gRPC face, the admin service and the FHIR face, so the same failure is
// scored the same whichever face it came through.
//
// The scale is FHIR's audit-event-outcome:
//   0  success;
//   4  minor failure: the request was refused or could not be done, and
//      nothing changed (bad input, not found, not allowed, a stale etag or
//      other precondition, a deadline passed, overloaded: retry later);
//   8  serious failure: an error on our side (internal, data loss,
//      unavailable), the kind an operator must look at;
//   12 major failure: the system went down. Not produced: wmtyd stops rather
//      than answering when it cannot go on.
//
// Thread safety: pure functions.
#ifndef WMTY_DOMAIN_AUDIT_OUTCOME_H_
#define WMTY_DOMAIN_AUDIT_OUTCOME_H_

#include "absl/status/status.h"

namespace wmty::domain {

enum AuditOutcome : int {
  kAuditSuccess = 0,
  kAuditMinorFailure = 4,
  kAuditSeriousFailure = 8,
  kAuditMajorFailure = 12,
};

// The audit outcome of a request answered with `code` (see above).
AuditOutcome AuditOutcomeOf(absl::StatusCode code);

}  // namespace wmty::domain

#endif  // WMTY_DOMAIN_AUDIT_OUTCOME_H_
