// The Patient (demographics from the hospital's systems) in the domain core:
// create-or-update with allow_missing, versions, the US Core rules, etags,
// idempotency, durability, and listing every patient through the id index.
#include <string>
#include <vector>

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "domain/records_fixture.h"

namespace wmty::testing {
namespace {

using ::testing::ElementsAre;
using ::testing::IsEmpty;
using ::testing::UnorderedElementsAre;

v1::Patient ValidPatient(const std::string& id, const std::string& family = "Santos",
                         const std::string& birth_date = "1950-03-14") {
  v1::Patient p;
  p.set_name("patients/" + id);
  auto* n = p.add_names();
  n->set_use("official");
  n->set_family(family);
  n->add_given("Maria");
  p.set_birth_date(birth_date);
  p.set_gender(v1::FEMALE);
  auto* mrn = p.add_identifiers();
  mrn->set_system("urn:oid:2.16.840.1.113883.19.5");
  mrn->set_value("MRN-" + id);
  mrn->set_type_code("MR");
  p.mutable_provenance()->mutable_recorded_by()->set_practitioner_id("adt-feed");
  return p;
}

class PatientTest : public RecordsTest {
 protected:
  absl::StatusOr<v1::Patient> Put(const v1::Patient& p, bool allow_missing = true, const std::string& request_id = "") {
    v1::UpdatePatientRequest req;
    *req.mutable_patient() = p;
    req.set_allow_missing(allow_missing);
    req.set_request_id(request_id);
    return Await<v1::Patient>([&](auto done) { records_->UpdatePatient(req, {}, std::move(done)); });
  }
  absl::StatusOr<v1::Patient> GetPatient(const std::string& id) {
    return records_->GetPatient(Get("patients/" + id), {});
  }

  // Patient ids ScanStoredCurrent lists after (after_patient, after_id) without a patient.
  std::vector<std::string> ListedPatients(const std::string& after_patient = "", const std::string& after_id = "") {
    std::vector<std::string> out;
    auto s = records_->ScanStoredCurrent(storage::PATIENT, std::nullopt, after_patient, after_id,
                                         [&](const storage::Record& r) {
                                           EXPECT_EQ(r.kind(), storage::PATIENT);
                                           EXPECT_EQ(r.id(), r.patient_id());
                                           out.push_back(r.patient_id());
                                           return true;
                                         });
    EXPECT_TRUE(s.ok()) << s;
    return out;
  }
};

TEST_F(PatientTest, UpsertCreatesThenUpdatesWithVersionsAndKeepsCreateTime) {
  auto created = Put(ValidPatient("p1"));
  ASSERT_TRUE(created.ok()) << created.status();
  EXPECT_EQ(created->name(), "patients/p1");
  EXPECT_EQ(created->patient().id(), "p1");
  EXPECT_EQ(created->version(), 1);
  EXPECT_EQ(created->etag(), "W/\"1\"");
  EXPECT_EQ(created->state(), v1::ACTIVE);
  EXPECT_FALSE(created->provenance().has_said_time()) << "nobody said demographics";

  v1::Patient moved = ValidPatient("p1", "Santos-Lima");
  auto updated = Put(moved);
  ASSERT_TRUE(updated.ok()) << updated.status();
  EXPECT_EQ(updated->version(), 2);
  EXPECT_EQ(updated->names(0).family(), "Santos-Lima");
  EXPECT_EQ(updated->create_time().seconds(), created->create_time().seconds());

  auto read = GetPatient("p1");
  ASSERT_TRUE(read.ok()) << read.status();
  EXPECT_EQ(read->names(0).family(), "Santos-Lima");
  EXPECT_EQ(read->birth_date(), "1950-03-14");
  EXPECT_EQ(read->identifiers(0).value(), "MRN-p1");

  v1::ListVersionsRequest versions;
  versions.set_name("patients/p1");
  auto history = records_->ListPatientVersions(versions, {});
  ASSERT_TRUE(history.ok()) << history.status();
  ASSERT_EQ(history->patients_size(), 2);
  EXPECT_EQ(history->patients(0).names(0).family(), "Santos");
  EXPECT_EQ(history->patients(1).names(0).family(), "Santos-Lima");
}

TEST_F(PatientTest, WithoutAllowMissingAnUnknownPatientIsNotFoundAndNothingIsWritten) {
  EXPECT_THAT(Put(ValidPatient("p1"), /*allow_missing=*/false), StatusIs(absl::StatusCode::kNotFound));
  EXPECT_THAT(GetPatient("p1"), StatusIs(absl::StatusCode::kNotFound));
  EXPECT_EQ(store_->LastSequence(), 0u);
  ASSERT_TRUE(Put(ValidPatient("p1")).ok());
  EXPECT_TRUE(Put(ValidPatient("p1", "Other"), /*allow_missing=*/false).ok()) << "an update of a known patient";
}

TEST_F(PatientTest, RefusesWhatUsCoreDoesNotAllowNamingEveryFieldAndWritesNothing) {
  v1::Patient p = ValidPatient("p1");
  p.clear_identifiers();
  p.mutable_names(0)->clear_family();
  p.mutable_names(0)->clear_given();
  p.mutable_names(0)->set_use("nick");
  p.set_birth_date("2999-01-01");
  p.set_gender(static_cast<v1::AdministrativeGender>(42));
  p.mutable_provenance()->clear_recorded_by();
  auto refused = Put(p);
  EXPECT_THAT(refused, StatusIs(absl::StatusCode::kInvalidArgument));
  EXPECT_THAT(
      ViolatedFields(refused.status()),
      UnorderedElementsAre("patient.names[0].use", "patient.names[0]", "patient.identifiers", "patient.birth_date",
                           "patient.gender", "patient.provenance.recorded_by.practitioner_id"));

  v1::Patient nameless = ValidPatient("p1");
  nameless.clear_names();
  nameless.mutable_identifiers(0)->clear_system();
  nameless.set_birth_date("1950-02-30");
  EXPECT_THAT(ViolatedFields(Put(nameless).status()),
              UnorderedElementsAre("patient.names", "patient.identifiers[0].system", "patient.birth_date"));

  v1::Patient wrong_name = ValidPatient("p1");
  wrong_name.set_name("patients/p1/goals/G1");
  EXPECT_THAT(ViolatedFields(Put(wrong_name).status()), ElementsAre("patient.name"));
  EXPECT_EQ(store_->LastSequence(), 0u) << "a refused request writes nothing";
}

TEST_F(PatientTest, AnEtagIsOptionalButWhenGivenMustBeCurrent) {
  ASSERT_TRUE(Put(ValidPatient("p1")).ok());
  ASSERT_TRUE(Put(ValidPatient("p1", "Second")).ok());
  v1::Patient stale = ValidPatient("p1", "Third");
  stale.set_etag("W/\"1\"");
  EXPECT_THAT(Put(stale), StatusIs(absl::StatusCode::kAborted));
  stale.set_etag("W/\"2\"");
  auto current = Put(stale);
  ASSERT_TRUE(current.ok()) << current.status();
  EXPECT_EQ(current->version(), 3);

  v1::Patient fresh = ValidPatient("p2");
  fresh.set_etag("W/\"1\"");
  EXPECT_THAT(Put(fresh), StatusIs(absl::StatusCode::kAborted)) << "no version 1 of a patient not yet known";
}

TEST_F(PatientTest, ARepeatedRequestIdWritesOnce) {
  auto first = Put(ValidPatient("p1"), true, "feed-msg-1");
  ASSERT_TRUE(first.ok()) << first.status();
  auto again = Put(ValidPatient("p1"), true, "feed-msg-1");
  ASSERT_TRUE(again.ok()) << again.status();
  EXPECT_EQ(again->version(), 1);
  EXPECT_EQ(store_->LastSequence(), 1u);
  EXPECT_THAT(Put(ValidPatient("p1", "Different"), true, "feed-msg-1"), StatusIs(absl::StatusCode::kAlreadyExists));
}

TEST_F(PatientTest, IsDurableAcrossAReopen) {
  ASSERT_TRUE(Put(ValidPatient("p1")).ok());
  Reopen();
  auto read = GetPatient("p1");
  ASSERT_TRUE(read.ok()) << read.status();
  EXPECT_EQ(read->names(0).family(), "Santos");
}

TEST_F(PatientTest, ListingEveryPatientReadsOnlyPatientsInIdOrder) {
  for (const char* id : {"p3", "p1", "p2"}) ASSERT_TRUE(Put(ValidPatient(id)).ok());
  ASSERT_TRUE(CreateGoal("p1", ValidGoal()).ok());
  ASSERT_TRUE(CreateGoal("p0", ValidGoal()).ok()) << "a patient with records but no Patient";
  EXPECT_THAT(ListedPatients(), ElementsAre("p1", "p2", "p3"));
  EXPECT_THAT(ListedPatients("p1", "p1"), ElementsAre("p2", "p3"));
  EXPECT_THAT(ListedPatients("p2", ""), ElementsAre("p2", "p3")) << "(p2, p2) comes after (p2, \"\")";
  EXPECT_THAT(ListedPatients("p3", "p3"), IsEmpty());
  // FindCurrentById resolves a Patient by its id (the FHIR read path).
  auto found = records_->FindCurrentById(storage::PATIENT, "p2");
  ASSERT_TRUE(found.ok() && found->has_value());
  EXPECT_EQ((*found)->patient_id(), "p2");
}

TEST_F(PatientTest, APatientIsNoPriorityItem) {
  ASSERT_TRUE(Put(ValidPatient("p1")).ok());
  auto refused = UpdatePriorities(Priorities("p1", {"patients/p1"}));
  EXPECT_THAT(ViolatedFields(refused.status()), ElementsAre("priorities.items[0]"));
}

}  // namespace
}  // namespace wmty::testing
