// The FHIR face's one registration point: every interaction it serves, as
// method + path pattern -> handler, with the access each one needs declared
// next to it (resource type, permission, where the patient comes from, audit
// action, public or not). Routing (routing.cc) matches a request against this
// table only; the framework (FhirService::Dispatch) then runs the access
// steps in a fixed order before and around the handler:
//   authenticate (service.cc, every non-public path) -> the type's permission
//   -> [handler parses] -> the patient's permission (AuthorizePatient, with
//   the row's type and permission) -> audit (Reply, with the row's action).
// A success answer of a row whose patient is checked by AuthorizePatient is
// refused (500, logged) when the handler never called it: it cannot forget.
// A path no row matches is 404; a known path with another method is 405 with
// Allow from the table. New resource types and operations are new rows here
// (docs/architecture.md, "How to add a FHIR resource or operation").
//
// Thread safety: the table is immutable after first use.
#ifndef WMTY_FHIR_FACE_INTERACTIONS_H_
#define WMTY_FHIR_FACE_INTERACTIONS_H_

#include <string>
#include <vector>

#include "absl/strings/string_view.h"
#include "auth/scopes.h"
#include "fhir/face/call.h"

namespace wmty::fhir::face {

class FhirService;

// Where the patient an interaction concerns comes from, and so who checks it.
enum class PatientFrom {
  kPublic,       // no token, no patient: metadata, our CodeSystem
  kAllPatients,  // spans every patient (type history): the framework checks
                 // the permission for all patients (user/ and system/ scopes)
  kStored,       // the stored resource's patient (read, vread, history, delete)
  kBody,         // the parsed body's subject (create, update; update also the stored one)
  kQuery,        // search: patient= / subject= (Patient: _id)
  kPath,         // the id in the path is the patient (PUT Patient/[id])
  kHandler,      // the handler's own rule (Provenance follows its target, the
                 // audit trail needs AuditEvent scopes, $everything all three types)
};

// What a patient/ scope meets when the data is another patient's.
enum class OtherPatient {
  kForbidden,  // 403
  kUnknown,    // 404, as if unknown (reads: "another patient's" looks like "no such id")
  kLeftOut,    // 200 without it (Provenance search: targets of another patient are left out)
};

struct Access {
  // The resource type the permission is on; "" = the path's {type}.
  const char* type = "";
  auth::Permission permission = auth::kRead;
  PatientFrom patient = PatientFrom::kPublic;
  OtherPatient other_patient = OtherPatient::kForbidden;
  // FHIR audit-event-action: C R U D E ("" for public rows: not audited).
  const char* action = "";
};

// What the path pattern captured.
struct RouteArgs {
  std::string type;  // {type}: Goal, Observation, List or Patient
  std::string id;    // {id}
  std::string vid;   // {vid}
};

struct Interaction {
  bhttp::verb method;
  // Segments after [base]/: literals, {type} (a stored type), {id}, {vid}.
  const char* path;
  // For logs and AuditEvent.subtype: read, vread, search, create, ...
  const char* name;
  Access access;
  // Null: the interaction is refused with `refusal` (405, Allow from the
  // path's other rows), after authentication.
  void (*handler)(FhirService& service, const CallPtr& c, const RouteArgs& args);
  const char* refusal = "";
};

// Every registered interaction, in match order (the first row matching the
// path and method wins).
const std::vector<Interaction>& Interactions();
// Is every row registered for the request path `path` ("/fhir/...") public?
// Such paths are served without a token and not audited.
bool IsPublicPath(absl::string_view path);

}  // namespace wmty::fhir::face

#endif  // WMTY_FHIR_FACE_INTERACTIONS_H_
