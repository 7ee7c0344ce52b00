// TokenVerifier: checks bearer JWTs and turns them into a Principal.
//
// Signatures are checked with OpenSSL: HS256 with a shared secret
// (development, tests), RS256 / ES256 / ES384 with public keys from a JWKS
// document or URL (production). The header's `typ` is not checked (access
// tokens say "JWT", "at+jwt" per RFC 9068, or something else). The token's `alg` must be the algorithm of the
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
// Keys come from a KeySource: fixed ones (a secret, a JWKS file) or a
// RemoteJwks (auth/remote_jwks.h) that follows the authorization server's key
// rotation. A token whose `kid` none of the current keys has asks the source
// for fresh keys once (the source decides whether, and how often, to fetch).
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

// One public key (or the HS256 secret) and the algorithm it checks.
struct SigningKey {
  std::string kid;       // may be empty
  std::string alg;       // "HS256", "RS256", "ES256", "ES384"
  std::string material;  // the secret, or a PEM public key
};
using KeySet = std::vector<SigningKey>;

// Where a TokenVerifier gets its keys. Implementations are thread-safe.
class KeySource {
 public:
  virtual ~KeySource() = default;
  // The keys to check signatures with now; never null.
  virtual std::shared_ptr<const KeySet> Current() const = 0;
  // A token names key `kid`, which Current() lacks: the keys to try again
  // with, or null when there is nothing new (the default: fixed keys). May
  // block while it fetches.
  virtual std::shared_ptr<const KeySet> RefreshForUnknownKid(absl::string_view kid) {
    (void)kid;
    return nullptr;
  }
};

// The signing keys of a JWKS document ({"keys":[...]}) of RSA (RS256) and EC
// P-256/P-384 (ES256/ES384) public keys; encryption keys ("use":"enc") are
// skipped. INVALID_ARGUMENT naming the bad key, or when no key is left.
absl::StatusOr<KeySet> KeysFromJwks(absl::string_view jwks_json);

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
  static absl::StatusOr<std::unique_ptr<TokenVerifier>> FromHs256Secret(std::string secret, VerifierOptions options);
  // A JWKS document ({"keys":[...]}) of RSA (RS256) and EC P-256/P-384
  // (ES256/ES384) public keys. INVALID_ARGUMENT naming the bad key.
  static absl::StatusOr<std::unique_ptr<TokenVerifier>> FromJwks(absl::string_view jwks_json, VerifierOptions options);
  // Keys from `source` (e.g. a RemoteJwks). INVALID_ARGUMENT if the options
  // lack issuer/audience or `source` is null.
  static absl::StatusOr<std::unique_ptr<TokenVerifier>> FromKeySource(std::shared_ptr<KeySource> source,
                                                                      VerifierOptions options);

  absl::StatusOr<Principal> Verify(absl::string_view token) const;
  ~TokenVerifier();

  using Key = SigningKey;

 private:
  struct Cache;
  TokenVerifier(std::shared_ptr<KeySource> keys, VerifierOptions options);
  absl::StatusOr<Principal> VerifyUncached(absl::string_view token, absl::Time* expires, absl::Time* not_before) const;
  std::shared_ptr<KeySource> keys_;
  VerifierOptions options_;
  std::unique_ptr<Cache> cache_;
};

// PEM (SubjectPublicKeyInfo) of a JWK: RSA {n, e} or EC {crv, x, y}.
// Exposed for tests and tools.
absl::StatusOr<TokenVerifier::Key> KeyFromJwk(absl::string_view jwk_json);

}  // namespace wmty::auth

#endif  // WMTY_AUTH_TOKEN_VERIFIER_H_
