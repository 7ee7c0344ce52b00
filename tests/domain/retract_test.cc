// Retract (entered in error): hidden from current views, kept in history,
// frozen against further change.
#include <string>
#include <vector>

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "domain/records_fixture.h"

namespace wmty::testing {
namespace {

using ::testing::ElementsAre;
using ::testing::IsEmpty;
using ::testing::SizeIs;

class RetractTest : public RecordsTest {};

TEST_F(RetractTest, RetractedGoalIsHiddenFromListAndSummaryButKeptInGetAndHistory) {
  auto keep = CreateGoal("p1", ValidGoal("keep me"));
  auto wrong = CreateGoal("p1", ValidGoal("entered on the wrong chart"));
  ASSERT_TRUE(keep.ok() && wrong.ok());

  auto retracted = RetractGoal(RetractRequest(wrong->name(), "wrong patient"));
  ASSERT_TRUE(retracted.ok()) << retracted.status();
  EXPECT_EQ(retracted->state(), v1::RETRACTED);
  EXPECT_EQ(retracted->version(), 2);
  EXPECT_EQ(retracted->retract_reason(), "wrong patient");
  EXPECT_EQ(retracted->description(), "entered on the wrong chart");
  EXPECT_EQ(retracted->provenance().recorded_by().practitioner_id(), "nurse-17");

  EXPECT_THAT(GoalNames("p1"), ElementsAre(keep->name()));
  auto summary = Summary("p1");
  ASSERT_TRUE(summary.ok());
  ASSERT_THAT(summary->goals(), SizeIs(1));
  EXPECT_EQ(summary->goals(0).name(), keep->name());

  auto got = GetGoal(wrong->name());
  ASSERT_TRUE(got.ok()) << got.status();
  EXPECT_EQ(got->state(), v1::RETRACTED);
  EXPECT_EQ(got->retract_reason(), "wrong patient");

  auto history = GoalVersions(wrong->name());
  ASSERT_TRUE(history.ok());
  ASSERT_THAT(history->goals(), SizeIs(2));
  EXPECT_EQ(history->goals(0).state(), v1::ACTIVE);
  EXPECT_EQ(history->goals(1).state(), v1::RETRACTED);
  ExpectIntegrity();
}

TEST_F(RetractTest, ShowRetractedListsThem) {
  auto keep = CreateGoal("p1", ValidGoal("keep"));
  auto wrong = CreateGoal("p1", ValidGoal("wrong"));
  ASSERT_TRUE(keep.ok() && wrong.ok());
  ASSERT_TRUE(RetractGoal(wrong->name()).ok());
  EXPECT_THAT(GoalNames("p1", /*show_retracted=*/true), ElementsAre(keep->name(), wrong->name()));
}

TEST_F(RetractTest, UpdatingARetractedGoalIsFailedPrecondition) {
  auto created = CreateGoal("p1", ValidGoal());
  ASSERT_TRUE(created.ok());
  auto retracted = RetractGoal(created->name());
  ASSERT_TRUE(retracted.ok());
  const uint64_t before = store_->LastSequence();
  // Even with the current etag.
  EXPECT_THAT(Redescribe(*retracted, "revived"), StatusIs(absl::StatusCode::kFailedPrecondition));
  EXPECT_THAT(Redescribe(*created, "revived"), StatusIs(absl::StatusCode::kFailedPrecondition));
  EXPECT_EQ(store_->LastSequence(), before);
}

TEST_F(RetractTest, RetractingTwiceIsFailedPrecondition) {
  auto created = CreateGoal("p1", ValidGoal());
  ASSERT_TRUE(created.ok());
  ASSERT_TRUE(RetractGoal(created->name()).ok());
  EXPECT_THAT(RetractGoal(created->name()), StatusIs(absl::StatusCode::kFailedPrecondition));
  EXPECT_EQ(store_->LastSequence(), 2u);
}

TEST_F(RetractTest, EtagWhenGivenMustBeCurrent) {
  auto created = CreateGoal("p1", ValidGoal());
  ASSERT_TRUE(created.ok());
  auto updated = Redescribe(*created, "v2");
  ASSERT_TRUE(updated.ok());
  auto stale = RetractRequest(created->name());
  stale.set_etag(created->etag());
  EXPECT_THAT(RetractGoal(stale), StatusIs(absl::StatusCode::kAborted));
  auto current = RetractRequest(created->name());
  current.set_etag(updated->etag());
  auto retracted = RetractGoal(current);
  ASSERT_TRUE(retracted.ok()) << retracted.status();
  EXPECT_EQ(retracted->version(), 3);
}

TEST_F(RetractTest, RetractNeedsWhoRetractsAndAShortReason) {
  auto created = CreateGoal("p1", ValidGoal());
  ASSERT_TRUE(created.ok());
  auto req = RetractRequest(created->name(), std::string(1025, 'r'));
  req.clear_retracted_by();
  auto refused = RetractGoal(req);
  EXPECT_THAT(refused, StatusIs(absl::StatusCode::kInvalidArgument));
  EXPECT_THAT(ViolatedFields(refused.status()), ElementsAre("reason", "retracted_by.practitioner_id"));
  EXPECT_EQ(store_->LastSequence(), 1u);
}

TEST_F(RetractTest, RetractingAnUnknownGoalIsNotFound) {
  EXPECT_THAT(RetractGoal("patients/p1/goals/01HZZZZZZZZZZZZZZZZZZZZZZZ"), StatusIs(absl::StatusCode::kNotFound));
  EXPECT_THAT(RetractGoal("patients/p1/goals"), StatusIs(absl::StatusCode::kInvalidArgument));
}

TEST_F(RetractTest, RetractedWhatMattersAndPreferencesLeaveTheSummary) {
  auto wm = CreateWhatMatters("p1", ValidWhatMatters());
  auto pref = CreatePreference("p1", ValidPreference());
  ASSERT_TRUE(wm.ok() && pref.ok());
  ASSERT_TRUE(RetractWhatMatters(wm->name()).ok());
  ASSERT_TRUE(RetractPreference(pref->name()).ok());
  auto summary = Summary("p1");
  ASSERT_TRUE(summary.ok());
  EXPECT_THAT(summary->what_matters(), IsEmpty());
  EXPECT_THAT(summary->preferences(), IsEmpty());

  v1::ListWhatMattersRequest list;
  list.set_parent(Parent("p1"));
  auto listed = records_->ListWhatMatters(list, {});
  ASSERT_TRUE(listed.ok());
  EXPECT_THAT(listed->what_matters(), IsEmpty());
  auto got = records_->GetPreference(Get(pref->name()), {});
  ASSERT_TRUE(got.ok());
  EXPECT_EQ(got->state(), v1::RETRACTED);
}

TEST_F(RetractTest, NewLinksToARetractedWhatMattersAreRefused) {
  auto wm = CreateWhatMatters("p1", ValidWhatMatters());
  ASSERT_TRUE(wm.ok());
  ASSERT_TRUE(RetractWhatMatters(wm->name()).ok());
  v1::Goal g = ValidGoal();
  g.add_what_matters(wm->name());
  auto created = CreateGoal("p1", g);
  EXPECT_THAT(created, StatusIs(absl::StatusCode::kInvalidArgument));
  EXPECT_THAT(ViolatedFields(created.status()), ElementsAre("goal.what_matters[0]"));
  auto prio = UpdatePriorities(Priorities("p1", {wm->name()}));
  EXPECT_THAT(prio, StatusIs(absl::StatusCode::kInvalidArgument));
  EXPECT_THAT(ViolatedFields(prio.status()), ElementsAre("priorities.items[0]"));
}

}  // namespace
}  // namespace wmty::testing
