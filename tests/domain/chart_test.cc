// PatientRecords::ReadChart: the one patient chart behind GetPatientSummary
// and FHIR $everything, in one order (priorities' rank first, then most
// recently changed), without retracted resources.
#include <string>
#include <vector>

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "domain/records_fixture.h"

namespace wmty::testing {
namespace {

using storage::Record;
using ::testing::ElementsAre;
using ::testing::IsEmpty;

class ChartTest : public RecordsTest {
 protected:
  static std::vector<std::string> Names(const std::vector<Record>& records) {
    std::vector<std::string> out;
    for (const Record& r : records) out.push_back(domain::FormatName(r.kind(), r.patient_id(), r.id()));
    return out;
  }
  template <class R>
  static std::vector<std::string> Names(const google::protobuf::RepeatedPtrField<R>& items) {
    std::vector<std::string> out;
    for (const auto& r : items) out.push_back(r.name());
    return out;
  }
};

TEST_F(ChartTest, SummaryAndChartShowTheSameResourcesInTheSameOrder) {
  auto g1 = CreateGoal("p1", ValidGoal("Walk"));
  auto g2 = CreateGoal("p1", ValidGoal("Swim"));
  auto g3 = CreateGoal("p1", ValidGoal("Garden"));
  auto w1 = CreateWhatMatters("p1", ValidWhatMatters("Home"));
  auto w2 = CreateWhatMatters("p1", ValidWhatMatters("Family"));
  auto pref = CreatePreference("p1", ValidPreference());
  ASSERT_TRUE(g1.ok() && g2.ok() && g3.ok() && w1.ok() && w2.ok() && pref.ok());
  ASSERT_TRUE(Redescribe(*g1, "Walk further").ok());  // g1 is now the most recently changed
  ASSERT_TRUE(UpdatePriorities(Priorities("p1", {g2->name(), w1->name()})).ok());

  auto chart = records_->ReadChart("p1", {}, {});
  ASSERT_TRUE(chart.ok()) << chart.status();
  // Ranked first, then most recently changed first.
  EXPECT_THAT(Names(chart->goals), ElementsAre(g2->name(), g1->name(), g3->name()));
  EXPECT_THAT(Names(chart->what_matters), ElementsAre(w1->name(), w2->name()));
  EXPECT_THAT(Names(chart->preferences), ElementsAre(pref->name()));
  EXPECT_TRUE(chart->priorities.has_value());
  EXPECT_FALSE(chart->patient.has_value());
  EXPECT_THAT(chart->goal_scores, IsEmpty());
  EXPECT_FALSE(chart->truncated);

  auto summary = Summary("p1");
  ASSERT_TRUE(summary.ok()) << summary.status();
  EXPECT_EQ(Names(summary->goals()), Names(chart->goals));
  EXPECT_EQ(Names(summary->what_matters()), Names(chart->what_matters));
  EXPECT_EQ(Names(summary->preferences()), Names(chart->preferences));
  EXPECT_EQ(summary->priorities().version(), chart->priorities->version());
}

TEST_F(ChartTest, LeavesRetractedOutAndAddsPatientAndGoalScoresWhenAsked) {
  auto kept = CreateGoal("p1", ValidGoal("Walk"));
  auto gone = CreateGoal("p1", ValidGoal("Swim"));
  ASSERT_TRUE(kept.ok() && gone.ok());
  ASSERT_TRUE(RetractGoal(gone->name()).ok());
  v1::CreateGoalScoreRequest score;
  score.set_parent(Parent("p1"));
  score.mutable_goal_score()->set_goal(kept->name());
  score.mutable_goal_score()->set_score_type(v1::INITIAL);
  score.mutable_goal_score()->set_score(-1);
  *score.mutable_goal_score()->mutable_provenance() = NurseProvenance();
  ASSERT_TRUE(Await<v1::GoalScore>([&](auto done) { records_->CreateGoalScore(score, {}, std::move(done)); }).ok());

  domain::ChartOptions everything;
  everything.with_patient = true;
  everything.with_goal_scores = true;
  auto chart = records_->ReadChart("p1", everything, {});
  ASSERT_TRUE(chart.ok()) << chart.status();
  EXPECT_THAT(Names(chart->goals), ElementsAre(kept->name()));
  EXPECT_EQ(chart->goal_scores.size(), 1u);
  EXPECT_FALSE(chart->patient.has_value()) << "no demographics were sent";
  EXPECT_FALSE(chart->priorities.has_value()) << "never set";
}

TEST_F(ChartTest, RefusesABadPatientIdAndAPassedDeadline) {
  EXPECT_THAT(records_->ReadChart("p/1", {}, {}), StatusIs(absl::StatusCode::kInvalidArgument));
  EXPECT_THAT(records_->ReadChart("p1", {}, PastDeadline()), StatusIs(absl::StatusCode::kDeadlineExceeded));
}

}  // namespace
}  // namespace wmty::testing
