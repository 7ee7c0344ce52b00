// NewResourceId (services/domain/patient_records.h): 26-character, valid,
// unique, time-ordered ids (ULID layout, Crockford base32).
#include <set>
#include <string>
#include <vector>

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "absl/time/time.h"
#include "domain/names.h"
#include "domain/patient_records.h"

namespace wmty::domain {
namespace {

constexpr char kCrockford[] = "0123456789ABCDEFGHJKMNPQRSTVWXYZ";

absl::Time At(int64_t unix_millis) { return absl::FromUnixMillis(unix_millis); }

TEST(NewResourceIdTest, Is26CrockfordCharactersAndAValidId) {
  for (int i = 0; i < 100; ++i) {
    const std::string id = NewResourceId(absl::Now());
    EXPECT_EQ(id.size(), 26u) << id;
    EXPECT_TRUE(IsValidId(id)) << id;
    EXPECT_EQ(id.find_first_not_of(kCrockford), std::string::npos) << id;
  }
}

TEST(NewResourceIdTest, EncodesTheMillisecondInTheFirstTenCharacters) {
  // ULID: the first 10 symbols are the 48-bit millisecond time.
  EXPECT_EQ(NewResourceId(At(0)).substr(0, 10), "0000000000");
  EXPECT_EQ(NewResourceId(At(1)).substr(0, 10), "0000000001");
  EXPECT_EQ(NewResourceId(At(32)).substr(0, 10), "0000000010");
  // 1469918176385 ms is "01ARYZ6S41" (the ULID specification's example).
  EXPECT_EQ(NewResourceId(At(1469918176385)).substr(0, 10), "01ARYZ6S41");
}

TEST(NewResourceIdTest, IdsOfLaterMillisecondsSortAfter) {
  const int64_t base = 1790000000000;  // 2026
  for (int64_t delta : {int64_t{1}, int64_t{2}, int64_t{31}, int64_t{32}, int64_t{1000}, int64_t{86400000}}) {
    for (int i = 0; i < 50; ++i) {
      const std::string earlier = NewResourceId(At(base + i));
      const std::string later = NewResourceId(At(base + i + delta));
      EXPECT_LT(earlier, later) << "delta " << delta << " ms";
    }
  }
}

TEST(NewResourceIdTest, IdsAreUniqueWithinOneMillisecond) {
  std::set<std::string> ids;
  const absl::Time now = absl::Now();
  for (int i = 0; i < 10000; ++i) ids.insert(NewResourceId(now));
  EXPECT_EQ(ids.size(), 10000u);
}

TEST(NewResourceIdTest, IdsMadeOneAfterAnotherSortInTheOrderMade) {
  // "Listing in id order is listing in creation order" must also hold for
  // ids made within the same millisecond.
  std::vector<std::string> ids;
  const absl::Time now = absl::Now();
  for (int i = 0; i < 1000; ++i) ids.push_back(NewResourceId(now));
  for (size_t i = 1; i < ids.size(); ++i) ASSERT_LT(ids[i - 1], ids[i]) << "id " << i;
}

}  // namespace
}  // namespace wmty::domain
