// Idempotent writes: a request_id makes a retry return the first result and
// never write twice.
#include <latch>
#include <string>
#include <thread>
#include <vector>

#include <gmock/gmock.h>
#include <google/protobuf/util/message_differencer.h>
#include <gtest/gtest.h>

#include "domain/records_fixture.h"

namespace wmty::testing {
namespace {

using ::google::protobuf::util::MessageDifferencer;
using ::testing::ElementsAre;
using ::testing::SizeIs;

class IdempotencyTest : public RecordsTest {};

TEST_F(IdempotencyTest, RetriedCreateReturnsTheFirstResultAndWritesNothing) {
  const auto req = CreateGoalRequest("p1", ValidGoal(), "5b8f-retry-1");
  auto first = CreateGoal(req);
  ASSERT_TRUE(first.ok()) << first.status();
  const uint64_t after_first = store_->LastSequence();

  auto second = CreateGoal(req);
  ASSERT_TRUE(second.ok()) << second.status();
  EXPECT_EQ(second->name(), first->name());
  EXPECT_EQ(second->version(), first->version());
  EXPECT_TRUE(MessageDifferencer::Equals(*second, *first));
  EXPECT_EQ(store_->LastSequence(), after_first);
  EXPECT_THAT(GoalNames("p1"), ElementsAre(first->name()));
  ExpectIntegrity();
}

TEST_F(IdempotencyTest, WithoutARequestIdEveryCreateIsNew) {
  const auto req = CreateGoalRequest("p1", ValidGoal());
  ASSERT_TRUE(CreateGoal(req).ok());
  ASSERT_TRUE(CreateGoal(req).ok());
  EXPECT_THAT(GoalNames("p1"), SizeIs(2));
  EXPECT_EQ(store_->LastSequence(), 2u);
}

TEST_F(IdempotencyTest, SameRequestIdWithDifferentContentIsAlreadyExists) {
  ASSERT_TRUE(CreateGoal("p1", ValidGoal("Dance at the wedding"), "req-1").ok());
  const uint64_t before = store_->LastSequence();
  auto other = CreateGoal("p1", ValidGoal("Dance at the wedding!"), "req-1");
  EXPECT_THAT(other, StatusIs(absl::StatusCode::kAlreadyExists));
  EXPECT_EQ(store_->LastSequence(), before);
  EXPECT_THAT(GoalNames("p1"), SizeIs(1));
}

TEST_F(IdempotencyTest, SameRequestIdForAnotherMethodIsAlreadyExists) {
  ASSERT_TRUE(CreateGoal("p1", ValidGoal(), "req-1").ok());
  auto wm = CreateWhatMatters("p1", ValidWhatMatters(), "req-1");
  EXPECT_THAT(wm, StatusIs(absl::StatusCode::kAlreadyExists));
  EXPECT_EQ(store_->LastSequence(), 1u);
}

TEST_F(IdempotencyTest, RetriedUpdateReturnsItsFirstResultEvenAfterLaterChanges) {
  auto created = CreateGoal("p1", ValidGoal("v1"));
  ASSERT_TRUE(created.ok());
  v1::Goal change;
  change.set_name(created->name());
  change.set_etag(created->etag());
  change.set_description("v2");
  *change.mutable_provenance() = NurseProvenance();
  const auto req = UpdateGoalRequest(change, {"description"}, "update-1");
  auto first = UpdateGoal(req);
  ASSERT_TRUE(first.ok()) << first.status();
  auto later = Redescribe(*first, "v3");
  ASSERT_TRUE(later.ok());
  const uint64_t before = store_->LastSequence();

  // The etag in the retry is stale by now; the retry still gets version 2.
  auto retry = UpdateGoal(req);
  ASSERT_TRUE(retry.ok()) << retry.status();
  EXPECT_EQ(retry->version(), 2);
  EXPECT_EQ(retry->description(), "v2");
  EXPECT_EQ(store_->LastSequence(), before);
  auto got = GetGoal(created->name());
  ASSERT_TRUE(got.ok());
  EXPECT_EQ(got->version(), 3);
}

TEST_F(IdempotencyTest, RetriedRetractReturnsTheRetractedVersion) {
  auto created = CreateGoal("p1", ValidGoal());
  ASSERT_TRUE(created.ok());
  const auto req = RetractRequest(created->name(), "wrong patient", "retract-1");
  auto first = RetractGoal(req);
  ASSERT_TRUE(first.ok()) << first.status();
  auto retry = RetractGoal(req);
  ASSERT_TRUE(retry.ok()) << retry.status();  // not FAILED_PRECONDITION "already retracted"
  EXPECT_EQ(retry->version(), 2);
  EXPECT_EQ(retry->state(), v1::RETRACTED);
  EXPECT_EQ(store_->LastSequence(), 2u);
}

TEST_F(IdempotencyTest, RetriedPrioritiesUpdateWritesOnce) {
  auto goal = CreateGoal("p1", ValidGoal());
  ASSERT_TRUE(goal.ok());
  auto first = UpdatePriorities(Priorities("p1", {goal->name()}), "prio-1");
  ASSERT_TRUE(first.ok()) << first.status();
  auto retry = UpdatePriorities(Priorities("p1", {goal->name()}), "prio-1");
  ASSERT_TRUE(retry.ok()) << retry.status();
  EXPECT_EQ(retry->version(), 1);
  EXPECT_EQ(store_->LastSequence(), 2u);
}

TEST_F(IdempotencyTest, ConcurrentIdenticalRetriesWriteExactlyOneRecord) {
  constexpr int kThreads = 8;
  const auto req = CreateGoalRequest("p1", ValidGoal(), "c0ffee-retry");
  std::vector<absl::StatusOr<v1::Goal>> results(kThreads, absl::UnknownError("not run"));
  std::latch start(kThreads);
  std::vector<std::thread> threads;
  for (int i = 0; i < kThreads; ++i) {
    threads.emplace_back([&, i] {
      start.arrive_and_wait();
      results[i] = CreateGoal(req);
    });
  }
  for (auto& t : threads) t.join();
  for (const auto& r : results) {
    ASSERT_TRUE(r.ok()) << r.status();
    EXPECT_EQ(r->name(), results[0]->name());
    EXPECT_EQ(r->version(), 1);
  }
  EXPECT_THAT(GoalNames("p1"), ElementsAre(results[0]->name()));
  EXPECT_EQ(store_->LastSequence(), 1u);
  ExpectIntegrity();
}

TEST_F(IdempotencyTest, RequestIdsAreRememberedAcrossRestarts) {
  const auto req = CreateGoalRequest("p1", ValidGoal(), "before-restart");
  auto first = CreateGoal(req);
  ASSERT_TRUE(first.ok());
  Reopen();
  auto retry = CreateGoal(req);
  ASSERT_TRUE(retry.ok()) << retry.status();
  EXPECT_EQ(retry->name(), first->name());
  EXPECT_EQ(store_->LastSequence(), 1u);
}

TEST_F(IdempotencyTest, RequestIdLongerThan128BytesIsRefused) {
  auto created = CreateGoal("p1", ValidGoal(), std::string(129, 'r'));
  EXPECT_THAT(created, StatusIs(absl::StatusCode::kInvalidArgument));
  EXPECT_THAT(ViolatedFields(created.status()), ElementsAre("request_id"));
  EXPECT_TRUE(CreateGoal("p1", ValidGoal(), std::string(128, 'r')).ok());
}

}  // namespace
}  // namespace wmty::testing
