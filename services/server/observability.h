// What wmtyd tells operators about itself: request metrics for both faces
// and the /metrics endpoint (Prometheus text format, common/metrics.h).
//
//   GrpcMetrics      a server interceptor: calls, status codes, latency and
//                    calls in progress per method, for every service.
//   HttpMetrics      an http::Handler in front of the others: requests,
//                    status codes and latency per FHIR interaction.
//   MetricsEndpoint  the handler of the metrics listener (--metrics_listen).
//   CollectProcessMetrics  the standard Prometheus process_* gauges and
//                    counters, read from /proc at scrape time.
//
// Each request gets a correlation id: the trace id of a W3C `traceparent`
// header (HTTP) or metadata entry (gRPC) when the caller sent a valid one,
// else a random one. It is returned as `X-Correlation-Id` (HTTP response
// header, gRPC initial metadata `x-correlation-id`) and is the `request_id`
// of the access log line (one JSON line per request when `access_log`,
// always for server errors: HTTP 5xx, gRPC INTERNAL / UNAVAILABLE /
// DATA_LOSS / UNKNOWN), which holds method or interaction, resource type,
// code and duration, never ids or content. (FHIR's `X-Request-Id` is the
// caller's idempotency key, a different thing, and is never logged.)
//
// Labels come only from fixed sets (method names of our services,
// interaction kinds, resource types, status codes), never from ids or
// anything a client wrote. Thread safety: all of them may be called from any
// thread; they must outlive the servers that call them.
#ifndef WMTY_SERVER_OBSERVABILITY_H_
#define WMTY_SERVER_OBSERVABILITY_H_

#include <atomic>
#include <memory>
#include <string>

#include <grpcpp/support/server_interceptor.h>

#include "absl/container/flat_hash_map.h"
#include "absl/strings/string_view.h"
#include "common/metrics.h"
#include "domain/change_log_retention.h"
#include "http/http_server.h"
#include "storage/store.h"

namespace wmty::server {

// The method label of a gRPC call path ("/wmty.v1.WhatMattersService/GetGoal"
// -> "GetGoal") for the services wmtyd serves; "other" for anything else.
std::string GrpcMethodLabel(absl::string_view path);

struct HttpInteraction {
  std::string interaction;  // read vread create update delete search history everything metadata static other
  std::string resource;     // a FHIR type we serve, "other", or "" (not FHIR)
};
// Classifies a request by method and target (query ignored).
HttpInteraction ClassifyHttp(absl::string_view method, absl::string_view target);

// Writes the standard Prometheus process metrics of this process (the names
// every Prometheus client library uses, so stock dashboards work):
// process_cpu_seconds_total, process_resident_memory_bytes,
// process_virtual_memory_bytes, process_open_fds, process_max_fds and
// process_start_time_seconds. Read from /proc/self and getrlimit at each
// call; a value that cannot be read is left out (never reported as 0).
void CollectProcessMetrics(metrics::Writer& writer);

// The change log's extent (from the store) and retention's work
// (docs/operations.md, "Change-log retention"); `retention` may be null.
void CollectChangeLogMetrics(metrics::Writer& writer, const storage::StoreStats& store,
                             const domain::ChangeLogRetention* retention);

// The trace id (32 lower-case hex digits) of a valid W3C traceparent value,
// else a new random 32-hex-digit id.
std::string CorrelationId(absl::string_view traceparent);

class GrpcMetrics : public grpc::experimental::ServerInterceptorFactoryInterface {
 public:
  GrpcMetrics(metrics::Registry* registry, bool access_log);
  grpc::experimental::Interceptor* CreateServerInterceptor(grpc::experimental::ServerRpcInfo* info) override;
  int inflight() const { return inflight_.load(); }

 private:
  class Interceptor;
  metrics::Family<metrics::Counter>* requests_;
  metrics::Family<metrics::Histogram>* durations_;
  const bool access_log_;
  std::atomic<int> inflight_{0};
};

class HttpMetrics : public http::Handler {
 public:
  HttpMetrics(metrics::Registry* registry, http::Handler* next, bool access_log);
  void Handle(http::Request request, http::Respond respond) override;
  http::Response MakeError(http::Status status, const std::string& message, unsigned version, bool keep_alive) override;

 private:
  metrics::Family<metrics::Counter>* requests_;
  metrics::Family<metrics::Histogram>* durations_;
  http::Handler* next_;
  const bool access_log_;
};

// GET /metrics: the registry rendered; anything else 404 (plain text).
class MetricsEndpoint : public http::Handler {
 public:
  explicit MetricsEndpoint(metrics::Registry* registry) : registry_(registry) {}
  void Handle(http::Request request, http::Respond respond) override;
  http::Response MakeError(http::Status status, const std::string& message, unsigned version, bool keep_alive) override;

 private:
  metrics::Registry* registry_;
};

}  // namespace wmty::server

#endif  // WMTY_SERVER_OBSERVABILITY_H_
