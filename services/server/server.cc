#include "server/server.h"

#include <grpcpp/ext/proto_server_reflection_plugin.h>
#include <grpcpp/health_check_service_interface.h>
#include <grpcpp/impl/server_builder_option.h>

#include <algorithm>
#include <thread>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/synchronization/notification.h"
#include "common/log.h"
#include "fhir/fhir_service.h"
#include "grpc/admin_service.h"
#include "grpc/grpc_service.h"

namespace wmty::server {
namespace {

// Linking grpc++_reflection registers its plugin for every ServerBuilder at
// static initialization, whether or not InitProtoReflectionServerBuilderPlugin
// is called; this option takes it out of one builder again.
class WithoutReflection final : public grpc::ServerBuilderOption {
 public:
  void UpdateArguments(grpc::ChannelArguments*) override {}
  void UpdatePlugins(std::vector<std::unique_ptr<grpc::ServerBuilderPlugin>>* plugins) override {
    plugins->erase(std::remove_if(plugins->begin(), plugins->end(),
                                  [](const std::unique_ptr<grpc::ServerBuilderPlugin>& p) {
                                    return dynamic_cast<grpc::reflection::ProtoServerReflectionPlugin*>(p.get()) !=
                                           nullptr;
                                  }),
                   plugins->end());
  }
};

bool IsLoopback(absl::string_view listen) {
  const size_t colon = listen.rfind(':');
  absl::string_view host = colon == absl::string_view::npos ? listen : listen.substr(0, colon);
  if (host.size() >= 2 && host.front() == '[' && host.back() == ']') host = host.substr(1, host.size() - 2);
  return host == "localhost" || host == "::1" || absl::StartsWith(host, "127.");
}

}  // namespace

absl::StatusOr<std::unique_ptr<WmtyServer>> WmtyServer::Start(const ServerOptions& options) {
  if (options.verifier == nullptr) {
    // Without authentication, PHI may only be reachable from this machine.
    if (!IsLoopback(options.grpc_listen) || (!options.http_listen.empty() && !IsLoopback(options.http_listen))) {
      return absl::FailedPreconditionError(
          "authentication can only be disabled when every listener is on loopback (127.0.0.1, ::1, localhost)");
    }
    log::Warning("authentication is disabled: every caller on this machine can read and write all patients");
  }
  const bool grpc_tls = !options.grpc_tls_cert_pem.empty();
  if (grpc_tls == options.grpc_tls_key_pem.empty()) {
    return absl::InvalidArgumentError("a TLS certificate needs its private key, and a key its certificate");
  }
  if (!options.grpc_tls_client_ca_pem.empty() && !grpc_tls) {
    return absl::InvalidArgumentError("client certificate verification (mTLS) needs TLS");
  }
  // The TLS options cover both listeners: with TLS configured neither is
  // plaintext; without, off-loopback listeners need allow_plaintext.
  if (!options.allow_plaintext && !grpc_tls &&
      (!IsLoopback(options.grpc_listen) || (!options.http_listen.empty() && !IsLoopback(options.http_listen)))) {
    return absl::FailedPreconditionError(
        "plaintext listeners are only allowed on loopback: configure TLS, or --allow_plaintext behind a "
        "TLS-terminating proxy");
  }
  std::unique_ptr<WmtyServer> server(new WmtyServer());
  storage::StoreOptions store_options;
  store_options.path = options.data_dir;
  store_options.block_cache_bytes = options.block_cache_bytes;
  store_options.memtable_budget_bytes = options.memtable_budget_bytes;
  store_options.env = options.storage_env;
  store_options.max_queued_changes = options.max_queued_changes;
  auto store = storage::Store::Open(store_options);
  if (!store.ok()) return store.status();
  server->store_ = std::move(*store);
  auto core = domain::PatientRecords::Create(server->store_.get());
  if (!core.ok()) return core.status();
  server->core_ = std::move(*core);
  server->service_ = grpc_api::NewWhatMattersService(server->core_.get(), options.verifier, options.max_inflight_rpcs);
  if (!options.backup_dir.empty()) {
    storage::BackupOptions backup_options;
    backup_options.dir = options.backup_dir;
    backup_options.keep = options.backup_keep;
    backup_options.interval = options.backup_interval;
    auto backups = storage::Backups::Open(server->store_.get(), std::move(backup_options));
    if (!backups.ok()) return backups.status();
    server->backups_ = std::move(*backups);
  }
  server->admin_service_ = grpc_api::NewAdminService(server->core_.get(), server->backups_.get(), options.verifier);

  grpc::EnableDefaultHealthCheckService(true);
  if (options.reflection) grpc::reflection::InitProtoReflectionServerBuilderPlugin();
  grpc::ServerBuilder builder;
  if (!options.reflection) builder.SetOption(std::make_unique<WithoutReflection>());
  std::shared_ptr<grpc::ServerCredentials> credentials = grpc::InsecureServerCredentials();
  if (grpc_tls) {
    grpc::SslServerCredentialsOptions ssl(options.grpc_tls_client_ca_pem.empty()
                                              ? GRPC_SSL_DONT_REQUEST_CLIENT_CERTIFICATE
                                              : GRPC_SSL_REQUEST_AND_REQUIRE_CLIENT_CERTIFICATE_AND_VERIFY);
    ssl.pem_root_certs = options.grpc_tls_client_ca_pem;
    ssl.pem_key_cert_pairs.push_back({options.grpc_tls_key_pem, options.grpc_tls_cert_pem});
    credentials = grpc::SslServerCredentials(ssl);
  }
  builder.AddListeningPort(options.grpc_listen, credentials, &server->grpc_port_);
  builder.SetMaxReceiveMessageSize(options.max_message_bytes);
  builder.SetMaxSendMessageSize(std::max(options.max_message_bytes, 64 * 1024 * 1024));
  builder.RegisterService(server->service_.get());
  builder.RegisterService(server->admin_service_.get());
  server->server_ = builder.BuildAndStart();
  if (server->server_ == nullptr || server->grpc_port_ == 0) {
    return absl::UnavailableError(absl::StrCat("cannot listen on ", options.grpc_listen));
  }
  if (!options.http_listen.empty()) {
    fhir::FhirServiceOptions fhir_options;
    fhir_options.base_url = options.fhir_base_url;
    fhir_options.request_timeout = options.fhir_request_timeout;
    fhir_options.verifier = options.verifier;
    server->fhir_ = fhir::NewFhirService(server->core_.get(), std::move(fhir_options));
    http::HttpServerOptions http_options;
    http_options.listen = options.http_listen;
    http_options.max_body_bytes = options.http_max_body_bytes;
    http_options.io_threads = options.http_io_threads;
    http_options.max_connections = options.http_max_connections;
    http_options.max_inflight = options.http_max_inflight;
    http_options.read_timeout = options.http_read_timeout;
    http_options.tls_cert_pem = options.grpc_tls_cert_pem;
    http_options.tls_key_pem = options.grpc_tls_key_pem;
    http_options.tls_client_ca_pem = options.grpc_tls_client_ca_pem;
    auto http = http::HttpServer::Start(http_options, server->fhir_.get());
    if (!http.ok()) {
      server->server_->Shutdown();
      server->server_->Wait();
      server->server_.reset();
      return http.status();
    }
    server->http_ = std::move(*http);
  }
  server->server_->GetHealthCheckService()->SetServingStatus(true);
  log::Info("serving", {{"grpc_port", std::to_string(server->grpc_port_)},
                        {"http_port", std::to_string(server->http_port())},
                        {"last_sequence", std::to_string(server->store_->LastSequence())}});
  return server;
}

void WmtyServer::Shutdown(absl::Duration grace) {
  if (shut_down_) return;
  shut_down_ = true;
  log::Info("draining", {{"grace_ms", std::to_string(absl::ToInt64Milliseconds(grace))}});
  const absl::Time deadline = absl::Now() + grace;
  server_->GetHealthCheckService()->SetServingStatus(false);
  // Both faces at once, so that neither takes new work while the other
  // drains. gRPC refuses new calls at once (UNAVAILABLE); in-flight calls get
  // until the deadline, then are cancelled. HTTP stops accepting, answers
  // requests arriving on open connections with 503, and lets requests in
  // progress (writes wait for the commit thread, which is still running)
  // finish until the deadline; the rest are dropped.
  // A backup in progress may finish within the grace period; past it, it is
  // stopped (its call fails with ABORTED) so the gRPC drain is not held up.
  absl::Notification drained;
  std::thread backup_stopper([this, deadline, &drained] {
    if (!drained.WaitForNotificationWithDeadline(deadline) && backups_ != nullptr) backups_->StopBackups();
  });
  const absl::Time drain_start = absl::Now();
  std::thread grpc_drain([this, deadline] { server_->Shutdown(absl::ToChronoTime(deadline)); });
  if (http_ != nullptr) {
    http_->Shutdown(std::max(absl::ZeroDuration(), deadline - absl::Now()));
    log::Info("http drained", {{"ms", std::to_string(absl::ToInt64Milliseconds(absl::Now() - drain_start))}});
  }
  grpc_drain.join();
  server_->Wait();
  log::Info("grpc drained", {{"ms", std::to_string(absl::ToInt64Milliseconds(absl::Now() - drain_start))}});
  drained.Notify();
  backup_stopper.join();
  // Stops a scheduled backup in progress; the store must outlive it.
  if (backups_ != nullptr) backups_->Close();
  // Runs every pending write's callback (some answer dropped HTTP requests,
  // through fhir_, which is still alive).
  store_->Close();
  log::Info("stopped", {{"last_sequence", std::to_string(store_->LastSequence())}});
}

WmtyServer::~WmtyServer() {
  if (server_ != nullptr) Shutdown(absl::ZeroDuration());
}

}  // namespace wmty::server
