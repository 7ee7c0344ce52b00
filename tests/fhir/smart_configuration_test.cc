// SMART App Launch discovery and keys from a JWKS URL, against the real wmtyd:
//  - with an authorization server configured (--smart_* flags,
//    --auth_jwks_url at a real HTTP server serving a JWKS), GET
//    /fhir/.well-known/smart-configuration is public and names it, the
//    CapabilityStatement says SMART-on-FHIR with the oauth-uris extension, and
//    tokens signed with a key the server rotates in later are accepted;
//  - without one, the document is 404 with an OperationOutcome;
//  - wmtyd does not start when the JWKS URL never answers.
#include <fstream>

#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <rapidjson/document.h>

#include "absl/strings/str_cat.h"
#include "fhir/http_client.h"
#include "support/jwks_server.h"
#include "support/test_support.h"
#include "support/test_tokens.h"

namespace wmty::testing {
namespace {

using ::testing::HasSubstr;
using ::testing::Not;

constexpr char kAuthorize[] = "https://idp.test/authorize";
constexpr char kToken[] = "https://idp.test/token";

std::vector<std::string> JwksUrlFlags(const JwksServer& jwks) {
  return {"--auth_jwks_url=" + jwks.url(),
          absl::StrCat("--auth_issuer=", kTestIssuer),
          absl::StrCat("--auth_audience=", kTestAudience),
          "--auth_jwks_min_refresh=0s",
          absl::StrCat("--smart_authorization_endpoint=", kAuthorize),
          absl::StrCat("--smart_token_endpoint=", kToken)};
}

std::vector<std::string> Strings(const rapidjson::Value& array) {
  std::vector<std::string> out;
  if (!array.IsArray()) return out;
  for (const auto& v : array.GetArray()) {
    if (v.IsString()) out.emplace_back(v.GetString());
  }
  return out;
}

std::string Bearer(const RsaKeyPair& key, const std::string& patient) {
  return "Bearer " +
         SignToken({.scope = "patient/*.cruds", .patient = patient, .kid = key.kid}, key.private_pem, JWT_ALG_RS256);
}

TEST(SmartConfigurationTest, PublishesTheAuthorizationServerAndFollowsItsKeys) {
  const RsaKeyPair a = NewRsaKeyPair("idp-1");
  const RsaKeyPair b = NewRsaKeyPair("idp-2");
  JwksServer jwks(JwksOf({&a}));
  TempDir dir;
  auto server = ServerProcess::Start(dir.path() + "/db", JwksUrlFlags(jwks));
  ASSERT_TRUE(server.ok()) << server.status();
  HttpClient http((*server)->http_port());

  // Public: no token.
  HttpResponse conf = http.Get("/fhir/.well-known/smart-configuration");
  ASSERT_EQ(conf.status, 200) << conf.Describe();
  EXPECT_THAT(conf.Header("content-type"), HasSubstr("application/json"));
  rapidjson::Document d = conf.Json();
  ASSERT_TRUE(d.IsObject()) << conf.body;
  EXPECT_STREQ(d["issuer"].GetString(), kTestIssuer);
  EXPECT_EQ(d["jwks_uri"].GetString(), jwks.url());
  EXPECT_STREQ(d["authorization_endpoint"].GetString(), kAuthorize);
  EXPECT_STREQ(d["token_endpoint"].GetString(), kToken);
  EXPECT_THAT(Strings(d["code_challenge_methods_supported"]), ::testing::ElementsAre("S256"));
  EXPECT_THAT(Strings(d["grant_types_supported"]), ::testing::Contains("authorization_code"));
  EXPECT_THAT(Strings(d["response_types_supported"]), ::testing::Contains("code"));
  EXPECT_THAT(Strings(d["scopes_supported"]),
              ::testing::IsSupersetOf({"openid", "fhirUser", "launch", "launch/patient", "offline_access"}));
  EXPECT_THAT(Strings(d["capabilities"]),
              ::testing::IsSupersetOf({"launch-ehr", "launch-standalone", "client-public", "context-ehr-patient",
                                       "context-standalone-patient", "permission-v2", "permission-patient",
                                       "permission-user", "sso-openid-connect"}));
  EXPECT_EQ(http.Post("/fhir/.well-known/smart-configuration", "{}").status, 405);

  // The CapabilityStatement says the same.
  HttpResponse metadata = http.Get("/fhir/metadata");
  ASSERT_EQ(metadata.status, 200) << metadata.Describe();
  EXPECT_THAT(metadata.body, Not(HasSubstr("No authentication yet")));
  EXPECT_THAT(metadata.body, Not(HasSubstr("no SMART authorization yet")));
  rapidjson::Document cs = metadata.Json();
  const rapidjson::Value& security = cs["rest"][0]["security"];
  EXPECT_STREQ(security["service"][0]["coding"][0]["code"].GetString(), "SMART-on-FHIR");
  const rapidjson::Value& oauth = security["extension"][0];
  EXPECT_STREQ(oauth["url"].GetString(), "http://fhir-registry.smarthealthit.org/StructureDefinition/oauth-uris");
  std::map<std::string, std::string> uris;
  for (const auto& e : oauth["extension"].GetArray()) uris[e["url"].GetString()] = e["valueUri"].GetString();
  EXPECT_EQ(uris["authorize"], kAuthorize);
  EXPECT_EQ(uris["token"], kToken);

  // Tokens signed with the fetched key work; after the authorization server
  // rotates to a new key, its tokens work too (fetched on the unknown kid).
  EXPECT_EQ(http.Get("/fhir/Goal?patient=p1", {{"Authorization", Bearer(a, "p1")}}).status, 200);
  EXPECT_EQ(http.Get("/fhir/Goal?patient=p2", {{"Authorization", Bearer(b, "p2")}}).status, 401);
  jwks.Serve(JwksOf({&b}));
  EXPECT_EQ(http.Get("/fhir/Goal?patient=p3", {{"Authorization", Bearer(b, "p3")}}).status, 200);
}

TEST(SmartConfigurationTest, WithoutAnAuthorizationServerTheDocumentIs404) {
  TempDir dir;
  auto server = ServerProcess::Start(dir.path() + "/db", Hs256AuthFlagsIn(dir.path()));
  ASSERT_TRUE(server.ok()) << server.status();
  HttpClient http((*server)->http_port());
  HttpResponse conf = http.Get("/fhir/.well-known/smart-configuration");
  EXPECT_EQ(conf.status, 404);
  rapidjson::Document d = conf.Json();
  ASSERT_TRUE(d.IsObject()) << conf.body;
  EXPECT_STREQ(d["resourceType"].GetString(), "OperationOutcome");
  EXPECT_THAT(conf.body, HasSubstr("--smart_authorization_endpoint"));
  rapidjson::Document cs = http.Get("/fhir/metadata").Json();
  const rapidjson::Value& security = cs["rest"][0]["security"];
  EXPECT_STREQ(security["service"][0]["coding"][0]["code"].GetString(), "SMART-on-FHIR");
  EXPECT_FALSE(security.HasMember("extension"));
}

TEST(SmartConfigurationTest, WmtydDoesNotStartWhenTheJwksUrlNeverAnswers) {
  JwksServer jwks("", 503);
  TempDir dir;
  std::vector<std::string> argv = {WMTYD_PATH, "--data_dir=" + dir.path() + "/db", "--grpc_listen=127.0.0.1:0",
                                   "--http_listen=127.0.0.1:0", "--auth_jwks_startup_wait=1s"};
  for (std::string& flag : JwksUrlFlags(jwks)) argv.push_back(std::move(flag));
  std::string output;
  EXPECT_NE(RunCommand(argv, &output), 0);
  EXPECT_THAT(output, HasSubstr("no keys from --auth_jwks_url"));
  EXPECT_GE(jwks.requests(), 2);
}

}  // namespace
}  // namespace wmty::testing
