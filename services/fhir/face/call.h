// One FHIR request (Call) and how it is answered: Reply (exactly once; the
// audit record is appended on the way out), errors as OperationOutcome,
// resources rendered from the render cache, and the error helpers every
// interaction shares. Internal to the FHIR face (services/fhir/face/).
//
// Thread safety: a Call belongs to one request; it is shared (CallPtr) with
// the write callbacks that answer it, and `responded` makes the first answer
// the only one.
#ifndef WMTY_FHIR_FACE_CALL_H_
#define WMTY_FHIR_FACE_CALL_H_

#include <atomic>
#include <memory>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include <rapidjson/document.h>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "auth/token_verifier.h"
#include "domain/patient_records.h"
#include "fhir/mapping_json.h"
#include "fhir/render_cache.h"
#include "fhir/rest.h"
#include "fhir/search.h"
#include "http/http_server.h"

namespace wmty::fhir::face {

namespace bhttp = boost::beast::http;
using domain::CallContext;
using domain::PatientRecords;
using json::Str;
using rapidjson::Document;
using rapidjson::Value;
using storage::Kind;
using storage::Record;
using Alloc = Document::AllocatorType;
using Headers = std::vector<std::pair<bhttp::field, std::string>>;

struct Access;  // interactions.h

struct Call {
  http::Request request;
  http::Respond respond;
  unsigned version = 11;
  std::string base;
  std::string content_type;
  bool pretty = false;
  Prefer prefer;
  std::vector<QueryParam> query;
  CallContext ctx;
  // For logs: which interaction (never ids or values).
  std::string interaction = "unknown";
  // The verified caller; unset when authentication is disabled.
  std::optional<auth::Principal> principal;
  // The audit record of this request (unset for the public endpoints),
  // appended to `audit_sink` when the request is answered (see Reply).
  std::optional<storage::AuditRecord> audit;
  PatientRecords* audit_sink = nullptr;
  // Elements R4 does not define that a create or update dropped
  // (--fhir_unknown_elements=drop): answered as warnings (Incoming's
  // dropped_count and dropped_elements).
  size_t dropped_count = 0;
  std::vector<std::string> dropped_elements;
  std::atomic<bool> responded{false};
  // The registered interaction's access (null until routed, and for
  // unregistered paths), the type its permission is on, and whether the
  // patient it concerns has been authorized (see Reply).
  const Access* access = nullptr;
  std::string access_type;
  bool patient_authorized = false;

  absl::string_view Header(bhttp::field f) const {
    auto it = request.find(f);
    return it == request.end() ? absl::string_view() : absl::string_view(it->value().data(), it->value().size());
  }
  absl::string_view Header(absl::string_view name) const {
    auto it = request.find(boost::beast::string_view(name.data(), name.size()));
    return it == request.end() ? absl::string_view() : absl::string_view(it->value().data(), it->value().size());
  }
  bool HasHeader(absl::string_view name) const {
    return request.find(boost::beast::string_view(name.data(), name.size())) != request.end();
  }
};
using CallPtr = std::shared_ptr<Call>;

// JSON text of `v` (indented when `pretty`, for _pretty=true).
std::string Serialize(const Value& v, bool pretty);

// Answers once (later calls are ignored) and appends the call's audit record
// with the status as its outcome. `body` nullopt: no body.
void Reply(Call& c, http::Status status, std::optional<std::string> body, const Headers& headers = {});
// Reply, audited as `code` (the status the answer stands for: RestError::code).
void ReplyAs(Call& c, absl::StatusCode code, http::Status status, std::optional<std::string> body,
             const Headers& headers);
// `e` as an OperationOutcome (5xx logged by code only, never by content).
void ReplyError(Call& c, const RestError& e, const Headers& headers = {});
void ReplyJson(Call& c, http::Status status, const Value& v, const Headers& headers = {});
// A stored version as the body, from `cache` (rendered now on a miss).
void ReplyRecord(Call& c, RenderCache& cache, http::Status status, absl::string_view type, const Record& record,
                 const Headers& headers);
// The compact FHIR JSON of a stored version, from the cache or rendered now.
absl::StatusOr<std::shared_ptr<const std::string>> Rendered(RenderCache& cache, const Record& record);

// 400 with issue `code`.
RestError Bad(std::string code, std::string diagnostics, std::string expression = "");
// A search or history parameter error: 400 not-supported or invalid.
RestError ParamError(const absl::Status& s);
RestError BadPageToken();
// 404: "<type>/<id> is not known".
RestError UnknownId(absl::string_view type, absl::string_view id);
// ETag, Last-Modified and Content-Location of a stored version.
Headers VersionHeaders(Call& c, absl::string_view type, const Record& r);

}  // namespace wmty::fhir::face

#endif  // WMTY_FHIR_FACE_CALL_H_
