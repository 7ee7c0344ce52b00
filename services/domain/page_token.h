// Opaque, tamper-evident page tokens (AIP-158).
//
// A token is base64url(cursor || HMAC-SHA256(key, cursor)[0:16]), where the
// cursor records the position (last id or version returned) and a hash of the
// query it belongs to. A token that was altered, forged, truncated or used
// with a different query is refused with INVALID_ARGUMENT. Tokens carry no
// patient text and stay valid across restarts (the key lives in the store).
//
// Thread safety: immutable after construction; safe to share.
#ifndef WMTY_DOMAIN_PAGE_TOKEN_H_
#define WMTY_DOMAIN_PAGE_TOKEN_H_

#include <string>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "wmty/storage/record.pb.h"

namespace wmty::domain {

class PageTokenCodec {
 public:
  explicit PageTokenCodec(std::string key) : key_(std::move(key)) {}

  std::string Encode(const storage::PageCursor& cursor) const;
  // Verifies and decodes `token` for the query identified by `query_hash`.
  // INVALID_ARGUMENT naming `field` on any mismatch.
  absl::StatusOr<storage::PageCursor> Decode(absl::string_view token, absl::string_view query_hash,
                                             absl::string_view field) const;

 private:
  std::string Mac(absl::string_view data) const;
  std::string key_;
};

// SHA-256 of `data` (raw 32 bytes), used for query hashes and request fingerprints.
std::string Sha256(absl::string_view data);

}  // namespace wmty::domain

#endif  // WMTY_DOMAIN_PAGE_TOKEN_H_
