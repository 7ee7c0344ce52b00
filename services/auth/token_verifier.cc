#include "auth/token_verifier.h"

#include <openssl/bio.h>
#include <openssl/bn.h>
#include <openssl/core_names.h>
#include <openssl/crypto.h>
#include <openssl/ec.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <openssl/param_build.h>
#include <openssl/pem.h>
#include <rapidjson/document.h>
#include <rapidjson/stringbuffer.h>
#include <rapidjson/writer.h>

#include "absl/container/flat_hash_map.h"
#include "absl/strings/escaping.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "absl/synchronization/mutex.h"

namespace wmty::auth {
namespace {

absl::Status Unauthenticated(absl::string_view why) { return absl::UnauthenticatedError(why); }

std::optional<std::string> Base64UrlDecode(absl::string_view in) {
  std::string out;
  if (!absl::WebSafeBase64Unescape(in, &out)) return std::nullopt;
  return out;
}

std::string StringMember(const rapidjson::Value& obj, const char* name) {
  auto it = obj.FindMember(name);
  return it != obj.MemberEnd() && it->value.IsString() ? std::string(it->value.GetString(), it->value.GetStringLength())
                                                       : std::string();
}

// Public key PEM from OpenSSL parameters of key type `type` ("RSA" or "EC").
absl::StatusOr<std::string> PemFromParams(const char* type, OSSL_PARAM_BLD* bld) {
  OSSL_PARAM* params = OSSL_PARAM_BLD_to_param(bld);
  EVP_PKEY_CTX* ctx = EVP_PKEY_CTX_new_from_name(nullptr, type, nullptr);
  EVP_PKEY* pkey = nullptr;
  std::string pem;
  bool ok = params != nullptr && ctx != nullptr && EVP_PKEY_fromdata_init(ctx) == 1 &&
            EVP_PKEY_fromdata(ctx, &pkey, EVP_PKEY_PUBLIC_KEY, params) == 1;
  if (ok) {
    BIO* bio = BIO_new(BIO_s_mem());
    ok = bio != nullptr && PEM_write_bio_PUBKEY(bio, pkey) == 1;
    if (ok) {
      char* data = nullptr;
      long len = BIO_get_mem_data(bio, &data);
      pem.assign(data, static_cast<size_t>(len));
    }
    BIO_free(bio);
  }
  EVP_PKEY_free(pkey);
  EVP_PKEY_CTX_free(ctx);
  OSSL_PARAM_free(params);
  if (!ok) return absl::InvalidArgumentError(absl::StrCat("not a valid ", type, " public key"));
  return pem;
}

bool IsSupportedAlg(absl::string_view alg) {
  return alg == "HS256" || alg == "RS256" || alg == "ES256" || alg == "ES384";
}

// HS256: the HMAC-SHA256 of `input` with the secret, compared in constant time.
bool HmacValid(const std::string& secret, absl::string_view input, absl::string_view signature) {
  unsigned char mac[EVP_MAX_MD_SIZE];
  unsigned int mac_len = 0;
  if (HMAC(EVP_sha256(), secret.data(), static_cast<int>(secret.size()),
           reinterpret_cast<const unsigned char*>(input.data()), input.size(), mac, &mac_len) == nullptr) {
    return false;
  }
  return signature.size() == mac_len && CRYPTO_memcmp(mac, signature.data(), mac_len) == 0;
}

// ES256/ES384 signatures are R || S (RFC 7518 3.4); OpenSSL verifies DER.
std::optional<std::string> EcdsaDer(absl::string_view raw, size_t half) {
  if (raw.size() != 2 * half) return std::nullopt;
  ECDSA_SIG* sig = ECDSA_SIG_new();
  BIGNUM* r = BN_bin2bn(reinterpret_cast<const unsigned char*>(raw.data()), static_cast<int>(half), nullptr);
  BIGNUM* s = BN_bin2bn(reinterpret_cast<const unsigned char*>(raw.data() + half), static_cast<int>(half), nullptr);
  std::optional<std::string> der;
  if (sig != nullptr && r != nullptr && s != nullptr && ECDSA_SIG_set0(sig, r, s) == 1) {
    r = s = nullptr;  // owned by sig now
    unsigned char* out = nullptr;
    const int len = i2d_ECDSA_SIG(sig, &out);
    if (len > 0) der = std::string(reinterpret_cast<char*>(out), static_cast<size_t>(len));
    OPENSSL_free(out);
  }
  BN_free(r);
  BN_free(s);
  ECDSA_SIG_free(sig);
  return der;
}

// RS256/ES256/ES384 with the PEM public key.
bool PublicKeySignatureValid(const SigningKey& key, absl::string_view input, absl::string_view signature) {
  std::string sig(signature);
  const EVP_MD* md = key.alg == "ES384" ? EVP_sha384() : EVP_sha256();
  if (key.alg != "RS256") {
    auto der = EcdsaDer(signature, key.alg == "ES384" ? 48 : 32);
    if (!der.has_value()) return false;
    sig = std::move(*der);
  }
  BIO* bio = BIO_new_mem_buf(key.material.data(), static_cast<int>(key.material.size()));
  EVP_PKEY* pkey = bio != nullptr ? PEM_read_bio_PUBKEY(bio, nullptr, nullptr, nullptr) : nullptr;
  EVP_MD_CTX* ctx = EVP_MD_CTX_new();
  const bool ok = pkey != nullptr && ctx != nullptr && EVP_DigestVerifyInit(ctx, nullptr, md, nullptr, pkey) == 1 &&
                  EVP_DigestVerify(ctx, reinterpret_cast<const unsigned char*>(sig.data()), sig.size(),
                                   reinterpret_cast<const unsigned char*>(input.data()), input.size()) == 1;
  EVP_MD_CTX_free(ctx);
  EVP_PKEY_free(pkey);
  BIO_free(bio);
  return ok;
}

bool SignatureValid(const SigningKey& key, absl::string_view input, absl::string_view signature) {
  if (key.alg == "HS256") return HmacValid(key.material, input, signature);
  return PublicKeySignatureValid(key, input, signature);
}

// Keys given once (a secret, a JWKS file): nothing to refresh.
class FixedKeys : public KeySource {
 public:
  explicit FixedKeys(KeySet keys) : keys_(std::make_shared<const KeySet>(std::move(keys))) {}
  std::shared_ptr<const KeySet> Current() const override { return keys_; }

 private:
  const std::shared_ptr<const KeySet> keys_;
};

// Why a token matched no key: none of `keys` is for its alg and kid, or the
// signature did not verify with those that are.
enum class KeyMatch { kNoKey, kBadSignature, kVerified };

// Whether a key of `keys` for the token's alg (and kid) signed `input`
// ("<header>.<payload>"). The header's typ is not checked: access tokens
// say "JWT", "at+jwt" (RFC 9068) or something else again.
KeyMatch CheckSignature(const KeySet& keys, absl::string_view input, absl::string_view signature, absl::string_view alg,
                        absl::string_view kid) {
  bool known_key = false;
  for (const SigningKey& key : keys) {
    if (key.alg != alg || (!kid.empty() && !key.kid.empty() && key.kid != kid)) continue;
    known_key = true;
    if (SignatureValid(key, input, signature)) return KeyMatch::kVerified;
  }
  return known_key ? KeyMatch::kBadSignature : KeyMatch::kNoKey;
}

// A numeric claim in whole seconds; nullopt if absent or not a number.
std::optional<int64_t> SecondsClaim(const rapidjson::Value& claims, const char* name) {
  auto it = claims.FindMember(name);
  if (it == claims.MemberEnd() || !it->value.IsNumber()) return std::nullopt;
  return static_cast<int64_t>(it->value.GetDouble());
}

}  // namespace

absl::StatusOr<TokenVerifier::Key> KeyFromJwk(absl::string_view jwk_json) {
  rapidjson::Document doc;
  doc.Parse(jwk_json.data(), jwk_json.size());
  if (doc.HasParseError() || !doc.IsObject()) return absl::InvalidArgumentError("JWK is not a JSON object");
  TokenVerifier::Key key;
  key.kid = StringMember(doc, "kid");
  const std::string kty = StringMember(doc, "kty");
  const std::string alg = StringMember(doc, "alg");
  OSSL_PARAM_BLD* bld = OSSL_PARAM_BLD_new();
  absl::StatusOr<std::string> pem = absl::InvalidArgumentError("unsupported JWK");
  if (kty == "RSA") {
    auto n = Base64UrlDecode(StringMember(doc, "n"));
    auto e = Base64UrlDecode(StringMember(doc, "e"));
    if (n.has_value() && e.has_value() && !n->empty() && !e->empty()) {
      BIGNUM* bn_n = BN_bin2bn(reinterpret_cast<const unsigned char*>(n->data()), static_cast<int>(n->size()), nullptr);
      BIGNUM* bn_e = BN_bin2bn(reinterpret_cast<const unsigned char*>(e->data()), static_cast<int>(e->size()), nullptr);
      OSSL_PARAM_BLD_push_BN(bld, OSSL_PKEY_PARAM_RSA_N, bn_n);
      OSSL_PARAM_BLD_push_BN(bld, OSSL_PKEY_PARAM_RSA_E, bn_e);
      pem = PemFromParams("RSA", bld);
      BN_free(bn_n);
      BN_free(bn_e);
    }
    key.alg = alg.empty() ? "RS256" : alg;
  } else if (kty == "EC") {
    const std::string crv = StringMember(doc, "crv");
    const size_t size = crv == "P-256" ? 32 : crv == "P-384" ? 48 : 0;
    auto x = Base64UrlDecode(StringMember(doc, "x"));
    auto y = Base64UrlDecode(StringMember(doc, "y"));
    if (size != 0 && x.has_value() && y.has_value() && x->size() == size && y->size() == size) {
      std::string point = absl::StrCat(std::string(1, '\x04'), *x, *y);
      OSSL_PARAM_BLD_push_utf8_string(bld, OSSL_PKEY_PARAM_GROUP_NAME, crv == "P-256" ? "P-256" : "P-384", 0);
      OSSL_PARAM_BLD_push_octet_string(bld, OSSL_PKEY_PARAM_PUB_KEY, point.data(), point.size());
      pem = PemFromParams("EC", bld);
    }
    key.alg = alg.empty() ? (size == 32 ? "ES256" : "ES384") : alg;
    if ((key.alg == "ES256" && size != 32) || (key.alg == "ES384" && size != 48)) {
      pem = absl::InvalidArgumentError("JWK alg does not match its curve");
    }
  }
  OSSL_PARAM_BLD_free(bld);
  if (!pem.ok()) return pem.status();
  if (!IsSupportedAlg(key.alg) || key.alg == "HS256") {
    return absl::InvalidArgumentError(absl::StrCat("unsupported JWK alg ", key.alg));
  }
  key.material = std::move(*pem);
  return key;
}

absl::StatusOr<std::unique_ptr<TokenVerifier>> TokenVerifier::FromHs256Secret(std::string secret,
                                                                              VerifierOptions options) {
  if (secret.size() < 32) return absl::InvalidArgumentError("HS256 secret must be at least 32 bytes");
  if (options.issuer.empty() || options.audience.empty()) {
    return absl::InvalidArgumentError("issuer and audience are required");
  }
  KeySet keys{SigningKey{"", "HS256", std::move(secret)}};
  return std::unique_ptr<TokenVerifier>(
      new TokenVerifier(std::make_shared<FixedKeys>(std::move(keys)), std::move(options)));
}

absl::StatusOr<std::unique_ptr<TokenVerifier>> TokenVerifier::FromJwks(absl::string_view jwks_json,
                                                                       VerifierOptions options) {
  if (options.issuer.empty() || options.audience.empty()) {
    return absl::InvalidArgumentError("issuer and audience are required");
  }
  absl::StatusOr<KeySet> keys = KeysFromJwks(jwks_json);
  if (!keys.ok()) return keys.status();
  return std::unique_ptr<TokenVerifier>(
      new TokenVerifier(std::make_shared<FixedKeys>(std::move(*keys)), std::move(options)));
}

absl::StatusOr<std::unique_ptr<TokenVerifier>> TokenVerifier::FromKeySource(std::shared_ptr<KeySource> source,
                                                                            VerifierOptions options) {
  if (options.issuer.empty() || options.audience.empty()) {
    return absl::InvalidArgumentError("issuer and audience are required");
  }
  if (source == nullptr) return absl::InvalidArgumentError("no key source");
  return std::unique_ptr<TokenVerifier>(new TokenVerifier(std::move(source), std::move(options)));
}

absl::StatusOr<KeySet> KeysFromJwks(absl::string_view jwks_json) {
  rapidjson::Document doc;
  doc.Parse(jwks_json.data(), jwks_json.size());
  if (doc.HasParseError() || !doc.IsObject() || !doc.HasMember("keys") || !doc["keys"].IsArray()) {
    return absl::InvalidArgumentError("JWKS must be a JSON object with a \"keys\" array");
  }
  KeySet keys;
  for (rapidjson::SizeType i = 0; i < doc["keys"].Size(); ++i) {
    const auto& jwk = doc["keys"][i];
    if (jwk.IsObject() && StringMember(jwk, "use") == "enc") continue;  // encryption keys do not sign
    rapidjson::StringBuffer buffer;
    rapidjson::Writer<rapidjson::StringBuffer> writer(buffer);
    jwk.Accept(writer);
    auto key = KeyFromJwk(absl::string_view(buffer.GetString(), buffer.GetSize()));
    if (!key.ok()) return absl::InvalidArgumentError(absl::StrCat("JWKS key ", i, ": ", key.status().message()));
    keys.push_back(std::move(*key));
  }
  if (keys.empty()) return absl::InvalidArgumentError("JWKS has no signing keys");
  return keys;
}

struct TokenVerifier::Cache {
  struct Entry {
    Principal principal;
    absl::Time expires;
    absl::Time not_before;
  };
  static constexpr size_t kMaxEntries = 10000;
  absl::Mutex mu;
  absl::flat_hash_map<std::string, Entry> entries ABSL_GUARDED_BY(mu);
};

TokenVerifier::TokenVerifier(std::shared_ptr<KeySource> keys, VerifierOptions options)
    : keys_(std::move(keys)), options_(std::move(options)), cache_(std::make_unique<Cache>()) {}

TokenVerifier::~TokenVerifier() = default;

absl::StatusOr<Principal> TokenVerifier::Verify(absl::string_view token) const {
  const absl::Time now = options_.clock();
  {
    absl::MutexLock lock(&cache_->mu);
    auto it = cache_->entries.find(token);
    if (it != cache_->entries.end()) {
      if (it->second.expires + options_.clock_skew < now) {
        cache_->entries.erase(it);
        return Unauthenticated("token expired");
      }
      if (it->second.not_before - options_.clock_skew <= now) return it->second.principal;
    }
  }
  absl::Time expires, not_before;
  auto principal = VerifyUncached(token, &expires, &not_before);
  if (principal.ok()) {
    absl::MutexLock lock(&cache_->mu);
    if (cache_->entries.size() >= Cache::kMaxEntries) cache_->entries.clear();
    cache_->entries.emplace(std::string(token), Cache::Entry{*principal, expires, not_before});
  }
  return principal;
}

absl::StatusOr<Principal> TokenVerifier::VerifyUncached(absl::string_view token, absl::Time* expires,
                                                        absl::Time* not_before) const {
  if (token.empty() || token.size() > 16 * 1024) return Unauthenticated("missing or oversized bearer token");
  std::vector<absl::string_view> parts = absl::StrSplit(token, '.');
  if (parts.size() != 3 || parts[2].empty()) return Unauthenticated("malformed token");
  auto header_json = Base64UrlDecode(parts[0]);
  if (!header_json.has_value()) return Unauthenticated("malformed token header");
  rapidjson::Document header;
  header.Parse(header_json->data(), header_json->size());
  if (header.HasParseError() || !header.IsObject()) return Unauthenticated("malformed token header");
  const std::string alg = StringMember(header, "alg");
  const std::string kid = StringMember(header, "kid");
  if (!IsSupportedAlg(alg)) return Unauthenticated("unsupported token algorithm");

  const absl::string_view input(token.data(), parts[0].size() + 1 + parts[1].size());
  auto signature = Base64UrlDecode(parts[2]);
  if (!signature.has_value()) return Unauthenticated("malformed token signature");
  KeyMatch match = CheckSignature(*keys_->Current(), input, *signature, alg, kid);
  if (match == KeyMatch::kNoKey && !kid.empty()) {
    // Perhaps the authorization server rotated its keys since we last looked.
    if (std::shared_ptr<const KeySet> fresh = keys_->RefreshForUnknownKid(kid); fresh != nullptr) {
      match = CheckSignature(*fresh, input, *signature, alg, kid);
    }
  }
  if (match == KeyMatch::kNoKey) return Unauthenticated("no key for the token's algorithm or key id");
  if (match == KeyMatch::kBadSignature) return Unauthenticated("token signature is not valid");

  auto payload_json = Base64UrlDecode(parts[1]);
  rapidjson::Document claims;
  if (payload_json.has_value()) claims.Parse(payload_json->data(), payload_json->size());
  if (!payload_json.has_value() || claims.HasParseError() || !claims.IsObject()) {
    return Unauthenticated("malformed token claims");
  }
  const absl::Time now = options_.clock();
  const std::optional<int64_t> exp = SecondsClaim(claims, "exp");
  if (!exp.has_value() || *exp <= 0) return Unauthenticated("token has no exp");
  if (absl::FromUnixSeconds(*exp) + options_.clock_skew < now) return Unauthenticated("token expired");
  *expires = absl::FromUnixSeconds(*exp);
  *not_before = absl::InfinitePast();
  if (const std::optional<int64_t> nbf = SecondsClaim(claims, "nbf"); nbf.has_value() && *nbf > 0) {
    if (absl::FromUnixSeconds(*nbf) - options_.clock_skew > now) return Unauthenticated("token not yet valid");
    *not_before = absl::FromUnixSeconds(*nbf);
  }
  const std::string iss = StringMember(claims, "iss");
  if (iss.empty() || options_.issuer != iss) return Unauthenticated("token issuer is not trusted");
  bool audience_ok = false;
  if (auto aud = claims.FindMember("aud"); aud != claims.MemberEnd()) {
    if (aud->value.IsString()) {
      audience_ok = options_.audience == aud->value.GetString();
    } else if (aud->value.IsArray()) {
      for (const auto& a : aud->value.GetArray()) {
        if (a.IsString() && options_.audience == a.GetString()) audience_ok = true;
      }
    }
  }
  if (!audience_ok) return Unauthenticated("token audience does not include this service");

  Principal principal;
  principal.issuer = iss;
  principal.subject = StringMember(claims, "sub");
  principal.client_id = StringMember(claims, "client_id");
  principal.fhir_user = StringMember(claims, "fhirUser");
  if (std::string patient = StringMember(claims, "patient"); !patient.empty()) principal.patient = patient;
  std::string scope = StringMember(claims, "scope");
  if (scope.empty()) scope = StringMember(claims, "scp");
  principal.scopes = ParseScopes(scope);
  principal.admin = HasScope(scope, kAdminScope);
  principal.expires = *expires + options_.clock_skew;
  return principal;
}

}  // namespace wmty::auth
