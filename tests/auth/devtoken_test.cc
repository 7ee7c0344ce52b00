// wmty_devtoken, the real binary: its --help says how to use it (every flag,
// its default, an example), and the token it mints is one wmtyd accepts
// (checked with the verifier wmtyd uses).
#include <fstream>
#include <string>

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "absl/strings/ascii.h"
#include "auth/token_verifier.h"
#include "support/test_support.h"

namespace wmty::testing {
namespace {

using ::testing::HasSubstr;

TEST(DevtokenTest, HelpListsEveryFlagWithItsDefaultAndAnExample) {
  for (const char* ask : {"--help", "-h"}) {
    std::string out;
    EXPECT_EQ(RunCommand({WMTY_DEVTOKEN_PATH, ask}, &out), 0) << out;
    EXPECT_THAT(out, HasSubstr("Usage: wmty_devtoken --secret_file=FILE"));
    for (const char* flag : {"--secret_file", "--issuer", "--audience", "--scope", "--patient", "--subject", "--ttl"}) {
      EXPECT_THAT(out, HasSubstr(std::string("\n  ") + flag + " (default: ")) << flag;
    }
    EXPECT_THAT(out, HasSubstr("--scope (default: user/*.cruds)"));
    EXPECT_THAT(out, HasSubstr("--subject (default: Practitioner/dev)"));
    EXPECT_THAT(out, HasSubstr("Example"));
    EXPECT_THAT(out, HasSubstr("export WMTY_TOKEN=$(wmty_devtoken --secret_file="));
  }
}

TEST(DevtokenTest, MintsATokenTheServerAccepts) {
  TempDir dir;
  const std::string secret_file = dir.path() + "/hs256.secret";
  const std::string secret(40, 's');
  std::ofstream(secret_file) << secret << "\n";
  std::string out;
  ASSERT_EQ(RunCommand({WMTY_DEVTOKEN_PATH, "--secret_file=" + secret_file, "--subject=Practitioner/rn-17",
                        "--scope=patient/Goal.rs", "--patient=p1", "--ttl=5m"},
                       &out),
            0)
      << out;
  auto verifier = auth::TokenVerifier::FromHs256Secret(secret, {.issuer = "wmty-dev", .audience = "wmty"});
  ASSERT_TRUE(verifier.ok()) << verifier.status();
  auto principal = (*verifier)->Verify(absl::StripAsciiWhitespace(out));
  ASSERT_TRUE(principal.ok()) << principal.status();
  EXPECT_EQ(principal->subject, "Practitioner/rn-17");
  EXPECT_EQ(principal->fhir_user, "Practitioner/rn-17");
  EXPECT_EQ(principal->patient, "p1");

  std::string missing;
  EXPECT_EQ(RunCommand({WMTY_DEVTOKEN_PATH, "--secret_file=" + dir.path() + "/none"}, &missing), 2);
  EXPECT_THAT(missing, HasSubstr("--help"));
}

}  // namespace
}  // namespace wmty::testing
