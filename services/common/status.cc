#include "common/status.h"

#include "absl/strings/cord.h"
#include "absl/strings/str_cat.h"
#include "google/rpc/status.pb.h"

namespace wmty {

void FieldViolations::Add(std::string field, std::string description) {
  auto* v = violations_.add_field_violations();
  v->set_field(std::move(field));
  v->set_description(std::move(description));
}

absl::Status FieldViolations::ToStatus() const {
  if (empty()) return absl::OkStatus();
  const auto& first = violations_.field_violations(0);
  std::string message = absl::StrCat(first.field(), ": ", first.description());
  if (violations_.field_violations_size() > 1) {
    absl::StrAppend(&message, " (and ", violations_.field_violations_size() - 1, " more)");
  }
  absl::Status status(absl::StatusCode::kInvalidArgument, message);
  status.SetPayload(kBadRequestTypeUrl, absl::Cord(violations_.SerializeAsString()));
  return status;
}

absl::Status InvalidField(std::string field, std::string description) {
  FieldViolations v;
  v.Add(std::move(field), std::move(description));
  return v.ToStatus();
}

google::rpc::BadRequest GetFieldViolations(const absl::Status& status) {
  google::rpc::BadRequest out;
  auto payload = status.GetPayload(kBadRequestTypeUrl);
  if (payload.has_value()) out.ParseFromString(std::string(*payload));
  return out;
}

absl::Status WithRetryDelay(absl::Status status, absl::Duration delay) {
  google::rpc::RetryInfo info;
  const int64_t nanos = absl::ToInt64Nanoseconds(delay);
  info.mutable_retry_delay()->set_seconds(nanos / 1'000'000'000);
  info.mutable_retry_delay()->set_nanos(static_cast<int32_t>(nanos % 1'000'000'000));
  status.SetPayload(kRetryInfoTypeUrl, absl::Cord(info.SerializeAsString()));
  return status;
}

std::optional<absl::Duration> RetryDelayOf(const absl::Status& status) {
  auto payload = status.GetPayload(kRetryInfoTypeUrl);
  google::rpc::RetryInfo info;
  if (!payload.has_value() || !info.ParseFromString(std::string(*payload))) return std::nullopt;
  return absl::Seconds(info.retry_delay().seconds()) + absl::Nanoseconds(info.retry_delay().nanos());
}

absl::Status WithErrorInfo(absl::Status status, absl::string_view reason,
                           std::vector<std::pair<std::string, std::string>> metadata) {
  google::rpc::ErrorInfo info;
  info.set_reason(std::string(reason));
  info.set_domain("wmty.dev");
  for (auto& [key, value] : metadata) (*info.mutable_metadata())[key] = std::move(value);
  status.SetPayload(kErrorInfoTypeUrl, absl::Cord(info.SerializeAsString()));
  return status;
}

std::optional<google::rpc::ErrorInfo> ErrorInfoOf(const absl::Status& status) {
  auto payload = status.GetPayload(kErrorInfoTypeUrl);
  google::rpc::ErrorInfo info;
  if (!payload.has_value() || !info.ParseFromString(std::string(*payload))) return std::nullopt;
  return info;
}

grpc::Status ToGrpcStatus(const absl::Status& status) {
  if (status.ok()) return grpc::Status::OK;
  const auto code = static_cast<grpc::StatusCode>(status.code());
  const std::string message(status.message());
  google::rpc::Status details;
  for (absl::string_view type_url : {kBadRequestTypeUrl, kRetryInfoTypeUrl, kErrorInfoTypeUrl}) {
    auto payload = status.GetPayload(type_url);
    if (!payload.has_value()) continue;
    auto* any = details.add_details();
    any->set_type_url(std::string(type_url));
    any->set_value(std::string(*payload));
  }
  if (details.details().empty()) return grpc::Status(code, message);
  details.set_code(static_cast<int>(status.code()));
  details.set_message(message);
  return grpc::Status(code, message, details.SerializeAsString());
}

absl::Status FromGrpcStatus(const grpc::Status& status) {
  if (status.ok()) return absl::OkStatus();
  absl::Status out(static_cast<absl::StatusCode>(status.error_code()), status.error_message());
  google::rpc::Status details;
  if (!status.error_details().empty() && details.ParseFromString(status.error_details())) {
    for (const auto& any : details.details()) {
      if (any.type_url() == kBadRequestTypeUrl || any.type_url() == kRetryInfoTypeUrl ||
          any.type_url() == kErrorInfoTypeUrl) {
        out.SetPayload(any.type_url(), absl::Cord(any.value()));
      }
    }
  }
  return out;
}

}  // namespace wmty
