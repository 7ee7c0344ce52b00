// The patient summary is cached in memory until the patient's next write
// (PatientRecordsOptions::summary_cache_bytes). A cached summary must never
// hide a write that has been acknowledged: these tests read a summary (so it
// is cached), write, and expect the write in the next summary, for every kind
// of write; check that the store moves the patient's write generation before
// it acknowledges; and race readers against a writer.
#include <atomic>
#include <string>
#include <thread>
#include <vector>

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "absl/strings/str_cat.h"
#include "domain/records_fixture.h"

namespace wmty::testing {
namespace {

using ::testing::ElementsAre;
using ::testing::IsEmpty;

class SummaryCacheTest : public RecordsTest {
 protected:
  // The summary, and whether it came from the cache.
  v1::PatientSummary SummaryOf(const std::string& patient, bool* from_cache = nullptr) {
    const uint64_t hits = records_->summary_cache_stats().hits;
    auto summary = Summary(patient);
    EXPECT_TRUE(summary.ok()) << summary.status();
    if (from_cache != nullptr) *from_cache = records_->summary_cache_stats().hits > hits;
    return summary.value_or(v1::PatientSummary());
  }

  static std::vector<std::string> GoalDescriptions(const v1::PatientSummary& s) {
    std::vector<std::string> out;
    for (const auto& g : s.goals()) out.push_back(g.description());
    return out;
  }
};

TEST_F(SummaryCacheTest, ASecondReadWithoutAWriteBetweenComesFromTheCache) {
  ASSERT_TRUE(CreateGoal("p1", ValidGoal("Walk to the mailbox")).ok());
  bool cached = true;
  const v1::PatientSummary first = SummaryOf("p1", &cached);
  EXPECT_FALSE(cached);
  const v1::PatientSummary second = SummaryOf("p1", &cached);
  EXPECT_TRUE(cached);
  EXPECT_EQ(first.SerializeAsString(), second.SerializeAsString());
  EXPECT_GT(records_->summary_cache_stats().bytes, 0u);
  EXPECT_EQ(records_->summary_cache_stats().misses, 1u);
}

TEST_F(SummaryCacheTest, EveryKindOfWriteIsInTheNextSummary) {
  bool cached = false;
  EXPECT_THAT(SummaryOf("p1").goals(), IsEmpty());

  auto goal = CreateGoal("p1", ValidGoal("Walk to the mailbox"));
  ASSERT_TRUE(goal.ok()) << goal.status();
  EXPECT_THAT(GoalDescriptions(SummaryOf("p1", &cached)), ElementsAre("Walk to the mailbox"));
  EXPECT_FALSE(cached);

  auto redescribed = Redescribe(*goal, "Walk to the end of the street");
  ASSERT_TRUE(redescribed.ok()) << redescribed.status();
  EXPECT_THAT(GoalDescriptions(SummaryOf("p1")), ElementsAre("Walk to the end of the street"));

  auto what = CreateWhatMatters("p1", ValidWhatMatters("My dog, Biscuit"));
  ASSERT_TRUE(what.ok()) << what.status();
  ASSERT_EQ(SummaryOf("p1").what_matters_size(), 1);
  EXPECT_EQ(SummaryOf("p1").what_matters(0).statement(), "My dog, Biscuit");

  auto preference = CreatePreference("p1", ValidPreference());
  ASSERT_TRUE(preference.ok()) << preference.status();
  EXPECT_EQ(SummaryOf("p1").preferences_size(), 1);

  // Priorities reorder: the older goal, ranked, comes first.
  auto second_goal = CreateGoal("p1", ValidGoal("Garden on Sundays"));
  ASSERT_TRUE(second_goal.ok()) << second_goal.status();
  EXPECT_THAT(GoalDescriptions(SummaryOf("p1")), ElementsAre("Garden on Sundays", "Walk to the end of the street"));
  auto priorities = UpdatePriorities(Priorities("p1", {goal->name()}));
  ASSERT_TRUE(priorities.ok()) << priorities.status();
  EXPECT_THAT(GoalDescriptions(SummaryOf("p1")), ElementsAre("Walk to the end of the street", "Garden on Sundays"));

  ASSERT_TRUE(RetractGoal(goal->name()).ok());
  EXPECT_THAT(GoalDescriptions(SummaryOf("p1")), ElementsAre("Garden on Sundays"));
  ASSERT_TRUE(RetractWhatMatters(what->name()).ok());
  EXPECT_THAT(SummaryOf("p1").what_matters(), IsEmpty());
  ASSERT_TRUE(RetractPreference(preference->name()).ok());
  EXPECT_THAT(SummaryOf("p1").preferences(), IsEmpty());

  SummaryOf("p1", &cached);
  EXPECT_TRUE(cached) << "no write since the last read";
}

TEST_F(SummaryCacheTest, ARefusedWriteLeavesTheCachedSummary) {
  auto goal = CreateGoal("p1", ValidGoal("Walk to the mailbox"));
  ASSERT_TRUE(goal.ok()) << goal.status();
  SummaryOf("p1");
  v1::Goal stale = *goal;
  stale.set_etag("W/\"not-the-etag\"");
  stale.set_description("Never stored");
  EXPECT_FALSE(UpdateGoal(stale, {"description"}).ok());
  bool cached = false;
  EXPECT_THAT(GoalDescriptions(SummaryOf("p1", &cached)), ElementsAre("Walk to the mailbox"));
  EXPECT_TRUE(cached);
}

TEST_F(SummaryCacheTest, TheStoreMovesThePatientsGenerationBeforeAcknowledging) {
  const uint64_t before = store_->PatientWriteGeneration("p1");
  std::atomic<uint64_t> in_callback{0};
  v1::CreateGoalRequest req = CreateGoalRequest("p1", ValidGoal());
  auto goal = Await<v1::Goal>([&](auto done) {
    records_->CreateGoal(req, {}, [&, done = std::move(done)](absl::StatusOr<v1::Goal> result) mutable {
      in_callback = store_->PatientWriteGeneration("p1");
      done(std::move(result));
    });
  });
  ASSERT_TRUE(goal.ok()) << goal.status();
  EXPECT_GT(in_callback.load(), before);
}

TEST_F(SummaryCacheTest, WithoutACacheEveryReadAssemblesFromTheStore) {
  domain::PatientRecordsOptions options;
  options.summary_cache_bytes = 0;
  auto uncached = domain::PatientRecords::Create(store_.get(), options);
  ASSERT_TRUE(uncached.ok()) << uncached.status();
  auto goal = CreateGoal("p1", ValidGoal("Walk to the mailbox"));
  ASSERT_TRUE(goal.ok());
  v1::GetPatientSummaryRequest req;
  req.set_parent("patients/p1");
  for (int i = 0; i < 3; ++i) {
    auto summary = (*uncached)->GetPatientSummary(req, {});
    ASSERT_TRUE(summary.ok()) << summary.status();
    EXPECT_THAT(GoalDescriptions(*summary), ElementsAre("Walk to the mailbox"));
  }
  EXPECT_EQ((*uncached)->summary_cache_stats().hits, 0u);
  EXPECT_EQ((*uncached)->summary_cache_stats().misses, 3u);
  EXPECT_EQ((*uncached)->summary_cache_stats().bytes, 0u);
}

// Readers keep the patient's summary cached (and re-assemble it from
// snapshots older and newer than each write) while a writer changes one goal
// again and again. After each acknowledged change the writer's own next
// summary must show it.
TEST_F(SummaryCacheTest, ReadersRacingAWriterNeverHideAnAcknowledgedChange) {
  auto goal = CreateGoal("p1", ValidGoal("version 0"));
  ASSERT_TRUE(goal.ok()) << goal.status();
  std::atomic<bool> stop{false};
  std::vector<std::thread> readers;
  for (int r = 0; r < 4; ++r) {
    readers.emplace_back([&] {
      v1::GetPatientSummaryRequest req;
      req.set_parent("patients/p1");
      while (!stop) {
        auto summary = records_->GetPatientSummary(req, {});
        if (!summary.ok()) ADD_FAILURE() << summary.status();
      }
    });
  }
  v1::Goal current = *goal;
  for (int i = 1; i <= 500; ++i) {
    const std::string description = absl::StrCat("version ", i);
    auto updated = Redescribe(current, description);
    ASSERT_TRUE(updated.ok()) << updated.status();
    current = *updated;
    auto summary = Summary("p1");
    ASSERT_TRUE(summary.ok()) << summary.status();
    ASSERT_THAT(GoalDescriptions(*summary), ElementsAre(description)) << "after write " << i;
  }
  stop = true;
  for (auto& t : readers) t.join();
  EXPECT_GT(records_->summary_cache_stats().hits, 0u);
}

}  // namespace
}  // namespace wmty::testing
