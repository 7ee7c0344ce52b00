// ehr-plugin-example: what an EHR integration does with wmty, as a small
// program on the C++ client library. The starting point for integrators:
// docs/integration.md walks through it.
//
//   ehr-plugin-example chart-open --patient=p1 [--deadline=500ms]
//   ehr-plugin-example record-preference --patient=p1 --kind=care_experience_preference
//       --text="Knock and wait before coming in" [--on_behalf_of=rn-17]
//       [--said_by_name="Maria Lopez" --said_by_relationship=daughter] [--request_id=...]
//   ehr-plugin-example follow --patient=p1 [--heartbeat=10s] [--max_updates=N] [--exit_after=D] [--log_events]
//
// Connection: --target (default $WMTY_TARGET, else 127.0.0.1:50051); the bearer
// token from --token_file, else $WMTY_TOKEN (never a flag: command lines are
// visible to every user of the machine); TLS with --tls_ca_file (and
// --tls_cert_file/--tls_key_file for mutual TLS).
//
// Exit status: 0 ok; 1 usage error; 2 the server refused the call (bad input,
// no access); 3 what-matters unavailable (deadline, overload, unreachable):
// chart-open has then printed the degraded card.
//
// Flags live only in this file; ehr_plugin.h has the reusable part.
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <iterator>
#include <memory>
#include <string>
#include <vector>

#include "absl/flags/flag.h"
#include "absl/flags/parse.h"
#include "absl/flags/usage.h"
#include "absl/flags/usage_config.h"
#include "absl/strings/ascii.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_replace.h"
#include "absl/strings/strip.h"
#include "absl/time/clock.h"
#include "absl/time/time.h"
#include "ehr_plugin.h"
#include "wmty/client/client.h"

ABSL_FLAG(std::string, target, "", "wmtyd's gRPC address host:port (default $WMTY_TARGET, else 127.0.0.1:50051)");
ABSL_FLAG(std::string, token_file, "", "File holding the bearer token (default: the WMTY_TOKEN environment variable)");
ABSL_FLAG(std::string, tls_ca_file, "", "PEM CA certificate(s) to trust for wmtyd's certificate; turns TLS on");
ABSL_FLAG(std::string, tls_cert_file, "", "PEM client certificate for mutual TLS (with --tls_key_file)");
ABSL_FLAG(std::string, tls_key_file, "", "PEM private key of --tls_cert_file");
ABSL_FLAG(std::string, patient, "", "The EHR's patient id (required)");
ABSL_FLAG(absl::Duration, deadline, absl::Milliseconds(500),
          "Budget of chart-open from start to card (connection included), and of each summary read of follow");
ABSL_FLAG(absl::Duration, write_deadline, absl::Seconds(5), "Deadline of record-preference, retries included");
ABSL_FLAG(std::string, kind, "", "record-preference: kind, e.g. care_experience_preference, likes_and_joys");
ABSL_FLAG(std::string, text, "", "record-preference: the preference in the speaker's own words");
ABSL_FLAG(std::string, on_behalf_of, "",
          "record-preference: the signed-in clinician's EHR practitioner id, when the plugin's token is its own "
          "(a system token); wmty records the token's user as the recorder and this clinician as on whose behalf");
ABSL_FLAG(std::string, said_by_name, "", "record-preference: a family member who said it (empty: the patient)");
ABSL_FLAG(std::string, said_by_relationship, "", "record-preference: that person's relationship, e.g. daughter");
ABSL_FLAG(std::string, encounter, "", "record-preference: the EHR encounter id (optional)");
ABSL_FLAG(std::string, request_id, "",
          "record-preference: idempotency key (default: a new UUID, printed); reuse it to retry an unclear outcome");
ABSL_FLAG(absl::Duration, heartbeat, absl::Seconds(10),
          "follow: heartbeat interval asked of the server while nothing changes (1s to 5m); three missed ones "
          "count as a lost connection");
ABSL_FLAG(int, max_updates, 0, "follow: stop after printing this many changed cards (0: no limit)");
ABSL_FLAG(absl::Duration, exit_after, absl::ZeroDuration(), "follow: stop after this long (0: no limit)");
ABSL_FLAG(bool, log_events, false,
          "follow: also print on stderr what each change and heartbeat led to (no patient text)");

namespace wmty::ehr_example {
namespace {

constexpr char kUsage[] =
    "what an EHR plugin does with wmty (see docs/integration.md).\n"
    "  ehr-plugin-example chart-open --patient=p1 [--deadline=500ms]\n"
    "  ehr-plugin-example record-preference --patient=p1 --kind=care_experience_preference --text=\"...\"\n"
    "      [--on_behalf_of=rn-17] [--said_by_name=\"Maria Lopez\" --said_by_relationship=daughter]\n"
    "  ehr-plugin-example follow --patient=p1 [--heartbeat=10s] [--max_updates=1] [--exit_after=1h]\n"
    "Token: --token_file or $WMTY_TOKEN. Server: --target or $WMTY_TARGET. Exit: 0 ok, 1 usage,\n"
    "2 refused by the server, 3 what-matters unavailable (degraded).";

int UsageError(const std::string& message) {
  std::fprintf(stderr, "ehr-plugin-example: %s\n(run with --help for usage)\n", message.c_str());
  return kExitUsage;
}

bool ReadFile(const std::string& path, std::string* contents) {
  std::ifstream in(path, std::ios::binary);
  if (!in) return false;
  contents->assign(std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>());
  return true;
}

// The client from the connection flags, or a usage error message.
absl::StatusOr<std::unique_ptr<client::Client>> Connect() {
  client::ClientOptions options;
  options.target = absl::GetFlag(FLAGS_target);
  if (options.target.empty()) {
    const char* env = std::getenv("WMTY_TARGET");
    options.target = env != nullptr && *env != '\0' ? env : "127.0.0.1:50051";
  }
  // The token: from a file (e.g. written by the EHR's SMART launch), else the
  // environment. Production tokens are short-lived; refresh them outside.
  if (const std::string file = absl::GetFlag(FLAGS_token_file); !file.empty()) {
    std::string token;
    if (!ReadFile(file, &token)) return absl::InvalidArgumentError("cannot read --token_file");
    options.bearer_token = std::string(absl::StripAsciiWhitespace(token));
    if (options.bearer_token.empty()) return absl::InvalidArgumentError("--token_file is empty");
  } else if (const char* env = std::getenv("WMTY_TOKEN"); env != nullptr) {
    options.bearer_token = std::string(absl::StripAsciiWhitespace(env));
  }
  // TLS: trust the given CA; with a client certificate for mutual TLS.
  const std::string ca = absl::GetFlag(FLAGS_tls_ca_file), cert = absl::GetFlag(FLAGS_tls_cert_file),
                    key = absl::GetFlag(FLAGS_tls_key_file);
  if (!ca.empty()) {
    grpc::SslCredentialsOptions ssl;
    if (!ReadFile(ca, &ssl.pem_root_certs)) return absl::InvalidArgumentError("cannot read --tls_ca_file");
    if (cert.empty() != key.empty()) {
      return absl::InvalidArgumentError("--tls_cert_file and --tls_key_file go together");
    }
    if (!cert.empty() && (!ReadFile(cert, &ssl.pem_cert_chain) || !ReadFile(key, &ssl.pem_private_key))) {
      return absl::InvalidArgumentError("cannot read --tls_cert_file or --tls_key_file");
    }
    options.credentials = grpc::SslCredentials(ssl);
  } else if (!cert.empty() || !key.empty()) {
    return absl::InvalidArgumentError("--tls_cert_file/--tls_key_file need --tls_ca_file");
  }
  return client::Client::Connect(options);
}

// A refused call: the error, and a hint for the usual configuration mistakes.
void PrintRefused(const char* what, const absl::Status& status) {
  std::fprintf(stderr, "ehr-plugin-example %s: %s", what, DescribeError(status).c_str());
  if (status.code() == absl::StatusCode::kUnauthenticated) {
    std::fprintf(stderr, "  (is the token set and current? --token_file or $WMTY_TOKEN)\n");
  }
}

// chart-open: one summary read within --deadline, counted from program start
// (so a slow connection eats into it, as it would in the EHR). Never blocks
// longer: on a transient failure the chart gets the degraded card.
int ChartOpen(absl::Time start, const std::string& patient) {
  const absl::Time deadline = start + absl::GetFlag(FLAGS_deadline);
  auto client = Connect();
  if (!client.ok()) return UsageError(std::string(client.status().message()));
  absl::StatusOr<v1::PatientSummary> summary = FetchSummary(**client, patient, deadline);
  if (summary.ok()) {
    std::fputs(RenderCard(patient, *summary, absl::Now()).c_str(), stdout);
    return kExitOk;
  }
  std::fputs(RenderDegradedCard(patient, summary.status()).c_str(), stdout);
  if (IsTransient(summary.status())) {
    std::fprintf(stderr, "ehr-plugin-example chart-open: %s", DescribeError(summary.status()).c_str());
    return kExitUnavailable;
  }
  PrintRefused("chart-open", summary.status());
  return kExitRefused;
}

// "care-experience-preference" / "CARE_EXPERIENCE_PREFERENCE" -> the enum.
bool ParseKind(std::string text, v1::PreferenceKind* kind) {
  text = absl::AsciiStrToUpper(absl::StrReplaceAll(text, {{"-", "_"}}));
  return v1::PreferenceKind_Parse(text, kind) && *kind != v1::PREFERENCE_KIND_UNSPECIFIED;
}

std::string KindNames() {
  std::vector<std::string> names;
  for (int i = v1::PreferenceKind_MIN + 1; i <= v1::PreferenceKind_MAX; ++i) {
    if (v1::PreferenceKind_IsValid(i)) {
      names.push_back(absl::AsciiStrToLower(v1::PreferenceKind_Name(static_cast<v1::PreferenceKind>(i))));
    }
  }
  return absl::StrJoin(names, ", ");
}

int RecordPreferenceCommand(const std::string& patient) {
  PreferenceInput in;
  in.patient = patient;
  if (absl::GetFlag(FLAGS_kind).empty())
    return UsageError("record-preference needs --kind (one of " + KindNames() + ")");
  if (!ParseKind(absl::GetFlag(FLAGS_kind), &in.kind)) {
    return UsageError("unknown --kind '" + absl::GetFlag(FLAGS_kind) + "' (one of " + KindNames() + ")");
  }
  in.text = absl::GetFlag(FLAGS_text);
  in.on_behalf_of = absl::GetFlag(FLAGS_on_behalf_of);
  in.said_by_name = absl::GetFlag(FLAGS_said_by_name);
  in.said_by_relationship = absl::GetFlag(FLAGS_said_by_relationship);
  in.encounter_id = absl::GetFlag(FLAGS_encounter);
  in.request_id = absl::GetFlag(FLAGS_request_id);
  // Everything else (text rules, ids, a related person's relationship, the
  // details some kinds need) is checked by the server, which names each
  // problem as a field violation: one source of truth for the rules.
  auto client = Connect();
  if (!client.ok()) return UsageError(std::string(client.status().message()));
  const v1::CreatePreferenceRequest req = BuildPreferenceRequest(in);
  absl::StatusOr<v1::Preference> pref = RecordPreference(**client, req, absl::GetFlag(FLAGS_write_deadline));
  if (pref.ok()) {
    std::printf("recorded %s (version %lld, request_id %s)\n", pref->name().c_str(),
                static_cast<long long>(pref->version()), req.request_id().c_str());
    return kExitOk;
  }
  if (IsTransient(pref.status())) {
    std::fprintf(stderr,
                 "ehr-plugin-example record-preference: %s"
                 "  not known whether it was recorded: run again with --request_id=%s to find out\n"
                 "  (the same request_id is never written twice)\n",
                 DescribeError(pref.status()).c_str(), req.request_id().c_str());
    return kExitUnavailable;
  }
  PrintRefused("record-preference", pref.status());
  return kExitRefused;
}

int FollowCommand(const std::string& patient) {
  FollowOptions options;
  options.patient = patient;
  options.heartbeat = absl::GetFlag(FLAGS_heartbeat);
  options.deadline = absl::GetFlag(FLAGS_deadline);
  options.max_updates = absl::GetFlag(FLAGS_max_updates);
  options.exit_after = absl::GetFlag(FLAGS_exit_after);
  options.log_events = absl::GetFlag(FLAGS_log_events);
  // The server's range, checked here too so the mistake is a usage error.
  if (options.heartbeat < absl::Seconds(1) || options.heartbeat > absl::Minutes(5)) {
    return UsageError("--heartbeat must be between 1s and 5m");
  }
  if (options.max_updates < 0) return UsageError("--max_updates must not be negative");
  if (options.exit_after < absl::ZeroDuration()) return UsageError("--exit_after must not be negative");
  auto client = Connect();
  if (!client.ok()) return UsageError(std::string(client.status().message()));
  return Follow(**client, options, stdout, stderr);
}

int Main(int argc, char** argv) {
  const absl::Time start = absl::Now();
  absl::SetProgramUsageMessage(kUsage);
  // --help lists every flag of this program (by default Abseil lists only
  // those defined in a file named like the binary).
  absl::FlagsUsageConfig usage_config;
  usage_config.contains_help_flags = [](absl::string_view) { return true; };
  absl::SetFlagsUsageConfig(usage_config);
  std::vector<char*> args = absl::ParseCommandLine(argc, argv);  // exits 1 on unknown or malformed flags
  if (args.size() != 2) {
    return UsageError(args.size() < 2 ? "missing command: chart-open, record-preference or follow"
                                      : "one command only; values go in --flag=value");
  }
  const std::string command = args[1];
  const std::string patient = absl::GetFlag(FLAGS_patient);
  if (command != "chart-open" && command != "record-preference" && command != "follow") {
    return UsageError("unknown command '" + command + "': chart-open, record-preference or follow");
  }
  if (patient.empty()) return UsageError(command + " needs --patient");
  if (absl::GetFlag(FLAGS_deadline) <= absl::ZeroDuration() ||
      absl::GetFlag(FLAGS_write_deadline) <= absl::ZeroDuration()) {
    return UsageError("deadlines must be positive");
  }
  if (command == "chart-open") return ChartOpen(start, patient);
  if (command == "record-preference") return RecordPreferenceCommand(patient);
  return FollowCommand(patient);
}

}  // namespace
}  // namespace wmty::ehr_example

int main(int argc, char** argv) { return wmty::ehr_example::Main(argc, argv); }
