// What every raw call of the gRPC face shares: request parsing, and
// Bearer-token authentication of one gRPC call, shared by every service of
// the gRPC face (wmty.v1 and wmty.admin.v1), so the header rules are the same
// everywhere: exactly one `authorization` metadata entry, scheme "Bearer"
// (any case), a token the verifier accepts.
//
// Errors: UNAUTHENTICATED with a short reason that never echoes the token.
// Thread safety: safe to call concurrently.
#ifndef WMTY_GRPC_CALL_AUTH_H_
#define WMTY_GRPC_CALL_AUTH_H_

#include <google/protobuf/message.h>
#include <grpcpp/grpcpp.h>

#include "absl/status/statusor.h"
#include "auth/scopes.h"
#include "auth/token_verifier.h"

namespace wmty::grpc_api {

absl::StatusOr<auth::Principal> AuthenticateCall(const grpc::CallbackServerContext& ctx,
                                                 const auth::TokenVerifier& verifier);

// Parses the request bytes of a raw callback method into `request`.
// INVALID_ARGUMENT naming the field when a string is not valid UTF-8 (so the
// caller learns which), else a short reason; never echoes the bytes.
absl::Status ParseRawRequest(const grpc::ByteBuffer& in, google::protobuf::Message* request);

}  // namespace wmty::grpc_api

#endif  // WMTY_GRPC_CALL_AUTH_H_
