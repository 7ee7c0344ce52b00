// The generic write entry points (PatientRecords::Create / Update / Retract
// taking any resource): the per-type rules apply unchanged, "any version"
// updates are checked on the commit thread (concurrent ones all commit,
// nothing lost), a retried request id replays, and "the priorities exist" is a
// typed error.
#include <future>
#include <set>
#include <string>
#include <vector>

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "common/status.h"
#include "domain/records_fixture.h"
#include "domain/resources.h"

namespace wmty::testing {
namespace {

using domain::Precondition;
using storage::Record;

class AnyResourceTest : public RecordsTest {
 protected:
  absl::StatusOr<Record> Create(domain::AnyResource r, const std::string& patient, const std::string& request_id = "") {
    return Await<Record>([&](auto done) { records_->Create(std::move(r), patient, request_id, {}, std::move(done)); });
  }
  absl::StatusOr<Record> Update(domain::AnyResource r, const std::string& patient, const std::string& id,
                                const Precondition& pre, const std::string& request_id = "") {
    return Await<Record>(
        [&](auto done) { records_->Update(std::move(r), patient, id, pre, request_id, {}, std::move(done)); });
  }
  // A goal's whole new content (what a FHIR PUT brings).
  static v1::Goal Described(const std::string& description) { return ValidGoal(description); }
  static std::string Description(const Record& r) {
    auto goal = domain::FromRecord<v1::Goal>(r);
    return goal.ok() ? goal->description() : "";
  }
};

TEST_F(AnyResourceTest, CreateWritesWhatThePerTypeMethodWrites) {
  auto written = Create(ValidGoal("Walk to church"), "p1");
  ASSERT_TRUE(written.ok()) << written.status();
  EXPECT_EQ(written->kind(), storage::GOAL);
  EXPECT_EQ(written->patient_id(), "p1");
  EXPECT_EQ(written->version(), 1);
  auto read = GetGoal(domain::FormatName(storage::GOAL, "p1", written->id()));
  ASSERT_TRUE(read.ok()) << read.status();
  EXPECT_EQ(read->description(), "Walk to church");
  EXPECT_EQ(read->etag(), "W/\"1\"");
}

TEST_F(AnyResourceTest, CreateValidatesLikeThePerTypeMethod) {
  v1::Goal bad = ValidGoal();
  bad.clear_description();
  auto written = Create(bad, "p1");
  EXPECT_THAT(written, StatusIs(absl::StatusCode::kInvalidArgument));
  EXPECT_THAT(ViolatedFields(written.status()), ::testing::Contains("goal.description"));
  EXPECT_EQ(store_->LastSequence(), 0u);
}

TEST_F(AnyResourceTest, GenericAndPerTypeCreateWithOneRequestIdAreOneRequest) {
  auto generic = Create(ValidGoal("Walk to church"), "p1", "req-1");
  ASSERT_TRUE(generic.ok()) << generic.status();
  auto per_type = CreateGoal("p1", ValidGoal("Walk to church"), "req-1");
  ASSERT_TRUE(per_type.ok()) << per_type.status();
  EXPECT_EQ(per_type->name(), domain::FormatName(storage::GOAL, "p1", generic->id()));
  EXPECT_EQ(store_->LastSequence(), 1u);
}

TEST_F(AnyResourceTest, UpdateWithAnEtagMustNameTheCurrentVersion) {
  auto created = Create(ValidGoal("Walk to church"), "p1");
  ASSERT_TRUE(created.ok());
  auto updated = Update(Described("Walk to the market"), "p1", created->id(), Precondition::Etag("W/\"1\""));
  ASSERT_TRUE(updated.ok()) << updated.status();
  EXPECT_EQ(updated->version(), 2);
  auto stale = Update(Described("Walk home"), "p1", created->id(), Precondition::Etag("W/\"1\""));
  EXPECT_THAT(stale, StatusIs(absl::StatusCode::kAborted));
  EXPECT_EQ(store_->LastSequence(), 2u);
}

TEST_F(AnyResourceTest, AnyVersionUpdateNeedsNoEtag) {
  auto created = Create(ValidGoal("Walk to church"), "p1");
  ASSERT_TRUE(created.ok());
  auto updated = Update(Described("Walk to the market"), "p1", created->id(), Precondition::AnyVersion());
  ASSERT_TRUE(updated.ok()) << updated.status();
  EXPECT_EQ(updated->version(), 2);
  EXPECT_EQ(Description(*updated), "Walk to the market");
}

TEST_F(AnyResourceTest, ConcurrentAnyVersionUpdatesAllCommitOneAfterTheOther) {
  auto created = Create(ValidGoal("Walk to church"), "p1");
  ASSERT_TRUE(created.ok());
  constexpr int kWriters = 8;
  std::vector<std::promise<absl::StatusOr<Record>>> promises(kWriters);
  for (int i = 0; i < kWriters; ++i) {  // all queued before any completes is not required: none may be lost
    records_->Update(Described("Walk, take " + std::to_string(i)), "p1", created->id(), Precondition::AnyVersion(), "",
                     {}, [&promises, i](absl::StatusOr<Record> r) { promises[i].set_value(std::move(r)); });
  }
  std::set<int64_t> versions;
  std::set<std::string> descriptions;
  for (auto& p : promises) {
    auto r = p.get_future().get();
    ASSERT_TRUE(r.ok()) << r.status();
    versions.insert(r->version());
    descriptions.insert(Description(*r));
  }
  std::set<int64_t> expected;
  for (int v = 2; v < 2 + kWriters; ++v) expected.insert(v);
  EXPECT_EQ(versions, expected);
  EXPECT_EQ(descriptions.size(), static_cast<size_t>(kWriters)) << "every update is a version of its own";
  auto history = GoalVersions(domain::FormatName(storage::GOAL, "p1", created->id()), 100);
  ASSERT_TRUE(history.ok()) << history.status();
  EXPECT_EQ(history->goals_size(), kWriters + 1);
}

TEST_F(AnyResourceTest, RetriedAnyVersionUpdateReplaysItsFirstResultAfterOtherWrites) {
  auto created = Create(ValidGoal("Walk to church"), "p1");
  ASSERT_TRUE(created.ok());
  auto first = Update(Described("Walk to the market"), "p1", created->id(), Precondition::AnyVersion(), "put-1");
  ASSERT_TRUE(first.ok()) << first.status();
  auto other = Update(Described("Walk home"), "p1", created->id(), Precondition::AnyVersion(), "put-2");
  ASSERT_TRUE(other.ok()) << other.status();
  const uint64_t before = store_->LastSequence();

  auto retry = Update(Described("Walk to the market"), "p1", created->id(), Precondition::AnyVersion(), "put-1");
  ASSERT_TRUE(retry.ok()) << retry.status();
  EXPECT_EQ(retry->version(), first->version());
  EXPECT_EQ(Description(*retry), "Walk to the market");
  EXPECT_EQ(store_->LastSequence(), before) << "a replay writes nothing";

  auto reused = Update(Described("Something else"), "p1", created->id(), Precondition::AnyVersion(), "put-1");
  EXPECT_THAT(reused, StatusIs(absl::StatusCode::kAlreadyExists));
  EXPECT_FALSE(domain::IsResourceExists(reused.status()));
}

TEST_F(AnyResourceTest, AnyVersionUpdateOfAMissingOrRetractedResourceIsRefused) {
  auto missing = Update(Described("Walk"), "p1", "01ARZ3NDEKTSV4RRFFQ69G5FAV", Precondition::AnyVersion());
  EXPECT_THAT(missing, StatusIs(absl::StatusCode::kNotFound));
  auto created = Create(ValidGoal("Walk to church"), "p1");
  ASSERT_TRUE(created.ok());
  ASSERT_TRUE(RetractGoal(domain::FormatName(storage::GOAL, "p1", created->id())).ok());
  auto retracted = Update(Described("Walk"), "p1", created->id(), Precondition::AnyVersion());
  EXPECT_THAT(retracted, StatusIs(absl::StatusCode::kFailedPrecondition));
  EXPECT_EQ(store_->LastSequence(), 2u);
}

TEST_F(AnyResourceTest, PerTypeUpdateStillRequiresAnEtag) {
  auto created = CreateGoal("p1", ValidGoal());
  ASSERT_TRUE(created.ok());
  v1::Goal change = *created;
  change.clear_etag();
  auto updated = UpdateGoal(change);
  EXPECT_THAT(updated, StatusIs(absl::StatusCode::kInvalidArgument));
  EXPECT_THAT(ViolatedFields(updated.status()), ::testing::Contains("goal.etag"));
}

TEST_F(AnyResourceTest, CreatingPrioritiesThatExistIsTheTypedResourceExistsError) {
  auto first = Create(Priorities("p1", {}), "p1");
  ASSERT_TRUE(first.ok()) << first.status();
  EXPECT_EQ(first->version(), 1);
  auto again = Create(Priorities("p1", {}), "p1");
  EXPECT_THAT(again, StatusIs(absl::StatusCode::kAlreadyExists));
  EXPECT_TRUE(domain::IsResourceExists(again.status()));
  EXPECT_EQ(store_->LastSequence(), 1u);
}

TEST_F(AnyResourceTest, ResourceExistsIsNotRequestIdReused) {
  ASSERT_TRUE(Create(ValidGoal("Walk"), "p1", "req-1").ok());
  auto reused = Create(ValidGoal("Garden"), "p1", "req-1");
  EXPECT_THAT(reused, StatusIs(absl::StatusCode::kAlreadyExists));
  EXPECT_FALSE(domain::IsResourceExists(reused.status()));
  EXPECT_FALSE(domain::IsResourceExists(absl::AlreadyExistsError("priorities exist")))
      << "the message alone does not make it the typed error";
}

TEST_F(AnyResourceTest, AnyVersionUpdateSetsPrioritiesFirstAndLater) {
  auto goal = CreateGoal("p1", ValidGoal());
  ASSERT_TRUE(goal.ok());
  auto first = Update(Priorities("p1", {}), "p1", "", Precondition::AnyVersion());
  ASSERT_TRUE(first.ok()) << first.status();
  EXPECT_EQ(first->version(), 1);
  auto second = Update(Priorities("p1", {goal->name()}), "p1", "", Precondition::AnyVersion());
  ASSERT_TRUE(second.ok()) << second.status();
  EXPECT_EQ(second->version(), 2);
}

TEST_F(AnyResourceTest, PerTypePrioritiesUpdateStillRequiresTheEtagOnceSet) {
  ASSERT_TRUE(UpdatePriorities(Priorities("p1", {})).ok());
  auto without_etag = UpdatePriorities(Priorities("p1", {}));
  EXPECT_THAT(without_etag, StatusIs(absl::StatusCode::kInvalidArgument));
  EXPECT_THAT(ViolatedFields(without_etag.status()), ::testing::Contains("priorities.etag"));
}

TEST_F(AnyResourceTest, RetractTakesAnyRetractableKindByName) {
  auto goal = Create(ValidGoal(), "p1");
  auto wm = Create(ValidWhatMatters(), "p1");
  ASSERT_TRUE(goal.ok() && wm.ok());
  for (const Record& r : {*goal, *wm}) {
    auto req = RetractRequest(domain::FormatName(r.kind(), "p1", r.id()));
    auto retracted = Await<Record>([&](auto done) { records_->Retract(req, {}, std::move(done)); });
    ASSERT_TRUE(retracted.ok()) << retracted.status();
    EXPECT_TRUE(retracted->retracted());
    EXPECT_EQ(retracted->version(), 2);
  }
  auto priorities = Await<Record>(
      [&](auto done) { records_->Retract(RetractRequest("patients/p1/priorities"), {}, std::move(done)); });
  EXPECT_THAT(priorities, StatusIs(absl::StatusCode::kUnimplemented));
}

}  // namespace
}  // namespace wmty::testing
