// What wmtyd tells operators about itself: request metrics for both faces
// and the /metrics endpoint (Prometheus text format, common/metrics.h).
//
//   GrpcMetrics      a server interceptor: calls, status codes, latency and
//                    calls in progress per method, for every service.
//   HttpMetrics      an http::Handler in front of the others: requests,
//                    status codes and latency per FHIR interaction.
//   MetricsEndpoint  the handler of the metrics listener (--metrics_listen).
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
#include "http/http_server.h"

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

class GrpcMetrics : public grpc::experimental::ServerInterceptorFactoryInterface {
 public:
  explicit GrpcMetrics(metrics::Registry* registry);
  grpc::experimental::Interceptor* CreateServerInterceptor(grpc::experimental::ServerRpcInfo* info) override;
  int inflight() const { return inflight_.load(); }

 private:
  class Interceptor;
  metrics::Family<metrics::Counter>* requests_;
  metrics::Family<metrics::Histogram>* durations_;
  std::atomic<int> inflight_{0};
};

class HttpMetrics : public http::Handler {
 public:
  HttpMetrics(metrics::Registry* registry, http::Handler* next);
  void Handle(http::Request request, http::Respond respond) override;
  http::Response MakeError(http::Status status, const std::string& message, unsigned version,
                           bool keep_alive) override;

 private:
  metrics::Family<metrics::Counter>* requests_;
  metrics::Family<metrics::Histogram>* durations_;
  http::Handler* next_;
};

// GET /metrics: the registry rendered; anything else 404 (plain text).
class MetricsEndpoint : public http::Handler {
 public:
  explicit MetricsEndpoint(metrics::Registry* registry) : registry_(registry) {}
  void Handle(http::Request request, http::Respond respond) override;
  http::Response MakeError(http::Status status, const std::string& message, unsigned version,
                           bool keep_alive) override;

 private:
  metrics::Registry* registry_;
};

}  // namespace wmty::server

#endif  // WMTY_SERVER_OBSERVABILITY_H_
