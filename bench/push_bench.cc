// wmty_push_bench: the push targets of issue 19, against a running wmtyd.
//
//   wmty_push_bench --mode=subscriptions --grpc=127.0.0.1:P --fhir_port=H [--token_file=F]
//                   [--subscriptions=100] [--rate=1000] [--seconds=10] [--clients=32]
//   wmty_push_bench --mode=watch --grpc=127.0.0.1:P [--token_file=F] [--watchers=1000] [--rounds=100]
//
// subscriptions: (1) durable CreateGoal writes/s, closed loop with --clients
//   clients, with no subscription; (2) --subscriptions rest-hook
//   Subscriptions (topic --topic, payload id-only) to a receiver in this
//   process (bench/hook_receiver.h), each waited for until its handshake
//   came; (3) the same closed loop with them active (notifications flowing:
//   the ratio (3)/(1) is the "writes/s with 100 subscriptions >= 90%"
//   target); (4) open loop at --rate writes/s for --seconds: for every write,
//   the time from its acknowledgement to each subscription's notification
//   naming it (commit-to-delivery; p50/p99), and how many never came.
// watch: --watchers WatchChanges streams (over --channels connections) wait
//   for their first heartbeat (all registered); then --rounds times one
//   CreateGoal, and the time from its acknowledgement to each watcher's
//   event (p50/p99 over every watcher and round; and of the last watcher
//   per round: "all notified").
//
// wmtyd needs --subscription_allow_private_endpoints (the receiver is on
// loopback). Output: one machine-readable line per phase on stdout:
//   PUSHBENCH phase=.. key=value ...
// Exit 0 when every phase completed without errors or missing events.
#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdio>
#include <exception>
#include <fstream>
#include <limits>
#include <memory>
#include <mutex>
#include <optional>
#include <random>
#include <string>
#include <thread>
#include <unordered_map>
#include <vector>

#include <boost/asio/connect.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <grpcpp/grpcpp.h>

#include "absl/flags/flag.h"
#include "absl/flags/parse.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/synchronization/mutex.h"
#include "absl/synchronization/notification.h"
#include "absl/time/clock.h"
#include "absl/time/time.h"
#include "hook_receiver.h"
#include "latency_histogram.h"
#include "wmty/v1/change_feed.grpc.pb.h"
#include "wmty/v1/service.grpc.pb.h"

ABSL_FLAG(std::string, mode, "subscriptions", "subscriptions | watch");
ABSL_FLAG(std::string, grpc, "127.0.0.1:50051", "wmtyd gRPC host:port");
ABSL_FLAG(int, fhir_port, 8080, "wmtyd HTTP port (FHIR base /fhir on 127.0.0.1)");
ABSL_FLAG(std::string, token_file, "", "Bearer token for every call (wmtyd with authentication on)");
ABSL_FLAG(std::string, topic, "https://wmty.dev/fhir/SubscriptionTopic/goal-changed", "Subscription topic canonical");
ABSL_FLAG(int, subscriptions, 100, "rest-hook Subscriptions");
ABSL_FLAG(double, rate, 1000, "Open-loop writes per second (latency phase)");
ABSL_FLAG(int, seconds, 10, "Length of each measured phase");
ABSL_FLAG(int, clients, 32, "Closed-loop writers (throughput phases)");
ABSL_FLAG(int, patients, 1000, "Writes go to patients pb0 .. pb<N-1>");
ABSL_FLAG(int, watchers, 1000, "WatchChanges streams (watch mode)");
ABSL_FLAG(int, channels, 8, "gRPC connections");
ABSL_FLAG(int, rounds, 100, "One write per round (watch mode)");
ABSL_FLAG(int, receiver_threads, 2, "Threads of the rest-hook receiver");

namespace {

using namespace wmty;
using Clock = std::chrono::steady_clock;

int64_t Nanos(Clock::duration d) { return std::chrono::duration_cast<std::chrono::nanoseconds>(d).count(); }
double Ms(uint64_t nanos) { return static_cast<double>(nanos) / 1e6; }

struct Env {
  std::vector<std::unique_ptr<v1::WhatMattersService::Stub>> writers;
  std::vector<std::unique_ptr<v1::ChangeFeedService::Stub>> feeds;
  std::string authorization;  // "Bearer ...", or empty
};

v1::CreateGoalRequest GoalRequest(uint64_t n) {
  static thread_local std::mt19937_64 rng{std::random_device{}()};
  v1::CreateGoalRequest req;
  req.set_parent(absl::StrCat("patients/pb", n % static_cast<uint64_t>(absl::GetFlag(FLAGS_patients))));
  req.set_request_id(absl::StrFormat("%016x%016x", rng(), rng()));
  v1::Goal* g = req.mutable_goal();
  g->set_description(absl::StrCat("Walk to the end of the garden without resting, goal number ", n));
  g->set_lifecycle_status(v1::GOAL_ACTIVE);
  g->set_achievement_status(v1::IN_PROGRESS);
  g->add_categories(v1::PERSONAL_HEALTH_GOAL);
  auto* p = g->mutable_provenance();
  p->mutable_recorded_by()->set_practitioner_id("rn-bench");
  p->mutable_recorded_by()->set_role("RN");
  p->mutable_said_by()->set_kind(v1::Speaker::PATIENT);
  p->set_channel(v1::BEDSIDE);
  return req;
}

// The id at the end of a resource name ("patients/p/goals/<id>").
std::string IdOf(const std::string& name) { return name.substr(name.rfind('/') + 1); }

// One CreateGoal in flight; `done(ok, goal id, ack time)` runs on a gRPC thread.
struct WriteCall {
  grpc::ClientContext ctx;
  v1::CreateGoalRequest req;
  v1::Goal resp;
};
void Write(Env& env, uint64_t n, std::function<void(bool, const std::string&, Clock::time_point)> done) {
  auto* call = new WriteCall;
  call->req = GoalRequest(n);
  call->ctx.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(10));
  if (!env.authorization.empty()) call->ctx.AddMetadata("authorization", env.authorization);
  env.writers[n % env.writers.size()]->async()->CreateGoal(
      &call->ctx, &call->req, &call->resp, [call, done = std::move(done)](grpc::Status s) {
        const Clock::time_point at = Clock::now();
        if (!s.ok()) std::fprintf(stderr, "write failed: %d %s\n", s.error_code(), s.error_message().c_str());
        done(s.ok(), IdOf(call->resp.name()), at);
        delete call;
      });
}

// Closed loop: writes/s with `clients` writers for `seconds`.
double ClosedLoopWrites(Env& env, int clients, int seconds, std::atomic<int64_t>* errors) {
  std::atomic<int64_t> ok{0};
  std::atomic<bool> stop{false};
  std::atomic<int> running{clients};
  std::atomic<uint64_t> n{0};
  std::function<void()> next = [&] {
    if (stop.load()) {
      running.fetch_sub(1);
      return;
    }
    Write(env, n.fetch_add(1), [&](bool good, const std::string&, Clock::time_point) {
      (good ? ok : *errors).fetch_add(1);
      next();
    });
  };
  for (int i = 0; i < clients; ++i) next();
  std::this_thread::sleep_for(std::chrono::seconds(1));  // warm-up
  const int64_t from = ok.load();
  const Clock::time_point start = Clock::now();
  std::this_thread::sleep_for(std::chrono::seconds(seconds));
  const double rate = static_cast<double>(ok.load() - from) / (Nanos(Clock::now() - start) / 1e9);
  stop.store(true);
  while (running.load() > 0) std::this_thread::sleep_for(std::chrono::milliseconds(10));
  return rate;
}

// POST [base]/Subscription; the new id, or empty.
std::string CreateSubscription(const Env& env, int receiver_port, int i) {
  namespace http = boost::beast::http;
  const std::string body = absl::StrCat(
      R"({"resourceType":"Subscription","meta":{"profile":["http://hl7.org/fhir/uv/subscriptions-backport/)",
      R"(StructureDefinition/backport-subscription"]},"status":"requested","reason":"push bench",)", R"("criteria":")",
      absl::GetFlag(FLAGS_topic), R"(","channel":{"type":"rest-hook","endpoint":"http://127.0.0.1:)", receiver_port,
      "/hook/", i, R"(","payload":"application/fhir+json","_payload":{"extension":[{"url":"http://hl7.org/fhir/uv/)",
      R"(subscriptions-backport/StructureDefinition/backport-payload-content","valueCode":"id-only"}]}}})");
  boost::asio::io_context io;
  boost::beast::tcp_stream stream(io);
  boost::asio::ip::tcp::resolver resolver(io);
  stream.connect(resolver.resolve("127.0.0.1", std::to_string(absl::GetFlag(FLAGS_fhir_port))));
  http::request<http::string_body> req(http::verb::post, "/fhir/Subscription", 11);
  req.set(http::field::host, "127.0.0.1");
  req.set(http::field::content_type, "application/fhir+json");
  if (!env.authorization.empty()) req.set(http::field::authorization, env.authorization);
  req.body() = body;
  req.prepare_payload();
  http::write(stream, req);
  boost::beast::flat_buffer buffer;
  http::response<http::string_body> res;
  http::read(stream, buffer, res);
  if (res.result_int() != 201) {
    std::fprintf(stderr, "Subscription create answered %d: %s\n", res.result_int(), res.body().substr(0, 500).c_str());
    return "";
  }
  rapidjson::Document doc;
  doc.Parse(res.body().c_str());
  return doc.HasMember("id") ? doc["id"].GetString() : "";
}

// What the receiver got: handshakes by subscription; event focus ids with time.
struct Received {
  absl::Mutex mu;
  std::unordered_map<std::string, int> handshakes;
  std::vector<std::pair<std::string, Clock::time_point>> events;  // focus id, when
  int64_t event_count = 0;
  void Add(const bench::Notification& n) {
    const Clock::time_point at = Clock::now();
    absl::MutexLock lock(&mu);
    if (n.type == "handshake") ++handshakes[n.subscription];
    if (n.type != "event-notification") return;
    for (const std::string& f : n.focuses) {
      events.emplace_back(IdOf(f), at);
      ++event_count;
    }
  }
  int64_t Count() {
    absl::MutexLock lock(&mu);
    return event_count;
  }
};

// Waits until `count()` reaches `want` or stops growing for 10 s.
int64_t AwaitCount(const std::function<int64_t()>& count, int64_t want) {
  int64_t last = -1;
  Clock::time_point moved = Clock::now();
  for (;;) {
    const int64_t now = count();
    if (now >= want) return now;
    if (now != last) moved = Clock::now();
    if (Clock::now() - moved > std::chrono::seconds(10)) return now;
    last = now;
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
}

// Open loop at `rate` for `seconds`; fills `acked` (goal id -> ack time).
int64_t OpenLoopWrites(Env& env, double rate, int seconds, std::unordered_map<std::string, Clock::time_point>* acked,
                       absl::Mutex* mu) {
  std::atomic<int64_t> errors{0}, outstanding{0};
  const auto interval = std::chrono::nanoseconds(static_cast<int64_t>(1e9 / rate));
  const Clock::time_point start = Clock::now();
  const int64_t total = static_cast<int64_t>(rate * seconds);
  for (int64_t i = 0; i < total; ++i) {
    std::this_thread::sleep_until(start + i * interval);
    outstanding.fetch_add(1);
    Write(env, static_cast<uint64_t>(i) + 1000000, [&](bool ok, const std::string& id, Clock::time_point at) {
      if (ok) {
        absl::MutexLock lock(mu);
        (*acked)[id] = at;
      } else {
        errors.fetch_add(1);
      }
      outstanding.fetch_sub(1);
    });
  }
  while (outstanding.load() > 0) std::this_thread::sleep_for(std::chrono::milliseconds(5));
  return errors.load();
}

int RunSubscriptions(Env& env) {
  const int subs = absl::GetFlag(FLAGS_subscriptions);
  const int seconds = absl::GetFlag(FLAGS_seconds);
  std::atomic<int64_t> errors{0};
  const double none = ClosedLoopWrites(env, absl::GetFlag(FLAGS_clients), seconds, &errors);
  std::printf("PUSHBENCH phase=writes_no_subscriptions writes_per_s=%.1f errors=%lld\n", none,
              static_cast<long long>(errors.load()));

  Received received;
  bench::HookReceiver receiver(absl::GetFlag(FLAGS_receiver_threads),
                               [&](const bench::Notification& n) { received.Add(n); });
  for (int i = 0; i < subs; ++i) {
    if (CreateSubscription(env, receiver.port(), i).empty()) return 1;
  }
  const int64_t handshakes = AwaitCount(
      [&] {
        absl::MutexLock lock(&received.mu);
        return static_cast<int64_t>(received.handshakes.size());
      },
      subs);
  std::printf("PUSHBENCH phase=subscribe subscriptions=%d handshakes=%lld\n", subs, static_cast<long long>(handshakes));

  const int64_t before = received.Count();
  const double with = ClosedLoopWrites(env, absl::GetFlag(FLAGS_clients), seconds, &errors);
  std::printf("PUSHBENCH phase=writes_with_subscriptions subscriptions=%d writes_per_s=%.1f ratio=%.3f errors=%lld\n",
              subs, with, with / none, static_cast<long long>(errors.load()));
  // Let the backlog of that phase drain before measuring latency.
  AwaitCount([&] { return received.Count(); }, std::numeric_limits<int64_t>::max());
  const int64_t drained = received.Count() - before;

  std::unordered_map<std::string, Clock::time_point> acked;
  absl::Mutex acked_mu;
  {
    absl::MutexLock lock(&received.mu);
    received.events.clear();
  }
  const double rate = absl::GetFlag(FLAGS_rate);
  const int64_t write_errors = OpenLoopWrites(env, rate, seconds, &acked, &acked_mu);
  const int64_t expected = static_cast<int64_t>(acked.size()) * subs;
  AwaitCount(
      [&] {
        absl::MutexLock lock(&received.mu);
        return static_cast<int64_t>(received.events.size());
      },
      expected);
  bench::LatencyHistogram latency;
  int64_t matched = 0;
  {
    absl::MutexLock lock(&received.mu);
    for (const auto& [id, at] : received.events) {
      auto it = acked.find(id);
      if (it == acked.end()) continue;
      latency.Record(Nanos(at - it->second));
      ++matched;
    }
  }
  std::printf(
      "PUSHBENCH phase=delivery_latency subscriptions=%d offered_writes_per_s=%.0f writes=%zu notifications=%lld "
      "expected=%lld missing=%lld p50_ms=%.2f p99_ms=%.2f p999_ms=%.2f max_ms=%.2f write_errors=%lld "
      "backlog_drained=%lld\n",
      subs, rate, acked.size(), static_cast<long long>(matched), static_cast<long long>(expected),
      static_cast<long long>(std::max<int64_t>(0, expected - matched)), Ms(latency.ValueAt(0.5)),
      Ms(latency.ValueAt(0.99)), Ms(latency.ValueAt(0.999)), Ms(latency.max_nanos()),
      static_cast<long long>(write_errors), static_cast<long long>(drained));
  return (errors.load() == 0 && write_errors == 0 && matched >= expected && handshakes >= subs) ? 0 : 1;
}

// One WatchChanges stream: records when each goal's event arrived.
class Watcher : public grpc::ClientReadReactor<v1::WatchChangesResponse> {
 public:
  Watcher(v1::ChangeFeedService::Stub* stub, const std::string& authorization, std::atomic<int>* ready)
      : ready_(ready) {
    if (!authorization.empty()) ctx_.AddMetadata("authorization", authorization);
    req_.mutable_heartbeat_interval()->set_seconds(1);
    stub->async()->WatchChanges(&ctx_, &req_, this);
    StartRead(&resp_);
    StartCall();
  }
  void OnReadDone(bool ok) override {
    if (!ok) return;
    if (resp_.has_heartbeat() && !heard_) {
      heard_ = true;
      ready_->fetch_add(1);
    }
    if (resp_.has_change()) {
      absl::MutexLock lock(&mu_);
      seen_[IdOf(resp_.change().name())] = Clock::now();
    }
    StartRead(&resp_);
  }
  void OnDone(const grpc::Status& s) override {
    absl::MutexLock lock(&mu_);
    done_ = true;
    status_ = s;
  }
  std::optional<Clock::time_point> Seen(const std::string& id) {
    absl::MutexLock lock(&mu_);
    auto it = seen_.find(id);
    if (it == seen_.end()) return std::nullopt;
    return it->second;
  }
  void Cancel() { ctx_.TryCancel(); }
  bool Done() {
    absl::MutexLock lock(&mu_);
    return done_;
  }

 private:
  grpc::ClientContext ctx_;
  v1::WatchChangesRequest req_;
  v1::WatchChangesResponse resp_;
  std::atomic<int>* ready_;
  bool heard_ = false;
  absl::Mutex mu_;
  std::unordered_map<std::string, Clock::time_point> seen_;
  bool done_ = false;
  grpc::Status status_;
};

int RunWatch(Env& env) {
  const int n = absl::GetFlag(FLAGS_watchers);
  std::atomic<int> ready{0};
  std::vector<std::unique_ptr<Watcher>> watchers;
  for (int i = 0; i < n; ++i) {
    watchers.push_back(std::make_unique<Watcher>(env.feeds[i % env.feeds.size()].get(), env.authorization, &ready));
  }
  const int registered = static_cast<int>(AwaitCount([&] { return static_cast<int64_t>(ready.load()); }, n));
  bench::LatencyHistogram each, all;
  int64_t missing = 0;
  for (int r = 0; r < absl::GetFlag(FLAGS_rounds); ++r) {
    absl::Notification written;
    std::string id;
    Clock::time_point acked;
    bool ok = false;
    Write(env, static_cast<uint64_t>(r), [&](bool good, const std::string& goal, Clock::time_point at) {
      ok = good, id = goal, acked = at;
      written.Notify();
    });
    written.WaitForNotification();
    if (!ok) return 1;
    const Clock::time_point give_up = Clock::now() + std::chrono::seconds(5);
    int64_t last = 0;
    for (auto& w : watchers) {
      std::optional<Clock::time_point> at;
      while (!(at = w->Seen(id)).has_value() && Clock::now() < give_up) {
        std::this_thread::sleep_for(std::chrono::microseconds(200));
      }
      if (!at.has_value()) {
        ++missing;
        continue;
      }
      const int64_t d = std::max<int64_t>(0, Nanos(*at - acked));
      each.Record(d);
      last = std::max(last, d);
    }
    all.Record(last);
  }
  std::printf(
      "PUSHBENCH phase=watch watchers=%d registered=%d rounds=%d p50_ms=%.2f p99_ms=%.2f max_ms=%.2f "
      "all_notified_p50_ms=%.2f all_notified_p99_ms=%.2f missing=%lld\n",
      n, registered, absl::GetFlag(FLAGS_rounds), Ms(each.ValueAt(0.5)), Ms(each.ValueAt(0.99)), Ms(each.max_nanos()),
      Ms(all.ValueAt(0.5)), Ms(all.ValueAt(0.99)), static_cast<long long>(missing));
  for (auto& w : watchers) w->Cancel();
  for (auto& w : watchers) {
    while (!w->Done()) std::this_thread::sleep_for(std::chrono::milliseconds(1));
  }
  return (missing == 0 && registered == n) ? 0 : 1;
}

}  // namespace

namespace {

int Run(int argc, char** argv) {
  absl::ParseCommandLine(argc, argv);
  Env env;
  if (const std::string file = absl::GetFlag(FLAGS_token_file); !file.empty()) {
    std::ifstream in(file);
    std::string token;
    std::getline(in, token);
    env.authorization = "Bearer " + token;
  }
  for (int i = 0; i < absl::GetFlag(FLAGS_channels); ++i) {
    grpc::ChannelArguments args;
    args.SetInt("wmty.bench.channel", i);  // distinct connections
    auto channel = grpc::CreateCustomChannel(absl::GetFlag(FLAGS_grpc), grpc::InsecureChannelCredentials(), args);
    env.writers.push_back(v1::WhatMattersService::NewStub(channel));
    env.feeds.push_back(v1::ChangeFeedService::NewStub(channel));
  }
  const std::string mode = absl::GetFlag(FLAGS_mode);
  if (mode == "subscriptions") return RunSubscriptions(env);
  if (mode == "watch") return RunWatch(env);
  std::fprintf(stderr, "unknown --mode=%s\n", mode.c_str());
  return 2;
}

}  // namespace

// Boost.Beast's synchronous client throws when wmtyd cannot be reached.
int main(int argc, char** argv) {
  try {
    return Run(argc, argv);
  } catch (const std::exception& e) {
    std::fprintf(stderr, "wmty_push_bench: %s\n", e.what());
    return 1;
  }
}
