// The smart-configuration document and its handler (smart_configuration.h).
#include "fhir/smart_configuration.h"

#include <rapidjson/stringbuffer.h>
#include <rapidjson/writer.h>

#include "absl/strings/match.h"
#include "absl/strings/string_view.h"
#include "fhir/rest.h"

namespace wmty::fhir {
namespace {

namespace beast_http = boost::beast::http;
using Alloc = rapidjson::Document::AllocatorType;
using rapidjson::Value;

constexpr absl::string_view kPath = "/fhir/.well-known/smart-configuration";

Value Str(const std::string& s, Alloc& a) { return Value(s.c_str(), static_cast<rapidjson::SizeType>(s.size()), a); }

Value Strings(std::initializer_list<const char*> items, Alloc& a) {
  Value array(rapidjson::kArrayType);
  for (const char* item : items) array.PushBack(rapidjson::StringRef(item), a);
  return array;
}

std::string Serialize(const Value& value) {
  rapidjson::StringBuffer buffer;
  rapidjson::Writer<rapidjson::StringBuffer> writer(buffer);
  value.Accept(writer);
  return std::string(buffer.GetString(), buffer.GetSize());
}

std::string DocumentOf(const SmartConfiguration& config) {
  if (!config.enabled()) return "";
  rapidjson::Document d;
  BuildSmartConfiguration(config, &d, d.GetAllocator());
  return Serialize(d);
}

http::Response JsonResponse(const http::Request& request, http::Status status, std::string body,
                            absl::string_view content_type) {
  http::Response response(status, request.version());
  response.set(beast_http::field::content_type, std::string(content_type));
  response.set(beast_http::field::cache_control, "no-cache");
  // Public discovery, no PHI: SMART apps on other origins may read it.
  response.set(beast_http::field::access_control_allow_origin, "*");
  response.set("X-Content-Type-Options", "nosniff");
  response.keep_alive(request.keep_alive());
  if (request.method() != beast_http::verb::head) response.body() = std::move(body);
  response.prepare_payload();
  return response;
}

std::string OutcomeJson(const RestError& error) {
  rapidjson::Document d;
  BuildOperationOutcome(error.issues, &d, d.GetAllocator());
  return Serialize(d);
}

}  // namespace

void BuildSmartConfiguration(const SmartConfiguration& config, Value* out, Alloc& a) {
  out->SetObject();
  if (!config.issuer.empty()) out->AddMember("issuer", Str(config.issuer, a), a);
  if (!config.jwks_uri.empty()) out->AddMember("jwks_uri", Str(config.jwks_uri, a), a);
  out->AddMember("authorization_endpoint", Str(config.authorization_endpoint, a), a);
  out->AddMember("token_endpoint", Str(config.token_endpoint, a), a);
  if (!config.revocation_endpoint.empty()) {
    out->AddMember("revocation_endpoint", Str(config.revocation_endpoint, a), a);
  }
  out->AddMember("grant_types_supported", Strings({"authorization_code", "refresh_token", "client_credentials"}, a), a);
  Value scopes(rapidjson::kArrayType);
  for (const char* scope : kSmartScopesSupported) scopes.PushBack(rapidjson::StringRef(scope), a);
  out->AddMember("scopes_supported", scopes, a);
  out->AddMember("response_types_supported", Strings({"code"}, a), a);
  out->AddMember("code_challenge_methods_supported", Strings({"S256"}, a), a);
  out->AddMember("capabilities",
                 Strings({"launch-ehr", "launch-standalone", "client-public", "context-ehr-patient",
                          "context-standalone-patient", "permission-offline", "permission-online", "permission-patient",
                          "permission-user", "permission-v2", "sso-openid-connect"},
                         a),
                 a);
}

SmartConfigurationHandler::SmartConfigurationHandler(SmartConfiguration config, http::Handler* next)
    : config_(std::move(config)), document_(DocumentOf(config_)), next_(next) {}

void SmartConfigurationHandler::Handle(http::Request request, http::Respond respond) {
  const absl::string_view target(request.target().data(), request.target().size());
  const absl::string_view path = target.substr(0, target.find('?'));
  if (path != kPath) {
    next_->Handle(std::move(request), std::move(respond));
    return;
  }
  if (request.method() != beast_http::verb::get && request.method() != beast_http::verb::head) {
    http::Response response = JsonResponse(
        request, http::Status::method_not_allowed,
        OutcomeJson(MakeRestError(http::Status::method_not_allowed, "not-supported", "only GET is supported here")),
        "application/fhir+json; charset=utf-8");
    response.set(beast_http::field::allow, "GET, HEAD");
    respond(std::move(response));
    return;
  }
  if (document_.empty()) {
    respond(JsonResponse(request, http::Status::not_found,
                         OutcomeJson(MakeRestError(http::Status::not_found, "not-found",
                                                   "SMART App Launch is not configured on this server (wmtyd has no "
                                                   "--smart_authorization_endpoint and --smart_token_endpoint)")),
                         "application/fhir+json; charset=utf-8"));
    return;
  }
  respond(JsonResponse(request, http::Status::ok, document_, "application/json"));
}

http::Response SmartConfigurationHandler::MakeError(http::Status status, const std::string& message, unsigned version,
                                                    bool keep_alive) {
  return next_->MakeError(status, message, version, keep_alive);
}

}  // namespace wmty::fhir
