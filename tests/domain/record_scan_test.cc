// PatientRecords::ScanRecords: the rules every scan of stored records shares
// (retracted skipped unless asked for, position, limit, patients and ids, the
// deadline) live in the domain, not in a face's loop.
#include <future>
#include <string>
#include <vector>

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "domain/records_fixture.h"

namespace wmty::testing {
namespace {

using storage::Record;
using ::testing::ElementsAre;
using ::testing::ElementsAreArray;
using ::testing::IsEmpty;

class RecordScanTest : public RecordsTest {
 protected:
  // "patient/id" of every record the scan visits.
  absl::StatusOr<std::vector<std::string>> Scan(const domain::RecordQuery& query, const domain::CallContext& ctx = {}) {
    std::vector<std::string> seen;
    auto s = records_->ScanRecords(query, ctx, [&](const Record& r) {
      seen.push_back(r.patient_id() + "/" + r.id());
      return true;
    });
    if (!s.ok()) return s;
    return seen;
  }
  std::string Key(const std::string& patient, const v1::Goal& g) {
    auto name = domain::ParseName(g.name(), "name");
    return patient + "/" + name->id;
  }
  static domain::RecordQuery Goals() {
    domain::RecordQuery q;
    q.kind = storage::GOAL;
    return q;
  }
};

TEST_F(RecordScanTest, SkipsRetractedUnlessAskedFor) {
  auto kept = CreateGoal("p1", ValidGoal("Walk"));
  auto gone = CreateGoal("p1", ValidGoal("Swim"));
  ASSERT_TRUE(kept.ok() && gone.ok());
  ASSERT_TRUE(RetractGoal(gone->name()).ok());
  EXPECT_THAT(*Scan(Goals()), ElementsAre(Key("p1", *kept)));
  auto all = Goals();
  all.include_retracted = true;
  EXPECT_THAT(*Scan(all), ElementsAre(Key("p1", *kept), Key("p1", *gone)));
}

TEST_F(RecordScanTest, VisitsInPatientIdOrderAfterThePositionUpToTheLimit) {
  std::vector<std::string> keys;
  for (const char* patient : {"p2", "p1", "p3"}) {
    for (int i = 0; i < 2; ++i) {
      auto g = CreateGoal(patient, ValidGoal());
      ASSERT_TRUE(g.ok());
      keys.push_back(Key(patient, *g));
    }
  }
  std::sort(keys.begin(), keys.end());
  EXPECT_THAT(*Scan(Goals()), ElementsAreArray(keys));

  auto after = Goals();
  after.after_patient = "p1";
  after.after_id = keys[1].substr(3);  // the second of p1's
  after.limit = 3;
  EXPECT_THAT(*Scan(after), ElementsAre(keys[2], keys[3], keys[4]));
}

TEST_F(RecordScanTest, PatientsAndIdsNarrowTheScan) {
  auto a = CreateGoal("p1", ValidGoal());
  auto b = CreateGoal("p2", ValidGoal());
  auto c = CreateGoal("p3", ValidGoal());
  ASSERT_TRUE(a.ok() && b.ok() && c.ok());
  auto of_patients = Goals();
  of_patients.patients = std::vector<std::string>{"p1", "p3"};
  EXPECT_THAT(*Scan(of_patients), ElementsAre(Key("p1", *a), Key("p3", *c)));

  auto by_id = Goals();
  by_id.ids = std::vector<std::string>{Key("p3", *c).substr(3), Key("p2", *b).substr(3), "no-such-id"};
  EXPECT_THAT(*Scan(by_id), ElementsAre(Key("p2", *b), Key("p3", *c)));
  by_id.patients = std::vector<std::string>{"p3"};
  EXPECT_THAT(*Scan(by_id), ElementsAre(Key("p3", *c)));
}

TEST_F(RecordScanTest, APassedDeadlineStopsTheScanBeforeItStarts) {
  ASSERT_TRUE(CreateGoal("p1", ValidGoal()).ok());
  EXPECT_THAT(Scan(Goals(), PastDeadline()), StatusIs(absl::StatusCode::kDeadlineExceeded));
}

TEST_F(RecordScanTest, ADeadlinePassingMidScanStopsItWithDeadlineExceeded) {
  // More records than the scan reads between two deadline checks, written
  // concurrently (they share fsyncs).
  constexpr int kGoals = 300;
  std::vector<std::promise<absl::StatusOr<v1::Goal>>> promises(kGoals);
  for (int i = 0; i < kGoals; ++i) {
    records_->CreateGoal(CreateGoalRequest("p1", ValidGoal()), {},
                         [&promises, i](absl::StatusOr<v1::Goal> g) { promises[i].set_value(std::move(g)); });
  }
  for (auto& p : promises) ASSERT_TRUE(p.get_future().get().ok());
  domain::CallContext ctx;  // no deadline until the first record is seen
  int visited = 0;
  auto s = records_->ScanRecords(Goals(), ctx, [&](const Record&) {
    ctx.deadline = absl::Now() - absl::Seconds(1);  // the deadline passes while the scan runs
    ++visited;
    return true;
  });
  EXPECT_THAT(s, StatusIs(absl::StatusCode::kDeadlineExceeded));
  EXPECT_GT(visited, 0);
  EXPECT_LT(visited, kGoals);
}

}  // namespace
}  // namespace wmty::testing
