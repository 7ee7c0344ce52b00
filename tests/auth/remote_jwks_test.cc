// RemoteJwks (--auth_jwks_url) against a real HTTP server serving a JWKS that
// the tests rotate: keys fetched at start, a rotated key picked up when a token
// names it (and not more often than the rate limit allows), a periodic
// refresh, the last good keys kept when the server fails, and startup refused
// when the URL never answers or is plain http:// off loopback.
#include "auth/remote_jwks.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <jwt.h>

#include "absl/strings/match.h"
#include "absl/time/clock.h"
#include "support/jwks_server.h"
#include "support/test_support.h"
#include "support/test_tokens.h"

namespace wmty::auth {
namespace {

using ::wmty::testing::JwksOf;
using ::wmty::testing::JwksServer;
using ::wmty::testing::NewRsaKeyPair;
using ::wmty::testing::RsaKeyPair;
using ::wmty::testing::SignToken;
using ::wmty::testing::StatusIs;

// A status with `code` whose message contains `text`.
MATCHER_P2(StatusWith, code, text, "") {
  const absl::Status& s = ::wmty::testing::internal::ToStatus(arg);
  *result_listener << "status is " << s;
  return s.code() == code && absl::StrContains(s.message(), text);
}

const RsaKeyPair& KeyA() {
  static const RsaKeyPair key = NewRsaKeyPair("key-a");
  return key;
}
const RsaKeyPair& KeyB() {
  static const RsaKeyPair key = NewRsaKeyPair("key-b");
  return key;
}

std::string TokenSignedWith(const RsaKeyPair& key, const std::string& patient = "p1") {
  return SignToken({.scope = "patient/Goal.rs", .patient = patient, .kid = key.kid}, key.private_pem, JWT_ALG_RS256);
}

VerifierOptions Options() {
  VerifierOptions o;
  o.issuer = ::wmty::testing::kTestIssuer;
  o.audience = ::wmty::testing::kTestAudience;
  return o;
}

RemoteJwksOptions OptionsFor(const JwksServer& server) {
  RemoteJwksOptions o;
  o.url = server.url();
  o.refresh_interval = absl::Hours(1);  // tests that want the periodic refresh say so
  o.min_refresh_interval = absl::ZeroDuration();
  o.fetch_timeout = absl::Seconds(5);
  o.startup_wait = absl::Seconds(5);
  return o;
}

std::unique_ptr<TokenVerifier> VerifierFor(std::shared_ptr<RemoteJwks> jwks) {
  auto verifier = TokenVerifier::FromKeySource(std::move(jwks), Options());
  EXPECT_TRUE(verifier.ok()) << verifier.status();
  return std::move(*verifier);
}

// Polls `condition` (no fixed sleep decides the outcome) for up to a minute.
template <class F>
bool Eventually(F condition) {
  const absl::Time give_up = absl::Now() + absl::Minutes(1);
  while (!condition()) {
    if (absl::Now() > give_up) return false;
    absl::SleepFor(absl::Milliseconds(20));
  }
  return true;
}

TEST(RemoteJwksTest, VerifiesTokensWithTheKeysFetchedAtStart) {
  JwksServer server(JwksOf({&KeyA()}));
  auto jwks = RemoteJwks::Start(OptionsFor(server));
  ASSERT_TRUE(jwks.ok()) << jwks.status();
  EXPECT_EQ(server.requests(), 1);
  auto verifier = VerifierFor(*jwks);
  auto principal = verifier->Verify(TokenSignedWith(KeyA()));
  ASSERT_TRUE(principal.ok()) << principal.status();
  EXPECT_EQ(principal->patient, "p1");
  // A key the server never published is refused.
  EXPECT_THAT(verifier->Verify(TokenSignedWith(KeyB())), StatusIs(absl::StatusCode::kUnauthenticated));
}

TEST(RemoteJwksTest, ARotatedKeyIsFetchedWhenATokenNamesIt) {
  JwksServer server(JwksOf({&KeyA()}));
  auto jwks = RemoteJwks::Start(OptionsFor(server));
  ASSERT_TRUE(jwks.ok()) << jwks.status();
  auto verifier = VerifierFor(*jwks);
  ASSERT_TRUE(verifier->Verify(TokenSignedWith(KeyA())).ok());

  server.Serve(JwksOf({&KeyB()}));  // the authorization server rotates: A retired, B signs
  auto principal = verifier->Verify(TokenSignedWith(KeyB()));
  ASSERT_TRUE(principal.ok()) << principal.status();
  EXPECT_EQ(server.requests(), 2);
  // A's new tokens are no longer accepted (its key is gone after the
  // refresh; a token verified before stays valid until it expires).
  EXPECT_THAT(verifier->Verify(TokenSignedWith(KeyA(), "p2")),
              StatusWith(absl::StatusCode::kUnauthenticated, "no key"));
}

TEST(RemoteJwksTest, RefreshesForUnknownKidsAreRateLimited) {
  JwksServer server(JwksOf({&KeyA()}));
  RemoteJwksOptions options = OptionsFor(server);
  options.min_refresh_interval = absl::Hours(1);
  auto jwks = RemoteJwks::Start(options);
  ASSERT_TRUE(jwks.ok()) << jwks.status();
  auto verifier = VerifierFor(*jwks);
  server.Serve(JwksOf({&KeyB()}));
  // Made-up and rotated kids alike: no fetch within the interval.
  for (int i = 0; i < 5; ++i) {
    EXPECT_THAT(
        verifier->Verify(SignToken({.scope = "patient/Goal.rs", .patient = "p1", .kid = "made-up-" + std::to_string(i)},
                                   KeyB().private_pem, JWT_ALG_RS256)),
        StatusIs(absl::StatusCode::kUnauthenticated));
  }
  EXPECT_THAT(verifier->Verify(TokenSignedWith(KeyB())), StatusIs(absl::StatusCode::kUnauthenticated));
  EXPECT_EQ(server.requests(), 1);
  // The keys it has keep working.
  EXPECT_TRUE(verifier->Verify(TokenSignedWith(KeyA())).ok());
}

TEST(RemoteJwksTest, ThePeriodicRefreshPicksUpNewKeys) {
  JwksServer server(JwksOf({&KeyA()}));
  RemoteJwksOptions options = OptionsFor(server);
  options.refresh_interval = absl::Milliseconds(50);
  options.min_refresh_interval = absl::Hours(1);  // only the periodic refresh may fetch
  auto jwks = RemoteJwks::Start(options);
  ASSERT_TRUE(jwks.ok()) << jwks.status();
  auto verifier = VerifierFor(*jwks);
  server.Serve(JwksOf({&KeyA(), &KeyB()}));
  const int before = server.requests();
  ASSERT_TRUE(Eventually([&] { return (*jwks)->successful_fetches() > before; }));
  ASSERT_TRUE(Eventually([&] { return (*jwks)->Current()->size() == 2; }));
  EXPECT_TRUE(verifier->Verify(TokenSignedWith(KeyB())).ok());
  EXPECT_TRUE(verifier->Verify(TokenSignedWith(KeyA())).ok());
}

TEST(RemoteJwksTest, AFailedRefreshKeepsTheLastGoodKeys) {
  JwksServer server(JwksOf({&KeyA()}));
  RemoteJwksOptions options = OptionsFor(server);
  options.refresh_interval = absl::Milliseconds(50);
  auto jwks = RemoteJwks::Start(options);
  ASSERT_TRUE(jwks.ok()) << jwks.status();
  auto verifier = VerifierFor(*jwks);

  server.Serve("", 503);
  ASSERT_TRUE(Eventually([&] { return (*jwks)->failed_fetches() >= 2; }));
  EXPECT_TRUE(verifier->Verify(TokenSignedWith(KeyA())).ok());

  server.Serve(R"({"keys":"not a list"})");  // answers, but nothing usable
  const int failed = (*jwks)->failed_fetches();
  ASSERT_TRUE(Eventually([&] { return (*jwks)->failed_fetches() >= failed + 2; }));
  EXPECT_TRUE(verifier->Verify(TokenSignedWith(KeyA())).ok());
  ASSERT_EQ((*jwks)->Current()->size(), 1u);
  EXPECT_EQ((*jwks)->Current()->front().kid, "key-a");
}

TEST(RemoteJwksTest, StartFailsWhenNoFetchSucceedsInTime) {
  JwksServer server("", 503);
  RemoteJwksOptions options = OptionsFor(server);
  options.startup_wait = absl::Milliseconds(600);
  EXPECT_THAT(RemoteJwks::Start(options), StatusWith(absl::StatusCode::kUnavailable, "HTTP 503"));
  EXPECT_GE(server.requests(), 2);  // it retried

  // Nothing listening at all.
  options.url = "http://127.0.0.1:1/jwks";
  EXPECT_THAT(RemoteJwks::Start(options), StatusIs(absl::StatusCode::kUnavailable));
}

TEST(RemoteJwksTest, StartsOnceTheServerAnswersWithinTheWait) {
  JwksServer server("", 503);
  RemoteJwksOptions options = OptionsFor(server);
  options.startup_wait = absl::Minutes(1);
  std::thread recover([&] {
    Eventually([&] { return server.requests() >= 2; });
    server.Serve(JwksOf({&KeyA()}));
  });
  auto jwks = RemoteJwks::Start(options);
  recover.join();
  ASSERT_TRUE(jwks.ok()) << jwks.status();
  EXPECT_TRUE(VerifierFor(*jwks)->Verify(TokenSignedWith(KeyA())).ok());
}

TEST(RemoteJwksTest, RefusesPlainHttpOffLoopbackAndBadUrls) {
  RemoteJwksOptions options;
  options.url = "http://idp.example.org/jwks";
  EXPECT_THAT(RemoteJwks::Start(options), StatusWith(absl::StatusCode::kInvalidArgument, "https://"));
  options.url = "not a url";
  EXPECT_THAT(RemoteJwks::Start(options), StatusIs(absl::StatusCode::kInvalidArgument));
  options.url = "ftp://127.0.0.1/jwks";
  EXPECT_THAT(RemoteJwks::Start(options), StatusIs(absl::StatusCode::kInvalidArgument));
}

}  // namespace
}  // namespace wmty::auth
