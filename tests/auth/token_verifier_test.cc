// Real tokens: keys generated with OpenSSL, tokens signed with libjwt, checked
// by TokenVerifier. Covers the token matrix of issue 4 at the verifier level.
#include "auth/token_verifier.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <jwt.h>
#include <openssl/bn.h>
#include <openssl/core_names.h>
#include <openssl/evp.h>
#include <openssl/pem.h>

#include "absl/strings/escaping.h"
#include "absl/strings/str_cat.h"
#include "support/test_support.h"
#include "support/test_tokens.h"

namespace wmty::auth {
namespace {

using ::wmty::testing::Base64Url;
using ::wmty::testing::SignToken;
using ::wmty::testing::StatusIs;
using ::wmty::testing::TamperPayload;
using ::wmty::testing::TestClaims;
using ::wmty::testing::WithHeader;

using ::wmty::testing::kTestAudience;
using ::wmty::testing::kTestIssuer;
const std::string& kSecret = ::wmty::testing::kTestHs256Secret;

std::string PrivatePem(EVP_PKEY* key) {
  BIO* bio = BIO_new(BIO_s_mem());
  PEM_write_bio_PrivateKey(bio, key, nullptr, nullptr, 0, nullptr, nullptr);
  char* data = nullptr;
  long len = BIO_get_mem_data(bio, &data);
  std::string pem(data, static_cast<size_t>(len));
  BIO_free(bio);
  return pem;
}

std::string BnBytes(EVP_PKEY* key, const char* param) {
  BIGNUM* bn = nullptr;
  EVP_PKEY_get_bn_param(key, param, &bn);
  std::string out(BN_num_bytes(bn), '\0');
  BN_bn2bin(bn, reinterpret_cast<unsigned char*>(out.data()));
  BN_free(bn);
  return out;
}

struct KeyPair {
  std::string private_pem;
  std::string jwk;  // public
};

KeyPair NewRsa(const std::string& kid) {
  EVP_PKEY* key = EVP_RSA_gen(2048);
  KeyPair kp{PrivatePem(key),
             absl::StrCat(R"({"kty":"RSA","kid":")", kid, R"(","n":")", Base64Url(BnBytes(key, OSSL_PKEY_PARAM_RSA_N)),
                          R"(","e":")", Base64Url(BnBytes(key, OSSL_PKEY_PARAM_RSA_E)), R"("})")};
  EVP_PKEY_free(key);
  return kp;
}

KeyPair NewEc(const std::string& kid, const char* curve, size_t size) {
  EVP_PKEY* key = EVP_EC_gen(curve);
  unsigned char point[200];
  size_t len = 0;
  EVP_PKEY_get_octet_string_param(key, OSSL_PKEY_PARAM_PUB_KEY, point, sizeof(point), &len);
  std::string p(reinterpret_cast<char*>(point), len);  // 0x04 || x || y
  KeyPair kp{PrivatePem(key),
             absl::StrCat(R"({"kty":"EC","kid":")", kid, R"(","crv":")", curve, R"(","x":")",
                          Base64Url(p.substr(1, size)), R"(","y":")", Base64Url(p.substr(1 + size)), R"("})")};
  EVP_PKEY_free(key);
  return kp;
}

// The claims of a patient app's token; each test changes what it tests.
TestClaims PatientAppClaims() { return {.scope = "patient/Goal.rs openid", .patient = "p1"}; }

std::string Sign(jwt_alg_t alg, const std::string& key, const TestClaims& c = PatientAppClaims()) {
  return SignToken(c, key, alg);
}

VerifierOptions Options() {
  VerifierOptions o;
  o.issuer = kTestIssuer;
  o.audience = kTestAudience;
  return o;
}

TEST(TokenVerifierTest, AcceptsValidHs256AndExtractsThePrincipal) {
  auto v = TokenVerifier::FromHs256Secret(kSecret, Options());
  ASSERT_TRUE(v.ok()) << v.status();
  auto p = (*v)->Verify(Sign(JWT_ALG_HS256, kSecret));
  ASSERT_TRUE(p.ok()) << p.status();
  EXPECT_EQ(p->subject, "Practitioner/rn-17");
  EXPECT_EQ(p->patient, "p1");
  ASSERT_EQ(p->scopes.size(), 1u);
  EXPECT_EQ(p->scopes[0].resource_type, "Goal");
}

TEST(TokenVerifierTest, RefusesShortSecretsAndMissingIssuer) {
  EXPECT_FALSE(TokenVerifier::FromHs256Secret("short", Options()).ok());
  EXPECT_FALSE(TokenVerifier::FromHs256Secret(kSecret, VerifierOptions{}).ok());
}

TEST(TokenVerifierTest, TokenMatrixIsRefused) {
  auto v = TokenVerifier::FromHs256Secret(kSecret, Options());
  ASSERT_TRUE(v.ok());
  TestClaims expired = PatientAppClaims();
  expired.exp_offset = -3600;
  TestClaims no_exp = PatientAppClaims();
  no_exp.exp_offset = 0;
  TestClaims future = PatientAppClaims();
  future.nbf_offset = 3600;
  TestClaims wrong_iss = PatientAppClaims();
  wrong_iss.iss = "https://evil.test";
  TestClaims wrong_aud = PatientAppClaims();
  wrong_aud.aud = "https://other.test";
  const std::string tampered = TamperPayload(Sign(JWT_ALG_HS256, kSecret));  // one payload character changed
  const std::string good = Sign(JWT_ALG_HS256, kSecret);
  const std::string alg_none = WithHeader(good, R"({"alg":"none","typ":"JWT"})", /*keep_signature=*/false);
  const std::string alg_none_sig = WithHeader(good, R"({"alg":"none","typ":"JWT"})", /*keep_signature=*/true);
  const std::string other_secret = Sign(JWT_ALG_HS256, std::string(40, 'x'));
  for (const auto& [name, token] : std::vector<std::pair<std::string, std::string>>{
           {"empty", ""},
           {"garbage", "not-a-token"},
           {"expired", Sign(JWT_ALG_HS256, kSecret, expired)},
           {"no exp", Sign(JWT_ALG_HS256, kSecret, no_exp)},
           {"not yet valid", Sign(JWT_ALG_HS256, kSecret, future)},
           {"wrong issuer", Sign(JWT_ALG_HS256, kSecret, wrong_iss)},
           {"wrong audience", Sign(JWT_ALG_HS256, kSecret, wrong_aud)},
           {"bad signature", tampered},
           {"other secret", other_secret},
           {"alg none", alg_none},
           {"alg none with signature", alg_none_sig},
       }) {
    EXPECT_THAT((*v)->Verify(token), StatusIs(absl::StatusCode::kUnauthenticated)) << name;
  }
}

TEST(TokenVerifierTest, SmallClockSkewIsTolerated) {
  auto v = TokenVerifier::FromHs256Secret(kSecret, Options());
  TestClaims just_expired = PatientAppClaims();
  just_expired.exp_offset = -10;
  EXPECT_TRUE((*v)->Verify(Sign(JWT_ALG_HS256, kSecret, just_expired)).ok());
}

TEST(TokenVerifierTest, JwksWithRsaAndEcKeys) {
  const KeyPair rsa = NewRsa("rsa-1");
  const KeyPair p256 = NewEc("ec-256", "P-256", 32);
  const KeyPair p384 = NewEc("ec-384", "P-384", 48);
  const std::string jwks = absl::StrCat(R"({"keys":[)", rsa.jwk, ",", p256.jwk, ",", p384.jwk, "]}");
  auto v = TokenVerifier::FromJwks(jwks, Options());
  ASSERT_TRUE(v.ok()) << v.status();
  TestClaims c = PatientAppClaims();
  c.kid = "rsa-1";
  EXPECT_TRUE((*v)->Verify(Sign(JWT_ALG_RS256, rsa.private_pem, c)).ok());
  c.kid = "ec-256";
  auto es256 = (*v)->Verify(Sign(JWT_ALG_ES256, p256.private_pem, c));
  EXPECT_TRUE(es256.ok()) << es256.status();
  c.kid = "ec-384";
  EXPECT_TRUE((*v)->Verify(Sign(JWT_ALG_ES384, p384.private_pem, c)).ok());
  c.kid = "";  // no kid: tried against the keys of the token's algorithm
  EXPECT_TRUE((*v)->Verify(Sign(JWT_ALG_RS256, rsa.private_pem, c)).ok());

  // A key that is not in the JWKS, and algorithm confusion: an HS256 token
  // "signed" with the RSA public key as the secret.
  const KeyPair stranger = NewRsa("rsa-1");
  c.kid = "rsa-1";
  EXPECT_THAT((*v)->Verify(Sign(JWT_ALG_RS256, stranger.private_pem, c)), StatusIs(absl::StatusCode::kUnauthenticated));
  auto rsa_key = KeyFromJwk(rsa.jwk);
  ASSERT_TRUE(rsa_key.ok());
  EXPECT_THAT((*v)->Verify(Sign(JWT_ALG_HS256, rsa_key->material, c)), StatusIs(absl::StatusCode::kUnauthenticated));
}

TEST(TokenVerifierTest, BadJwksIsRefused) {
  EXPECT_FALSE(TokenVerifier::FromJwks("{}", Options()).ok());
  EXPECT_FALSE(TokenVerifier::FromJwks(R"({"keys":[]})", Options()).ok());
  EXPECT_FALSE(TokenVerifier::FromJwks(R"({"keys":[{"kty":"RSA","n":"AQAB"}]})", Options()).ok());
  EXPECT_FALSE(TokenVerifier::FromJwks(R"({"keys":[{"kty":"EC","crv":"P-256","x":"AA","y":"AA"}]})", Options()).ok());
  EXPECT_FALSE(TokenVerifier::FromJwks(R"({"keys":[{"kty":"oct","k":"c2VjcmV0"}]})", Options()).ok());
}

}  // namespace
}  // namespace wmty::auth

namespace wmty::auth {
namespace {

TEST(TokenVerifierTest, RememberedTokensStillExpire) {
  absl::Time now = absl::Now();
  VerifierOptions o = Options();
  o.clock = [&now] { return now; };
  auto v = TokenVerifier::FromHs256Secret(kSecret, o);
  ASSERT_TRUE(v.ok());
  const std::string token = Sign(JWT_ALG_HS256, kSecret);  // exp: now + 300 s
  EXPECT_TRUE((*v)->Verify(token).ok());
  EXPECT_TRUE((*v)->Verify(token).ok());  // from the cache
  now += absl::Seconds(300 + 61);         // past exp and the 60 s skew
  EXPECT_THAT((*v)->Verify(token), StatusIs(absl::StatusCode::kUnauthenticated));
  EXPECT_THAT((*v)->Verify(token), StatusIs(absl::StatusCode::kUnauthenticated));
}

TEST(TokenVerifierTest, ATamperedCopyOfARememberedTokenIsStillRefused) {
  auto v = TokenVerifier::FromHs256Secret(kSecret, Options());
  const std::string token = Sign(JWT_ALG_HS256, kSecret);
  ASSERT_TRUE((*v)->Verify(token).ok());
  EXPECT_THAT((*v)->Verify(TamperPayload(token)), StatusIs(absl::StatusCode::kUnauthenticated));
}

}  // namespace
}  // namespace wmty::auth

namespace wmty::auth {
namespace {

// Signs `header_json`.`payload_json` with an RSA private key (PEM), RS256.
std::string SignRs256(const std::string& header_json, const std::string& payload_json, const std::string& pem) {
  const std::string input = absl::StrCat(Base64Url(header_json), ".", Base64Url(payload_json));
  BIO* bio = BIO_new_mem_buf(pem.data(), static_cast<int>(pem.size()));
  EVP_PKEY* key = PEM_read_bio_PrivateKey(bio, nullptr, nullptr, nullptr);
  EVP_MD_CTX* ctx = EVP_MD_CTX_new();
  size_t len = 0;
  EVP_DigestSignInit(ctx, nullptr, EVP_sha256(), nullptr, key);
  EVP_DigestSign(ctx, nullptr, &len, reinterpret_cast<const unsigned char*>(input.data()), input.size());
  std::string sig(len, '\0');
  EVP_DigestSign(ctx, reinterpret_cast<unsigned char*>(sig.data()), &len,
                 reinterpret_cast<const unsigned char*>(input.data()), input.size());
  sig.resize(len);
  EVP_MD_CTX_free(ctx);
  EVP_PKEY_free(key);
  BIO_free(bio);
  return absl::StrCat(input, ".", Base64Url(sig));
}

// RFC 9068 access tokens (oidc-provider, Auth0, ...) say typ "at+jwt" and
// Keycloak's say "Bearer": the signature and claims decide, not typ.
TEST(TokenVerifierTest, AcceptsAccessTokensWhateverTheirTyp) {
  const KeyPair rsa = NewRsa("at-1");
  auto verifier = TokenVerifier::FromJwks(absl::StrCat(R"({"keys":[)", rsa.jwk, "]}"), Options());
  ASSERT_TRUE(verifier.ok()) << verifier.status();
  const long exp = absl::ToUnixSeconds(absl::Now()) + 300;
  const std::string payload =
      absl::StrCat(R"({"iss":")", kTestIssuer, R"(","aud":[")", kTestAudience, R"("],"sub":"rn-17","exp":)", exp,
                   R"(,"scope":"patient/*.cruds","patient":"p9","fhirUser":"Practitioner/rn-17"})");
  for (const char* typ : {"at+jwt", "JWT", "Bearer"}) {
    const std::string token =
        SignRs256(absl::StrCat(R"({"alg":"RS256","typ":")", typ, R"(","kid":"at-1"})"), payload, rsa.private_pem);
    auto principal = (*verifier)->Verify(token);
    ASSERT_TRUE(principal.ok()) << typ << ": " << principal.status();
    EXPECT_EQ(principal->patient, "p9");
    EXPECT_EQ(principal->fhir_user, "Practitioner/rn-17");
  }
  // Still signed: the same header over another payload is refused.
  const std::string good = SignRs256(R"({"alg":"RS256","typ":"at+jwt","kid":"at-1"})", payload, rsa.private_pem);
  EXPECT_THAT((*verifier)->Verify(TamperPayload(good)), StatusIs(absl::StatusCode::kUnauthenticated));
}

}  // namespace
}  // namespace wmty::auth
