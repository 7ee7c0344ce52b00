// The generic write vocabulary (resources.h): resource kinds and the typed
// "already exists" error.
#include "domain/resources.h"

#include <type_traits>

#include "absl/strings/cord.h"
#include "google/rpc/error_details.pb.h"

namespace wmty::domain {
namespace {

constexpr absl::string_view kErrorInfoTypeUrl = "type.googleapis.com/google.rpc.ErrorInfo";
constexpr absl::string_view kResourceExistsReason = "RESOURCE_EXISTS";
constexpr absl::string_view kErrorDomain = "wmty.health";

}  // namespace

storage::Kind KindOf(const AnyResource& r) {
  return std::visit(
      [](const auto& resource) {
        using R = std::decay_t<decltype(resource)>;
        if constexpr (std::is_same_v<R, v1::WhatMatters>) return storage::WHAT_MATTERS;
        if constexpr (std::is_same_v<R, v1::Goal>) return storage::GOAL;
        if constexpr (std::is_same_v<R, v1::Preference>) return storage::PREFERENCE;
        if constexpr (std::is_same_v<R, v1::GoalScore>) return storage::GOAL_SCORE;
        if constexpr (std::is_same_v<R, v1::Priorities>) return storage::PRIORITIES;
      },
      r);
}

absl::Status ResourceExistsError(absl::string_view message) {
  absl::Status status = absl::AlreadyExistsError(message);
  google::rpc::ErrorInfo info;
  info.set_reason(std::string(kResourceExistsReason));
  info.set_domain(std::string(kErrorDomain));
  status.SetPayload(kErrorInfoTypeUrl, absl::Cord(info.SerializeAsString()));
  return status;
}

bool IsResourceExists(const absl::Status& status) {
  if (status.code() != absl::StatusCode::kAlreadyExists) return false;
  auto payload = status.GetPayload(kErrorInfoTypeUrl);
  if (!payload.has_value()) return false;
  google::rpc::ErrorInfo info;
  return info.ParseFromString(std::string(*payload)) && info.reason() == kResourceExistsReason &&
         info.domain() == kErrorDomain;
}

}  // namespace wmty::domain
