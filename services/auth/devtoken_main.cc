// wmty_devtoken: mints an HS256 bearer token for development and tests.
//
//   wmty_devtoken --secret_file=.wmty-dev/hs256.secret --issuer=wmty-dev \
//     --audience=wmty --scope="user/*.cruds" [--patient=p1] [--subject=...] [--ttl=8h]
//
// Production tokens come from the organization's authorization server and
// are checked against its JWKS (--auth_jwks_file); this tool only exists so
// that a local wmtyd with --auth_hs256_secret_file can be used at once.
#include <jwt.h>

#include <cstdio>
#include <fstream>
#include <iterator>
#include <string>

#include "absl/flags/flag.h"
#include "absl/flags/parse.h"
#include "absl/flags/usage.h"
#include "absl/strings/ascii.h"
#include "absl/time/clock.h"
#include "absl/time/time.h"

ABSL_FLAG(std::string, secret_file, "", "File with the HS256 secret (the one wmtyd's --auth_hs256_secret_file reads)");
ABSL_FLAG(std::string, issuer, "wmty-dev", "iss");
ABSL_FLAG(std::string, audience, "wmty", "aud");
ABSL_FLAG(std::string, scope, "user/*.cruds", "Space-separated SMART scopes");
ABSL_FLAG(std::string, patient, "", "SMART patient launch context (binds patient/ scopes)");
ABSL_FLAG(std::string, subject, "Practitioner/dev", "sub (and fhirUser)");
ABSL_FLAG(absl::Duration, ttl, absl::Hours(8), "Lifetime");

int main(int argc, char** argv) {
  absl::SetProgramUsageMessage("wmty_devtoken: mint an HS256 development token for a local wmtyd.");
  absl::ParseCommandLine(argc, argv);
  std::ifstream in(absl::GetFlag(FLAGS_secret_file), std::ios::binary);
  if (!in) {
    std::fprintf(stderr, "wmty_devtoken: cannot read --secret_file\n");
    return 2;
  }
  std::string secret((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  secret = std::string(absl::StripTrailingAsciiWhitespace(secret));
  if (secret.size() < 32) {
    std::fprintf(stderr, "wmty_devtoken: the secret must be at least 32 bytes\n");
    return 2;
  }
  jwt_t* jwt = nullptr;
  if (jwt_new(&jwt) != 0) return 1;
  const long now = static_cast<long>(absl::ToUnixSeconds(absl::Now()));
  const std::string subject = absl::GetFlag(FLAGS_subject);
  jwt_add_grant(jwt, "iss", absl::GetFlag(FLAGS_issuer).c_str());
  jwt_add_grant(jwt, "aud", absl::GetFlag(FLAGS_audience).c_str());
  jwt_add_grant(jwt, "sub", subject.c_str());
  jwt_add_grant(jwt, "fhirUser", subject.c_str());
  jwt_add_grant(jwt, "scope", absl::GetFlag(FLAGS_scope).c_str());
  if (!absl::GetFlag(FLAGS_patient).empty()) jwt_add_grant(jwt, "patient", absl::GetFlag(FLAGS_patient).c_str());
  jwt_add_grant_int(jwt, "iat", now);
  jwt_add_grant_int(jwt, "exp", now + static_cast<long>(absl::ToInt64Seconds(absl::GetFlag(FLAGS_ttl))));
  jwt_set_alg(jwt, JWT_ALG_HS256, reinterpret_cast<const unsigned char*>(secret.data()),
              static_cast<int>(secret.size()));
  char* token = jwt_encode_str(jwt);
  jwt_free(jwt);
  if (token == nullptr) return 1;
  std::printf("%s\n", token);
  free(token);
  return 0;
}
