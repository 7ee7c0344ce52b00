// wmty::client::Client: the C++ client of the What Matters To You service.
//
//   auto client = wmty::client::Client::Connect({.target = "127.0.0.1:50051"});
//   wmty::v1::CreateGoalRequest req;  ...
//   absl::StatusOr<wmty::v1::Goal> goal = (*client)->CreateGoal(req);
//
// Every call has a deadline (ClientOptions::timeout, or the per-call value).
// Every call is safe to retry: reads are idempotent, and for writes the
// client fills an empty request_id with a fresh UUID before the first attempt,
// so a retry carries the same id and the server returns the first result
// instead of writing twice. Calls failing with UNAVAILABLE are retried with
// exponential backoff while the deadline allows (at most max_attempts).
//
// Errors are absl::Status with gRPC's codes; INVALID_ARGUMENT carries the
// server's field violations (wmty::GetFieldViolations in common/status.h).
//
// The change feed: WatchChanges returns a Watcher (watch.h) that streams
// changes and resumes by itself across broken streams and server restarts.
//
// Thread safety: a Client is safe to share between threads.
#ifndef WMTY_CLIENT_CLIENT_H_
#define WMTY_CLIENT_CLIENT_H_

#include <functional>
#include <memory>
#include <optional>
#include <string>

#include <grpcpp/grpcpp.h>

#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "wmty/client/watch.h"
#include "wmty/v1/service.grpc.pb.h"

namespace wmty::client {

struct ClientOptions {
  // host:port of wmtyd.
  std::string target = "127.0.0.1:50051";
  // Deadline of one call, including its retries.
  absl::Duration timeout = absl::Seconds(5);
  // Attempts per call (1 = no retries).
  int max_attempts = 4;
  absl::Duration initial_backoff = absl::Milliseconds(50);
  // Defaults to insecure (loopback, development).
  std::shared_ptr<grpc::ChannelCredentials> credentials;
  // OAuth 2.0 / SMART bearer token sent with every call (`authorization`
  // metadata); empty: none (a server with authentication refuses the call).
  std::string bearer_token;
};

// Retry policy shared by every call; public so it can be tested on its own.
// Runs `attempt` until it succeeds, fails with a code other than UNAVAILABLE,
// `max_attempts` is reached or the next backoff would pass `deadline`.
absl::Status RetryUnavailable(const std::function<absl::Status(absl::Time deadline)>& attempt, absl::Time deadline,
                              int max_attempts, absl::Duration initial_backoff);

// A random RFC 4122 version-4 UUID.
std::string NewRequestId();

class Client {
 public:
  static std::unique_ptr<Client> Connect(const ClientOptions& options);
  // For callers that already have a channel (e.g. with their own interceptors).
  Client(std::shared_ptr<grpc::Channel> channel, const ClientOptions& options);

  using Timeout = std::optional<absl::Duration>;

  absl::StatusOr<v1::WhatMatters> CreateWhatMatters(v1::CreateWhatMattersRequest req, Timeout t = {});
  absl::StatusOr<v1::WhatMatters> GetWhatMatters(const v1::GetResourceRequest& req, Timeout t = {});
  absl::StatusOr<v1::ListWhatMattersResponse> ListWhatMatters(const v1::ListWhatMattersRequest& req, Timeout t = {});
  absl::StatusOr<v1::WhatMatters> UpdateWhatMatters(v1::UpdateWhatMattersRequest req, Timeout t = {});
  absl::StatusOr<v1::WhatMatters> RetractWhatMatters(v1::RetractRequest req, Timeout t = {});
  absl::StatusOr<v1::ListWhatMattersResponse> ListWhatMattersVersions(const v1::ListVersionsRequest& req,
                                                                      Timeout t = {});

  absl::StatusOr<v1::Goal> CreateGoal(v1::CreateGoalRequest req, Timeout t = {});
  absl::StatusOr<v1::Goal> GetGoal(const v1::GetResourceRequest& req, Timeout t = {});
  absl::StatusOr<v1::ListGoalsResponse> ListGoals(const v1::ListGoalsRequest& req, Timeout t = {});
  absl::StatusOr<v1::Goal> UpdateGoal(v1::UpdateGoalRequest req, Timeout t = {});
  absl::StatusOr<v1::Goal> RetractGoal(v1::RetractRequest req, Timeout t = {});
  absl::StatusOr<v1::ListGoalsResponse> ListGoalVersions(const v1::ListVersionsRequest& req, Timeout t = {});

  absl::StatusOr<v1::Preference> CreatePreference(v1::CreatePreferenceRequest req, Timeout t = {});
  absl::StatusOr<v1::Preference> GetPreference(const v1::GetResourceRequest& req, Timeout t = {});
  absl::StatusOr<v1::ListPreferencesResponse> ListPreferences(const v1::ListPreferencesRequest& req, Timeout t = {});
  absl::StatusOr<v1::Preference> UpdatePreference(v1::UpdatePreferenceRequest req, Timeout t = {});
  absl::StatusOr<v1::Preference> RetractPreference(v1::RetractRequest req, Timeout t = {});
  absl::StatusOr<v1::ListPreferencesResponse> ListPreferenceVersions(const v1::ListVersionsRequest& req,
                                                                     Timeout t = {});

  absl::StatusOr<v1::GoalScore> CreateGoalScore(v1::CreateGoalScoreRequest req, Timeout t = {});
  absl::StatusOr<v1::GoalScore> GetGoalScore(const v1::GetResourceRequest& req, Timeout t = {});
  absl::StatusOr<v1::ListGoalScoresResponse> ListGoalScores(const v1::ListGoalScoresRequest& req, Timeout t = {});
  absl::StatusOr<v1::GoalScore> UpdateGoalScore(v1::UpdateGoalScoreRequest req, Timeout t = {});
  absl::StatusOr<v1::GoalScore> RetractGoalScore(v1::RetractRequest req, Timeout t = {});
  absl::StatusOr<v1::ListGoalScoresResponse> ListGoalScoreVersions(const v1::ListVersionsRequest& req, Timeout t = {});

  absl::StatusOr<v1::Priorities> GetPriorities(const v1::GetResourceRequest& req, Timeout t = {});
  absl::StatusOr<v1::Priorities> UpdatePriorities(v1::UpdatePrioritiesRequest req, Timeout t = {});
  absl::StatusOr<v1::ListPrioritiesVersionsResponse> ListPrioritiesVersions(const v1::ListVersionsRequest& req,
                                                                            Timeout t = {});

  // The patient's demographics (written by the hospital's systems).
  absl::StatusOr<v1::Patient> GetPatient(const v1::GetResourceRequest& req, Timeout t = {});
  absl::StatusOr<v1::Patient> UpdatePatient(v1::UpdatePatientRequest req, Timeout t = {});
  absl::StatusOr<v1::ListPatientVersionsResponse> ListPatientVersions(const v1::ListVersionsRequest& req,
                                                                      Timeout t = {});

  absl::StatusOr<v1::PatientSummary> GetPatientSummary(const v1::GetPatientSummaryRequest& req, Timeout t = {});

  // Follows the change feed (wmty.v1.ChangeFeedService) on this client's
  // channel and token, reconnecting and resuming by itself: see watch.h.
  // Nothing is sent before the watcher's first Next. The watcher may outlive
  // the client.
  std::unique_ptr<Watcher> WatchChanges(WatchOptions options);

  v1::WhatMattersService::Stub* stub() { return stub_.get(); }

 private:
  template <class Req, class Resp>
  absl::StatusOr<Resp> Call(grpc::Status (v1::WhatMattersService::Stub::*method)(grpc::ClientContext*, const Req&,
                                                                                 Resp*),
                            const Req& req, Timeout t);

  std::shared_ptr<grpc::Channel> channel_;
  std::unique_ptr<v1::WhatMattersService::Stub> stub_;
  ClientOptions options_;
};

}  // namespace wmty::client

#endif  // WMTY_CLIENT_CLIENT_H_
