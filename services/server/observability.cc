// Request metrics, correlation ids and the access log of both faces, the
// /metrics endpoint and the process gauges (observability.h).
#include "server/observability.h"

#include <sys/resource.h>
#include <unistd.h>

#include <cmath>
#include <filesystem>
#include <fstream>
#include <optional>
#include <sstream>
#include <utility>
#include <vector>

#include <grpcpp/grpcpp.h>

#include "absl/container/flat_hash_set.h"
#include "absl/random/random.h"
#include "absl/status/status.h"
#include "absl/strings/ascii.h"
#include "absl/strings/escaping.h"
#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_split.h"
#include "absl/time/clock.h"
#include "common/log.h"
#include "domain/fhir_types.h"
#include "google/protobuf/descriptor.h"

namespace wmty::server {
namespace {

namespace beast_http = boost::beast::http;
using grpc::experimental::InterceptionHookPoints;

// "/pkg.Service/Method" of every method of the services wmtyd registers.
const absl::flat_hash_set<std::string>& KnownGrpcPaths() {
  static const auto* paths = [] {
    auto* set = new absl::flat_hash_set<std::string>{"/grpc.health.v1.Health/Check", "/grpc.health.v1.Health/Watch",
                                                     "/grpc.reflection.v1alpha.ServerReflection/ServerReflectionInfo"};
    for (const char* service :
         {"wmty.v1.WhatMattersService", "wmty.v1.ChangeFeedService", "wmty.admin.v1.AdminService"}) {
      const auto* descriptor = google::protobuf::DescriptorPool::generated_pool()->FindServiceByName(service);
      if (descriptor == nullptr) continue;
      for (int i = 0; i < descriptor->method_count(); ++i) {
        set->insert(absl::StrCat("/", service, "/", descriptor->method(i)->name()));
      }
    }
    return set;
  }();
  return *paths;
}

bool IsServedFhirType(absl::string_view type) {
  return domain::IsStoredType(type) || type == "Provenance" || type == "AuditEvent" || type == "CodeSystem";
}

bool IsLowerHex(absl::string_view s) {
  for (char c : s) {
    if (!absl::ascii_isdigit(static_cast<unsigned char>(c)) && (c < 'a' || c > 'f')) return false;
  }
  return true;
}

bool IsServerError(absl::StatusCode code) {
  return code == absl::StatusCode::kInternal || code == absl::StatusCode::kUnavailable ||
         code == absl::StatusCode::kDataLoss || code == absl::StatusCode::kUnknown;
}

std::optional<std::string> ReadFile(const char* path) {
  std::ifstream in(path);
  if (!in) return std::nullopt;
  std::ostringstream buf;
  buf << in.rdbuf();
  return buf.str();
}

// The fields of /proc/self/stat after "(comm)" (which may hold spaces and
// parentheses): fields[0] is the state, field 3 of proc(5), so proc(5)'s
// field n is fields[n - 3].
std::vector<std::string> ProcSelfStatFields() {
  auto stat = ReadFile("/proc/self/stat");
  if (!stat.has_value()) return {};
  const size_t paren = stat->rfind(')');
  if (paren == std::string::npos) return {};
  return absl::StrSplit(absl::string_view(*stat).substr(paren + 1), ' ', absl::SkipWhitespace());
}

std::optional<double> StatField(const std::vector<std::string>& fields, size_t n) {
  double v = 0;
  if (n < 3 || n - 3 >= fields.size() || !absl::SimpleAtod(fields[n - 3], &v)) return std::nullopt;
  return v;
}

// Boot time in Unix seconds ("btime" of /proc/stat).
std::optional<double> BootTimeSeconds() {
  auto stat = ReadFile("/proc/stat");
  if (!stat.has_value()) return std::nullopt;
  for (absl::string_view line : absl::StrSplit(*stat, '\n')) {
    double v = 0;
    if (absl::ConsumePrefix(&line, "btime ") && absl::SimpleAtod(line, &v)) return v;
  }
  return std::nullopt;
}

std::optional<double> OpenFds() {
  std::error_code ec;
  double n = 0;
  for (std::filesystem::directory_iterator it("/proc/self/fd", ec), end; !ec && it != end; it.increment(ec)) ++n;
  if (ec) return std::nullopt;
  return n - 1;  // less the descriptor the listing itself holds open
}

}  // namespace

void CollectProcessMetrics(metrics::Writer& writer) {
  const std::vector<std::string> stat = ProcSelfStatFields();
  const double ticks = static_cast<double>(sysconf(_SC_CLK_TCK));
  const double page = static_cast<double>(sysconf(_SC_PAGESIZE));
  // proc(5): 14 utime, 15 stime, 22 starttime (clock ticks); 23 vsize (bytes); 24 rss (pages).
  if (auto user = StatField(stat, 14), sys = StatField(stat, 15); user && sys && ticks > 0) {
    writer.CounterValue("process_cpu_seconds_total", "Total user and system CPU time spent in seconds.",
                        (*user + *sys) / ticks);
  }
  if (auto rss = StatField(stat, 24); rss && page > 0) {
    writer.Gauge("process_resident_memory_bytes", "Resident memory size in bytes.", *rss * page);
  }
  if (auto vsize = StatField(stat, 23); vsize) {
    writer.Gauge("process_virtual_memory_bytes", "Virtual memory size in bytes.", *vsize);
  }
  if (auto fds = OpenFds(); fds) writer.Gauge("process_open_fds", "Number of open file descriptors.", *fds);
  if (rlimit limit{}; getrlimit(RLIMIT_NOFILE, &limit) == 0) {
    writer.Gauge("process_max_fds", "Maximum number of open file descriptors.", static_cast<double>(limit.rlim_cur));
  }
  if (auto start = StatField(stat, 22), boot = BootTimeSeconds(); start && boot && ticks > 0) {
    // Whole seconds: the text format prints 9 significant digits, which would
    // round a fractional Unix time to tens of seconds.
    writer.Gauge("process_start_time_seconds", "Start time of the process since unix epoch in seconds.",
                 std::floor(*boot + *start / ticks));
  }
}

void CollectChangeLogMetrics(metrics::Writer& writer, const storage::StoreStats& store,
                             const domain::ChangeLogRetention* retention) {
  writer.Gauge("wmty_change_log_oldest_sequence",
               "First sequence the change log holds: older WatchChanges resumes get OUT_OF_RANGE.",
               static_cast<double>(store.oldest_change_sequence));
  writer.Gauge("wmty_change_log_head_sequence", "Sequence of the last committed change.",
               static_cast<double>(store.last_change_sequence));
  const uint64_t entries = store.last_change_sequence >= store.oldest_change_sequence
                               ? store.last_change_sequence - store.oldest_change_sequence + 1
                               : 0;
  writer.Gauge("wmty_change_log_entries", "Change-log entries held (--change_log_retention_changes bounds it).",
               static_cast<double>(entries));
  if (retention == nullptr) return;
  const domain::ChangeLogRetentionStats stats = retention->stats();
  writer.CounterValue("wmty_change_log_trims_total", "Retention passes that trimmed change-log entries, since start.",
                      static_cast<double>(stats.trims));
  writer.CounterValue("wmty_change_log_trim_failures_total", "Retention passes that failed, since start.",
                      static_cast<double>(stats.failures));
  if (stats.last_trim.has_value()) {
    writer.Gauge("wmty_change_log_last_trim_timestamp_seconds", "Unix time of the last trim that removed entries.",
                 absl::ToDoubleSeconds(*stats.last_trim - absl::UnixEpoch()));
  }
  if (stats.oldest_entry_time.has_value()) {
    writer.Gauge("wmty_change_log_oldest_entry_timestamp_seconds",
                 "Unix time of the oldest change-log entry held (as of the last retention pass).",
                 absl::ToDoubleSeconds(*stats.oldest_entry_time - absl::UnixEpoch()));
  }
  writer.Gauge("wmty_change_log_held_by_floor_entries",
               "Entries retention would trim but keeps for a durable consumer that has not read them "
               "(the subscription matcher); growing: that consumer is stuck.",
               static_cast<double>(stats.held_by_floor));
}

std::string CorrelationId(absl::string_view traceparent) {
  // version "-" trace-id "-" parent-id "-" flags; an all-zero trace id is invalid.
  if (traceparent.size() >= 55 && traceparent[2] == '-' && traceparent[35] == '-' && traceparent[52] == '-') {
    const absl::string_view trace_id = traceparent.substr(3, 32);
    if (IsLowerHex(traceparent.substr(0, 2)) && traceparent.substr(0, 2) != "ff" && IsLowerHex(trace_id) &&
        trace_id != std::string(32, '0')) {
      return std::string(trace_id);
    }
  }
  thread_local absl::BitGen bitgen;
  std::string bytes(16, '\0');
  for (char& c : bytes) c = static_cast<char>(absl::Uniform<unsigned>(bitgen, 0, 256));
  return absl::BytesToHexString(bytes);
}

std::string GrpcMethodLabel(absl::string_view path) {
  if (path.empty() || !KnownGrpcPaths().contains(path)) return "other";
  return std::string(path.substr(path.rfind('/') + 1));
}

HttpInteraction ClassifyHttp(absl::string_view method, absl::string_view target) {
  const absl::string_view path = target.substr(0, target.find('?'));
  if (!absl::StartsWith(path, "/fhir/")) {
    if (path == "/" || path == "/bedside" || absl::StartsWith(path, "/bedside/")) return {"static", ""};
    return {"other", ""};
  }
  std::vector<absl::string_view> parts = absl::StrSplit(path.substr(6), '/');
  if (!parts.empty() && parts.back().empty()) parts.pop_back();
  if (parts.empty()) return {"other", ""};
  if (parts.size() == 1 && parts[0] == "metadata") return {"metadata", ""};
  const std::string resource = IsServedFhirType(parts[0]) ? std::string(parts[0]) : "other";
  const bool get = method == "GET" || method == "HEAD";
  if (parts.size() == 1) {
    if (get) return {"search", resource};
    if (method == "POST") return {"create", resource};
  } else if (parts.size() == 2) {
    if (parts[1] == "_search" && method == "POST") return {"search", resource};
    if (parts[1] == "_history" && get) return {"history", resource};
    if (get) return {"read", resource};
    if (method == "PUT") return {"update", resource};
    if (method == "DELETE") return {"delete", resource};
  } else if (parts.size() == 3) {
    if (parts[2] == "_history" && get) return {"history", resource};
    if (parts[2] == "$everything" && get) return {"everything", resource};
  } else if (parts.size() == 4 && parts[2] == "_history" && get) {
    return {"vread", resource};
  }
  return {"other", resource};
}

class GrpcMetrics::Interceptor : public grpc::experimental::Interceptor {
 public:
  Interceptor(GrpcMetrics* owner, absl::string_view path)
      : owner_(owner), method_(GrpcMethodLabel(path)), start_(absl::Now()) {
    owner_->inflight_.fetch_add(1);
  }
  ~Interceptor() override {
    // A call cancelled before it sent a status (client gone, deadline).
    if (!recorded_) Record(absl::StatusCode::kCancelled);
  }

  void Intercept(grpc::experimental::InterceptorBatchMethods* methods) override {
    if (methods->QueryInterceptionHookPoint(InterceptionHookPoints::POST_RECV_INITIAL_METADATA)) {
      absl::string_view traceparent;
      if (auto* received = methods->GetRecvInitialMetadata(); received != nullptr) {
        auto it = received->find("traceparent");
        if (it != received->end()) traceparent = absl::string_view(it->second.data(), it->second.size());
      }
      correlation_id_ = CorrelationId(traceparent);
    }
    if (methods->QueryInterceptionHookPoint(InterceptionHookPoints::PRE_SEND_INITIAL_METADATA)) {
      if (auto* sent = methods->GetSendInitialMetadata(); sent != nullptr) {
        sent->emplace("x-correlation-id", CorrelationIdOrNew());
      }
    }
    if (methods->QueryInterceptionHookPoint(InterceptionHookPoints::PRE_SEND_STATUS)) {
      const grpc::Status status = methods->GetSendStatus();
      Record(static_cast<absl::StatusCode>(status.error_code()));
    }
    methods->Proceed();
  }

 private:
  // Once per call, before its status goes out (so a client that has its
  // answer never sees the call still counted as in progress).
  void Record(absl::StatusCode status_code) {
    recorded_ = true;
    owner_->inflight_.fetch_sub(1);
    const absl::Duration took = absl::Now() - start_;
    const std::string code = absl::StatusCodeToString(status_code);
    owner_->requests_->Get({method_, code}).Increment();
    owner_->durations_->Get({method_}).Observe(absl::ToDoubleSeconds(took));
    if (owner_->access_log_ || IsServerError(status_code)) {
      log::Write(IsServerError(status_code) ? log::Level::kWarning : log::Level::kInfo, "grpc request",
                 {{"request_id", CorrelationIdOrNew()},
                  {"method", method_},
                  {"code", code},
                  {"ms", absl::StrFormat("%.3f", absl::ToDoubleMilliseconds(took))}});
    }
  }

  const std::string& CorrelationIdOrNew() {
    if (correlation_id_.empty()) correlation_id_ = CorrelationId("");
    return correlation_id_;
  }

  GrpcMetrics* owner_;
  const std::string method_;
  const absl::Time start_;
  std::string correlation_id_;
  bool recorded_ = false;
};

GrpcMetrics::GrpcMetrics(metrics::Registry* registry, bool access_log)
    : requests_(&registry->AddCounter("wmty_grpc_requests_total", "gRPC calls finished, by method and status code.",
                                      {"method", "code"})),
      durations_(&registry->AddHistogram("wmty_grpc_request_duration_seconds",
                                         "gRPC call latency from arrival to status, by method.", {"method"})),
      access_log_(access_log) {}

grpc::experimental::Interceptor* GrpcMetrics::CreateServerInterceptor(grpc::experimental::ServerRpcInfo* info) {
  return new Interceptor(this, info->method() != nullptr ? info->method() : "");
}

HttpMetrics::HttpMetrics(metrics::Registry* registry, http::Handler* next, bool access_log)
    : requests_(&registry->AddCounter("wmty_http_requests_total",
                                      "HTTP requests answered, by FHIR interaction, resource type and status.",
                                      {"interaction", "resource", "code"})),
      durations_(&registry->AddHistogram("wmty_http_request_duration_seconds",
                                         "HTTP request latency from a read request to its response, by interaction.",
                                         {"interaction"})),
      next_(next),
      access_log_(access_log) {}

void HttpMetrics::Handle(http::Request request, http::Respond respond) {
  HttpInteraction kind = ClassifyHttp(absl::string_view(request.method_string().data(), request.method_string().size()),
                                      absl::string_view(request.target().data(), request.target().size()));
  const auto traceparent = request.find("traceparent");
  std::string id = CorrelationId(traceparent == request.end()
                                     ? absl::string_view()
                                     : absl::string_view(traceparent->value().data(), traceparent->value().size()));
  next_->Handle(std::move(request), [this, kind = std::move(kind), id = std::move(id), start = absl::Now(),
                                     respond = std::move(respond)](http::Response response) mutable {
    const absl::Duration took = absl::Now() - start;
    const int code = response.result_int();
    requests_->Get({kind.interaction, kind.resource, std::to_string(code)}).Increment();
    durations_->Get({kind.interaction}).Observe(absl::ToDoubleSeconds(took));
    if (access_log_ || code >= 500) {
      log::Write(code >= 500 ? log::Level::kWarning : log::Level::kInfo, "http request",
                 {{"request_id", id},
                  {"interaction", kind.interaction},
                  {"resource", kind.resource},
                  {"code", std::to_string(code)},
                  {"ms", absl::StrFormat("%.3f", absl::ToDoubleMilliseconds(took))}});
    }
    response.set("X-Correlation-Id", id);
    respond(std::move(response));
  });
}

http::Response HttpMetrics::MakeError(http::Status status, const std::string& message, unsigned version,
                                      bool keep_alive) {
  return next_->MakeError(status, message, version, keep_alive);
}

void MetricsEndpoint::Handle(http::Request request, http::Respond respond) {
  const absl::string_view target(request.target().data(), request.target().size());
  const absl::string_view path = target.substr(0, target.find('?'));
  const bool get = request.method() == beast_http::verb::get || request.method() == beast_http::verb::head;
  if (path != "/metrics" || !get) {
    respond(MakeError(path != "/metrics" ? http::Status::not_found : http::Status::method_not_allowed,
                      path != "/metrics" ? "Not found: metrics are at /metrics" : "Use GET", request.version(),
                      request.keep_alive()));
    return;
  }
  http::Response response(http::Status::ok, request.version());
  response.set(beast_http::field::content_type, "text/plain; version=0.0.4; charset=utf-8");
  response.set(beast_http::field::cache_control, "no-store");
  response.keep_alive(request.keep_alive());
  std::string body = registry_->Render();
  if (request.method() == beast_http::verb::head) {
    response.content_length(body.size());
  } else {
    response.body() = std::move(body);
    response.prepare_payload();
  }
  respond(std::move(response));
}

http::Response MetricsEndpoint::MakeError(http::Status status, const std::string& message, unsigned version,
                                          bool keep_alive) {
  http::Response response(status, version);
  response.set(beast_http::field::content_type, "text/plain; charset=utf-8");
  response.keep_alive(keep_alive);
  response.body() = message + "\n";
  response.prepare_payload();
  return response;
}

}  // namespace wmty::server
