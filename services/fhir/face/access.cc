// Access of the FHIR face: authentication (bearer tokens), authorization of
// a type and of a patient, and the audit record every non-public call leaves.

#include "fhir/face/access.h"

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "domain/names.h"
#include "fhir/face/service.h"

namespace wmty::fhir::face {
namespace {

// The audit action (FHIR audit-event-action) of one of our interactions.
std::string AuditAction(absl::string_view interaction, bhttp::verb method) {
  if (interaction == "create") return "C";
  if (interaction == "update") return "U";
  if (interaction == "delete") return "D";
  if (interaction == "search") return "E";
  if (interaction == "read" || interaction == "vread" || interaction == "history-instance" ||
      interaction == "history-type" || interaction == "everything") {
    return "R";
  }
  switch (method) {
    case bhttp::verb::get:
      return "R";
    case bhttp::verb::post:
      return "C";
    case bhttp::verb::put:
      return "U";
    case bhttp::verb::delete_:
      return "D";
    default:
      return "E";
  }
}

}  // namespace

// codes, ids and the status: never request text or the token.
void RecordAudit(Call& c, http::Status status) {
  if (!c.audit.has_value() || c.audit_sink == nullptr) return;
  storage::AuditRecord& a = *c.audit;
  a.set_interaction(c.interaction);
  a.set_action(AuditAction(c.interaction, c.request.method()));
  if (c.principal.has_value()) {
    a.set_agent(c.principal->subject);
    a.set_client_id(c.principal->client_id);
  }
  const int code = static_cast<int>(status);
  a.set_outcome(code >= 500 ? 8 : code >= 400 ? 4 : 0);
  a.set_outcome_detail(std::to_string(code));
  c.audit_sink->Audit(std::move(a));
  c.audit.reset();
}

// Who and what a request concerns, once the interaction knows (ids only).
void AuditTarget(Call& c, absl::string_view patient, absl::string_view id) {
  if (!c.audit.has_value()) return;
  if (!patient.empty() && domain::IsValidId(patient)) c.audit->set_patient_id(std::string(patient));
  if (!id.empty() && id.size() <= 64 && domain::IsValidId(id)) c.audit->set_resource_id(std::string(id));
}

const char* PermissionName(auth::Permission p) {
  switch (p) {
    case auth::kCreate:
      return "create (c)";
    case auth::kRead:
      return "read (r)";
    case auth::kUpdate:
      return "update (u)";
    case auth::kDelete:
      return "delete (d)";
    case auth::kSearch:
      return "search (s)";
  }
  return "?";
}

bool FhirService::Authenticate(Call& c) {
  if (options_.verifier == nullptr) return true;
  // RFC 6750: no credentials -> no error code; bad credentials -> invalid_token.
  auto refuse = [&](absl::string_view why, bool with_error) {
    ReplyError(c, MakeRestError(http::Status::unauthorized, "login", std::string(why)),
               {{bhttp::field::www_authenticate,
                 with_error ? "Bearer realm=\"wmty\", error=\"invalid_token\"" : "Bearer realm=\"wmty\""}});
    return false;
  };
  if (c.request.find(bhttp::field::authorization) == c.request.end()) {
    return refuse("authentication required: send Authorization: Bearer <access token>", false);
  }
  const absl::string_view header = absl::StripAsciiWhitespace(c.Header(bhttp::field::authorization));
  if (header.size() < 7 || !absl::EqualsIgnoreCase(header.substr(0, 7), "Bearer ")) {
    return refuse("the Authorization header must be: Bearer <access token>", true);
  }
  const absl::string_view token = absl::StripLeadingAsciiWhitespace(header.substr(7));
  auto principal = options_.verifier->Verify(token);
  if (!principal.ok()) {
    // The verifier's message is safe to show (it never echoes the token).
    return refuse(absl::StrCat("invalid access token: ", principal.status().message()), true);
  }
  c.principal = std::move(*principal);
  c.ctx.principal = &*c.principal;  // the recorder of this request's writes
  return true;
}

bool FhirService::MayAtAll(const Call& c, absl::string_view type, auth::Permission p) const {
  if (!c.principal.has_value()) return true;
  return auth::Authorize(*c.principal, type, p, c.principal->patient.value_or("")) !=
         auth::Decision::kInsufficientScope;
}

bool FhirService::AuthorizeType(Call& c, absl::string_view type, auth::Permission p) {
  if (MayAtAll(c, type, p)) return true;
  ReplyError(c,
             MakeRestError(http::Status::forbidden, "forbidden",
                           absl::StrCat("the access token has no scope granting ", PermissionName(p), " on ", type)),
             {{bhttp::field::www_authenticate, "Bearer realm=\"wmty\", error=\"insufficient_scope\""}});
  return false;
}

bool FhirService::Authorize(Call& c, absl::string_view type, auth::Permission p, absl::string_view patient,
                            const RestError* not_found) {
  if (!c.principal.has_value()) return true;
  const auth::Decision d = auth::Authorize(*c.principal, type, p, patient);
  if (d == auth::Decision::kAllow) return true;
  if (d == auth::Decision::kOtherPatient && not_found != nullptr) {
    ReplyError(c, *not_found);
    return false;
  }
  const std::string why =
      d == auth::Decision::kOtherPatient
          ? absl::StrCat("the access token's patient scopes do not reach this patient (", PermissionName(p), " on ",
                         type, "; searches need ", type == "Patient" ? "_id" : "patient", "=<the token's patient>)")
          : absl::StrCat("the access token has no scope granting ", PermissionName(p), " on ", type);
  ReplyError(c, MakeRestError(http::Status::forbidden, "forbidden", why),
             {{bhttp::field::www_authenticate, "Bearer realm=\"wmty\", error=\"insufficient_scope\""}});
  return false;
}

auth::Decision FhirService::AuditDecision(const Call& c, auth::Permission p, absl::string_view patient) const {
  if (!c.principal.has_value()) return auth::Decision::kAllow;
  auth::Principal only = *c.principal;
  std::erase_if(only.scopes, [](const auth::Scope& s) { return s.resource_type != "AuditEvent"; });
  return auth::Authorize(only, "AuditEvent", p, patient);
}

void NoAuditScope(Call& c, auth::Permission p) {
  ReplyError(c,
             MakeRestError(http::Status::forbidden, "forbidden",
                           absl::StrCat("the access token has no scope naming AuditEvent that grants ",
                                        PermissionName(p), " (wildcard scopes do not reach the audit trail)")),
             {{bhttp::field::www_authenticate, "Bearer realm=\"wmty\", error=\"insufficient_scope\""}});
}

}  // namespace wmty::fhir::face
