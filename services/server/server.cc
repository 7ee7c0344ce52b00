// WmtyServer (server.h): Start's steps (check options, open the store, start
// gRPC, HTTP and observability, with one unwinding path), the drain on
// Shutdown, and the store and listener figures of /metrics.
#include "server/server.h"

#include <algorithm>
#include <filesystem>
#include <thread>

#include <grpcpp/ext/proto_server_reflection_plugin.h>
#include <grpcpp/health_check_service_interface.h>
#include <grpcpp/impl/server_builder_option.h>

#include "absl/cleanup/cleanup.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/synchronization/notification.h"
#include "common/log.h"
#include "fhir/fhir_service.h"
#include "grpc/admin_service.h"
#include "grpc/change_feed_service.h"
#include "grpc/grpc_service.h"
#include "web/static_site.h"

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

bool EveryListenerOnLoopback(const ServerOptions& options) {
  return IsLoopback(options.grpc_listen) && (options.http_listen.empty() || IsLoopback(options.http_listen));
}

// Refuses option sets that would expose patient data: no authentication off
// loopback, half-configured TLS, plaintext off loopback. Checked before
// anything opens or listens.
absl::Status ValidateOptions(const ServerOptions& options) {
  if (options.verifier == nullptr) {
    // Without authentication, PHI may only be reachable from this machine.
    if (!EveryListenerOnLoopback(options)) {
      return absl::FailedPreconditionError(
          "authentication can only be disabled when every listener is on loopback (127.0.0.1, ::1, localhost)");
    }
    log::Warning("authentication is disabled: every caller on this machine can read and write all patients");
  }
  const bool tls = !options.tls_cert_pem.empty();
  if (tls == options.tls_key_pem.empty()) {
    return absl::InvalidArgumentError("a TLS certificate needs its private key, and a key its certificate");
  }
  if (!options.tls_client_ca_pem.empty() && !tls) {
    return absl::InvalidArgumentError("client certificate verification (mTLS) needs TLS");
  }
  // The TLS options cover both listeners: with TLS configured neither is
  // plaintext; without, off-loopback listeners need allow_plaintext.
  if (!options.allow_plaintext && !tls && !EveryListenerOnLoopback(options)) {
    return absl::FailedPreconditionError(
        "plaintext listeners are only allowed on loopback: configure TLS, or --allow_plaintext behind a "
        "TLS-terminating proxy");
  }
  return absl::OkStatus();
}

// The bedside app's files (null when it is not served), checked before
// anything listens.
absl::StatusOr<std::unique_ptr<web::StaticSite>> LoadBedside(const ServerOptions& options) {
  if (options.http_listen.empty() || !options.bedside) return nullptr;
  if (options.bedside_dir.empty()) return web::StaticSite::Embedded();
  auto from_dir = web::StaticSite::FromDirectory(options.bedside_dir);
  if (!from_dir.ok()) return absl::InvalidArgumentError(absl::StrCat("--bedside_dir: ", from_dir.status().message()));
  return std::move(*from_dir);
}

std::shared_ptr<grpc::ServerCredentials> GrpcCredentials(const ServerOptions& options) {
  if (options.tls_cert_pem.empty()) return grpc::InsecureServerCredentials();
  grpc::SslServerCredentialsOptions ssl(options.tls_client_ca_pem.empty()
                                            ? GRPC_SSL_DONT_REQUEST_CLIENT_CERTIFICATE
                                            : GRPC_SSL_REQUEST_AND_REQUIRE_CLIENT_CERTIFICATE_AND_VERIFY);
  ssl.pem_root_certs = options.tls_client_ca_pem;
  ssl.pem_key_cert_pairs.push_back({options.tls_key_pem, options.tls_cert_pem});
  return grpc::SslServerCredentials(ssl);
}

}  // namespace

absl::StatusOr<std::unique_ptr<WmtyServer>> WmtyServer::Start(const ServerOptions& options) {
  if (auto s = ValidateOptions(options); !s.ok()) return s;
  auto bedside_site = LoadBedside(options);
  if (!bedside_site.ok()) return bedside_site.status();
  std::unique_ptr<WmtyServer> server(new WmtyServer());
  // The one unwinding path: whichever step fails, what the earlier ones
  // started stops here; the store and core close with the members.
  absl::Cleanup stop_on_error = [&server] { server->StopListeners(); };
  if (auto s = server->OpenStore(options); !s.ok()) return s;
  if (auto s = server->StartGrpc(options); !s.ok()) return s;
  if (auto s = server->StartHttp(options, std::move(*bedside_site)); !s.ok()) return s;
  if (auto s = server->StartObservability(options); !s.ok()) return s;
  std::move(stop_on_error).Cancel();
  server->retention_->Start();  // after every consumer registered its floor
  server->SetHealth("", true);
  server->SetHealth(kLivenessService, true);
  log::Info("serving", {{"grpc_port", std::to_string(server->grpc_port_)},
                        {"http_port", std::to_string(server->http_port())},
                        {"metrics_port", std::to_string(server->metrics_port())},
                        {"health_port", std::to_string(server->health_port())},
                        {"last_sequence", std::to_string(server->store_->LastSequence())}});
  return server;
}

absl::Status WmtyServer::OpenStore(const ServerOptions& options) {
  storage::StoreOptions store_options;
  store_options.path = options.data_dir;
  store_options.block_cache_bytes = options.block_cache_bytes;
  store_options.memtable_budget_bytes = options.memtable_budget_bytes;
  store_options.max_queued_changes = options.max_queued_changes;
  if (options.customize_store) options.customize_store(&store_options);
  auto store = storage::Store::Open(std::move(store_options));
  if (!store.ok()) return store.status();
  store_ = std::move(*store);
  data_dir_ = options.data_dir;
  retention_ = std::make_unique<domain::ChangeLogRetention>(
      store_.get(), domain::ChangeLogRetentionOptions{.max_changes = options.change_log_retention_changes,
                                                      .max_age = options.change_log_retention_age,
                                                      .interval = options.change_log_trim_interval});
  domain::PatientRecordsOptions core_options;
  core_options.summary_cache_bytes = options.summary_cache_bytes;
  auto core = domain::PatientRecords::Create(store_.get(), std::move(core_options));
  if (!core.ok()) return core.status();
  core_ = std::move(*core);
  if (options.backup_dir.empty()) return absl::OkStatus();
  storage::BackupOptions backup_options;
  backup_options.dir = options.backup_dir;
  backup_options.keep = options.backup_keep;
  backup_options.interval = options.backup_interval;
  auto backups = storage::Backups::Open(store_.get(), std::move(backup_options));
  if (!backups.ok()) return backups.status();
  backups_ = std::move(*backups);
  return absl::OkStatus();
}

absl::Status WmtyServer::StartGrpc(const ServerOptions& options) {
  service_ = grpc_api::NewWhatMattersService(core_.get(), options.verifier, options.max_inflight_rpcs);
  admin_service_ = grpc_api::NewAdminService(core_.get(), backups_.get(), options.verifier);
  domain::ChangeFeedOptions feed_options;
  feed_options.max_watchers = options.max_watchers;
  feed_options.stall_timeout = options.watch_stall_timeout;
  feed_ = std::make_unique<domain::ChangeFeed>(store_.get(), core_.get(), feed_options);
  change_feed_service_ = grpc_api::NewChangeFeedService(feed_.get(), core_.get(), options.verifier);
  grpc::EnableDefaultHealthCheckService(true);
  if (options.reflection) grpc::reflection::InitProtoReflectionServerBuilderPlugin();
  grpc::ServerBuilder builder;
  if (!options.reflection) builder.SetOption(std::make_unique<WithoutReflection>());
  builder.AddListeningPort(options.grpc_listen, GrpcCredentials(options), &grpc_port_);
  builder.SetMaxReceiveMessageSize(options.max_message_bytes);
  builder.SetMaxSendMessageSize(std::max(options.max_message_bytes, 64 * 1024 * 1024));
  builder.RegisterService(service_.get());
  builder.RegisterService(admin_service_.get());
  builder.RegisterService(change_feed_service_.get());
  auto grpc_metrics = std::make_unique<GrpcMetrics>(&registry_, options.access_log);
  grpc_metrics_ = grpc_metrics.get();
  std::vector<std::unique_ptr<grpc::experimental::ServerInterceptorFactoryInterface>> interceptors;
  interceptors.push_back(std::move(grpc_metrics));
  builder.experimental().SetInterceptorCreators(std::move(interceptors));
  server_ = builder.BuildAndStart();
  if (server_ == nullptr || grpc_port_ == 0) {
    return absl::UnavailableError(absl::StrCat("cannot listen on ", options.grpc_listen));
  }
  return absl::OkStatus();
}

absl::Status WmtyServer::StartHttp(const ServerOptions& options, std::unique_ptr<web::StaticSite> bedside_site) {
  if (options.http_listen.empty()) return absl::OkStatus();
  fhir::FhirServiceOptions fhir_options;
  fhir_options.base_url = options.fhir_base_url;
  fhir_options.request_timeout = options.fhir_request_timeout;
  fhir_options.verifier = options.verifier;
  fhir_options.unknown_elements =
      options.fhir_drop_unknown_elements ? fhir::UnknownElementPolicy::kDrop : fhir::UnknownElementPolicy::kRefuse;
  fhir_options.smart = options.smart;
  fhir_ = fhir::NewFhirService(core_.get(), std::move(fhir_options));
  smart_ = std::make_unique<fhir::SmartConfigurationHandler>(options.smart, fhir_.get());
  http::Handler* handler = smart_.get();
  if (bedside_site != nullptr) {
    web_ = std::make_unique<web::StaticSiteHandler>(
        std::move(bedside_site), "/bedside", smart_.get(),
        web::ContentSecurityPolicyConnectingTo({options.smart.token_endpoint, options.smart.revocation_endpoint}));
    handler = web_.get();
  }
  http_metrics_ = std::make_unique<HttpMetrics>(&registry_, handler, options.access_log);
  http::HttpServerOptions http_options;
  http_options.listen = options.http_listen;
  http_options.max_body_bytes = options.http_max_body_bytes;
  http_options.io_threads = options.http_io_threads;
  http_options.max_connections = options.http_max_connections;
  http_options.max_inflight = options.http_max_inflight;
  http_options.read_timeout = options.http_read_timeout;
  http_options.tls_cert_pem = options.tls_cert_pem;
  http_options.tls_key_pem = options.tls_key_pem;
  http_options.tls_client_ca_pem = options.tls_client_ca_pem;
  auto http = http::HttpServer::Start(http_options, http_metrics_.get());
  if (!http.ok()) return http.status();
  http_ = std::move(*http);
  return absl::OkStatus();
}

absl::Status WmtyServer::StartObservability(const ServerOptions& options) {
  registry_.AddCollector([this](metrics::Writer& writer) { CollectMetrics(writer); });
  registry_.AddCollector(CollectProcessMetrics);
  if (!options.metrics_listen.empty()) {
    metrics_endpoint_ = std::make_unique<MetricsEndpoint>(&registry_);
    http::HttpServerOptions metrics_options;
    metrics_options.listen = options.metrics_listen;
    metrics_options.io_threads = 1;
    metrics_options.thread_name = "wmty-metrics";
    metrics_options.max_connections = 16;
    metrics_options.max_inflight = 4;
    metrics_options.max_body_bytes = 1024;
    metrics_options.read_timeout = absl::Seconds(10);
    auto metrics_http = http::HttpServer::Start(metrics_options, metrics_endpoint_.get());
    if (!metrics_http.ok()) return metrics_http.status();
    metrics_http_ = std::move(*metrics_http);
  }
  return StartHealthListener(options);
}

absl::Status WmtyServer::StartHealthListener(const ServerOptions& options) {
  if (options.health_listen.empty()) return absl::OkStatus();
  grpc::ServerBuilder health_builder;
  health_builder.AddListeningPort(options.health_listen, grpc::InsecureServerCredentials(), &health_port_);
  // Nothing but health checks: small messages, no reflection.
  health_builder.SetMaxReceiveMessageSize(4096);
  health_builder.SetOption(std::make_unique<WithoutReflection>());
  health_unimplemented_ = std::make_unique<grpc::CallbackGenericService>();
  health_builder.RegisterCallbackGenericService(health_unimplemented_.get());
  health_server_ = health_builder.BuildAndStart();
  if (health_server_ == nullptr || health_port_ == 0) {
    return absl::UnavailableError(absl::StrCat("cannot listen on ", options.health_listen, " (--health_listen)"));
  }
  return absl::OkStatus();
}

void WmtyServer::StopListeners() {
  if (health_server_ != nullptr) {
    health_server_->Shutdown(absl::ToChronoTime(absl::Now()));
    health_server_->Wait();
    health_server_.reset();
  }
  if (metrics_http_ != nullptr) metrics_http_->Shutdown(absl::ZeroDuration());
  if (http_ != nullptr) http_->Shutdown(absl::ZeroDuration());
  // Without server_ the destructor does not run Shutdown (nothing to drain).
  if (server_ != nullptr) {
    server_->Shutdown();
    server_->Wait();
    server_.reset();
  }
}

void WmtyServer::Shutdown(absl::Duration grace) {
  if (shut_down_) return;
  shut_down_ = true;
  log::Info("draining", {{"grace_ms", std::to_string(absl::ToInt64Milliseconds(grace))}});
  const absl::Time deadline = absl::Now() + grace;
  // Only the readiness status: the global SetServingStatus(false) would take
  // kLivenessService down with it.
  SetHealth("", false);
  // Open watches would hold the gRPC drain for the whole grace period: end
  // them now (UNAVAILABLE), their clients resume from their last sequence.
  feed_->Shutdown();
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
  // Liveness answered until here (the health-only port), through the drain.
  if (health_server_ != nullptr) {
    health_server_->Shutdown(absl::ToChronoTime(absl::Now()));
    health_server_->Wait();
  }
  // Scrapes read the store: none may run once it closes.
  if (metrics_http_ != nullptr) metrics_http_->Shutdown(absl::ZeroDuration());
  // Stops a scheduled backup in progress; the store must outlive it.
  if (backups_ != nullptr) backups_->Close();
  retention_->Stop();
  // Runs every pending write's callback (some answer dropped HTTP requests,
  // through fhir_, which is still alive).
  store_->Close();
  log::Info("stopped", {{"last_sequence", std::to_string(store_->LastSequence())}});
}

void WmtyServer::SetHealth(const std::string& service, bool serving) {
  server_->GetHealthCheckService()->SetServingStatus(service, serving);
  if (health_server_ != nullptr) health_server_->GetHealthCheckService()->SetServingStatus(service, serving);
}

void WmtyServer::CollectMetrics(metrics::Writer& writer) {
  CollectStoreMetrics(writer);
  CollectServingMetrics(writer);
  writer.Gauge("wmty_build_info", "Always 1; the version is in the label.", 1, {{"version", WMTY_VERSION}});
}

void WmtyServer::CollectStoreMetrics(metrics::Writer& writer) {
  const storage::StoreStats stats = store_->Stats();
  writer.Gauge("wmty_commit_queue_depth", "Writes waiting for the commit thread.",
               static_cast<double>(stats.queued_changes));
  writer.Gauge("wmty_store_healthy",
               "1 while writes work; 0 after a failed write (disk full, I/O error) until "
               "the store recovers.",
               stats.writes_available ? 1 : 0);
  writer.CounterValue("wmty_rocksdb_block_cache_hits_total", "RocksDB block cache hits since start.",
                      static_cast<double>(stats.block_cache_hits));
  writer.CounterValue("wmty_rocksdb_block_cache_misses_total", "RocksDB block cache misses since start.",
                      static_cast<double>(stats.block_cache_misses));
  writer.Gauge("wmty_rocksdb_block_cache_bytes", "Bytes in the RocksDB block cache (--block_cache_mb).",
               static_cast<double>(stats.block_cache_bytes));
  writer.Gauge("wmty_rocksdb_block_cache_pinned_bytes",
               "Bytes of the block cache in use or pinned (index and filter tops, level-0 files): not evictable.",
               static_cast<double>(stats.block_cache_pinned_bytes));
  writer.Gauge("wmty_rocksdb_compaction_pending", "1 when RocksDB has at least one compaction pending.",
               stats.compaction_pending ? 1 : 0);
  writer.Gauge("wmty_rocksdb_pending_compaction_bytes", "RocksDB's estimate of bytes compaction must rewrite.",
               static_cast<double>(stats.pending_compaction_bytes));
  writer.Gauge("wmty_rocksdb_live_sst_bytes", "Bytes of the live SST files.",
               static_cast<double>(stats.live_sst_bytes));
  writer.CounterValue("wmty_rocksdb_write_stall_seconds_total",
                      "Time writes were delayed or stopped by RocksDB because flushes or compactions fell behind.",
                      static_cast<double>(stats.write_stall_micros) / 1e6);
  writer.Gauge("wmty_rocksdb_writes_delayed", "1 while RocksDB is slowing writes down.", stats.writes_delayed ? 1 : 0);
  writer.Gauge("wmty_rocksdb_l0_files", "Level-0 files of the column family with the most (writes slow at 20).",
               static_cast<double>(stats.l0_files));
  CollectChangeLogMetrics(writer, stats, retention_.get());
  writer.HistogramValue("wmty_wal_sync_duration_seconds",
                        "Time of each group commit's synced write (WAL append and fsync).",
                        store_->synced_write_seconds());
  std::error_code error;
  const std::filesystem::space_info space = std::filesystem::space(data_dir_, error);
  if (!error) {
    writer.Gauge("wmty_data_dir_available_bytes", "Bytes available to wmtyd on the data directory's file system.",
                 static_cast<double>(space.available));
  }
}

void WmtyServer::CollectServingMetrics(metrics::Writer& writer) {
  const domain::SummaryCacheStats summaries = core_->summary_cache_stats();
  writer.CounterValue("wmty_summary_cache_hits_total", "Patient summaries answered from memory since start.",
                      static_cast<double>(summaries.hits));
  writer.CounterValue("wmty_summary_cache_misses_total",
                      "Patient summaries assembled from the store since start (not cached, or written since).",
                      static_cast<double>(summaries.misses));
  writer.Gauge("wmty_summary_cache_bytes", "Bytes of assembled patient summaries kept in memory (--summary_cache_mb).",
               static_cast<double>(summaries.bytes));
  if (grpc_metrics_ != nullptr) {
    writer.Gauge("wmty_grpc_inflight_rpcs", "gRPC calls in progress.", grpc_metrics_->inflight());
  }
  if (feed_ != nullptr) CollectChangeFeedMetrics(writer);
  if (http_ != nullptr) {
    writer.Gauge("wmty_http_inflight_requests", "HTTP requests being handled.", http_->inflight_requests());
    writer.Gauge("wmty_http_open_connections", "Open HTTP connections.", http_->open_connections());
    writer.CounterValue("wmty_http_shed_total",
                        "HTTP requests and connections refused with 503 over --http_max_inflight or "
                        "--http_max_connections.",
                        static_cast<double>(http_->shed_total()));
  }
  if (backups_ != nullptr) {
    const storage::Backups::Health health = backups_->health();
    if (health.last_success.has_value()) {
      writer.Gauge("wmty_backup_last_success_timestamp_seconds", "Unix time of the newest good backup.",
                   absl::ToDoubleSeconds(*health.last_success - absl::UnixEpoch()));
    }
    writer.CounterValue("wmty_backup_failures_total", "Backups that failed since start.",
                        static_cast<double>(health.failures));
  }
}

void WmtyServer::CollectChangeFeedMetrics(metrics::Writer& writer) {
  const domain::ChangeFeedStats feed = feed_->stats();
  writer.Gauge("wmty_change_feed_watchers", "Open WatchChanges streams (--max_watchers).",
               static_cast<double>(feed.watchers));
  writer.CounterValue("wmty_change_feed_watches_total", "WatchChanges streams started since start.",
                      static_cast<double>(feed.watches_total));
  writer.CounterValue("wmty_change_feed_events_total", "Change events sent to watchers since start.",
                      static_cast<double>(feed.events_total));
  writer.CounterValue("wmty_change_feed_heartbeats_total", "Heartbeats sent to watchers since start.",
                      static_cast<double>(feed.heartbeats_total));
  writer.CounterValue("wmty_change_feed_slow_watchers_total",
                      "Watches ended RESOURCE_EXHAUSTED because the client did not read (--watch_stall_timeout).",
                      static_cast<double>(feed.slow_ended_total));
  writer.CounterValue("wmty_change_feed_trimmed_total",
                      "Watches refused or ended OUT_OF_RANGE: they asked for changes the log no longer holds.",
                      static_cast<double>(feed.trimmed_ended_total));
}

WmtyServer::~WmtyServer() {
  if (server_ != nullptr) Shutdown(absl::ZeroDuration());
}

}  // namespace wmty::server
