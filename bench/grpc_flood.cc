// grpc_flood: keeps far more CreateGoal calls outstanding against a running
// wmtyd than its limits allow, for bench/overload.sh.
//
//   grpc_flood --target=127.0.0.1:50051 --concurrency=4000 --channels=8 --seconds=20
//
// One thread drives `concurrency` asynchronous calls spread over `channels`
// separate connections; each finished call is counted by status code (with
// its latency) and replaced by a new one until `seconds` have passed. Prints
// one line per code: `code=<NAME> calls=<n> p50_ms=<x> p99_ms=<y> max_ms=<z>`.
// Exit 1 if any call ended DEADLINE_EXCEEDED (a call that hung rather than
// being answered or refused) or no call succeeded.
#include <algorithm>
#include <cstdio>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include <grpcpp/grpcpp.h>

#include "absl/flags/flag.h"
#include "absl/flags/parse.h"
#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "absl/time/time.h"
#include "wmty/v1/service.grpc.pb.h"

ABSL_FLAG(std::string, target, "127.0.0.1:50051", "wmtyd gRPC address");
ABSL_FLAG(int, concurrency, 4000, "Calls kept outstanding");
ABSL_FLAG(int, channels, 8, "Separate connections the calls are spread over");
ABSL_FLAG(int, seconds, 20, "How long to keep the flood up");
ABSL_FLAG(absl::Duration, call_timeout, absl::Seconds(30), "Deadline of each call");

namespace {

struct Call {
  grpc::ClientContext ctx;
  wmty::v1::Goal response;
  grpc::Status status;
  std::unique_ptr<grpc::ClientAsyncResponseReader<wmty::v1::Goal>> reader;
  absl::Time started;
};

wmty::v1::CreateGoalRequest Request(int n) {
  wmty::v1::CreateGoalRequest req;
  req.set_parent(absl::StrCat("patients/flood-", n % 64));
  auto* g = req.mutable_goal();
  g->set_description("Walk to the end of the garden without resting");
  g->set_lifecycle_status(wmty::v1::GOAL_ACTIVE);
  g->set_achievement_status(wmty::v1::IN_PROGRESS);
  g->set_priority(wmty::v1::HIGH_PRIORITY);
  g->add_categories(wmty::v1::PERSONAL_HEALTH_GOAL);
  g->set_start_date("2026-11-01");
  g->set_target_date("2027-06-15");
  auto* p = g->mutable_provenance();
  p->mutable_recorded_by()->set_practitioner_id("rn-bench");
  p->mutable_said_by()->set_kind(wmty::v1::Speaker::PATIENT);
  p->set_channel(wmty::v1::BEDSIDE);
  return req;
}

double Percentile(std::vector<double>& v, double q) {
  if (v.empty()) return 0;
  const size_t i = std::min(v.size() - 1, static_cast<size_t>(q * static_cast<double>(v.size())));
  std::nth_element(v.begin(), v.begin() + static_cast<std::ptrdiff_t>(i), v.end());
  return v[i];
}

}  // namespace

int main(int argc, char** argv) {
  absl::ParseCommandLine(argc, argv);
  const int concurrency = std::max(1, absl::GetFlag(FLAGS_concurrency));
  const int channel_count = std::max(1, absl::GetFlag(FLAGS_channels));
  std::vector<std::unique_ptr<wmty::v1::WhatMattersService::Stub>> stubs;
  for (int i = 0; i < channel_count; ++i) {
    grpc::ChannelArguments args;
    args.SetInt(GRPC_ARG_USE_LOCAL_SUBCHANNEL_POOL, 1);  // one connection per channel
    args.SetInt("flood.channel", i);                     // and channels that do not share one
    stubs.push_back(wmty::v1::WhatMattersService::NewStub(
        grpc::CreateCustomChannel(absl::GetFlag(FLAGS_target), grpc::InsecureChannelCredentials(), args)));
  }
  grpc::CompletionQueue cq;
  int sent = 0;
  auto start_call = [&] {
    auto* call = new Call;
    call->started = absl::Now();
    call->ctx.set_deadline(absl::ToChronoTime(call->started + absl::GetFlag(FLAGS_call_timeout)));
    call->reader = stubs[sent % channel_count]->AsyncCreateGoal(&call->ctx, Request(sent), &cq);
    call->reader->Finish(&call->response, &call->status, call);
    ++sent;
  };
  for (int i = 0; i < concurrency; ++i) start_call();

  const absl::Time end = absl::Now() + absl::Seconds(absl::GetFlag(FLAGS_seconds));
  std::map<int, std::vector<double>> latency_ms;  // by grpc status code
  int outstanding = concurrency;
  void* tag;
  bool ok;
  while (outstanding > 0 && cq.Next(&tag, &ok)) {
    auto* call = static_cast<Call*>(tag);
    latency_ms[call->status.error_code()].push_back(absl::ToDoubleMilliseconds(absl::Now() - call->started));
    delete call;
    --outstanding;
    if (absl::Now() < end) {
      start_call();
      ++outstanding;
    }
  }
  cq.Shutdown();
  while (cq.Next(&tag, &ok)) {
  }

  for (auto& [code, ms] : latency_ms) {
    const std::string name = absl::StatusCodeToString(static_cast<absl::StatusCode>(code));
    std::printf("code=%s calls=%zu p50_ms=%.1f p99_ms=%.1f max_ms=%.1f\n", name.c_str(), ms.size(), Percentile(ms, 0.5),
                Percentile(ms, 0.99), *std::max_element(ms.begin(), ms.end()));
  }
  const bool hung = latency_ms.count(grpc::StatusCode::DEADLINE_EXCEEDED) > 0;
  const bool none_ok = latency_ms.count(grpc::StatusCode::OK) == 0;
  return hung || none_ok ? 1 : 0;
}
