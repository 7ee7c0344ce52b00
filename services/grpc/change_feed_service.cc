// wmty.v1.ChangeFeedService (change_feed_service.h): the watch's
// authorization and audit, and the reactor that streams a ChangeWatch.
#include "grpc/change_feed_service.h"

#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/synchronization/mutex.h"
#include "common/log.h"
#include "common/status.h"
#include "common/text.h"
#include "domain/audit_outcome.h"
#include "domain/fhir_types.h"
#include "grpc/call_auth.h"
#include "wmty/v1/change_feed.grpc.pb.h"

namespace wmty::grpc_api {
namespace {

using domain::ChangeWatch;
using domain::WatchSpec;
using domain::WatchStep;
using RawService = v1::ChangeFeedService::WithRawCallbackMethod_WatchChanges<v1::ChangeFeedService::Service>;

// ---------------------------------------------------------------- authorization

bool ReadsEveryPatient(const auth::Principal& principal, const std::vector<storage::Kind>& kinds) {
  for (storage::Kind kind : kinds) {
    if (auth::Authorize(principal, domain::FhirTypeOf(kind), auth::kRead, "") == auth::Decision::kAllow) return true;
  }
  return false;
}

absl::Status Refusal(auth::Decision decision, absl::string_view needs, const WatchSpec& spec) {
  if (decision == auth::Decision::kOtherPatient) {
    if (spec.patient_id.empty()) {
      return absl::PermissionDeniedError("the token's scopes are bound to one patient: watch with its parent");
    }
    return absl::PermissionDeniedError("the token's patient context does not cover this patient");
  }
  return absl::PermissionDeniedError(absl::StrCat("insufficient scope: needs ", needs));
}

// Narrows `spec` to what `principal` may watch (see the header), or refuses.
absl::Status AuthorizeWatch(const auth::Principal& principal, WatchSpec* spec) {
  spec->expires = principal.expires;
  const std::vector<storage::Kind> asked = spec->kinds.empty() ? domain::WatchableKinds() : spec->kinds;
  if (spec->patient_id.empty() && principal.patient.has_value() && !ReadsEveryPatient(principal, asked)) {
    spec->patient_id = *principal.patient;  // a patient/ token: its own patient
  }
  std::vector<storage::Kind> allowed;
  std::optional<auth::Decision> refused;
  for (storage::Kind kind : asked) {
    const absl::string_view type = domain::FhirTypeOf(kind);
    const auth::Decision decision = auth::Authorize(principal, type, auth::kRead, spec->patient_id);
    if (decision == auth::Decision::kAllow) {
      allowed.push_back(kind);
    } else if (!spec->kinds.empty()) {
      return Refusal(decision, absl::StrCat(type, ".r"), *spec);  // asked for by name
    } else if (!refused.has_value() || decision == auth::Decision::kOtherPatient) {
      refused = decision;
    }
  }
  if (allowed.empty()) return Refusal(*refused, "read (r) on Goal, Observation, List or Patient", *spec);
  spec->kinds = std::move(allowed);
  if (spec->include_summary) {
    for (absl::string_view type : domain::kChartTypes) {
      const auth::Decision decision = auth::Authorize(principal, type, auth::kRead, spec->patient_id);
      if (decision != auth::Decision::kAllow) {
        return Refusal(decision, "read (r) on Goal, Observation and List (include_summary)", *spec);
      }
    }
  }
  return absl::OkStatus();
}

// ---------------------------------------------------------------- the stream

class WatchReactor final : public grpc::ServerWriteReactor<grpc::ByteBuffer> {
 public:
  WatchReactor(grpc::CallbackServerContext* ctx, domain::ChangeFeed* feed, domain::PatientRecords* core,
               const auth::TokenVerifier* verifier, const grpc::ByteBuffer& request)
      : ctx_(ctx) {
    storage::AuditRecord audit;
    audit.set_source("grpc");
    audit.set_interaction("watch");
    audit.set_action("E");
    audit.set_remote(ctx->peer());
    absl::Status started = Start(feed, verifier, request, &audit);
    audit.set_outcome(domain::AuditOutcomeOf(started.code()));
    audit.set_outcome_detail(absl::StatusCodeToString(started.code()));
    core->Audit(std::move(audit));
    if (!started.ok()) {
      // Method and code only: never the token, the parent or the reason.
      log::Info("request refused", {{"method", "WatchChanges"}, {"code", absl::StatusCodeToString(started.code())}});
      Finish(ToGrpcStatus(started));
      return;
    }
    Pump();
  }

  void OnWriteDone(bool ok) override {
    Watch()->Sent(ok);
    Pump();
  }

  void OnCancel() override {
    std::shared_ptr<ChangeWatch> watch = Watch();
    if (watch == nullptr) return;
    watch->Cancel();
    Pump();
  }

  void OnDone() override {
    if (std::shared_ptr<ChangeWatch> watch = Watch(); watch != nullptr) watch->Close();
    delete this;
  }

 private:
  absl::Status Start(domain::ChangeFeed* feed, const auth::TokenVerifier* verifier, const grpc::ByteBuffer& in,
                     storage::AuditRecord* audit) {
    std::optional<auth::Principal> principal;
    if (verifier != nullptr) {
      absl::StatusOr<auth::Principal> authenticated = AuthenticateCall(*ctx_, *verifier);
      if (!authenticated.ok()) return authenticated.status();
      audit->set_agent(authenticated->subject);
      audit->set_client_id(authenticated->client_id);
      principal.emplace(*std::move(authenticated));
    }
    v1::WatchChangesRequest request;
    if (absl::Status s = ParseRawRequest(in, &request); !s.ok()) return s;
    absl::StatusOr<WatchSpec> spec = domain::ParseWatchRequest(request);
    if (!spec.ok()) return spec.status();
    if (principal.has_value()) {
      if (absl::Status s = AuthorizeWatch(*principal, &*spec); !s.ok()) {
        audit->set_patient_id(spec->patient_id);
        return s;
      }
    }
    if (spec->kinds.empty()) spec->kinds = domain::WatchableKinds();
    audit->set_patient_id(spec->patient_id);
    absl::StatusOr<std::shared_ptr<ChangeWatch>> watch = feed->Watch(*std::move(spec), [this] { Pump(); });
    if (!watch.ok()) return watch.status();
    absl::MutexLock lock(&pump_mu_);
    watch_ = *std::move(watch);
    return absl::OkStatus();
  }

  // Does what the watch asks next. Called after the start, after each write,
  // on cancel and when the feed wakes the watch, from any of those threads:
  // one call at a time does the steps (a call arriving meanwhile makes it go
  // round again), so that a write and the end are never started at once. No
  // lock is held while gRPC is called (a write may complete inline, calling
  // Pump again).
  void Pump() {
    std::shared_ptr<ChangeWatch> watch;
    {
      absl::MutexLock lock(&pump_mu_);
      // The feed may wake (e.g. end, at shutdown) a watch whose start has not
      // finished yet: the start's own Pump comes next.
      if (watch_ == nullptr) return;
      watch = watch_;
      if (pumping_) {
        pump_again_ = true;
        return;
      }
      pumping_ = true;
    }
    for (;;) {
      Step(watch->Next());
      absl::MutexLock lock(&pump_mu_);
      if (!pump_again_) {
        pumping_ = false;
        return;
      }
      pump_again_ = false;
    }
  }

  void Step(WatchStep step) {
    switch (step.action) {
      case WatchStep::kWait:
        return;
      case WatchStep::kSend: {
        bool own = false;
        grpc::ByteBuffer buffer;
        grpc::SerializationTraits<v1::WatchChangesResponse>::Serialize(step.message, &buffer, &own);
        out_.Swap(&buffer);
        StartWrite(&out_);
        return;
      }
      case WatchStep::kEnd:
        Finish(ToGrpcStatus(step.status));
        return;
      case WatchStep::kAbort:
        // The client never read what it was sent, not even the end: drop the
        // stream so that its buffers are freed.
        ctx_->TryCancel();
        return;
    }
  }

  std::shared_ptr<ChangeWatch> Watch() {
    absl::MutexLock lock(&pump_mu_);
    return watch_;
  }

  grpc::CallbackServerContext* const ctx_;
  grpc::ByteBuffer out_;  // the message being written
  absl::Mutex pump_mu_;
  std::shared_ptr<ChangeWatch> watch_ ABSL_GUARDED_BY(pump_mu_);  // null when the start was refused
  bool pumping_ ABSL_GUARDED_BY(pump_mu_) = false;
  bool pump_again_ ABSL_GUARDED_BY(pump_mu_) = false;
};

class ChangeFeedServiceImpl final : public RawService {
 public:
  ChangeFeedServiceImpl(domain::ChangeFeed* feed, domain::PatientRecords* core,
                        std::shared_ptr<const auth::TokenVerifier> verifier)
      : feed_(feed), core_(core), verifier_(std::move(verifier)) {}

  grpc::ServerWriteReactor<grpc::ByteBuffer>* WatchChanges(grpc::CallbackServerContext* ctx,
                                                           const grpc::ByteBuffer* request) override {
    return new WatchReactor(ctx, feed_, core_, verifier_.get(), *request);
  }

 private:
  domain::ChangeFeed* const feed_;
  domain::PatientRecords* const core_;
  const std::shared_ptr<const auth::TokenVerifier> verifier_;  // null: auth disabled
};

}  // namespace

std::unique_ptr<grpc::Service> NewChangeFeedService(domain::ChangeFeed* feed, domain::PatientRecords* core,
                                                    std::shared_ptr<const auth::TokenVerifier> verifier) {
  return std::make_unique<ChangeFeedServiceImpl>(feed, core, std::move(verifier));
}

}  // namespace wmty::grpc_api
