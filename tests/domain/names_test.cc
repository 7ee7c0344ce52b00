// Resource names (services/domain/names.h): parse, format, round trip, rejects.
#include "domain/names.h"

#include <string>

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "support/test_support.h"

namespace wmty::domain {
namespace {

using ::testing::ElementsAre;
using ::wmty::testing::StatusIs;
using ::wmty::testing::ViolatedFields;

TEST(IsValidIdTest, FhirIdRule) {
  EXPECT_TRUE(IsValidId("a"));
  EXPECT_TRUE(IsValidId("Patient-01.2"));
  EXPECT_TRUE(IsValidId(std::string(64, 'x')));
  EXPECT_FALSE(IsValidId(""));
  EXPECT_FALSE(IsValidId(std::string(65, 'x')));
  for (const std::string bad : {"a/b", "a b", "a_b", "a:b", "a%2Fb", "é", "a\tb", "a\nb", "a\x01", "a\x7f"}) {
    EXPECT_FALSE(IsValidId(bad)) << bad;
  }
  EXPECT_FALSE(IsValidId(std::string("a\0b", 3)));
}

TEST(ParseParentTest, ReturnsThePatientId) {
  auto patient = ParseParent("patients/MRN-0042.a", "parent");
  ASSERT_TRUE(patient.ok()) << patient.status();
  EXPECT_EQ(*patient, "MRN-0042.a");
}

TEST(ParseParentTest, AcceptsA64CharacterPatientIdAndRefuses65) {
  EXPECT_TRUE(ParseParent("patients/" + std::string(64, 'p'), "parent").ok());
  auto too_long = ParseParent("patients/" + std::string(65, 'p'), "parent");
  EXPECT_THAT(too_long, StatusIs(absl::StatusCode::kInvalidArgument));
  EXPECT_THAT(ViolatedFields(too_long.status()), ElementsAre("parent"));
}

TEST(ParseParentTest, RefusesMalformedParentsNamingTheField) {
  const std::string cases[] = {"",
                               "patients",
                               "patients/",
                               "patient/p1",
                               "Patients/p1",
                               "/patients/p1",
                               "patients/p1/",
                               "patients//p1",
                               "patients/p1/goals",
                               "patients/p1/goals/G1",
                               "patients/p 1",
                               "patients/p1\n",
                               "patients/p\x01",
                               std::string("patients/p\0", 11),
                               "patients/p%2F1"};
  for (const auto& parent : cases) {
    auto parsed = ParseParent(parent, "request.parent");
    EXPECT_THAT(parsed, StatusIs(absl::StatusCode::kInvalidArgument)) << parent;
    EXPECT_THAT(ViolatedFields(parsed.status()), ElementsAre("request.parent")) << parent;
  }
}

TEST(ParseNameTest, ParsesEveryKind) {
  struct Case {
    const char* name;
    storage::Kind kind;
    const char* patient;
    const char* id;
  } cases[] = {
      {"patients/p1/whatMatters/W1", storage::WHAT_MATTERS, "p1", "W1"},
      {"patients/p1/goals/01J0000000000000000000000A", storage::GOAL, "p1", "01J0000000000000000000000A"},
      {"patients/p-2/preferences/x.y", storage::PREFERENCE, "p-2", "x.y"},
      {"patients/p1/priorities", storage::PRIORITIES, "p1", "priorities"},
      {"patients/p1", storage::PATIENT, "p1", "p1"},
  };
  for (const auto& c : cases) {
    auto parsed = ParseName(c.name, "name");
    ASSERT_TRUE(parsed.ok()) << c.name << ": " << parsed.status();
    EXPECT_EQ(parsed->kind, c.kind) << c.name;
    EXPECT_EQ(parsed->patient_id, c.patient) << c.name;
    EXPECT_EQ(parsed->id, c.id) << c.name;
  }
}

TEST(ParseNameTest, FormatAndParseRoundTrip) {
  for (storage::Kind kind : {storage::WHAT_MATTERS, storage::GOAL, storage::PREFERENCE, storage::PRIORITIES}) {
    const std::string id = kind == storage::PRIORITIES ? std::string(kPrioritiesId) : "01HZXK3M5T9QW0000000000000";
    const std::string name = FormatName(kind, "patient.7", id);
    auto parsed = ParseName(name, "name");
    ASSERT_TRUE(parsed.ok()) << name << ": " << parsed.status();
    EXPECT_EQ(parsed->kind, kind);
    EXPECT_EQ(parsed->patient_id, "patient.7");
    EXPECT_EQ(parsed->id, id);
    EXPECT_EQ(FormatName(parsed->kind, parsed->patient_id, parsed->id), name);
  }
  EXPECT_EQ(FormatName(storage::GOAL, "p1", "G1"), "patients/p1/goals/G1");
  EXPECT_EQ(FormatName(storage::WHAT_MATTERS, "p1", "W1"), "patients/p1/whatMatters/W1");
  EXPECT_EQ(FormatName(storage::PREFERENCE, "p1", "P1"), "patients/p1/preferences/P1");
  EXPECT_EQ(FormatName(storage::PRIORITIES, "p1", kPrioritiesId), "patients/p1/priorities");
  EXPECT_EQ(FormatParent("p1"), "patients/p1");
}

TEST(ParseNameTest, RefusesMalformedNamesNamingTheField) {
  const std::string cases[] = {"",
                               "patients",
                               "patients/",
                               "patients/p1/goals",
                               "patients/p1/goals/",
                               "patients/p1/goals/G1/",
                               "patients/p1/goals/G1/versions/2",
                               "patients/p1/Goals/G1",
                               "patients/p1/notes/N1",
                               "patients/p1/priorities/x",
                               "patients//goals/G1",
                               "patients/p/1/goals/G1",
                               "patient/p1/goals/G1",
                               "patients/p1/goals/G 1",
                               "patients/p1/goals/G\x01",
                               "patients/p1/goals/" + std::string(65, 'g'),
                               "patients/" + std::string(65, 'p') + "/goals/G1",
                               std::string("patients/p1/goals/G\0", 20)};
  for (const auto& name : cases) {
    auto parsed = ParseName(name, "goal.name");
    EXPECT_THAT(parsed, StatusIs(absl::StatusCode::kInvalidArgument)) << name;
    EXPECT_THAT(ViolatedFields(parsed.status()), ElementsAre("goal.name")) << name;
  }
}

TEST(ParseNameOfKindTest, AcceptsOnlyTheRequestedKind) {
  EXPECT_TRUE(ParseNameOfKind("patients/p1/goals/G1", storage::GOAL, "name").ok());
  EXPECT_TRUE(ParseNameOfKind("patients/p1/priorities", storage::PRIORITIES, "name").ok());

  auto wrong = ParseNameOfKind("patients/p1/goals/G1", storage::WHAT_MATTERS, "name");
  EXPECT_THAT(wrong, StatusIs(absl::StatusCode::kInvalidArgument));
  EXPECT_THAT(ViolatedFields(wrong.status()), ElementsAre("name"));
  EXPECT_THAT(std::string(wrong.status().message()), ::testing::HasSubstr("whatMatters"));

  // The Patient is its parent's name; it is no goal, and a goal is no Patient.
  EXPECT_TRUE(ParseNameOfKind("patients/p1", storage::PATIENT, "name").ok());
  EXPECT_EQ(FormatName(storage::PATIENT, "p1", "p1"), "patients/p1");
  auto patient_as_goal = ParseNameOfKind("patients/p1", storage::GOAL, "name");
  EXPECT_THAT(ViolatedFields(patient_as_goal.status()), ElementsAre("name"));
  auto goal_as_patient = ParseNameOfKind("patients/p1/goals/G1", storage::PATIENT, "patient.name");
  EXPECT_THAT(ViolatedFields(goal_as_patient.status()), ElementsAre("patient.name"));
  EXPECT_THAT(std::string(goal_as_patient.status().message()), ::testing::HasSubstr("patients/{patient}"));

  auto not_priorities = ParseNameOfKind("patients/p1/preferences/P1", storage::PRIORITIES, "priorities.name");
  EXPECT_THAT(ViolatedFields(not_priorities.status()), ElementsAre("priorities.name"));

  auto malformed = ParseNameOfKind("goals/G1", storage::GOAL, "name");
  EXPECT_THAT(malformed, StatusIs(absl::StatusCode::kInvalidArgument));
}

// One phrasing on both faces; the gRPC face answers a resource of another
// patient with this same message, so the two cannot be told apart.
TEST(NotFoundMessageTest, NamesTheResource) {
  EXPECT_EQ(NotFoundMessage("goal", "patients/p1/goals/g1"), "goal patients/p1/goals/g1 not found");
  EXPECT_EQ(NotFoundMessage("Goal", "g1"), "Goal g1 not found");
}

TEST(CollectionOfTest, NamesEachCollection) {
  EXPECT_EQ(CollectionOf(storage::WHAT_MATTERS), "whatMatters");
  EXPECT_EQ(CollectionOf(storage::GOAL), "goals");
  EXPECT_EQ(CollectionOf(storage::PREFERENCE), "preferences");
  EXPECT_EQ(CollectionOf(storage::PRIORITIES), "priorities");
  EXPECT_EQ(CollectionOf(storage::KIND_UNSPECIFIED), "");
}

}  // namespace
}  // namespace wmty::domain
