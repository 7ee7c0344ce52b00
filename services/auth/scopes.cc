#include "auth/scopes.h"

#include "absl/strings/str_split.h"

namespace wmty::auth {
namespace {

bool IsResourceTypeName(absl::string_view type) {
  if (type == "*") return true;
  if (type.empty() || type.size() > 64 || type[0] < 'A' || type[0] > 'Z') return false;
  for (char c : type) {
    if (!((c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z'))) return false;
  }
  return true;
}

// v2 letters in c-r-u-d-s order, each at most once.
std::optional<uint8_t> ParseV2(absl::string_view letters) {
  static constexpr struct {
    char letter;
    Permission bit;
  } kOrder[] = {{'c', kCreate}, {'r', kRead}, {'u', kUpdate}, {'d', kDelete}, {'s', kSearch}};
  uint8_t bits = 0;
  size_t next = 0;
  for (char c : letters) {
    while (next < 5 && kOrder[next].letter != c) ++next;
    if (next == 5) return std::nullopt;
    bits |= kOrder[next].bit;
    ++next;
  }
  return letters.empty() ? std::nullopt : std::optional<uint8_t>(bits);
}

}  // namespace

absl::StatusOr<Scope> ParseScope(absl::string_view text) {
  Scope scope;
  const size_t slash = text.find('/');
  if (slash == absl::string_view::npos) return absl::InvalidArgumentError("not a resource scope");
  const absl::string_view context = text.substr(0, slash);
  if (context == "patient") {
    scope.context = ScopeContext::kPatient;
  } else if (context == "user") {
    scope.context = ScopeContext::kUser;
  } else if (context == "system") {
    scope.context = ScopeContext::kSystem;
  } else {
    return absl::InvalidArgumentError("unknown scope context");
  }
  absl::string_view rest = text.substr(slash + 1);
  if (const size_t q = rest.find('?'); q != absl::string_view::npos) {
    scope.has_filter = true;
    rest = rest.substr(0, q);
  }
  const size_t dot = rest.find('.');
  if (dot == absl::string_view::npos) return absl::InvalidArgumentError("scope has no permissions");
  const absl::string_view type = rest.substr(0, dot);
  const absl::string_view perms = rest.substr(dot + 1);
  if (!IsResourceTypeName(type)) return absl::InvalidArgumentError("bad resource type in scope");
  scope.resource_type = std::string(type);
  if (perms == "read") {
    scope.permissions = kRead | kSearch;
  } else if (perms == "write") {
    scope.permissions = kCreate | kUpdate | kDelete;
  } else if (perms == "*") {
    scope.permissions = kCreate | kRead | kUpdate | kDelete | kSearch;
  } else if (auto bits = ParseV2(perms); bits.has_value()) {
    scope.permissions = *bits;
  } else {
    return absl::InvalidArgumentError("bad scope permissions");
  }
  return scope;
}

std::vector<Scope> ParseScopes(absl::string_view scopes) {
  std::vector<Scope> out;
  for (absl::string_view s : absl::StrSplit(scopes, ' ', absl::SkipEmpty())) {
    auto parsed = ParseScope(s);
    if (parsed.ok()) out.push_back(std::move(*parsed));
  }
  return out;
}

bool HasScope(absl::string_view scopes, absl::string_view scope) {
  for (absl::string_view s : absl::StrSplit(scopes, ' ', absl::SkipEmpty())) {
    if (s == scope) return true;
  }
  return false;
}

Decision Authorize(const Principal& principal, absl::string_view resource_type, Permission permission,
                   absl::string_view patient_id) {
  bool patient_scope_elsewhere = false;
  for (const Scope& scope : principal.scopes) {
    if (scope.has_filter) continue;
    if (scope.resource_type != "*" && scope.resource_type != resource_type) continue;
    if ((scope.permissions & permission) == 0) continue;
    if (scope.context != ScopeContext::kPatient) return Decision::kAllow;
    if (principal.patient.has_value() && !patient_id.empty() && *principal.patient == patient_id) {
      return Decision::kAllow;
    }
    patient_scope_elsewhere = true;
  }
  return patient_scope_elsewhere ? Decision::kOtherPatient : Decision::kInsufficientScope;
}

}  // namespace wmty::auth
