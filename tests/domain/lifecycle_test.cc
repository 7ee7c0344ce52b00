// Durability across close/reopen, deadlines, and the basic read errors.
#include <string>
#include <vector>

#include <gmock/gmock.h>
#include <google/protobuf/util/message_differencer.h>
#include <gtest/gtest.h>

#include "domain/records_fixture.h"

namespace wmty::testing {
namespace {

using ::google::protobuf::util::MessageDifferencer;
using ::testing::ElementsAre;
using ::testing::IsEmpty;
using ::testing::SizeIs;

class ReopenTest : public RecordsTest {};
class DeadlineTest : public RecordsTest {};
class ReadTest : public RecordsTest {};

TEST_F(ReopenTest, EverythingSurvivesClosingAndReopeningTheStore) {
  auto wm = CreateWhatMatters("p1", ValidWhatMatters());
  ASSERT_TRUE(wm.ok());
  v1::Goal g = ValidGoal();
  g.add_what_matters(wm->name());
  auto goal = CreateGoal("p1", g);
  ASSERT_TRUE(goal.ok());
  auto goal_v2 = Redescribe(*goal, "after an update");
  ASSERT_TRUE(goal_v2.ok());
  auto pref = CreatePreference("p1", ValidPreference());
  ASSERT_TRUE(pref.ok());
  ASSERT_TRUE(RetractPreference(pref->name()).ok());
  auto prio = UpdatePriorities(Priorities("p1", {goal->name(), wm->name()}));
  ASSERT_TRUE(prio.ok());
  auto summary_before = Summary("p1");
  ASSERT_TRUE(summary_before.ok());
  const uint64_t sequence = store_->LastSequence();

  Reopen();

  EXPECT_EQ(store_->LastSequence(), sequence);
  ExpectIntegrity();
  auto got = GetGoal(goal->name());
  ASSERT_TRUE(got.ok()) << got.status();
  EXPECT_TRUE(MessageDifferencer::Equals(*got, *goal_v2));
  auto versions = GoalVersions(goal->name());
  ASSERT_TRUE(versions.ok());
  ASSERT_THAT(versions->goals(), SizeIs(2));
  EXPECT_TRUE(MessageDifferencer::Equals(versions->goals(0), *goal));
  auto got_pref = records_->GetPreference(Get(pref->name()), {});
  ASSERT_TRUE(got_pref.ok());
  EXPECT_EQ(got_pref->state(), v1::RETRACTED);
  auto summary_after = Summary("p1");
  ASSERT_TRUE(summary_after.ok());
  EXPECT_TRUE(MessageDifferencer::Equals(*summary_after, *summary_before));

  // Writing continues the same sequence and version history.
  auto goal_v3 = Redescribe(*goal_v2, "after the restart");
  ASSERT_TRUE(goal_v3.ok()) << goal_v3.status();
  EXPECT_EQ(goal_v3->version(), 3);
  EXPECT_EQ(store_->LastSequence(), sequence + 1);
  ExpectIntegrity();
}

TEST_F(ReopenTest, PageTokensStayValidAcrossRestarts) {
  std::vector<std::string> created;
  for (int i = 0; i < 5; ++i) {
    auto g = CreateGoal("p1", ValidGoal("goal " + std::to_string(i)));
    ASSERT_TRUE(g.ok());
    created.push_back(g->name());
  }
  auto first = ListGoals(ListGoalsRequest("p1", 2));
  ASSERT_TRUE(first.ok());
  ASSERT_FALSE(first->next_page_token().empty());
  Reopen();
  auto req = ListGoalsRequest("p1", 2);
  req.set_page_token(first->next_page_token());
  auto second = ListGoals(req);
  ASSERT_TRUE(second.ok()) << second.status();
  ASSERT_THAT(second->goals(), SizeIs(2));
  EXPECT_EQ(second->goals(0).name(), created[2]);
  EXPECT_EQ(second->goals(1).name(), created[3]);
}

// ---------------------------------------------------------------- deadlines

TEST_F(DeadlineTest, WritesPastTheirDeadlineAreNotCommitted) {
  auto goal = CreateGoal("p1", ValidGoal("existing"));
  ASSERT_TRUE(goal.ok());
  const uint64_t before = store_->LastSequence();

  EXPECT_THAT(CreateGoal("p1", ValidGoal("late"), "", PastDeadline()), StatusIs(absl::StatusCode::kDeadlineExceeded));
  EXPECT_THAT(CreateWhatMatters("p1", ValidWhatMatters(), "", PastDeadline()),
              StatusIs(absl::StatusCode::kDeadlineExceeded));
  v1::Goal change = *goal;
  change.set_description("late change");
  EXPECT_THAT(UpdateGoal(change, {"description"}, "", PastDeadline()), StatusIs(absl::StatusCode::kDeadlineExceeded));
  EXPECT_THAT(Await<v1::Goal>([&](auto done) {
                records_->RetractGoal(RetractRequest(goal->name()), PastDeadline(), std::move(done));
              }),
              StatusIs(absl::StatusCode::kDeadlineExceeded));
  EXPECT_THAT(UpdatePriorities(Priorities("p1", {goal->name()}), "", PastDeadline()),
              StatusIs(absl::StatusCode::kDeadlineExceeded));

  EXPECT_EQ(store_->LastSequence(), before);
  EXPECT_THAT(GoalNames("p1"), ElementsAre(goal->name()));
  auto got = GetGoal(goal->name());
  ASSERT_TRUE(got.ok());
  EXPECT_EQ(got->version(), 1);
  EXPECT_EQ(got->description(), "existing");
  ExpectIntegrity();
}

TEST_F(DeadlineTest, ALateRequestIdIsNotRemembered) {
  // A request refused for its deadline may be retried with the same id.
  const auto req = CreateGoalRequest("p1", ValidGoal(), "retry-after-timeout");
  EXPECT_THAT(CreateGoal(req, PastDeadline()), StatusIs(absl::StatusCode::kDeadlineExceeded));
  auto retry = CreateGoal(req);
  ASSERT_TRUE(retry.ok()) << retry.status();
  EXPECT_EQ(store_->LastSequence(), 1u);
}

TEST_F(DeadlineTest, ReadsPastTheirDeadlineFail) {
  auto goal = CreateGoal("p1", ValidGoal());
  ASSERT_TRUE(goal.ok());
  EXPECT_THAT(GetGoal(goal->name(), PastDeadline()), StatusIs(absl::StatusCode::kDeadlineExceeded));
  EXPECT_THAT(Summary("p1", PastDeadline()), StatusIs(absl::StatusCode::kDeadlineExceeded));
  v1::ListVersionsRequest versions;
  versions.set_name(goal->name());
  EXPECT_THAT(records_->ListGoalVersions(versions, PastDeadline()), StatusIs(absl::StatusCode::kDeadlineExceeded));
  EXPECT_THAT(records_->GetPriorities(Get("patients/p1/priorities"), PastDeadline()),
              StatusIs(absl::StatusCode::kDeadlineExceeded));
}

// ---------------------------------------------------------------- reads

TEST_F(ReadTest, GetOfAnUnknownResourceIsNotFound) {
  EXPECT_THAT(GetGoal("patients/p1/goals/01HZZZZZZZZZZZZZZZZZZZZZZZ"), StatusIs(absl::StatusCode::kNotFound));
  EXPECT_THAT(records_->GetWhatMatters(Get("patients/p1/whatMatters/W1"), {}), StatusIs(absl::StatusCode::kNotFound));
}

TEST_F(ReadTest, GetWithANameOfAnotherKindIsInvalidArgument) {
  auto goal = CreateGoal("p1", ValidGoal());
  ASSERT_TRUE(goal.ok());
  auto wrong = records_->GetWhatMatters(Get(goal->name()), {});
  EXPECT_THAT(wrong, StatusIs(absl::StatusCode::kInvalidArgument));
  EXPECT_THAT(ViolatedFields(wrong.status()), ElementsAre("name"));
  EXPECT_THAT(GetGoal(""), StatusIs(absl::StatusCode::kInvalidArgument));
}

TEST_F(ReadTest, CreateWithAMalformedParentNamesParentAndWritesNothing) {
  for (const char* parent : {"patients/a/b", "patients/", "people/p1"}) {
    v1::CreateGoalRequest req = CreateGoalRequest("p1", ValidGoal(" "));
    req.set_parent(parent);
    auto created = CreateGoal(req);
    EXPECT_THAT(created, StatusIs(absl::StatusCode::kInvalidArgument)) << parent;
    // Every violation is reported at once.
    EXPECT_THAT(ViolatedFields(created.status()), ElementsAre("parent", "goal.description")) << parent;
  }
  v1::CreateGoalRequest missing;
  missing.set_parent("patients/p1");
  auto created = CreateGoal(missing);
  EXPECT_THAT(ViolatedFields(created.status()), ElementsAre("goal"));
  EXPECT_EQ(store_->LastSequence(), 0u);
}

TEST_F(ReadTest, WhatMattersAndPreferencesRoundTripVerbatim) {
  v1::WhatMatters w = ValidWhatMatters("  Estar en casa con mis nietas 👵🏽 — \"mi jardín\"\n");
  w.mutable_provenance()->mutable_said_by()->set_kind(v1::Speaker::RELATED_PERSON);
  w.mutable_provenance()->mutable_said_by()->set_name("Rosa");
  w.mutable_provenance()->mutable_said_by()->set_relationship("daughter");
  auto created = CreateWhatMatters("p1", w);
  ASSERT_TRUE(created.ok()) << created.status();
  EXPECT_EQ(created->statement(), w.statement());  // the patient's own words, unchanged
  auto got = records_->GetWhatMatters(Get(created->name()), {});
  ASSERT_TRUE(got.ok());
  EXPECT_EQ(got->statement(), w.statement());
  EXPECT_EQ(got->provenance().said_by().relationship(), "daughter");

  auto pref = CreatePreference("p1", ValidPreference());
  ASSERT_TRUE(pref.ok()) << pref.status();
  auto got_pref = records_->GetPreference(Get(pref->name()), {});
  ASSERT_TRUE(got_pref.ok());
  EXPECT_THAT(got_pref->channel_ranking().channels(), ElementsAre(v1::SMS, v1::PHONE_CALL));
}

// domain::SpeakerOrNotStated: who said it is never assumed, whatever the
// write (a create, the priorities) and after a reopen.
TEST_F(ReadTest, AnAbsentSpeakerIsStoredAsNotStated) {
  v1::WhatMatters w = ValidWhatMatters();
  w.mutable_provenance()->clear_said_by();
  auto created = CreateWhatMatters("p1", w);
  ASSERT_TRUE(created.ok()) << created.status();
  EXPECT_EQ(created->provenance().said_by().kind(), v1::Speaker::NOT_STATED);
  v1::Priorities p = Priorities("p1", {created->name()});
  p.mutable_provenance()->clear_said_by();
  auto priorities = UpdatePriorities(p);
  ASSERT_TRUE(priorities.ok()) << priorities.status();
  EXPECT_EQ(priorities->provenance().said_by().kind(), v1::Speaker::NOT_STATED);

  Reopen();
  auto got = records_->GetWhatMatters(Get(created->name()), {});
  ASSERT_TRUE(got.ok()) << got.status();
  EXPECT_EQ(got->provenance().said_by().kind(), v1::Speaker::NOT_STATED);
}

}  // namespace
}  // namespace wmty::testing
