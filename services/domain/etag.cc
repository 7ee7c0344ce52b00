// Etag format and parse (see etag.h).
#include "domain/etag.h"

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"

namespace wmty::domain {

std::string EtagOf(int64_t version) { return absl::StrCat("W/\"", version, "\""); }

std::optional<int64_t> ParseEtagVersion(absl::string_view etag) {
  absl::string_view v = absl::StripAsciiWhitespace(etag);
  if (absl::StartsWith(v, "W/") || absl::StartsWith(v, "w/")) v.remove_prefix(2);
  if (v.size() >= 2 && v.front() == '"' && v.back() == '"') v = v.substr(1, v.size() - 2);
  if (v.empty() || v.size() > 18) return std::nullopt;
  for (char c : v) {
    if (c < '0' || c > '9') return std::nullopt;
  }
  int64_t version = 0;
  if (!absl::SimpleAtoi(v, &version) || version < 1) return std::nullopt;
  return version;
}

}  // namespace wmty::domain
