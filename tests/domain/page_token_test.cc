// Page tokens (services/domain/page_token.h): round trip, and every kind of
// tampering is INVALID_ARGUMENT naming page_token.
#include "domain/page_token.h"

#include <string>

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "absl/strings/escaping.h"
#include "support/test_support.h"

namespace wmty::domain {
namespace {

using ::testing::ElementsAre;
using ::testing::HasSubstr;
using ::wmty::testing::StatusIs;
using ::wmty::testing::ViolatedFields;

const std::string kKey(32, 'k');

storage::PageCursor Cursor(const std::string& query_hash) {
  storage::PageCursor c;
  c.set_query_hash(query_hash);
  c.set_after_id("01HZXK3M5T9QW0000000000000");
  c.set_after_version(7);
  return c;
}

// Expects `status` to be the refusal of a page token.
void ExpectRefused(const absl::Status& status, const std::string& what) {
  EXPECT_THAT(status, StatusIs(absl::StatusCode::kInvalidArgument)) << what;
  EXPECT_THAT(ViolatedFields(status), ElementsAre("page_token")) << what;
}

TEST(PageTokenTest, RoundTripsTheCursor) {
  PageTokenCodec codec(kKey);
  const std::string query = Sha256("ListGoals patients/p1");
  const std::string token = codec.Encode(Cursor(query));
  auto decoded = codec.Decode(token, query, "page_token");
  ASSERT_TRUE(decoded.ok()) << decoded.status();
  EXPECT_EQ(decoded->query_hash(), query);
  EXPECT_EQ(decoded->after_id(), "01HZXK3M5T9QW0000000000000");
  EXPECT_EQ(decoded->after_version(), 7);
}

TEST(PageTokenTest, TokenIsUrlSafeText) {
  PageTokenCodec codec(kKey);
  const std::string token = codec.Encode(Cursor(Sha256("q")));
  EXPECT_FALSE(token.empty());
  EXPECT_EQ(token.find_first_not_of("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"),
            std::string::npos)
      << token;
}

TEST(PageTokenTest, EveryFlippedByteIsRefused) {
  PageTokenCodec codec(kKey);
  const std::string query = Sha256("q");
  std::string raw;
  ASSERT_TRUE(absl::WebSafeBase64Unescape(codec.Encode(Cursor(query)), &raw));
  for (size_t i = 0; i < raw.size(); ++i) {
    for (unsigned char flip : {0x01, 0x80, 0xFF}) {
      std::string tampered = raw;
      tampered[i] = static_cast<char>(static_cast<unsigned char>(tampered[i]) ^ flip);
      ExpectRefused(codec.Decode(absl::WebSafeBase64Escape(tampered), query, "page_token").status(),
                    "byte " + std::to_string(i) + " xor " + std::to_string(flip));
    }
  }
}

TEST(PageTokenTest, ChangedCharacterIsRefused) {
  PageTokenCodec codec(kKey);
  const std::string query = Sha256("q");
  const std::string token = codec.Encode(Cursor(query));
  for (size_t i = 0; i < token.size(); ++i) {
    std::string tampered = token;
    tampered[i] = tampered[i] == 'A' ? 'B' : 'A';
    auto decoded = codec.Decode(tampered, query, "page_token");
    // The last character may carry only padding bits; then the bytes (and the
    // token's meaning) are unchanged, which is harmless.
    if (decoded.ok()) {
      std::string a, b;
      ASSERT_TRUE(absl::WebSafeBase64Unescape(token, &a));
      ASSERT_TRUE(absl::WebSafeBase64Unescape(tampered, &b));
      EXPECT_EQ(a, b) << "character " << i << " changed the bytes yet the token was accepted";
    } else {
      ExpectRefused(decoded.status(), "character " + std::to_string(i));
    }
  }
}

TEST(PageTokenTest, ForgedCursorWithoutTheKeyIsRefused) {
  PageTokenCodec codec(kKey);
  const std::string query = Sha256("q");
  // A client that knows the format but not the key: cursor + a guessed MAC.
  storage::PageCursor forged = Cursor(query);
  forged.set_after_id("ZZZZZZZZZZZZZZZZZZZZZZZZZZ");
  const std::string body = forged.SerializeAsString();
  for (const std::string& mac : {std::string(16, '\0'), std::string(16, '\xff'), Sha256(body).substr(0, 16)}) {
    ExpectRefused(codec.Decode(absl::WebSafeBase64Escape(body + mac), query, "page_token").status(), "forged");
  }
  // Splicing a valid MAC onto another cursor does not work either.
  std::string raw;
  ASSERT_TRUE(absl::WebSafeBase64Unescape(codec.Encode(Cursor(query)), &raw));
  const std::string valid_mac = raw.substr(raw.size() - 16);
  ExpectRefused(codec.Decode(absl::WebSafeBase64Escape(body + valid_mac), query, "page_token").status(), "spliced");
}

TEST(PageTokenTest, TokenFromAnotherKeyIsRefused) {
  PageTokenCodec mine(kKey);
  PageTokenCodec theirs(std::string(32, 'o'));
  const std::string query = Sha256("q");
  ExpectRefused(mine.Decode(theirs.Encode(Cursor(query)), query, "page_token").status(), "other key");
}

TEST(PageTokenTest, TruncatedTokensAreRefused) {
  PageTokenCodec codec(kKey);
  const std::string query = Sha256("q");
  const std::string token = codec.Encode(Cursor(query));
  for (size_t len = 1; len < token.size(); ++len) {
    ExpectRefused(codec.Decode(token.substr(0, len), query, "page_token").status(),
                  "first " + std::to_string(len) + " characters");
  }
  std::string raw;
  ASSERT_TRUE(absl::WebSafeBase64Unescape(token, &raw));
  for (size_t len = 0; len < raw.size(); ++len) {
    ExpectRefused(codec.Decode(absl::WebSafeBase64Escape(raw.substr(0, len)), query, "page_token").status(),
                  "first " + std::to_string(len) + " bytes");
  }
}

TEST(PageTokenTest, ExtendedTokenIsRefused) {
  PageTokenCodec codec(kKey);
  const std::string query = Sha256("q");
  std::string raw;
  ASSERT_TRUE(absl::WebSafeBase64Unescape(codec.Encode(Cursor(query)), &raw));
  ExpectRefused(codec.Decode(absl::WebSafeBase64Escape(raw + "x"), query, "page_token").status(), "extended");
}

TEST(PageTokenTest, GarbageIsRefused) {
  PageTokenCodec codec(kKey);
  const std::string query = Sha256("q");
  for (const std::string& garbage :
       {std::string("not a token!"), std::string("AAAA"), std::string("////"), std::string("a"), std::string(5000, 'A'),
        std::string("\xff\xfe"), std::string("eyJhZnRlciI6IjEifQ")}) {
    ExpectRefused(codec.Decode(garbage, query, "page_token").status(), garbage.substr(0, 20));
  }
}

TEST(PageTokenTest, TokenOfAnotherQueryIsRefused) {
  PageTokenCodec codec(kKey);
  const std::string token = codec.Encode(Cursor(Sha256("ListGoals patients/p1")));
  auto decoded = codec.Decode(token, Sha256("ListGoals patients/p2"), "page_token");
  ExpectRefused(decoded.status(), "other query");
  EXPECT_THAT(std::string(decoded.status().message()), HasSubstr("different query"));
}

TEST(PageTokenTest, NamesTheFieldItWasGiven) {
  PageTokenCodec codec(kKey);
  auto decoded = codec.Decode("garbage", Sha256("q"), "request.page_token");
  EXPECT_THAT(ViolatedFields(decoded.status()), ElementsAre("request.page_token"));
}

TEST(Sha256Test, MatchesTheStandardTestVector) {
  EXPECT_EQ(absl::BytesToHexString(Sha256("abc")), "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
  EXPECT_EQ(Sha256("").size(), 32u);
}

}  // namespace
}  // namespace wmty::domain
