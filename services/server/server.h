// WmtyServer: one running wmty service. Owns the store, the domain core, the
// gRPC server (with grpc.health.v1 and, unless disabled, reflection) and the
// HTTP server carrying the FHIR R4 face.
//
// Lifecycle: Start() opens the store and listens; Shutdown() reports
// NOT_SERVING, ends change-feed watches (UNAVAILABLE: clients resume
// elsewhere or later) and drains HTTP and gRPC at the same time (both stop taking new
// requests at once and let those in progress finish within the grace period;
// gRPC cancels the rest), then commits queued writes and closes the store
// cleanly. One grace period covers both drains.
//
// Thread safety: Shutdown() may be called from any thread, once.
#ifndef WMTY_SERVER_SERVER_H_
#define WMTY_SERVER_SERVER_H_

#include <functional>
#include <memory>
#include <string>

#include <grpcpp/generic/async_generic_service.h>
#include <grpcpp/grpcpp.h>

#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "auth/token_verifier.h"
#include "common/metrics.h"
#include "domain/change_feed.h"
#include "domain/change_log_retention.h"
#include "domain/patient_records.h"
#include "domain/subscription_events.h"
#include "domain/subscriptions.h"
#include "fhir/smart_configuration.h"
#include "http/http_server.h"
#include "push/engine.h"
#include "server/observability.h"
#include "storage/backup.h"
#include "storage/store.h"
#include "web/static_site.h"

namespace wmty::server {

struct ServerOptions {
  std::string data_dir = "./data";
  // host:port; port 0 picks a free port (see grpc_port()).
  std::string grpc_listen = "127.0.0.1:50051";
  int max_message_bytes = 4 * 1024 * 1024;
  bool reflection = true;
  size_t block_cache_bytes = size_t{256} << 20;
  // All memtables together (see storage::StoreOptions).
  size_t memtable_budget_bytes = size_t{128} << 20;
  // Assembled patient summaries kept in memory (domain::PatientRecordsOptions).
  size_t summary_cache_bytes = size_t{64} << 20;
  // --subscription_allow_private_endpoints: Subscription endpoints may be
  // plain http:// and loopback or private addresses (tests, development).
  bool subscription_allow_private_endpoints = false;
  // FHIR R4 REST face (HTTP/1.1), base path /fhir. host:port; port 0 picks a
  // free port (see http_port()); empty: no HTTP server.
  std::string http_listen = "127.0.0.1:8080";
  size_t http_max_body_bytes = 1024 * 1024;
  int http_io_threads = 2;
  // Absolute FHIR base URL for links (e.g. behind a proxy); empty: built from
  // each request's Host header.
  std::string fhir_base_url;
  // Deadline of each FHIR request.
  absl::Duration fhir_request_timeout = absl::Seconds(30);
  // Drop (not stored, warned about) rather than refuse elements FHIR R4 does
  // not define (--fhir_unknown_elements).
  bool fhir_drop_unknown_elements = false;
  // The bedside app (clients/bedside) at /bedside/ on the HTTP listener:
  // the files compiled into the binary, or, with bedside_dir, the files in
  // that directory read on every request (development).
  bool bedside = true;
  std::string bedside_dir;
  // Overload limits (see docs/operations.md); 0 disables one. Past them
  // callers are refused at once (gRPC RESOURCE_EXHAUSTED, HTTP 503 with
  // Retry-After) instead of queueing until their deadline.
  // wmty.v1 calls in progress at once.
  int max_inflight_rpcs = 1024;
  // Open WatchChanges streams (not counted in max_inflight_rpcs); 0: no limit.
  size_t max_watchers = 10000;
  // A watcher whose client has not read for this long is ended
  // (RESOURCE_EXHAUSTED with the sequence to resume after).
  absl::Duration watch_stall_timeout = absl::Seconds(60);
  // Writes waiting for the commit thread (a backstop: the two in-flight
  // limits normally keep the queue far shorter).
  int max_queued_changes = 10000;
  // Open HTTP connections, and HTTP requests being handled at once.
  int http_max_connections = 512;
  int http_max_inflight = 256;
  // Reading one whole HTTP request (and waiting idle for the next on a kept-
  // alive connection) must finish within this, else the connection is closed.
  absl::Duration http_read_timeout = absl::Seconds(30);
  // TLS (PEM contents, not paths) for both listeners, gRPC and HTTP
  // (--tls_cert_file, --tls_key_file, --tls_client_ca_file). Empty cert:
  // plaintext, which Start() refuses off loopback unless allow_plaintext is
  // set. With a client CA, clients of either listener must present a
  // certificate it signed (mTLS).
  std::string tls_cert_pem;
  std::string tls_key_pem;
  std::string tls_client_ca_pem;
  // Accept plaintext listeners off loopback (e.g. behind a TLS-terminating
  // proxy or mesh).
  bool allow_plaintext = false;
  // Checks bearer tokens on both faces. Null: authentication disabled, which
  // Start() refuses unless every listener is on loopback.
  std::shared_ptr<const auth::TokenVerifier> verifier;
  // The authorization server SMART apps sign in with, published at
  // /fhir/.well-known/smart-configuration and in the CapabilityStatement.
  fhir::SmartConfiguration smart;
  // Test hook, not a flag: adjusts the store's options before it opens (e.g.
  // puts it on a fault-injecting file system, storage::StoreOptions::env), so
  // that the server names no storage engine type. Null: none.
  std::function<void(storage::StoreOptions*)> customize_store;
  // Prometheus metrics (GET /metrics, plaintext, no authentication: no PHI)
  // on their own listener, host:port; port 0 picks a free port (see
  // metrics_port()); empty: none.
  std::string metrics_listen;
  // A second, always plaintext gRPC listener serving only grpc.health.v1
  // (the same statuses as the main port), host:port; empty: none. For
  // Kubernetes' built-in gRPC probes, which cannot speak TLS, when the main
  // port does. No authentication, no patient data.
  std::string health_listen;
  // One JSON log line per request (correlation id, method or interaction,
  // code, duration; server/observability.h). Server errors are logged either way.
  bool access_log = false;
  // Online backups (wmty.admin.v1.AdminService, docs/operations.md). Empty
  // dir: backups disabled (the admin RPCs fail with FAILED_PRECONDITION).
  std::string backup_dir;
  // Newest backups kept; older ones are deleted after each backup.
  int backup_keep = 7;
  // A backup this often, on the backup thread; zero: only on request.
  absl::Duration backup_interval = absl::ZeroDuration();
  // Change-log retention (domain::ChangeLogRetentionOptions); 0 / zero
  // disables a limit.
  uint64_t change_log_retention_changes = 10'000'000;
  absl::Duration change_log_retention_age = absl::Hours(24 * 30);
  absl::Duration change_log_trim_interval = absl::Minutes(1);
  // FHIR Subscription delivery (docs/operations.md, "Subscription delivery");
  // the endpoint check is subscription_allow_private_endpoints', above.
  // Retry backoff: full jitter up to initial * 2^(failures-1), capped.
  absl::Duration subscription_retry_initial_backoff = absl::Seconds(1);
  absl::Duration subscription_retry_max_backoff = absl::Minutes(5);
  // Consecutive failed deliveries before a subscription's status is error.
  int subscription_failure_budget = 5;
  // Per delivery attempt, when the Subscription sets no timeout.
  absl::Duration subscription_default_timeout = absl::Seconds(10);
  // Shortest heartbeatPeriod honoured.
  absl::Duration subscription_min_heartbeat = absl::Seconds(1);
  // Threads that run delivery lanes (the HTTP exchanges are asynchronous).
  int subscription_delivery_workers = 2;
  // Client certificate (PEM file paths) presented to receivers that ask for one.
  std::string subscription_client_cert_file;
  std::string subscription_client_key_file;
  // Acknowledged events kept per subscription for $events.
  int subscription_kept_events = 1000;
};

// grpc.health.v1 service names. "" (the server as a whole) is SERVING once
// the database is open and the listeners are up, and NOT_SERVING from the
// start of Shutdown (readiness). kLivenessService stays SERVING for as long
// as the process answers at all, draining included (liveness: a drain is not
// a reason to restart the pod).
inline constexpr char kLivenessService[] = "wmty.liveness";

class WmtyServer {
 public:
  // Checks the options, opens the store and starts the listeners; if a step
  // fails, what the earlier ones started is stopped and closed again.
  // Errors: FAILED_PRECONDITION (authentication off, or plaintext, off
  // loopback), INVALID_ARGUMENT (half a TLS configuration, a bad
  // bedside_dir), UNAVAILABLE (the store cannot be opened or an address
  // cannot be bound), DATA_LOSS (the store is corrupt).
  static absl::StatusOr<std::unique_ptr<WmtyServer>> Start(const ServerOptions& options);
  ~WmtyServer();

  int grpc_port() const { return grpc_port_; }
  // 0 when HTTP is off.
  int http_port() const { return http_ != nullptr ? http_->port() : 0; }
  // 0 without health_listen.
  int health_port() const { return health_port_; }
  // 0 when metrics are off.
  int metrics_port() const { return metrics_http_ != nullptr ? metrics_http_->port() : 0; }
  void Shutdown(absl::Duration grace);

 private:
  WmtyServer() = default;
  // The steps of Start, in order. Each fills its members; on an error Start
  // stops what the earlier steps started (StopListeners) and returns it.
  absl::Status OpenStore(const ServerOptions& options);  // store, core, backups
  absl::Status StartGrpc(const ServerOptions& options);
  absl::Status StartHttp(const ServerOptions& options, std::unique_ptr<web::StaticSite> bedside_site);
  absl::Status StartObservability(const ServerOptions& options);  // collectors, metrics, health
  absl::Status StartHealthListener(const ServerOptions& options);
  // FHIR Subscription notifications (push::Engine); after HTTP, whose port
  // the notifications' references name when fhir_base_url is not set.
  absl::Status StartPush(const ServerOptions& options);
  // Stops the listeners a failed Start had started, newest first, so that a
  // half-built server serves nothing and the destructor has nothing to drain.
  void StopListeners();
  // Scrape-time values for /metrics (store, listeners, backups).
  void CollectMetrics(metrics::Writer& writer);
  void CollectStoreMetrics(metrics::Writer& writer);    // store, RocksDB, disk space
  void CollectServingMetrics(metrics::Writer& writer);  // summary cache, listeners, backups
  void CollectChangeFeedMetrics(metrics::Writer& writer);

  // Outlives everything that records into it.
  metrics::Registry registry_;
  std::string data_dir_;
  std::unique_ptr<storage::Store> store_;
  // Closed before the store (declared after it); null without --backup_dir.
  std::unique_ptr<storage::Backups> backups_;
  std::unique_ptr<domain::PatientRecords> core_;
  // Made with the store; durable consumers add their floors before Start()
  // ends, which starts it; stopped before the store closes.
  std::unique_ptr<domain::ChangeLogRetention> retention_;
  // Subscriptions and their event log (push/ state), for the FHIR face and
  // the push engine.
  std::unique_ptr<domain::Subscriptions> subscriptions_;
  std::unique_ptr<domain::SubscriptionEvents> subscription_events_;
  // Stopped before the store closes (Shutdown; and destroyed before it).
  std::unique_ptr<push::Engine> push_;
  // The change feed's thread and watchers; shut down (watches ended
  // UNAVAILABLE) at the start of the drain, destroyed before the store.
  std::unique_ptr<domain::ChangeFeed> feed_;
  std::unique_ptr<grpc::Service> service_;
  std::unique_ptr<grpc::Service> change_feed_service_;
  std::unique_ptr<grpc::Service> admin_service_;
  std::unique_ptr<grpc::Server> server_;
  // Answers UNIMPLEMENTED to anything but health; gRPC needs one callback
  // service to run a server at all. Outlives health_server_.
  std::unique_ptr<grpc::CallbackGenericService> health_unimplemented_;
  // grpc.health.v1 only (ServerOptions::health_listen); may be null.
  std::unique_ptr<grpc::Server> health_server_;
  int health_port_ = 0;
  // Sets a status on the main server and the health-only one.
  void SetHealth(const std::string& service, bool serving);
  // Owned by server_ (the builder takes it); counts calls in progress.
  GrpcMetrics* grpc_metrics_ = nullptr;
  // Destroyed before the core and the store (declared after them); the FHIR
  // handler outlives the HTTP server that calls it.
  std::unique_ptr<http::Handler> fhir_;
  // /fhir/.well-known/smart-configuration in front of fhir_. Destroyed
  // before fhir_.
  std::unique_ptr<http::Handler> smart_;
  // The bedside app in front of smart_; null without it. Destroyed before
  // smart_.
  std::unique_ptr<http::Handler> web_;
  // In front of web_ (or smart_ without the bedside app): what the HTTP
  // server calls.
  std::unique_ptr<http::Handler> http_metrics_;
  std::unique_ptr<http::HttpServer> http_;
  std::unique_ptr<http::Handler> metrics_endpoint_;
  std::unique_ptr<http::HttpServer> metrics_http_;
  int grpc_port_ = 0;
  bool shut_down_ = false;
};

}  // namespace wmty::server

#endif  // WMTY_SERVER_SERVER_H_
