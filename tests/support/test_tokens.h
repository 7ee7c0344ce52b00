// Access tokens (JWT) for the auth tests, signed with libjwt as an
// authorization server would issue them, and the pieces to take a real token
// apart for tokens that are wrong on purpose (alg=none, a changed payload, a
// header from elsewhere).
//
// Header-only, so that only the targets that use it need libjwt: link
// PkgConfig::<libjwt> (pkg_check_modules(... IMPORTED_TARGET libjwt)).
//
//   const std::string t = SignToken({.scope = "patient/*.rs", .patient = "pa"});
//   const std::string expired = SignToken({.scope = "system/*.cruds", .exp_offset = -3600});
//   const std::string alg_none = WithHeader(t, R"({"alg":"none","typ":"JWT"})", /*keep_signature=*/false);
#ifndef WMTY_TESTS_SUPPORT_TEST_TOKENS_H_
#define WMTY_TESTS_SUPPORT_TEST_TOKENS_H_

#include <cstdlib>
#include <fstream>
#include <string>
#include <vector>

#include <jwt.h>

#include "absl/strings/escaping.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/string_view.h"
#include "absl/time/clock.h"
#include "absl/time/time.h"

namespace wmty::testing {

// What the auth tests start wmtyd with (Hs256AuthFlags) and sign with.
inline constexpr char kTestIssuer[] = "https://issuer.test";
inline constexpr char kTestAudience[] = "https://wmty.test/fhir";
inline const std::string kTestHs256Secret(40, 'k');  // wmtyd wants at least 32 bytes

// The claims of a token (and its kid header). Members in the order the
// aggregate takes them: `{scope, patient}` or designated initializers. Every
// member has a default (-Wmissing-field-initializers).
struct TestClaims {
  std::string scope = "";
  std::string patient = "";  // "" = no patient claim
  std::string sub = "Practitioner/rn-17";
  std::string fhir_user = "";  // "" = no fhirUser claim
  std::string iss = kTestIssuer;
  std::string aud = kTestAudience;
  long exp_offset = 300;  // exp = now + this many seconds; 0 = no exp claim
  long nbf_offset = 0;    // nbf = now + this many seconds; 0 = no nbf claim
  std::string kid = "";   // "" = no kid header
};

// A token with `claims`, signed with `alg` and `key` (HS*: the shared secret;
// RS*/ES*: the private key in PEM). "" if libjwt refuses the key.
inline std::string SignToken(const TestClaims& claims, const std::string& key = kTestHs256Secret,
                             jwt_alg_t alg = JWT_ALG_HS256) {
  jwt_t* jwt = nullptr;
  if (jwt_new(&jwt) != 0) return "";
  const long now = absl::ToUnixSeconds(absl::Now());
  jwt_add_grant(jwt, "iss", claims.iss.c_str());
  jwt_add_grant(jwt, "aud", claims.aud.c_str());
  jwt_add_grant(jwt, "sub", claims.sub.c_str());
  if (!claims.fhir_user.empty()) jwt_add_grant(jwt, "fhirUser", claims.fhir_user.c_str());
  jwt_add_grant(jwt, "scope", claims.scope.c_str());
  if (!claims.patient.empty()) jwt_add_grant(jwt, "patient", claims.patient.c_str());
  if (claims.exp_offset != 0) jwt_add_grant_int(jwt, "exp", now + claims.exp_offset);
  if (claims.nbf_offset != 0) jwt_add_grant_int(jwt, "nbf", now + claims.nbf_offset);
  if (!claims.kid.empty()) jwt_add_header(jwt, "kid", claims.kid.c_str());
  jwt_set_alg(jwt, alg, reinterpret_cast<const unsigned char*>(key.data()), static_cast<int>(key.size()));
  char* encoded = jwt_encode_str(jwt);
  std::string token = encoded != nullptr ? encoded : "";
  free(encoded);
  jwt_free(jwt);
  return token;
}

// The wmtyd flags that make it verify SignToken's HS256 tokens (default
// issuer and audience) with the secret in `secret_file`.
inline std::vector<std::string> Hs256AuthFlags(const std::string& secret_file) {
  return {"--auth_hs256_secret_file=" + secret_file, absl::StrCat("--auth_issuer=", kTestIssuer),
          absl::StrCat("--auth_audience=", kTestAudience)};
}
// Writes kTestHs256Secret to `dir`/secret and returns Hs256AuthFlags for it.
inline std::vector<std::string> Hs256AuthFlagsIn(const std::string& dir) {
  const std::string secret_file = dir + "/secret";
  std::ofstream(secret_file) << kTestHs256Secret << "\n";
  return Hs256AuthFlags(secret_file);
}

// ---------------------------------------------------------------- taking tokens apart

// Base64url without padding, as JWT segments and JWK members are encoded.
inline std::string Base64Url(absl::string_view bytes) {
  std::string out;
  absl::WebSafeBase64Escape(bytes, &out);
  return out;
}

// The segments of "<header>.<payload>.<signature>" (still base64url).
inline std::string TokenPayload(absl::string_view token) {
  const size_t first = token.find('.');
  return std::string(token.substr(first + 1, token.rfind('.') - first - 1));
}
inline std::string TokenSignature(absl::string_view token) { return std::string(token.substr(token.rfind('.') + 1)); }

// `token` with its header replaced by `header_json` and the payload kept: the
// original signature kept, or none at all (alg=none).
inline std::string WithHeader(absl::string_view token, absl::string_view header_json, bool keep_signature) {
  return absl::StrCat(Base64Url(header_json), ".", TokenPayload(token), ".",
                      keep_signature ? TokenSignature(token) : "");
}

// `token` with one bit of one payload character changed: the signature no
// longer matches.
inline std::string TamperPayload(std::string token) {
  token[token.find('.') + 5] ^= 1;
  return token;
}

}  // namespace wmty::testing

#endif  // WMTY_TESTS_SUPPORT_TEST_TOKENS_H_
