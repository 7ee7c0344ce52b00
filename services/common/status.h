// Errors carried as absl::Status throughout wmty, with field violations
// attached as a google.rpc.BadRequest payload, and their one mapping to and
// from gRPC status (codes are identical; details travel in
// grpc-status-details-bin as a google.rpc.Status).
//
// Thread safety: all functions are pure.
#ifndef WMTY_COMMON_STATUS_H_
#define WMTY_COMMON_STATUS_H_

#include <optional>
#include <string>
#include <utility>
#include <vector>

#include <grpcpp/support/status.h>

#include "absl/status/status.h"
#include "absl/strings/string_view.h"
#include "absl/time/time.h"
#include "google/rpc/error_details.pb.h"

namespace wmty {

// Type URL under which a BadRequest is attached to an absl::Status.
inline constexpr absl::string_view kBadRequestTypeUrl = "type.googleapis.com/google.rpc.BadRequest";
// Type URL under which a RetryInfo (retry after how long) is attached.
inline constexpr absl::string_view kRetryInfoTypeUrl = "type.googleapis.com/google.rpc.RetryInfo";
// Type URL under which an ErrorInfo (a machine-readable reason with metadata,
// e.g. where to resume a change feed) is attached.
inline constexpr absl::string_view kErrorInfoTypeUrl = "type.googleapis.com/google.rpc.ErrorInfo";

// Collects field violations while validating one request.
class FieldViolations {
 public:
  void Add(std::string field, std::string description);
  bool empty() const { return violations_.field_violations().empty(); }
  const google::rpc::BadRequest& proto() const { return violations_; }
  // INVALID_ARGUMENT naming every violation (message: the first one, and a
  // count), or OK when there are none.
  absl::Status ToStatus() const;

 private:
  google::rpc::BadRequest violations_;
};

// INVALID_ARGUMENT with a single field violation.
absl::Status InvalidField(std::string field, std::string description);

// The field violations attached to `status` (empty if none).
google::rpc::BadRequest GetFieldViolations(const absl::Status& status);

// `status` with a google.rpc.RetryInfo saying: retry after `delay`.
absl::Status WithRetryDelay(absl::Status status, absl::Duration delay);
// The retry delay attached to `status`, if any.
std::optional<absl::Duration> RetryDelayOf(const absl::Status& status);

// `status` with a google.rpc.ErrorInfo of `reason` (UPPER_SNAKE_CASE), the
// domain "wmty.dev" and `metadata`.
absl::Status WithErrorInfo(absl::Status status, absl::string_view reason,
                           std::vector<std::pair<std::string, std::string>> metadata);
// The ErrorInfo attached to `status`, if any.
std::optional<google::rpc::ErrorInfo> ErrorInfoOf(const absl::Status& status);

// absl -> gRPC (with details: BadRequest, RetryInfo, ErrorInfo) and back.
grpc::Status ToGrpcStatus(const absl::Status& status);
absl::Status FromGrpcStatus(const grpc::Status& status);

}  // namespace wmty

#endif  // WMTY_COMMON_STATUS_H_
