// The FHIR face's entry: NewFhirService, and the per-request preamble every
// call goes through (request target, public or audited, duplicate headers,
// authentication, query, content negotiation, Prefer, deadline, base URL)
// before routing.

#include "fhir/face/service.h"

#include <algorithm>
#include <exception>
#include <iterator>

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/strip.h"
#include "common/log.h"
#include "fhir/audit_event.h"
#include "fhir/face/access.h"
#include "fhir/face/resource_types.h"

namespace wmty::fhir::face {

namespace {

// A request target split into its path and query; absolute-form targets
// (RFC 7230 5.3.2) are reduced to their path.
struct Target {
  absl::string_view path;
  absl::string_view query;
};
Target SplitTarget(absl::string_view t) {
  if (absl::StartsWith(t, "http://") || absl::StartsWith(t, "https://")) {
    const size_t slash = t.find('/', t.find("//") + 2);
    t = slash == absl::string_view::npos ? absl::string_view("/") : t.substr(slash);
  }
  const size_t q = t.find('?');
  return {t.substr(0, q), q == absl::string_view::npos ? absl::string_view() : t.substr(q + 1)};
}

// Every non-public request is audited, refused ones included (see Reply).
void StartAudit(Call& c, absl::string_view path, PatientRecords* sink) {
  storage::AuditRecord& audit = c.audit.emplace();
  audit.set_source("fhir");
  audit.set_remote(std::string(c.Header(http::kRemoteAddressHeader)));
  absl::string_view rest = path;
  if (absl::ConsumePrefix(&rest, "/fhir/")) {
    const absl::string_view type = rest.substr(0, rest.find('/'));
    if (IsAuditedType(type)) {
      audit.set_resource_type(std::string(type));
    }
  }
  c.audit_sink = sink;
}

// A header that may appear once, sent twice, is ambiguous (which one counts
// may differ between a proxy and us: whose token, which body type, which
// request id), so it is refused rather than guessed. False after replying.
bool NoRepeatedHeaders(Call& c) {
  for (const absl::string_view name : {"Authorization", "Content-Type", "Host", "If-Match", "If-None-Match",
                                       "If-None-Exist", "X-Request-Id", "X-Provenance"}) {
    const auto [first, end] = c.request.equal_range(boost::beast::string_view(name.data(), name.size()));
    if (first != end && std::next(first) != end) {
      ReplyError(c, Bad("structure", absl::StrCat("the ", name, " header appears more than once")));
      return false;
    }
  }
  return true;
}

// The query parameters, _pretty, and the response type (Accept, _format).
// False after replying.
bool ReadQuery(Call& c, absl::string_view query) {
  auto params = ParseQueryString(query);
  if (!params.ok()) {
    ReplyError(c, Bad("invalid", std::string(params.status().message())));
    return false;
  }
  c.query = std::move(*params);
  std::optional<std::string> format;
  for (const auto& p : c.query) {
    if (p.name == "_format") format = p.value;
    if (p.name == "_pretty") c.pretty = p.value == "true";
  }
  const Negotiated n = NegotiateResponseType(
      c.Header(bhttp::field::accept), format.has_value() ? std::optional<absl::string_view>(*format) : std::nullopt);
  if (!n.acceptable) {
    ReplyError(c, MakeRestError(http::Status::not_acceptable, "not-supported", n.reason));
    return false;
  }
  c.content_type = n.content_type;
  return true;
}

// Every Prefer header, as one list.
Prefer PreferOf(const Call& c) {
  std::string prefer;
  for (auto [it, end] = c.request.equal_range(bhttp::field::prefer); it != end; ++it) {
    absl::StrAppend(&prefer, prefer.empty() ? "" : ",", absl::string_view(it->value().data(), it->value().size()));
  }
  return ParsePrefer(prefer);
}

// The base URL of Location headers, fullUrl and links: the configured one,
// else built from Host (only host[:port] characters are echoed back).
std::string BaseUrlOf(const Call& c, std::string configured) {
  if (!configured.empty()) {
    while (!configured.empty() && configured.back() == '/') configured.pop_back();
    return configured;
  }
  std::string host(c.Header(bhttp::field::host));
  const bool ok = !host.empty() && std::all_of(host.begin(), host.end(), [](char ch) {
    return absl::ascii_isalnum(static_cast<unsigned char>(ch)) || ch == '.' || ch == '-' || ch == ':' || ch == '[' ||
           ch == ']' || ch == '_';
  });
  return absl::StrCat("http://", ok ? host : "localhost", "/fhir");
}

}  // namespace

void FhirService::Handle(http::Request request, http::Respond respond) {
  auto c = std::make_shared<Call>();
  c->version = request.version();
  c->request = std::move(request);
  c->respond = std::move(respond);
  c->content_type = "application/fhir+json; charset=utf-8";
  Guarded(c, [&] {
    const auto raw = c->request.target();
    const Target target = SplitTarget(absl::string_view(raw.data(), raw.size()));
    // Authentication comes first; only paths whose registered rows are all
    // public (the CapabilityStatement, our CodeSystem: no PHI) skip it.
    const bool is_public = IsPublicPath(target.path);
    if (!is_public) StartAudit(*c, target.path, core_);
    if (!NoRepeatedHeaders(*c)) return;
    if (!is_public && !Authenticate(*c)) return;
    if (!ReadQuery(*c, target.query)) return;
    c->prefer = PreferOf(*c);
    c->ctx.deadline = absl::Now() + options_.request_timeout;
    c->base = BaseUrlOf(*c, options_.base_url);
    Route(c, target.path);
  });
}

void FhirService::Guarded(const CallPtr& c, absl::FunctionRef<void()> body) {
  try {
    body();
  } catch (const std::exception&) {
    log::Error("fhir handler threw", {{"interaction", c->interaction}});
    ReplyError(*c, MakeRestError(http::Status::internal_server_error, "exception", "internal error"));
  } catch (...) {
    log::Error("fhir handler threw", {{"interaction", c->interaction}});
    ReplyError(*c, MakeRestError(http::Status::internal_server_error, "exception", "internal error"));
  }
}

http::Response FhirService::MakeError(http::Status status, const std::string& message, unsigned version,
                                      bool keep_alive) {
  std::string code = "structure";
  if (status == http::Status::payload_too_large || status == http::Status::request_header_fields_too_large) {
    code = "too-long";
  } else if (status == http::Status::service_unavailable) {
    // The HTTP server's own refusals: over its connection or in-flight limit,
    // or shutting down. Both pass; the message says which.
    code = "transient";
  } else if (static_cast<int>(status) >= 500) {
    code = "exception";
  }
  Document d;
  BuildOperationOutcome({Issue{"error", code, message, ""}}, &d, d.GetAllocator());
  http::Response res{status, version};
  res.set(bhttp::field::server, "wmty");
  res.set(bhttp::field::content_type, "application/fhir+json; charset=utf-8");
  res.body() = Serialize(d, false);
  res.keep_alive(keep_alive);
  return res;
}

}  // namespace wmty::fhir::face

namespace wmty::fhir {

std::unique_ptr<http::Handler> NewFhirService(domain::PatientRecords* core, FhirServiceOptions options) {
  return std::make_unique<face::FhirService>(core, std::move(options));
}

}  // namespace wmty::fhir
