// The FHIR face's service core (internal to services/fhir/face/): the
// FhirService class, its state (the domain core, options, render cache,
// in-flight conditional creates, answer pool) and its interactions, each
// group defined in its own file:
//   service.cc       the per-request preamble (Handle) and NewFhirService
//   routing.cc       path and method -> interaction
//   access.cc        authentication, authorization, audit
//   reads.cc         read, vread          history.cc   instance and type history
//   write_input.cc   what a write takes from its request
//   writes.cc        create, update, PUT Patient, delete
//   search_exec.cc   search execution     provenance.cc  Provenance read and search
//   operations.cc    metadata, CodeSystem, $everything
//   audit_events.cc  AuditEvent read and search
//   subscriptions.cc Subscription create, read, vread, update, delete, search, history
//   subscription_operations.cc  Subscription $status and $events
// Threads and ownership: see fhir/fhir_service.h.
#ifndef WMTY_FHIR_FACE_SERVICE_H_
#define WMTY_FHIR_FACE_SERVICE_H_

#include <memory>
#include <optional>
#include <string>
#include <vector>

#include <boost/asio/post.hpp>
#include <boost/asio/thread_pool.hpp>

#include "absl/container/flat_hash_set.h"
#include "absl/functional/any_invocable.h"
#include "absl/functional/function_ref.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/clock.h"
#include "common/thread_name.h"
#include "fhir/face/call.h"
#include "fhir/face/interactions.h"
#include "fhir/fhir_service.h"
#include "fhir/mapping.h"
#include "fhir/notification.h"
#include "fhir/search.h"

namespace wmty::fhir::face {

// Scans check the request's deadline every this many records.
constexpr int kDeadlineCheckEvery = 256;

// A write's answer: the stored version it wrote (or, for a repeated
// X-Request-Id, the one the first request wrote).
using WrittenDone = absl::AnyInvocable<void(absl::StatusOr<Record>)>;

// Who a write is recorded by and for (see FhirService::RecorderOf).
struct WriteAgents {
  v1::Recorder recorded_by;  // empty with authentication: the domain sets the caller
  std::optional<v1::Recorder> on_behalf_of;
};
void SetAgents(const WriteAgents& agents, v1::Provenance* p);
void SetRecorder(AnyResource* resource, const WriteAgents& agents);

// The version an If-Match header names into `version` (nullopt when there
// is none, or "*": any version). False, answered 400, when it is not an ETag
// of this server.
bool IfMatchOf(Call& c, std::optional<int64_t>* version);
// PUT's body names the id of its URL. False, answered 400, otherwise.
bool BodyIdIsUrlId(Call& c, const Document& doc, absl::string_view type, absl::string_view id);

// The one patient a search is confined to ("" when none, or several).
std::string SearchPatient(const SearchSpec& spec);

// One search match: the stored version, and its FHIR form when matching
// had to render it (null otherwise).
struct Hit {
  Record record;
  std::unique_ptr<Document> doc;
};

class FhirService final : public http::Handler {
 public:
  FhirService(PatientRecords* core, FhirServiceOptions options)
      : core_(core), options_(std::move(options)), started_micros_(absl::ToUnixMicros(absl::Now())) {}
  // Runs the answers still queued (nothing else may use this by then).
  ~FhirService() override { answer_pool_.join(); }

  void Handle(http::Request request, http::Respond respond) override;
  http::Response MakeError(http::Status status, const std::string& message, unsigned version, bool keep_alive) override;

 private:
  friend const std::vector<Interaction>& Interactions();

  // Matches the path against Interactions() and dispatches (routing.cc).
  void Route(const CallPtr& c, absl::string_view path);
  // The framework's access steps for `row`, then its handler.
  void Dispatch(const CallPtr& c, const Interaction& row, const RouteArgs& args);
  // The patient the call concerns, once known: audits it as the target and
  // checks the row's permission on the row's type for it. Refused: 403, or
  // `unknown` when the row hides other patients' data. False after replying.
  bool AuthorizePatient(Call& c, absl::string_view patient, absl::string_view id, const RestError* unknown = nullptr);
  // The search parameters: the query, plus a POST _search form body.
  bool SearchParamsOf(Call& c, std::vector<QueryParam>* out);
  void Guarded(const CallPtr& c, absl::FunctionRef<void()> body);

  // Interactions.
  void Metadata(const CallPtr& c);
  void ReadCodeSystem(const CallPtr& c, absl::string_view id);
  void SearchCodeSystem(const CallPtr& c);
  void Read(const CallPtr& c, absl::string_view type, absl::string_view id);
  void VRead(const CallPtr& c, absl::string_view type, absl::string_view id, absl::string_view vid);
  void Create(const CallPtr& c, absl::string_view type);
  void Update(const CallPtr& c, absl::string_view type, absl::string_view id);
  // PUT Patient/<id>: create-or-update of the demographics a feed sends.
  void UpdatePatient(const CallPtr& c, absl::string_view id);
  void Delete(const CallPtr& c, absl::string_view type, absl::string_view id);
  void InstanceHistory(const CallPtr& c, absl::string_view type, absl::string_view id);
  void TypeHistory(const CallPtr& c, absl::string_view type);
  void Search(const CallPtr& c, absl::string_view type, const std::vector<QueryParam>& params);
  void ReadProvenance(const CallPtr& c, absl::string_view id);
  void SearchProvenance(const CallPtr& c, const SearchSpec& spec);
  // Provenance search: where a page of versions starts, what it found.
  struct ProvenancePage {
    std::string query_hash;
    int64_t after_index = -1;  // of the first criterion's targets
    int64_t after_version = 0;
    std::vector<std::pair<int64_t, Record>> found;  // (target index, version)
    int64_t total = 0;
  };
  absl::Status FindProvenanceVersions(Call& c, const SearchSpec& spec, const std::vector<const Criterion*>& targets,
                                      ProvenancePage* page);
  void ReplyProvenanceBundle(Call& c, const SearchSpec& spec, ProvenancePage& page);
  // Does any scope grant `p` on one of the chart types? 403 (false) otherwise.
  bool MayOnSomeChartType(Call& c, auth::Permission p);
  void Everything(const CallPtr& c, absl::string_view patient_id);
  void ReadAuditEvent(const CallPtr& c, absl::string_view id);
  // Subscription/[id]/$status and $events (subscription_operations.cc).
  void SubscriptionStatus(const CallPtr& c, absl::string_view id);
  void SubscriptionEventsQuery(const CallPtr& c, absl::string_view id);
  bool SubscriptionSubjectOf(Call& c, absl::string_view id, NotificationSubject* out);
  void SearchAuditEvent(const CallPtr& c);
  // The audit trail needs a scope naming AuditEvent itself (wildcard "*"
  // scopes do not reach it); patient/ scopes only their patient's events.
  auth::Decision AuditDecision(const Call& c, auth::Permission p, absl::string_view patient) const;

  // Subscription (subscriptions.cc): the rules are domain::Subscriptions';
  // these check the Subscription scope, translate FHIR and answer.
  void CreateSubscription(const CallPtr& c);
  void ReadSubscription(const CallPtr& c, absl::string_view id, absl::string_view vid);
  void UpdateSubscription(const CallPtr& c, absl::string_view id);
  void DeleteSubscription(const CallPtr& c, absl::string_view id);
  void SearchSubscription(const CallPtr& c);
  void SubscriptionHistory(const CallPtr& c, absl::string_view id);
  // The Subscription scope check and the domain's presence. False after replying.
  bool SubscriptionsServed(Call& c, auth::Permission p);
  void RespondSubscription(Call& c, http::Status status, const Record& record, absl::string_view what);

  // Authorization (see "Authorization" in docs/fhir-rest.md). Each returns
  // false after replying.
  // 401 unless a valid bearer token came (no-op when auth is disabled).
  bool Authenticate(Call& c);
  // May the caller do `p` on `type` for `patient`? Refused: 403, or
  // `not_found` (when given) if only another patient's data is the problem,
  // so a read cannot tell "another patient's" from "unknown".
  bool Authorize(Call& c, absl::string_view type, auth::Permission p, absl::string_view patient,
                 const RestError* not_found = nullptr);
  // Before anything is loaded: does any scope grant `p` on `type` at all
  // (for the token's patient, or for everyone)? 403 otherwise.
  bool AuthorizeType(Call& c, absl::string_view type, auth::Permission p);
  bool MayAtAll(const Call& c, absl::string_view type, auth::Permission p) const;

  // Helpers.
  absl::StatusOr<std::optional<Record>> FindCurrent(absl::string_view type, absl::string_view id);
  absl::StatusOr<std::optional<Record>> FindVersion(const Record& current, int64_t version);
  bool ParseBody(Call& c, absl::string_view type, Document* doc);
  bool RequestIdOf(Call& c, std::string* out);
  // Who records the write and for whom (the recorder rule,
  // domain/recorder.h). With authentication the domain records the caller,
  // and X-Provenance's author agent, when sent, is on_behalf_of; without
  // (development) the author, else "unattributed", is the recorder.
  // `reason` (DELETE only; null elsewhere) receives X-Provenance's
  // reason[0].text. False (answered 400) if X-Provenance is bad.
  bool RecorderOf(Call& c, WriteAgents* out, std::string* reason = nullptr);
  bool ResolvePriorityItems(Call& c, const std::string& patient, const std::vector<std::string>& refs,
                            v1::Priorities* priorities);
  void DoCreate(const CallPtr& c, std::string type, Incoming incoming, std::string request_id,
                std::shared_ptr<void> hold);
  // Answers a write with the version it produced (not whatever is current by then).
  void RespondWritten(const CallPtr& c, absl::string_view type, const absl::StatusOr<Record>& written,
                      http::Status success);
  // Body per Prefer: the resource (default), nothing, or an OperationOutcome.
  void RespondResource(Call& c, http::Status status, absl::string_view type, const Record& record, Headers headers,
                       absl::string_view what);

  // Search machinery.
  // The domain's record scan (deadline, retracted, position) over the
  // candidates of `spec` of one kind: its patients and _id, or the whole kind.
  absl::Status ScanCandidates(const SearchSpec& spec, Kind kind, const std::string& after_patient,
                              const std::string& after_id, const CallContext& ctx,
                              absl::FunctionRef<bool(const Record&)> visit);
  // Does `record` match? Renders into `scratch` when the criteria need the
  // FHIR form (then *scratch holds it).
  absl::StatusOr<bool> MatchRecord(const SearchSpec& spec, const Record& record, std::unique_ptr<Document>* scratch);
  // The records of `kind` after the position that `wanted` lets through
  // and the spec matches, as Hits (rendered when the criteria needed the
  // FHIR form), in key order, until `visit` returns false.
  absl::Status ScanMatches(const SearchSpec& spec, Kind kind, const std::string& after_patient,
                           const std::string& after_id, const CallContext& ctx,
                           absl::FunctionRef<bool(const Record&)> wanted, absl::FunctionRef<bool(Hit)> visit);
  // Matches of the spec in (patient, id) order after the position, at most `limit`.
  absl::Status FindInKeyOrder(const SearchSpec& spec, const std::string& after_patient, const std::string& after_id,
                              size_t limit, const CallContext& ctx, std::vector<Hit>* out);
  absl::Status CountMatches(const SearchSpec& spec, const CallContext& ctx, int64_t* total);
  absl::Status FindSorted(const SearchSpec& spec, const std::optional<storage::PageCursor>& cursor, size_t limit,
                          const CallContext& ctx, std::vector<Hit>* out);
  absl::StatusOr<uint64_t> LastSequence();
  absl::Status AddHistoryEntry(Call& c, const Record& record, Value* entries, Alloc& a);

  PatientRecords* const core_;
  const FhirServiceOptions options_;
  // Rendered versions for reads and searches (64 MiB).
  RenderCache render_cache_{size_t{64} << 20};
  const int64_t started_micros_;
  // Conditional creates in progress, by (type, criteria): a second one with
  // the same criteria waits for none, it is refused (409) until the first
  // has committed, so two cannot both see "no match" and both create.
  absl::Mutex inflight_mu_;
  absl::flat_hash_set<std::string> inflight_ ABSL_GUARDED_BY(inflight_mu_);
  // Answers to writes. The store runs every commit callback on its one
  // completion thread; answering a FHIR write renders the version it wrote
  // (and Prefer may ask for more), which on that one thread queued every
  // write's answer behind the others'. The callbacks hand the answer to
  // these threads instead.
  // Last member: destroyed (joined, after running what is queued) first.
  boost::asio::thread_pool answer_pool_{2};

  // Wraps a write's callback so that it runs on answer_pool_.
  WrittenDone OnAnswerPool(WrittenDone done) {
    return [this, done = std::move(done)](absl::StatusOr<Record> written) mutable {
      boost::asio::post(answer_pool_, [done = std::move(done), written = std::move(written)]() mutable {
        thread_local const bool named = (NameThisThread("wmty-answer"), true);
        (void)named;
        done(std::move(written));
      });
    };
  }
};

}  // namespace wmty::fhir::face

#endif  // WMTY_FHIR_FACE_SERVICE_H_
