#include "grpc/call_auth.h"

#include <iterator>

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "common/status.h"
#include "common/text.h"

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

absl::Status ParseRawRequest(const grpc::ByteBuffer& in, google::protobuf::Message* request) {
  grpc::Slice slice;
  if (!in.DumpToSingleSlice(&slice).ok()) return absl::InvalidArgumentError("request could not be read");
  const char* data = reinterpret_cast<const char*>(slice.begin());
  if (request->ParseFromArray(data, static_cast<int>(slice.size()))) return absl::OkStatus();
  auto field = FindInvalidUtf8Field(*request->GetDescriptor(), absl::string_view(data, slice.size()));
  if (field.has_value()) return InvalidField(*field, "not valid UTF-8");
  return absl::InvalidArgumentError("request is not a valid protobuf message");
}

}  // namespace wmty::grpc_api
