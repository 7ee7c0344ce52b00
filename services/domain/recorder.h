// The recorder rule: who a write is recorded by, and for whom. Decided here,
// once, for every face (gRPC, FHIR) and every write (create, update, retract).
//
//   * With authentication on, the recorder (Provenance.recorded_by,
//     RetractRequest.retracted_by) is always the authenticated principal
//     (RecorderIdOf). A request may leave the recorder empty, or name the
//     principal to add a display name and role; naming anyone else is
//     INVALID_ARGUMENT with a field violation pointing at on_behalf_of:
//     nothing is silently rewritten.
//   * A client acting for a named user (an EHR plugin with a system token)
//     states whom in on_behalf_of. It is kept as stated, not verified, next
//     to the recorder; the audit trail has the token either way. An
//     on_behalf_of naming the principal itself adds nothing and is dropped
//     (its display name and role fill the recorder's when those are empty).
//   * A token from which no recorder id follows may read but not write
//     (PERMISSION_DENIED).
//   * Without authentication (--auth_disabled: development only) there is no
//     principal, and the recorder is taken from the request as given (and
//     required, see validation.h).
//
// Thread safety: pure functions.
#ifndef WMTY_DOMAIN_RECORDER_H_
#define WMTY_DOMAIN_RECORDER_H_

#include <string>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "auth/scopes.h"
#include "common/status.h"
#include "wmty/v1/service.pb.h"

namespace wmty::domain {

// The recorder id of a principal: the id of its fhirUser when that is a
// Practitioner reference ("Practitioner/<id>", relative or absolute), else
// its sub when that is a FHIR id or itself a Practitioner reference.
// PERMISSION_DENIED (safe to show) otherwise.
absl::StatusOr<std::string> RecorderIdOf(const auth::Principal& principal);

// Applies the rule to a create's or update's provenance (named `prefix` in
// violations, e.g. "goal.provenance"), in place. `principal` null: no
// authentication, nothing changes. Violations are appended to `v`; a
// principal without a recorder id is the returned PERMISSION_DENIED.
absl::Status ApplyRecorderRule(const auth::Principal* principal, absl::string_view prefix, v1::Provenance* p,
                               FieldViolations* v);
// The same for a retraction's retracted_by and on_behalf_of.
absl::Status ApplyRecorderRule(const auth::Principal* principal, v1::RetractRequest* req, FieldViolations* v);

}  // namespace wmty::domain

#endif  // WMTY_DOMAIN_RECORDER_H_
