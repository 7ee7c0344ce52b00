// PatientRecords (patient_records.h): every write rule (validation, recorder,
// links, preconditions, idempotency fingerprints) and every read rule
// (deadline, retracted, paging, chart order) of the domain, for both faces.
#include "domain/patient_records.h"

#include <algorithm>
#include <map>
#include <random>
#include <set>
#include <tuple>
#include <variant>
#include <vector>

#include <google/protobuf/io/coded_stream.h>
#include <google/protobuf/io/zero_copy_stream_impl_lite.h>
#include <google/protobuf/util/field_mask_util.h>
#include <google/protobuf/util/time_util.h>
#include <google/protobuf/wire_format_lite.h>

#include "absl/random/random.h"
#include "absl/strings/str_cat.h"
#include "absl/synchronization/mutex.h"
#include "common/status.h"
#include "domain/etag.h"
#include "domain/names.h"
#include "domain/recorder.h"
#include "domain/validation.h"

namespace wmty::domain {
namespace {

using google::protobuf::FieldMask;
using google::protobuf::RepeatedPtrField;
using google::protobuf::util::FieldMaskUtil;
using storage::Committed;
using storage::Record;
using storage::WriteStamp;

// Per-resource facts the generic code needs.
template <class R>
struct Traits;

template <>
struct Traits<v1::WhatMatters> {
  using CreateRequest = v1::CreateWhatMattersRequest;
  using UpdateRequest = v1::UpdateWhatMattersRequest;
  static constexpr storage::Kind kKind = storage::WHAT_MATTERS;
  static constexpr absl::string_view kField = "what_matters";
  static constexpr absl::string_view kLabel = "whatMatters entry";
  static void Check(const v1::WhatMatters& r, absl::string_view patient, absl::string_view prefix, absl::Time now,
                    FieldViolations* v) {
    CheckWhatMatters(r, patient, prefix, now, v);
  }
  static const std::set<std::string>& Updatable() {
    static const auto* s =
        new std::set<std::string>{"patient", "statement", "prompt", "life_domains", "dignity_elements", "provenance"};
    return *s;
  }
};

template <>
struct Traits<v1::Goal> {
  using CreateRequest = v1::CreateGoalRequest;
  using UpdateRequest = v1::UpdateGoalRequest;
  static constexpr storage::Kind kKind = storage::GOAL;
  static constexpr absl::string_view kField = "goal";
  static constexpr absl::string_view kLabel = "goal";
  static void Check(const v1::Goal& r, absl::string_view patient, absl::string_view prefix, absl::Time now,
                    FieldViolations* v) {
    CheckGoal(r, patient, prefix, now, v);
  }
  static const std::set<std::string>& Updatable() {
    static const auto* s = new std::set<std::string>{
        "patient",     "description", "lifecycle_status", "achievement_status", "priority", "categories", "start_date",
        "target_date", "notes",       "what_matters",     "provenance"};
    return *s;
  }
};

template <>
struct Traits<v1::Preference> {
  using CreateRequest = v1::CreatePreferenceRequest;
  using UpdateRequest = v1::UpdatePreferenceRequest;
  static constexpr storage::Kind kKind = storage::PREFERENCE;
  static constexpr absl::string_view kField = "preference";
  static constexpr absl::string_view kLabel = "preference";
  static void Check(const v1::Preference& r, absl::string_view patient, absl::string_view prefix, absl::Time now,
                    FieldViolations* v) {
    CheckPreference(r, patient, prefix, now, v);
  }
  static const std::set<std::string>& Updatable() {
    static const auto* s =
        new std::set<std::string>{"patient",        "kind",     "value_code",         "value_text", "channel_ranking",
                                  "contact_window", "language", "family_involvement", "provenance"};
    return *s;
  }
};

template <>
struct Traits<v1::GoalScore> {
  using CreateRequest = v1::CreateGoalScoreRequest;
  using UpdateRequest = v1::UpdateGoalScoreRequest;
  static constexpr storage::Kind kKind = storage::GOAL_SCORE;
  static constexpr absl::string_view kField = "goal_score";
  static constexpr absl::string_view kLabel = "goal score";
  static void Check(const v1::GoalScore& r, absl::string_view patient, absl::string_view prefix, absl::Time now,
                    FieldViolations* v) {
    CheckGoalScore(r, patient, prefix, now, v);
  }
  static const std::set<std::string>& Updatable() {
    static const auto* s =
        new std::set<std::string>{"patient", "score_type", "score", "effective_time", "note", "provenance"};
    return *s;
  }
};

template <>
struct Traits<v1::Patient> {
  static constexpr storage::Kind kKind = storage::PATIENT;
  static constexpr absl::string_view kField = "patient";
  static constexpr absl::string_view kLabel = "patient";
};

template <>
struct Traits<v1::Priorities> {
  static constexpr storage::Kind kKind = storage::PRIORITIES;
  static constexpr absl::string_view kField = "priorities";
  static constexpr absl::string_view kLabel = "priorities";
};

google::protobuf::Timestamp ToProto(absl::Time t) {
  return google::protobuf::util::TimeUtil::MicrosecondsToTimestamp(absl::ToUnixMicros(t));
}

// The FHIR elements to keep with the new version: those the request brought
// (FHIR face) or else those of the previous version.
void KeepFhirExtra(const std::optional<std::string>& from_request, const Record* current, Record* next) {
  if (from_request.has_value()) {
    next->set_fhir_extra_json(*from_request);
  } else if (current != nullptr) {
    next->set_fhir_extra_json(current->fhir_extra_json());
  }
}

// Sets the output-only fields of a resource for the version being written.
template <class R>
void StampServerFields(R* r, const std::string& patient_id, const std::string& id, const WriteStamp& stamp,
                       const google::protobuf::Timestamp& create_time, v1::RecordState state) {
  r->set_name(FormatName(Traits<R>::kKind, patient_id, id));
  r->mutable_patient()->set_id(patient_id);
  r->set_version(stamp.version);
  r->set_etag(EtagOf(stamp.version));
  *r->mutable_create_time() = create_time;
  *r->mutable_update_time() = ToProto(stamp.time);
  r->set_state(state);
  if (state == v1::ACTIVE) r->clear_retract_reason();
  if constexpr (!std::is_same_v<R, v1::Patient>) {  // demographics are not said by anyone
    if (!r->provenance().has_said_time()) *r->mutable_provenance()->mutable_said_time() = ToProto(stamp.time);
    *r->mutable_provenance()->mutable_said_by() = SpeakerOrNotStated(r->provenance().said_by());
  }
  if constexpr (std::is_same_v<R, v1::GoalScore>) {
    if (!r->has_effective_time()) *r->mutable_effective_time() = ToProto(stamp.time);
  }
}

template <class R>
Done<Committed> Deliver(WriteDone<R> done) {
  return [done = std::move(done)](absl::StatusOr<Committed> committed) mutable {
    // Moved, not copied: the status's message is then owned by the callback
    // alone (it may hand it to another thread) instead of shared by two
    // threads through a reference count.
    if (!committed.ok()) return done(std::move(committed).status());
    done(std::move(committed->record));
  };
}

// What a retry with the same request_id must repeat exactly. `mode` tells
// apart requests of the same message that the domain treats differently
// (a generic write's precondition); empty for the per-type methods.
std::string Fingerprint(const google::protobuf::Message& request, absl::string_view mode = "") {
  std::string bytes = absl::StrCat(request.GetDescriptor()->full_name(), "\n", DeterministicBytes(request));
  if (!mode.empty()) absl::StrAppend(&bytes, "\n", mode);
  return Sha256(bytes);
}

// A per-type request (CreateGoalRequest, UpdateGoalRequest, ...) holding
// `resource` in its field Traits<R>::kField, for the generic entry points:
// the request is what idempotency fingerprints, so a generic write and the
// same per-type write are the same request.
template <class Request, class R>
Request WrapInRequest(const R& resource, absl::string_view field, const std::string& request_id) {
  Request req;
  const auto* descriptor = Request::descriptor();
  const auto* reflection = req.GetReflection();
  reflection->MutableMessage(&req, descriptor->FindFieldByName(std::string(field)))->CopyFrom(resource);
  reflection->SetString(&req, descriptor->FindFieldByName("request_id"), request_id);
  return req;
}

// The recorder rule (recorder.h) on a resource's provenance. With
// authentication a resource may come without provenance: the recorder is the
// caller and an absent speaker is NOT_STATED, so nothing is left to state.
// Without it (no principal) validation requires provenance ("required").
template <class R>
absl::Status ApplyRecorderRule(const CallContext& ctx, absl::string_view field, R* resource, FieldViolations* v) {
  if (ctx.principal == nullptr && !resource->has_provenance()) return absl::OkStatus();
  return domain::ApplyRecorderRule(ctx.principal, Field(field, "provenance"), resource->mutable_provenance(), v);
}

absl::Status CheckDeadline(const CallContext& ctx) {
  if (absl::Now() > ctx.deadline) return absl::DeadlineExceededError("deadline exceeded");
  return absl::OkStatus();
}

absl::StatusOr<int> PageSize(int requested) {
  if (requested < 0) return InvalidField("page_size", "must not be negative");
  if (requested > kMaxPageSize) return InvalidField("page_size", absl::StrCat("at most ", kMaxPageSize));
  return requested == 0 ? kDefaultPageSize : requested;
}

// The current version an update applies to: it exists, is not retracted,
// and carries the etag the update is based on (unless any version will do).
template <class R>
absl::StatusOr<R> CurrentForUpdate(const Record* current, const R& incoming, bool any_version) {
  using T = Traits<R>;
  if (current == nullptr) return absl::NotFoundError(NotFoundMessage(T::kLabel, incoming.name()));
  if (current->retracted()) {
    return absl::FailedPreconditionError(
        absl::StrCat(T::kLabel, " was retracted (entered in error) and cannot change"));
  }
  auto existing = FromRecord<R>(*current);
  if (!existing.ok()) return existing.status();
  if (!any_version && existing->etag() != incoming.etag()) {
    return absl::AbortedError(absl::StrCat("etag ", incoming.etag(), " is stale: the ", T::kLabel,
                                           " changed since it was read (current etag ", existing->etag(), ")"));
  }
  return existing;
}

// The updated content: `incoming` whole, or, with a field mask, `existing`
// with the masked fields of `incoming` (and its provenance: who changed it).
template <class R>
R Merged(const R& existing, const R& incoming, const std::optional<FieldMask>& mask) {
  if (!mask.has_value()) return incoming;
  R merged = existing;
  FieldMaskUtil::MergeOptions opts;
  opts.set_replace_message_fields(true);
  opts.set_replace_repeated_fields(true);
  FieldMaskUtil::MergeMessageTo(incoming, *mask, opts, &merged);
  *merged.mutable_provenance() = incoming.provenance();
  return merged;
}

}  // namespace

std::string DeterministicBytes(const google::protobuf::Message& message) {
  std::string out;
  {
    google::protobuf::io::StringOutputStream stream(&out);
    google::protobuf::io::CodedOutputStream coded(&stream);
    coded.SetSerializationDeterministic(true);
    message.SerializePartialToCodedStream(&coded);
  }
  return out;
}

std::string NewResourceId(absl::Time now) {
  static constexpr char kAlphabet[] = "0123456789ABCDEFGHJKMNPQRSTVWXYZ";
  thread_local absl::BitGen gen;
  const uint64_t millis = static_cast<uint64_t>(absl::ToUnixMillis(now)) & ((uint64_t{1} << 48) - 1);
  const uint64_t rand_hi = absl::Uniform<uint64_t>(gen) & ((uint64_t{1} << 16) - 1);
  const uint64_t rand_lo = absl::Uniform<uint64_t>(gen);
  // 128 bits: 48-bit time, 80 random bits; 26 symbols of 5 bits (the first carries 3).
  unsigned __int128 value =
      (static_cast<unsigned __int128>(millis) << 80) | (static_cast<unsigned __int128>(rand_hi) << 64) | rand_lo;
  {
    // ULID monotonic mode: within one millisecond the random part alone would
    // order ids at random, so an id of the same millisecond as the previous
    // one is the previous plus one, and ids made one after another sort in
    // the order they were made.
    static absl::Mutex mu(absl::kConstInit);
    static unsigned __int128 last = 0;
    absl::MutexLock lock(&mu);
    if ((value >> 80) == (last >> 80) && value <= last) value = last + 1;
    last = value;
  }
  std::string id(26, '0');
  for (int i = 25; i >= 0; --i) {
    id[i] = kAlphabet[static_cast<int>(value & 31)];
    value >>= 5;
  }
  return id;
}

PatientRecords::PatientRecords(storage::Store* store, PatientRecordsOptions options, std::string page_key)
    : store_(store),
      options_(std::move(options)),
      page_tokens_(std::move(page_key)),
      summary_cache_(options_.summary_cache_bytes) {}

SummaryCacheStats PatientRecords::summary_cache_stats() const {
  return {summary_cache_hits_.load(std::memory_order_relaxed), summary_cache_misses_.load(std::memory_order_relaxed),
          summary_cache_.charge()};
}

absl::StatusOr<std::unique_ptr<PatientRecords>> PatientRecords::Create(storage::Store* store,
                                                                       PatientRecordsOptions options) {
  auto key = store->GetOrCreateSecret("page-token-key");
  if (!key.ok()) return key.status();
  return std::unique_ptr<PatientRecords>(new PatientRecords(store, std::move(options), std::move(*key)));
}

absl::Status PatientRecords::CheckLinksExist(const RepeatedPtrField<std::string>& links, absl::string_view field) {
  if (links.empty()) return absl::OkStatus();
  auto reader = store_->NewReader();
  FieldViolations v;
  for (int i = 0; i < links.size(); ++i) {
    auto name = ParseName(links[i], field);
    if (!name.ok()) return name.status();
    auto record = reader->GetCurrent(name->kind, name->patient_id, name->id);
    if (!record.ok()) return record.status();
    if (!record->has_value() || (*record)->retracted()) {
      v.Add(absl::StrCat(field, "[", i, "]"), "no such resource (or it was retracted)");
    }
  }
  return v.ToStatus();
}

// ---------------------------------------------------------------- generic writes

template <class R>
void PatientRecords::CreateResource(const google::protobuf::Message& request, absl::string_view parent,
                                    const R& resource, bool has_resource, absl::string_view request_id,
                                    const CallContext& ctx, WriteDone<R> done) {
  using T = Traits<R>;
  const absl::Time now = options_.clock();
  FieldViolations v;
  std::string patient_id;
  if (auto parsed = ParseParent(parent, "parent"); parsed.ok()) {
    patient_id = *parsed;
  } else {
    const google::rpc::BadRequest bad = GetFieldViolations(parsed.status());  // kept alive for the loop
    for (const auto& fv : bad.field_violations()) v.Add(fv.field(), fv.description());
  }
  R stated = resource;  // with the recorder the rule decides
  if (!has_resource) {
    v.Add(std::string(T::kField), "required");
  } else {
    if (auto s = ApplyRecorderRule(ctx, T::kField, &stated, &v); !s.ok()) return done(s);
    T::Check(stated, patient_id, T::kField, now, &v);
  }
  CheckRequestId(request_id, "request_id", &v);
  if (!v.empty()) return done(v.ToStatus());
  if constexpr (std::is_same_v<R, v1::Goal>) {
    if (auto s = CheckLinksExist(resource.what_matters(), "goal.what_matters"); !s.ok()) return done(s);
  }
  if constexpr (std::is_same_v<R, v1::GoalScore>) {
    RepeatedPtrField<std::string> goal;
    *goal.Add() = resource.goal();
    if (auto s = CheckLinksExist(goal, "goal_score.goal"); !s.ok()) return done(s);
  }

  storage::Mutation m;
  m.kind = T::kKind;
  m.patient_id = patient_id;
  m.id = NewResourceId(now);
  m.new_id = true;  // a fresh ULID: unique without a lookup (see NewResourceId)
  m.op = storage::Change::CREATE;
  m.request_id = std::string(request_id);
  if (!m.request_id.empty()) m.fingerprint = Fingerprint(request);
  m.deadline = ctx.deadline;
  m.apply = [r = std::move(stated), patient_id, id = m.id, extra = ctx.fhir_extra_json](
                const Record* current, const WriteStamp& stamp, Record* next) mutable -> absl::Status {
    if (current != nullptr) return absl::AbortedError("generated id collided; retry");
    StampServerFields(&r, patient_id, id, stamp, ToProto(stamp.time), v1::ACTIVE);
    next->set_resource(r.SerializeAsString());
    KeepFhirExtra(extra, nullptr, next);
    return absl::OkStatus();
  };
  store_->Commit(std::move(m), Deliver<R>(std::move(done)));
}

template <class R>
void PatientRecords::UpdateResource(const google::protobuf::Message& request, const R& resource, bool has_resource,
                                    const FieldMask* mask, absl::string_view request_id, bool any_version,
                                    const CallContext& ctx, WriteDone<R> done) {
  using T = Traits<R>;
  const std::string field(T::kField);
  if (!has_resource) return done(InvalidField(field, "required"));
  FieldViolations v;
  auto name = ParseNameOfKind(resource.name(), T::kKind, Field(field, "name"));
  if (!name.ok()) {
    const google::rpc::BadRequest bad = GetFieldViolations(name.status());  // kept alive for the loop
    for (const auto& fv : bad.field_violations()) v.Add(fv.field(), fv.description());
  }
  if (!any_version && resource.etag().empty()) {
    v.Add(Field(field, "etag"), "required: the etag of the version this change is based on");
  }
  if (mask != nullptr) {
    for (int i = 0; i < mask->paths_size(); ++i) {
      const std::string& path = mask->paths(i);
      const std::string top = path.substr(0, path.find('.'));
      if (!T::Updatable().count(top) || !FieldMaskUtil::GetFieldDescriptors(R::descriptor(), path, nullptr)) {
        v.Add(absl::StrCat("update_mask.paths[", i, "]"), "not an updatable field");
      }
    }
  }
  R stated = resource;  // with the recorder the rule decides
  if (auto s = ApplyRecorderRule(ctx, T::kField, &stated, &v); !s.ok()) return done(s);
  CheckProvenance(stated.provenance(), stated.has_provenance(), Field(field, "provenance"), options_.clock(), &v);
  CheckRequestId(request_id, "request_id", &v);
  if (!v.empty()) return done(v.ToStatus());
  if constexpr (std::is_same_v<R, v1::Goal>) {
    const bool links_change = mask == nullptr || std::any_of(mask->paths().begin(), mask->paths().end(),
                                                             [](const std::string& p) { return p == "what_matters"; });
    if (links_change) {
      if (auto s = CheckLinksExist(resource.what_matters(), "goal.what_matters"); !s.ok()) return done(s);
    }
  }

  storage::Mutation m;
  m.kind = T::kKind;
  m.patient_id = name->patient_id;
  m.id = name->id;
  m.op = storage::Change::UPDATE;
  m.request_id = std::string(request_id);
  if (!m.request_id.empty()) m.fingerprint = Fingerprint(request, any_version ? "any-version" : "");
  m.deadline = ctx.deadline;
  std::optional<FieldMask> mask_copy;
  if (mask != nullptr) mask_copy = *mask;
  m.apply = [incoming = std::move(stated), mask_copy, rn = *name, clock = options_.clock, extra = ctx.fhir_extra_json,
             any_version](const Record* current, const WriteStamp& stamp, Record* next) -> absl::Status {
    auto existing = CurrentForUpdate(current, incoming, any_version);
    if (!existing.ok()) return existing.status();
    R merged = Merged(*existing, incoming, mask_copy);
    FieldViolations violations;
    T::Check(merged, rn.patient_id, T::kField, clock(), &violations);
    if (!violations.empty()) return violations.ToStatus();
    StampServerFields(&merged, rn.patient_id, rn.id, stamp, existing->create_time(), v1::ACTIVE);
    next->set_resource(merged.SerializeAsString());
    KeepFhirExtra(extra, current, next);
    return absl::OkStatus();
  };
  store_->Commit(std::move(m), Deliver<R>(std::move(done)));
}

template <class R>
void PatientRecords::RetractResource(const v1::RetractRequest& req, const CallContext& ctx, WriteDone<R> done) {
  using T = Traits<R>;
  FieldViolations v;
  auto name = ParseNameOfKind(req.name(), T::kKind, "name");
  if (!name.ok()) {
    const google::rpc::BadRequest bad = GetFieldViolations(name.status());  // kept alive for the loop
    for (const auto& fv : bad.field_violations()) v.Add(fv.field(), fv.description());
  }
  CheckText(req.reason(), "reason", false, 1024, &v);
  v1::RetractRequest stated = req;  // with the recorder the rule decides
  if (auto s = domain::ApplyRecorderRule(ctx.principal, &stated, &v); !s.ok()) return done(s);
  CheckRecorder(stated.retracted_by(), stated.has_retracted_by(), "retracted_by", &v);
  if (stated.has_on_behalf_of()) CheckOnBehalfOf(stated.on_behalf_of(), "on_behalf_of", &v);
  CheckRequestId(req.request_id(), "request_id", &v);
  if (!v.empty()) return done(v.ToStatus());

  storage::Mutation m;
  m.kind = T::kKind;
  m.patient_id = name->patient_id;
  m.id = name->id;
  m.op = storage::Change::RETRACT;
  m.request_id = req.request_id();
  if (!m.request_id.empty()) m.fingerprint = Fingerprint(req);
  m.deadline = ctx.deadline;
  m.apply = [req = std::move(stated), rn = *name](const Record* current, const WriteStamp& stamp,
                                                  Record* next) -> absl::Status {
    if (current == nullptr) return absl::NotFoundError(NotFoundMessage(T::kLabel, req.name()));
    if (current->retracted()) return absl::FailedPreconditionError(absl::StrCat(T::kLabel, " is already retracted"));
    auto r = FromRecord<R>(*current);
    if (!r.ok()) return r.status();
    if (!req.etag().empty() && req.etag() != r->etag()) {
      return absl::AbortedError(absl::StrCat("etag ", req.etag(), " is stale (current etag ", r->etag(), ")"));
    }
    r->set_retract_reason(req.reason());
    auto* provenance = r->mutable_provenance();
    *provenance->mutable_recorded_by() = req.retracted_by();
    if (req.has_on_behalf_of()) {
      *provenance->mutable_on_behalf_of() = req.on_behalf_of();
    } else {
      provenance->clear_on_behalf_of();  // the retraction's, not the last change's
    }
    provenance->clear_said_time();
    StampServerFields(&*r, rn.patient_id, rn.id, stamp, r->create_time(), v1::RETRACTED);
    r->set_retract_reason(req.reason());
    next->set_resource(r->SerializeAsString());
    next->set_retracted(true);
    next->set_fhir_extra_json(current->fhir_extra_json());
    return absl::OkStatus();
  };
  store_->Commit(std::move(m), Deliver<R>(std::move(done)));
}

// ---------------------------------------------------------------- generic reads

template <class R>
absl::StatusOr<R> PatientRecords::GetResource(const v1::GetResourceRequest& req, const CallContext& ctx) {
  using T = Traits<R>;
  auto name = ParseNameOfKind(req.name(), T::kKind, "name");
  if (!name.ok()) return name.status();
  if (auto s = CheckDeadline(ctx); !s.ok()) return s;
  auto record = store_->NewReader()->GetCurrent(T::kKind, name->patient_id, name->id);
  if (!record.ok()) return record.status();
  if (!record->has_value()) return absl::NotFoundError(NotFoundMessage(T::kLabel, req.name()));
  return FromRecord<R>(**record);
}

template <class R, class Request>
absl::Status PatientRecords::ListResources(const Request& req, const v1::ListFilter& filter,
                                           const std::function<bool(const R&)>& match, const CallContext& ctx,
                                           RepeatedPtrField<R>* out, std::string* next_page_token) {
  using T = Traits<R>;
  FieldViolations v;
  std::string patient_id;
  if (auto parsed = ParseParent(req.parent(), "parent"); parsed.ok()) {
    patient_id = *parsed;
  } else {
    return parsed.status();
  }
  auto page_size = PageSize(req.page_size());
  if (!page_size.ok()) return page_size.status();
  // The query a token belongs to: the request type (ListGoals and
  // ListPreferences requests with the same parent serialize identically) and
  // the request without its paging fields.
  Request query = req;
  query.clear_page_token();
  query.clear_page_size();
  const std::string query_hash =
      Sha256(absl::StrCat(Request::descriptor()->full_name(), "\n", DeterministicBytes(query)));
  std::string after_id;
  if (!req.page_token().empty()) {
    auto cursor = page_tokens_.Decode(req.page_token(), query_hash, "page_token");
    if (!cursor.ok()) return cursor.status();
    after_id = cursor->after_id();
  }
  if (auto s = CheckDeadline(ctx); !s.ok()) return s;
  const int64_t since_micros = filter.has_updated_since()
                                   ? google::protobuf::util::TimeUtil::TimestampToMicroseconds(filter.updated_since())
                                   : INT64_MIN;

  absl::Status status;
  std::string last_id;
  bool more = false;
  int scanned = 0;
  auto reader = store_->NewReader();
  auto scan = reader->ScanCurrent(patient_id, T::kKind, after_id, [&](const Record& record) {
    if (++scanned % 256 == 0 && absl::Now() > ctx.deadline) {
      status = absl::DeadlineExceededError("deadline exceeded while listing");
      return false;
    }
    if (record.retracted() && !filter.show_retracted()) return true;
    if (record.update_time_micros() < since_micros) return true;
    auto r = FromRecord<R>(record);
    if (!r.ok()) {
      status = r.status();
      return false;
    }
    if (match && !match(*r)) return true;
    if (out->size() == *page_size) {
      more = true;
      return false;
    }
    last_id = record.id();
    *out->Add() = std::move(*r);
    return true;
  });
  if (!scan.ok()) return scan;
  if (!status.ok()) return status;
  if (more) {
    storage::PageCursor cursor;
    cursor.set_query_hash(query_hash);
    cursor.set_after_id(last_id);
    *next_page_token = page_tokens_.Encode(cursor);
  }
  return absl::OkStatus();
}

template <class R>
absl::Status PatientRecords::ListVersions(const v1::ListVersionsRequest& req, const CallContext& ctx,
                                          RepeatedPtrField<R>* out, std::string* next_page_token) {
  using T = Traits<R>;
  auto name = ParseNameOfKind(req.name(), T::kKind, "name");
  if (!name.ok()) return name.status();
  auto page_size = PageSize(req.page_size());
  if (!page_size.ok()) return page_size.status();
  const std::string query_hash = Sha256(absl::StrCat("versions\n", req.name()));
  int64_t after_version = 0;
  if (!req.page_token().empty()) {
    auto cursor = page_tokens_.Decode(req.page_token(), query_hash, "page_token");
    if (!cursor.ok()) return cursor.status();
    after_version = cursor->after_version();
  }
  if (auto s = CheckDeadline(ctx); !s.ok()) return s;
  auto reader = store_->NewReader();
  absl::Status status;
  bool more = false;
  int64_t last_version = 0;
  auto scan = reader->ScanVersions(T::kKind, name->patient_id, name->id, after_version, [&](const Record& record) {
    if (out->size() == *page_size) {
      more = true;
      return false;
    }
    auto r = FromRecord<R>(record);
    if (!r.ok()) {
      status = r.status();
      return false;
    }
    last_version = record.version();
    *out->Add() = std::move(*r);
    return true;
  });
  if (!scan.ok()) return scan;
  if (!status.ok()) return status;
  if (out->empty() && after_version == 0 && T::kKind != storage::PRIORITIES) {
    return absl::NotFoundError(NotFoundMessage(T::kLabel, req.name()));
  }
  if (more) {
    storage::PageCursor cursor;
    cursor.set_query_hash(query_hash);
    cursor.set_after_version(last_version);
    *next_page_token = page_tokens_.Encode(cursor);
  }
  return absl::OkStatus();
}

// ---------------------------------------------------------------- any resource

void PatientRecords::Create(AnyResource resource, absl::string_view patient_id, std::string request_id,
                            const CallContext& ctx, Done<storage::Record> done) {
  const std::string parent = FormatParent(patient_id);
  std::visit(
      [&](auto& r) {
        using R = std::decay_t<decltype(r)>;
        if constexpr (std::is_same_v<R, v1::Priorities>) {
          // They exist (empty, version 0) until first set: creating them is
          // their first write, refused once they have been set.
          r.set_name(FormatName(storage::PRIORITIES, patient_id, kPrioritiesId));
          r.clear_etag();
          auto req = WrapInRequest<v1::UpdatePrioritiesRequest>(r, "priorities", request_id);
          WritePriorities(req, PrioritiesWrite::kCreate, ctx, std::move(done));
        } else {
          auto req = WrapInRequest<typename Traits<R>::CreateRequest>(r, Traits<R>::kField, request_id);
          req.set_parent(parent);
          CreateResource(req, parent, r, true, request_id, ctx, WriteDone<R>(std::move(done)));
        }
      },
      resource);
}

void PatientRecords::Update(AnyResource resource, absl::string_view patient_id, absl::string_view id,
                            const Precondition& precondition, std::string request_id, const CallContext& ctx,
                            Done<storage::Record> done) {
  std::visit(
      [&](auto& r) {
        using R = std::decay_t<decltype(r)>;
        r.set_etag(precondition.etag());
        if constexpr (std::is_same_v<R, v1::Priorities>) {
          r.set_name(FormatName(storage::PRIORITIES, patient_id, kPrioritiesId));
          auto req = WrapInRequest<v1::UpdatePrioritiesRequest>(r, "priorities", request_id);
          const auto mode = precondition.any_version() ? PrioritiesWrite::kAnyVersion : PrioritiesWrite::kAsStated;
          WritePriorities(req, mode, ctx, std::move(done));
        } else {
          r.set_name(FormatName(Traits<R>::kKind, patient_id, id));
          const auto req = WrapInRequest<typename Traits<R>::UpdateRequest>(r, Traits<R>::kField, request_id);
          UpdateResource(req, r, true, nullptr, request_id, precondition.any_version(), ctx,
                         WriteDone<R>(std::move(done)));
        }
      },
      resource);
}

void PatientRecords::Retract(const v1::RetractRequest& req, const CallContext& ctx, Done<storage::Record> done) {
  auto name = ParseName(req.name(), "name");
  if (!name.ok()) return done(name.status());
  switch (name->kind) {
    case storage::WHAT_MATTERS:
      return RetractResource<v1::WhatMatters>(req, ctx, std::move(done));
    case storage::GOAL:
      return RetractResource<v1::Goal>(req, ctx, std::move(done));
    case storage::PREFERENCE:
      return RetractResource<v1::Preference>(req, ctx, std::move(done));
    case storage::GOAL_SCORE:
      return RetractResource<v1::GoalScore>(req, ctx, std::move(done));
    default:
      return done(absl::UnimplementedError("this resource cannot be retracted"));
  }
}

// ---------------------------------------------------------------- WhatMatters

void PatientRecords::CreateWhatMatters(const v1::CreateWhatMattersRequest& req, const CallContext& ctx,
                                       WriteDone<v1::WhatMatters> done) {
  CreateResource(req, req.parent(), req.what_matters(), req.has_what_matters(), req.request_id(), ctx, std::move(done));
}
absl::StatusOr<v1::WhatMatters> PatientRecords::GetWhatMatters(const v1::GetResourceRequest& req,
                                                               const CallContext& ctx) {
  return GetResource<v1::WhatMatters>(req, ctx);
}
absl::StatusOr<v1::ListWhatMattersResponse> PatientRecords::ListWhatMatters(const v1::ListWhatMattersRequest& req,
                                                                            const CallContext& ctx) {
  FieldViolations v;
  for (int i = 0; i < req.life_domains_size(); ++i) {
    if (!v1::LifeDomain_IsValid(req.life_domains(i)))
      v.Add(absl::StrCat("life_domains[", i, "]"), "unknown enum value");
  }
  if (!v.empty()) return v.ToStatus();
  std::set<int> domains(req.life_domains().begin(), req.life_domains().end());
  std::function<bool(const v1::WhatMatters&)> match;
  if (!domains.empty()) {
    match = [&domains](const v1::WhatMatters& r) {
      return std::any_of(r.life_domains().begin(), r.life_domains().end(), [&](int d) { return domains.count(d) > 0; });
    };
  }
  v1::ListWhatMattersResponse resp;
  auto s = ListResources<v1::WhatMatters>(req, req.filter(), match, ctx, resp.mutable_what_matters(),
                                          resp.mutable_next_page_token());
  if (!s.ok()) return s;
  return resp;
}
void PatientRecords::UpdateWhatMatters(const v1::UpdateWhatMattersRequest& req, const CallContext& ctx,
                                       WriteDone<v1::WhatMatters> done) {
  UpdateResource(req, req.what_matters(), req.has_what_matters(), req.has_update_mask() ? &req.update_mask() : nullptr,
                 req.request_id(), /*any_version=*/false, ctx, std::move(done));
}
void PatientRecords::RetractWhatMatters(const v1::RetractRequest& req, const CallContext& ctx,
                                        WriteDone<v1::WhatMatters> done) {
  RetractResource<v1::WhatMatters>(req, ctx, std::move(done));
}
absl::StatusOr<v1::ListWhatMattersResponse> PatientRecords::ListWhatMattersVersions(const v1::ListVersionsRequest& req,
                                                                                    const CallContext& ctx) {
  v1::ListWhatMattersResponse resp;
  auto s = ListVersions<v1::WhatMatters>(req, ctx, resp.mutable_what_matters(), resp.mutable_next_page_token());
  if (!s.ok()) return s;
  return resp;
}

// ---------------------------------------------------------------- Goal

void PatientRecords::CreateGoal(const v1::CreateGoalRequest& req, const CallContext& ctx, WriteDone<v1::Goal> done) {
  CreateResource(req, req.parent(), req.goal(), req.has_goal(), req.request_id(), ctx, std::move(done));
}
absl::StatusOr<v1::Goal> PatientRecords::GetGoal(const v1::GetResourceRequest& req, const CallContext& ctx) {
  return GetResource<v1::Goal>(req, ctx);
}
absl::StatusOr<v1::ListGoalsResponse> PatientRecords::ListGoals(const v1::ListGoalsRequest& req,
                                                                const CallContext& ctx) {
  FieldViolations v;
  for (int i = 0; i < req.lifecycle_statuses_size(); ++i) {
    if (!v1::GoalLifecycleStatus_IsValid(req.lifecycle_statuses(i))) {
      v.Add(absl::StrCat("lifecycle_statuses[", i, "]"), "unknown enum value");
    }
  }
  if (!v.empty()) return v.ToStatus();
  std::set<int> statuses(req.lifecycle_statuses().begin(), req.lifecycle_statuses().end());
  std::function<bool(const v1::Goal&)> match;
  if (!statuses.empty()) match = [&statuses](const v1::Goal& g) { return statuses.count(g.lifecycle_status()) > 0; };
  v1::ListGoalsResponse resp;
  auto s = ListResources<v1::Goal>(req, req.filter(), match, ctx, resp.mutable_goals(), resp.mutable_next_page_token());
  if (!s.ok()) return s;
  return resp;
}
void PatientRecords::UpdateGoal(const v1::UpdateGoalRequest& req, const CallContext& ctx, WriteDone<v1::Goal> done) {
  UpdateResource(req, req.goal(), req.has_goal(), req.has_update_mask() ? &req.update_mask() : nullptr,
                 req.request_id(), /*any_version=*/false, ctx, std::move(done));
}
void PatientRecords::RetractGoal(const v1::RetractRequest& req, const CallContext& ctx, WriteDone<v1::Goal> done) {
  RetractResource<v1::Goal>(req, ctx, std::move(done));
}
absl::StatusOr<v1::ListGoalsResponse> PatientRecords::ListGoalVersions(const v1::ListVersionsRequest& req,
                                                                       const CallContext& ctx) {
  v1::ListGoalsResponse resp;
  auto s = ListVersions<v1::Goal>(req, ctx, resp.mutable_goals(), resp.mutable_next_page_token());
  if (!s.ok()) return s;
  return resp;
}

// ---------------------------------------------------------------- Preference

void PatientRecords::CreatePreference(const v1::CreatePreferenceRequest& req, const CallContext& ctx,
                                      WriteDone<v1::Preference> done) {
  CreateResource(req, req.parent(), req.preference(), req.has_preference(), req.request_id(), ctx, std::move(done));
}
absl::StatusOr<v1::Preference> PatientRecords::GetPreference(const v1::GetResourceRequest& req,
                                                             const CallContext& ctx) {
  return GetResource<v1::Preference>(req, ctx);
}
absl::StatusOr<v1::ListPreferencesResponse> PatientRecords::ListPreferences(const v1::ListPreferencesRequest& req,
                                                                            const CallContext& ctx) {
  FieldViolations v;
  for (int i = 0; i < req.kinds_size(); ++i) {
    if (!v1::PreferenceKind_IsValid(req.kinds(i))) v.Add(absl::StrCat("kinds[", i, "]"), "unknown enum value");
  }
  if (!v.empty()) return v.ToStatus();
  std::set<int> kinds(req.kinds().begin(), req.kinds().end());
  std::function<bool(const v1::Preference&)> match;
  if (!kinds.empty()) match = [&kinds](const v1::Preference& p) { return kinds.count(p.kind()) > 0; };
  v1::ListPreferencesResponse resp;
  auto s = ListResources<v1::Preference>(req, req.filter(), match, ctx, resp.mutable_preferences(),
                                         resp.mutable_next_page_token());
  if (!s.ok()) return s;
  return resp;
}
void PatientRecords::UpdatePreference(const v1::UpdatePreferenceRequest& req, const CallContext& ctx,
                                      WriteDone<v1::Preference> done) {
  UpdateResource(req, req.preference(), req.has_preference(), req.has_update_mask() ? &req.update_mask() : nullptr,
                 req.request_id(), /*any_version=*/false, ctx, std::move(done));
}
void PatientRecords::RetractPreference(const v1::RetractRequest& req, const CallContext& ctx,
                                       WriteDone<v1::Preference> done) {
  RetractResource<v1::Preference>(req, ctx, std::move(done));
}
absl::StatusOr<v1::ListPreferencesResponse> PatientRecords::ListPreferenceVersions(const v1::ListVersionsRequest& req,
                                                                                   const CallContext& ctx) {
  v1::ListPreferencesResponse resp;
  auto s = ListVersions<v1::Preference>(req, ctx, resp.mutable_preferences(), resp.mutable_next_page_token());
  if (!s.ok()) return s;
  return resp;
}

// ---------------------------------------------------------------- GoalScore

void PatientRecords::CreateGoalScore(const v1::CreateGoalScoreRequest& req, const CallContext& ctx,
                                     WriteDone<v1::GoalScore> done) {
  CreateResource(req, req.parent(), req.goal_score(), req.has_goal_score(), req.request_id(), ctx, std::move(done));
}
absl::StatusOr<v1::GoalScore> PatientRecords::GetGoalScore(const v1::GetResourceRequest& req, const CallContext& ctx) {
  return GetResource<v1::GoalScore>(req, ctx);
}
absl::StatusOr<v1::ListGoalScoresResponse> PatientRecords::ListGoalScores(const v1::ListGoalScoresRequest& req,
                                                                          const CallContext& ctx) {
  if (!req.goal().empty()) {
    auto goal = ParseNameOfKind(req.goal(), storage::GOAL, "goal");
    if (!goal.ok()) return goal.status();
  }
  std::function<bool(const v1::GoalScore&)> match;
  if (!req.goal().empty()) match = [&req](const v1::GoalScore& s) { return s.goal() == req.goal(); };
  v1::ListGoalScoresResponse resp;
  auto s = ListResources<v1::GoalScore>(req, req.filter(), match, ctx, resp.mutable_goal_scores(),
                                        resp.mutable_next_page_token());
  if (!s.ok()) return s;
  return resp;
}
void PatientRecords::UpdateGoalScore(const v1::UpdateGoalScoreRequest& req, const CallContext& ctx,
                                     WriteDone<v1::GoalScore> done) {
  UpdateResource(req, req.goal_score(), req.has_goal_score(), req.has_update_mask() ? &req.update_mask() : nullptr,
                 req.request_id(), /*any_version=*/false, ctx, std::move(done));
}
void PatientRecords::RetractGoalScore(const v1::RetractRequest& req, const CallContext& ctx,
                                      WriteDone<v1::GoalScore> done) {
  RetractResource<v1::GoalScore>(req, ctx, std::move(done));
}
absl::StatusOr<v1::ListGoalScoresResponse> PatientRecords::ListGoalScoreVersions(const v1::ListVersionsRequest& req,
                                                                                 const CallContext& ctx) {
  v1::ListGoalScoresResponse resp;
  auto s = ListVersions<v1::GoalScore>(req, ctx, resp.mutable_goal_scores(), resp.mutable_next_page_token());
  if (!s.ok()) return s;
  return resp;
}

// ---------------------------------------------------------------- Patient

absl::StatusOr<v1::Patient> PatientRecords::GetPatient(const v1::GetResourceRequest& req, const CallContext& ctx) {
  return GetResource<v1::Patient>(req, ctx);
}

absl::StatusOr<v1::ListPatientVersionsResponse> PatientRecords::ListPatientVersions(const v1::ListVersionsRequest& req,
                                                                                    const CallContext& ctx) {
  v1::ListPatientVersionsResponse resp;
  auto s = ListVersions<v1::Patient>(req, ctx, resp.mutable_patients(), resp.mutable_next_page_token());
  if (!s.ok()) return s;
  return resp;
}

void PatientRecords::UpdatePatient(const v1::UpdatePatientRequest& req, const CallContext& ctx,
                                   WriteDone<v1::Patient> done) {
  if (!req.has_patient()) return done(InvalidField("patient", "required"));
  v1::Patient incoming = req.patient();  // the recorder rule decides its recorder
  auto name = ParseNameOfKind(incoming.name(), storage::PATIENT, "patient.name");
  if (!name.ok()) return done(name.status());
  FieldViolations v;
  if (auto s = ApplyRecorderRule(ctx, "patient", &incoming, &v); !s.ok()) return done(s);
  CheckPatient(incoming, name->patient_id, "patient", options_.clock(), &v);
  CheckRequestId(req.request_id(), "request_id", &v);
  if (!v.empty()) return done(v.ToStatus());

  storage::Mutation m;
  m.kind = storage::PATIENT;
  m.patient_id = name->patient_id;
  m.id = name->patient_id;
  m.op = storage::Change::UPDATE;
  m.request_id = req.request_id();
  if (!m.request_id.empty()) m.fingerprint = Fingerprint(req);
  m.deadline = ctx.deadline;
  m.apply = [incoming, patient_id = name->patient_id, allow_missing = req.allow_missing(), extra = ctx.fhir_extra_json](
                const Record* current, const WriteStamp& stamp, Record* next) -> absl::Status {
    google::protobuf::Timestamp create_time = ToProto(stamp.time);
    if (current == nullptr) {
      if (!allow_missing) {
        return absl::NotFoundError(
            absl::StrCat(NotFoundMessage("patient", incoming.name()), " (allow_missing creates it)"));
      }
      if (!incoming.etag().empty()) {
        return absl::AbortedError(absl::StrCat("etag ", incoming.etag(), " is stale: the patient is not known yet"));
      }
    } else {
      auto existing = FromRecord<v1::Patient>(*current);
      if (!existing.ok()) return existing.status();
      // A feed sends whole snapshots: the etag is a guard it may add, not a must.
      if (!incoming.etag().empty() && incoming.etag() != existing->etag()) {
        return absl::AbortedError(absl::StrCat("etag ", incoming.etag(), " is stale: the patient changed since it ",
                                               "was read (current etag ", existing->etag(), ")"));
      }
      create_time = existing->create_time();
    }
    v1::Patient r = incoming;
    StampServerFields(&r, patient_id, patient_id, stamp, create_time, v1::ACTIVE);
    next->set_resource(r.SerializeAsString());
    KeepFhirExtra(extra, current, next);
    return absl::OkStatus();
  };
  store_->Commit(std::move(m), Deliver<v1::Patient>(std::move(done)));
}

// ---------------------------------------------------------------- Stored versions (FHIR face)

absl::StatusOr<std::optional<storage::Record>> PatientRecords::FindCurrentById(storage::Kind kind,
                                                                               absl::string_view id) {
  if (!IsValidId(id)) return std::optional<storage::Record>();
  auto reader = store_->NewReader();
  std::string patient_id;
  if (kind == storage::PRIORITIES) {
    patient_id = std::string(id);
    id = kPrioritiesId;
  } else {
    auto patient = reader->FindPatient(kind, id);
    if (!patient.ok()) return patient.status();
    if (!patient->has_value()) return std::optional<storage::Record>();
    patient_id = **patient;
  }
  return reader->GetCurrent(kind, patient_id, id);
}

absl::Status PatientRecords::ScanStoredVersions(storage::Kind kind, absl::string_view patient_id, absl::string_view id,
                                                int64_t after_version,
                                                absl::FunctionRef<bool(const storage::Record&)> visit) {
  return store_->NewReader()->ScanVersions(kind, patient_id, id, after_version, visit);
}

absl::Status PatientRecords::ScanStoredCurrent(storage::Kind kind, std::optional<std::string> patient_id,
                                               absl::string_view after_patient, absl::string_view after_id,
                                               absl::FunctionRef<bool(const storage::Record&)> visit) {
  auto reader = store_->NewReader();
  if (patient_id.has_value()) return reader->ScanCurrent(*patient_id, kind, after_id, visit);
  if (kind == storage::PATIENT) return ScanPatients(*reader, after_patient, after_id, visit);
  return reader->ScanCurrentAllPatients(kind, after_patient, after_id, visit);
}

// Every Patient after (after_patient, after_id), through the id index:
// reading the whole current column family for them would cost as much as the
// database, this costs as much as the patients.
absl::Status PatientRecords::ScanPatients(const storage::Reader& reader, absl::string_view after_patient,
                                          absl::string_view after_id,
                                          absl::FunctionRef<bool(const storage::Record&)> visit) {
  absl::Status status;
  auto scan = reader.ScanIds(storage::PATIENT, after_patient, [&](absl::string_view id, absl::string_view patient) {
    if (std::tie(patient, id) <= std::tie(after_patient, after_id)) return true;
    auto record = reader.GetCurrent(storage::PATIENT, patient, id);
    if (!record.ok()) {
      status = record.status();
      return false;
    }
    return !record->has_value() || visit(**record);
  });
  if (!scan.ok()) return scan;
  return status;
}

absl::StatusOr<std::optional<storage::Record>> PatientRecords::FindByChange(uint64_t sequence) {
  // Sequences start at 1; 0 - 1 would wrap and scan from the first change.
  if (sequence == 0) return std::optional<storage::Record>();
  auto reader = store_->NewReader();
  std::optional<storage::Change> change;
  auto s = reader->ScanChanges(sequence - 1, [&](const storage::Change& c) {
    if (c.sequence() == sequence) change = c;
    return false;
  });
  if (!s.ok()) return s;
  // A Subscription's change is no patient's record (no Provenance, no history entry).
  if (!change.has_value() || change->kind() == storage::SUBSCRIPTION) return std::optional<storage::Record>();
  return reader->GetVersion(change->kind(), change->patient_id(), change->id(), change->version());
}

absl::Status PatientRecords::ScanStoredChanges(uint64_t after_sequence,
                                               absl::FunctionRef<bool(const storage::Change&)> visit) {
  return store_->NewReader()->ScanChanges(after_sequence, visit);
}

// ---------------------------------------------------------------- Priorities

absl::StatusOr<v1::Priorities> PatientRecords::GetPriorities(const v1::GetResourceRequest& req,
                                                             const CallContext& ctx) {
  auto name = ParseNameOfKind(req.name(), storage::PRIORITIES, "name");
  if (!name.ok()) return name.status();
  if (auto s = CheckDeadline(ctx); !s.ok()) return s;
  auto record = store_->NewReader()->GetCurrent(storage::PRIORITIES, name->patient_id, name->id);
  if (!record.ok()) return record.status();
  if (record->has_value()) return FromRecord<v1::Priorities>(**record);
  v1::Priorities empty;
  empty.set_name(FormatName(storage::PRIORITIES, name->patient_id, name->id));
  empty.mutable_patient()->set_id(name->patient_id);
  empty.set_state(v1::ACTIVE);
  return empty;
}

void PatientRecords::UpdatePriorities(const v1::UpdatePrioritiesRequest& req, const CallContext& ctx,
                                      WriteDone<v1::Priorities> done) {
  WritePriorities(req, PrioritiesWrite::kAsStated, ctx, std::move(done));
}

namespace {

// The check of a priorities write against the current version (see
// PatientRecords::PrioritiesWrite), on the commit thread. `existing` is null
// before the priorities are first set.
template <class Mode>
absl::Status CheckPrioritiesVersion(Mode mode, const v1::Priorities* existing, absl::string_view etag) {
  if (mode == Mode::kAnyVersion) return absl::OkStatus();
  if (existing == nullptr) {
    if (etag.empty()) return absl::OkStatus();
    return absl::AbortedError(absl::StrCat("etag ", etag, " is stale: the priorities were never set"));
  }
  if (mode == Mode::kCreate) {
    return ResourceExistsError("the patient's priorities exist already: update them with their etag");
  }
  if (etag.empty()) return InvalidField("priorities.etag", "required: the etag of the version this change is based on");
  if (etag != existing->etag()) {
    return absl::AbortedError(absl::StrCat("etag ", etag, " is stale: the priorities changed since ",
                                           "they were read (current etag ", existing->etag(), ")"));
  }
  return absl::OkStatus();
}

// Fingerprint mode of a priorities write: the per-type write keeps the plain
// fingerprint (request ids stored before the generic writes stay valid).
template <class Mode>
absl::string_view FingerprintMode(Mode mode) {
  if (mode == Mode::kCreate) return "create";
  if (mode == Mode::kAnyVersion) return "any-version";
  return "";
}

}  // namespace

void PatientRecords::WritePriorities(const v1::UpdatePrioritiesRequest& req, PrioritiesWrite mode,
                                     const CallContext& ctx, WriteDone<v1::Priorities> done) {
  if (!req.has_priorities()) return done(InvalidField("priorities", "required"));
  const v1::Priorities& incoming = req.priorities();
  FieldViolations v;
  auto name = ParseNameOfKind(incoming.name(), storage::PRIORITIES, "priorities.name");
  if (!name.ok()) return done(name.status());
  v1::Priorities stated = incoming;  // with the recorder the rule decides
  if (auto s = ApplyRecorderRule(ctx, "priorities", &stated, &v); !s.ok()) return done(s);
  CheckPriorities(stated, name->patient_id, "priorities", options_.clock(), &v);
  CheckRequestId(req.request_id(), "request_id", &v);
  if (!v.empty()) return done(v.ToStatus());
  if (auto s = CheckLinksExist(incoming.items(), "priorities.items"); !s.ok()) return done(s);

  storage::Mutation m;
  m.kind = storage::PRIORITIES;
  m.patient_id = name->patient_id;
  m.id = name->id;
  m.op = storage::Change::UPDATE;
  m.request_id = req.request_id();
  if (!m.request_id.empty()) m.fingerprint = Fingerprint(req, FingerprintMode(mode));
  m.deadline = ctx.deadline;
  m.apply = [incoming = std::move(stated), rn = *name, extra = ctx.fhir_extra_json, mode](
                const Record* current, const WriteStamp& stamp, Record* next) -> absl::Status {
    google::protobuf::Timestamp create_time = ToProto(stamp.time);
    std::optional<v1::Priorities> existing;
    if (current != nullptr) {
      auto parsed = FromRecord<v1::Priorities>(*current);
      if (!parsed.ok()) return parsed.status();
      existing = std::move(*parsed);
      create_time = existing->create_time();
    }
    if (auto s = CheckPrioritiesVersion(mode, existing ? &*existing : nullptr, incoming.etag()); !s.ok()) return s;
    v1::Priorities r = incoming;
    StampServerFields(&r, rn.patient_id, rn.id, stamp, create_time, v1::ACTIVE);
    next->set_resource(r.SerializeAsString());
    KeepFhirExtra(extra, current, next);
    return absl::OkStatus();
  };
  store_->Commit(std::move(m), Deliver<v1::Priorities>(std::move(done)));
}

absl::StatusOr<v1::ListPrioritiesVersionsResponse> PatientRecords::ListPrioritiesVersions(
    const v1::ListVersionsRequest& req, const CallContext& ctx) {
  v1::ListPrioritiesVersionsResponse resp;
  auto s = ListVersions<v1::Priorities>(req, ctx, resp.mutable_priorities(), resp.mutable_next_page_token());
  if (!s.ok()) return s;
  return resp;
}

// ---------------------------------------------------------------- Scans and the chart

namespace {

// Records a scan has looked at between two deadline checks.
constexpr int kDeadlineCheckEvery = 256;

// The rules every record scan shares (RecordQuery): position, retracted,
// limit and deadline, around the caller's visit.
class ScanRules {
 public:
  ScanRules(const RecordQuery& query, const CallContext& ctx, absl::FunctionRef<bool(const Record&)> visit)
      : query_(query), ctx_(ctx), visit_(visit) {}

  // False stops the scan (see stopped() and status()).
  bool operator()(const Record& r) {
    if (++scanned_ % kDeadlineCheckEvery == 0 && absl::Now() > ctx_.deadline) {
      status_ = absl::DeadlineExceededError("deadline exceeded while reading records");
      return Stop();
    }
    if (std::tie(r.patient_id(), r.id()) <= std::tie(query_.after_patient, query_.after_id)) return true;
    if (r.retracted() && !query_.include_retracted) return true;
    if (!visit_(r) || (query_.limit > 0 && ++visited_ == query_.limit)) return Stop();
    return true;
  }
  bool stopped() const { return stopped_; }
  const absl::Status& status() const { return status_; }

 private:
  bool Stop() {
    stopped_ = true;
    return false;
  }
  const RecordQuery& query_;
  const CallContext& ctx_;
  absl::FunctionRef<bool(const Record&)> visit_;
  int scanned_ = 0;
  size_t visited_ = 0;
  bool stopped_ = false;
  absl::Status status_;
};

bool PatientIdLess(const Record& a, const Record& b) {
  return std::tie(a.patient_id(), a.id()) < std::tie(b.patient_id(), b.id());
}

}  // namespace

absl::Status PatientRecords::ScanRecords(const RecordQuery& query, const CallContext& ctx,
                                         absl::FunctionRef<bool(const Record&)> visit) {
  if (auto s = CheckDeadline(ctx); !s.ok()) return s;
  ScanRules rules(query, ctx, visit);
  auto apply_rules = [&rules](const Record& r) { return rules(r); };
  if (query.ids.has_value()) {  // point lookups, then in scan order
    std::vector<Record> found;
    for (const std::string& id : *query.ids) {
      auto r = FindCurrentById(query.kind, id);
      if (!r.ok()) return r.status();
      if (!r->has_value()) continue;
      if (query.patients.has_value() &&
          !std::binary_search(query.patients->begin(), query.patients->end(), (*r)->patient_id())) {
        continue;
      }
      found.push_back(std::move(**r));
    }
    std::sort(found.begin(), found.end(), PatientIdLess);
    for (const Record& r : found) {
      if (!rules(r)) break;
    }
    return rules.status();
  }
  if (!query.patients.has_value()) {
    auto s = ScanStoredCurrent(query.kind, std::nullopt, query.after_patient, query.after_id, apply_rules);
    return s.ok() ? rules.status() : s;
  }
  auto reader = store_->NewReader();
  for (const std::string& patient : *query.patients) {
    if (patient < query.after_patient) continue;
    auto s =
        reader->ScanCurrent(patient, query.kind, patient == query.after_patient ? query.after_id : "", apply_rules);
    if (!s.ok()) return s;
    if (rules.stopped()) break;
  }
  return rules.status();
}

namespace {

// Sorts one list of the chart into chart order (see PatientChart).
void SortForChart(const std::map<std::string, int>& rank, storage::Kind kind, std::vector<Record>* records) {
  std::vector<std::pair<std::string, Record>> named;  // by resource name, as the priorities name them
  named.reserve(records->size());
  for (Record& r : *records) named.emplace_back(FormatName(kind, r.patient_id(), r.id()), std::move(r));
  std::stable_sort(named.begin(), named.end(), [&rank](const auto& a, const auto& b) {
    auto ra = rank.find(a.first), rb = rank.find(b.first);
    const bool pa = ra != rank.end(), pb = rb != rank.end();
    if (pa != pb) return pa;
    if (pa) return ra->second < rb->second;
    const int64_t ma = a.second.update_time_micros(), mb = b.second.update_time_micros();
    if (ma != mb) return ma > mb;
    return a.first > b.first;
  });
  records->clear();
  for (auto& [name, record] : named) records->push_back(std::move(record));
}

// The current, not retracted records of one kind of the patient (the first
// kChartMaxPerKind in id order).
absl::Status CollectForChart(const storage::Reader& reader, absl::string_view patient_id, storage::Kind kind,
                             const CallContext& ctx, std::vector<Record>* out, bool* truncated) {
  int scanned = 0;
  absl::Status late;
  auto scan = reader.ScanCurrent(patient_id, kind, "", [&](const Record& record) {
    if (++scanned % kDeadlineCheckEvery == 0 && absl::Now() > ctx.deadline) {
      late = absl::DeadlineExceededError("deadline exceeded while reading the chart");
      return false;
    }
    if (record.retracted()) return true;
    if (out->size() == kChartMaxPerKind) {
      *truncated = true;
      return false;
    }
    out->push_back(record);
    return true;
  });
  if (!scan.ok()) return scan;
  if (!late.ok()) return late;
  return CheckDeadline(ctx);
}

// The ranks the priorities give (resource name -> position).
absl::StatusOr<std::map<std::string, int>> RanksOf(const std::optional<Record>& priorities) {
  std::map<std::string, int> rank;
  if (!priorities.has_value()) return rank;
  v1::Priorities parsed;  // parsed for the ranks only
  if (!parsed.ParseFromString(priorities->resource())) return absl::DataLossError("stored priorities do not parse");
  for (int i = 0; i < parsed.items_size(); ++i) rank.emplace(parsed.items(i), i);
  return rank;
}

// Appends field `number` (length-delimited) holding `bytes`.
void AppendLengthDelimited(int number, absl::string_view bytes, google::protobuf::io::CodedOutputStream* out) {
  out->WriteTag(google::protobuf::internal::WireFormatLite::MakeTag(
      number, google::protobuf::internal::WireFormatLite::WIRETYPE_LENGTH_DELIMITED));
  out->WriteVarint32(static_cast<uint32_t>(bytes.size()));
  out->WriteRaw(bytes.data(), static_cast<int>(bytes.size()));
}

// The summary's priorities: the stored ones, or empty ones (version 0)
// before they are first set.
std::string PrioritiesBytes(const PatientChart& chart, absl::string_view patient_id) {
  if (chart.priorities.has_value()) return chart.priorities->resource();
  v1::Priorities empty;
  empty.set_name(FormatName(storage::PRIORITIES, patient_id, kPrioritiesId));
  empty.mutable_patient()->set_id(std::string(patient_id));
  empty.set_state(v1::ACTIVE);
  return empty.SerializeAsString();
}

// The chart as a serialized wmty.v1.PatientSummary, fields in number order
// as SerializeAsString writes them.
std::string SerializeSummary(const PatientChart& chart, absl::string_view parent, absl::string_view patient_id) {
  const std::string priorities = PrioritiesBytes(chart, patient_id);
  const std::pair<int, const std::vector<Record>*> lists[] = {
      {v1::PatientSummary::kWhatMattersFieldNumber, &chart.what_matters},
      {v1::PatientSummary::kGoalsFieldNumber, &chart.goals},
      {v1::PatientSummary::kPreferencesFieldNumber, &chart.preferences}};
  size_t total = priorities.size() + parent.size() + 32;
  for (const auto& [field, records] : lists) {
    for (const Record& r : *records) total += r.resource().size() + 8;
  }
  std::string out;
  out.reserve(total);
  {
    google::protobuf::io::StringOutputStream stream(&out);
    google::protobuf::io::CodedOutputStream coded(&stream);
    if (!parent.empty()) AppendLengthDelimited(v1::PatientSummary::kParentFieldNumber, parent, &coded);
    AppendLengthDelimited(v1::PatientSummary::kPrioritiesFieldNumber, priorities, &coded);
    for (const auto& [field, records] : lists) {
      for (const Record& r : *records) AppendLengthDelimited(field, r.resource(), &coded);
    }
    if (chart.truncated) {
      coded.WriteTag(google::protobuf::internal::WireFormatLite::MakeTag(
          v1::PatientSummary::kTruncatedFieldNumber, google::protobuf::internal::WireFormatLite::WIRETYPE_VARINT));
      coded.WriteVarint32(1);
    }
  }  // the streams trim `out` to what was written
  return out;
}

}  // namespace

absl::StatusOr<PatientChart> PatientRecords::ReadChart(absl::string_view patient_id, const ChartOptions& options,
                                                       const CallContext& ctx) {
  if (!IsValidId(patient_id)) return InvalidField("patient", "not a valid patient id");
  if (auto s = CheckDeadline(ctx); !s.ok()) return s;
  return ReadChartFrom(*store_->NewReader(), patient_id, options, ctx);
}

absl::StatusOr<PatientChart> PatientRecords::ReadChartFrom(const storage::Reader& reader, absl::string_view patient_id,
                                                           const ChartOptions& options, const CallContext& ctx) {
  PatientChart chart;
  auto priorities = reader.GetCurrent(storage::PRIORITIES, patient_id, kPrioritiesId);
  if (!priorities.ok()) return priorities.status();
  chart.priorities = std::move(*priorities);
  auto rank = RanksOf(chart.priorities);
  if (!rank.ok()) return rank.status();
  if (options.with_patient) {
    auto patient = reader.GetCurrent(storage::PATIENT, patient_id, patient_id);
    if (!patient.ok()) return patient.status();
    chart.patient = std::move(*patient);
  }
  std::vector<std::pair<storage::Kind, std::vector<Record>*>> lists = {{storage::WHAT_MATTERS, &chart.what_matters},
                                                                       {storage::GOAL, &chart.goals},
                                                                       {storage::PREFERENCE, &chart.preferences}};
  if (options.with_goal_scores) lists.emplace_back(storage::GOAL_SCORE, &chart.goal_scores);
  for (const auto& [kind, records] : lists) {
    if (auto s = CollectForChart(reader, patient_id, kind, ctx, records, &chart.truncated); !s.ok()) return s;
    SortForChart(*rank, kind, records);
  }
  return chart;
}

// ---------------------------------------------------------------- Summary

absl::StatusOr<v1::PatientSummary> PatientRecords::GetPatientSummary(const v1::GetPatientSummaryRequest& req,
                                                                     const CallContext& ctx) {
  auto serialized = GetPatientSummarySerialized(req, ctx);
  if (!serialized.ok()) return serialized.status();
  v1::PatientSummary summary;
  if (!summary.ParseFromString(**serialized)) return absl::DataLossError("a stored resource does not parse");
  return summary;
}

absl::StatusOr<std::shared_ptr<const std::string>> PatientRecords::GetPatientSummarySerialized(
    const v1::GetPatientSummaryRequest& req, const CallContext& ctx) {
  auto patient_id = ParseParent(req.parent(), "parent");
  if (!patient_id.ok()) return patient_id.status();
  if (auto s = CheckDeadline(ctx); !s.ok()) return s;
  // Read before the snapshot is taken: a summary cached under this
  // generation cannot be missing a write acknowledged before it moved (the
  // store moves it after the write is visible, before acknowledging it).
  const uint64_t generation = store_->PatientWriteGeneration(*patient_id);
  if (auto cached = summary_cache_.Get(*patient_id); cached != nullptr && cached->generation == generation) {
    summary_cache_hits_.fetch_add(1, std::memory_order_relaxed);
    return std::shared_ptr<const std::string>(cached, &cached->bytes);
  }
  summary_cache_misses_.fetch_add(1, std::memory_order_relaxed);
  auto chart = ReadChartFrom(*store_->NewReader(), *patient_id, {}, ctx);  // one snapshot: consistent
  if (!chart.ok()) return chart.status();
  auto assembled = std::make_shared<const CachedSummary>(
      CachedSummary{generation, SerializeSummary(*chart, req.parent(), *patient_id)});
  summary_cache_.Put(*patient_id, assembled, assembled->bytes.size());
  return std::shared_ptr<const std::string>(assembled, &assembled->bytes);
}

}  // namespace wmty::domain
