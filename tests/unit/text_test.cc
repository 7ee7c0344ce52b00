// Text helpers (services/common/text.h), in particular FindInvalidUtf8Field,
// which names the field protobuf refused to parse.
#include "common/text.h"

#include <string>

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "support/test_support.h"
#include "wmty/v1/service.pb.h"

namespace wmty {
namespace {

using ::wmty::testing::ValidGoal;

// Hand-built protobuf wire format, so tests can put bytes into string fields
// that the C++ serializer would not (proto3 strings must be UTF-8).
void AppendVarint(std::string* out, uint64_t v) {
  while (v >= 0x80) {
    out->push_back(static_cast<char>((v & 0x7F) | 0x80));
    v >>= 7;
  }
  out->push_back(static_cast<char>(v));
}

// A length-delimited field (strings, bytes, messages, packed repeated).
std::string Field(int number, const std::string& payload) {
  std::string out;
  AppendVarint(&out, (static_cast<uint64_t>(number) << 3) | 2);
  AppendVarint(&out, payload.size());
  out += payload;
  return out;
}

std::string VarintField(int number, uint64_t value) {
  std::string out;
  AppendVarint(&out, static_cast<uint64_t>(number) << 3);
  AppendVarint(&out, value);
  return out;
}

constexpr char kBad[] = "caf\xe9";  // Latin-1, not UTF-8

// Field numbers (proto/wmty/v1): CreateGoalRequest.parent=1 goal=2
// request_id=3; Goal.description=3 notes=10 what_matters=11 provenance=20;
// Note.text=1 author=2; Provenance.recorded_by=1; Recorder.display_name=2.
std::string CreateGoalBytes(const std::string& goal_bytes) {
  return Field(1, "patients/p1") + Field(2, goal_bytes) + Field(3, "req-1");
}

// Precondition of every case below: the real parser refuses the bytes.
void ExpectUnparseable(const std::string& bytes) {
  v1::CreateGoalRequest parsed;
  EXPECT_FALSE(parsed.ParseFromString(bytes)) << "protobuf accepted the bytes; the case tests nothing";
}

TEST(FindInvalidUtf8FieldTest, NamesANestedRepeatedField) {
  const std::string goal =
      ValidGoal().SerializeAsString() + Field(10, Field(1, "fine") + Field(2, "nurse-17")) + Field(10, Field(1, kBad));
  // ValidGoal has no notes, so the two appended notes are notes[0] and notes[1].
  const std::string bytes = CreateGoalBytes(goal);
  ExpectUnparseable(bytes);
  EXPECT_EQ(FindInvalidUtf8Field(*v1::CreateGoalRequest::descriptor(), bytes), "goal.notes[1].text");

  const std::string first = CreateGoalBytes(ValidGoal().SerializeAsString() + Field(10, Field(1, kBad)));
  ExpectUnparseable(first);
  EXPECT_EQ(FindInvalidUtf8Field(*v1::CreateGoalRequest::descriptor(), first), "goal.notes[0].text");
}

TEST(FindInvalidUtf8FieldTest, NamesTopLevelAndSingularNestedFields) {
  const std::string parent = Field(1, kBad) + Field(2, ValidGoal().SerializeAsString());
  ExpectUnparseable(parent);
  EXPECT_EQ(FindInvalidUtf8Field(*v1::CreateGoalRequest::descriptor(), parent), "parent");

  const std::string description = CreateGoalBytes(Field(3, kBad) + VarintField(4, 4));
  ExpectUnparseable(description);
  EXPECT_EQ(FindInvalidUtf8Field(*v1::CreateGoalRequest::descriptor(), description), "goal.description");

  const std::string recorder =
      CreateGoalBytes(Field(3, "Walk again") + Field(20, Field(1, Field(1, "nurse-17") + Field(2, kBad))));
  ExpectUnparseable(recorder);
  EXPECT_EQ(FindInvalidUtf8Field(*v1::CreateGoalRequest::descriptor(), recorder),
            "goal.provenance.recorded_by.display_name");
}

TEST(FindInvalidUtf8FieldTest, IndexesRepeatedStrings) {
  const std::string bytes = CreateGoalBytes(Field(3, "Walk again") + Field(11, "patients/p1/whatMatters/W1") +
                                            Field(11, std::string("patients/p1/whatMatters/\xc0\xaf")));
  ExpectUnparseable(bytes);
  EXPECT_EQ(FindInvalidUtf8Field(*v1::CreateGoalRequest::descriptor(), bytes), "goal.what_matters[1]");
}

TEST(FindInvalidUtf8FieldTest, WorksForEveryRequestType) {
  const std::string bytes = Field(1, Field(1, "patients/p1/whatMatters/W1") + Field(3, kBad)) + Field(3, "req");
  v1::UpdateWhatMattersRequest parsed;
  ASSERT_FALSE(parsed.ParseFromString(bytes));
  EXPECT_EQ(FindInvalidUtf8Field(*v1::UpdateWhatMattersRequest::descriptor(), bytes), "what_matters.statement");
}

TEST(FindInvalidUtf8FieldTest, ValidBytesHaveNoInvalidField) {
  v1::CreateGoalRequest req;
  req.set_parent("patients/p1");
  *req.mutable_goal() = ValidGoal("Ver a mi nieta graduarse — 家");
  req.mutable_goal()->add_notes()->set_text("ñandú");
  const std::string bytes = req.SerializeAsString();
  EXPECT_EQ(FindInvalidUtf8Field(*v1::CreateGoalRequest::descriptor(), bytes), std::nullopt);
}

TEST(FindInvalidUtf8FieldTest, MalformedWireFormatIsNotBlamedOnUtf8) {
  // A truncated length prefix: the parse fails, but not because of UTF-8.
  const std::string bytes = std::string("\x12\x7f", 2) + "short";
  EXPECT_EQ(FindInvalidUtf8Field(*v1::CreateGoalRequest::descriptor(), bytes), std::nullopt);
}

TEST(TextTest, IsValidUtf8) {
  EXPECT_TRUE(IsValidUtf8(""));
  EXPECT_TRUE(IsValidUtf8("plain"));
  EXPECT_TRUE(IsValidUtf8("\u00e9\u4e2d\U0001F600"));
  EXPECT_FALSE(IsValidUtf8("\xe9"));
  EXPECT_FALSE(IsValidUtf8("\xf0\x9f\x98"));  // truncated emoji
}

TEST(TextTest, IsBlank) {
  EXPECT_TRUE(IsBlank(""));
  EXPECT_TRUE(IsBlank(" \t\r\n\v\f"));
  EXPECT_TRUE(IsBlank("\u00A0\u2000\u200B\u3000\uFEFF"));
  EXPECT_FALSE(IsBlank(" x "));
  EXPECT_FALSE(IsBlank("\u00A0."));
  // Truncated multi-byte sequences that begin like a space are not blank.
  EXPECT_FALSE(IsBlank("\xc2"));
  EXPECT_FALSE(IsBlank("\xe3\x80"));
}

TEST(TextTest, HasControlCharacters) {
  EXPECT_FALSE(HasControlCharacters("tab\there\r\n"));
  EXPECT_TRUE(HasControlCharacters(std::string("nul\0", 4)));
  EXPECT_TRUE(HasControlCharacters("\x1f"));
  EXPECT_TRUE(HasControlCharacters("\x7f"));
  EXPECT_FALSE(HasControlCharacters("\u00e9 \u4e2d"));  // bytes >= 0x80 are not ASCII controls
}

}  // namespace
}  // namespace wmty
