// Helpers for the integration tests (grpc_api_test, restart_test, crash_test):
// calls with hand-built request bytes, the standard health and reflection
// services without their generated code (Debian ships neither proto), log
// inspection and proto comparison.
//
// Thread safety: every function is safe to call from any thread.
#ifndef WMTY_TESTS_INTEGRATION_INTEGRATION_UTIL_H_
#define WMTY_TESTS_INTEGRATION_INTEGRATION_UTIL_H_

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include <gmock/gmock.h>
#include <google/protobuf/message.h>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/time/time.h"

namespace wmty::testing {

// One unary call with `request` sent as is (no client-side serialization), so
// the server's own parser sees exactly these bytes. `method` is the full path,
// e.g. "/wmty.v1.WhatMattersService/CreateGoal". The status carries the
// server's details (field violations) as absl::Status.
struct RawResult {
  absl::Status status;
  std::string response;
};
RawResult RawUnaryCall(const std::string& target, const std::string& method, const std::string& request,
                       absl::Duration timeout = absl::Seconds(10));

// `wire` with the single occurrence of `marker` replaced by `replacement` of
// the same length (so every length prefix stays valid). Aborts the test
// binary if the marker is missing, repeated, or the lengths differ.
std::string ReplaceMarker(std::string wire, absl::string_view marker, absl::string_view replacement);

// grpc.health.v1.Health/Check for `service` ("" = the whole server). Returns
// the ServingStatus number (1 = SERVING, 2 = NOT_SERVING).
absl::StatusOr<int> HealthCheck(const std::string& target, const std::string& service = "");

// grpc.reflection.v1alpha.ServerReflection: the list_services answer.
absl::StatusOr<std::vector<std::string>> ReflectionListServices(const std::string& target);

// The whole file ("" if it cannot be read).
std::string ReadFile(const std::string& path);

// The last_sequence field of the last log line with message `msg` (e.g.
// "serving", "stopped"), or nullopt.
std::optional<uint64_t> LoggedLastSequence(const std::string& log, absl::string_view msg);

// Deterministic wire bytes of a message, for comparisons and hashing.
std::string Bytes(const google::protobuf::Message& m);

// Matches a message whose deterministic serialization equals `expected`'s.
MATCHER_P(EqualsProto, expected, "") {
  if (::wmty::testing::Bytes(arg) == ::wmty::testing::Bytes(expected)) return true;
  *result_listener << "\n  actual:   " << arg.ShortDebugString() << "\n  expected: " << expected.ShortDebugString();
  return false;
}

}  // namespace wmty::testing

#endif  // WMTY_TESTS_INTEGRATION_INTEGRATION_UTIL_H_
