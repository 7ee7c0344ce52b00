// HTTP-level helpers of the FHIR face (services/fhir/rest.h): pure functions.
#include "fhir/rest.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "common/status.h"
#include "support/test_support.h"

namespace wmty::fhir {
namespace {

using ::wmty::testing::StatusIs;

TEST(StatusMappingTest, EveryDomainCodeHasItsHttpStatus) {
  struct Case {
    absl::Status status;
    http::Status http;
    std::string code;
  };
  const Case cases[] = {
      {absl::InvalidArgumentError("bad"), http::Status::bad_request, "invalid"},
      {absl::NotFoundError("x"), http::Status::not_found, "not-found"},
      {absl::AbortedError("stale"), http::Status::precondition_failed, "conflict"},
      {absl::AlreadyExistsError("reused"), http::Status::conflict, "conflict"},
      {absl::FailedPreconditionError("retracted"), http::Status::conflict, "deleted"},
      {absl::DeadlineExceededError("late"), http::Status::service_unavailable, "timeout"},
      {absl::UnavailableError("disk"), http::Status::service_unavailable, "transient"},
      {absl::ResourceExhaustedError("queue full"), http::Status::service_unavailable, "throttled"},
      {absl::DataLossError("corrupt"), http::Status::internal_server_error, "exception"},
      {absl::InternalError("bug"), http::Status::internal_server_error, "exception"},
  };
  for (const Case& c : cases) {
    const RestError e = FromStatus(c.status, storage::GOAL);
    EXPECT_EQ(e.status, c.http) << c.status;
    ASSERT_EQ(e.issues.size(), 1u);
    EXPECT_EQ(e.issues[0].code, c.code) << c.status;
    EXPECT_EQ(e.issues[0].severity, "error");
  }
  // Internal messages are not shown.
  EXPECT_EQ(FromStatus(absl::DataLossError("secret detail"), storage::GOAL).issues[0].diagnostics.find("secret"),
            std::string::npos);
}

TEST(StatusMappingTest, OverloadAsksForARetryAfterADelayAndClientErrorsDoNot) {
  EXPECT_EQ(FromStatus(absl::ResourceExhaustedError("queue full"), storage::GOAL).retry_after_seconds,
            kOverloadRetryAfterSeconds);
  EXPECT_GT(kOverloadRetryAfterSeconds, 0);
  EXPECT_EQ(FromStatus(absl::NotFoundError("x"), storage::GOAL).retry_after_seconds, 0);
  EXPECT_EQ(FromStatus(absl::InternalError("bug"), storage::GOAL).retry_after_seconds, 0);
}

// The audit trail scores a FHIR answer by the status it stands for, not by
// its HTTP status: 503 is a deadline, an overload refusal or an outage.
TEST(StatusMappingTest, AnErrorKeepsTheDomainCodeItCameFrom) {
  for (absl::StatusCode code :
       {absl::StatusCode::kInvalidArgument, absl::StatusCode::kNotFound, absl::StatusCode::kAborted,
        absl::StatusCode::kAlreadyExists, absl::StatusCode::kFailedPrecondition, absl::StatusCode::kDeadlineExceeded,
        absl::StatusCode::kUnavailable, absl::StatusCode::kResourceExhausted, absl::StatusCode::kUnimplemented,
        absl::StatusCode::kPermissionDenied, absl::StatusCode::kDataLoss, absl::StatusCode::kInternal}) {
    EXPECT_EQ(FromStatus(absl::Status(code, "x"), storage::GOAL).code, code) << absl::StatusCodeToString(code);
  }
}

TEST(StatusMappingTest, TheFacesOwnRefusalsStandForTheMatchingCode) {
  EXPECT_EQ(MakeRestError(http::Status::bad_request, "invalid", "x").code, absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(MakeRestError(http::Status::unauthorized, "login", "x").code, absl::StatusCode::kUnauthenticated);
  EXPECT_EQ(MakeRestError(http::Status::forbidden, "forbidden", "x").code, absl::StatusCode::kPermissionDenied);
  EXPECT_EQ(MakeRestError(http::Status::not_found, "not-found", "x").code, absl::StatusCode::kNotFound);
  EXPECT_EQ(MakeRestError(http::Status::gone, "deleted", "x").code, absl::StatusCode::kNotFound);
  EXPECT_EQ(MakeRestError(http::Status::method_not_allowed, "not-supported", "x").code,
            absl::StatusCode::kUnimplemented);
  EXPECT_EQ(MakeRestError(http::Status::precondition_failed, "conflict", "x").code, absl::StatusCode::kAborted);
  EXPECT_EQ(MakeRestError(http::Status::payload_too_large, "too-long", "x").code, absl::StatusCode::kOutOfRange);
  EXPECT_EQ(MakeRestError(http::Status::unprocessable_entity, "invalid", "x").code, absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(MakeRestError(http::Status::internal_server_error, "exception", "x").code, absl::StatusCode::kInternal);
  EXPECT_EQ(StatusCodeOfHttp(http::Status::ok), absl::StatusCode::kOk);
  EXPECT_EQ(StatusCodeOfHttp(http::Status::not_modified), absl::StatusCode::kOk);
  EXPECT_EQ(StatusCodeOfHttp(http::Status::gateway_timeout), absl::StatusCode::kDeadlineExceeded);
}

TEST(StatusMappingTest, FieldViolationsBecomeIssuesWithExpressions) {
  FieldViolations v;
  v.Add("Goal.lifecycleStatus", "required");
  v.Add("Goal.target[0].dueDate", "not a FHIR date");
  const RestError e = FromStatus(v.ToStatus(), storage::GOAL, /*fields_are_fhir_paths=*/true);
  EXPECT_EQ(e.status, http::Status::bad_request);
  ASSERT_EQ(e.issues.size(), 2u);
  EXPECT_EQ(e.issues[0].code, "required");
  EXPECT_EQ(e.issues[0].expression, "Goal.lifecycleStatus");
  EXPECT_EQ(e.issues[1].code, "value");
  EXPECT_EQ(e.issues[1].expression, "Goal.target[0].dueDate");
}

TEST(OperationOutcomeTest, Shape) {
  rapidjson::Document d;
  BuildOperationOutcome({Issue{"error", "value", "bad date", "Goal.startDate"}}, &d, d.GetAllocator());
  EXPECT_STREQ(d["resourceType"].GetString(), "OperationOutcome");
  ASSERT_EQ(d["issue"].Size(), 1u);
  EXPECT_STREQ(d["issue"][0]["severity"].GetString(), "error");
  EXPECT_STREQ(d["issue"][0]["code"].GetString(), "value");
  EXPECT_STREQ(d["issue"][0]["diagnostics"].GetString(), "bad date");
  EXPECT_STREQ(d["issue"][0]["expression"][0].GetString(), "Goal.startDate");
}

TEST(NegotiationTest, AcceptAndFormat) {
  EXPECT_TRUE(NegotiateResponseType("", std::nullopt).acceptable);
  EXPECT_EQ(NegotiateResponseType("", std::nullopt).content_type, "application/fhir+json; charset=utf-8");
  EXPECT_TRUE(NegotiateResponseType("application/fhir+json; fhirVersion=4.0", std::nullopt).acceptable);
  EXPECT_TRUE(NegotiateResponseType("text/html,application/xhtml+xml,*/*;q=0.8", std::nullopt).acceptable);
  EXPECT_EQ(NegotiateResponseType("application/json", std::nullopt).content_type, "application/json; charset=utf-8");
  EXPECT_EQ(NegotiateResponseType("application/json;q=0.5, application/fhir+json", std::nullopt).content_type,
            "application/fhir+json; charset=utf-8");
  EXPECT_FALSE(NegotiateResponseType("application/fhir+xml", std::nullopt).acceptable);
  EXPECT_FALSE(NegotiateResponseType("application/fhir+json;q=0", std::nullopt).acceptable);
  // _format wins over Accept.
  EXPECT_TRUE(NegotiateResponseType("application/fhir+xml", "json").acceptable);
  EXPECT_FALSE(NegotiateResponseType("application/fhir+json", "xml").acceptable);
  EXPECT_FALSE(NegotiateResponseType("", "application/fhir+xml").acceptable);
  EXPECT_FALSE(NegotiateResponseType("", "text/turtle").acceptable);
  EXPECT_TRUE(NegotiateResponseType("", "application/fhir+json").acceptable);
}

TEST(MediaTypeTest, RequestBodies) {
  EXPECT_TRUE(IsJsonMediaType("application/fhir+json"));
  EXPECT_TRUE(IsJsonMediaType("application/fhir+json; charset=UTF-8"));
  EXPECT_TRUE(IsJsonMediaType("Application/JSON"));
  EXPECT_TRUE(IsJsonMediaType("application/json+fhir"));
  EXPECT_FALSE(IsJsonMediaType("application/fhir+json; charset=iso-8859-1"));
  EXPECT_FALSE(IsJsonMediaType("application/fhir+xml"));
  EXPECT_FALSE(IsJsonMediaType("text/plain"));
  EXPECT_FALSE(IsJsonMediaType(""));
  EXPECT_TRUE(IsFormMediaType("application/x-www-form-urlencoded; charset=utf-8"));
  EXPECT_FALSE(IsFormMediaType("application/json"));
}

TEST(PreferTest, ReturnAndHandling) {
  EXPECT_EQ(ParsePrefer("return=minimal").return_pref, Prefer::Return::kMinimal);
  EXPECT_EQ(ParsePrefer("return=OperationOutcome").return_pref, Prefer::Return::kOperationOutcome);
  EXPECT_EQ(ParsePrefer("handling=strict, return=representation").return_pref, Prefer::Return::kRepresentation);
  EXPECT_TRUE(ParsePrefer("handling=strict, return=representation").strict);
  EXPECT_FALSE(ParsePrefer("handling=lenient").strict);
  EXPECT_FALSE(ParsePrefer("").strict);
  EXPECT_EQ(ParsePrefer("").return_pref, Prefer::Return::kDefault);
}

TEST(DatesTest, HttpDateAndInstant) {
  EXPECT_EQ(HttpDate(784111777000000), "Sun, 06 Nov 1994 08:49:37 GMT");
  EXPECT_EQ(FhirInstant(784111777000001), "1994-11-06T08:49:37.000001Z");
}

TEST(XProvenanceTest, TakesTheAuthorAgent) {
  auto x = ParseXProvenance(R"({"resourceType":"Provenance","agent":[
      {"type":{"coding":[{"code":"informant"}]},"who":{"reference":"RelatedPerson/r1"}},
      {"type":{"coding":[{"system":"http://terminology.hl7.org/CodeSystem/provenance-participant-type",
                          "code":"author"}]},
       "who":{"reference":"Practitioner/rn-17","display":"Ana Ruiz"},"role":[{"text":"RN"}]}]})");
  ASSERT_TRUE(x.ok()) << x.status();
  ASSERT_TRUE(x->author.has_value());
  EXPECT_EQ(x->author->practitioner_id(), "rn-17");
  EXPECT_EQ(x->author->display_name(), "Ana Ruiz");
  EXPECT_EQ(x->author->role(), "RN");
  EXPECT_EQ(x->reason, "");
  x = ParseXProvenance(
      R"({"resourceType":"Provenance","agent":[{"who":{"reference":"https://ehr.example/fhir/Practitioner/d1"},
          "role":[{"coding":[{"code":"RN","display":"Registered nurse"}]}]}]})");
  ASSERT_TRUE(x.ok()) << x.status();
  EXPECT_EQ(x->author->practitioner_id(), "d1");
  EXPECT_EQ(x->author->role(), "Registered nurse");
}

TEST(XProvenanceTest, TakesTheReasonTextWithOrWithoutAnAgent) {
  auto x = ParseXProvenance(
      R"({"resourceType":"Provenance","reason":[{"coding":[{"code":"TREAT"}],"text":"Wrong patient's chart"}]})");
  ASSERT_TRUE(x.ok()) << x.status();
  EXPECT_FALSE(x->author.has_value());
  EXPECT_EQ(x->reason, "Wrong patient's chart");
  x = ParseXProvenance(R"({"resourceType":"Provenance","reason":[{"text":"Duplicate"}],
                           "agent":[{"who":{"reference":"Practitioner/rn-17"}}]})");
  ASSERT_TRUE(x.ok()) << x.status();
  EXPECT_EQ(x->author->practitioner_id(), "rn-17");
  EXPECT_EQ(x->reason, "Duplicate");
}

TEST(XProvenanceTest, RefusesWhatIsNotAnAuthoredProvenance) {
  for (absl::string_view bad :
       {"", "not json", "[]", R"({"resourceType":"Goal"})", R"({"resourceType":"Provenance"})",
        R"({"resourceType":"Provenance","agent":[]})",
        R"({"resourceType":"Provenance","reason":[{"coding":[{"code":"TREAT"}]}]})",
        R"({"resourceType":"Provenance","reason":"typed as a string"})",
        R"({"resourceType":"Provenance","reason":["typed as a string"]})",
        R"({"resourceType":"Provenance","agent":[{"who":{"reference":"Patient/p1"}}]})",
        R"({"resourceType":"Provenance","agent":[{"who":{"reference":"Practitioner/has space"}}]})",
        R"({"resourceType":"Provenance","agent":[{"who":{"reference":"XPractitioner/a"}}]})",
        R"({"resourceType":"Provenance","agent":[7]})"}) {
    EXPECT_THAT(ParseXProvenance(bad), StatusIs(absl::StatusCode::kInvalidArgument)) << bad;
  }
}

TEST(JsonShapeTest, DepthAndDuplicateMembers) {
  auto check = [](const std::string& json, int depth) {
    rapidjson::Document d;
    d.Parse<rapidjson::kParseIterativeFlag>(json.data(), json.size());
    EXPECT_FALSE(d.HasParseError());
    return CheckJsonShape(d, depth);
  };
  EXPECT_TRUE(check(R"({"a":{"b":[1,{"c":2}]}})", 4).ok());
  EXPECT_THAT(check(R"({"a":{"b":[1,{"c":2}]}})", 3), StatusIs(absl::StatusCode::kInvalidArgument));
  EXPECT_THAT(check(R"({"a":1,"b":{"x":1,"x":2}})", 10), StatusIs(absl::StatusCode::kInvalidArgument));
  EXPECT_THAT(check(std::string(100000, '[') + std::string(100000, ']'), 64),
              StatusIs(absl::StatusCode::kInvalidArgument));
}

}  // namespace
}  // namespace wmty::fhir
