#include "grpc/grpc_service.h"

#include <chrono>
#include <iterator>
#include <optional>
#include <type_traits>
#include <utility>

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/time/time.h"
#include "auth/scopes.h"
#include "common/admission.h"
#include "common/log.h"
#include "common/status.h"
#include "common/text.h"
#include "domain/audit_outcome.h"
#include "domain/fhir_types.h"
#include "domain/names.h"
#include "grpc/call_auth.h"
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
                                S::WithRawCallbackMethod_ListPreferenceVersions<
                                    S::WithRawCallbackMethod_CreateGoalScore<S::WithRawCallbackMethod_GetGoalScore<
                                        S::WithRawCallbackMethod_ListGoalScores<S::WithRawCallbackMethod_UpdateGoalScore<
                                            S::WithRawCallbackMethod_RetractGoalScore<
                                                S::WithRawCallbackMethod_ListGoalScoreVersions<
                                                    S::WithRawCallbackMethod_GetPriorities<
                                                        S::WithRawCallbackMethod_UpdatePriorities<
                                                            S::WithRawCallbackMethod_ListPrioritiesVersions<
                                                                S::WithRawCallbackMethod_GetPatient<
                                                                    S::WithRawCallbackMethod_UpdatePatient<
                                                                        S::WithRawCallbackMethod_ListPatientVersions<
                                                                            S::WithRawCallbackMethod_GetPatientSummary<
                                                                                S::Service>>>>>>>>>>>>>>>>>>>>>>>>>>>>>>>;

CallContext ContextOf(const grpc::CallbackServerContext* ctx) {
  CallContext out;
  const auto deadline = ctx->deadline();
  if (deadline < std::chrono::system_clock::time_point::max() - std::chrono::hours(24 * 365)) {
    out.deadline = absl::FromChrono(deadline);
  }
  return out;
}

// How long a caller refused for overload should wait (RetryInfo).
constexpr absl::Duration kOverloadRetryDelay = absl::Seconds(1);

void Finish(grpc::ServerUnaryReactor* reactor, const absl::Status& status) {
  if (status.code() == absl::StatusCode::kResourceExhausted && !RetryDelayOf(status).has_value()) {
    // The store's full commit queue, or our own limit: tell the caller when.
    return reactor->Finish(ToGrpcStatus(WithRetryDelay(status, kOverloadRetryDelay)));
  }
  switch (status.code()) {
    case absl::StatusCode::kInternal:
    case absl::StatusCode::kDataLoss:
    case absl::StatusCode::kUnknown:
      // Messages of these codes come from storage, never from request text.
      log::Error("request failed",
                 {{"code", absl::StatusCodeToString(status.code())}, {"error", std::string(status.message())}});
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
// An answer the domain serialized already. The slice refers to the bytes
// (no copy) and holds them until gRPC has sent them.
void FinishWith(grpc::ServerUnaryReactor* reactor, const absl::StatusOr<std::shared_ptr<const std::string>>& result,
                grpc::ByteBuffer* out) {
  if (!result.ok()) return Finish(reactor, result.status());
  auto* held = new std::shared_ptr<const std::string>(*result);
  grpc::Slice slice(
      const_cast<char*>((*held)->data()), (*held)->size(),
      [](void* p) { delete static_cast<std::shared_ptr<const std::string>*>(p); }, held);
  grpc::ByteBuffer buffer(&slice, 1);
  out->Swap(&buffer);
  reactor->Finish(grpc::Status::OK);
}

// ---------------------------------------------------------------- authorization
//
// Order for every call: authenticate (UNAUTHENTICATED before anything else is
// looked at), parse, authorize against the patient the request names, then
// the domain core. The SMART scope model of the FHIR face guards each RPC:
//   WhatMatters / Preference / GoalScore -> Observation, Goal -> Goal,
//   Priorities -> List, Patient -> Patient; Create c, Get / List*Versions r,
//   List s, Update u (UpdatePatient too, also when it creates, as a FHIR PUT),
//   Retract d; GetPatientSummary needs r on Goal, Observation and List.
// A patient/ scope bound to another patient: NOT_FOUND for Get and
// List*Versions (so ids do not leak), PERMISSION_DENIED otherwise. Page tokens
// are bound by the domain to their query (parent or name included), so a
// token can never page another patient's data past this check.

// What an RPC needs. `type` empty means the patient summary (r on the three).
struct Access {
  absl::string_view method;  // for logs
  absl::string_view type;    // FHIR resource type
  auth::Permission permission;
  bool hide_other_patient;  // NOT_FOUND instead of PERMISSION_DENIED
  absl::string_view label;  // the domain's label, for the NOT_FOUND message
};

// The name a request is about: a parent ("patients/{p}") or a resource name.
struct Target {
  absl::string_view text;
  absl::string_view field;
  bool is_parent;
};

Target TargetOf(const v1::GetResourceRequest& r) { return {r.name(), "name", false}; }
Target TargetOf(const v1::RetractRequest& r) { return {r.name(), "name", false}; }
Target TargetOf(const v1::ListVersionsRequest& r) { return {r.name(), "name", false}; }
Target TargetOf(const v1::GetPatientSummaryRequest& r) { return {r.parent(), "parent", true}; }
Target TargetOf(const v1::CreateWhatMattersRequest& r) { return {r.parent(), "parent", true}; }
Target TargetOf(const v1::CreateGoalRequest& r) { return {r.parent(), "parent", true}; }
Target TargetOf(const v1::CreatePreferenceRequest& r) { return {r.parent(), "parent", true}; }
Target TargetOf(const v1::CreateGoalScoreRequest& r) { return {r.parent(), "parent", true}; }
Target TargetOf(const v1::ListWhatMattersRequest& r) { return {r.parent(), "parent", true}; }
Target TargetOf(const v1::ListGoalsRequest& r) { return {r.parent(), "parent", true}; }
Target TargetOf(const v1::ListPreferencesRequest& r) { return {r.parent(), "parent", true}; }
Target TargetOf(const v1::ListGoalScoresRequest& r) { return {r.parent(), "parent", true}; }
Target TargetOf(const v1::UpdateWhatMattersRequest& r) { return {r.what_matters().name(), "what_matters.name", false}; }
Target TargetOf(const v1::UpdateGoalRequest& r) { return {r.goal().name(), "goal.name", false}; }
Target TargetOf(const v1::UpdatePreferenceRequest& r) { return {r.preference().name(), "preference.name", false}; }
Target TargetOf(const v1::UpdateGoalScoreRequest& r) { return {r.goal_score().name(), "goal_score.name", false}; }
Target TargetOf(const v1::UpdatePrioritiesRequest& r) { return {r.priorities().name(), "priorities.name", false}; }
Target TargetOf(const v1::UpdatePatientRequest& r) { return {r.patient().name(), "patient.name", false}; }

char PermissionLetter(auth::Permission p) {
  switch (p) {
    case auth::kCreate:
      return 'c';
    case auth::kRead:
      return 'r';
    case auth::kUpdate:
      return 'u';
    case auth::kDelete:
      return 'd';
    case auth::kSearch:
      return 's';
  }
  return '?';
}

auth::Decision Decide(const auth::Principal& principal, const Access& access, absl::string_view patient_id) {
  if (!access.type.empty()) return auth::Authorize(principal, access.type, access.permission, patient_id);
  // The summary: every one of the three, the weakest answer wins.
  auth::Decision out = auth::Decision::kAllow;
  for (absl::string_view type : domain::kChartTypes) {
    const auth::Decision d = auth::Authorize(principal, type, auth::kRead, patient_id);
    if (d == auth::Decision::kInsufficientScope) return d;
    if (d == auth::Decision::kOtherPatient) out = d;
  }
  return out;
}

// The patient (and, for a resource name, the id) a request is about, parsed
// once for both the authorization check and the audit record.
struct Subject {
  absl::StatusOr<std::string> patient;
  std::string resource_id;
};

Subject SubjectOf(const Target& target) {
  if (target.is_parent) return {domain::ParseParent(target.text, target.field), ""};
  auto name = domain::ParseName(target.text, target.field);
  if (!name.ok()) return {name.status(), ""};
  return {std::move(name->patient_id), std::move(name->id)};
}

// OK if `principal` may make this call.
absl::Status Check(const auth::Principal& principal, const Access& access, const Target& target,
                   const absl::StatusOr<std::string>& patient) {
  if (!patient.ok()) {
    // A malformed name reaches no data. When the scopes would allow the call
    // for any patient, the domain answers (with every violation, as without
    // auth); otherwise the parse error does. Either way INVALID_ARGUMENT.
    if (Decide(principal, access, "") == auth::Decision::kAllow) return absl::OkStatus();
    return patient.status();
  }
  switch (Decide(principal, access, *patient)) {
    case auth::Decision::kAllow:
      return absl::OkStatus();
    case auth::Decision::kInsufficientScope:
      if (access.type.empty()) {
        return absl::PermissionDeniedError("insufficient scope: needs read (r) on Goal, Observation and List");
      }
      return absl::PermissionDeniedError(absl::StrCat("insufficient scope: needs ", access.type, ".",
                                                      std::string(1, PermissionLetter(access.permission))));
    case auth::Decision::kOtherPatient:
      if (access.hide_other_patient) {
        // Exactly the domain's not-found answer, so ids do not leak.
        return absl::NotFoundError(domain::NotFoundMessage(access.label, target.text));
      }
      return absl::PermissionDeniedError("the token's patient context does not cover this patient");
  }
  return absl::PermissionDeniedError("not allowed");
}

// The audit record of one call, filled in as the call proceeds.
storage::AuditRecord StartAudit(const grpc::CallbackServerContext& ctx, const Access& access) {
  storage::AuditRecord a;
  a.set_source("grpc");
  const bool summary = access.type.empty();
  a.set_resource_type(summary ? "Patient" : std::string(access.type));
  switch (access.permission) {
    case auth::kCreate:
      a.set_interaction("create");
      a.set_action("C");
      break;
    case auth::kRead:
      a.set_interaction(summary ? "summary" : "read");
      a.set_action("R");
      break;
    case auth::kSearch:
      a.set_interaction("search");
      a.set_action("E");
      break;
    case auth::kUpdate:
      a.set_interaction("update");
      a.set_action("U");
      break;
    case auth::kDelete:
      a.set_interaction("delete");
      a.set_action("D");
      break;
  }
  a.set_remote(ctx.peer());
  return a;
}

void LogRefusal(const Access& access, const absl::Status& status) {
  // Method and code only: never the token, the name or the reason.
  log::Info("request refused",
            {{"method", std::string(access.method)}, {"code", absl::StatusCodeToString(status.code())}});
}

class WhatMattersServiceImpl final : public RawService {
 public:
  WhatMattersServiceImpl(PatientRecords* core, std::shared_ptr<const auth::TokenVerifier> verifier, int max_inflight)
      : core_(core),
        verifier_(std::move(verifier)),
        max_inflight_(max_inflight),
        admission_(max_inflight, "grpc overloaded: refusing with RESOURCE_EXHAUSTED") {}

  // A place under the in-flight limit, or nullopt (with the reactor finished
  // RESOURCE_EXHAUSTED) when there is none. Checked before anything else:
  // refusing must stay cheap when overloaded.
  std::optional<common::Admission::Slot> Enter(const Access& access, grpc::ServerUnaryReactor* reactor) {
    std::optional<common::Admission::Slot> slot = admission_.TryAdmit("method", access.method);
    if (!slot.has_value()) {
      Finish(reactor, absl::ResourceExhaustedError(
                          absl::StrCat("the server has ", max_inflight_, " calls in progress; retry later")));
    }
    return slot;
  }

  // Authenticates, parses and authorizes; false (with the reactor finished)
  // if the call must not go on. `principal` receives the caller (unset when
  // authentication is disabled).
  template <class Req>
  bool Admit(grpc::CallbackServerContext* ctx, grpc::ServerUnaryReactor* reactor, const Access& access,
             const grpc::ByteBuffer* in, Req* req, storage::AuditRecord* audit,
             std::optional<auth::Principal>* principal) {
    if (verifier_ != nullptr) {
      absl::StatusOr<auth::Principal> authenticated = Authenticate(*ctx);
      if (!authenticated.ok()) {
        LogRefusal(access, authenticated.status());
        Refuse(reactor, authenticated.status(), audit);
        return false;
      }
      audit->set_agent(authenticated->subject);
      audit->set_client_id(authenticated->client_id);
      principal->emplace(*std::move(authenticated));
    }
    if (auto s = ParseRawRequest(*in, req); !s.ok()) {
      Refuse(reactor, s, audit);
      return false;
    }
    const Target target = TargetOf(*req);
    const Subject subject = SubjectOf(target);
    if (subject.patient.ok()) {
      audit->set_patient_id(*subject.patient);
      audit->set_resource_id(subject.resource_id);
    }
    if (principal->has_value()) {
      if (auto s = Check(**principal, access, target, subject.patient); !s.ok()) {
        LogRefusal(access, s);
        Refuse(reactor, s, audit);
        return false;
      }
    }
    return true;
  }

  void Refuse(grpc::ServerUnaryReactor* reactor, const absl::Status& s, storage::AuditRecord* audit) {
    RecordAudit(core_, audit, s);
    Finish(reactor, s);
  }

  static void RecordAudit(PatientRecords* core, storage::AuditRecord* audit, const absl::Status& s) {
    audit->set_outcome(domain::AuditOutcomeOf(s.code()));
    audit->set_outcome_detail(absl::StatusCodeToString(s.code()));
    core->Audit(std::move(*audit));
  }

  // Resp: a message, or std::shared_ptr<const std::string> for an answer the
  // domain serialized.
  template <class Req, class Resp>
  grpc::ServerUnaryReactor* Read(grpc::CallbackServerContext* ctx, const grpc::ByteBuffer* in, grpc::ByteBuffer* out,
                                 const Access& access,
                                 absl::StatusOr<Resp> (PatientRecords::*method)(const Req&, const CallContext&)) {
    auto* reactor = ctx->DefaultReactor();
    std::optional<common::Admission::Slot> slot = Enter(access, reactor);
    if (!slot.has_value()) return reactor;
    Req req;
    storage::AuditRecord audit = StartAudit(*ctx, access);
    std::optional<auth::Principal> principal;
    if (!Admit(ctx, reactor, access, in, &req, &audit, &principal)) return reactor;
    auto result = (core_->*method)(req, ContextOf(ctx));
    RecordAudit(core_, &audit, result.status());
    FinishWith(reactor, result, out);
    return reactor;
  }

  template <class Req, class Resp>
  grpc::ServerUnaryReactor* Write(grpc::CallbackServerContext* ctx, const grpc::ByteBuffer* in, grpc::ByteBuffer* out,
                                  const Access& access,
                                  void (PatientRecords::*method)(const Req&, const CallContext&,
                                                                 domain::WriteDone<Resp>)) {
    auto* reactor = ctx->DefaultReactor();
    std::optional<common::Admission::Slot> slot = Enter(access, reactor);
    if (!slot.has_value()) return reactor;
    Req req;
    storage::AuditRecord audit = StartAudit(*ctx, access);
    std::optional<auth::Principal> principal;
    if (!Admit(ctx, reactor, access, in, &req, &audit, &principal)) return reactor;
    // The caller records the write (domain/recorder.h); the domain reads it
    // only before the method returns.
    CallContext call = ContextOf(ctx);
    if (principal.has_value()) call.principal = &*principal;
    // Finishes on the store's completion thread once the change is durable or
    // refused. The answer is the stored resource's bytes (a serialized Resp),
    // sent without parsing and serializing them again.
    (core_->*method)(req, call,
                     [core = core_, reactor, out, audit = std::move(audit),
                      slot = std::move(*slot)](absl::StatusOr<storage::Record> written) mutable {
                       slot.Release();
                       // A create learns its id only now (Priorities have no id of their own).
                       if (written.ok() && audit.resource_id().empty() && written->kind() != storage::PRIORITIES) {
                         audit.set_resource_id(written->id());
                       }
                       RecordAudit(core, &audit, written.status());
                       if (!written.ok()) return Finish(reactor, written.status());
                       FinishWith(reactor,
                                  absl::StatusOr<std::shared_ptr<const std::string>>(
                                      std::make_shared<const std::string>(std::move(*written->mutable_resource()))),
                                  out);
                     });
    return reactor;
  }

// Type, Perm, Hide, Label: the Access the method needs (see above).
#define WMTY_READ(Method, Req, Resp, Type, Perm, Hide, Label)                                    \
  grpc::ServerUnaryReactor* Method(grpc::CallbackServerContext* ctx, const grpc::ByteBuffer* in, \
                                   grpc::ByteBuffer* out) override {                             \
    static constexpr Access kAccess{#Method, Type, Perm, Hide, Label};                           \
    return Read<v1::Req, v1::Resp>(ctx, in, out, kAccess, &PatientRecords::Method);              \
  }
#define WMTY_WRITE(Method, Req, Resp, Type, Perm, Label)                                         \
  grpc::ServerUnaryReactor* Method(grpc::CallbackServerContext* ctx, const grpc::ByteBuffer* in, \
                                   grpc::ByteBuffer* out) override {                             \
    static constexpr Access kAccess{#Method, Type, Perm, false, Label};                          \
    return Write<v1::Req, v1::Resp>(ctx, in, out, kAccess, &PatientRecords::Method);             \
  }

  WMTY_WRITE(CreateWhatMatters, CreateWhatMattersRequest, WhatMatters, "Observation", auth::kCreate,
             "whatMatters entry")
  WMTY_READ(GetWhatMatters, GetResourceRequest, WhatMatters, "Observation", auth::kRead, true, "whatMatters entry")
  WMTY_READ(ListWhatMatters, ListWhatMattersRequest, ListWhatMattersResponse, "Observation", auth::kSearch, false,
            "whatMatters entry")
  WMTY_WRITE(UpdateWhatMatters, UpdateWhatMattersRequest, WhatMatters, "Observation", auth::kUpdate,
             "whatMatters entry")
  WMTY_WRITE(RetractWhatMatters, RetractRequest, WhatMatters, "Observation", auth::kDelete, "whatMatters entry")
  WMTY_READ(ListWhatMattersVersions, ListVersionsRequest, ListWhatMattersResponse, "Observation", auth::kRead, true,
            "whatMatters entry")

  WMTY_WRITE(CreateGoal, CreateGoalRequest, Goal, "Goal", auth::kCreate, "goal")
  WMTY_READ(GetGoal, GetResourceRequest, Goal, "Goal", auth::kRead, true, "goal")
  WMTY_READ(ListGoals, ListGoalsRequest, ListGoalsResponse, "Goal", auth::kSearch, false, "goal")
  WMTY_WRITE(UpdateGoal, UpdateGoalRequest, Goal, "Goal", auth::kUpdate, "goal")
  WMTY_WRITE(RetractGoal, RetractRequest, Goal, "Goal", auth::kDelete, "goal")
  WMTY_READ(ListGoalVersions, ListVersionsRequest, ListGoalsResponse, "Goal", auth::kRead, true, "goal")

  WMTY_WRITE(CreatePreference, CreatePreferenceRequest, Preference, "Observation", auth::kCreate, "preference")
  WMTY_READ(GetPreference, GetResourceRequest, Preference, "Observation", auth::kRead, true, "preference")
  WMTY_READ(ListPreferences, ListPreferencesRequest, ListPreferencesResponse, "Observation", auth::kSearch, false,
            "preference")
  WMTY_WRITE(UpdatePreference, UpdatePreferenceRequest, Preference, "Observation", auth::kUpdate, "preference")
  WMTY_WRITE(RetractPreference, RetractRequest, Preference, "Observation", auth::kDelete, "preference")
  WMTY_READ(ListPreferenceVersions, ListVersionsRequest, ListPreferencesResponse, "Observation", auth::kRead, true,
            "preference")

  WMTY_WRITE(CreateGoalScore, CreateGoalScoreRequest, GoalScore, "Observation", auth::kCreate, "goal score")
  WMTY_READ(GetGoalScore, GetResourceRequest, GoalScore, "Observation", auth::kRead, true, "goal score")
  WMTY_READ(ListGoalScores, ListGoalScoresRequest, ListGoalScoresResponse, "Observation", auth::kSearch, false,
            "goal score")
  WMTY_WRITE(UpdateGoalScore, UpdateGoalScoreRequest, GoalScore, "Observation", auth::kUpdate, "goal score")
  WMTY_WRITE(RetractGoalScore, RetractRequest, GoalScore, "Observation", auth::kDelete, "goal score")
  WMTY_READ(ListGoalScoreVersions, ListVersionsRequest, ListGoalScoresResponse, "Observation", auth::kRead, true,
            "goal score")

  WMTY_READ(GetPriorities, GetResourceRequest, Priorities, "List", auth::kRead, true, "priorities")
  WMTY_WRITE(UpdatePriorities, UpdatePrioritiesRequest, Priorities, "List", auth::kUpdate, "priorities")
  WMTY_READ(ListPrioritiesVersions, ListVersionsRequest, ListPrioritiesVersionsResponse, "List", auth::kRead, true,
            "priorities")

  WMTY_READ(GetPatient, GetResourceRequest, Patient, "Patient", auth::kRead, true, "patient")
  WMTY_READ(ListPatientVersions, ListVersionsRequest, ListPatientVersionsResponse, "Patient", auth::kRead, true,
            "patient")
  WMTY_WRITE(UpdatePatient, UpdatePatientRequest, Patient, "Patient", auth::kUpdate, "patient")

  // The chart-open path: the domain assembles the serialized summary from the
  // stored bytes (PatientRecords::GetPatientSummarySerialized).
  grpc::ServerUnaryReactor* GetPatientSummary(grpc::CallbackServerContext* ctx, const grpc::ByteBuffer* in,
                                              grpc::ByteBuffer* out) override {
    static constexpr Access kAccess{"GetPatientSummary", "", auth::kRead, false, ""};
    return Read<v1::GetPatientSummaryRequest, std::shared_ptr<const std::string>>(
        ctx, in, out, kAccess, &PatientRecords::GetPatientSummarySerialized);
  }

#undef WMTY_READ
#undef WMTY_WRITE

 private:
  absl::StatusOr<auth::Principal> Authenticate(const grpc::CallbackServerContext& ctx) const {
    return AuthenticateCall(ctx, *verifier_);
  }

  PatientRecords* const core_;
  const std::shared_ptr<const auth::TokenVerifier> verifier_;  // null: auth disabled
  const int max_inflight_;                                     // 0: no limit
  common::Admission admission_;                                // calls in progress, under max_inflight_
};

}  // namespace

std::unique_ptr<grpc::Service> NewWhatMattersService(PatientRecords* core,
                                                     std::shared_ptr<const auth::TokenVerifier> verifier,
                                                     int max_inflight) {
  return std::make_unique<WhatMattersServiceImpl>(core, std::move(verifier), max_inflight);
}

}  // namespace wmty::grpc_api
