// The recorder rule (domain/recorder.h) as pure functions: which id a token
// records under, and what the rule does to a request's recorder and
// on_behalf_of. End to end over both faces: tests/integration/grpc_auth_test.cc
// and tests/fhir/fhir_auth_test.cc.
#include "domain/recorder.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "support/test_support.h"

namespace wmty::domain {
namespace {

using ::testing::HasSubstr;
using ::wmty::testing::StatusIs;

auth::Principal Token(std::string sub, std::string fhir_user = "") {
  auth::Principal p;
  p.subject = std::move(sub);
  p.fhir_user = std::move(fhir_user);
  return p;
}

TEST(RecorderIdOf, FhirUserPractitionerThenSub) {
  EXPECT_EQ(RecorderIdOf(Token("auth0|1", "Practitioner/rn-17")).value(), "rn-17");
  EXPECT_EQ(RecorderIdOf(Token("auth0|1", "https://ehr.example/fhir/Practitioner/md-4")).value(), "md-4");
  EXPECT_EQ(RecorderIdOf(Token("ehr-plugin", "Patient/p1")).value(), "ehr-plugin");
  EXPECT_EQ(RecorderIdOf(Token("Practitioner/dev")).value(), "dev");
  EXPECT_EQ(RecorderIdOf(Token("sys.client-2")).value(), "sys.client-2");
  for (const auth::Principal& none : {Token("auth0|1"), Token("a b"), Token(""), Token("a|b", "XPractitioner/a"),
                                      Token("user@example.org", "Practitioner/not an id")}) {
    EXPECT_THAT(RecorderIdOf(none), StatusIs(absl::StatusCode::kPermissionDenied)) << none.subject;
  }
}

TEST(ApplyRecorderRule, WithoutAuthenticationNothingChanges) {
  v1::Provenance p = ::wmty::testing::NurseProvenance();
  p.mutable_recorded_by()->set_practitioner_id("anyone");
  const v1::Provenance before = p;
  FieldViolations v;
  ASSERT_TRUE(ApplyRecorderRule(nullptr, "goal.provenance", &p, &v).ok());
  EXPECT_TRUE(v.empty());
  EXPECT_EQ(p.DebugString(), before.DebugString());
}

TEST(ApplyRecorderRule, TheCallerRecordsAndOthersAreRefused) {
  const auth::Principal dev = Token("Practitioner/dev");
  v1::Provenance p = ::wmty::testing::NurseProvenance();
  p.mutable_recorded_by()->clear_practitioner_id();
  FieldViolations v;
  ASSERT_TRUE(ApplyRecorderRule(&dev, "goal.provenance", &p, &v).ok());
  EXPECT_TRUE(v.empty());
  EXPECT_EQ(p.recorded_by().practitioner_id(), "dev");
  EXPECT_EQ(p.recorded_by().display_name(), "Ana Ruiz");  // the request's, for the same caller

  p.mutable_recorded_by()->set_practitioner_id("rn-17");
  ASSERT_TRUE(ApplyRecorderRule(&dev, "goal.provenance", &p, &v).ok());
  EXPECT_THAT(::wmty::testing::ViolatedFields(v.ToStatus()),
              ::testing::ElementsAre("goal.provenance.recorded_by.practitioner_id"));
  EXPECT_THAT(std::string(v.ToStatus().message()), HasSubstr("goal.provenance.on_behalf_of"));
  EXPECT_EQ(p.recorded_by().practitioner_id(), "rn-17") << "refused, not rewritten";

  const auth::Principal nobody = Token("auth0|1");
  EXPECT_THAT(ApplyRecorderRule(&nobody, "goal.provenance", &p, &v), StatusIs(absl::StatusCode::kPermissionDenied));
}

TEST(ApplyRecorderRule, OnBehalfOfTheCallerItselfIsDropped) {
  const auth::Principal rn = Token("Practitioner/rn-17");
  v1::Provenance p;
  p.mutable_on_behalf_of()->set_practitioner_id("rn-17");
  p.mutable_on_behalf_of()->set_display_name("Ana Ruiz");
  p.mutable_on_behalf_of()->set_role("RN");
  FieldViolations v;
  ASSERT_TRUE(ApplyRecorderRule(&rn, "p", &p, &v).ok());
  EXPECT_FALSE(p.has_on_behalf_of());
  EXPECT_EQ(p.recorded_by().practitioner_id(), "rn-17");
  EXPECT_EQ(p.recorded_by().display_name(), "Ana Ruiz");
  EXPECT_EQ(p.recorded_by().role(), "RN");

  v1::RetractRequest r;
  r.mutable_on_behalf_of()->set_practitioner_id("md-4");
  r.mutable_retracted_by()->set_practitioner_id("md-4");
  ASSERT_TRUE(ApplyRecorderRule(&rn, &r, &v).ok());
  EXPECT_THAT(::wmty::testing::ViolatedFields(v.ToStatus()), ::testing::ElementsAre("retracted_by.practitioner_id"));
  EXPECT_EQ(r.on_behalf_of().practitioner_id(), "md-4");
}

}  // namespace
}  // namespace wmty::domain
