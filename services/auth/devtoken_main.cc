// wmty_devtoken: mints an HS256 bearer token for development and tests.
//
//   wmty_devtoken --secret_file=.wmty-dev/hs256.secret --issuer=wmty-dev
//     --audience=wmty --scope="user/*.cruds" [--patient=p1] [--subject=...] [--ttl=8h]
//   wmty_devtoken --help    every flag, its default, and an example
//
// Production tokens come from the organization's authorization server and
// are checked against its JWKS (--auth_jwks_file); this tool only exists so
// that a local wmtyd with --auth_hs256_secret_file can be used at once.
#include <cstdio>
#include <fstream>
#include <iterator>
#include <string>

#include <jwt.h>

#include "absl/flags/flag.h"
#include "absl/flags/parse.h"
#include "absl/flags/reflection.h"
#include "absl/flags/usage.h"
#include "absl/strings/ascii.h"
#include "absl/strings/string_view.h"
#include "absl/time/clock.h"
#include "absl/time/time.h"

ABSL_FLAG(std::string, secret_file, "",
          "File with the HS256 secret, at least 32 bytes (the file wmtyd's --auth_hs256_secret_file reads). Required.");
ABSL_FLAG(std::string, issuer, "wmty-dev", "The token's iss: must equal wmtyd's --auth_issuer.");
ABSL_FLAG(std::string, audience, "wmty", "The token's aud: must equal wmtyd's --auth_audience.");
ABSL_FLAG(std::string, scope, "user/*.cruds",
          "Space-separated SMART scopes, e.g. 'patient/Goal.rs patient/Observation.rs' or system/wmty.admin.");
ABSL_FLAG(std::string, patient, "", "SMART patient launch context: the patient patient/ scopes are bound to.");
ABSL_FLAG(std::string, subject, "Practitioner/dev",
          "The token's sub and fhirUser: who the caller is. wmtyd records writes as by this practitioner "
          "(Practitioner/<id>, or a bare id).");
ABSL_FLAG(absl::Duration, ttl, absl::Hours(8), "Lifetime: exp = now + ttl (e.g. 30m, 8h).");

namespace {

constexpr char kUsage[] =
    "wmty_devtoken: mints an HS256 bearer token (a JWT) for a local wmtyd started with\n"
    "--auth_hs256_secret_file: development and tests only. Production tokens come from the\n"
    "organization's authorization server (wmtyd --auth_jwks_file). The token goes to stdout.\n"
    "\n"
    "Usage: wmty_devtoken --secret_file=FILE [--issuer=ISS] [--audience=AUD] [--scope=SCOPES]\n"
    "                     [--patient=ID] [--subject=Practitioner/ID] [--ttl=DURATION]\n";

constexpr char kExample[] =
    "Example (scripts/run.sh makes the secret and prints a token like this one):\n"
    "  export WMTY_TOKEN=$(wmty_devtoken --secret_file=.wmty-dev/hs256.secret \\\n"
    "      --scope='patient/Goal.rs patient/Observation.rs' --patient=p1 --subject=Practitioner/rn-17 --ttl=1h)\n";

// Printed by hand: absl's own --help lists only flags defined in a file named
// after the program, which this one is not, so it showed none.
constexpr const char* kFlags[] = {"secret_file", "issuer", "audience", "scope", "patient", "subject", "ttl"};

void PrintHelp() {
  std::printf("%s\nFlags:\n", kUsage);
  for (const char* name : kFlags) {
    const absl::CommandLineFlag* flag = absl::FindCommandLineFlag(name);
    if (flag == nullptr) continue;
    const std::string def = flag->DefaultValue();
    std::printf("  --%s (default: %s)\n      %s\n", name, def.empty() ? "none" : def.c_str(), flag->Help().c_str());
  }
  std::printf("\n%s", kExample);
}

bool AsksForHelp(int argc, char** argv) {
  for (int i = 1; i < argc; ++i) {
    const absl::string_view arg = argv[i];
    if (arg == "-h" || arg == "--help" || arg == "-help" || arg == "--helpfull" || arg == "--helpshort") return true;
  }
  return false;
}

}  // namespace

int main(int argc, char** argv) {
  if (AsksForHelp(argc, argv)) {
    PrintHelp();
    return 0;
  }
  absl::SetProgramUsageMessage(kUsage);
  absl::ParseCommandLine(argc, argv);
  std::ifstream in(absl::GetFlag(FLAGS_secret_file), std::ios::binary);
  if (!in) {
    std::fprintf(stderr, "wmty_devtoken: cannot read --secret_file (see wmty_devtoken --help)\n");
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
