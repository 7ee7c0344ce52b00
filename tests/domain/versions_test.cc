// Versions, updates (field masks, etags), atomicity of every change and the
// concurrent-etag race, through PatientRecords on a real Store.
#include <atomic>
#include <latch>
#include <string>
#include <thread>
#include <vector>

#include <gmock/gmock.h>
#include <google/protobuf/util/message_differencer.h>
#include <google/protobuf/util/time_util.h>
#include <gtest/gtest.h>

#include "absl/strings/str_cat.h"
#include "domain/records_fixture.h"

namespace wmty::testing {
namespace {

using ::google::protobuf::util::MessageDifferencer;
using ::google::protobuf::util::TimeUtil;
using ::testing::ElementsAre;
using ::testing::SizeIs;

std::string Etag(int64_t version) { return "W/\"" + std::to_string(version) + "\""; }

class VersionsTest : public RecordsTest {};
class UpdateTest : public RecordsTest {};
class AtomicityTest : public RecordsTest {};
class ConcurrencyTest : public RecordsTest {};

// ---------------------------------------------------------------- versions

TEST_F(VersionsTest, CreateSetsTheServerFields) {
  v1::Goal g = ValidGoal();
  // Output-only fields sent by a client are ignored.
  g.set_name("patients/p1/goals/MINE");
  g.set_version(99);
  g.set_etag("W/\"99\"");
  g.set_state(v1::RETRACTED);
  g.set_retract_reason("no");
  auto created = CreateGoal("p1", g);
  ASSERT_TRUE(created.ok()) << created.status();
  EXPECT_THAT(created->name(), ::testing::StartsWith("patients/p1/goals/"));
  EXPECT_EQ(created->name().size(), std::string("patients/p1/goals/").size() + 26);
  EXPECT_NE(created->name(), "patients/p1/goals/MINE");
  EXPECT_EQ(created->patient().id(), "p1");
  EXPECT_EQ(created->version(), 1);
  EXPECT_EQ(created->etag(), Etag(1));
  EXPECT_EQ(created->state(), v1::ACTIVE);
  EXPECT_EQ(created->retract_reason(), "");
  EXPECT_TRUE(created->has_create_time());
  EXPECT_TRUE(MessageDifferencer::Equals(created->create_time(), created->update_time()));
  // said_time defaults to when the server recorded it.
  EXPECT_TRUE(MessageDifferencer::Equals(created->provenance().said_time(), created->create_time()));
  EXPECT_EQ(created->description(), g.description());

  auto got = GetGoal(created->name());
  ASSERT_TRUE(got.ok()) << got.status();
  EXPECT_TRUE(MessageDifferencer::Equals(*got, *created));
}

TEST_F(VersionsTest, CreateThenThreeUpdatesMakesFourVersionsOldestFirst) {
  auto v1 = CreateGoal("p1", ValidGoal("first words"));
  ASSERT_TRUE(v1.ok()) << v1.status();
  v1::Goal current = *v1;
  for (const char* words : {"second words", "third words", "fourth words"}) {
    auto next = Redescribe(current, words);
    ASSERT_TRUE(next.ok()) << next.status();
    current = *next;
  }
  EXPECT_EQ(current.version(), 4);
  EXPECT_EQ(current.etag(), Etag(4));

  auto versions = GoalVersions(v1->name());
  ASSERT_TRUE(versions.ok()) << versions.status();
  ASSERT_THAT(versions->goals(), SizeIs(4));
  EXPECT_TRUE(versions->next_page_token().empty());
  const char* expected[] = {"first words", "second words", "third words", "fourth words"};
  for (int i = 0; i < 4; ++i) {
    const v1::Goal& v = versions->goals(i);
    EXPECT_EQ(v.name(), v1->name());
    EXPECT_EQ(v.version(), i + 1);
    EXPECT_EQ(v.etag(), Etag(i + 1));
    EXPECT_EQ(v.description(), expected[i]);
    EXPECT_EQ(v.state(), v1::ACTIVE);
    EXPECT_TRUE(MessageDifferencer::Equals(v.create_time(), v1->create_time())) << "version " << i + 1;
  }
  auto got = GetGoal(v1->name());
  ASSERT_TRUE(got.ok());
  EXPECT_EQ(got->version(), 4);
  EXPECT_EQ(got->description(), "fourth words");
}

TEST_F(VersionsTest, EarlierVersionsNeverChange) {
  auto created = CreateGoal("p1", ValidGoal("first"));
  ASSERT_TRUE(created.ok());
  auto second = Redescribe(*created, "second");
  ASSERT_TRUE(second.ok());
  auto before = GoalVersions(created->name());
  ASSERT_TRUE(before.ok());
  ASSERT_THAT(before->goals(), SizeIs(2));

  auto third = Redescribe(*second, "third");
  ASSERT_TRUE(third.ok());
  ASSERT_TRUE(RetractGoal(created->name()).ok());

  auto after = GoalVersions(created->name());
  ASSERT_TRUE(after.ok());
  ASSERT_THAT(after->goals(), SizeIs(4));
  for (int i = 0; i < 2; ++i) {
    EXPECT_TRUE(MessageDifferencer::Equals(before->goals(i), after->goals(i))) << "version " << i + 1 << " changed";
  }
  EXPECT_TRUE(MessageDifferencer::Equals(before->goals(0), *created));
  EXPECT_TRUE(MessageDifferencer::Equals(before->goals(1), *second));
}

TEST_F(VersionsTest, VersionHistoryPagesOldestFirst) {
  auto created = CreateGoal("p1", ValidGoal("v1"));
  ASSERT_TRUE(created.ok());
  v1::Goal current = *created;
  for (int i = 2; i <= 5; ++i) {
    auto next = Redescribe(current, "v" + std::to_string(i));
    ASSERT_TRUE(next.ok());
    current = *next;
  }
  std::vector<int64_t> seen;
  std::string token;
  int pages = 0;
  do {
    auto page = GoalVersions(created->name(), 2, token);
    ASSERT_TRUE(page.ok()) << page.status();
    EXPECT_LE(page->goals_size(), 2);
    for (const auto& g : page->goals()) seen.push_back(g.version());
    token = page->next_page_token();
    ASSERT_LT(++pages, 10);
  } while (!token.empty());
  EXPECT_THAT(seen, ElementsAre(1, 2, 3, 4, 5));
  EXPECT_EQ(pages, 3);
}

TEST_F(VersionsTest, VersionTokenOfOneGoalIsRefusedForAnother) {
  auto a = CreateGoal("p1", ValidGoal("a"));
  auto b = CreateGoal("p1", ValidGoal("b"));
  ASSERT_TRUE(a.ok() && b.ok());
  ASSERT_TRUE(Redescribe(*a, "a2").ok());
  ASSERT_TRUE(Redescribe(*b, "b2").ok());
  auto page = GoalVersions(a->name(), 1);
  ASSERT_TRUE(page.ok());
  ASSERT_FALSE(page->next_page_token().empty());
  auto other = GoalVersions(b->name(), 1, page->next_page_token());
  EXPECT_THAT(other, StatusIs(absl::StatusCode::kInvalidArgument));
  EXPECT_THAT(ViolatedFields(other.status()), ElementsAre("page_token"));
}

TEST_F(VersionsTest, VersionsOfAnUnknownGoalIsNotFound) {
  EXPECT_THAT(GoalVersions("patients/p1/goals/01HZZZZZZZZZZZZZZZZZZZZZZZ"), StatusIs(absl::StatusCode::kNotFound));
  EXPECT_THAT(GoalVersions("patients/p1/whatMatters/W1"), StatusIs(absl::StatusCode::kInvalidArgument));
}

// ---------------------------------------------------------------- updates

TEST_F(UpdateTest, FieldMaskChangesOnlyTheMaskedFields) {
  v1::Goal original = ValidGoal("Walk my daughter down the aisle");
  original.add_notes()->set_text("Wedding is in June");
  auto created = CreateGoal("p1", original);
  ASSERT_TRUE(created.ok()) << created.status();

  v1::Goal change;
  change.set_name(created->name());
  change.set_etag(created->etag());
  change.set_description("Walk down the aisle without a cane");
  change.set_lifecycle_status(v1::COMPLETED);  // not in the mask: ignored
  change.set_priority(v1::LOW_PRIORITY);       // not in the mask: ignored
  change.set_target_date("2030-01-01");        // not in the mask: ignored
  *change.mutable_provenance() = NurseProvenance();
  auto updated = UpdateGoal(change, {"description"});
  ASSERT_TRUE(updated.ok()) << updated.status();

  EXPECT_EQ(updated->description(), "Walk down the aisle without a cane");
  EXPECT_EQ(updated->lifecycle_status(), original.lifecycle_status());
  EXPECT_EQ(updated->priority(), original.priority());
  EXPECT_EQ(updated->target_date(), original.target_date());
  EXPECT_EQ(updated->start_date(), original.start_date());
  EXPECT_THAT(updated->categories(), ElementsAre(v1::PERSONAL_HEALTH_GOAL));
  ASSERT_THAT(updated->notes(), SizeIs(1));
  EXPECT_EQ(updated->notes(0).text(), "Wedding is in June");
  EXPECT_EQ(updated->version(), 2);
  EXPECT_EQ(updated->etag(), Etag(2));
  EXPECT_TRUE(MessageDifferencer::Equals(updated->create_time(), created->create_time()));
  EXPECT_GT(TimeUtil::TimestampToMicroseconds(updated->update_time()),
            TimeUtil::TimestampToMicroseconds(created->update_time()));
}

TEST_F(UpdateTest, FieldMaskReplacesRepeatedFieldsInsteadOfAppending) {
  v1::Goal original = ValidGoal();
  original.add_notes()->set_text("note one");
  original.add_notes()->set_text("note two");
  auto created = CreateGoal("p1", original);
  ASSERT_TRUE(created.ok());
  v1::Goal change;
  change.set_name(created->name());
  change.set_etag(created->etag());
  change.add_notes()->set_text("only note");
  change.add_categories(v1::BEHAVIORAL);
  *change.mutable_provenance() = NurseProvenance();
  auto updated = UpdateGoal(change, {"notes", "categories"});
  ASSERT_TRUE(updated.ok()) << updated.status();
  ASSERT_THAT(updated->notes(), SizeIs(1));
  EXPECT_EQ(updated->notes(0).text(), "only note");
  EXPECT_THAT(updated->categories(), ElementsAre(v1::BEHAVIORAL));
  EXPECT_EQ(updated->description(), original.description());
}

TEST_F(UpdateTest, WithoutAMaskEveryUpdatableFieldIsReplaced) {
  auto created = CreateGoal("p1", ValidGoal());
  ASSERT_TRUE(created.ok());
  v1::Goal replacement;
  replacement.set_name(created->name());
  replacement.set_etag(created->etag());
  replacement.set_description("Sleep through the night");
  replacement.set_lifecycle_status(v1::PROPOSED);
  *replacement.mutable_provenance() = NurseProvenance();
  auto updated = UpdateGoal(replacement);
  ASSERT_TRUE(updated.ok()) << updated.status();
  EXPECT_EQ(updated->description(), "Sleep through the night");
  EXPECT_EQ(updated->lifecycle_status(), v1::PROPOSED);
  EXPECT_EQ(updated->priority(), v1::GOAL_PRIORITY_UNSPECIFIED);
  EXPECT_TRUE(updated->categories().empty());
  EXPECT_TRUE(updated->start_date().empty());
  EXPECT_EQ(updated->version(), 2);
  EXPECT_TRUE(MessageDifferencer::Equals(updated->create_time(), created->create_time()));
}

TEST_F(UpdateTest, MaskNamingAFieldThatCannotBeUpdatedIsRefused) {
  auto created = CreateGoal("p1", ValidGoal());
  ASSERT_TRUE(created.ok());
  const uint64_t before = store_->LastSequence();
  for (const char* path : {"version", "etag", "name", "create_time", "state", "no_such_field", "notes.bogus"}) {
    v1::Goal change = *created;
    auto updated = UpdateGoal(change, {"description", path});
    EXPECT_THAT(updated, StatusIs(absl::StatusCode::kInvalidArgument)) << path;
    EXPECT_THAT(ViolatedFields(updated.status()), ElementsAre("update_mask.paths[1]")) << path;
  }
  EXPECT_EQ(store_->LastSequence(), before);
}

TEST_F(UpdateTest, EtagAndProvenanceAreRequired) {
  auto created = CreateGoal("p1", ValidGoal());
  ASSERT_TRUE(created.ok());
  v1::Goal change = *created;
  change.clear_etag();
  change.clear_provenance();
  auto updated = UpdateGoal(change);
  EXPECT_THAT(updated, StatusIs(absl::StatusCode::kInvalidArgument));
  EXPECT_THAT(ViolatedFields(updated.status()), ElementsAre("goal.etag", "goal.provenance"));
}

TEST_F(UpdateTest, MalformedNameIsInvalidArgumentNamingIt) {
  v1::Goal change = ValidGoal();
  change.set_name("patients/p1/whatMatters/W1");
  change.set_etag(Etag(1));
  auto updated = UpdateGoal(change);
  EXPECT_THAT(updated, StatusIs(absl::StatusCode::kInvalidArgument));
  EXPECT_THAT(ViolatedFields(updated.status()), ElementsAre("goal.name"));
}

TEST_F(UpdateTest, UnknownGoalIsNotFound) {
  v1::Goal change = ValidGoal();
  change.set_name("patients/p1/goals/01HZZZZZZZZZZZZZZZZZZZZZZZ");
  change.set_etag(Etag(1));
  EXPECT_THAT(UpdateGoal(change), StatusIs(absl::StatusCode::kNotFound));
  EXPECT_EQ(store_->LastSequence(), 0u);
}

TEST_F(UpdateTest, StaleEtagIsAborted) {
  auto created = CreateGoal("p1", ValidGoal());
  ASSERT_TRUE(created.ok());
  ASSERT_TRUE(Redescribe(*created, "newer").ok());
  auto stale = Redescribe(*created, "based on version 1");
  EXPECT_THAT(stale, StatusIs(absl::StatusCode::kAborted));
  auto got = GetGoal(created->name());
  ASSERT_TRUE(got.ok());
  EXPECT_EQ(got->description(), "newer");
  EXPECT_EQ(got->version(), 2);
}

TEST_F(UpdateTest, MergedResultIsValidated) {
  auto created = CreateGoal("p1", ValidGoal());  // start 2026-11-01, target 2027-06-15
  ASSERT_TRUE(created.ok());
  v1::Goal change;
  change.set_name(created->name());
  change.set_etag(created->etag());
  change.set_start_date("2028-01-01");  // after the stored target date
  *change.mutable_provenance() = NurseProvenance();
  auto updated = UpdateGoal(change, {"start_date"});
  EXPECT_THAT(updated, StatusIs(absl::StatusCode::kInvalidArgument));
  EXPECT_THAT(ViolatedFields(updated.status()), ElementsAre("goal.target_date"));

  auto blank = Redescribe(*created, "\u3000 ");
  EXPECT_THAT(blank, StatusIs(absl::StatusCode::kInvalidArgument));
  EXPECT_THAT(ViolatedFields(blank.status()), ElementsAre("goal.description"));
  EXPECT_EQ(store_->LastSequence(), 1u);
}

TEST_F(UpdateTest, WhatMattersFieldMaskKeepsUnmaskedFields) {
  auto created = CreateWhatMatters("p1", ValidWhatMatters("Being home for my garden"));
  ASSERT_TRUE(created.ok()) << created.status();
  v1::WhatMatters change;
  change.set_name(created->name());
  change.set_etag(created->etag());
  change.add_life_domains(v1::HOBBIES_AND_JOY);
  *change.mutable_provenance() = NurseProvenance();
  v1::UpdateWhatMattersRequest req;
  *req.mutable_what_matters() = change;
  req.mutable_update_mask()->add_paths("life_domains");
  auto updated = Await<v1::WhatMatters>([&](auto done) { records_->UpdateWhatMatters(req, {}, std::move(done)); });
  ASSERT_TRUE(updated.ok()) << updated.status();
  EXPECT_EQ(updated->statement(), "Being home for my garden");
  EXPECT_THAT(updated->life_domains(), ElementsAre(v1::HOBBIES_AND_JOY));
  EXPECT_THAT(updated->dignity_elements(), ElementsAre(v1::INDEPENDENCE));
}

// ---------------------------------------------------------------- atomicity

TEST_F(AtomicityTest, EachChangeAddsOneChangeLogEntryAndKeepsTheStoreConsistent) {
  uint64_t expected = 0;
  auto step = [&](const absl::Status& s, const char* what) {
    ASSERT_TRUE(s.ok()) << what << ": " << s;
    ++expected;
    EXPECT_EQ(store_->LastSequence(), expected) << what;
    ExpectIntegrity();
  };
  auto wm = CreateWhatMatters("p1", ValidWhatMatters());
  step(wm.status(), "create whatMatters");
  v1::Goal g = ValidGoal();
  g.add_what_matters(wm->name());
  auto goal = CreateGoal("p1", g);
  step(goal.status(), "create goal");
  auto updated = Redescribe(*goal, "changed");
  step(updated.status(), "update goal");
  auto pref = CreatePreference("p1", ValidPreference());
  step(pref.status(), "create preference");
  auto prio = UpdatePriorities(Priorities("p1", {goal->name(), wm->name()}));
  step(prio.status(), "set priorities");
  step(RetractPreference(pref->name()).status(), "retract preference");

  std::vector<storage::Change> changes;
  ASSERT_TRUE(store_->NewReader()
                  ->ScanChanges(0,
                                [&](const storage::Change& c) {
                                  changes.push_back(c);
                                  return true;
                                })
                  .ok());
  ASSERT_THAT(changes, SizeIs(6));
  const storage::Kind kinds[] = {storage::WHAT_MATTERS, storage::GOAL,       storage::GOAL,
                                 storage::PREFERENCE,   storage::PRIORITIES, storage::PREFERENCE};
  const storage::Change::Op ops[] = {storage::Change::CREATE, storage::Change::CREATE, storage::Change::UPDATE,
                                     storage::Change::CREATE, storage::Change::UPDATE, storage::Change::RETRACT};
  for (size_t i = 0; i < changes.size(); ++i) {
    EXPECT_EQ(changes[i].sequence(), i + 1);
    EXPECT_EQ(changes[i].kind(), kinds[i]) << i;
    EXPECT_EQ(changes[i].op(), ops[i]) << i;
    EXPECT_EQ(changes[i].patient_id(), "p1");
  }
  EXPECT_EQ(changes[2].version(), 2);
}

TEST_F(AtomicityTest, RefusedChangesWriteNothing) {
  auto wm = CreateWhatMatters("p1", ValidWhatMatters());
  ASSERT_TRUE(wm.ok());
  auto goal = CreateGoal("p1", ValidGoal(), "req-goal");
  ASSERT_TRUE(goal.ok());
  auto current = Redescribe(*goal, "v2");
  ASSERT_TRUE(current.ok());
  const uint64_t before = store_->LastSequence();
  ASSERT_EQ(before, 3u);

  struct Refusal {
    const char* what;
    absl::StatusCode code;
    absl::Status status;
  };
  std::vector<Refusal> refusals;
  refusals.push_back({"stale etag", absl::StatusCode::kAborted, Redescribe(*goal, "stale").status()});
  refusals.push_back(
      {"blank description on create", absl::StatusCode::kInvalidArgument, CreateGoal("p1", ValidGoal("  ")).status()});
  refusals.push_back({"invalid merged update", absl::StatusCode::kInvalidArgument, Redescribe(*current, "").status()});
  v1::Goal unknown = *current;
  unknown.set_name("patients/p1/goals/01HZZZZZZZZZZZZZZZZZZZZZZZ");
  refusals.push_back({"update unknown", absl::StatusCode::kNotFound, UpdateGoal(unknown).status()});
  refusals.push_back({"retract unknown", absl::StatusCode::kNotFound, RetractGoal(unknown.name()).status()});
  auto stale_retract = RetractRequest(goal->name());
  stale_retract.set_etag(goal->etag());
  refusals.push_back({"retract with stale etag", absl::StatusCode::kAborted, RetractGoal(stale_retract).status()});
  v1::Goal dangling = ValidGoal();
  dangling.add_what_matters("patients/p1/whatMatters/01HZZZZZZZZZZZZZZZZZZZZZZZ");
  refusals.push_back(
      {"link to a missing whatMatters", absl::StatusCode::kInvalidArgument, CreateGoal("p1", dangling).status()});
  refusals.push_back({"priorities naming a missing item", absl::StatusCode::kInvalidArgument,
                      UpdatePriorities(Priorities("p1", {unknown.name()})).status()});
  refusals.push_back({"request_id reused for other content", absl::StatusCode::kAlreadyExists,
                      CreateGoal("p1", ValidGoal("different"), "req-goal").status()});
  refusals.push_back({"past deadline", absl::StatusCode::kDeadlineExceeded,
                      CreateGoal("p1", ValidGoal(), "", PastDeadline()).status()});

  for (const auto& r : refusals) {
    EXPECT_EQ(r.status.code(), r.code) << r.what << ": " << r.status;
    EXPECT_EQ(store_->LastSequence(), before) << r.what;
  }
  ExpectIntegrity();
  EXPECT_THAT(GoalNames("p1"), ElementsAre(goal->name()));
  auto got = GetGoal(goal->name());
  ASSERT_TRUE(got.ok());
  EXPECT_EQ(got->version(), 2);
  EXPECT_EQ(got->description(), "v2");
  auto history = GoalVersions(goal->name());
  ASSERT_TRUE(history.ok());
  EXPECT_THAT(history->goals(), SizeIs(2));
}

// ---------------------------------------------------------------- concurrency

TEST_F(ConcurrencyTest, SameEtagRaceHasExactlyOneWinner) {
  constexpr int kWriters = 16;
  auto created = CreateGoal("p1", ValidGoal("original"));
  ASSERT_TRUE(created.ok());

  std::vector<absl::StatusOr<v1::Goal>> results(kWriters, absl::UnknownError("not run"));
  std::latch start(kWriters);
  std::vector<std::thread> threads;
  for (int i = 0; i < kWriters; ++i) {
    threads.emplace_back([&, i] {
      v1::Goal change;
      change.set_name(created->name());
      change.set_etag(created->etag());  // everyone read version 1
      change.set_description("writer " + std::to_string(i));
      *change.mutable_provenance() = NurseProvenance();
      auto req = UpdateGoalRequest(change, {"description"});
      start.arrive_and_wait();
      results[i] = Await<v1::Goal>([&](auto done) { records_->UpdateGoal(req, {}, std::move(done)); });
    });
  }
  for (auto& t : threads) t.join();

  int ok = 0, aborted = 0;
  std::string winner;
  for (const auto& r : results) {
    if (r.ok()) {
      ++ok;
      winner = r->description();
      EXPECT_EQ(r->version(), 2);
    } else if (r.status().code() == absl::StatusCode::kAborted) {
      ++aborted;
    } else {
      ADD_FAILURE() << "unexpected " << r.status();
    }
  }
  EXPECT_EQ(ok, 1);
  EXPECT_EQ(aborted, kWriters - 1);
  auto final_goal = GetGoal(created->name());
  ASSERT_TRUE(final_goal.ok());
  EXPECT_EQ(final_goal->version(), 2);
  EXPECT_EQ(final_goal->description(), winner);
  auto history = GoalVersions(created->name());
  ASSERT_TRUE(history.ok());
  EXPECT_THAT(history->goals(), SizeIs(2));
  EXPECT_EQ(store_->LastSequence(), 2u);
  ExpectIntegrity();
}

TEST_F(ConcurrencyTest, ConcurrentCreatesAllLandConsistently) {
  constexpr int kThreads = 8;
  constexpr int kEach = 10;
  std::latch start(kThreads);
  std::vector<std::thread> threads;
  std::atomic<int> failures{0};
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&, t] {
      start.arrive_and_wait();
      for (int i = 0; i < kEach; ++i) {
        if (!CreateGoal(absl::StrCat("p", t % 2), ValidGoal(absl::StrCat("goal ", i))).ok()) ++failures;
      }
    });
  }
  for (auto& t : threads) t.join();
  EXPECT_EQ(failures.load(), 0);
  EXPECT_EQ(store_->LastSequence(), static_cast<uint64_t>(kThreads * kEach));
  EXPECT_THAT(GoalNames("p0"), SizeIs(kThreads * kEach / 2));
  EXPECT_THAT(GoalNames("p1"), SizeIs(kThreads * kEach / 2));
  ExpectIntegrity();
}

}  // namespace
}  // namespace wmty::testing
