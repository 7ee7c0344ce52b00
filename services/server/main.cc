// wmtyd: the What Matters To You service.
//
//   wmtyd --data_dir=./data --grpc_listen=127.0.0.1:50051 --http_listen=127.0.0.1:8080
//
// gRPC (wmty.v1) and the FHIR R4 REST face (HTTP, base path /fhir) serve the
// same data.
//
// SIGTERM/SIGINT: report NOT_SERVING, drain in-flight calls within
// --shutdown_grace, close the database cleanly and exit 0.
#include <signal.h>
#ifdef WMTY_WITH_JEMALLOC
#include <jemalloc/jemalloc.h>
#endif

#include <cstdio>
#include <filesystem>
#include <fstream>
#include <iterator>

#include <google/protobuf/stubs/logging.h>

#include "absl/flags/flag.h"
#include "absl/flags/parse.h"
#include "absl/flags/usage.h"
#include "absl/strings/ascii.h"
#include "absl/strings/str_cat.h"
#include "absl/synchronization/mutex.h"
#include "auth/remote_jwks.h"
#include "auth/token_verifier.h"
#include "common/log.h"
#include "server/server.h"

ABSL_FLAG(std::string, data_dir, "./data", "Directory of the embedded RocksDB database");
ABSL_FLAG(std::string, grpc_listen, "127.0.0.1:50051", "gRPC listen address host:port (port 0: any free port)");
ABSL_FLAG(int, max_message_bytes, 4 * 1024 * 1024, "Largest gRPC request accepted, in bytes");
ABSL_FLAG(bool, reflection, true, "Enable gRPC server reflection");
ABSL_FLAG(int, block_cache_mb, 256, "RocksDB block cache size in MiB");
ABSL_FLAG(int, memtable_mb, 128,
          "Memory for all RocksDB memtables together, in MiB (write buffers; past it they flush)");
ABSL_FLAG(int, summary_cache_mb, 64,
          "Assembled patient summaries kept in memory, in MiB, each until the patient's next write (0: none)");
ABSL_FLAG(absl::Duration, shutdown_grace, absl::Seconds(10), "How long in-flight calls may run after SIGTERM");
ABSL_FLAG(std::string, port_file, "", "If set, write the bound gRPC port here once serving (for tests and tools)");
ABSL_FLAG(std::string, http_listen, "127.0.0.1:8080",
          "FHIR R4 REST (HTTP) listen address host:port (port 0: any free port; empty: no HTTP)");
ABSL_FLAG(int64_t, http_max_body_bytes, 1024 * 1024, "Largest HTTP request body accepted, in bytes (413 above)");
ABSL_FLAG(std::string, http_port_file, "", "If set, write the bound HTTP port here once serving");
ABSL_FLAG(std::string, fhir_base_url, "",
          "Absolute FHIR base URL for links, e.g. https://wmty.example.org/fhir (default: from the Host header)");
ABSL_FLAG(bool, bedside, true, "Serve the bedside app (compiled in) at /bedside/ on the HTTP listener");
ABSL_FLAG(std::string, bedside_dir, "",
          "Serve the bedside app from this directory instead of the compiled-in copy (development: edit and reload)");
ABSL_FLAG(absl::Duration, fhir_request_timeout, absl::Seconds(30), "Deadline of each FHIR request");
ABSL_FLAG(std::string, fhir_unknown_elements, "refuse",
          "Elements FHIR R4 does not define in a created or updated resource: refuse (400 naming each) or drop "
          "(not stored; the answer is an OperationOutcome with a warning per element)");
ABSL_FLAG(int, max_inflight_rpcs, 1024,
          "Most wmty.v1 gRPC calls in progress at once; past it calls get RESOURCE_EXHAUSTED at once (0: no limit)");
ABSL_FLAG(int, max_watchers, 10000,
          "Most open WatchChanges streams (wmty.v1.ChangeFeedService); past it new ones get RESOURCE_EXHAUSTED "
          "(0: no limit)");
ABSL_FLAG(absl::Duration, watch_stall_timeout, absl::Seconds(60),
          "A WatchChanges stream whose client has not read for this long ends with RESOURCE_EXHAUSTED and the "
          "sequence to resume after");
ABSL_FLAG(int, max_queued_changes, 10000,
          "Most writes waiting for the commit thread; past it writes are refused as overloaded (0: no limit)");
ABSL_FLAG(int, http_max_connections, 512,
          "Most open HTTP connections; past it new connections get 503 + Retry-After and are closed (0: no limit)");
ABSL_FLAG(int, http_max_inflight, 256,
          "Most HTTP requests being handled at once; past it requests get 503 + Retry-After (0: no limit)");
ABSL_FLAG(absl::Duration, http_read_timeout, absl::Seconds(30),
          "Time to read one whole HTTP request, and to wait idle on a kept-alive connection, before it is closed");
ABSL_FLAG(std::string, auth_jwks_file, "",
          "JWKS file with the public keys that sign bearer tokens (RS256/ES256/ES384)");
ABSL_FLAG(std::string, auth_jwks_url, "",
          "URL of the authorization server's JWKS (https://, or http:// to loopback); fetched at startup, every "
          "--auth_jwks_refresh, and when a token names an unknown kid (at most every --auth_jwks_min_refresh)");
ABSL_FLAG(absl::Duration, auth_jwks_refresh, absl::Minutes(10), "How often the keys at --auth_jwks_url are fetched");
ABSL_FLAG(absl::Duration, auth_jwks_min_refresh, absl::Minutes(1),
          "Least time between two fetches of --auth_jwks_url caused by tokens naming an unknown kid");
ABSL_FLAG(absl::Duration, auth_jwks_timeout, absl::Seconds(5), "Timeout of one fetch of --auth_jwks_url");
ABSL_FLAG(absl::Duration, auth_jwks_startup_wait, absl::Seconds(30),
          "How long startup retries --auth_jwks_url before wmtyd gives up and exits");
ABSL_FLAG(absl::Duration, auth_clock_skew, absl::Seconds(60),
          "How far a token's exp and nbf may be off this server's clock (clock differences with the authorization "
          "server)");
ABSL_FLAG(std::string, smart_authorization_endpoint, "",
          "The authorization server's authorize URL, published in [base]/.well-known/smart-configuration and the "
          "CapabilityStatement (with --smart_token_endpoint); empty: no SMART App Launch");
ABSL_FLAG(std::string, smart_token_endpoint, "",
          "The authorization server's token URL (see --smart_authorization_endpoint)");
ABSL_FLAG(std::string, smart_revocation_endpoint, "", "The authorization server's token revocation URL (optional)");
ABSL_FLAG(std::string, auth_hs256_secret_file, "",
          "File holding an HS256 secret (32+ bytes) for bearer tokens: development and tests");
ABSL_FLAG(std::string, auth_issuer, "", "Required `iss` of bearer tokens");
ABSL_FLAG(std::string, auth_audience, "", "Required `aud` of bearer tokens (e.g. this server's FHIR base URL)");
ABSL_FLAG(std::string, tls_cert_file, "", "PEM certificate (chain) for TLS on the gRPC and HTTP listeners");
ABSL_FLAG(std::string, tls_key_file, "", "PEM private key of --tls_cert_file");
ABSL_FLAG(std::string, tls_client_ca_file, "",
          "PEM CA: require and verify client certificates it signed (mTLS), for the gRPC and HTTP listeners");
ABSL_FLAG(bool, allow_plaintext, false,
          "Allow plaintext listeners off loopback (behind a TLS-terminating proxy or mesh)");
ABSL_FLAG(bool, auth_disabled, false,
          "Serve without authentication (refused unless every listener is on loopback; logs a warning)");
ABSL_FLAG(std::string, metrics_listen, "",
          "Prometheus metrics (GET /metrics, plaintext, no auth, no PHI) on this host:port, e.g. 0.0.0.0:9464 "
          "(port 0: any free port); empty: no metrics listener");
ABSL_FLAG(std::string, health_listen, "",
          "Also serve grpc.health.v1 alone, always plaintext, on this host:port (for Kubernetes gRPC probes, which "
          "cannot use TLS); empty: none");
ABSL_FLAG(std::string, health_port_file, "", "If set, write the bound --health_listen port here once serving");
ABSL_FLAG(bool, access_log, false,
          "Log one JSON line per request (correlation id, method/interaction, code, ms; never ids or content); "
          "server errors are logged either way");
ABSL_FLAG(std::string, metrics_port_file, "", "If set, write the bound metrics port here once serving");
ABSL_FLAG(std::string, backup_dir, "",
          "Directory for online backups (wmty.admin.v1.AdminService, wmtyctl admin); outside --data_dir, ideally "
          "on another disk. Empty: backups disabled");
ABSL_FLAG(int64_t, change_log_retention_changes, 10'000'000,
          "Newest change-log entries kept (WatchChanges resume, subscription matching); 0: no count limit");
ABSL_FLAG(int, change_log_retention_days, 30,
          "Change-log entries older than this many days are trimmed; 0: no age limit");
ABSL_FLAG(absl::Duration, change_log_trim_interval, absl::Minutes(1), "How often retention trims (tests shorten it)");
ABSL_FLAG(int, backup_keep, 7, "How many of the newest backups to keep; older ones are deleted after each backup");
ABSL_FLAG(absl::Duration, backup_interval, absl::ZeroDuration(),
          "Take a backup this often (e.g. 6h) while serving; 0: only when asked (needs --backup_dir)");

namespace {

// Which malloc serves the process (see cmake/WmtyAllocator.cmake).
std::string AllocatorName() {
#ifdef WMTY_WITH_JEMALLOC
  const char* version = nullptr;
  size_t size = sizeof(version);
  if (mallctl("version", &version, &size, nullptr, 0) == 0 && version != nullptr) {
    return std::string("jemalloc ") + version;
  }
  return "jemalloc";
#else
  return "system";
#endif
}

// Protobuf's own log lines (e.g. a field that failed to parse) go through the
// JSON logger; they name fields, never values.
void ProtobufLog(google::protobuf::LogLevel level, const char* filename, int line, const std::string& message) {
  using wmty::log::Level;
  Level l = level >= google::protobuf::LOGLEVEL_ERROR     ? Level::kError
            : level == google::protobuf::LOGLEVEL_WARNING ? Level::kWarning
                                                          : Level::kInfo;
  wmty::log::Write(l, "protobuf", {{"detail", message}});
}

bool WritePortFile(const std::string& path, int port) {
  const std::string tmp = path + ".tmp";
  {
    std::ofstream out(tmp, std::ios::trunc);
    out << port << "\n";
    if (!out) return false;
  }
  std::error_code ec;
  std::filesystem::rename(tmp, path, ec);
  return !ec;
}

absl::StatusOr<std::string> ReadSmallFile(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) return absl::FailedPreconditionError(absl::StrCat("cannot read ", path));
  std::string data((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  if (data.size() > 1024 * 1024) return absl::FailedPreconditionError(absl::StrCat(path, " is too large"));
  return data;
}

// The token verifier the flags ask for; null with --auth_disabled.
absl::StatusOr<std::shared_ptr<const wmty::auth::TokenVerifier>> LoadVerifier() {
  const std::string jwks = absl::GetFlag(FLAGS_auth_jwks_file);
  const std::string jwks_url = absl::GetFlag(FLAGS_auth_jwks_url);
  const std::string secret = absl::GetFlag(FLAGS_auth_hs256_secret_file);
  const int key_flags = !jwks.empty() + !jwks_url.empty() + !secret.empty();
  if (absl::GetFlag(FLAGS_auth_disabled)) {
    if (key_flags != 0) {
      return absl::InvalidArgumentError("--auth_disabled cannot be combined with authentication keys");
    }
    return std::shared_ptr<const wmty::auth::TokenVerifier>();
  }
  if (key_flags != 1) {
    return absl::InvalidArgumentError(
        "authentication is on: give one of --auth_jwks_url, --auth_jwks_file or --auth_hs256_secret_file, with "
        "--auth_issuer and --auth_audience; or --auth_disabled on loopback (scripts/run.sh makes a development key)");
  }
  wmty::auth::VerifierOptions verifier_options;
  verifier_options.issuer = absl::GetFlag(FLAGS_auth_issuer);
  verifier_options.audience = absl::GetFlag(FLAGS_auth_audience);
  verifier_options.clock_skew = absl::GetFlag(FLAGS_auth_clock_skew);
  if (verifier_options.clock_skew < absl::ZeroDuration() || verifier_options.clock_skew > absl::Minutes(10)) {
    return absl::InvalidArgumentError("--auth_clock_skew must be between 0s and 10m");
  }
  absl::StatusOr<std::unique_ptr<wmty::auth::TokenVerifier>> verifier;
  if (!jwks_url.empty()) {
    if (verifier_options.issuer.empty() || verifier_options.audience.empty()) {
      return absl::InvalidArgumentError("--auth_jwks_url needs --auth_issuer and --auth_audience");
    }
    wmty::auth::RemoteJwksOptions remote;
    remote.url = jwks_url;
    remote.refresh_interval = absl::GetFlag(FLAGS_auth_jwks_refresh);
    remote.min_refresh_interval = absl::GetFlag(FLAGS_auth_jwks_min_refresh);
    remote.fetch_timeout = absl::GetFlag(FLAGS_auth_jwks_timeout);
    remote.startup_wait = absl::GetFlag(FLAGS_auth_jwks_startup_wait);
    auto source = wmty::auth::RemoteJwks::Start(std::move(remote));
    if (!source.ok()) return source.status();
    verifier = wmty::auth::TokenVerifier::FromKeySource(std::move(*source), verifier_options);
  } else if (!jwks.empty()) {
    auto data = ReadSmallFile(jwks);
    if (!data.ok()) return data.status();
    verifier = wmty::auth::TokenVerifier::FromJwks(*data, verifier_options);
  } else {
    auto data = ReadSmallFile(secret);
    if (!data.ok()) return data.status();
    std::string key(absl::StripTrailingAsciiWhitespace(*data));
    verifier = wmty::auth::TokenVerifier::FromHs256Secret(std::move(key), verifier_options);
  }
  if (!verifier.ok()) return verifier.status();
  return std::shared_ptr<const wmty::auth::TokenVerifier>(std::move(*verifier));
}

// The flags of the store, the listeners and the FHIR face.
absl::Status ReadServingFlags(wmty::server::ServerOptions* options) {
  options->data_dir = absl::GetFlag(FLAGS_data_dir);
  options->grpc_listen = absl::GetFlag(FLAGS_grpc_listen);
  options->max_message_bytes = absl::GetFlag(FLAGS_max_message_bytes);
  options->reflection = absl::GetFlag(FLAGS_reflection);
  options->block_cache_bytes = static_cast<size_t>(absl::GetFlag(FLAGS_block_cache_mb)) << 20;
  options->memtable_budget_bytes = static_cast<size_t>(absl::GetFlag(FLAGS_memtable_mb)) << 20;
  if (absl::GetFlag(FLAGS_summary_cache_mb) < 0)
    return absl::InvalidArgumentError("--summary_cache_mb must be 0 or more");
  options->summary_cache_bytes = static_cast<size_t>(absl::GetFlag(FLAGS_summary_cache_mb)) << 20;
  options->http_listen = absl::GetFlag(FLAGS_http_listen);
  const int64_t max_body = absl::GetFlag(FLAGS_http_max_body_bytes);
  if (max_body < 1) return absl::InvalidArgumentError("--http_max_body_bytes must be positive");
  options->http_max_body_bytes = static_cast<size_t>(max_body);
  options->fhir_base_url = absl::GetFlag(FLAGS_fhir_base_url);
  options->fhir_request_timeout = absl::GetFlag(FLAGS_fhir_request_timeout);
  const std::string unknown_elements = absl::GetFlag(FLAGS_fhir_unknown_elements);
  if (unknown_elements != "refuse" && unknown_elements != "drop") {
    return absl::InvalidArgumentError("--fhir_unknown_elements must be refuse or drop");
  }
  options->fhir_drop_unknown_elements = unknown_elements == "drop";
  options->bedside = absl::GetFlag(FLAGS_bedside);
  options->bedside_dir = absl::GetFlag(FLAGS_bedside_dir);
  return absl::OkStatus();
}

absl::Status ReadOverloadFlags(wmty::server::ServerOptions* options) {
  options->max_inflight_rpcs = absl::GetFlag(FLAGS_max_inflight_rpcs);
  options->max_queued_changes = absl::GetFlag(FLAGS_max_queued_changes);
  options->http_max_connections = absl::GetFlag(FLAGS_http_max_connections);
  options->http_max_inflight = absl::GetFlag(FLAGS_http_max_inflight);
  options->http_read_timeout = absl::GetFlag(FLAGS_http_read_timeout);
  const int max_watchers = absl::GetFlag(FLAGS_max_watchers);
  options->watch_stall_timeout = absl::GetFlag(FLAGS_watch_stall_timeout);
  if (max_watchers < 0 || options->watch_stall_timeout <= absl::ZeroDuration()) {
    return absl::InvalidArgumentError(
        "--max_watchers must not be negative, and --watch_stall_timeout must be positive");
  }
  options->max_watchers = static_cast<size_t>(max_watchers);
  if (options->max_inflight_rpcs < 0 || options->max_queued_changes < 0 || options->http_max_connections < 0 ||
      options->http_max_inflight < 0 || options->http_read_timeout <= absl::ZeroDuration()) {
    return absl::InvalidArgumentError("overload limits must not be negative, and --http_read_timeout must be positive");
  }
  return absl::OkStatus();
}

// TLS, authentication and SMART App Launch.
absl::Status ReadSecurityFlags(wmty::server::ServerOptions* options) {
  const std::pair<std::string, std::string*> tls_files[] = {
      {absl::GetFlag(FLAGS_tls_cert_file), &options->tls_cert_pem},
      {absl::GetFlag(FLAGS_tls_key_file), &options->tls_key_pem},
      {absl::GetFlag(FLAGS_tls_client_ca_file), &options->tls_client_ca_pem}};
  for (const auto& [path, pem] : tls_files) {
    if (path.empty()) continue;
    auto data = ReadSmallFile(path);
    if (!data.ok()) return data.status();
    *pem = std::move(*data);
  }
  options->allow_plaintext = absl::GetFlag(FLAGS_allow_plaintext);
  auto verifier = LoadVerifier();
  if (!verifier.ok()) return verifier.status();
  options->verifier = std::move(*verifier);
  options->smart.issuer = absl::GetFlag(FLAGS_auth_issuer);
  options->smart.jwks_uri = absl::GetFlag(FLAGS_auth_jwks_url);
  options->smart.authorization_endpoint = absl::GetFlag(FLAGS_smart_authorization_endpoint);
  options->smart.token_endpoint = absl::GetFlag(FLAGS_smart_token_endpoint);
  options->smart.revocation_endpoint = absl::GetFlag(FLAGS_smart_revocation_endpoint);
  if (options->smart.authorization_endpoint.empty() != options->smart.token_endpoint.empty()) {
    return absl::InvalidArgumentError("--smart_authorization_endpoint and --smart_token_endpoint go together");
  }
  return absl::OkStatus();
}

// Metrics, health, the access log and backups.
absl::Status ReadOperationsFlags(wmty::server::ServerOptions* options) {
  options->metrics_listen = absl::GetFlag(FLAGS_metrics_listen);
  options->access_log = absl::GetFlag(FLAGS_access_log);
  options->health_listen = absl::GetFlag(FLAGS_health_listen);
  options->backup_dir = absl::GetFlag(FLAGS_backup_dir);
  options->backup_keep = absl::GetFlag(FLAGS_backup_keep);
  options->backup_interval = absl::GetFlag(FLAGS_backup_interval);
  if (options->backup_dir.empty() && options->backup_interval > absl::ZeroDuration()) {
    return absl::InvalidArgumentError("--backup_interval needs --backup_dir");
  }
  const int64_t retention_changes = absl::GetFlag(FLAGS_change_log_retention_changes);
  const int retention_days = absl::GetFlag(FLAGS_change_log_retention_days);
  options->change_log_trim_interval = absl::GetFlag(FLAGS_change_log_trim_interval);
  if (retention_changes < 0 || retention_days < 0 || options->change_log_trim_interval <= absl::ZeroDuration()) {
    return absl::InvalidArgumentError(
        "--change_log_retention_changes and --change_log_retention_days must not be negative, and "
        "--change_log_trim_interval must be positive");
  }
  options->change_log_retention_changes = static_cast<uint64_t>(retention_changes);
  options->change_log_retention_age = absl::Hours(24) * retention_days;
  return absl::OkStatus();
}

// The server options the flags ask for; an error names the flag at fault.
absl::StatusOr<wmty::server::ServerOptions> OptionsFromFlags() {
  wmty::server::ServerOptions options;
  for (auto read : {ReadServingFlags, ReadOverloadFlags, ReadSecurityFlags, ReadOperationsFlags}) {
    if (auto s = read(&options); !s.ok()) return s;
  }
  return options;
}

// The HTTP, metrics and health port files first: a tool waiting for the gRPC
// one finds all. False (logged) when one cannot be written.
bool WritePortFiles(const wmty::server::WmtyServer& server) {
  const std::pair<std::string, int> port_files[] = {{absl::GetFlag(FLAGS_health_port_file), server.health_port()},
                                                    {absl::GetFlag(FLAGS_metrics_port_file), server.metrics_port()},
                                                    {absl::GetFlag(FLAGS_http_port_file), server.http_port()},
                                                    {absl::GetFlag(FLAGS_port_file), server.grpc_port()}};
  for (const auto& [path, port] : port_files) {
    if (path.empty() || WritePortFile(path, port)) continue;
    wmty::log::Error("cannot write port file", {{"path", path}});
    return false;
  }
  return true;
}

}  // namespace

int main(int argc, char** argv) {
  absl::SetProgramUsageMessage(
      "wmtyd: What Matters To You service.\n  wmtyd --data_dir=./data --grpc_listen=127.0.0.1:50051 "
      "--http_listen=127.0.0.1:8080");
  absl::ParseCommandLine(argc, argv);
  google::protobuf::SetLogHandler(&ProtobufLog);
  // Debian's Abseil is built with Mutex deadlock detection on, which keeps a
  // lock graph on every acquisition (about 1% of CPU on the read paths). The
  // sanitizer builds and the lock-order discipline of the code cover it.
  absl::SetMutexDeadlockDetectionMode(absl::OnDeadlockCycle::kIgnore);
  wmty::log::Info("starting", {{"allocator", AllocatorName()}});

  // Block the shutdown signals in every thread; main waits for them below.
  sigset_t signals;
  sigemptyset(&signals);
  sigaddset(&signals, SIGTERM);
  sigaddset(&signals, SIGINT);
  pthread_sigmask(SIG_BLOCK, &signals, nullptr);

  auto options = OptionsFromFlags();
  if (!options.ok()) {
    wmty::log::Error("startup failed", {{"error", options.status().ToString()}});
    return 1;
  }
  auto server = wmty::server::WmtyServer::Start(*options);
  if (!server.ok()) {
    wmty::log::Error("startup failed", {{"error", server.status().ToString()}});
    return 1;
  }
  if (!WritePortFiles(**server)) return 1;

  int received = 0;
  sigwait(&signals, &received);
  wmty::log::Info("signal received", {{"signal", received == SIGTERM ? "SIGTERM" : "SIGINT"}});
  (*server)->Shutdown(absl::GetFlag(FLAGS_shutdown_grace));
  return 0;
}
