// Routing of the FHIR face: request path and method to interaction.

#include <string>
#include <vector>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "fhir/face/resource_types.h"
#include "fhir/face/service.h"

namespace wmty::fhir::face {

void FhirService::Route(const CallPtr& c, absl::string_view path) {
  if (path != "/fhir" && !absl::StartsWith(path, "/fhir/")) {
    return ReplyError(*c, MakeRestError(http::Status::not_found, "not-found",
                                        "no such endpoint: the FHIR base is /fhir (try /fhir/metadata)"));
  }
  std::vector<std::string> seg = absl::StrSplit(path.substr(5), '/', absl::SkipEmpty());
  const bhttp::verb method = c->request.method();
  const bool get = method == bhttp::verb::get;
  auto not_allowed = [&](absl::string_view allow) {
    ReplyError(*c,
               MakeRestError(http::Status::method_not_allowed, "not-supported",
                             absl::StrCat(std::string(c->request.method_string()),
                                          " is not supported here (allowed: ", allow, ")")),
               {{bhttp::field::allow, std::string(allow)}});
  };
  if (seg.empty()) {
    c->interaction = "system";
    return ReplyError(*c, Bad("not-supported",
                              "whole-system interactions (batch, transaction, system search, system history) are "
                              "not supported; see [base]/metadata"));
  }
  const std::string& type = seg[0];
  if (type == "metadata" && seg.size() == 1) {
    c->interaction = "capabilities";
    return get ? Metadata(c) : not_allowed("GET");
  }
  if (type == "_history" || absl::StartsWith(type, "$")) {
    c->interaction = "system";
    return ReplyError(*c, Bad("not-supported", "system-level history and operations are not supported"));
  }
  if (type == "CodeSystem") {
    if (seg.size() == 1 && get) {  // by canonical URL: CodeSystem?url=...
      c->interaction = "search";
      return SearchCodeSystem(c);
    }
    c->interaction = "read";
    if (seg.size() != 2) return not_allowed("GET [base]/CodeSystem/wmty");
    return get ? ReadCodeSystem(c, seg[1]) : not_allowed("GET");
  }
  if (type == "Patient") {
    if (seg.size() == 3 && seg[2] == "$everything") {
      c->interaction = "everything";
      return get ? Everything(c, seg[1]) : not_allowed("GET");
    }
    // The id is the EHR's: a Patient is created by PUT, and corrected, never deleted.
    if (seg.size() == 1 && method == bhttp::verb::post) {
      c->interaction = "create";
      return ReplyError(*c,
                        MakeRestError(http::Status::method_not_allowed, "not-supported",
                                      "a Patient's id is the EHR's patient id: send PUT [base]/Patient/<that id>"),
                        {{bhttp::field::allow, "GET"}});
    }
    if (seg.size() == 2 && method == bhttp::verb::delete_) {
      c->interaction = "delete";
      return ReplyError(*c,
                        MakeRestError(http::Status::method_not_allowed, "not-supported",
                                      "Patient records come from the hospital's systems and are not deleted here: "
                                      "PUT a corrected version"),
                        {{bhttp::field::allow, "GET, PUT"}});
    }
  }
  if (type == "Provenance") {
    if (seg.size() == 1 || (seg.size() == 2 && seg[1] == "_search")) {
      c->interaction = "search";
      if (!get && !(method == bhttp::verb::post && seg.size() == 2)) return not_allowed("GET, POST _search");
      std::vector<QueryParam> params = c->query;
      if (method == bhttp::verb::post) {
        if (!IsFormMediaType(c->Header(bhttp::field::content_type))) {
          return ReplyError(*c, MakeRestError(http::Status::unsupported_media_type, "not-supported",
                                              "POST _search takes application/x-www-form-urlencoded"));
        }
        auto body = ParseQueryString(c->request.body());
        if (!body.ok()) return ReplyError(*c, Bad("invalid", std::string(body.status().message())));
        params.insert(params.end(), body->begin(), body->end());
      }
      auto spec = ParseSearch("Provenance", params, c->prefer.strict);
      if (!spec.ok()) {
        return ReplyError(*c,
                          Bad(spec.status().code() == absl::StatusCode::kUnimplemented ? "not-supported" : "invalid",
                              std::string(spec.status().message())));
      }
      return SearchProvenance(c, *spec);
    }
    if (seg.size() == 2) {
      c->interaction = "read";
      return get ? ReadProvenance(c, seg[1]) : not_allowed("GET");
    }
    return not_allowed("GET [base]/Provenance/[id], GET [base]/Provenance?target=");
  }
  if (type == "AuditEvent") {
    // Read-only: the audit trail cannot be changed through any API.
    if (seg.size() == 1 || (seg.size() == 2 && seg[1] == "_search")) {
      c->interaction = "search";
      if (!get) return not_allowed("GET");
      return SearchAuditEvent(c);
    }
    if (seg.size() == 2) {
      c->interaction = "read";
      return get ? ReadAuditEvent(c, seg[1]) : not_allowed("GET");
    }
    c->interaction = "unknown";
    return not_allowed("GET [base]/AuditEvent/[id], GET [base]/AuditEvent?patient=");
  }
  if (!IsStoredType(type)) {
    c->interaction = "unknown-type";
    return ReplyError(*c, MakeRestError(http::Status::not_found, "not-supported",
                                        absl::StrCat("resource type ", type.substr(0, 64),
                                                     " is not supported (Goal, Observation, List, Patient, "
                                                     "Provenance, CodeSystem are)")));
  }
  const bool is_list = type == "List";
  if (seg.size() == 1) {
    if (get) {
      c->interaction = "search";
      return Search(c, type, c->query);
    }
    if (method == bhttp::verb::post) {
      c->interaction = "create";
      return Create(c, type);
    }
    return not_allowed("GET, POST");
  }
  if (seg.size() == 2 && seg[1] == "_search") {
    c->interaction = "search";
    if (!get && method != bhttp::verb::post) return not_allowed("GET, POST");
    std::vector<QueryParam> params = c->query;
    if (method == bhttp::verb::post) {
      if (!IsFormMediaType(c->Header(bhttp::field::content_type))) {
        return ReplyError(*c, MakeRestError(http::Status::unsupported_media_type, "not-supported",
                                            "POST _search takes application/x-www-form-urlencoded"));
      }
      auto body = ParseQueryString(c->request.body());
      if (!body.ok()) return ReplyError(*c, Bad("invalid", std::string(body.status().message())));
      params.insert(params.end(), body->begin(), body->end());
    }
    return Search(c, type, params);
  }
  if (seg.size() == 2 && seg[1] == "_history") {
    c->interaction = "history-type";
    return get ? TypeHistory(c, type) : not_allowed("GET");
  }
  if (seg.size() == 2) {
    switch (method) {
      case bhttp::verb::get:
        c->interaction = "read";
        return Read(c, type, seg[1]);
      case bhttp::verb::put:
        c->interaction = "update";
        return type == "Patient" ? UpdatePatient(c, seg[1]) : Update(c, type, seg[1]);
      case bhttp::verb::delete_:
        c->interaction = "delete";
        if (is_list) {
          return ReplyError(*c,
                            MakeRestError(http::Status::method_not_allowed, "not-supported",
                                          "a patient's priorities List cannot be deleted: PUT it with no entries to "
                                          "clear it"),
                            {{bhttp::field::allow, "GET, PUT"}});
        }
        return Delete(c, type, seg[1]);
      default:
        return not_allowed(is_list ? "GET, PUT" : "GET, PUT, DELETE");
    }
  }
  if (seg.size() == 3 && seg[2] == "_history") {
    c->interaction = "history-instance";
    return get ? InstanceHistory(c, type, seg[1]) : not_allowed("GET");
  }
  if (seg.size() == 4 && seg[2] == "_history") {
    c->interaction = "vread";
    return get ? VRead(c, type, seg[1], seg[3]) : not_allowed("GET");
  }
  c->interaction = "unknown";
  return ReplyError(*c, Bad("not-supported", "no such interaction (operations and compartments are not supported)"));
}

}  // namespace wmty::fhir::face
