#include "domain/page_token.h"

#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <openssl/sha.h>

#include "absl/strings/escaping.h"
#include "common/status.h"

namespace wmty::domain {
namespace {
constexpr size_t kMacBytes = 16;
}

std::string Sha256(absl::string_view data) {
  unsigned char digest[SHA256_DIGEST_LENGTH];
  SHA256(reinterpret_cast<const unsigned char*>(data.data()), data.size(), digest);
  return std::string(reinterpret_cast<const char*>(digest), sizeof(digest));
}

std::string PageTokenCodec::Mac(absl::string_view data) const {
  unsigned char mac[EVP_MAX_MD_SIZE];
  unsigned int len = 0;
  HMAC(EVP_sha256(), key_.data(), static_cast<int>(key_.size()), reinterpret_cast<const unsigned char*>(data.data()),
       data.size(), mac, &len);
  return std::string(reinterpret_cast<const char*>(mac), kMacBytes);
}

std::string PageTokenCodec::Encode(const storage::PageCursor& cursor) const {
  std::string bytes = cursor.SerializeAsString();
  bytes += Mac(bytes);
  return absl::WebSafeBase64Escape(bytes);
}

absl::StatusOr<storage::PageCursor> PageTokenCodec::Decode(absl::string_view token, absl::string_view query_hash,
                                                           absl::string_view field) const {
  std::string bytes;
  if (token.size() > 4096 || !absl::WebSafeBase64Unescape(token, &bytes) || bytes.size() < kMacBytes) {
    return InvalidField(std::string(field), "not a page token issued by this service");
  }
  absl::string_view body(bytes.data(), bytes.size() - kMacBytes);
  std::string expected = Mac(body);
  if (CRYPTO_memcmp(expected.data(), bytes.data() + body.size(), kMacBytes) != 0) {
    return InvalidField(std::string(field), "not a page token issued by this service");
  }
  storage::PageCursor cursor;
  if (!cursor.ParseFromArray(body.data(), static_cast<int>(body.size()))) {
    return InvalidField(std::string(field), "not a page token issued by this service");
  }
  if (cursor.query_hash() != query_hash) {
    return InvalidField(std::string(field), "page token belongs to a different query");
  }
  return cursor;
}

}  // namespace wmty::domain
