#include "wmty/client/client.h"

#include <thread>

#include "absl/random/random.h"
#include "absl/strings/str_format.h"
#include "common/status.h"

namespace wmty::client {

absl::Status RetryUnavailable(const std::function<absl::Status(absl::Time deadline)>& attempt, absl::Time deadline,
                              int max_attempts, absl::Duration initial_backoff) {
  absl::Duration backoff = initial_backoff;
  absl::Status status;
  for (int i = 1;; ++i) {
    status = attempt(deadline);
    if (status.code() != absl::StatusCode::kUnavailable || i >= max_attempts) return status;
    if (absl::Now() + backoff >= deadline) return status;
    absl::SleepFor(backoff);
    backoff = std::min(backoff * 2, absl::Seconds(2));
  }
}

std::string NewRequestId() {
  thread_local absl::BitGen gen;
  uint64_t hi = absl::Uniform<uint64_t>(gen), lo = absl::Uniform<uint64_t>(gen);
  hi = (hi & 0xFFFFFFFFFFFF0FFFULL) | 0x0000000000004000ULL;  // version 4
  lo = (lo & 0x3FFFFFFFFFFFFFFFULL) | 0x8000000000000000ULL;  // RFC 4122 variant
  return absl::StrFormat("%08x-%04x-%04x-%04x-%012x", hi >> 32, (hi >> 16) & 0xFFFF, hi & 0xFFFF, lo >> 48,
                         lo & 0xFFFFFFFFFFFFULL);
}

std::unique_ptr<Client> Client::Connect(const ClientOptions& options) {
  auto creds = options.credentials ? options.credentials : grpc::InsecureChannelCredentials();
  grpc::ChannelArguments args;
  args.SetInt(GRPC_ARG_ENABLE_RETRIES, 0);  // retries are ours (see RetryUnavailable)
  args.SetMaxReceiveMessageSize(64 * 1024 * 1024);
  // gRPC waits up to 2 minutes between connection attempts after a long
  // outage; a watcher (and a chart) should find a restarted server sooner.
  args.SetInt(GRPC_ARG_MAX_RECONNECT_BACKOFF_MS, 10000);
  return std::make_unique<Client>(grpc::CreateCustomChannel(options.target, creds, args), options);
}

Client::Client(std::shared_ptr<grpc::Channel> channel, const ClientOptions& options)
    : channel_(std::move(channel)), stub_(v1::WhatMattersService::NewStub(channel_)), options_(options) {}

std::unique_ptr<Watcher> Client::WatchChanges(WatchOptions options) {
  return std::make_unique<Watcher>(channel_, options_.bearer_token, std::move(options));
}

template <class Req, class Resp>
absl::StatusOr<Resp> Client::Call(grpc::Status (v1::WhatMattersService::Stub::*method)(grpc::ClientContext*, const Req&,
                                                                                       Resp*),
                                  const Req& req, Timeout t) {
  const absl::Time deadline = absl::Now() + t.value_or(options_.timeout);
  // gRPC rounds deadlines up to the next millisecond, so a call whose deadline
  // has already passed could still get through on a fast link: refuse it here.
  if (absl::Now() >= deadline) return absl::DeadlineExceededError("deadline exceeded before the call was sent");
  Resp resp;
  absl::Status status = RetryUnavailable(
      [&](absl::Time d) {
        grpc::ClientContext ctx;
        ctx.set_deadline(absl::ToChronoTime(d));
        if (!options_.bearer_token.empty()) ctx.AddMetadata("authorization", "Bearer " + options_.bearer_token);
        resp.Clear();
        return FromGrpcStatus((stub_.get()->*method)(&ctx, req, &resp));
      },
      deadline, options_.max_attempts, options_.initial_backoff);
  if (!status.ok()) return status;
  return resp;
}

template <class Req>
void EnsureRequestId(Req& req) {
  if (req.request_id().empty()) req.set_request_id(NewRequestId());
}

using Stub = v1::WhatMattersService::Stub;

#define WMTY_CLIENT_READ(Method, Req, Resp)                                \
  absl::StatusOr<v1::Resp> Client::Method(const v1::Req& req, Timeout t) { \
    return Call<v1::Req, v1::Resp>(&Stub::Method, req, t);                 \
  }
#define WMTY_CLIENT_WRITE(Method, Req, Resp)                        \
  absl::StatusOr<v1::Resp> Client::Method(v1::Req req, Timeout t) { \
    EnsureRequestId(req);                                           \
    return Call<v1::Req, v1::Resp>(&Stub::Method, req, t);          \
  }

WMTY_CLIENT_WRITE(CreateWhatMatters, CreateWhatMattersRequest, WhatMatters)
WMTY_CLIENT_READ(GetWhatMatters, GetResourceRequest, WhatMatters)
WMTY_CLIENT_READ(ListWhatMatters, ListWhatMattersRequest, ListWhatMattersResponse)
WMTY_CLIENT_WRITE(UpdateWhatMatters, UpdateWhatMattersRequest, WhatMatters)
WMTY_CLIENT_WRITE(RetractWhatMatters, RetractRequest, WhatMatters)
WMTY_CLIENT_READ(ListWhatMattersVersions, ListVersionsRequest, ListWhatMattersResponse)
WMTY_CLIENT_WRITE(CreateGoal, CreateGoalRequest, Goal)
WMTY_CLIENT_READ(GetGoal, GetResourceRequest, Goal)
WMTY_CLIENT_READ(ListGoals, ListGoalsRequest, ListGoalsResponse)
WMTY_CLIENT_WRITE(UpdateGoal, UpdateGoalRequest, Goal)
WMTY_CLIENT_WRITE(RetractGoal, RetractRequest, Goal)
WMTY_CLIENT_READ(ListGoalVersions, ListVersionsRequest, ListGoalsResponse)
WMTY_CLIENT_WRITE(CreatePreference, CreatePreferenceRequest, Preference)
WMTY_CLIENT_READ(GetPreference, GetResourceRequest, Preference)
WMTY_CLIENT_READ(ListPreferences, ListPreferencesRequest, ListPreferencesResponse)
WMTY_CLIENT_WRITE(UpdatePreference, UpdatePreferenceRequest, Preference)
WMTY_CLIENT_WRITE(RetractPreference, RetractRequest, Preference)
WMTY_CLIENT_READ(ListPreferenceVersions, ListVersionsRequest, ListPreferencesResponse)
WMTY_CLIENT_WRITE(CreateGoalScore, CreateGoalScoreRequest, GoalScore)
WMTY_CLIENT_READ(GetGoalScore, GetResourceRequest, GoalScore)
WMTY_CLIENT_READ(ListGoalScores, ListGoalScoresRequest, ListGoalScoresResponse)
WMTY_CLIENT_WRITE(UpdateGoalScore, UpdateGoalScoreRequest, GoalScore)
WMTY_CLIENT_WRITE(RetractGoalScore, RetractRequest, GoalScore)
WMTY_CLIENT_READ(ListGoalScoreVersions, ListVersionsRequest, ListGoalScoresResponse)
WMTY_CLIENT_READ(GetPriorities, GetResourceRequest, Priorities)
WMTY_CLIENT_WRITE(UpdatePriorities, UpdatePrioritiesRequest, Priorities)
WMTY_CLIENT_READ(ListPrioritiesVersions, ListVersionsRequest, ListPrioritiesVersionsResponse)
WMTY_CLIENT_READ(GetPatient, GetResourceRequest, Patient)
WMTY_CLIENT_WRITE(UpdatePatient, UpdatePatientRequest, Patient)
WMTY_CLIENT_READ(ListPatientVersions, ListVersionsRequest, ListPatientVersionsResponse)
WMTY_CLIENT_READ(GetPatientSummary, GetPatientSummaryRequest, PatientSummary)

}  // namespace wmty::client
