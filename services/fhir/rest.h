// HTTP-level helpers of the FHIR face: the one mapping from a domain status
// to an HTTP status + OperationOutcome, content negotiation, and the request
// headers FHIR gives meaning to (If-Match, Prefer, X-Provenance).
//
// Thread safety: pure functions.
#ifndef WMTY_FHIR_REST_H_
#define WMTY_FHIR_REST_H_

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include <rapidjson/document.h>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "domain/etag.h"
#include "http/http_server.h"
#include "wmty/storage/record.pb.h"
#include "wmty/v1/resources.pb.h"

namespace wmty::fhir {

// One OperationOutcome.issue. `code` is from the FHIR IssueType value set
// (invalid, structure, required, value, not-found, deleted, conflict,
// not-supported, too-costly, too-long, timeout, transient, exception, ...).
struct Issue {
  std::string severity = "error";
  std::string code;
  std::string diagnostics;
  // FHIRPath of the offending element, when there is one.
  std::string expression;
};

// A refused request: the HTTP status and the issues its OperationOutcome carries.
struct RestError {
  http::Status status = http::Status::internal_server_error;
  std::vector<Issue> issues;
  // > 0: the answer carries Retry-After with this many seconds (503s).
  int retry_after_seconds = 0;
  // The status this answer stands for: FromStatus keeps the domain's code
  // (several codes share one HTTP status, e.g. 503), MakeRestError derives it
  // from the HTTP status (StatusCodeOfHttp). The audit trail scores it with
  // domain::AuditOutcomeOf, as the gRPC face does.
  absl::StatusCode code = absl::StatusCode::kInternal;
};

// The status code an HTTP status stands for when no domain status produced
// it (the FHIR face's own refusals): 2xx/3xx OK, 400 and other 4xx
// INVALID_ARGUMENT, 401 UNAUTHENTICATED, 403 PERMISSION_DENIED, 404 and 410
// NOT_FOUND, 405/406/415/501 UNIMPLEMENTED, 409 ALREADY_EXISTS, 412 ABORTED,
// 413/431 OUT_OF_RANGE, 429 RESOURCE_EXHAUSTED, 503 UNAVAILABLE, 504
// DEADLINE_EXCEEDED, other 5xx INTERNAL.
absl::StatusCode StatusCodeOfHttp(http::Status status);

RestError MakeRestError(http::Status status, std::string code, std::string diagnostics, std::string expression = "");

// Retry-After (seconds) of an overload refusal (RESOURCE_EXHAUSTED). Short:
// queues drain in milliseconds once a burst passes.
inline constexpr int kOverloadRetryAfterSeconds = 1;
// Retry-After (seconds) of the other 503s (UNAVAILABLE, e.g. the disk is full
// and the store retries its recovery with a backoff of up to 5 s; and
// DEADLINE_EXCEEDED).
inline constexpr int kUnavailableRetryAfterSeconds = 5;

// The one mapping from a domain status to HTTP + OperationOutcome:
//   INVALID_ARGUMENT 400 (one issue per field violation: code "required" when
//     the violation says required, else "value"; expression = FhirPathFor(kind,
//     field), or the field itself when `fields_are_fhir_paths`)
//   NOT_FOUND 404 not-found; ABORTED 412 conflict (stale etag);
//   ALREADY_EXISTS 409 conflict (X-Request-Id reused for another request);
//   FAILED_PRECONDITION 409 deleted (the resource was retracted: it cannot
//     change); DEADLINE_EXCEEDED 503 timeout and UNAVAILABLE 503 transient
//     (e.g. disk full), both with Retry-After;
//   RESOURCE_EXHAUSTED 503 throttled with Retry-After (the server is
//     overloaded, e.g. its commit queue is full; nothing was written);
//   UNIMPLEMENTED 501 not-supported; PERMISSION_DENIED 403 forbidden (e.g. a
//   token naming no recorder writes); anything else 500 exception.
RestError FromStatus(const absl::Status& status, storage::Kind kind, bool fields_are_fhir_paths = false);

// The OperationOutcome resource for `issues` (into `out`, an object).
void BuildOperationOutcome(const std::vector<Issue>& issues, rapidjson::Value* out,
                           rapidjson::Document::AllocatorType& alloc);

// Which JSON media type to answer with, from the _format parameter (which
// wins) or else the Accept header. Both FHIR JSON flavours are accepted:
// "json", "application/json", "application/fhir+json", "application/json+fhir"
// (with any parameters), and wildcards. XML, Turtle or HTML, or an Accept
// naming nothing we produce, is 406 (FHIR http.html: "406 Not Acceptable is
// the appropriate response when the Accept header requests a format that the
// server does not support").
struct Negotiated {
  bool acceptable = true;
  // "application/fhir+json; charset=utf-8" or "application/json; charset=utf-8".
  std::string content_type;
  // Why not acceptable (safe to show).
  std::string reason;
};
Negotiated NegotiateResponseType(absl::string_view accept_header, std::optional<absl::string_view> format_param);

// True for a request body media type we read: application/fhir+json,
// application/json or application/json+fhir, with no charset or utf-8.
bool IsJsonMediaType(absl::string_view content_type);
// True for application/x-www-form-urlencoded (POST _search).
bool IsFormMediaType(absl::string_view content_type);

// ETag and If-Match / If-None-Match values: the domain's one etag format and
// parse (W/"3"; the parse also takes "3" and W/3).
using domain::EtagOf;
using domain::ParseEtagVersion;

// The Prefer header (RFC 7240) parts FHIR uses.
struct Prefer {
  enum class Return { kDefault, kMinimal, kRepresentation, kOperationOutcome };
  Return return_pref = Return::kDefault;
  // handling=strict: unknown or unsupported search parameters are errors;
  // lenient (the default) ignores them.
  bool strict = false;
};
Prefer ParsePrefer(absl::string_view header);

// RFC 7231 HTTP-date (for Last-Modified), and FHIR instant (UTC, microseconds).
std::string HttpDate(int64_t unix_micros);
std::string FhirInstant(int64_t unix_micros);

// What a write's X-Provenance header says (FHIR http.html "Provenance": a
// Provenance resource as JSON).
struct XProvenance {
  // The agent of type "author" (or, without types, the first agent), whose
  // who.reference is "Practitioner/<id>" (relative or absolute); who.display
  // becomes the display name and the agent's role (text, or first coding's
  // display or code) the role. nullopt when the Provenance has no agent.
  std::optional<v1::Recorder> author;
  // reason[0].text: why a DELETE retracts the resource. Codings are ignored.
  std::string reason;
};
// INVALID_ARGUMENT (safe to show) if the header is not such a Provenance, or
// has neither an author agent nor a reason text.
absl::StatusOr<XProvenance> ParseXProvenance(absl::string_view header);

// With authentication disabled (development only), writes without an
// X-Provenance author are recorded as by this practitioner id.
inline constexpr absl::string_view kUnattributedPractitioner = "unattributed";

// Checks a parsed request body: nesting at most `max_depth` deep, no object
// with the same member twice, and every string and member name valid UTF-8
// (escapes decoded). INVALID_ARGUMENT (safe to show) otherwise.
// Iterative: safe on any input rapidjson accepted.
absl::Status CheckJsonShape(const rapidjson::Value& value, int max_depth);

}  // namespace wmty::fhir

#endif  // WMTY_FHIR_REST_H_
