// The one kind <-> FHIR type table (services/domain/fhir_types.h) that the
// gRPC face, the FHIR face and its mapping share.
#include "domain/fhir_types.h"

#include <string>

#include <gmock/gmock.h>
#include <gtest/gtest.h>

namespace wmty::domain {
namespace {

using ::testing::ElementsAre;
using ::testing::IsEmpty;

TEST(FhirTypesTest, EachKindHasItsType) {
  EXPECT_EQ(FhirTypeOf(storage::GOAL), "Goal");
  EXPECT_EQ(FhirTypeOf(storage::WHAT_MATTERS), "Observation");
  EXPECT_EQ(FhirTypeOf(storage::PREFERENCE), "Observation");
  EXPECT_EQ(FhirTypeOf(storage::GOAL_SCORE), "Observation");
  EXPECT_EQ(FhirTypeOf(storage::PRIORITIES), "List");
  EXPECT_EQ(FhirTypeOf(storage::PATIENT), "Patient");
}

TEST(FhirTypesTest, EachTypeHasItsKindsPrimaryFirst) {
  EXPECT_THAT(KindsOf("Goal"), ElementsAre(storage::GOAL));
  EXPECT_THAT(KindsOf("Observation"), ElementsAre(storage::WHAT_MATTERS, storage::PREFERENCE, storage::GOAL_SCORE));
  EXPECT_THAT(KindsOf("List"), ElementsAre(storage::PRIORITIES));
  EXPECT_THAT(KindsOf("Patient"), ElementsAre(storage::PATIENT));
  EXPECT_THAT(KindsOf("Provenance"), IsEmpty());
  EXPECT_THAT(KindsOf("goal"), IsEmpty());  // FHIR type names are case-sensitive
  for (absl::string_view type : kStoredTypes) {
    EXPECT_EQ(PrimaryKind(type), KindsOf(type).front()) << type;
    for (storage::Kind kind : KindsOf(type)) EXPECT_EQ(FhirTypeOf(kind), type);
  }
  EXPECT_EQ(PrimaryKind("Provenance"), storage::WHAT_MATTERS);
}

TEST(FhirTypesTest, StoredAndChartTypes) {
  for (absl::string_view type : {"Goal", "Observation", "List", "Patient"}) EXPECT_TRUE(IsStoredType(type)) << type;
  for (absl::string_view type : {"Provenance", "AuditEvent", "CodeSystem", "", "Observations"}) {
    EXPECT_FALSE(IsStoredType(type)) << type;
  }
  for (absl::string_view type : {"Goal", "Observation", "List"}) EXPECT_TRUE(IsChartType(type)) << type;
  EXPECT_FALSE(IsChartType("Patient"));
  EXPECT_FALSE(IsChartType("Provenance"));
}

storage::Record RecordOf(storage::Kind kind, const std::string& patient_id, const std::string& id) {
  storage::Record r;
  r.set_kind(kind);
  r.set_patient_id(patient_id);
  r.set_id(id);
  return r;
}

TEST(FhirTypesTest, TheListIsNamedByItsPatient) {
  EXPECT_EQ(FhirId(RecordOf(storage::PRIORITIES, "p1", "priorities")), "p1");
  EXPECT_EQ(StoredId(storage::PRIORITIES, "p1"), "priorities");
  EXPECT_EQ(FhirId(RecordOf(storage::GOAL, "p1", "g7")), "g7");
  EXPECT_EQ(StoredId(storage::GOAL, "g7"), "g7");
  EXPECT_EQ(FhirId(RecordOf(storage::PATIENT, "p1", "p1")), "p1");
}

}  // namespace
}  // namespace wmty::domain
