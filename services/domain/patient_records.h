// PatientRecords: the domain core. Every API face (gRPC, FHIR) is a thin
// adapter over this class, so validation, versioning, idempotency, paging and
// ordering behave identically everywhere.
//
// Requests and results are the wmty.v1 messages (proto/wmty/v1). Reads run on
// the caller's thread against a consistent snapshot and return directly.
// Writes are validated on the caller's thread and then handed to the store's
// commit thread; `done` runs on the store's completion thread once the change
// is durable (or refused) and must not block.
//
// Errors (absl::Status, codes as in proto/wmty/v1/service.proto):
//   INVALID_ARGUMENT with field violations; NOT_FOUND; ABORTED (stale etag);
//   ALREADY_EXISTS (request_id reused for another request, or, from Create
//   only, ResourceExistsError: see domain/resources.h, IsResourceExists tells
//   them apart); FAILED_PRECONDITION (change to a retracted resource);
//   DEADLINE_EXCEEDED; UNAVAILABLE; DATA_LOSS.
// A refused request writes nothing.
//
// Every write rule is here, once: a face only translates its protocol into
// these calls (the per-type methods for the gRPC face, the generic Create /
// Update / Retract and the stored-record reads for the FHIR face).
//
// Thread safety: all methods are safe to call concurrently. The store must
// outlive this object.
#ifndef WMTY_DOMAIN_PATIENT_RECORDS_H_
#define WMTY_DOMAIN_PATIENT_RECORDS_H_

#include <atomic>
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <type_traits>
#include <utility>
#include <vector>

#include "absl/functional/any_invocable.h"
#include "absl/functional/function_ref.h"
#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "auth/scopes.h"
#include "common/lru_cache.h"
#include "domain/page_token.h"
#include "domain/resources.h"
#include "storage/store.h"
#include "wmty/v1/service.pb.h"

namespace wmty::domain {

// Per-call information every face provides.
struct CallContext {
  // Reads stop and writes are not committed past this time (DEADLINE_EXCEEDED).
  absl::Time deadline = absl::InfiniteFuture();
  // FHIR face only: the FHIR elements of the written resource that the
  // wmty.v1 model does not have (a JSON object), stored with the new version.
  // When unset, a write keeps those of the previous version.
  std::optional<std::string> fhir_extra_json;
  // The authenticated caller, who records every write (the recorder rule,
  // domain/recorder.h); null when authentication is disabled. Read only
  // while the call is validated, before the write method returns.
  const auth::Principal* principal = nullptr;
};

template <class T>
using Done = absl::AnyInvocable<void(absl::StatusOr<T>)>;

// The resource of a stored version; DATA_LOSS if its bytes do not parse as R.
template <class R>
absl::StatusOr<R> FromRecord(const storage::Record& record) {
  R r;
  if (!r.ParseFromString(record.resource())) return absl::DataLossError("stored resource does not parse");
  return r;
}

// The callback of a write of resource type R. The faces answer with different
// forms of the written version: the gRPC face with the resource message (a
// callable taking absl::StatusOr<R>), the FHIR face with the stored version
// (a callable taking absl::StatusOr<storage::Record>: it renders the record
// with its FHIR-only elements, and would otherwise read back what was just
// written). Constructed implicitly from either kind of callable, so callers
// pass their lambda or Done<...> as before.
template <class R>
class WriteDone {
 public:
  template <class F, class = std::enable_if_t<!std::is_same_v<std::decay_t<F>, WriteDone>>>
  WriteDone(F&& f) {  // NOLINT(google-explicit-constructor): callers pass lambdas
    if constexpr (std::is_invocable_v<F&, absl::StatusOr<storage::Record>>) {
      as_record_ = std::forward<F>(f);
    } else {
      static_assert(std::is_invocable_v<F&, absl::StatusOr<R>>,
                    "a write's callback takes absl::StatusOr<R> or absl::StatusOr<storage::Record>");
      as_resource_ = std::forward<F>(f);
    }
  }
  WriteDone(WriteDone&&) noexcept = default;
  WriteDone& operator=(WriteDone&&) noexcept = default;

  // Runs the callback once with the written version (or the error); a stored
  // resource that does not parse into R is DATA_LOSS.
  void operator()(absl::StatusOr<storage::Record> written) {
    if (as_record_) return as_record_(std::move(written));
    if (!written.ok()) return as_resource_(std::move(written).status());
    as_resource_(FromRecord<R>(*written));
  }

 private:
  Done<storage::Record> as_record_;
  Done<R> as_resource_;
};

// A scan of stored current versions (ScanRecords), in (patient, id) order.
struct RecordQuery {
  storage::Kind kind = storage::KIND_UNSPECIFIED;
  // Only these patients (sorted ascending); unset: every patient (a scan of
  // the whole kind: use only where a patient cannot be given).
  std::optional<std::vector<std::string>> patients;
  // Only these ids (point lookups instead of a scan), when set.
  std::optional<std::vector<std::string>> ids;
  // Visits only records strictly after this (patient, id) position.
  std::string after_patient;
  std::string after_id;
  // Retracted (entered in error) versions are skipped unless asked for.
  bool include_retracted = false;
  // Stops after visiting this many records (0: no limit).
  size_t limit = 0;
};

// A patient's chart: the current, not retracted resources the summary shows
// (and, when asked, the Patient and the goal scores), read from one snapshot.
// Chart order, within each list: resources named in the priorities first, in
// rank order; then the rest, most recently changed first (ties: newest id
// first). Each list holds at most kChartMaxPerKind entries: the first in id
// (creation) order, then sorted.
struct PatientChart {
  std::optional<storage::Record> patient;     // ChartOptions::with_patient, if stored
  std::optional<storage::Record> priorities;  // unset before they are first set
  std::vector<storage::Record> what_matters;
  std::vector<storage::Record> goals;
  std::vector<storage::Record> preferences;
  std::vector<storage::Record> goal_scores;  // ChartOptions::with_goal_scores only
  bool truncated = false;                    // a list was cut at kChartMaxPerKind
};
inline constexpr size_t kChartMaxPerKind = 1000;
struct ChartOptions {
  bool with_patient = false;      // the demographics too ($everything)
  bool with_goal_scores = false;  // the goal scores too ($everything)
};

struct PatientRecordsOptions {
  std::function<absl::Time()> clock = [] { return absl::Now(); };
  // Assembled summaries kept in memory (bytes; 0: none), each until its
  // patient's next write: a chart opened again is answered without reading
  // the store (see GetPatientSummarySerialized).
  size_t summary_cache_bytes = size_t{64} << 20;
};

// What the summary cache has done since start, for /metrics.
struct SummaryCacheStats {
  uint64_t hits = 0;
  uint64_t misses = 0;  // assembled from the store (absent, or the patient has been written since)
  size_t bytes = 0;     // kept now
};

class PatientRecords {
 public:
  // Loads (or creates) the page-token key from the store.
  static absl::StatusOr<std::unique_ptr<PatientRecords>> Create(storage::Store* store,
                                                                PatientRecordsOptions options = {});

  void CreateWhatMatters(const v1::CreateWhatMattersRequest& req, const CallContext& ctx,
                         WriteDone<v1::WhatMatters> done);
  absl::StatusOr<v1::WhatMatters> GetWhatMatters(const v1::GetResourceRequest& req, const CallContext& ctx);
  absl::StatusOr<v1::ListWhatMattersResponse> ListWhatMatters(const v1::ListWhatMattersRequest& req,
                                                              const CallContext& ctx);
  void UpdateWhatMatters(const v1::UpdateWhatMattersRequest& req, const CallContext& ctx,
                         WriteDone<v1::WhatMatters> done);
  void RetractWhatMatters(const v1::RetractRequest& req, const CallContext& ctx, WriteDone<v1::WhatMatters> done);
  absl::StatusOr<v1::ListWhatMattersResponse> ListWhatMattersVersions(const v1::ListVersionsRequest& req,
                                                                      const CallContext& ctx);

  void CreateGoal(const v1::CreateGoalRequest& req, const CallContext& ctx, WriteDone<v1::Goal> done);
  absl::StatusOr<v1::Goal> GetGoal(const v1::GetResourceRequest& req, const CallContext& ctx);
  absl::StatusOr<v1::ListGoalsResponse> ListGoals(const v1::ListGoalsRequest& req, const CallContext& ctx);
  void UpdateGoal(const v1::UpdateGoalRequest& req, const CallContext& ctx, WriteDone<v1::Goal> done);
  void RetractGoal(const v1::RetractRequest& req, const CallContext& ctx, WriteDone<v1::Goal> done);
  absl::StatusOr<v1::ListGoalsResponse> ListGoalVersions(const v1::ListVersionsRequest& req, const CallContext& ctx);

  void CreatePreference(const v1::CreatePreferenceRequest& req, const CallContext& ctx, WriteDone<v1::Preference> done);
  absl::StatusOr<v1::Preference> GetPreference(const v1::GetResourceRequest& req, const CallContext& ctx);
  absl::StatusOr<v1::ListPreferencesResponse> ListPreferences(const v1::ListPreferencesRequest& req,
                                                              const CallContext& ctx);
  void UpdatePreference(const v1::UpdatePreferenceRequest& req, const CallContext& ctx, WriteDone<v1::Preference> done);
  void RetractPreference(const v1::RetractRequest& req, const CallContext& ctx, WriteDone<v1::Preference> done);
  absl::StatusOr<v1::ListPreferencesResponse> ListPreferenceVersions(const v1::ListVersionsRequest& req,
                                                                     const CallContext& ctx);

  void CreateGoalScore(const v1::CreateGoalScoreRequest& req, const CallContext& ctx, WriteDone<v1::GoalScore> done);
  absl::StatusOr<v1::GoalScore> GetGoalScore(const v1::GetResourceRequest& req, const CallContext& ctx);
  absl::StatusOr<v1::ListGoalScoresResponse> ListGoalScores(const v1::ListGoalScoresRequest& req,
                                                            const CallContext& ctx);
  void UpdateGoalScore(const v1::UpdateGoalScoreRequest& req, const CallContext& ctx, WriteDone<v1::GoalScore> done);
  void RetractGoalScore(const v1::RetractRequest& req, const CallContext& ctx, WriteDone<v1::GoalScore> done);
  absl::StatusOr<v1::ListGoalScoresResponse> ListGoalScoreVersions(const v1::ListVersionsRequest& req,
                                                                   const CallContext& ctx);

  // Before the first update a patient's priorities exist empty, version 0.
  absl::StatusOr<v1::Priorities> GetPriorities(const v1::GetResourceRequest& req, const CallContext& ctx);
  void UpdatePriorities(const v1::UpdatePrioritiesRequest& req, const CallContext& ctx, WriteDone<v1::Priorities> done);
  absl::StatusOr<v1::ListPrioritiesVersionsResponse> ListPrioritiesVersions(const v1::ListVersionsRequest& req,
                                                                            const CallContext& ctx);

  // The patient's demographics (name patients/{patient}), written by the
  // hospital's systems. UpdatePatient replaces them whole; with allow_missing
  // it creates them (AIP-134 upsert); an etag, when given, must be current.
  // The Patient is never retracted (a feed corrects it with a new version).
  absl::StatusOr<v1::Patient> GetPatient(const v1::GetResourceRequest& req, const CallContext& ctx);
  void UpdatePatient(const v1::UpdatePatientRequest& req, const CallContext& ctx, WriteDone<v1::Patient> done);
  absl::StatusOr<v1::ListPatientVersionsResponse> ListPatientVersions(const v1::ListVersionsRequest& req,
                                                                      const CallContext& ctx);

  // The patient summary serialized (a wmty.v1.PatientSummary in wire
  // format): the chart (ReadChart, in chart order; empty priorities before
  // they are first set), assembled from the stored resource bytes without
  // parsing them:
  // the chart-open path of the gRPC face, where parsing 50 entries only to
  // serialize them again was most of the work. Shared with the summary cache
  // (immutable): a face can send the bytes without copying them.
  absl::StatusOr<std::shared_ptr<const std::string>> GetPatientSummarySerialized(
      const v1::GetPatientSummaryRequest& req, const CallContext& ctx);
  // The same summary as a message (parsed from GetPatientSummarySerialized;
  // DATA_LOSS if a stored resource does not parse), for in-process callers.
  absl::StatusOr<v1::PatientSummary> GetPatientSummary(const v1::GetPatientSummaryRequest& req, const CallContext& ctx);

  // ---- Generic writes, for a face that writes many resource types (FHIR).
  // The same rules as the per-type methods (validation, recorder, links,
  // idempotency); `done` gets the stored version written (or, for a repeated
  // request_id with the same request, the one the first request wrote), on
  // the store's completion thread.

  // Creates `resource` for `patient_id` with a new id. The priorities (one
  // per patient) are created by their first write; if they have been set
  // already: ResourceExistsError (checked on the commit thread).
  void Create(AnyResource resource, absl::string_view patient_id, std::string request_id, const CallContext& ctx,
              Done<storage::Record> done);
  // Replaces resource `id` of `patient_id` whole (no field mask) if its
  // current version meets `precondition` (checked on the commit thread,
  // atomically with the write: no retries needed). Errors: NOT_FOUND;
  // FAILED_PRECONDITION (retracted); ABORTED (etag stale). The priorities
  // (`id` ignored) exist empty before they are first set: AnyVersion sets them.
  void Update(AnyResource resource, absl::string_view patient_id, absl::string_view id,
              const Precondition& precondition, std::string request_id, const CallContext& ctx,
              Done<storage::Record> done);
  // Retracts the resource `req.name` names, of any retractable kind (an
  // empty req.etag is Precondition::AnyVersion). UNIMPLEMENTED for the
  // priorities and the Patient, which are never retracted.
  void Retract(const v1::RetractRequest& req, const CallContext& ctx, Done<storage::Record> done);

  // ---- Stored records, for the FHIR face (storage::Record: the resource
  // bytes plus version, sequence, retracted flag and fhir_extra_json).

  // The current version of the resource of `kind` with this id (ids are
  // unique per kind; for PRIORITIES the id is the patient id), or nullopt.
  absl::StatusOr<std::optional<storage::Record>> FindCurrentById(storage::Kind kind, absl::string_view id);
  // Versions of one resource after `after_version`, oldest first.
  absl::Status ScanStoredVersions(storage::Kind kind, absl::string_view patient_id, absl::string_view id,
                                  int64_t after_version, absl::FunctionRef<bool(const storage::Record&)> visit);
  // Current versions (retracted included) of `kind`: of one patient in id
  // order, or, without a patient, of every patient in (patient, id) order
  // (a scan of the whole kind: use only where a patient cannot be given; for
  // PATIENT it reads only the Patient records, through the id index).
  // Starts after (after_patient, after_id).
  absl::Status ScanStoredCurrent(storage::Kind kind, std::optional<std::string> patient_id,
                                 absl::string_view after_patient, absl::string_view after_id,
                                 absl::FunctionRef<bool(const storage::Record&)> visit);
  // Visits current versions matching `query` in (patient, id) order until
  // `visit` returns false, `query.limit` is reached or the store runs out.
  // The rules every scan shares live here: retracted versions are skipped
  // unless asked for, and the deadline is checked every few records
  // (DEADLINE_EXCEEDED; records visited before it stay visited).
  absl::Status ScanRecords(const RecordQuery& query, const CallContext& ctx,
                           absl::FunctionRef<bool(const storage::Record&)> visit);
  // The patient's chart (see PatientChart), from one snapshot: what
  // GetPatientSummary and FHIR $everything both show. INVALID_ARGUMENT for a
  // malformed patient id; DEADLINE_EXCEEDED; DATA_LOSS.
  absl::StatusOr<PatientChart> ReadChart(absl::string_view patient_id, const ChartOptions& options,
                                         const CallContext& ctx);
  // The version written by change `sequence`, or nullopt (also for a
  // SUBSCRIPTION change: a subscription is no patient's record).
  absl::StatusOr<std::optional<storage::Record>> FindByChange(uint64_t sequence);
  // Change-log entries after `after_sequence`, in commit order.
  absl::Status ScanStoredChanges(uint64_t after_sequence, absl::FunctionRef<bool(const storage::Change&)> visit);
  // ---- Audit trail (both faces record every access here; see storage::AuditRecord).
  void Audit(storage::AuditRecord record) { store_->AppendAudit(std::move(record)); }
  absl::Status ScanAudit(uint64_t after_sequence, absl::FunctionRef<bool(const storage::AuditRecord&)> visit) {
    return store_->NewReader()->ScanAudit(after_sequence, visit);
  }

  // Signs and checks page tokens (same key as the gRPC face's).
  const PageTokenCodec& page_tokens() const { return page_tokens_; }

  SummaryCacheStats summary_cache_stats() const;

 private:
  // An assembled summary and the patient's write generation read before the
  // snapshot it was assembled from (storage::Store::PatientWriteGeneration).
  struct CachedSummary {
    uint64_t generation;
    std::string bytes;
  };

  PatientRecords(storage::Store* store, PatientRecordsOptions options, std::string page_key);

  template <class R>
  void CreateResource(const google::protobuf::Message& request, absl::string_view parent, const R& resource,
                      bool has_resource, absl::string_view request_id, const CallContext& ctx, WriteDone<R> done);
  // With any_version the resource's etag is not required nor compared.
  template <class R>
  void UpdateResource(const google::protobuf::Message& request, const R& resource, bool has_resource,
                      const google::protobuf::FieldMask* mask, absl::string_view request_id, bool any_version,
                      const CallContext& ctx, WriteDone<R> done);
  // How a write of the priorities treats the current version.
  enum class PrioritiesWrite {
    kAsStated,    // the gRPC contract: the etag given (none: never set yet) must be current's
    kCreate,      // must not have been set (ResourceExistsError otherwise)
    kAnyVersion,  // whatever is current
  };
  void WritePriorities(const v1::UpdatePrioritiesRequest& req, PrioritiesWrite mode, const CallContext& ctx,
                       WriteDone<v1::Priorities> done);
  absl::StatusOr<PatientChart> ReadChartFrom(const storage::Reader& reader, absl::string_view patient_id,
                                             const ChartOptions& options, const CallContext& ctx);
  template <class R>
  void RetractResource(const v1::RetractRequest& req, const CallContext& ctx, WriteDone<R> done);
  template <class R>
  absl::StatusOr<R> GetResource(const v1::GetResourceRequest& req, const CallContext& ctx);
  template <class R, class Request>
  absl::Status ListResources(const Request& req, const v1::ListFilter& filter,
                             const std::function<bool(const R&)>& match, const CallContext& ctx,
                             google::protobuf::RepeatedPtrField<R>* out, std::string* next_page_token);
  template <class R>
  absl::Status ListVersions(const v1::ListVersionsRequest& req, const CallContext& ctx,
                            google::protobuf::RepeatedPtrField<R>* out, std::string* next_page_token);
  static absl::Status ScanPatients(const storage::Reader& reader, absl::string_view after_patient,
                                   absl::string_view after_id, absl::FunctionRef<bool(const storage::Record&)> visit);
  // Each link must name a current (not retracted) resource.
  absl::Status CheckLinksExist(const google::protobuf::RepeatedPtrField<std::string>& links, absl::string_view field);

  storage::Store* const store_;
  const PatientRecordsOptions options_;
  const PageTokenCodec page_tokens_;
  common::LruCache<CachedSummary> summary_cache_;  // by patient id
  std::atomic<uint64_t> summary_cache_hits_{0};
  std::atomic<uint64_t> summary_cache_misses_{0};
};

// A new resource id: 26 characters, time-ordered (ULID layout, Crockford
// base32; ids of the same millisecond increase), so listing in id order is
// listing in creation order. Thread-safe.
std::string NewResourceId(absl::Time now);

// Deterministic serialization (stable map order), for hashing requests.
std::string DeterministicBytes(const google::protobuf::Message& message);

}  // namespace wmty::domain

#endif  // WMTY_DOMAIN_PATIENT_RECORDS_H_
