// Priorities (one ranked list per patient), links between resources, and the
// patient summary's order.
#include <future>
#include <string>
#include <vector>

#include <gmock/gmock.h>
#include <google/protobuf/util/message_differencer.h>
#include <gtest/gtest.h>

#include "domain/records_fixture.h"

namespace wmty::testing {
namespace {

using ::testing::ElementsAre;
using ::testing::IsEmpty;
using ::testing::SizeIs;

class PrioritiesTest : public RecordsTest {
 protected:
  absl::StatusOr<v1::Priorities> GetPriorities(const std::string& patient) {
    return records_->GetPriorities(Get("patients/" + patient + "/priorities"), {});
  }
};
class LinksTest : public RecordsTest {};
class SummaryTest : public RecordsTest {};

template <class R>
std::vector<std::string> Names(const google::protobuf::RepeatedPtrField<R>& items) {
  std::vector<std::string> out;
  for (const auto& r : items) out.push_back(r.name());
  return out;
}

// ---------------------------------------------------------------- priorities

TEST_F(PrioritiesTest, BeforeTheFirstSetTheyAreEmptyAtVersionZero) {
  auto p = GetPriorities("p1");
  ASSERT_TRUE(p.ok()) << p.status();
  EXPECT_EQ(p->name(), "patients/p1/priorities");
  EXPECT_EQ(p->patient().id(), "p1");
  EXPECT_EQ(p->version(), 0);
  EXPECT_TRUE(p->etag().empty());
  EXPECT_THAT(p->items(), IsEmpty());
  EXPECT_EQ(p->state(), v1::ACTIVE);

  v1::ListVersionsRequest req;
  req.set_name("patients/p1/priorities");
  auto versions = records_->ListPrioritiesVersions(req, {});
  ASSERT_TRUE(versions.ok()) << versions.status();
  EXPECT_THAT(versions->priorities(), IsEmpty());
  EXPECT_EQ(store_->LastSequence(), 0u) << "reading must not create them";
}

TEST_F(PrioritiesTest, FirstSetNeedsNoEtag) {
  auto goal = CreateGoal("p1", ValidGoal());
  ASSERT_TRUE(goal.ok());
  auto set = UpdatePriorities(Priorities("p1", {goal->name()}));
  ASSERT_TRUE(set.ok()) << set.status();
  EXPECT_EQ(set->version(), 1);
  EXPECT_EQ(set->etag(), "W/\"1\"");
  EXPECT_THAT(set->items(), ElementsAre(goal->name()));
  auto got = GetPriorities("p1");
  ASSERT_TRUE(got.ok());
  EXPECT_EQ(got->version(), 1);
  EXPECT_THAT(got->items(), ElementsAre(goal->name()));
}

TEST_F(PrioritiesTest, AnEtagBeforeTheFirstSetIsStale) {
  EXPECT_THAT(UpdatePriorities(Priorities("p1", {}, "W/\"1\"")), StatusIs(absl::StatusCode::kAborted));
  EXPECT_EQ(store_->LastSequence(), 0u);
}

TEST_F(PrioritiesTest, LaterSetsNeedTheCurrentEtag) {
  auto g1 = CreateGoal("p1", ValidGoal("one"));
  auto g2 = CreateGoal("p1", ValidGoal("two"));
  ASSERT_TRUE(g1.ok() && g2.ok());
  auto first = UpdatePriorities(Priorities("p1", {g1->name()}));
  ASSERT_TRUE(first.ok());
  const uint64_t before = store_->LastSequence();

  auto without = UpdatePriorities(Priorities("p1", {g2->name(), g1->name()}));
  EXPECT_THAT(without, StatusIs(absl::StatusCode::kInvalidArgument));
  EXPECT_THAT(ViolatedFields(without.status()), ElementsAre("priorities.etag"));
  EXPECT_THAT(UpdatePriorities(Priorities("p1", {g2->name()}, "W/\"7\"")), StatusIs(absl::StatusCode::kAborted));
  EXPECT_EQ(store_->LastSequence(), before);

  auto second = UpdatePriorities(Priorities("p1", {g2->name(), g1->name()}, first->etag()));
  ASSERT_TRUE(second.ok()) << second.status();
  EXPECT_EQ(second->version(), 2);
  EXPECT_THAT(second->items(), ElementsAre(g2->name(), g1->name()));
  EXPECT_TRUE(google::protobuf::util::MessageDifferencer::Equals(second->create_time(), first->create_time()));
  // The first etag is now stale.
  EXPECT_THAT(UpdatePriorities(Priorities("p1", {}, first->etag())), StatusIs(absl::StatusCode::kAborted));

  v1::ListVersionsRequest req;
  req.set_name("patients/p1/priorities");
  auto versions = records_->ListPrioritiesVersions(req, {});
  ASSERT_TRUE(versions.ok());
  ASSERT_THAT(versions->priorities(), SizeIs(2));
  EXPECT_THAT(versions->priorities(0).items(), ElementsAre(g1->name()));
  EXPECT_THAT(versions->priorities(1).items(), ElementsAre(g2->name(), g1->name()));
}

TEST_F(PrioritiesTest, ItemsMustExist) {
  auto set = UpdatePriorities(Priorities("p1", {"patients/p1/goals/01HZZZZZZZZZZZZZZZZZZZZZZZ"}));
  EXPECT_THAT(set, StatusIs(absl::StatusCode::kInvalidArgument));
  EXPECT_THAT(ViolatedFields(set.status()), ElementsAre("priorities.items[0]"));
  EXPECT_EQ(store_->LastSequence(), 0u);
}

TEST_F(PrioritiesTest, ItemsMustBelongToThePatient) {
  auto theirs = CreateGoal("p2", ValidGoal());
  auto mine = CreateWhatMatters("p1", ValidWhatMatters());
  ASSERT_TRUE(theirs.ok() && mine.ok());
  auto set = UpdatePriorities(Priorities("p1", {mine->name(), theirs->name()}));
  EXPECT_THAT(set, StatusIs(absl::StatusCode::kInvalidArgument));
  EXPECT_THAT(ViolatedFields(set.status()), ElementsAre("priorities.items[1]"));
}

TEST_F(PrioritiesTest, ItemsOfEveryKindMayBeRanked) {
  auto wm = CreateWhatMatters("p1", ValidWhatMatters());
  auto goal = CreateGoal("p1", ValidGoal());
  auto pref = CreatePreference("p1", ValidPreference());
  ASSERT_TRUE(wm.ok() && goal.ok() && pref.ok());
  auto set = UpdatePriorities(Priorities("p1", {pref->name(), wm->name(), goal->name()}));
  ASSERT_TRUE(set.ok()) << set.status();
  EXPECT_THAT(set->items(), ElementsAre(pref->name(), wm->name(), goal->name()));
}

TEST_F(PrioritiesTest, MalformedNameIsInvalidArgument) {
  v1::Priorities p = Priorities("p1", {});
  p.set_name("patients/p1/goals/G1");
  auto set = UpdatePriorities(p);
  EXPECT_THAT(set, StatusIs(absl::StatusCode::kInvalidArgument));
  EXPECT_THAT(ViolatedFields(set.status()), ElementsAre("priorities.name"));
}

// ---------------------------------------------------------------- links

TEST_F(LinksTest, GoalMayLinkWhatMattersOfTheSamePatient) {
  auto wm = CreateWhatMatters("p1", ValidWhatMatters());
  ASSERT_TRUE(wm.ok());
  v1::Goal g = ValidGoal();
  g.add_what_matters(wm->name());
  auto created = CreateGoal("p1", g);
  ASSERT_TRUE(created.ok()) << created.status();
  EXPECT_THAT(created->what_matters(), ElementsAre(wm->name()));
}

TEST_F(LinksTest, LinkToAMissingWhatMattersIsRefused) {
  v1::Goal g = ValidGoal();
  g.add_what_matters("patients/p1/whatMatters/01HZZZZZZZZZZZZZZZZZZZZZZZ");
  auto created = CreateGoal("p1", g);
  EXPECT_THAT(created, StatusIs(absl::StatusCode::kInvalidArgument));
  EXPECT_THAT(ViolatedFields(created.status()), ElementsAre("goal.what_matters[0]"));
  EXPECT_EQ(store_->LastSequence(), 0u);
}

TEST_F(LinksTest, LinkToAnotherPatientsWhatMattersIsRefused) {
  auto theirs = CreateWhatMatters("p2", ValidWhatMatters());
  ASSERT_TRUE(theirs.ok());
  v1::Goal g = ValidGoal();
  g.add_what_matters(theirs->name());
  auto created = CreateGoal("p1", g);
  EXPECT_THAT(created, StatusIs(absl::StatusCode::kInvalidArgument));
  EXPECT_THAT(ViolatedFields(created.status()), ElementsAre("goal.what_matters[0]"));
}

TEST_F(LinksTest, LinkToAGoalInsteadOfAWhatMattersIsRefused) {
  auto other = CreateGoal("p1", ValidGoal());
  ASSERT_TRUE(other.ok());
  v1::Goal g = ValidGoal();
  g.add_what_matters(other->name());
  EXPECT_THAT(CreateGoal("p1", g), StatusIs(absl::StatusCode::kInvalidArgument));
}

TEST_F(LinksTest, LinksAreCheckedWhenAnUpdateChangesThem) {
  auto goal = CreateGoal("p1", ValidGoal());
  ASSERT_TRUE(goal.ok());
  v1::Goal change;
  change.set_name(goal->name());
  change.set_etag(goal->etag());
  change.add_what_matters("patients/p1/whatMatters/01HZZZZZZZZZZZZZZZZZZZZZZZ");
  *change.mutable_provenance() = NurseProvenance();
  auto updated = UpdateGoal(change, {"what_matters"});
  EXPECT_THAT(updated, StatusIs(absl::StatusCode::kInvalidArgument));
  EXPECT_THAT(ViolatedFields(updated.status()), ElementsAre("goal.what_matters[0]"));

  auto wm = CreateWhatMatters("p1", ValidWhatMatters());
  ASSERT_TRUE(wm.ok());
  change.set_what_matters(0, wm->name());
  updated = UpdateGoal(change, {"what_matters"});
  ASSERT_TRUE(updated.ok()) << updated.status();
  EXPECT_THAT(updated->what_matters(), ElementsAre(wm->name()));
}

TEST_F(LinksTest, UpdatesNotTouchingLinksSucceedAfterTheLinkedEntryIsRetracted) {
  auto wm = CreateWhatMatters("p1", ValidWhatMatters());
  ASSERT_TRUE(wm.ok());
  v1::Goal g = ValidGoal();
  g.add_what_matters(wm->name());
  auto goal = CreateGoal("p1", g);
  ASSERT_TRUE(goal.ok());
  ASSERT_TRUE(RetractWhatMatters(wm->name()).ok());
  auto updated = Redescribe(*goal, "still my goal");
  ASSERT_TRUE(updated.ok()) << updated.status();
  EXPECT_THAT(updated->what_matters(), ElementsAre(wm->name()));
}

// ---------------------------------------------------------------- summary

TEST_F(SummaryTest, PrioritizedItemsComeFirstInRankOrderThenMostRecentlyChanged) {
  auto wm1 = CreateWhatMatters("p1", ValidWhatMatters("garden"));
  auto wm2 = CreateWhatMatters("p1", ValidWhatMatters("grandchildren"));
  auto wm3 = CreateWhatMatters("p1", ValidWhatMatters("church"));
  auto g1 = CreateGoal("p1", ValidGoal("walk"));
  auto g2 = CreateGoal("p1", ValidGoal("dance"));
  auto g3 = CreateGoal("p1", ValidGoal("drive"));
  auto g4 = CreateGoal("p1", ValidGoal("cook"));
  auto p1 = CreatePreference("p1", ValidPreference());
  ASSERT_TRUE(wm1.ok() && wm2.ok() && wm3.ok() && g1.ok() && g2.ok() && g3.ok() && g4.ok() && p1.ok());
  // g1 changes last: it is the most recently changed unranked goal.
  ASSERT_TRUE(Redescribe(*g1, "walk to the mailbox").ok());
  v1::WhatMatters wm1_change = *wm1;
  wm1_change.set_statement("my vegetable garden");
  ASSERT_TRUE(UpdateWhatMatters(wm1_change).ok());

  auto prio = UpdatePriorities(Priorities("p1", {g3->name(), wm2->name(), g2->name()}));
  ASSERT_TRUE(prio.ok()) << prio.status();

  auto summary = Summary("p1");
  ASSERT_TRUE(summary.ok()) << summary.status();
  EXPECT_EQ(summary->parent(), "patients/p1");
  EXPECT_THAT(summary->priorities().items(), ElementsAre(g3->name(), wm2->name(), g2->name()));
  EXPECT_EQ(summary->priorities().version(), 1);
  // Ranked: g3 then g2. Unranked, most recent first: g1 (updated), g4, ...
  EXPECT_THAT(Names(summary->goals()), ElementsAre(g3->name(), g2->name(), g1->name(), g4->name()));
  // Ranked: wm2. Unranked: wm1 (updated last), wm3.
  EXPECT_THAT(Names(summary->what_matters()), ElementsAre(wm2->name(), wm1->name(), wm3->name()));
  EXPECT_THAT(Names(summary->preferences()), ElementsAre(p1->name()));
  EXPECT_FALSE(summary->truncated());
}

TEST_F(SummaryTest, WithoutPrioritiesEverythingIsMostRecentFirst) {
  auto g1 = CreateGoal("p1", ValidGoal("first"));
  auto g2 = CreateGoal("p1", ValidGoal("second"));
  auto g3 = CreateGoal("p1", ValidGoal("third"));
  ASSERT_TRUE(g1.ok() && g2.ok() && g3.ok());
  auto summary = Summary("p1");
  ASSERT_TRUE(summary.ok());
  EXPECT_THAT(Names(summary->goals()), ElementsAre(g3->name(), g2->name(), g1->name()));
  EXPECT_EQ(summary->priorities().version(), 0);
  EXPECT_EQ(summary->priorities().name(), "patients/p1/priorities");
}

TEST_F(SummaryTest, SummaryOfAnUnknownPatientIsEmpty) {
  auto summary = Summary("nobody");
  ASSERT_TRUE(summary.ok()) << summary.status();
  EXPECT_THAT(summary->goals(), IsEmpty());
  EXPECT_THAT(summary->what_matters(), IsEmpty());
  EXPECT_THAT(summary->preferences(), IsEmpty());
  EXPECT_THAT(summary->priorities().items(), IsEmpty());
  EXPECT_THAT(Summary("bad id"), StatusIs(absl::StatusCode::kInvalidArgument));
}

TEST_F(SummaryTest, AtMostAThousandOfAKindWithTruncatedSet) {
  // Written concurrently, so that group commit shares the fsyncs.
  std::vector<std::future<absl::StatusOr<v1::Preference>>> writes;
  for (int i = 0; i < 1001; ++i) {
    writes.push_back(std::async(std::launch::async, [this] { return CreatePreference("p1", ValidPreference()); }));
    if (writes.size() == 64 || i == 1000) {
      for (auto& w : writes) ASSERT_TRUE(w.get().ok());
      writes.clear();
    }
  }
  ASSERT_TRUE(CreateGoal("p1", ValidGoal("one")).ok());
  auto summary = Summary("p1");
  ASSERT_TRUE(summary.ok()) << summary.status();
  EXPECT_THAT(summary->preferences(), SizeIs(1000));
  EXPECT_THAT(summary->goals(), SizeIs(1));
  EXPECT_TRUE(summary->truncated());
}

TEST_F(SummaryTest, RetractedRankedItemsAreLeftOut) {
  auto g1 = CreateGoal("p1", ValidGoal("one"));
  auto g2 = CreateGoal("p1", ValidGoal("two"));
  ASSERT_TRUE(g1.ok() && g2.ok());
  ASSERT_TRUE(UpdatePriorities(Priorities("p1", {g2->name(), g1->name()})).ok());
  ASSERT_TRUE(RetractGoal(g2->name()).ok());
  auto summary = Summary("p1");
  ASSERT_TRUE(summary.ok());
  EXPECT_THAT(Names(summary->goals()), ElementsAre(g1->name()));
}

}  // namespace
}  // namespace wmty::testing
