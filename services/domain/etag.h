// The etag of a stored version, the one format both faces use: W/"<version>"
// (a weak validator, FHIR's ETag and the gRPC resources' `etag` field), and
// its one parse.
//
// Thread safety: pure functions.
#ifndef WMTY_DOMAIN_ETAG_H_
#define WMTY_DOMAIN_ETAG_H_

#include <cstdint>
#include <optional>
#include <string>

#include "absl/strings/string_view.h"

namespace wmty::domain {

// W/"<version>", e.g. W/"3".
std::string EtagOf(int64_t version);

// The version an etag names. Also takes the forms HTTP clients send: "3"
// (strong) and W/3, with surrounding whitespace. nullopt when malformed, not
// positive, or longer than 18 digits.
std::optional<int64_t> ParseEtagVersion(absl::string_view etag);

}  // namespace wmty::domain

#endif  // WMTY_DOMAIN_ETAG_H_
