#include "auth/scopes.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

namespace wmty::auth {
namespace {

TEST(ScopeTest, ParsesV2Letters) {
  auto s = ParseScope("patient/Goal.rs");
  ASSERT_TRUE(s.ok()) << s.status();
  EXPECT_EQ(s->context, ScopeContext::kPatient);
  EXPECT_EQ(s->resource_type, "Goal");
  EXPECT_EQ(s->permissions, kRead | kSearch);
  EXPECT_EQ(ParseScope("user/Observation.cruds")->permissions, kCreate | kRead | kUpdate | kDelete | kSearch);
  EXPECT_EQ(ParseScope("system/*.rs")->resource_type, "*");
  EXPECT_EQ(ParseScope("system/*.rs")->context, ScopeContext::kSystem);
}

TEST(ScopeTest, MapsV1Forms) {
  EXPECT_EQ(ParseScope("patient/Goal.read")->permissions, kRead | kSearch);
  EXPECT_EQ(ParseScope("user/Goal.write")->permissions, kCreate | kUpdate | kDelete);
  EXPECT_EQ(ParseScope("user/*.*")->permissions, kCreate | kRead | kUpdate | kDelete | kSearch);
}

TEST(ScopeTest, RefusesMalformedScopes) {
  for (const char* bad : {"openid", "fhirUser", "patient/Goal", "patient/Goal.", "patient/Goal.rc", "patient/Goal.rr",
                          "patient/Goal.x", "doctor/Goal.rs", "patient/goal.rs", "patient/Go-al.rs", "/Goal.rs"}) {
    EXPECT_FALSE(ParseScope(bad).ok()) << bad;
  }
}

TEST(ScopeTest, ParseScopesKeepsOnlyResourceScopes) {
  auto scopes = ParseScopes("openid fhirUser launch/patient patient/Goal.rs  offline_access user/Observation.c");
  ASSERT_EQ(scopes.size(), 2u);
  EXPECT_EQ(scopes[0].resource_type, "Goal");
  EXPECT_EQ(scopes[1].resource_type, "Observation");
}

Principal WithScopes(const std::string& scopes, std::optional<std::string> patient = std::nullopt) {
  Principal p;
  p.scopes = ParseScopes(scopes);
  p.patient = std::move(patient);
  return p;
}

TEST(AuthorizeTest, PatientScopesReachOnlyTheirPatient) {
  const Principal p = WithScopes("patient/Goal.rs", "A");
  EXPECT_EQ(Authorize(p, "Goal", kRead, "A"), Decision::kAllow);
  EXPECT_EQ(Authorize(p, "Goal", kSearch, "A"), Decision::kAllow);
  EXPECT_EQ(Authorize(p, "Goal", kRead, "B"), Decision::kOtherPatient);
  EXPECT_EQ(Authorize(p, "Goal", kSearch, ""), Decision::kOtherPatient);  // unscoped search
  EXPECT_EQ(Authorize(p, "Goal", kCreate, "A"), Decision::kInsufficientScope);
  EXPECT_EQ(Authorize(p, "Observation", kRead, "A"), Decision::kInsufficientScope);
}

TEST(AuthorizeTest, PatientScopeWithoutPatientClaimGrantsNothing) {
  EXPECT_EQ(Authorize(WithScopes("patient/Goal.rs"), "Goal", kRead, "A"), Decision::kOtherPatient);
}

TEST(AuthorizeTest, UserAndSystemScopesReachEveryPatient) {
  EXPECT_EQ(Authorize(WithScopes("user/Goal.cruds"), "Goal", kUpdate, "B"), Decision::kAllow);
  EXPECT_EQ(Authorize(WithScopes("system/*.rs"), "List", kSearch, ""), Decision::kAllow);
  EXPECT_EQ(Authorize(WithScopes("system/*.rs"), "List", kDelete, ""), Decision::kInsufficientScope);
}

TEST(AuthorizeTest, WriteDoesNotImplyRead) {
  const Principal p = WithScopes("user/Goal.write");
  EXPECT_EQ(Authorize(p, "Goal", kCreate, "A"), Decision::kAllow);
  EXPECT_EQ(Authorize(p, "Goal", kRead, "A"), Decision::kInsufficientScope);
}

TEST(AuthorizeTest, FilteredScopesGrantNothingYet) {
  EXPECT_EQ(Authorize(WithScopes("user/Observation.rs?category=survey"), "Observation", kRead, "A"),
            Decision::kInsufficientScope);
}

// The operator scope is one exact string: no wildcard or resource scope
// implies it, and it grants no patient data.
TEST(AdminScopeTest, OnlyTheExactScopeCounts) {
  EXPECT_TRUE(HasScope("openid system/wmty.admin", kAdminScope));
  for (const char* other :
       {"system/*.*", "system/*.cruds", "user/*.*", "patient/*.*", "system/wmty.*", "system/wmty.admin?x=1",
        "user/wmty.admin", "patient/wmty.admin", "system/wmty.adminx", "SYSTEM/wmty.admin", ""}) {
    EXPECT_FALSE(HasScope(other, kAdminScope)) << other;
  }
  EXPECT_TRUE(ParseScopes("system/wmty.admin").empty());
  Principal admin;
  admin.admin = true;
  admin.scopes = ParseScopes("system/wmty.admin");
  EXPECT_EQ(Authorize(admin, "Goal", kRead, "A"), Decision::kInsufficientScope);
}

}  // namespace
}  // namespace wmty::auth
