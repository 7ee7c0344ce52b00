// The audit trail's storage: appended asynchronously, written with the next
// group commit (synced), numbered without gaps, kept across restarts.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "domain/records_fixture.h"

namespace wmty::testing {
namespace {

storage::AuditRecord Access(const std::string& patient, const std::string& interaction, int outcome = 0) {
  storage::AuditRecord a;
  a.set_source("grpc");
  a.set_interaction(interaction);
  a.set_action(interaction == "create" ? "C" : "R");
  a.set_resource_type("Goal");
  a.set_patient_id(patient);
  a.set_agent("Practitioner/rn-17");
  a.set_outcome(outcome);
  return a;
}

std::vector<storage::AuditRecord> All(domain::PatientRecords& records) {
  std::vector<storage::AuditRecord> out;
  EXPECT_TRUE(records
                  .ScanAudit(0,
                             [&](const storage::AuditRecord& a) {
                               out.push_back(a);
                               return true;
                             })
                  .ok());
  return out;
}

class AuditTest : public RecordsTest {};

TEST_F(AuditTest, RecordsAreNumberedTimedAndWrittenWithTheNextCommit) {
  records_->Audit(Access("p1", "read"));
  records_->Audit(Access("p2", "search", 4));
  // A change commits the queued audit records in the same group commit.
  ASSERT_TRUE(CreateGoal("p1", ValidGoal()).ok());
  auto audits = All(*records_);
  ASSERT_EQ(audits.size(), 2u);
  EXPECT_EQ(audits[0].sequence(), 1u);
  EXPECT_EQ(audits[1].sequence(), 2u);
  EXPECT_EQ(audits[0].patient_id(), "p1");
  EXPECT_EQ(audits[1].outcome(), 4);
  EXPECT_GT(audits[0].time_micros(), 0);
  EXPECT_EQ(store_->LastAuditSequence(), 2u);
}

TEST_F(AuditTest, WrittenEvenWithoutAnyChangeAndKeptAcrossRestarts) {
  records_->Audit(Access("p1", "read"));
  Reopen();  // Close() drains the queue
  records_->Audit(Access("p1", "read"));
  Reopen();
  auto audits = All(*records_);
  ASSERT_EQ(audits.size(), 2u);
  EXPECT_EQ(audits[1].sequence(), 2u);  // the sequence continues after a restart
  EXPECT_EQ(store_->LastAuditSequence(), 2u);
  ExpectIntegrity();  // audit records are not versions: the change log is untouched
}

TEST_F(AuditTest, ScanStartsAfterTheGivenSequence) {
  for (int i = 0; i < 5; ++i) records_->Audit(Access("p1", "read"));
  Reopen();
  std::vector<uint64_t> seen;
  ASSERT_TRUE(records_
                  ->ScanAudit(3,
                              [&](const storage::AuditRecord& a) {
                                seen.push_back(a.sequence());
                                return true;
                              })
                  .ok());
  EXPECT_THAT(seen, ::testing::ElementsAre(4u, 5u));
}

}  // namespace
}  // namespace wmty::testing
