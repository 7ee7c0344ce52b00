// Key encoding (services/storage/keys.h): byte order equals numeric order, and
// each patient's records of one kind are one contiguous range that no other
// patient's keys fall into.
#include "storage/keys.h"

#include <algorithm>
#include <cstdint>
#include <string>
#include <vector>

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "absl/strings/match.h"

namespace wmty::storage {
namespace {

// The exclusive upper bound of all keys starting with `prefix` whose last
// byte is below 0xFF (how Reader::ScanCurrent bounds its scan).
std::string UpperBound(std::string prefix) {
  prefix.back() = static_cast<char>(static_cast<unsigned char>(prefix.back()) + 1);
  return prefix;
}

TEST(BigEndianTest, EncodesMostSignificantByteFirst) {
  std::string out;
  AppendBigEndian64(&out, 0x0102030405060708ULL);
  EXPECT_EQ(out, std::string("\x01\x02\x03\x04\x05\x06\x07\x08", 8));
  out.clear();
  AppendBigEndian64(&out, 0);
  EXPECT_EQ(out, std::string(8, '\0'));
}

TEST(BigEndianTest, DecodeRoundTripsAndRefusesWrongLengths) {
  for (uint64_t v :
       {uint64_t{0}, uint64_t{1}, uint64_t{255}, uint64_t{256}, uint64_t{0x8000000000000000ULL}, UINT64_MAX}) {
    std::string bytes;
    AppendBigEndian64(&bytes, v);
    ASSERT_EQ(bytes.size(), 8u);
    EXPECT_EQ(DecodeBigEndian64(bytes), v);
  }
  EXPECT_EQ(DecodeBigEndian64(""), std::nullopt);
  EXPECT_EQ(DecodeBigEndian64(std::string(7, '\0')), std::nullopt);
  EXPECT_EQ(DecodeBigEndian64(std::string(9, '\0')), std::nullopt);
}

TEST(BigEndianTest, ByteOrderIsNumericOrder) {
  const std::vector<uint64_t> values = {0,
                                        1,
                                        2,
                                        127,
                                        128,
                                        255,
                                        256,
                                        257,
                                        65535,
                                        65536,
                                        (1ULL << 32) - 1,
                                        1ULL << 32,
                                        1ULL << 56,
                                        (1ULL << 63) - 1,
                                        1ULL << 63,
                                        UINT64_MAX};
  for (size_t i = 0; i < values.size(); ++i) {
    for (size_t j = 0; j < values.size(); ++j) {
      EXPECT_EQ(ChangeKey(values[i]) < ChangeKey(values[j]), values[i] < values[j]) << values[i] << " vs " << values[j];
    }
  }
}

TEST(VersionKeyTest, VersionsOfOneRecordSortInVersionOrder) {
  std::vector<std::string> keys;
  for (int64_t v = 1; v <= 600; ++v) keys.push_back(VersionKey("p1", GOAL, "G1", v));
  EXPECT_TRUE(std::is_sorted(keys.begin(), keys.end()));
  EXPECT_EQ(std::adjacent_find(keys.begin(), keys.end()), keys.end());  // distinct
}

TEST(VersionKeyTest, VersionKeysStartWithTheirPrefixAndOnlyTheirs) {
  const std::string prefix = VersionPrefix("p1", GOAL, "abc");
  EXPECT_TRUE(absl::StartsWith(VersionKey("p1", GOAL, "abc", 1), prefix));
  EXPECT_TRUE(absl::StartsWith(VersionKey("p1", GOAL, "abc", INT64_MAX), prefix));
  // An id that extends "abc" is another record: its versions are outside.
  EXPECT_FALSE(absl::StartsWith(VersionKey("p1", GOAL, "abcd", 1), prefix));
  EXPECT_FALSE(absl::StartsWith(VersionKey("p1", WHAT_MATTERS, "abc", 1), prefix));
  EXPECT_FALSE(absl::StartsWith(VersionKey("p10", GOAL, "abc", 1), prefix));
}

TEST(PatientKindPrefixTest, CurrentKeysOfAPatientAndKindShareTheirPrefix) {
  const std::string prefix = PatientKindPrefix("p1", GOAL);
  EXPECT_TRUE(absl::StartsWith(CurrentKey("p1", GOAL, "G1"), prefix));
  EXPECT_FALSE(absl::StartsWith(CurrentKey("p1", WHAT_MATTERS, "G1"), prefix));
  EXPECT_FALSE(absl::StartsWith(CurrentKey("p1", PREFERENCE, "G1"), prefix));
  EXPECT_NE(PatientKindPrefix("p1", GOAL), PatientKindPrefix("p1", PREFERENCE));
}

TEST(PatientKindPrefixTest, PatientAAndPatientsWithLongerIdsDoNotOverlap) {
  // Without the 0x00 separator "a"+kind could prefix keys of "a0"/"ab".
  const std::string a = PatientKindPrefix("a", GOAL);
  for (const char* other : {"a0", "ab", "aa", "a-", "a.", "A"}) {
    for (Kind kind : {WHAT_MATTERS, GOAL, PREFERENCE, PRIORITIES}) {
      for (const char* id : {"", "x", "01HZ0000000000000000000000"}) {
        EXPECT_FALSE(absl::StartsWith(CurrentKey(other, kind, id), a)) << other << " " << kind << " " << id;
        EXPECT_FALSE(absl::StartsWith(VersionKey(other, kind, id, 1), a)) << other << " " << kind << " " << id;
      }
    }
    EXPECT_FALSE(absl::StartsWith(PatientKindPrefix(other, GOAL), a)) << other;
    EXPECT_FALSE(absl::StartsWith(a, PatientKindPrefix(other, GOAL))) << other;
  }
}

TEST(PatientKindPrefixTest, EachPatientAndKindIsOneContiguousRange) {
  // Sort the current keys of several patients whose ids prefix each other,
  // with ids chosen to sort around the separator and kind bytes, and check
  // that the keys of every (patient, kind) form one run and that the scan
  // bounds [prefix, UpperBound(prefix)) select exactly that run.
  const std::vector<std::string> patients = {"a", "a0", "a.", "ab", "b", "A", "aa"};
  const std::vector<std::string> ids = {"0", "01HZ", "ZZZZ", "a", "zz.z", "-"};
  const std::vector<Kind> kinds = {WHAT_MATTERS, GOAL, PREFERENCE};
  struct Entry {
    std::string key;
    std::string patient;
    Kind kind;
  };
  std::vector<Entry> entries;
  for (const auto& p : patients)
    for (Kind k : kinds)
      for (const auto& id : ids) entries.push_back({CurrentKey(p, k, id), p, k});
  std::sort(entries.begin(), entries.end(), [](const Entry& x, const Entry& y) { return x.key < y.key; });

  for (const auto& p : patients) {
    for (Kind k : kinds) {
      const std::string lo = PatientKindPrefix(p, k);
      const std::string hi = UpperBound(lo);
      size_t first = entries.size(), last = 0, count = 0, in_bounds = 0;
      for (size_t i = 0; i < entries.size(); ++i) {
        const bool mine = entries[i].patient == p && entries[i].kind == k;
        if (mine) {
          first = std::min(first, i);
          last = i;
          ++count;
        }
        const bool inside = entries[i].key >= lo && entries[i].key < hi;
        EXPECT_EQ(inside, mine) << "patient " << p << " kind " << k << " key of " << entries[i].patient;
        in_bounds += inside;
      }
      EXPECT_EQ(count, ids.size());
      EXPECT_EQ(last - first + 1, count) << "keys of " << p << "/" << k << " are not contiguous";
      EXPECT_EQ(in_bounds, ids.size());
    }
  }
}

TEST(RequestKeyTest, PatientAndRequestIdAreSeparated) {
  // "a" + "0x" and "a0" + "x" would collide without the separator.
  EXPECT_NE(RequestKey("a", "0x"), RequestKey("a0", "x"));
  EXPECT_EQ(RequestKey("a", "r1"), std::string("a\0r1", 4));
}

TEST(IdKeyTest, SameIdOfDifferentKindsAreDifferentKeys) {
  EXPECT_NE(IdKey(GOAL, "X1"), IdKey(WHAT_MATTERS, "X1"));
  EXPECT_EQ(IdKey(GOAL, "X1"), std::string(1, static_cast<char>(GOAL)) + "X1");
}

}  // namespace
}  // namespace wmty::storage
