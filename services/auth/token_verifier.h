// TokenVerifier: checks bearer JWTs and turns them into a Principal.
//
// Signatures are checked by libjwt (OpenSSL underneath): HS256 with a shared
// secret (development, tests), RS256 / ES256 / ES384 with public keys from a
// JWKS document (production). The token's `alg` must be the algorithm of the
// key it is checked with, so "none" and algorithm confusion (an HS256 token
// "signed" with a public key) are refused. Then: `exp` is required, `exp` and
// `nbf` are checked with a small clock skew, `iss` must equal the configured
// issuer and `aud` (string or array) must contain the configured audience.
//
// Errors are UNAUTHENTICATED with a short reason that is safe to return to
// the caller (it never echoes the token).
//
// Verified tokens are remembered (up to 10,000, until they expire), so a
// client that sends the same token on every call pays for the signature check
// once; expiry is still checked on every call.
//
// Thread safety: Verify may run concurrently.
#ifndef WMTY_AUTH_TOKEN_VERIFIER_H_
#define WMTY_AUTH_TOKEN_VERIFIER_H_

#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/time/time.h"
#include "auth/scopes.h"

namespace wmty::auth {

struct VerifierOptions {
  std::string issuer;
  std::string audience;
  absl::Duration clock_skew = absl::Seconds(60);
  std::function<absl::Time()> clock = [] { return absl::Now(); };
};

class TokenVerifier {
 public:
  // INVALID_ARGUMENT if the secret is shorter than 32 bytes or the options
  // lack issuer/audience.
  static absl::StatusOr<std::unique_ptr<TokenVerifier>> FromHs256Secret(std::string secret,
                                                                         VerifierOptions options);
  // A JWKS document ({"keys":[...]}) of RSA (RS256) and EC P-256/P-384
  // (ES256/ES384) public keys. INVALID_ARGUMENT naming the bad key.
  static absl::StatusOr<std::unique_ptr<TokenVerifier>> FromJwks(absl::string_view jwks_json,
                                                                 VerifierOptions options);

  absl::StatusOr<Principal> Verify(absl::string_view token) const;
  ~TokenVerifier();

  struct Key {
    std::string kid;  // may be empty
    std::string alg;  // "HS256", "RS256", "ES256", "ES384"
    std::string material;  // the secret, or a PEM public key
  };

 private:
  struct Cache;
  TokenVerifier(std::vector<Key> keys, VerifierOptions options);
  absl::StatusOr<Principal> VerifyUncached(absl::string_view token, absl::Time* expires, absl::Time* not_before) const;
  std::vector<Key> keys_;
  VerifierOptions options_;
  std::unique_ptr<Cache> cache_;
};

// PEM (SubjectPublicKeyInfo) of a JWK: RSA {n, e} or EC {crv, x, y}.
// Exposed for tests and tools.
absl::StatusOr<TokenVerifier::Key> KeyFromJwk(absl::string_view jwk_json);

}  // namespace wmty::auth

#endif  // WMTY_AUTH_TOKEN_VERIFIER_H_
