// SMART App Launch discovery: GET [base]/.well-known/smart-configuration
// (SMART App Launch 2.x, "Conformance"), public and without PHI, telling a
// SMART app (the bedside app, an EHR's apps) where to sign in: the
// authorization server's authorize and token endpoints, its issuer and keys,
// and what this server supports (scopes, launch modes, PKCE S256).
//
// wmtyd does not issue tokens: the endpoints come from flags
// (--smart_authorization_endpoint, --smart_token_endpoint, optionally
// --smart_revocation_endpoint); the issuer and jwks_uri are the ones tokens
// are checked against (--auth_issuer, --auth_jwks_url). Without the two
// endpoints SMART launch is off: the document is 404 (the bedside app then
// offers only its development sign-in) and the CapabilityStatement names no
// OAuth URIs.
//
// Thread safety: immutable; the handler may be called from any I/O thread.
#ifndef WMTY_FHIR_SMART_CONFIGURATION_H_
#define WMTY_FHIR_SMART_CONFIGURATION_H_

#include <string>

#include <rapidjson/document.h>

#include "http/http_server.h"

namespace wmty::fhir {

struct SmartConfiguration {
  std::string issuer;
  std::string jwks_uri;  // may be empty (keys from a file)
  std::string authorization_endpoint;
  std::string token_endpoint;
  std::string revocation_endpoint;  // optional

  bool enabled() const { return !authorization_endpoint.empty() && !token_endpoint.empty(); }
};

// The scopes wmtyd understands (auth/scopes.h), as advertised.
inline constexpr const char* kSmartScopesSupported[] = {"openid",
                                                        "fhirUser",
                                                        "launch",
                                                        "launch/patient",
                                                        "offline_access",
                                                        "online_access",
                                                        "patient/Goal.cruds",
                                                        "patient/Observation.cruds",
                                                        "patient/List.cruds",
                                                        "patient/Provenance.rs",
                                                        "patient/*.cruds",
                                                        "user/Goal.cruds",
                                                        "user/Observation.cruds",
                                                        "user/List.cruds",
                                                        "user/Provenance.rs",
                                                        "user/*.cruds",
                                                        "system/*.cruds"};

// The smart-configuration document of an enabled configuration.
void BuildSmartConfiguration(const SmartConfiguration& config, rapidjson::Value* out,
                             rapidjson::Document::AllocatorType& alloc);

// Answers GET/HEAD /fhir/.well-known/smart-configuration (405 for other
// methods; 404 with an OperationOutcome when SMART is not configured) and
// hands every other request to `next`, which must outlive this handler.
class SmartConfigurationHandler : public http::Handler {
 public:
  SmartConfigurationHandler(SmartConfiguration config, http::Handler* next);

  void Handle(http::Request request, http::Respond respond) override;
  http::Response MakeError(http::Status status, const std::string& message, unsigned version, bool keep_alive) override;

 private:
  const SmartConfiguration config_;
  const std::string document_;  // serialized once; empty when not enabled
  http::Handler* const next_;
};

}  // namespace wmty::fhir

#endif  // WMTY_FHIR_SMART_CONFIGURATION_H_
