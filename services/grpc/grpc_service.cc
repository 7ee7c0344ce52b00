#include "grpc/grpc_service.h"

#include <chrono>

#include "absl/time/time.h"
#include "common/log.h"
#include "common/status.h"
#include "common/text.h"
#include "wmty/v1/service.grpc.pb.h"

namespace wmty::grpc_api {
namespace {

using domain::CallContext;
using domain::PatientRecords;
using S = v1::WhatMattersService;

// Every method raw (see header), composed from the generated mixins.
using RawService = S::WithRawCallbackMethod_CreateWhatMatters<S::WithRawCallbackMethod_GetWhatMatters<
    S::WithRawCallbackMethod_ListWhatMatters<S::WithRawCallbackMethod_UpdateWhatMatters<
        S::WithRawCallbackMethod_RetractWhatMatters<S::WithRawCallbackMethod_ListWhatMattersVersions<
            S::WithRawCallbackMethod_CreateGoal<S::WithRawCallbackMethod_GetGoal<S::WithRawCallbackMethod_ListGoals<
                S::WithRawCallbackMethod_UpdateGoal<S::WithRawCallbackMethod_RetractGoal<
                    S::WithRawCallbackMethod_ListGoalVersions<S::WithRawCallbackMethod_CreatePreference<
                        S::WithRawCallbackMethod_GetPreference<S::WithRawCallbackMethod_ListPreferences<
                            S::WithRawCallbackMethod_UpdatePreference<S::WithRawCallbackMethod_RetractPreference<
                                S::WithRawCallbackMethod_ListPreferenceVersions<S::WithRawCallbackMethod_CreateGoalScore<
                                S::WithRawCallbackMethod_GetGoalScore<S::WithRawCallbackMethod_ListGoalScores<
                                S::WithRawCallbackMethod_UpdateGoalScore<S::WithRawCallbackMethod_RetractGoalScore<
                                S::WithRawCallbackMethod_ListGoalScoreVersions<S::WithRawCallbackMethod_GetPriorities<
                                    S::WithRawCallbackMethod_UpdatePriorities<
                                        S::WithRawCallbackMethod_ListPrioritiesVersions<
                                            S::WithRawCallbackMethod_GetPatientSummary<S::Service>>>>>>>>>>>>>>>>>>>>>>>>>>>>;

absl::Status ParseRequest(const grpc::ByteBuffer& in, google::protobuf::Message* request) {
  grpc::Slice slice;
  if (!in.DumpToSingleSlice(&slice).ok()) return absl::InvalidArgumentError("request could not be read");
  const char* data = reinterpret_cast<const char*>(slice.begin());
  if (request->ParseFromArray(data, static_cast<int>(slice.size()))) return absl::OkStatus();
  auto field = FindInvalidUtf8Field(*request->GetDescriptor(), absl::string_view(data, slice.size()));
  if (field.has_value()) return InvalidField(*field, "not valid UTF-8");
  return absl::InvalidArgumentError("request is not a valid protobuf message");
}

CallContext ContextOf(const grpc::CallbackServerContext* ctx) {
  CallContext out;
  const auto deadline = ctx->deadline();
  if (deadline < std::chrono::system_clock::time_point::max() - std::chrono::hours(24 * 365)) {
    out.deadline = absl::FromChrono(deadline);
  }
  return out;
}

void Finish(grpc::ServerUnaryReactor* reactor, const absl::Status& status) {
  switch (status.code()) {
    case absl::StatusCode::kInternal:
    case absl::StatusCode::kDataLoss:
    case absl::StatusCode::kUnknown:
      // Messages of these codes come from storage, never from request text.
      log::Error("request failed", {{"code", absl::StatusCodeToString(status.code())},
                                    {"error", std::string(status.message())}});
      break;
    default:
      break;
  }
  reactor->Finish(ToGrpcStatus(status));
}

template <class Resp>
void FinishWith(grpc::ServerUnaryReactor* reactor, const absl::StatusOr<Resp>& result, grpc::ByteBuffer* out) {
  if (!result.ok()) return Finish(reactor, result.status());
  bool own = false;
  auto s = grpc::SerializationTraits<Resp>::Serialize(*result, out, &own);
  reactor->Finish(s);
}

class WhatMattersServiceImpl final : public RawService {
 public:
  explicit WhatMattersServiceImpl(PatientRecords* core) : core_(core) {}

  template <class Req, class Resp>
  grpc::ServerUnaryReactor* Read(grpc::CallbackServerContext* ctx, const grpc::ByteBuffer* in, grpc::ByteBuffer* out,
                                 absl::StatusOr<Resp> (PatientRecords::*method)(const Req&, const CallContext&)) {
    auto* reactor = ctx->DefaultReactor();
    Req req;
    if (auto s = ParseRequest(*in, &req); !s.ok()) {
      Finish(reactor, s);
      return reactor;
    }
    FinishWith(reactor, (core_->*method)(req, ContextOf(ctx)), out);
    return reactor;
  }

  template <class Req, class Resp>
  grpc::ServerUnaryReactor* Write(grpc::CallbackServerContext* ctx, const grpc::ByteBuffer* in, grpc::ByteBuffer* out,
                                  void (PatientRecords::*method)(const Req&, const CallContext&, domain::Done<Resp>)) {
    auto* reactor = ctx->DefaultReactor();
    Req req;
    if (auto s = ParseRequest(*in, &req); !s.ok()) {
      Finish(reactor, s);
      return reactor;
    }
    // Finishes on the commit thread once the change is durable or refused.
    (core_->*method)(req, ContextOf(ctx),
                     [reactor, out](absl::StatusOr<Resp> result) { FinishWith(reactor, result, out); });
    return reactor;
  }

#define WMTY_READ(Method, Req, Resp)                                                                      \
  grpc::ServerUnaryReactor* Method(grpc::CallbackServerContext* ctx, const grpc::ByteBuffer* in,          \
                                   grpc::ByteBuffer* out) override {                                      \
    return Read<v1::Req, v1::Resp>(ctx, in, out, &PatientRecords::Method);                                \
  }
#define WMTY_WRITE(Method, Req, Resp)                                                                     \
  grpc::ServerUnaryReactor* Method(grpc::CallbackServerContext* ctx, const grpc::ByteBuffer* in,          \
                                   grpc::ByteBuffer* out) override {                                      \
    return Write<v1::Req, v1::Resp>(ctx, in, out, &PatientRecords::Method);                               \
  }

  WMTY_WRITE(CreateWhatMatters, CreateWhatMattersRequest, WhatMatters)
  WMTY_READ(GetWhatMatters, GetResourceRequest, WhatMatters)
  WMTY_READ(ListWhatMatters, ListWhatMattersRequest, ListWhatMattersResponse)
  WMTY_WRITE(UpdateWhatMatters, UpdateWhatMattersRequest, WhatMatters)
  WMTY_WRITE(RetractWhatMatters, RetractRequest, WhatMatters)
  WMTY_READ(ListWhatMattersVersions, ListVersionsRequest, ListWhatMattersResponse)

  WMTY_WRITE(CreateGoal, CreateGoalRequest, Goal)
  WMTY_READ(GetGoal, GetResourceRequest, Goal)
  WMTY_READ(ListGoals, ListGoalsRequest, ListGoalsResponse)
  WMTY_WRITE(UpdateGoal, UpdateGoalRequest, Goal)
  WMTY_WRITE(RetractGoal, RetractRequest, Goal)
  WMTY_READ(ListGoalVersions, ListVersionsRequest, ListGoalsResponse)

  WMTY_WRITE(CreatePreference, CreatePreferenceRequest, Preference)
  WMTY_READ(GetPreference, GetResourceRequest, Preference)
  WMTY_READ(ListPreferences, ListPreferencesRequest, ListPreferencesResponse)
  WMTY_WRITE(UpdatePreference, UpdatePreferenceRequest, Preference)
  WMTY_WRITE(RetractPreference, RetractRequest, Preference)
  WMTY_READ(ListPreferenceVersions, ListVersionsRequest, ListPreferencesResponse)

  WMTY_WRITE(CreateGoalScore, CreateGoalScoreRequest, GoalScore)
  WMTY_READ(GetGoalScore, GetResourceRequest, GoalScore)
  WMTY_READ(ListGoalScores, ListGoalScoresRequest, ListGoalScoresResponse)
  WMTY_WRITE(UpdateGoalScore, UpdateGoalScoreRequest, GoalScore)
  WMTY_WRITE(RetractGoalScore, RetractRequest, GoalScore)
  WMTY_READ(ListGoalScoreVersions, ListVersionsRequest, ListGoalScoresResponse)

  WMTY_READ(GetPriorities, GetResourceRequest, Priorities)
  WMTY_WRITE(UpdatePriorities, UpdatePrioritiesRequest, Priorities)
  WMTY_READ(ListPrioritiesVersions, ListVersionsRequest, ListPrioritiesVersionsResponse)

  WMTY_READ(GetPatientSummary, GetPatientSummaryRequest, PatientSummary)

#undef WMTY_READ
#undef WMTY_WRITE

 private:
  PatientRecords* const core_;
};

}  // namespace

std::unique_ptr<grpc::Service> NewWhatMattersService(PatientRecords* core,
                                                     std::shared_ptr<const auth::TokenVerifier> verifier) {
  (void)verifier;  // enforcement: issue 4, in progress
  return std::make_unique<WhatMattersServiceImpl>(core);
}

}  // namespace wmty::grpc_api
