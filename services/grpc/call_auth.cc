#include "grpc/call_auth.h"

#include <iterator>

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"

namespace wmty::grpc_api {

absl::StatusOr<auth::Principal> AuthenticateCall(const grpc::CallbackServerContext& ctx,
                                                 const auth::TokenVerifier& verifier) {
  const auto& metadata = ctx.client_metadata();
  const auto range = metadata.equal_range("authorization");
  if (range.first == range.second) return absl::UnauthenticatedError("missing bearer token");
  if (std::next(range.first) != range.second) return absl::UnauthenticatedError("more than one authorization header");
  const absl::string_view value(range.first->second.data(), range.first->second.size());
  constexpr absl::string_view kScheme = "bearer ";
  if (value.size() <= kScheme.size() || !absl::EqualsIgnoreCase(value.substr(0, kScheme.size()), kScheme)) {
    return absl::UnauthenticatedError("authorization must be a Bearer token");
  }
  auto principal = verifier.Verify(absl::StripAsciiWhitespace(value.substr(kScheme.size())));
  if (!principal.ok() && principal.status().code() != absl::StatusCode::kUnauthenticated) {
    return absl::UnauthenticatedError("invalid bearer token");
  }
  return principal;
}

}  // namespace wmty::grpc_api
