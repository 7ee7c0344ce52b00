// SMART App Launch scopes (v2, with v1 forms mapped), and the decision whether
// a principal may do an interaction on a resource type for a patient.
//
//   scope    := context "/" type "." permissions [ "?" filters ]
//   context  := "patient" | "user" | "system"
//   type     := a FHIR resource type | "*"
//   v2 perms := letters of "cruds" in that order (c create, r read/vread/
//               instance history, u update, d delete, s search/type history)
//   v1 perms := "read" -> "rs", "write" -> "cud", "*" -> "cruds"
// A `patient/` scope only reaches the patient named by the token's `patient`
// claim. Scopes with "?" filters are parsed but grant nothing yet
// (conservative: the filter is not evaluated, so it cannot widen access).
// Other scopes (openid, fhirUser, launch, offline_access, ...) are ignored.
#ifndef WMTY_AUTH_SCOPES_H_
#define WMTY_AUTH_SCOPES_H_

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/time/time.h"

namespace wmty::auth {

enum class ScopeContext { kPatient, kUser, kSystem };

// Bit set of permissions.
enum Permission : uint8_t {
  kCreate = 1,
  kRead = 2,
  kUpdate = 4,
  kDelete = 8,
  kSearch = 16,
};

struct Scope {
  ScopeContext context = ScopeContext::kPatient;
  std::string resource_type;  // "*" for every type
  uint8_t permissions = 0;
  bool has_filter = false;
};

// The operator scope: wmty.admin.v1.AdminService (backups). Granted only by
// this exact scope string; no resource scope, wildcard or context implies it
// (`system/*.*` reaches every patient's data, not the operator API), and it
// grants no resource access itself.
inline constexpr absl::string_view kAdminScope = "system/wmty.admin";

// True if the space-separated scope claim holds `scope` exactly.
bool HasScope(absl::string_view scopes, absl::string_view scope);

// Parses one resource scope. INVALID_ARGUMENT if it is not one (e.g.
// "openid"), or malformed ("patient/Goal.rc" is out of order).
absl::StatusOr<Scope> ParseScope(absl::string_view scope);
// Parses a space-separated scope claim, keeping the resource scopes.
std::vector<Scope> ParseScopes(absl::string_view scopes);

// Who is calling, from a verified token.
struct Principal {
  std::string subject;  // sub
  std::string issuer;   // iss
  std::string client_id;
  // SMART launch context: the patient `patient/` scopes are bound to.
  std::optional<std::string> patient;
  std::string fhir_user;  // e.g. "Practitioner/123"
  std::vector<Scope> scopes;
  // Holds kAdminScope.
  bool admin = false;
  // When the token stops being accepted (its exp plus the allowed clock
  // skew). Long-lived calls (watches) end then.
  absl::Time expires = absl::InfiniteFuture();
};

enum class Decision {
  kAllow,
  // No scope covers the type and permission.
  kInsufficientScope,
  // Only patient/ scopes cover it, and they are bound to another patient
  // (or the request names no single patient).
  kOtherPatient,
};

// May `principal` do `permission` on `resource_type` for `patient_id`?
// `patient_id` empty means the request is not confined to one patient (e.g.
// a search without a patient), which patient/ scopes never allow.
Decision Authorize(const Principal& principal, absl::string_view resource_type, Permission permission,
                   absl::string_view patient_id);

}  // namespace wmty::auth

#endif  // WMTY_AUTH_SCOPES_H_
