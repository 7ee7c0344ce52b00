// wmty_grpc_load: gRPC load generator of bench/run.sh (issue 7).
//
//   wmty_grpc_load --target=127.0.0.1:50051 --method=summary --mode=closed --concurrency=32 --duration=10s
//   wmty_grpc_load --target=... --method=summary --mode=open --rate=5000 --duration=10s
//   wmty_grpc_load --target=... --method=summary --probe --dump_response=/tmp/summary.bin
//
// Methods (gRPC callback client API, wmty.v1.WhatMattersService):
//   summary      GetPatientSummary of a patient drawn at random from
//                --patients_file (bench-<k> of wmty_datagen: 50 entries each);
//   echo         the same call against grpc_echo_server, which answers every
//                call with one fixed response (the real summary's bytes);
//   create_goal  durable CreateGoal (with a request_id, as wmty::client sends
//                it) for patients p<k>, k < --create_patients, at random.
// Modes:
//   closed  --concurrency calls outstanding: each completion sends the next;
//   open    calls are scheduled at --rate per second (evenly spaced) whatever
//           the answers do; latency is measured from each call's scheduled
//           send time, so a stall shows up in the latency of every call it
//           delayed (no coordinated omission). At most --max_outstanding calls
//           are in flight; the scheduler waits past that, and the wait counts
//           in the latency. --concurrency is ignored.
// Calls are spread over --channels connections. With --token_file each call
// carries `authorization: Bearer <token>` metadata, as wmty::client sends it
// (wmtyd with authentication on). The first --warmup is not recorded. Latency goes into a log-linear histogram (1.6%
// resolution).
//
// Output: a human line on stderr and one machine-readable line on stdout:
//   GRPCLOAD method=.. mode=.. concurrency=.. offered=.. qps=.. ok=.. errors=..
//            p50_us=.. p99_us=.. p999_us=.. max_us=.. response_bytes=..
//            client_cpu_us=.. server_cpu_us=..
// (CPU per call: the CPU this process, and with --server_pid that one,
// used while recording, over the calls completed in that time; -1: not
// measured. On a machine shared by both it says where the cores went.)
// (offered: the rate asked for, 0 in closed mode.) The first few errors are
// printed on stderr. Exit: 0 when no call failed, 1 otherwise, 2 usage.
// --probe: one call; prints its response size (and, with --dump_response,
// saves the serialized response); for summary it also checks the entries
// (--expect_entries, default 50).
#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdio>
#include <fstream>
#include <memory>
#include <mutex>
#include <optional>
#include <random>
#include <string>
#include <thread>
#include <vector>

#include <grpcpp/grpcpp.h>

#include "absl/flags/flag.h"
#include "absl/flags/parse.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/time/clock.h"
#include "absl/time/time.h"
#include "latency_histogram.h"
#include "process_cpu.h"
#include "wmty/v1/service.grpc.pb.h"

ABSL_FLAG(std::string, target, "127.0.0.1:50051", "host:port of wmtyd or grpc_echo_server");
ABSL_FLAG(std::string, method, "summary", "summary | echo | create_goal");
ABSL_FLAG(std::string, mode, "closed", "closed | open");
ABSL_FLAG(int, concurrency, 32, "Closed loop: calls outstanding");
ABSL_FLAG(double, rate, 1000, "Open loop: calls per second");
ABSL_FLAG(int, max_outstanding, 4096, "Open loop: most calls in flight");
ABSL_FLAG(int, channels, 0, "Connections (0: min(concurrency, 32); open loop: 8)");
ABSL_FLAG(absl::Duration, duration, absl::Seconds(10), "How long to record");
ABSL_FLAG(absl::Duration, warmup, absl::Seconds(1), "Calls sent in this first period are not recorded");
ABSL_FLAG(absl::Duration, call_timeout, absl::Seconds(10), "Deadline of each call");
ABSL_FLAG(std::string, patients_file, "", "summary/echo: patient ids, one a line (default: bench-0)");
ABSL_FLAG(int, create_patients, 10000, "create_goal: parents p0 .. p<N-1>");
ABSL_FLAG(std::string, token_file, "",
          "A file holding a bearer token (a JWT): sent on every call as `authorization: Bearer <token>`");
ABSL_FLAG(int, server_pid, 0, "If set: also report the CPU that process (the server) used per call while recording");
ABSL_FLAG(bool, probe, false, "One call, print its response size and exit");
ABSL_FLAG(std::string, dump_response, "", "With --probe: write the serialized response here");
ABSL_FLAG(int, expect_entries, 50, "With --probe --method=summary: entries the summary must have (0: any)");

namespace {

using namespace wmty;
using Clock = std::chrono::steady_clock;

enum class Method { kSummary, kEcho, kCreateGoal };

struct Shared {
  Method method;
  std::vector<std::unique_ptr<v1::WhatMattersService::Stub>> stubs;
  std::vector<std::string> patients;
  int create_patients = 1;
  absl::Duration call_timeout;
  std::string authorization;  // "Bearer <token>", or empty: no metadata
  bench::LatencyHistogram histogram;
  std::atomic<int64_t> ok{0}, errors{0}, outstanding{0}, sent{0};
  std::atomic<int64_t> response_bytes{0};
  Clock::time_point record_from, record_until;
  std::atomic<bool> stop{false};
  std::mutex print_mu;
  int errors_printed = 0;
};

v1::Goal LoadGoal(uint64_t n) {
  v1::Goal g;
  g.set_description(absl::StrCat("Walk to the end of the garden without resting, goal number ", n));
  g.set_lifecycle_status(v1::GOAL_ACTIVE);
  g.set_achievement_status(v1::IN_PROGRESS);
  g.set_priority(v1::HIGH_PRIORITY);
  g.add_categories(v1::PERSONAL_HEALTH_GOAL);
  g.set_start_date("2026-11-01");
  g.set_target_date("2027-03-01");
  auto* p = g.mutable_provenance();
  p->mutable_recorded_by()->set_practitioner_id("rn-bench");
  p->mutable_recorded_by()->set_role("RN");
  p->mutable_said_by()->set_kind(v1::Speaker::PATIENT);
  p->set_channel(v1::BEDSIDE);
  return g;
}

// One call in flight; deletes itself when done and runs `next` (closed loop).
struct Call {
  Shared* shared;
  grpc::ClientContext ctx;
  v1::GetPatientSummaryRequest summary_req;
  v1::PatientSummary summary;
  v1::CreateGoalRequest goal_req;
  v1::Goal goal;
  Clock::time_point scheduled;
  std::function<void()> next;

  void Done(const grpc::Status& status) {
    const Clock::time_point now = Clock::now();
    const bool recorded = scheduled >= shared->record_from && scheduled < shared->record_until;
    if (status.ok()) {
      if (recorded) {
        shared->histogram.Record(std::chrono::duration_cast<std::chrono::nanoseconds>(now - scheduled).count());
        shared->ok.fetch_add(1, std::memory_order_relaxed);
      }
      shared->response_bytes.store(
          static_cast<int64_t>(shared->method == Method::kCreateGoal ? goal.ByteSizeLong() : summary.ByteSizeLong()),
          std::memory_order_relaxed);
    } else {
      shared->errors.fetch_add(1, std::memory_order_relaxed);
      std::lock_guard<std::mutex> lock(shared->print_mu);
      if (++shared->errors_printed <= 5) {
        std::fprintf(stderr, "call failed: %d %s\n", static_cast<int>(status.error_code()),
                     status.error_message().c_str());
      }
    }
    shared->outstanding.fetch_sub(1, std::memory_order_relaxed);
    auto next_call = std::move(next);
    delete this;
    if (next_call) next_call();
  }
};

thread_local std::mt19937_64 tl_rng{std::random_device{}()};

void Send(Shared* s, Clock::time_point scheduled, std::function<void()> next) {
  auto* call = new Call;
  call->shared = s;
  call->scheduled = scheduled;
  call->next = std::move(next);
  call->ctx.set_deadline(std::chrono::system_clock::now() + absl::ToChronoNanoseconds(s->call_timeout));
  if (!s->authorization.empty()) call->ctx.AddMetadata("authorization", s->authorization);
  const uint64_t n = static_cast<uint64_t>(s->sent.fetch_add(1, std::memory_order_relaxed));
  auto* stub = s->stubs[n % s->stubs.size()].get();
  s->outstanding.fetch_add(1, std::memory_order_relaxed);
  if (s->method == Method::kCreateGoal) {
    call->goal_req.set_parent(absl::StrCat("patients/p", tl_rng() % static_cast<uint64_t>(s->create_patients)));
    *call->goal_req.mutable_goal() = LoadGoal(n);
    call->goal_req.set_request_id(absl::StrFormat("%016x%016x", tl_rng(), tl_rng()));
    stub->async()->CreateGoal(&call->ctx, &call->goal_req, &call->goal, [call](grpc::Status st) { call->Done(st); });
  } else {
    call->summary_req.set_parent(absl::StrCat("patients/", s->patients[tl_rng() % s->patients.size()]));
    stub->async()->GetPatientSummary(&call->ctx, &call->summary_req, &call->summary,
                                     [call](grpc::Status st) { call->Done(st); });
  }
}

// Closed loop: each slot sends its next call when the previous one is done.
void ClosedSlot(Shared* s) {
  if (s->stop.load(std::memory_order_relaxed)) return;
  Send(s, Clock::now(), [s] { ClosedSlot(s); });
}

int Probe(Shared* s) {
  grpc::ClientContext ctx;
  ctx.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(10));
  if (!s->authorization.empty()) ctx.AddMetadata("authorization", s->authorization);
  std::string bytes;
  grpc::Status st;
  int entries = -1;
  if (s->method == Method::kCreateGoal) {
    v1::CreateGoalRequest req;
    req.set_parent("patients/p0");
    *req.mutable_goal() = LoadGoal(0);
    v1::Goal goal;
    st = s->stubs[0]->CreateGoal(&ctx, req, &goal);
    bytes = goal.SerializeAsString();
  } else {
    v1::GetPatientSummaryRequest req;
    req.set_parent(absl::StrCat("patients/", s->patients[0]));
    v1::PatientSummary summary;
    st = s->stubs[0]->GetPatientSummary(&ctx, req, &summary);
    bytes = summary.SerializeAsString();
    entries = summary.what_matters_size() + summary.goals_size() + summary.preferences_size();
  }
  if (!st.ok()) {
    std::fprintf(stderr, "probe failed: %d %s\n", static_cast<int>(st.error_code()), st.error_message().c_str());
    return 1;
  }
  if (!absl::GetFlag(FLAGS_dump_response).empty()) {
    std::ofstream out(absl::GetFlag(FLAGS_dump_response), std::ios::binary | std::ios::trunc);
    out << bytes;
  }
  std::printf("PROBE response_bytes=%zu entries=%d\n", bytes.size(), entries);
  const int expect = absl::GetFlag(FLAGS_expect_entries);
  if (s->method == Method::kSummary && expect > 0 && entries != expect) {
    std::fprintf(stderr, "probe: the summary of %s has %d entries, expected %d\n", s->patients[0].c_str(), entries,
                 expect);
    return 1;
  }
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  absl::ParseCommandLine(argc, argv);
  Shared s;
  const std::string method = absl::GetFlag(FLAGS_method);
  if (method == "summary") {
    s.method = Method::kSummary;
  } else if (method == "echo") {
    s.method = Method::kEcho;
  } else if (method == "create_goal") {
    s.method = Method::kCreateGoal;
  } else {
    std::fprintf(stderr, "unknown --method=%s\n", method.c_str());
    return 2;
  }
  const std::string mode = absl::GetFlag(FLAGS_mode);
  if (mode != "closed" && mode != "open") {
    std::fprintf(stderr, "unknown --mode=%s\n", mode.c_str());
    return 2;
  }
  const bool open = mode == "open";
  const int concurrency = std::max(1, absl::GetFlag(FLAGS_concurrency));
  const double rate = absl::GetFlag(FLAGS_rate);
  if (open && rate <= 0) {
    std::fprintf(stderr, "--rate must be > 0 in open mode\n");
    return 2;
  }
  s.call_timeout = absl::GetFlag(FLAGS_call_timeout);
  s.create_patients = std::max(1, absl::GetFlag(FLAGS_create_patients));
  if (!absl::GetFlag(FLAGS_patients_file).empty()) {
    std::ifstream in(absl::GetFlag(FLAGS_patients_file));
    std::string line;
    while (std::getline(in, line)) {
      if (!line.empty()) s.patients.push_back(line);
    }
    if (s.patients.empty()) {
      std::fprintf(stderr, "no patients in %s\n", absl::GetFlag(FLAGS_patients_file).c_str());
      return 2;
    }
  } else {
    s.patients.push_back("bench-0");
  }

  if (!absl::GetFlag(FLAGS_token_file).empty()) {
    std::ifstream in(absl::GetFlag(FLAGS_token_file));
    std::string token;
    in >> token;  // one JWT: no spaces; a trailing newline is dropped
    if (token.empty()) {
      std::fprintf(stderr, "no token in %s\n", absl::GetFlag(FLAGS_token_file).c_str());
      return 2;
    }
    s.authorization = "Bearer " + token;
  }

  int channels = absl::GetFlag(FLAGS_channels);
  if (channels <= 0) channels = open ? 8 : std::min(concurrency, 32);
  for (int i = 0; i < channels; ++i) {
    grpc::ChannelArguments args;
    args.SetInt(GRPC_ARG_USE_LOCAL_SUBCHANNEL_POOL, 1);  // one connection per channel
    args.SetInt("wmty.bench.channel", i);
    args.SetMaxReceiveMessageSize(64 << 20);
    s.stubs.push_back(v1::WhatMattersService::NewStub(
        grpc::CreateCustomChannel(absl::GetFlag(FLAGS_target), grpc::InsecureChannelCredentials(), args)));
  }
  if (absl::GetFlag(FLAGS_probe)) return Probe(&s);

  const auto start = Clock::now();
  s.record_from = start + absl::ToChronoNanoseconds(absl::GetFlag(FLAGS_warmup));
  s.record_until = s.record_from + absl::ToChronoNanoseconds(absl::GetFlag(FLAGS_duration));
  wmty::bench::CpuWindow client_cpu(0, s.record_from, s.record_until);
  const int server_pid = absl::GetFlag(FLAGS_server_pid);
  std::optional<wmty::bench::CpuWindow> server_cpu;
  if (server_pid > 0) server_cpu.emplace(server_pid, s.record_from, s.record_until);

  if (open) {
    // The scheduler: call i is due at start + i / rate.
    const auto interval = std::chrono::duration<double>(1.0 / rate);
    const int max_outstanding = std::max(1, absl::GetFlag(FLAGS_max_outstanding));
    for (int64_t i = 0;; ++i) {
      const auto due = start + std::chrono::duration_cast<Clock::duration>(interval * static_cast<double>(i));
      if (due >= s.record_until) break;
      std::this_thread::sleep_until(due);
      while (s.outstanding.load(std::memory_order_relaxed) >= max_outstanding) {
        std::this_thread::sleep_for(std::chrono::microseconds(50));
      }
      Send(&s, due, nullptr);
    }
  } else {
    for (int i = 0; i < concurrency; ++i) ClosedSlot(&s);
    std::this_thread::sleep_until(s.record_until);
    s.stop.store(true);
  }
  // Let the calls in flight finish (their latency counts if they were sent in time).
  const auto give_up = Clock::now() + absl::ToChronoNanoseconds(s.call_timeout) + std::chrono::seconds(2);
  while (s.outstanding.load() > 0 && Clock::now() < give_up) std::this_thread::sleep_for(std::chrono::milliseconds(5));

  const double window = std::chrono::duration<double>(s.record_until - s.record_from).count();
  const double qps = static_cast<double>(s.ok.load()) / window;
  client_cpu.Join();
  if (server_cpu) server_cpu->Join();
  // CPU per call: each process's CPU while recording over the calls that
  // completed in that time (-1: not measured).
  const double client_cpu_us = client_cpu.MicrosPer(s.ok.load());
  const double server_cpu_us = server_cpu ? server_cpu->MicrosPer(s.ok.load()) : -1;
  auto us = [&](double q) { return static_cast<double>(s.histogram.ValueAt(q)) / 1000.0; };
  std::fprintf(
      stderr, "%s %s%s: %.0f calls/s, %lld ok, %lld errors, p50 %.0f us, p99 %.0f us, p99.9 %.0f us\n", method.c_str(),
      mode.c_str(), open ? absl::StrFormat(" at %.0f/s", rate).c_str() : absl::StrFormat(" x%d", concurrency).c_str(),
      qps, static_cast<long long>(s.ok.load()), static_cast<long long>(s.errors.load()), us(0.5), us(0.99), us(0.999));
  std::printf(
      "GRPCLOAD method=%s mode=%s concurrency=%d offered=%.0f qps=%.1f ok=%lld errors=%lld p50_us=%.0f p99_us=%.0f "
      "p999_us=%.0f max_us=%.0f response_bytes=%lld client_cpu_us=%.1f server_cpu_us=%.1f\n",
      method.c_str(), mode.c_str(), open ? 0 : concurrency, open ? rate : 0.0, qps, static_cast<long long>(s.ok.load()),
      static_cast<long long>(s.errors.load()), us(0.5), us(0.99), us(0.999),
      static_cast<double>(s.histogram.max_nanos()) / 1000.0, static_cast<long long>(s.response_bytes.load()),
      client_cpu_us, server_cpu_us);
  std::fflush(stdout);
  if (s.outstanding.load() > 0) {
    std::fprintf(stderr, "%lld calls still outstanding\n", static_cast<long long>(s.outstanding.load()));
    std::_Exit(1);  // the channels cannot be torn down under live calls
  }
  return s.errors.load() > 0 ? 1 : 0;
}
