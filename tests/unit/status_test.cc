// The one absl::Status <-> gRPC status mapping (services/common/status.h).
#include "common/status.h"

#include <string>

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "google/rpc/status.pb.h"
#include "support/test_support.h"

namespace wmty {
namespace {

using ::testing::ElementsAre;
using ::testing::Pair;
using ::wmty::testing::ViolatedFields;

std::vector<std::pair<std::string, std::string>> Violations(const absl::Status& s) {
  std::vector<std::pair<std::string, std::string>> out;
  const google::rpc::BadRequest bad = GetFieldViolations(s);
  for (const auto& v : bad.field_violations()) out.emplace_back(v.field(), v.description());
  return out;
}

absl::Status TwoViolations() {
  FieldViolations v;
  v.Add("goal.description", "must not be blank");
  v.Add("goal.notes[0].text", "not valid UTF-8");
  return v.ToStatus();
}

TEST(FieldViolationsTest, EmptyIsOk) {
  FieldViolations v;
  EXPECT_TRUE(v.empty());
  EXPECT_TRUE(v.ToStatus().ok());
}

TEST(FieldViolationsTest, ToStatusIsInvalidArgumentWithEveryViolation) {
  absl::Status s = TwoViolations();
  EXPECT_EQ(s.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(s.message(), "goal.description: must not be blank (and 1 more)");
  EXPECT_THAT(Violations(s), ElementsAre(Pair("goal.description", "must not be blank"),
                                         Pair("goal.notes[0].text", "not valid UTF-8")));
}

TEST(FieldViolationsTest, InvalidFieldHasOneViolation) {
  absl::Status s = InvalidField("page_size", "at most 1000");
  EXPECT_EQ(s.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(s.message(), "page_size: at most 1000");
  EXPECT_THAT(ViolatedFields(s), ElementsAre("page_size"));
}

TEST(FieldViolationsTest, StatusWithoutPayloadHasNoViolations) {
  EXPECT_TRUE(GetFieldViolations(absl::NotFoundError("x")).field_violations().empty());
  EXPECT_TRUE(GetFieldViolations(absl::OkStatus()).field_violations().empty());
}

TEST(GrpcStatusTest, RoundTripKeepsCodeMessageAndFieldViolations) {
  const absl::Status original = TwoViolations();
  const grpc::Status wire = ToGrpcStatus(original);
  EXPECT_EQ(wire.error_code(), grpc::StatusCode::INVALID_ARGUMENT);
  EXPECT_EQ(wire.error_message(), original.message());

  const absl::Status back = FromGrpcStatus(wire);
  EXPECT_EQ(back.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(back.message(), original.message());
  EXPECT_THAT(Violations(back), ElementsAre(Pair("goal.description", "must not be blank"),
                                            Pair("goal.notes[0].text", "not valid UTF-8")));
}

TEST(GrpcStatusTest, DetailsAreAStandardGoogleRpcStatusWithABadRequest) {
  // Other gRPC clients read grpc-status-details-bin as google.rpc.Status.
  const grpc::Status wire = ToGrpcStatus(TwoViolations());
  google::rpc::Status details;
  ASSERT_TRUE(details.ParseFromString(wire.error_details()));
  EXPECT_EQ(details.code(), static_cast<int>(grpc::StatusCode::INVALID_ARGUMENT));
  EXPECT_EQ(details.message(), wire.error_message());
  ASSERT_EQ(details.details_size(), 1);
  EXPECT_EQ(details.details(0).type_url(), "type.googleapis.com/google.rpc.BadRequest");
  google::rpc::BadRequest bad;
  ASSERT_TRUE(details.details(0).UnpackTo(&bad));
  ASSERT_EQ(bad.field_violations_size(), 2);
  EXPECT_EQ(bad.field_violations(1).field(), "goal.notes[0].text");
}

TEST(GrpcStatusTest, EveryCodeMapsToTheSameGrpcCodeAndBack) {
  for (int code = 1; code <= 16; ++code) {
    const absl::Status s(static_cast<absl::StatusCode>(code), "message " + std::to_string(code));
    const grpc::Status wire = ToGrpcStatus(s);
    EXPECT_EQ(static_cast<int>(wire.error_code()), code);
    EXPECT_TRUE(wire.error_details().empty()) << "no violations, no details";
    const absl::Status back = FromGrpcStatus(wire);
    EXPECT_EQ(back, s) << code;
  }
}

TEST(GrpcStatusTest, RetryInfoTravelsAsAStandardDetailAndBack) {
  const absl::Status original = WithRetryDelay(absl::ResourceExhaustedError("overloaded"), absl::Milliseconds(1500));
  EXPECT_EQ(RetryDelayOf(original), absl::Milliseconds(1500));
  const grpc::Status wire = ToGrpcStatus(original);
  EXPECT_EQ(wire.error_code(), grpc::StatusCode::RESOURCE_EXHAUSTED);
  google::rpc::Status details;
  ASSERT_TRUE(details.ParseFromString(wire.error_details()));
  ASSERT_EQ(details.details_size(), 1);
  EXPECT_EQ(details.details(0).type_url(), "type.googleapis.com/google.rpc.RetryInfo");
  google::rpc::RetryInfo info;
  ASSERT_TRUE(details.details(0).UnpackTo(&info));
  EXPECT_EQ(info.retry_delay().seconds(), 1);
  EXPECT_EQ(info.retry_delay().nanos(), 500000000);
  const absl::Status back = FromGrpcStatus(wire);
  EXPECT_EQ(back.code(), absl::StatusCode::kResourceExhausted);
  EXPECT_EQ(RetryDelayOf(back), absl::Milliseconds(1500));
  EXPECT_EQ(RetryDelayOf(absl::ResourceExhaustedError("no detail")), std::nullopt);
}

TEST(GrpcStatusTest, FieldViolationsAndRetryInfoTogether) {
  const absl::Status both = WithRetryDelay(TwoViolations(), absl::Seconds(2));
  const absl::Status back = FromGrpcStatus(ToGrpcStatus(both));
  EXPECT_THAT(ViolatedFields(back), ElementsAre("goal.description", "goal.notes[0].text"));
  EXPECT_EQ(RetryDelayOf(back), absl::Seconds(2));
}

TEST(GrpcStatusTest, OkRoundTrips) {
  EXPECT_TRUE(ToGrpcStatus(absl::OkStatus()).ok());
  EXPECT_TRUE(FromGrpcStatus(grpc::Status::OK).ok());
}

TEST(GrpcStatusTest, GarbageDetailsAreIgnored) {
  const grpc::Status wire(grpc::StatusCode::INVALID_ARGUMENT, "bad", "\xff\xff not a proto");
  const absl::Status back = FromGrpcStatus(wire);
  EXPECT_EQ(back.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(back.message(), "bad");
  EXPECT_TRUE(Violations(back).empty());
}

}  // namespace
}  // namespace wmty
