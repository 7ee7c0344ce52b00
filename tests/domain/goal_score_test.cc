// Goal-attainment scores (PCO GAS): validation against the scored goal,
// progress listing per goal, defaults, and the FHIR extras kept per version.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "domain/records_fixture.h"

namespace wmty::testing {
namespace {

using ::testing::ElementsAre;
using ::testing::IsEmpty;

class GoalScoreTest : public RecordsTest {
 protected:
  absl::StatusOr<v1::GoalScore> Score(const std::string& patient, const std::string& goal, int score,
                                      v1::GoalScoreType type = v1::PATIENT_FOLLOW_UP,
                                      const domain::CallContext& ctx = {}) {
    v1::CreateGoalScoreRequest req;
    req.set_parent(Parent(patient));
    auto* s = req.mutable_goal_score();
    s->set_goal(goal);
    s->set_score_type(type);
    s->set_score(score);
    *s->mutable_provenance() = NurseProvenance();
    return Await<v1::GoalScore>([&](auto done) { records_->CreateGoalScore(req, ctx, std::move(done)); });
  }
  absl::StatusOr<v1::ListGoalScoresResponse> List(const std::string& patient, const std::string& goal = "") {
    v1::ListGoalScoresRequest req;
    req.set_parent(Parent(patient));
    req.set_goal(goal);
    return records_->ListGoalScores(req, {});
  }
};

TEST_F(GoalScoreTest, RecordsScoresAndListsThemPerGoalInOrder) {
  auto walk = CreateGoal("p1", ValidGoal("Walk to church"));
  auto garden = CreateGoal("p1", ValidGoal("Garden again"));
  ASSERT_TRUE(walk.ok() && garden.ok());
  auto initial = Score("p1", walk->name(), -1, v1::INITIAL);
  auto follow_up = Score("p1", walk->name(), 1);
  auto other = Score("p1", garden->name(), 0);
  ASSERT_TRUE(initial.ok()) << initial.status();
  ASSERT_TRUE(follow_up.ok() && other.ok());
  EXPECT_THAT(initial->name(), ::testing::StartsWith("patients/p1/goalScores/"));
  EXPECT_TRUE(initial->has_effective_time());  // defaults to the time it was recorded
  EXPECT_EQ(initial->etag(), "W/\"1\"");

  auto walk_scores = List("p1", walk->name());
  ASSERT_TRUE(walk_scores.ok()) << walk_scores.status();
  ASSERT_EQ(walk_scores->goal_scores_size(), 2);
  EXPECT_EQ(walk_scores->goal_scores(0).score(), -1);
  EXPECT_EQ(walk_scores->goal_scores(1).score(), 1);
  EXPECT_EQ(List("p1")->goal_scores_size(), 3);
  ExpectIntegrity();
}

TEST_F(GoalScoreTest, ScoreOutsideMinusTwoToTwoIsRefused) {
  auto goal = CreateGoal("p1", ValidGoal());
  ASSERT_TRUE(goal.ok());
  const uint64_t before = store_->LastSequence();
  for (int bad : {-3, 3, 100}) {
    auto s = Score("p1", goal->name(), bad);
    EXPECT_THAT(s, StatusIs(absl::StatusCode::kInvalidArgument));
    EXPECT_THAT(ViolatedFields(s.status()), ElementsAre("goal_score.score"));
  }
  EXPECT_EQ(store_->LastSequence(), before);
}

TEST_F(GoalScoreTest, GoalMustExistBelongToThePatientAndNotBeRetracted) {
  auto goal = CreateGoal("p1", ValidGoal());
  ASSERT_TRUE(goal.ok());
  auto other_patient = Score("p2", goal->name(), 0);
  EXPECT_THAT(other_patient, StatusIs(absl::StatusCode::kInvalidArgument));
  EXPECT_THAT(ViolatedFields(other_patient.status()), ElementsAre("goal_score.goal"));

  auto missing = Score("p1", "patients/p1/goals/01M00000000000000000000000", 0);
  EXPECT_THAT(missing, StatusIs(absl::StatusCode::kInvalidArgument));

  auto not_a_goal = Score("p1", "patients/p1/whatMatters/01M00000000000000000000000", 0);
  EXPECT_THAT(ViolatedFields(not_a_goal.status()), ElementsAre("goal_score.goal"));

  ASSERT_TRUE(RetractGoal(goal->name()).ok());
  EXPECT_THAT(Score("p1", goal->name(), 0), StatusIs(absl::StatusCode::kInvalidArgument));
  EXPECT_THAT(List("p1")->goal_scores(), IsEmpty());
}

TEST_F(GoalScoreTest, ScoreTypeIsRequired) {
  auto goal = CreateGoal("p1", ValidGoal());
  ASSERT_TRUE(goal.ok());
  auto s = Score("p1", goal->name(), 0, v1::GOAL_SCORE_TYPE_UNSPECIFIED);
  EXPECT_THAT(ViolatedFields(s.status()), ElementsAre("goal_score.score_type"));
}

TEST_F(GoalScoreTest, FhirExtrasAreStoredWithTheVersionAndKeptByLaterWrites) {
  domain::CallContext fhir;
  fhir.fhir_extra_json = R"({"extension":[{"url":"http://example.org/x","valueString":"kept"}]})";
  auto goal = CreateGoal("p1", ValidGoal(), "", fhir);
  ASSERT_TRUE(goal.ok()) << goal.status();
  const std::string id = goal->name().substr(goal->name().rfind('/') + 1);
  auto stored = records_->FindCurrentById(storage::GOAL, id);
  ASSERT_TRUE(stored.ok() && stored->has_value());
  EXPECT_EQ((*stored)->fhir_extra_json(), *fhir.fhir_extra_json);

  // A gRPC-style update (no extras in the context) keeps them.
  auto updated = Redescribe(*goal, "Walk to church on my own");
  ASSERT_TRUE(updated.ok()) << updated.status();
  stored = records_->FindCurrentById(storage::GOAL, id);
  EXPECT_EQ((*stored)->version(), 2);
  EXPECT_EQ((*stored)->fhir_extra_json(), *fhir.fhir_extra_json);

  // A FHIR update replaces them; history keeps each version's own.
  v1::Goal change = *updated;
  domain::CallContext replace;
  replace.fhir_extra_json = "";
  ASSERT_TRUE(UpdateGoal(change, {}, "", replace).ok());
  std::vector<std::string> extras;
  ASSERT_TRUE(records_
                  ->ScanStoredVersions(storage::GOAL, "p1", id, 0,
                                       [&](const storage::Record& r) {
                                         extras.push_back(r.fhir_extra_json());
                                         return true;
                                       })
                  .ok());
  EXPECT_THAT(extras, ElementsAre(*fhir.fhir_extra_json, *fhir.fhir_extra_json, ""));
}

TEST_F(GoalScoreTest, StoredReadsFindByIdByChangeAndAcrossPatients) {
  auto a = CreateGoal("pa", ValidGoal());
  auto b = CreateGoal("pb", ValidGoal());
  ASSERT_TRUE(a.ok() && b.ok());
  EXPECT_FALSE(records_->FindCurrentById(storage::GOAL, "no-such-id")->has_value());
  EXPECT_FALSE(records_->FindCurrentById(storage::PREFERENCE, a->name().substr(a->name().rfind('/') + 1))->has_value());

  auto by_change = records_->FindByChange(store_->LastSequence());
  ASSERT_TRUE(by_change.ok() && by_change->has_value());
  EXPECT_EQ((*by_change)->patient_id(), "pb");
  EXPECT_FALSE(records_->FindByChange(store_->LastSequence() + 1)->has_value());

  std::vector<std::string> patients;
  ASSERT_TRUE(records_
                  ->ScanStoredCurrent(storage::GOAL, std::nullopt, "", "",
                                      [&](const storage::Record& r) {
                                        patients.push_back(r.patient_id());
                                        return true;
                                      })
                  .ok());
  EXPECT_THAT(patients, ElementsAre("pa", "pb"));
  // Resuming after the first one continues with the second.
  patients.clear();
  const std::string a_id = a->name().substr(a->name().rfind('/') + 1);
  ASSERT_TRUE(records_
                  ->ScanStoredCurrent(storage::GOAL, std::nullopt, "pa", a_id,
                                      [&](const storage::Record& r) {
                                        patients.push_back(r.patient_id());
                                        return true;
                                      })
                  .ok());
  EXPECT_THAT(patients, ElementsAre("pb"));
}

}  // namespace
}  // namespace wmty::testing
