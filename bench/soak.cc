// wmty_soak: a long mixed workload against one wmtyd, to see that it stays
// correct (no errors) and stable (latency, memory) over time.
//
//   wmty_soak --wmtyd=build/services/server/wmtyd --duration=10m        # starts its own wmtyd
//             [--wmtyd_args=--block_cache_mb=32,...]
//   wmty_soak --grpc=127.0.0.1:50051 --http=127.0.0.1:8080 --pid=1234  # an existing one (auth off)
//
// Workload (all on loopback, no authentication):
//   gRPC writers  (--grpc_writers threads, wmty_client): CreateGoal, UpdateGoal
//                 (of a goal this thread created, with its etag),
//                 CreatePreference, CreateWhatMatters, UpdateWhatMatters;
//   gRPC readers  (--grpc_readers): GetPatientSummary, ListGoals;
//   FHIR readers  (--fhir_readers, keep-alive HTTP/1.1): GET Goal/[id],
//                 Goal?patient=, Observation?patient=&category=care-experience-preference;
//   FHIR writers  (--fhir_writers): POST Goal, POST Observation (what matters).
// over --patients patients (each seeded with a goal, a what-matters entry and
// a preference first). --rate caps the total request rate (0: as fast as the
// threads go).
//
// Every --interval it prints, per request kind: requests, errors, p50 and p99
// latency, and wmtyd's resident memory (VmRSS of /proc/<pid>/status). The
// same figures go to <out_dir>/soak-<timestamp>.csv and a summary (whole-run
// figures per kind, RSS per interval) to <out_dir>/soak-<timestamp>.md.
//
// Exit status: 0 when every request succeeded (and a wmtyd it started
// stopped cleanly), 1 otherwise. Latency and memory are reported, never
// judged here.
#include <fcntl.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <array>
#include <atomic>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <map>
#include <mutex>
#include <optional>
#include <random>
#include <string>
#include <thread>
#include <vector>

#include <boost/asio/connect.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>

#include "absl/flags/flag.h"
#include "absl/flags/parse.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_join.h"
#include "absl/time/clock.h"
#include "absl/time/time.h"
#include "wmty/client/client.h"

ABSL_FLAG(std::string, wmtyd, "", "Start this wmtyd binary (own temp data dir, ports 0, --auth_disabled)");
ABSL_FLAG(std::vector<std::string>, wmtyd_args, {},
          "Extra flags for the wmtyd it starts, comma-separated (e.g. --block_cache_mb=32)");
ABSL_FLAG(std::string, grpc, "", "Or: gRPC host:port of a running wmtyd (authentication off)");
ABSL_FLAG(std::string, http, "", "Or: HTTP host:port of the same wmtyd's FHIR face");
ABSL_FLAG(int, pid, 0, "Process id of the running wmtyd, for its RSS (0: not reported)");
ABSL_FLAG(absl::Duration, duration, absl::Minutes(10), "How long to run");
ABSL_FLAG(absl::Duration, interval, absl::Seconds(10), "Report every this long");
ABSL_FLAG(int, patients, 200, "Patients the workload spreads over");
ABSL_FLAG(int, grpc_writers, 2, "gRPC writer threads");
ABSL_FLAG(int, grpc_readers, 2, "gRPC reader threads");
ABSL_FLAG(int, fhir_readers, 2, "FHIR reader threads");
ABSL_FLAG(int, fhir_writers, 1, "FHIR writer threads");
ABSL_FLAG(double, rate, 400, "Total requests per second, spread over the threads (0: unlimited)");
ABSL_FLAG(std::string, out_dir, "bench/results", "Where the CSV and markdown go (empty: nowhere)");
ABSL_FLAG(std::string, label, "", "Name of the result files (default soak-<UTC timestamp>)");

namespace {

using namespace wmty;
namespace beast = boost::beast;
namespace bhttp = boost::beast::http;
namespace net = boost::asio;
using tcp = net::ip::tcp;

// ---------------------------------------------------------------- statistics

enum Kind {
  kGrpcCreateGoal,
  kGrpcUpdateGoal,
  kGrpcCreatePreference,
  kGrpcCreateWhatMatters,
  kGrpcUpdateWhatMatters,
  kGrpcSummary,
  kGrpcListGoals,
  kFhirReadGoal,
  kFhirSearchGoal,
  kFhirSearchObservation,
  kFhirCreateGoal,
  kFhirCreateObservation,
  kKinds
};
constexpr const char* kKindNames[kKinds] = {"grpc CreateGoal",        "grpc UpdateGoal",
                                            "grpc CreatePreference",  "grpc CreateWhatMatters",
                                            "grpc UpdateWhatMatters", "grpc GetPatientSummary",
                                            "grpc ListGoals",         "fhir GET Goal/[id]",
                                            "fhir GET Goal?patient",  "fhir GET Observation?patient&category",
                                            "fhir POST Goal",         "fhir POST Observation"};

double Percentile(std::vector<double>& v, double p) {
  if (v.empty()) return 0;
  const size_t i = std::min(v.size() - 1, static_cast<size_t>(p * static_cast<double>(v.size())));
  std::nth_element(v.begin(), v.begin() + static_cast<std::ptrdiff_t>(i), v.end());
  return v[i];
}

struct KindStats {
  int64_t requests = 0;
  int64_t errors = 0;
  std::vector<double> latency_ms;
};

// Latencies and errors of the current interval, and of the whole run.
class Stats {
 public:
  void Record(Kind kind, absl::Duration latency, bool ok, const std::string& error) {
    std::lock_guard<std::mutex> lock(mu_);
    for (KindStats* s : {&interval_[kind], &total_[kind]}) {
      ++s->requests;
      if (!ok) ++s->errors;
      s->latency_ms.push_back(absl::ToDoubleMilliseconds(latency));
    }
    // The first few errors are printed (codes and ids: the workload's text is synthetic).
    if (!ok && ++errors_printed_ <= 20) std::fprintf(stderr, "error: %s: %s\n", kKindNames[kind], error.c_str());
  }
  std::array<KindStats, kKinds> TakeInterval() {
    std::lock_guard<std::mutex> lock(mu_);
    std::array<KindStats, kKinds> out;
    std::swap(out, interval_);
    return out;
  }
  std::array<KindStats, kKinds> Total() {
    std::lock_guard<std::mutex> lock(mu_);
    return total_;
  }

 private:
  std::mutex mu_;
  std::array<KindStats, kKinds> interval_;
  std::array<KindStats, kKinds> total_;
  int errors_printed_ = 0;
};

// VmRSS of the process in KiB, or -1.
int64_t RssKib(int pid) {
  if (pid <= 0) return -1;
  std::ifstream in(absl::StrCat("/proc/", pid, "/status"));
  std::string line;
  while (std::getline(in, line)) {
    if (line.rfind("VmRSS:", 0) == 0) {
      int64_t kib = -1;
      std::string digits;
      for (char c : line) {
        if (c >= '0' && c <= '9') digits += c;
      }
      (void)absl::SimpleAtoi(digits, &kib);
      return kib;
    }
  }
  return -1;
}

// ---------------------------------------------------------------- a keep-alive HTTP client

class Http {
 public:
  Http(std::string host, int port) : host_(std::move(host)), port_(port) {}

  // One request; status -1 and the reason in *error on a transport failure.
  int Send(bhttp::verb method, const std::string& target, const std::string& body, std::string* response_body,
           std::string* error) {
    for (int attempt = 0; attempt < 2; ++attempt) {
      beast::error_code ec;
      const bool fresh = !stream_.has_value();
      if (fresh) {
        stream_.emplace(ioc_);
        stream_->expires_after(std::chrono::seconds(30));
        stream_->connect(tcp::endpoint(net::ip::make_address(host_), static_cast<unsigned short>(port_)), ec);
        if (ec) {
          stream_.reset();
          *error = "connect: " + ec.message();
          return -1;
        }
        buffer_.clear();
      }
      bhttp::request<bhttp::string_body> req{method, target, 11};
      req.set(bhttp::field::host, absl::StrCat(host_, ":", port_));
      req.set(bhttp::field::accept, "application/fhir+json");
      if (method == bhttp::verb::post) {
        req.set(bhttp::field::content_type, "application/fhir+json");
        req.set("X-Request-Id", client::NewRequestId());
        req.body() = body;
        req.prepare_payload();
      }
      stream_->expires_after(std::chrono::seconds(60));
      bhttp::write(*stream_, req, ec);
      bhttp::response_parser<bhttp::string_body> parser;
      parser.body_limit(64 * 1024 * 1024);
      if (!ec) bhttp::read(*stream_, buffer_, parser, ec);
      if (ec) {
        stream_.reset();
        if (!fresh && method == bhttp::verb::get) continue;  // the server closed an idle connection
        *error = "http: " + ec.message();
        return -1;
      }
      auto res = parser.release();
      if (!res.keep_alive()) stream_.reset();
      *response_body = std::move(res.body());
      return static_cast<int>(res.result_int());
    }
    *error = "http: connection closed";
    return -1;
  }

 private:
  std::string host_;
  int port_;
  net::io_context ioc_;
  std::optional<beast::tcp_stream> stream_;
  beast::flat_buffer buffer_;
};

// ---------------------------------------------------------------- the workload

v1::Provenance SoakProvenance() {
  v1::Provenance p;
  p.mutable_recorded_by()->set_practitioner_id("rn-soak");
  p.mutable_recorded_by()->set_role("RN");
  p.mutable_said_by()->set_kind(v1::Speaker::PATIENT);
  p.set_channel(v1::IMPORT);
  return p;
}

v1::Goal SoakGoal(int64_t n) {
  v1::Goal g;
  g.set_description(absl::StrCat("Walk to the end of the garden without resting, soak goal ", n));
  g.set_lifecycle_status(v1::GOAL_ACTIVE);
  g.add_categories(v1::PERSONAL_HEALTH_GOAL);
  g.set_target_date("2027-06-01");
  *g.mutable_provenance() = SoakProvenance();
  return g;
}

v1::WhatMatters SoakWhatMatters(int64_t n) {
  v1::WhatMatters w;
  w.set_statement(absl::StrCat("Being home for my garden in spring, soak answer ", n));
  *w.mutable_provenance() = SoakProvenance();
  return w;
}

v1::Preference SoakPreference() {
  v1::Preference p;
  p.set_kind(v1::COMMUNICATION_CHANNELS);
  p.mutable_channel_ranking()->add_channels(v1::SMS);
  p.mutable_channel_ranking()->add_channels(v1::PHONE_CALL);
  p.set_value_text("Text me first, then call");
  *p.mutable_provenance() = SoakProvenance();
  return p;
}

std::string FhirGoal(const std::string& patient, int64_t n) {
  return absl::StrCat(R"({"resourceType":"Goal","lifecycleStatus":"active","description":{"text":"Dance at the )"
                      R"(wedding, soak FHIR goal )",
                      n, R"("},"subject":{"reference":"Patient/)", patient,
                      R"("},"expressedBy":{"reference":"Patient/)", patient,
                      R"("},"target":[{"dueDate":"2027-06-15"}]})");
}

std::string FhirWhatMatters(const std::string& patient, int64_t n) {
  return absl::StrCat(
      R"({"resourceType":"Observation","status":"final","category":[{"coding":[{"system":)"
      R"("http://hl7.org/fhir/us/core/CodeSystem/us-core-category","code":"care-experience-preference"}]}],)"
      R"("code":{"coding":[{"system":"http://loinc.org","code":"95541-9"},)"
      R"({"system":"https://fhir.wmty.health/CodeSystem/wmty","code":"what-matters"}]},"subject":{"reference":)"
      R"("Patient/)",
      patient, R"("},"performer":[{"reference":"Patient/)", patient,
      R"("}],"valueString":"Seeing my grandchildren every Sunday, soak FHIR answer )", n, R"("})");
}

// Goal ids any thread may read (FHIR GET Goal/[id]).
class KnownGoals {
 public:
  void Add(std::string id) {
    std::lock_guard<std::mutex> lock(mu_);
    ids_.push_back(std::move(id));
  }
  std::string Pick(std::mt19937& rng) {
    std::lock_guard<std::mutex> lock(mu_);
    if (ids_.empty()) return "";
    return ids_[std::uniform_int_distribution<size_t>(0, ids_.size() - 1)(rng)];
  }

 private:
  std::mutex mu_;
  std::vector<std::string> ids_;
};

std::string IdOf(const std::string& name) { return name.substr(name.rfind('/') + 1); }

struct Endpoints {
  std::string grpc;  // host:port
  std::string http_host;
  int http_port = 0;
};

class Workload {
 public:
  Workload(Endpoints endpoints, std::string run_id, int patients, double per_thread_rate)
      : endpoints_(std::move(endpoints)),
        run_id_(std::move(run_id)),
        patients_(patients),
        per_thread_rate_(per_thread_rate) {}

  std::string Patient(int i) const { return absl::StrCat("soak-", run_id_, "-", i); }

  std::unique_ptr<client::Client> NewClient() const {
    client::ClientOptions options;
    options.target = endpoints_.grpc;
    options.timeout = absl::Seconds(30);
    options.max_attempts = 1;  // a failure is an error to report, not to hide
    return client::Client::Connect(options);
  }

  // Each patient gets a goal, a what-matters entry and a preference (not
  // measured). Runs on `threads` threads.
  bool Seed(int threads) {
    std::atomic<bool> ok{true};
    std::vector<std::thread> workers;
    for (int t = 0; t < threads; ++t) {
      workers.emplace_back([&, t] {
        auto client = NewClient();
        for (int i = t; i < patients_ && ok.load(); i += threads) {
          v1::CreateGoalRequest goal;
          goal.set_parent("patients/" + Patient(i));
          *goal.mutable_goal() = SoakGoal(i);
          auto g = client->CreateGoal(goal);
          v1::CreateWhatMattersRequest wm;
          wm.set_parent("patients/" + Patient(i));
          *wm.mutable_what_matters() = SoakWhatMatters(i);
          auto w = client->CreateWhatMatters(wm);
          v1::CreatePreferenceRequest pref;
          pref.set_parent("patients/" + Patient(i));
          *pref.mutable_preference() = SoakPreference();
          auto p = client->CreatePreference(pref);
          if (!g.ok() || !w.ok() || !p.ok()) {
            std::fprintf(stderr, "seeding failed: %s %s %s\n", g.status().ToString().c_str(),
                         w.status().ToString().c_str(), p.status().ToString().c_str());
            ok.store(false);
            return;
          }
          known_goals_.Add(IdOf(g->name()));
        }
      });
    }
    for (auto& w : workers) w.join();
    return ok.load();
  }

  void Run(int grpc_writers, int grpc_readers, int fhir_readers, int fhir_writers, const std::atomic<bool>& stop,
           Stats& stats) {
    std::vector<std::thread> threads;
    int seed = 1;
    for (int i = 0; i < grpc_writers; ++i) threads.emplace_back([&, s = seed++] { GrpcWriter(s, stop, stats); });
    for (int i = 0; i < grpc_readers; ++i) threads.emplace_back([&, s = seed++] { GrpcReader(s, stop, stats); });
    for (int i = 0; i < fhir_readers; ++i) threads.emplace_back([&, s = seed++] { FhirReader(s, stop, stats); });
    for (int i = 0; i < fhir_writers; ++i) threads.emplace_back([&, s = seed++] { FhirWriter(s, stop, stats); });
    for (auto& t : threads) t.join();
  }

 private:
  // Paces one thread to per_thread_rate_ requests per second.
  class Pacer {
   public:
    explicit Pacer(double rate) : step_(rate > 0 ? absl::Seconds(1.0 / rate) : absl::ZeroDuration()) {}
    void Wait() {
      if (step_ == absl::ZeroDuration()) return;
      next_ += step_;
      const absl::Time now = absl::Now();
      if (next_ > now) {
        absl::SleepFor(next_ - now);
      } else if (now - next_ > absl::Seconds(1)) {
        next_ = now;  // fell behind (a slow request): do not burst to catch up
      }
    }

   private:
    absl::Duration step_;
    absl::Time next_ = absl::Now();
  };

  template <class F>
  void Timed(Stats& stats, Kind kind, F&& call) {
    const absl::Time start = absl::Now();
    std::string error;
    const bool ok = call(&error);
    stats.Record(kind, absl::Now() - start, ok, error);
  }

  void GrpcWriter(int seed, const std::atomic<bool>& stop, Stats& stats) {
    std::mt19937 rng(seed);
    auto client = NewClient();
    std::vector<v1::Goal> goals;           // created by this thread: updated with their etag
    std::vector<v1::WhatMatters> answers;  // likewise
    Pacer pacer(per_thread_rate_);
    int64_t n = 0;
    while (!stop.load()) {
      pacer.Wait();
      const std::string parent = "patients/" + Patient(std::uniform_int_distribution<int>(0, patients_ - 1)(rng));
      const int pick = std::uniform_int_distribution<int>(0, 9)(rng);
      ++n;
      if (pick < 3 || goals.empty()) {
        Timed(stats, kGrpcCreateGoal, [&](std::string* error) {
          v1::CreateGoalRequest req;
          req.set_parent(parent);
          *req.mutable_goal() = SoakGoal(n);
          req.set_request_id(client::NewRequestId());
          auto r = client->CreateGoal(req);
          if (!r.ok()) return *error = r.status().ToString(), false;
          known_goals_.Add(IdOf(r->name()));
          if (goals.size() < 64) goals.push_back(*r);
          return true;
        });
      } else if (pick < 6) {
        v1::Goal& goal = goals[std::uniform_int_distribution<size_t>(0, goals.size() - 1)(rng)];
        Timed(stats, kGrpcUpdateGoal, [&](std::string* error) {
          v1::UpdateGoalRequest req;
          *req.mutable_goal() = goal;
          req.mutable_goal()->set_lifecycle_status(n % 2 == 0 ? v1::ON_HOLD : v1::GOAL_ACTIVE);
          req.set_request_id(client::NewRequestId());
          auto r = client->UpdateGoal(req);
          if (!r.ok()) return *error = r.status().ToString(), false;
          goal = *r;
          return true;
        });
      } else if (pick < 7) {
        Timed(stats, kGrpcCreatePreference, [&](std::string* error) {
          v1::CreatePreferenceRequest req;
          req.set_parent(parent);
          *req.mutable_preference() = SoakPreference();
          req.set_request_id(client::NewRequestId());
          auto r = client->CreatePreference(req);
          if (!r.ok()) return *error = r.status().ToString(), false;
          return true;
        });
      } else if (pick < 8 || answers.empty()) {
        Timed(stats, kGrpcCreateWhatMatters, [&](std::string* error) {
          v1::CreateWhatMattersRequest req;
          req.set_parent(parent);
          *req.mutable_what_matters() = SoakWhatMatters(n);
          req.set_request_id(client::NewRequestId());
          auto r = client->CreateWhatMatters(req);
          if (!r.ok()) return *error = r.status().ToString(), false;
          if (answers.size() < 64) answers.push_back(*r);
          return true;
        });
      } else {
        v1::WhatMatters& answer = answers[std::uniform_int_distribution<size_t>(0, answers.size() - 1)(rng)];
        Timed(stats, kGrpcUpdateWhatMatters, [&](std::string* error) {
          v1::UpdateWhatMattersRequest req;
          *req.mutable_what_matters() = answer;
          req.mutable_what_matters()->set_statement(SoakWhatMatters(n).statement());
          req.set_request_id(client::NewRequestId());
          auto r = client->UpdateWhatMatters(req);
          if (!r.ok()) return *error = r.status().ToString(), false;
          answer = *r;
          return true;
        });
      }
    }
  }

  void GrpcReader(int seed, const std::atomic<bool>& stop, Stats& stats) {
    std::mt19937 rng(seed);
    auto client = NewClient();
    Pacer pacer(per_thread_rate_);
    while (!stop.load()) {
      pacer.Wait();
      const std::string parent = "patients/" + Patient(std::uniform_int_distribution<int>(0, patients_ - 1)(rng));
      if (std::uniform_int_distribution<int>(0, 1)(rng) == 0) {
        Timed(stats, kGrpcSummary, [&](std::string* error) {
          v1::GetPatientSummaryRequest req;
          req.set_parent(parent);
          auto r = client->GetPatientSummary(req);
          if (!r.ok()) return *error = r.status().ToString(), false;
          return true;
        });
      } else {
        Timed(stats, kGrpcListGoals, [&](std::string* error) {
          v1::ListGoalsRequest req;
          req.set_parent(parent);
          req.set_page_size(50);
          auto r = client->ListGoals(req);
          if (!r.ok()) return *error = r.status().ToString(), false;
          return true;
        });
      }
    }
  }

  // Status `want`, else an error naming what came.
  static bool Expect(int status, int want, const std::string& body, const std::string& transport_error,
                     std::string* error) {
    if (status == want) return true;
    *error = status < 0 ? transport_error : absl::StrCat("HTTP ", status, ": ", body.substr(0, 300));
    return false;
  }

  void FhirReader(int seed, const std::atomic<bool>& stop, Stats& stats) {
    std::mt19937 rng(seed);
    Http http(endpoints_.http_host, endpoints_.http_port);
    Pacer pacer(per_thread_rate_);
    while (!stop.load()) {
      pacer.Wait();
      const std::string patient = Patient(std::uniform_int_distribution<int>(0, patients_ - 1)(rng));
      const int pick = std::uniform_int_distribution<int>(0, 2)(rng);
      std::string body, transport;
      if (pick == 0) {
        const std::string id = known_goals_.Pick(rng);
        Timed(stats, kFhirReadGoal, [&](std::string* error) {
          return Expect(http.Send(bhttp::verb::get, "/fhir/Goal/" + id, "", &body, &transport), 200, body, transport,
                        error);
        });
      } else if (pick == 1) {
        Timed(stats, kFhirSearchGoal, [&](std::string* error) {
          return Expect(http.Send(bhttp::verb::get, "/fhir/Goal?patient=" + patient, "", &body, &transport), 200, body,
                        transport, error);
        });
      } else {
        Timed(stats, kFhirSearchObservation, [&](std::string* error) {
          return Expect(http.Send(bhttp::verb::get,
                                  absl::StrCat("/fhir/Observation?patient=", patient,
                                               "&category=http://hl7.org/fhir/us/core/CodeSystem/"
                                               "us-core-category|care-experience-preference"),
                                  "", &body, &transport),
                        200, body, transport, error);
        });
      }
    }
  }

  void FhirWriter(int seed, const std::atomic<bool>& stop, Stats& stats) {
    std::mt19937 rng(seed);
    Http http(endpoints_.http_host, endpoints_.http_port);
    Pacer pacer(per_thread_rate_);
    int64_t n = 0;
    while (!stop.load()) {
      pacer.Wait();
      const std::string patient = Patient(std::uniform_int_distribution<int>(0, patients_ - 1)(rng));
      std::string body, transport;
      if (++n % 2 == 0) {
        Timed(stats, kFhirCreateGoal, [&](std::string* error) {
          return Expect(http.Send(bhttp::verb::post, "/fhir/Goal", FhirGoal(patient, n), &body, &transport), 201, body,
                        transport, error);
        });
      } else {
        Timed(stats, kFhirCreateObservation, [&](std::string* error) {
          return Expect(
              http.Send(bhttp::verb::post, "/fhir/Observation", FhirWhatMatters(patient, n), &body, &transport), 201,
              body, transport, error);
        });
      }
    }
  }

  const Endpoints endpoints_;
  const std::string run_id_;
  const int patients_;
  const double per_thread_rate_;
  KnownGoals known_goals_;
};

// ---------------------------------------------------------------- a wmtyd of our own

struct OwnServer {
  pid_t pid = -1;
  std::string dir;
};

std::optional<OwnServer> StartWmtyd(const std::string& binary, const std::vector<std::string>& extra_args,
                                    Endpoints* endpoints) {
  OwnServer s;
  std::string pattern = (std::filesystem::temp_directory_path() / "wmty-soak-XXXXXX").string();
  if (mkdtemp(pattern.data()) == nullptr) return std::nullopt;
  s.dir = pattern;
  const std::string port_file = s.dir + "/grpc.port", http_port_file = s.dir + "/http.port";
  std::vector<std::string> args = {binary,
                                   "--data_dir=" + s.dir + "/data",
                                   "--grpc_listen=127.0.0.1:0",
                                   "--port_file=" + port_file,
                                   "--http_listen=127.0.0.1:0",
                                   "--http_port_file=" + http_port_file,
                                   "--auth_disabled"};
  args.insert(args.end(), extra_args.begin(), extra_args.end());
  s.pid = fork();
  if (s.pid < 0) return std::nullopt;
  if (s.pid == 0) {
    // wmtyd's JSON log goes to a file next to the data, not into our table.
    const int log = open((s.dir + "/wmtyd.log").c_str(), O_WRONLY | O_CREAT | O_APPEND, 0644);
    if (log >= 0) {
      dup2(log, STDERR_FILENO);
      dup2(log, STDOUT_FILENO);
    }
    std::vector<char*> argv;
    for (auto& a : args) argv.push_back(a.data());
    argv.push_back(nullptr);
    execv(argv[0], argv.data());
    _exit(127);
  }
  const absl::Time give_up = absl::Now() + absl::Seconds(60);
  while (absl::Now() < give_up) {
    std::ifstream in(port_file);
    int port = 0;
    if (in >> port && port > 0) {
      std::ifstream http_in(http_port_file);
      int http_port = 0;
      http_in >> http_port;
      endpoints->grpc = absl::StrCat("127.0.0.1:", port);
      endpoints->http_host = "127.0.0.1";
      endpoints->http_port = http_port;
      return s;
    }
    int status = 0;
    if (waitpid(s.pid, &status, WNOHANG) == s.pid) return std::nullopt;
    absl::SleepFor(absl::Milliseconds(20));
  }
  kill(s.pid, SIGKILL);
  waitpid(s.pid, nullptr, 0);
  return std::nullopt;
}

// SIGTERM and wait: true if it exited 0 within a minute.
bool StopWmtyd(OwnServer& s) {
  kill(s.pid, SIGTERM);
  const absl::Time give_up = absl::Now() + absl::Minutes(1);
  int status = 0;
  while (absl::Now() < give_up) {
    if (waitpid(s.pid, &status, WNOHANG) == s.pid) {
      return WIFEXITED(status) && WEXITSTATUS(status) == 0;
    }
    absl::SleepFor(absl::Milliseconds(20));
  }
  kill(s.pid, SIGKILL);
  waitpid(s.pid, nullptr, 0);
  return false;
}

bool SplitHostPort(const std::string& s, std::string* host, int* port) {
  const size_t colon = s.rfind(':');
  if (colon == std::string::npos) return false;
  *host = s.substr(0, colon);
  return absl::SimpleAtoi(s.substr(colon + 1), port);
}

// ---------------------------------------------------------------- reporting

struct IntervalRow {
  double elapsed_s;
  std::array<KindStats, kKinds> stats;
  int64_t rss_kib;
};

std::string Mib(int64_t kib) { return kib < 0 ? "-" : absl::StrFormat("%.1f", static_cast<double>(kib) / 1024.0); }

void PrintInterval(IntervalRow& row, double interval_s) {
  std::printf("\n[%6.0f s] wmtyd RSS %s MiB\n", row.elapsed_s, Mib(row.rss_kib).c_str());
  std::printf("  %-40s %9s %7s %7s %9s %9s\n", "kind", "requests", "req/s", "errors", "p50 ms", "p99 ms");
  for (int k = 0; k < kKinds; ++k) {
    KindStats& s = row.stats[k];
    std::vector<double> copy = s.latency_ms;
    std::printf("  %-40s %9lld %7.1f %7lld %9.2f %9.2f\n", kKindNames[k], static_cast<long long>(s.requests),
                static_cast<double>(s.requests) / interval_s, static_cast<long long>(s.errors), Percentile(copy, 0.50),
                Percentile(copy, 0.99));
  }
  std::fflush(stdout);
}

}  // namespace

int main(int argc, char** argv) {
  absl::ParseCommandLine(argc, argv);
  const absl::Duration duration = absl::GetFlag(FLAGS_duration);
  const absl::Duration interval = absl::GetFlag(FLAGS_interval);
  const int patients = std::max(1, absl::GetFlag(FLAGS_patients));

  Endpoints endpoints;
  std::optional<OwnServer> own;
  int pid = absl::GetFlag(FLAGS_pid);
  if (!absl::GetFlag(FLAGS_wmtyd).empty()) {
    own = StartWmtyd(absl::GetFlag(FLAGS_wmtyd), absl::GetFlag(FLAGS_wmtyd_args), &endpoints);
    if (!own.has_value()) {
      std::fprintf(stderr, "could not start %s\n", absl::GetFlag(FLAGS_wmtyd).c_str());
      return 1;
    }
    pid = own->pid;
  } else {
    endpoints.grpc = absl::GetFlag(FLAGS_grpc);
    if (endpoints.grpc.empty() ||
        !SplitHostPort(absl::GetFlag(FLAGS_http), &endpoints.http_host, &endpoints.http_port)) {
      std::fprintf(stderr, "give --wmtyd=<binary>, or --grpc=host:port and --http=host:port\n");
      return 1;
    }
  }

  const int threads = absl::GetFlag(FLAGS_grpc_writers) + absl::GetFlag(FLAGS_grpc_readers) +
                      absl::GetFlag(FLAGS_fhir_readers) + absl::GetFlag(FLAGS_fhir_writers);
  const double rate = absl::GetFlag(FLAGS_rate);
  const std::string label =
      absl::GetFlag(FLAGS_label).empty()
          ? absl::StrCat("soak-", absl::FormatTime("%Y-%m-%d-%H%M%S", absl::Now(), absl::UTCTimeZone()))
          : absl::GetFlag(FLAGS_label);
  Workload workload(endpoints, absl::FormatTime("%H%M%S", absl::Now(), absl::UTCTimeZone()), patients,
                    rate > 0 ? rate / std::max(1, threads) : 0);
  std::printf("wmty_soak: %s for %s, %d patients, %d threads, rate %s; gRPC %s, HTTP %s:%d, wmtyd pid %d\n",
              label.c_str(), absl::FormatDuration(duration).c_str(), patients, threads,
              rate > 0 ? absl::StrCat(rate, "/s").c_str() : "unlimited", endpoints.grpc.c_str(),
              endpoints.http_host.c_str(), endpoints.http_port, pid);
  bool ok = workload.Seed(4);
  const int64_t rss_after_seed = RssKib(pid);

  Stats stats;
  std::atomic<bool> stop{false};
  std::vector<IntervalRow> rows;
  const absl::Time start = absl::Now();
  if (ok) {
    std::thread runner([&] {
      workload.Run(absl::GetFlag(FLAGS_grpc_writers), absl::GetFlag(FLAGS_grpc_readers),
                   absl::GetFlag(FLAGS_fhir_readers), absl::GetFlag(FLAGS_fhir_writers), stop, stats);
    });
    absl::Time next = start + interval;
    while (true) {
      const absl::Time end = start + duration;
      absl::SleepFor(std::min(next, end) - absl::Now());
      const absl::Time now = absl::Now();
      const bool last = now >= end;
      if (last) stop.store(true);
      IntervalRow row{absl::ToDoubleSeconds(now - start), stats.TakeInterval(), RssKib(pid)};
      const double span = rows.empty() ? row.elapsed_s : row.elapsed_s - rows.back().elapsed_s;
      PrintInterval(row, std::max(span, 1e-3));
      rows.push_back(std::move(row));
      if (last) break;
      next += interval;
    }
    runner.join();
    // Requests in flight when the clock ran out count in the total.
  }
  const double seconds = absl::ToDoubleSeconds(absl::Now() - start);

  auto total = stats.Total();
  int64_t requests = 0, errors = 0;
  for (const auto& s : total) {
    requests += s.requests;
    errors += s.errors;
  }
  bool clean_stop = true;
  if (own.has_value()) clean_stop = StopWmtyd(*own);
  std::printf("\nwmty_soak: %lld requests in %.0f s (%.1f/s), %lld errors%s\n", static_cast<long long>(requests),
              seconds, static_cast<double>(requests) / std::max(seconds, 1e-3), static_cast<long long>(errors),
              own.has_value() ? (clean_stop ? "; wmtyd stopped cleanly" : "; wmtyd did NOT stop cleanly") : "");

  const std::string out_dir = absl::GetFlag(FLAGS_out_dir);
  if (!out_dir.empty() && ok) {
    std::filesystem::create_directories(out_dir);
    std::ofstream csv(absl::StrCat(out_dir, "/", label, ".csv"));
    csv << "elapsed_s,kind,requests,errors,p50_ms,p99_ms,wmtyd_rss_kib\n";
    for (auto& row : rows) {
      for (int k = 0; k < kKinds; ++k) {
        std::vector<double> copy = row.stats[k].latency_ms;
        csv << absl::StrFormat("%.1f,%s,%d,%d,%.3f,%.3f,%d\n", row.elapsed_s, kKindNames[k], row.stats[k].requests,
                               row.stats[k].errors, Percentile(copy, 0.5), Percentile(copy, 0.99), row.rss_kib);
      }
    }
    std::ofstream md(absl::StrCat(out_dir, "/", label, ".md"));
    md << "# " << label << "\n\n"
       << absl::StrFormat(
              "`wmty_soak --duration=%s --interval=%s --patients=%d --rate=%g` (%d gRPC writer, %d gRPC "
              "reader, %d FHIR reader, %d FHIR writer threads); %d requests in %.0f s (%.1f/s), **%d "
              "errors**%s.\n\n",
              absl::FormatDuration(duration), absl::FormatDuration(interval), patients, rate,
              absl::GetFlag(FLAGS_grpc_writers), absl::GetFlag(FLAGS_grpc_readers), absl::GetFlag(FLAGS_fhir_readers),
              absl::GetFlag(FLAGS_fhir_writers), requests, seconds,
              static_cast<double>(requests) / std::max(seconds, 1e-3), errors,
              own.has_value() ? (clean_stop ? "; wmtyd stopped cleanly (exit 0)" : "; wmtyd did NOT stop cleanly") : "")
       << (absl::GetFlag(FLAGS_wmtyd_args).empty()
               ? ""
               : absl::StrCat("wmtyd started with `", absl::StrJoin(absl::GetFlag(FLAGS_wmtyd_args), " "), "`.\n\n"))
       << "## Whole run, per kind\n\n| kind | requests | errors | p50 ms | p99 ms |\n|---|---:|---:|---:|---:|\n";
    for (int k = 0; k < kKinds; ++k) {
      std::vector<double> copy = total[k].latency_ms;
      md << absl::StrFormat("| %s | %d | %d | %.2f | %.2f |\n", kKindNames[k], total[k].requests, total[k].errors,
                            Percentile(copy, 0.5), Percentile(copy, 0.99));
    }
    md << "\n## Per interval\n\nRSS is wmtyd's VmRSS at the end of the interval (after seeding: " << Mib(rss_after_seed)
       << " MiB). p50/p99 over all kinds.\n\n| t (s) | requests/s | errors | p50 ms | p99 ms | wmtyd RSS MiB |\n"
          "|---:|---:|---:|---:|---:|---:|\n";
    double previous = 0;
    for (auto& row : rows) {
      std::vector<double> all;
      int64_t n = 0, e = 0;
      for (const auto& s : row.stats) {
        all.insert(all.end(), s.latency_ms.begin(), s.latency_ms.end());
        n += s.requests;
        e += s.errors;
      }
      std::vector<double> copy = all;
      md << absl::StrFormat("| %.0f | %.1f | %d | %.2f | %.2f | %s |\n", row.elapsed_s,
                            static_cast<double>(n) / std::max(row.elapsed_s - previous, 1e-3), e, Percentile(all, 0.5),
                            Percentile(copy, 0.99), Mib(row.rss_kib));
      previous = row.elapsed_s;
    }
    std::printf("wrote %s/%s.csv and .md\n", out_dir.c_str(), label.c_str());
  }
  if (own.has_value() && clean_stop) {
    std::error_code ignored;
    std::filesystem::remove_all(own->dir, ignored);
  }
  return ok && errors == 0 && requests > 0 && clean_stop ? 0 : 1;
}
