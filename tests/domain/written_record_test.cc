// A write's callback can take the stored version (storage::Record) instead of
// the resource: the FHIR face answers from it without reading it back, the
// gRPC face sends its resource bytes. Both must be exactly what was stored.
#include <optional>
#include <string>

#include <gmock/gmock.h>
#include <google/protobuf/util/message_differencer.h>
#include <gtest/gtest.h>

#include "domain/records_fixture.h"

namespace wmty::testing {
namespace {

using ::google::protobuf::util::MessageDifferencer;

class WrittenRecordTest : public RecordsTest {
 protected:
  absl::StatusOr<storage::Record> CreateGoalRecord(const v1::CreateGoalRequest& req,
                                                   const domain::CallContext& ctx = {}) {
    return Await<storage::Record>([&](auto done) { records_->CreateGoal(req, ctx, std::move(done)); });
  }

  // The stored version `version` of a goal, read back.
  storage::Record StoredVersion(const storage::Record& r, int64_t version) {
    std::optional<storage::Record> found;
    auto s = records_->ScanStoredVersions(r.kind(), r.patient_id(), r.id(), version - 1, [&](const storage::Record& v) {
      if (v.version() == version) found = v;
      return false;
    });
    EXPECT_TRUE(s.ok()) << s;
    EXPECT_TRUE(found.has_value()) << "no stored version " << version;
    return found.value_or(storage::Record());
  }
};

TEST_F(WrittenRecordTest, CreateAnswersTheStoredVersion) {
  domain::CallContext ctx;
  ctx.fhir_extra_json = R"({"note":[{"text":"kept"}]})";
  auto written = CreateGoalRecord(CreateGoalRequest("p1", ValidGoal("Walk to the garden gate")), ctx);
  ASSERT_TRUE(written.ok()) << written.status();
  EXPECT_EQ(written->kind(), storage::GOAL);
  EXPECT_EQ(written->patient_id(), "p1");
  EXPECT_EQ(written->version(), 1);
  EXPECT_EQ(written->sequence(), store_->LastSequence());
  EXPECT_EQ(written->fhir_extra_json(), *ctx.fhir_extra_json);
  EXPECT_TRUE(MessageDifferencer::Equals(*written, StoredVersion(*written, 1)));

  auto current = records_->FindCurrentById(storage::GOAL, written->id());
  ASSERT_TRUE(current.ok()) << current.status();
  ASSERT_TRUE(current->has_value());
  EXPECT_TRUE(MessageDifferencer::Equals(*written, **current));

  // The resource bytes are the goal the resource form answers with.
  v1::Goal goal;
  ASSERT_TRUE(goal.ParseFromString(written->resource()));
  EXPECT_EQ(goal.description(), "Walk to the garden gate");
  EXPECT_EQ(goal.version(), 1);
  auto got = GetGoal(goal.name());
  ASSERT_TRUE(got.ok()) << got.status();
  EXPECT_TRUE(MessageDifferencer::Equals(goal, *got));
}

TEST_F(WrittenRecordTest, UpdateAndRetractAnswerTheirOwnVersion) {
  auto created = CreateGoal("p1", ValidGoal("Dance at the wedding"));
  ASSERT_TRUE(created.ok()) << created.status();

  v1::UpdateGoalRequest update;
  *update.mutable_goal() = *created;
  update.mutable_goal()->set_description("Dance at the wedding, one slow dance");
  auto updated = Await<storage::Record>([&](auto done) { records_->UpdateGoal(update, {}, std::move(done)); });
  ASSERT_TRUE(updated.ok()) << updated.status();
  EXPECT_EQ(updated->version(), 2);
  EXPECT_FALSE(updated->retracted());
  EXPECT_TRUE(MessageDifferencer::Equals(*updated, StoredVersion(*updated, 2)));

  v1::RetractRequest retract = RetractRequest(created->name());
  retract.set_etag("W/\"2\"");
  auto retracted = Await<storage::Record>([&](auto done) { records_->RetractGoal(retract, {}, std::move(done)); });
  ASSERT_TRUE(retracted.ok()) << retracted.status();
  EXPECT_EQ(retracted->version(), 3);
  EXPECT_TRUE(retracted->retracted());
  EXPECT_TRUE(MessageDifferencer::Equals(*retracted, StoredVersion(*retracted, 3)));
}

TEST_F(WrittenRecordTest, RetriedRequestAnswersTheFirstStoredVersion) {
  const auto req = CreateGoalRequest("p1", ValidGoal(), "retry-7");
  auto first = CreateGoalRecord(req);
  ASSERT_TRUE(first.ok()) << first.status();
  const uint64_t after_first = store_->LastSequence();
  auto again = CreateGoalRecord(req);
  ASSERT_TRUE(again.ok()) << again.status();
  EXPECT_TRUE(MessageDifferencer::Equals(*again, *first));
  EXPECT_EQ(store_->LastSequence(), after_first);
}

TEST_F(WrittenRecordTest, RefusedWriteAnswersTheErrorAndWritesNothing) {
  v1::Goal no_description = ValidGoal();
  no_description.clear_description();
  auto refused = CreateGoalRecord(CreateGoalRequest("p1", no_description));
  EXPECT_THAT(refused, StatusIs(absl::StatusCode::kInvalidArgument));
  EXPECT_EQ(store_->LastSequence(), 0u);
}

}  // namespace
}  // namespace wmty::testing
