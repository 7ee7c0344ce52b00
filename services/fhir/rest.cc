#include "fhir/rest.h"

#include <algorithm>
#include <utility>

#include "absl/container/flat_hash_set.h"
#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "absl/strings/strip.h"
#include "absl/time/time.h"
#include "common/status.h"
#include "common/text.h"
#include "domain/names.h"
#include "fhir/mapping.h"

namespace wmty::fhir {
namespace {

using Alloc = rapidjson::Document::AllocatorType;

rapidjson::Value Str(absl::string_view s, Alloc& a) {
  return rapidjson::Value(s.data(), static_cast<rapidjson::SizeType>(s.size()), a);
}

// "application/fhir+json; charset=utf-8" -> ("application/fhir+json", params).
std::pair<std::string, std::vector<std::pair<std::string, std::string>>> SplitMediaType(absl::string_view value) {
  std::vector<absl::string_view> parts = absl::StrSplit(value, ';');
  if (parts.empty()) return {};  // a null string_view splits into nothing
  std::string type = absl::AsciiStrToLower(absl::StripAsciiWhitespace(parts[0]));
  std::vector<std::pair<std::string, std::string>> params;
  for (size_t i = 1; i < parts.size(); ++i) {
    absl::string_view p = absl::StripAsciiWhitespace(parts[i]);
    const size_t eq = p.find('=');
    if (eq == absl::string_view::npos) continue;
    std::string name = absl::AsciiStrToLower(absl::StripAsciiWhitespace(p.substr(0, eq)));
    absl::string_view v = absl::StripAsciiWhitespace(p.substr(eq + 1));
    if (v.size() >= 2 && v.front() == '"' && v.back() == '"') v = v.substr(1, v.size() - 2);
    params.emplace_back(std::move(name), std::string(v));
  }
  return {type, params};
}

bool IsFhirJsonType(absl::string_view t) { return t == "application/fhir+json" || t == "application/json+fhir"; }
bool IsPlainJsonType(absl::string_view t) { return t == "application/json" || t == "text/json"; }

constexpr absl::string_view kFhirJson = "application/fhir+json; charset=utf-8";
constexpr absl::string_view kPlainJson = "application/json; charset=utf-8";

}  // namespace

absl::StatusCode StatusCodeOfHttp(http::Status status) {
  const int code = static_cast<int>(status);
  if (code < 400) return absl::StatusCode::kOk;
  switch (status) {
    case http::Status::unauthorized:
      return absl::StatusCode::kUnauthenticated;
    case http::Status::forbidden:
      return absl::StatusCode::kPermissionDenied;
    case http::Status::not_found:
    case http::Status::gone:
      return absl::StatusCode::kNotFound;
    case http::Status::method_not_allowed:
    case http::Status::not_acceptable:
    case http::Status::unsupported_media_type:
    case http::Status::not_implemented:
      return absl::StatusCode::kUnimplemented;
    case http::Status::conflict:
      return absl::StatusCode::kAlreadyExists;
    case http::Status::precondition_failed:
      return absl::StatusCode::kAborted;
    case http::Status::payload_too_large:
    case http::Status::request_header_fields_too_large:
      return absl::StatusCode::kOutOfRange;
    case http::Status::too_many_requests:
      return absl::StatusCode::kResourceExhausted;
    case http::Status::service_unavailable:
      return absl::StatusCode::kUnavailable;
    case http::Status::gateway_timeout:
      return absl::StatusCode::kDeadlineExceeded;
    default:
      return code < 500 ? absl::StatusCode::kInvalidArgument : absl::StatusCode::kInternal;
  }
}

RestError MakeRestError(http::Status status, std::string code, std::string diagnostics, std::string expression) {
  RestError e;
  e.status = status;
  e.code = StatusCodeOfHttp(status);
  Issue issue;
  issue.code = std::move(code);
  issue.diagnostics = std::move(diagnostics);
  issue.expression = std::move(expression);
  e.issues.push_back(std::move(issue));
  return e;
}

namespace {

// FromStatus without the code (see there).
RestError RestErrorOf(const absl::Status& status, storage::Kind kind, bool fields_are_fhir_paths) {
  const std::string message(status.message());
  switch (status.code()) {
    case absl::StatusCode::kInvalidArgument: {
      RestError e;
      e.status = http::Status::bad_request;
      const google::rpc::BadRequest bad = GetFieldViolations(status);  // kept alive for the loop
      for (const auto& v : bad.field_violations()) {
        Issue issue;
        issue.code = absl::StartsWith(v.description(), "required")        ? "required"
                     : absl::StartsWith(v.description(), kUnknownElement) ? "structure"
                                                                          : "value";
        issue.expression = fields_are_fhir_paths ? v.field() : FhirPathFor(kind, v.field());
        issue.diagnostics = absl::StrCat(issue.expression, ": ", v.description());
        e.issues.push_back(std::move(issue));
      }
      if (e.issues.empty()) {
        Issue issue;
        issue.code = "invalid";
        issue.diagnostics = message;
        e.issues.push_back(std::move(issue));
      }
      return e;
    }
    case absl::StatusCode::kNotFound:
      return MakeRestError(http::Status::not_found, "not-found", message);
    case absl::StatusCode::kAborted:
      return MakeRestError(http::Status::precondition_failed, "conflict", message);
    case absl::StatusCode::kAlreadyExists:
      return MakeRestError(http::Status::conflict, "conflict", message);
    case absl::StatusCode::kFailedPrecondition:
      // In the domain this always means: the resource was retracted (entered
      // in error, FHIR "deleted") and cannot change any more.
      return MakeRestError(http::Status::conflict, "deleted", message);
    case absl::StatusCode::kDeadlineExceeded: {
      RestError e = MakeRestError(http::Status::service_unavailable, "timeout",
                                  "the request did not finish within its deadline; nothing was written unless a "
                                  "retry with the same X-Request-Id says otherwise");
      e.retry_after_seconds = kUnavailableRetryAfterSeconds;
      return e;
    }
    case absl::StatusCode::kUnavailable: {
      // E.g. the disk is full: the store refuses writes until it recovers.
      RestError e = MakeRestError(http::Status::service_unavailable, "transient",
                                  "the service cannot write right now; retry after the Retry-After delay with the "
                                  "same X-Request-Id");
      e.retry_after_seconds = kUnavailableRetryAfterSeconds;
      return e;
    }
    case absl::StatusCode::kResourceExhausted: {
      // Load shedding, not a per-client quota: 503 (with Retry-After) rather
      // than 429, which would blame this client.
      RestError e = MakeRestError(http::Status::service_unavailable, "throttled",
                                  "the server is overloaded and refused the request before doing anything; retry "
                                  "after the Retry-After delay");
      e.retry_after_seconds = kOverloadRetryAfterSeconds;
      return e;
    }
    case absl::StatusCode::kUnimplemented:
      return MakeRestError(http::Status::not_implemented, "not-supported", message);
    case absl::StatusCode::kPermissionDenied:
      // The domain's refusals of the caller (e.g. a token that names no
      // recorder may not write); the message is safe to show.
      return MakeRestError(http::Status::forbidden, "forbidden", message);
    default:
      // Messages of the remaining codes come from storage or the mapping and
      // are not shown (nor logged by the caller beyond the code).
      return MakeRestError(http::Status::internal_server_error, "exception",
                           absl::StrCat("internal error (", absl::StatusCodeToString(status.code()), ")"));
  }
}

}  // namespace

RestError FromStatus(const absl::Status& status, storage::Kind kind, bool fields_are_fhir_paths) {
  RestError e = RestErrorOf(status, kind, fields_are_fhir_paths);
  if (!status.ok()) e.code = status.code();
  return e;
}

void BuildOperationOutcome(const std::vector<Issue>& issues, rapidjson::Value* out, Alloc& alloc) {
  out->SetObject();
  out->AddMember("resourceType", "OperationOutcome", alloc);
  rapidjson::Value list(rapidjson::kArrayType);
  for (const Issue& issue : issues) {
    rapidjson::Value i(rapidjson::kObjectType);
    i.AddMember("severity", Str(issue.severity, alloc), alloc);
    i.AddMember("code", Str(issue.code.empty() ? "exception" : issue.code, alloc), alloc);
    if (!issue.diagnostics.empty()) i.AddMember("diagnostics", Str(issue.diagnostics, alloc), alloc);
    if (!issue.expression.empty()) {
      rapidjson::Value expr(rapidjson::kArrayType);
      expr.PushBack(Str(issue.expression, alloc), alloc);
      i.AddMember("expression", expr, alloc);
    }
    list.PushBack(i, alloc);
  }
  if (list.Empty()) {
    rapidjson::Value i(rapidjson::kObjectType);
    i.AddMember("severity", "error", alloc);
    i.AddMember("code", "exception", alloc);
    list.PushBack(i, alloc);
  }
  out->AddMember("issue", list, alloc);
}

Negotiated NegotiateResponseType(absl::string_view accept_header, std::optional<absl::string_view> format_param) {
  Negotiated n;
  n.content_type = std::string(kFhirJson);
  if (format_param.has_value()) {
    const std::string f = SplitMediaType(*format_param).first;
    if (f == "json" || IsFhirJsonType(f)) return n;
    if (f == "application/json" || f == "text/json") {
      n.content_type = std::string(kPlainJson);
      return n;
    }
    n.acceptable = false;
    n.reason = absl::StrCat("_format ", f, " is not supported: this server speaks JSON only (_format=json)");
    return n;
  }
  accept_header = absl::StripAsciiWhitespace(accept_header);
  if (accept_header.empty()) return n;
  // Pick the best acceptable JSON flavour by q-value; ties prefer FHIR JSON.
  double best_q = -1;
  bool best_plain = false;
  for (absl::string_view range : absl::StrSplit(accept_header, ',')) {
    auto [type, params] = SplitMediaType(range);
    if (type.empty()) continue;
    double q = 1.0;
    for (const auto& [k, v] : params) {
      if (k == "q" && !absl::SimpleAtod(v, &q)) q = 0;
    }
    if (q <= 0) continue;
    bool plain = false;
    if (IsFhirJsonType(type) || type == "*/*" || type == "application/*") {
      plain = false;
    } else if (IsPlainJsonType(type)) {
      plain = true;
    } else {
      continue;
    }
    if (q > best_q || (q == best_q && best_plain && !plain)) {
      best_q = q;
      best_plain = plain;
    }
  }
  if (best_q < 0) {
    n.acceptable = false;
    n.reason = "Accept names no format this server produces: it speaks application/fhir+json (or application/json)";
    return n;
  }
  if (best_plain) n.content_type = std::string(kPlainJson);
  return n;
}

bool IsJsonMediaType(absl::string_view content_type) {
  auto [type, params] = SplitMediaType(content_type);
  if (!IsFhirJsonType(type) && type != "application/json") return false;
  for (const auto& [k, v] : params) {
    if (k == "charset" && !absl::EqualsIgnoreCase(v, "utf-8") && !absl::EqualsIgnoreCase(v, "utf8")) return false;
  }
  return true;
}

bool IsFormMediaType(absl::string_view content_type) {
  return SplitMediaType(content_type).first == "application/x-www-form-urlencoded";
}

Prefer ParsePrefer(absl::string_view header) {
  Prefer p;
  for (absl::string_view pref : absl::StrSplit(header, absl::ByAnyChar(",;"))) {
    pref = absl::StripAsciiWhitespace(pref);
    const size_t eq = pref.find('=');
    if (eq == absl::string_view::npos) continue;
    const std::string name = absl::AsciiStrToLower(absl::StripAsciiWhitespace(pref.substr(0, eq)));
    absl::string_view value = absl::StripAsciiWhitespace(pref.substr(eq + 1));
    if (value.size() >= 2 && value.front() == '"' && value.back() == '"') value = value.substr(1, value.size() - 2);
    if (name == "return") {
      if (absl::EqualsIgnoreCase(value, "minimal")) p.return_pref = Prefer::Return::kMinimal;
      if (absl::EqualsIgnoreCase(value, "representation")) p.return_pref = Prefer::Return::kRepresentation;
      if (absl::EqualsIgnoreCase(value, "OperationOutcome")) p.return_pref = Prefer::Return::kOperationOutcome;
    } else if (name == "handling") {
      p.strict = absl::EqualsIgnoreCase(value, "strict");
    }
  }
  return p;
}

std::string HttpDate(int64_t unix_micros) {
  return absl::FormatTime("%a, %d %b %Y %H:%M:%S GMT", absl::FromUnixMicros(unix_micros), absl::UTCTimeZone());
}

std::string FhirInstant(int64_t unix_micros) {
  return absl::FormatTime("%Y-%m-%dT%H:%M:%E6SZ", absl::FromUnixMicros(unix_micros), absl::UTCTimeZone());
}

namespace {

absl::string_view StringMember(const rapidjson::Value& object, const char* name) {
  auto m = object.FindMember(name);
  if (m == object.MemberEnd() || !m->value.IsString()) return {};
  return absl::string_view(m->value.GetString(), m->value.GetStringLength());
}

bool IsAuthorAgent(const rapidjson::Value& agent) {
  auto type = agent.FindMember("type");
  if (type == agent.MemberEnd() || !type->value.IsObject()) return false;
  auto codings = type->value.FindMember("coding");
  if (codings == type->value.MemberEnd() || !codings->value.IsArray()) return false;
  for (const auto& c : codings->value.GetArray()) {
    if (c.IsObject() && StringMember(c, "code") == "author") return true;
  }
  return false;
}

// The agent's role as text: role[0].text, else its first coding's display or code.
std::string RoleOf(const rapidjson::Value& agent) {
  auto roles = agent.FindMember("role");
  if (roles == agent.MemberEnd() || !roles->value.IsArray() || roles->value.Empty() || !roles->value[0].IsObject()) {
    return "";
  }
  const rapidjson::Value& role = roles->value[0];
  if (role.HasMember("text")) return std::string(StringMember(role, "text"));
  auto codings = role.FindMember("coding");
  if (codings == role.MemberEnd() || !codings->value.IsArray() || codings->value.Empty() ||
      !codings->value[0].IsObject()) {
    return "";
  }
  absl::string_view display = StringMember(codings->value[0], "display");
  return std::string(display.empty() ? StringMember(codings->value[0], "code") : display);
}

// The author agent (typed "author", else the first agent) as a recorder.
absl::StatusOr<v1::Recorder> AuthorOf(const rapidjson::Value& agents) {
  const rapidjson::Value* chosen = nullptr;
  for (const auto& agent : agents.GetArray()) {
    if (!agent.IsObject()) return absl::InvalidArgumentError("X-Provenance: agent entries must be objects");
    if (chosen == nullptr && IsAuthorAgent(agent)) chosen = &agent;
  }
  if (chosen == nullptr) chosen = &agents[0];
  auto who = chosen->FindMember("who");
  if (who == chosen->MemberEnd() || !who->value.IsObject()) {
    return absl::InvalidArgumentError("X-Provenance: the author agent needs who.reference = Practitioner/<id>");
  }
  const absl::string_view reference = StringMember(who->value, "reference");
  // Relative or absolute: take the last "Practitioner/<id>" pair.
  const size_t pos = reference.rfind("Practitioner/");
  if (pos == absl::string_view::npos || (pos > 0 && reference[pos - 1] != '/')) {
    return absl::InvalidArgumentError("X-Provenance: the author agent's who.reference must be Practitioner/<id>");
  }
  absl::string_view id = reference.substr(pos + 13);
  if (const size_t slash = id.find('/'); slash != absl::string_view::npos) id = id.substr(0, slash);
  if (!domain::IsValidId(id)) {
    return absl::InvalidArgumentError("X-Provenance: the Practitioner id is not a valid FHIR id");
  }
  v1::Recorder recorder;
  recorder.set_practitioner_id(std::string(id));
  recorder.set_display_name(std::string(StringMember(who->value, "display")));
  recorder.set_role(RoleOf(*chosen));
  return recorder;
}

}  // namespace

absl::StatusOr<XProvenance> ParseXProvenance(absl::string_view header) {
  rapidjson::Document doc;
  doc.Parse<rapidjson::kParseIterativeFlag | rapidjson::kParseValidateEncodingFlag>(header.data(), header.size());
  if (doc.HasParseError() || !doc.IsObject()) {
    return absl::InvalidArgumentError("X-Provenance is not a JSON object (a Provenance resource)");
  }
  if (auto s = CheckJsonShape(doc, 32); !s.ok()) {
    return absl::InvalidArgumentError(absl::StrCat("X-Provenance: ", s.message()));
  }
  if (StringMember(doc, "resourceType") != "Provenance") {
    return absl::InvalidArgumentError("X-Provenance must be a Provenance resource (resourceType \"Provenance\")");
  }
  XProvenance out;
  auto agents = doc.FindMember("agent");
  if (agents != doc.MemberEnd()) {
    if (!agents->value.IsArray() || agents->value.Empty()) {
      return absl::InvalidArgumentError(
          "X-Provenance: agent must be a non-empty array (the author, who = Practitioner/<id>)");
    }
    auto author = AuthorOf(agents->value);
    if (!author.ok()) return author.status();
    out.author = std::move(*author);
  }
  auto reasons = doc.FindMember("reason");
  if (reasons != doc.MemberEnd()) {
    if (!reasons->value.IsArray() || (!reasons->value.Empty() && !reasons->value[0].IsObject())) {
      return absl::InvalidArgumentError("X-Provenance: reason must be an array of CodeableConcepts");
    }
    if (!reasons->value.Empty()) out.reason = std::string(StringMember(reasons->value[0], "text"));
  }
  if (!out.author.has_value() && out.reason.empty()) {
    return absl::InvalidArgumentError(
        "X-Provenance says nothing: it needs an author agent (who = Practitioner/<id>) or, on DELETE, reason[0].text");
  }
  return out;
}

absl::Status CheckJsonShape(const rapidjson::Value& value, int max_depth) {
  struct Frame {
    const rapidjson::Value* v;
    int depth;
  };
  // RapidJSON's encoding check sees only raw bytes: an escaped unpaired
  // surrogate ("\udc00") decodes to bytes that are not UTF-8. Kept verbatim
  // in a record's fhir_extra_json (a proto string) they would make the stored
  // record unparseable (DATA_LOSS on every later read), so refuse them here.
  const auto not_utf8 = [](const rapidjson::Value& s) {
    return !IsValidUtf8(absl::string_view(s.GetString(), s.GetStringLength()));
  };
  const absl::Status bad_string =
      absl::InvalidArgumentError("a JSON string is not valid UTF-8 (an unpaired surrogate escape such as \\udc00?)");
  if (value.IsString() && not_utf8(value)) return bad_string;
  std::vector<Frame> stack = {{&value, 1}};
  while (!stack.empty()) {
    const Frame f = stack.back();
    stack.pop_back();
    if (f.depth > max_depth) {
      return absl::InvalidArgumentError(absl::StrCat("JSON nested deeper than ", max_depth, " levels"));
    }
    if (f.v->IsObject()) {
      absl::flat_hash_set<absl::string_view> names;
      for (const auto& m : f.v->GetObject()) {
        absl::string_view name(m.name.GetString(), m.name.GetStringLength());
        if (not_utf8(m.name) || (m.value.IsString() && not_utf8(m.value))) return bad_string;
        if (!names.insert(name).second) {
          return absl::InvalidArgumentError(
              absl::StrCat("JSON object has the member \"", name.substr(0, 64), "\" more than once"));
        }
        if (m.value.IsObject() || m.value.IsArray()) stack.push_back({&m.value, f.depth + 1});
      }
    } else if (f.v->IsArray()) {
      for (const auto& e : f.v->GetArray()) {
        if (e.IsString() && not_utf8(e)) return bad_string;
        if (e.IsObject() || e.IsArray()) stack.push_back({&e, f.depth + 1});
      }
    }
  }
  return absl::OkStatus();
}

}  // namespace wmty::fhir
