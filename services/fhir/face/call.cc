// The answers of the FHIR face: Reply (once per call, recording the audit
// record on the way out), errors as OperationOutcome, resources rendered
// from the cache, and the error helpers every interaction shares.

#include "fhir/face/call.h"

#include <rapidjson/prettywriter.h>
#include <rapidjson/stringbuffer.h>
#include <rapidjson/writer.h>

#include "absl/strings/str_cat.h"
#include "common/log.h"
#include "fhir/face/access.h"
#include "fhir/face/resource_types.h"
#include "fhir/mapping.h"

namespace wmty::fhir::face {

std::string Serialize(const Value& v, bool pretty) {
  rapidjson::StringBuffer buffer;
  if (pretty) {
    rapidjson::PrettyWriter<rapidjson::StringBuffer> writer(buffer);
    writer.SetIndent(' ', 2);
    v.Accept(writer);
  } else {
    rapidjson::Writer<rapidjson::StringBuffer> writer(buffer);
    v.Accept(writer);
  }
  return std::string(buffer.GetString(), buffer.GetSize());
}

// Answers once; later calls are ignored.
void Reply(Call& c, http::Status status, std::optional<std::string> body, const Headers& headers) {
  if (c.responded.exchange(true)) return;
  RecordAudit(c, status);
  http::Response res{status, c.version};
  res.set(bhttp::field::server, "wmty");
  // A response to HEAD has no body (HEAD itself is answered 405).
  if (body.has_value() && c.request.method() != bhttp::verb::head) {
    res.set(bhttp::field::content_type, c.content_type);
    res.body() = std::move(*body);
  }
  for (const auto& [field, value] : headers) res.set(field, value);
  c.respond(std::move(res));
}

void ReplyError(Call& c, const RestError& e, const Headers& headers) {
  if (static_cast<int>(e.status) >= 500) {
    // Codes and the interaction only: never ids, query values or bodies.
    log::Warning("fhir request failed", {{"interaction", c.interaction},
                                         {"status", std::to_string(static_cast<int>(e.status))},
                                         {"issue", e.issues.empty() ? "" : e.issues.front().code}});
  }
  Document d;
  BuildOperationOutcome(e.issues, &d, d.GetAllocator());
  if (e.retry_after_seconds > 0) {
    Headers with_retry = headers;
    with_retry.emplace_back(bhttp::field::retry_after, std::to_string(e.retry_after_seconds));
    return Reply(c, e.status, Serialize(d, c.pretty), with_retry);
  }
  Reply(c, e.status, Serialize(d, c.pretty), headers);
}

void ReplyJson(Call& c, http::Status status, const Value& v, const Headers& headers) {
  Reply(c, status, Serialize(v, c.pretty), headers);
}

RestError Bad(std::string code, std::string diagnostics, std::string expression) {
  return MakeRestError(http::Status::bad_request, std::move(code), std::move(diagnostics), std::move(expression));
}

RestError ParamError(const absl::Status& s) {
  return Bad(s.code() == absl::StatusCode::kUnimplemented ? "not-supported" : "invalid", std::string(s.message()));
}

RestError BadPageToken() {
  return Bad("invalid", "_page_token is not valid here (altered, or from another query)", "_page_token");
}

RestError UnknownId(absl::string_view type, absl::string_view id) {
  return MakeRestError(http::Status::not_found, "not-found",
                       absl::StrCat(type, "/", id.substr(0, 64), " is not known"));
}

// Version and time headers of a stored version.
Headers VersionHeaders(Call& c, absl::string_view type, const Record& r) {
  return {{bhttp::field::etag, EtagOf(r.version())},
          {bhttp::field::last_modified, HttpDate(r.update_time_micros())},
          {bhttp::field::content_location, absl::StrCat(c.base, "/", type, "/", FhirId(r), "/_history/", r.version())}};
}

// The compact FHIR JSON of a stored version, from the cache or rendered now.
absl::StatusOr<std::shared_ptr<const std::string>> Rendered(RenderCache& cache, const Record& record) {
  if (auto hit = cache.Get(record); hit != nullptr) return hit;
  Document d;
  d.SetObject();
  if (auto s = ToFhir(record, &d, d.GetAllocator()); !s.ok()) return s;
  auto json = std::make_shared<const std::string>(Serialize(d, /*pretty=*/false));
  cache.Put(record, json);
  return json;
}

void ReplyRecord(Call& c, RenderCache& cache, http::Status status, absl::string_view type, const Record& record,
                 const Headers& headers) {
  if (!c.pretty) {
    auto json = Rendered(cache, record);
    if (!json.ok()) return ReplyError(c, FromStatus(json.status(), record.kind()));
    return Reply(c, status, **json, headers);
  }
  Document d;
  d.SetObject();
  if (auto s = ToFhir(record, &d, d.GetAllocator()); !s.ok()) return ReplyError(c, FromStatus(s, record.kind()));
  ReplyJson(c, status, d, headers);
}

}  // namespace wmty::fhir::face
