// Access of the FHIR face that is not a FhirService member: the audit record
// of a call (who and what it concerns, appended when it is answered) and the
// names of permissions in refusals. Authentication and authorization are
// FhirService members (face/service.h), defined in access.cc. Internal to
// the FHIR face. Thread safety: each touches one Call.
#ifndef WMTY_FHIR_FACE_ACCESS_H_
#define WMTY_FHIR_FACE_ACCESS_H_

#include "absl/strings/string_view.h"
#include "auth/scopes.h"
#include "fhir/face/call.h"

namespace wmty::fhir::face {

// Completes and appends the call's audit record: who, what, outcome. Only
// codes, ids and the status: never request text or the token. Called by Reply.
void RecordAudit(Call& c, http::Status status);
// Who and what a request concerns, once the interaction knows (ids only;
// invalid ids are left out).
void AuditTarget(Call& c, absl::string_view patient, absl::string_view id = "");
// 403 insufficient_scope: no scope naming AuditEvent grants `p`.
void NoAuditScope(Call& c, auth::Permission p);
// "read (r)", ... for refusals.
const char* PermissionName(auth::Permission p);

}  // namespace wmty::fhir::face

#endif  // WMTY_FHIR_FACE_ACCESS_H_
