// The one etag format and parse (services/domain/etag.h): the domain stamps
// versions with it, the FHIR face sends it as ETag and reads If-Match with it.
#include "domain/etag.h"

#include <gtest/gtest.h>

namespace wmty::domain {
namespace {

TEST(EtagTest, FormatIsAWeakValidatorOfTheVersion) {
  EXPECT_EQ(EtagOf(4), "W/\"4\"");
  EXPECT_EQ(EtagOf(123456789012), "W/\"123456789012\"");
}

TEST(EtagTest, ParsesWeakAndStrongForms) {
  EXPECT_EQ(ParseEtagVersion("W/\"3\""), 3);
  EXPECT_EQ(ParseEtagVersion("w/\"3\""), 3);
  EXPECT_EQ(ParseEtagVersion(" \"12\" "), 12);
  EXPECT_EQ(ParseEtagVersion("W/7"), 7);
  EXPECT_FALSE(ParseEtagVersion("W/\"0\"").has_value());
  EXPECT_FALSE(ParseEtagVersion("W/\"x\"").has_value());
  EXPECT_FALSE(ParseEtagVersion("W/\"-1\"").has_value());
  EXPECT_FALSE(ParseEtagVersion("").has_value());
  EXPECT_FALSE(ParseEtagVersion("W/\"\"").has_value());
  EXPECT_FALSE(ParseEtagVersion("W/\"99999999999999999999\"").has_value());
}

TEST(EtagTest, ParseReadsBackWhatFormatWrites) {
  for (int64_t v : {int64_t{1}, int64_t{2}, int64_t{99}, int64_t{999999999999999999}}) {
    EXPECT_EQ(ParseEtagVersion(EtagOf(v)), v);
  }
}

}  // namespace
}  // namespace wmty::domain
