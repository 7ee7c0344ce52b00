// Routing of the FHIR face: a request's path and method to one registered
// interaction (interactions.h), and the access steps the framework runs
// before its handler (Dispatch). A path no row matches is 404; a registered
// path with another method is 405 with Allow.

#include <algorithm>
#include <string>
#include <vector>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"
#include "absl/strings/strip.h"
#include "common/log.h"
#include "fhir/face/access.h"
#include "fhir/face/interactions.h"
#include "fhir/face/resource_types.h"
#include "fhir/face/service.h"

namespace wmty::fhir::face {
namespace {

// Does `path` (segments after [base]/) match `pattern`? Fills `args`.
bool Matches(absl::string_view pattern, const std::vector<std::string>& path, RouteArgs* args) {
  const std::vector<absl::string_view> want = absl::StrSplit(pattern, '/');
  if (want.size() != path.size()) return false;
  RouteArgs out;
  for (size_t i = 0; i < want.size(); ++i) {
    if (want[i] == "{type}") {
      if (!IsStoredType(path[i])) return false;
      out.type = path[i];
    } else if (want[i] == "{id}") {
      out.id = path[i];
    } else if (want[i] == "{vid}") {
      out.vid = path[i];
    } else if (want[i] != path[i]) {
      return false;
    }
  }
  *args = std::move(out);
  return true;
}

// The methods a path allows: each method's first matching row, unless that
// row is a refusal.
std::string AllowedMethods(const std::vector<std::string>& path) {
  std::vector<bhttp::verb> seen;
  std::vector<std::string> allowed;
  RouteArgs ignored;
  for (const Interaction& row : Interactions()) {
    if (!Matches(row.path, path, &ignored)) continue;
    if (std::find(seen.begin(), seen.end(), row.method) != seen.end()) continue;
    seen.push_back(row.method);
    if (row.handler != nullptr) allowed.emplace_back(bhttp::to_string(row.method));
  }
  return absl::StrJoin(allowed, ", ");
}

RestError NotRegistered(const std::vector<std::string>& path) {
  auto not_found = [](std::string why) {
    return MakeRestError(http::Status::not_found, "not-supported", std::move(why));
  };
  // Whole-system and system-level requests stay 400 (as FHIR servers answer
  // an interaction they do not support); every other unregistered path is 404.
  if (path.empty()) {
    return Bad("not-supported",
               "whole-system interactions (batch, transaction, system search, system history) are not supported; see "
               "[base]/metadata");
  }
  const std::string& first = path[0];
  if (first == "_history" || absl::StartsWith(first, "$")) {
    return Bad("not-supported", "system-level history and operations are not supported");
  }
  for (const Interaction& row : Interactions()) {
    const absl::string_view head = absl::string_view(row.path).substr(0, absl::string_view(row.path).find('/'));
    if (head == first || (head == "{type}" && IsStoredType(first))) {
      return not_found("no such interaction (operations and compartments are not supported)");
    }
  }
  return not_found(absl::StrCat("resource type ", first.substr(0, 64),
                                " is not supported (Goal, Observation, List, Patient, Provenance, AuditEvent, "
                                "CodeSystem are)"));
}

}  // namespace

bool IsPublicPath(absl::string_view path) {
  if (!absl::ConsumePrefix(&path, "/fhir/")) return false;
  const std::vector<std::string> segments = absl::StrSplit(path, '/', absl::SkipEmpty());
  bool any = false;
  RouteArgs ignored;
  for (const Interaction& row : Interactions()) {
    if (!Matches(row.path, segments, &ignored)) continue;
    if (row.access.patient != PatientFrom::kPublic) return false;
    any = true;
  }
  return any;
}

void FhirService::Route(const CallPtr& c, absl::string_view path) {
  if (path != "/fhir" && !absl::StartsWith(path, "/fhir/")) {
    return ReplyError(*c, MakeRestError(http::Status::not_found, "not-found",
                                        "no such endpoint: the FHIR base is /fhir (try /fhir/metadata)"));
  }
  const std::vector<std::string> segments = absl::StrSplit(path.substr(5), '/', absl::SkipEmpty());
  bool path_known = false;
  for (const Interaction& row : Interactions()) {
    RouteArgs args;
    if (!Matches(row.path, segments, &args)) continue;
    path_known = true;
    if (row.method != c->request.method()) continue;
    if (row.handler == nullptr) {  // a registered refusal
      c->interaction = row.name;
      const std::string allow = AllowedMethods(segments);
      return ReplyError(*c, MakeRestError(http::Status::method_not_allowed, "not-supported", row.refusal),
                        {{bhttp::field::allow, allow}});
    }
    return Dispatch(c, row, args);
  }
  if (!path_known) return ReplyError(*c, NotRegistered(segments));
  const std::string allow = AllowedMethods(segments);
  ReplyError(*c,
             MakeRestError(http::Status::method_not_allowed, "not-supported",
                           absl::StrCat(std::string(c->request.method_string()),
                                        " is not supported here (allowed: ", allow, ")")),
             {{bhttp::field::allow, allow}});
}

void FhirService::Dispatch(const CallPtr& c, const Interaction& row, const RouteArgs& args) {
  c->interaction = row.name;
  c->access = &row.access;
  c->access_type = *row.access.type != '\0' ? row.access.type : args.type;
  switch (row.access.patient) {
    case PatientFrom::kPublic:
    case PatientFrom::kHandler:
      break;
    case PatientFrom::kAllPatients:
      // Spans every patient: only user/ and system/ scopes reach it.
      if (!Authorize(*c, c->access_type, row.access.permission, "")) return;
      c->patient_authorized = true;
      break;
    case PatientFrom::kStored:
    case PatientFrom::kBody:
    case PatientFrom::kQuery:
    case PatientFrom::kPath:
      // Before anything is parsed or loaded; the patient once it is known
      // (AuthorizePatient).
      if (!AuthorizeType(*c, c->access_type, row.access.permission)) return;
      break;
  }
  row.handler(*this, c, args);
}

bool FhirService::AuthorizePatient(Call& c, absl::string_view patient, absl::string_view id, const RestError* unknown) {
  AuditTarget(c, patient, id);
  const bool hide = c.access != nullptr && c.access->other_patient == OtherPatient::kUnknown;
  const auth::Permission p = c.access != nullptr ? c.access->permission : auth::kRead;
  if (!Authorize(c, c.access_type, p, patient, hide ? unknown : nullptr)) return false;
  c.patient_authorized = true;
  return true;
}

bool FhirService::SearchParamsOf(Call& c, std::vector<QueryParam>* out) {
  *out = c.query;
  if (c.request.method() != bhttp::verb::post) return true;
  if (!IsFormMediaType(c.Header(bhttp::field::content_type))) {
    ReplyError(c, MakeRestError(http::Status::unsupported_media_type, "not-supported",
                                "POST _search takes application/x-www-form-urlencoded"));
    return false;
  }
  auto body = ParseQueryString(c.request.body());
  if (!body.ok()) {
    ReplyError(c, Bad("invalid", std::string(body.status().message())));
    return false;
  }
  out->insert(out->end(), body->begin(), body->end());
  return true;
}

}  // namespace wmty::fhir::face
