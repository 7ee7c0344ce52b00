#include "fhir/fhir_service.h"

#include <boost/asio/post.hpp>
#include <boost/asio/thread_pool.hpp>
#include <rapidjson/error/en.h>
#include <rapidjson/prettywriter.h>
#include <rapidjson/stringbuffer.h>
#include <rapidjson/writer.h>

#include <algorithm>
#include <atomic>
#include <cstring>
#include <exception>
#include <iterator>
#include <set>
#include <tuple>
#include <type_traits>
#include <utility>
#include <variant>
#include <vector>

#include "absl/container/flat_hash_set.h"
#include "absl/functional/function_ref.h"
#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "absl/synchronization/mutex.h"
#include "common/log.h"
#include "common/status.h"
#include "common/text.h"
#include "common/thread_name.h"
#include "domain/audit_outcome.h"
#include "domain/fhir_types.h"
#include "domain/names.h"
#include "domain/page_token.h"
#include "fhir/audit_event.h"
#include "fhir/capability.h"
#include "fhir/mapping.h"
#include "fhir/patient_mapping.h"
#include "fhir/render_cache.h"
#include "fhir/rest.h"
#include "fhir/search.h"

namespace wmty::fhir {
namespace {

namespace bhttp = boost::beast::http;
using domain::CallContext;
using domain::PatientRecords;
using rapidjson::Document;
using rapidjson::Value;
using storage::Kind;
using storage::Record;
using Alloc = Document::AllocatorType;
using Headers = std::vector<std::pair<bhttp::field, std::string>>;

// Deeper request bodies are refused before the mapping sees them (FHIR
// resources are nowhere near this deep; it bounds any recursion downstream).
constexpr int kMaxJsonDepth = 64;
constexpr int kEverythingMaxPerKind = 1000;
constexpr int kDeadlineCheckEvery = 256;
constexpr size_t kScratchBytes = 1 << 20;
// An update without If-Match that loses a race to another writer is retried
// against the new current version (each round someone wins, so this only
// runs out under sustained contention on one resource).
constexpr int kBlindUpdateRetries = 50;

Value Str(absl::string_view s, Alloc& a) { return Value(s.data(), static_cast<rapidjson::SizeType>(s.size()), a); }
absl::string_view View(const Value& v) { return absl::string_view(v.GetString(), v.GetStringLength()); }

// ---------------------------------------------------------------- resource types

// The kind <-> FHIR type table and FHIR ids: the domain's (domain/fhir_types.h).
using domain::FhirId;
using domain::IsStoredType;
using domain::KindsOf;
using domain::PrimaryKind;
using domain::StoredId;

// ---------------------------------------------------------------- one request

struct Call {
  http::Request request;
  http::Respond respond;
  unsigned version = 11;
  std::string base;
  std::string content_type;
  bool pretty = false;
  Prefer prefer;
  std::vector<QueryParam> query;
  CallContext ctx;
  // For logs: which interaction (never ids or values).
  std::string interaction = "unknown";
  // The verified caller; unset when authentication is disabled.
  std::optional<auth::Principal> principal;
  // The audit record of this request (unset for the public endpoints),
  // appended to `audit_sink` when the request is answered (see Reply).
  std::optional<storage::AuditRecord> audit;
  PatientRecords* audit_sink = nullptr;
  // Elements R4 does not define that a create or update dropped
  // (--fhir_unknown_elements=drop): answered as warnings (Incoming's
  // dropped_count and dropped_elements).
  size_t dropped_count = 0;
  std::vector<std::string> dropped_elements;
  std::atomic<bool> responded{false};

  absl::string_view Header(bhttp::field f) const {
    auto it = request.find(f);
    return it == request.end() ? absl::string_view() : absl::string_view(it->value().data(), it->value().size());
  }
  absl::string_view Header(absl::string_view name) const {
    auto it = request.find(boost::beast::string_view(name.data(), name.size()));
    return it == request.end() ? absl::string_view() : absl::string_view(it->value().data(), it->value().size());
  }
  bool HasHeader(absl::string_view name) const {
    return request.find(boost::beast::string_view(name.data(), name.size())) != request.end();
  }
};
using CallPtr = std::shared_ptr<Call>;

std::string Serialize(const Value& v, bool pretty) {
  rapidjson::StringBuffer buffer;
  if (pretty) {
    rapidjson::PrettyWriter<rapidjson::StringBuffer> writer(buffer);
    writer.SetIndent(' ', 2);
    v.Accept(writer);
  } else {
    rapidjson::Writer<rapidjson::StringBuffer> writer(buffer);
    v.Accept(writer);
  }
  return std::string(buffer.GetString(), buffer.GetSize());
}

// The audit action (FHIR audit-event-action) of one of our interactions.
std::string AuditAction(absl::string_view interaction, bhttp::verb method) {
  if (interaction == "create") return "C";
  if (interaction == "update") return "U";
  if (interaction == "delete") return "D";
  if (interaction == "search") return "E";
  if (interaction == "read" || interaction == "vread" || interaction == "history-instance" ||
      interaction == "history-type" || interaction == "everything") {
    return "R";
  }
  switch (method) {
    case bhttp::verb::get: return "R";
    case bhttp::verb::post: return "C";
    case bhttp::verb::put: return "U";
    case bhttp::verb::delete_: return "D";
    default: return "E";
  }
}

// Completes and appends the call's audit record: who, what, outcome. Only
// codes, ids and the status: never request text or the token.
void RecordAudit(Call& c, http::Status status, absl::StatusCode code) {
  if (!c.audit.has_value() || c.audit_sink == nullptr) return;
  storage::AuditRecord& a = *c.audit;
  a.set_interaction(c.interaction);
  a.set_action(AuditAction(c.interaction, c.request.method()));
  if (c.principal.has_value()) {
    a.set_agent(c.principal->subject);
    a.set_client_id(c.principal->client_id);
  }
  a.set_outcome(domain::AuditOutcomeOf(code));
  a.set_outcome_detail(std::to_string(static_cast<int>(status)));
  c.audit_sink->Audit(std::move(a));
  c.audit.reset();
}

// Who and what a request concerns, once the interaction knows (ids only).
void AuditTarget(Call& c, absl::string_view patient, absl::string_view id = "") {
  if (!c.audit.has_value()) return;
  if (!patient.empty() && domain::IsValidId(patient)) c.audit->set_patient_id(std::string(patient));
  if (!id.empty() && id.size() <= 64 && domain::IsValidId(id)) c.audit->set_resource_id(std::string(id));
}

// Answers once; later calls are ignored. `code`: the status the answer
// stands for, which the audit trail scores (RestError::code).
void ReplyAs(Call& c, absl::StatusCode code, http::Status status, std::optional<std::string> body,
             const Headers& headers) {
  if (c.responded.exchange(true)) return;
  RecordAudit(c, status, code);
  http::Response res{status, c.version};
  res.set(bhttp::field::server, "wmty");
  // A response to HEAD has no body (HEAD itself is answered 405).
  if (body.has_value() && c.request.method() != bhttp::verb::head) {
    res.set(bhttp::field::content_type, c.content_type);
    res.body() = std::move(*body);
  }
  for (const auto& [field, value] : headers) res.set(field, value);
  c.respond(std::move(res));
}

void Reply(Call& c, http::Status status, std::optional<std::string> body, const Headers& headers = {}) {
  ReplyAs(c, StatusCodeOfHttp(status), status, std::move(body), headers);
}

void ReplyError(Call& c, const RestError& e, const Headers& headers = {}) {
  if (static_cast<int>(e.status) >= 500) {
    // Codes and the interaction only: never ids, query values or bodies.
    log::Warning("fhir request failed", {{"interaction", c.interaction},
                                         {"status", std::to_string(static_cast<int>(e.status))},
                                         {"issue", e.issues.empty() ? "" : e.issues.front().code}});
  }
  Document d;
  BuildOperationOutcome(e.issues, &d, d.GetAllocator());
  if (e.retry_after_seconds > 0) {
    Headers with_retry = headers;
    with_retry.emplace_back(bhttp::field::retry_after, std::to_string(e.retry_after_seconds));
    return ReplyAs(c, e.code, e.status, Serialize(d, c.pretty), with_retry);
  }
  ReplyAs(c, e.code, e.status, Serialize(d, c.pretty), headers);
}

void ReplyJson(Call& c, http::Status status, const Value& v, const Headers& headers = {}) {
  Reply(c, status, Serialize(v, c.pretty), headers);
}

RestError Bad(std::string code, std::string diagnostics, std::string expression = "") {
  return MakeRestError(http::Status::bad_request, std::move(code), std::move(diagnostics), std::move(expression));
}

// The version an If-Match header names into `version` (nullopt when there
// is none, or "*": any version). False, answered 400, when it is not an ETag
// of this server.
bool IfMatchOf(Call& c, std::optional<int64_t>* version) {
  version->reset();
  if (c.request.find(bhttp::field::if_match) == c.request.end()) return true;
  const absl::string_view header = absl::StripAsciiWhitespace(c.Header(bhttp::field::if_match));
  if (header == "*") return true;
  *version = ParseEtagVersion(header);
  if (version->has_value()) return true;
  ReplyError(c, Bad("value", "If-Match must be an ETag of this server, e.g. W/\"3\""));
  return false;
}

// PUT's body names the id of its URL. False, answered 400, otherwise.
bool BodyIdIsUrlId(Call& c, const Document& doc, absl::string_view type, absl::string_view id) {
  auto body_id = doc.FindMember("id");
  if (body_id != doc.MemberEnd() && body_id->value.IsString() && View(body_id->value) == id) return true;
  ReplyError(c, Bad(body_id == doc.MemberEnd() ? "required" : "invalid",
                    absl::StrCat("the resource id must equal the id in the URL (", id.substr(0, 64), ")"),
                    absl::StrCat(type, ".id")));
  return false;
}

// Version and time headers of a stored version.
Headers VersionHeaders(Call& c, absl::string_view type, const Record& r) {
  return {{bhttp::field::etag, EtagOf(r.version())},
          {bhttp::field::last_modified, HttpDate(r.update_time_micros())},
          {bhttp::field::content_location,
           absl::StrCat(c.base, "/", type, "/", FhirId(r), "/_history/", r.version())}};
}

// ---------------------------------------------------------------- domain writes

// A write's answer: the stored version it wrote (or, for a repeated
// X-Request-Id, the one the first request wrote).
using WrittenDone = absl::AnyInvocable<void(absl::StatusOr<Record>)>;

// Who a write is recorded by and for (see FhirService::RecorderOf).
struct WriteAgents {
  v1::Recorder recorded_by;  // empty with authentication: the domain sets the caller
  std::optional<v1::Recorder> on_behalf_of;
};

void SetAgents(const WriteAgents& agents, v1::Provenance* p) {
  *p->mutable_recorded_by() = agents.recorded_by;
  if (agents.on_behalf_of.has_value()) *p->mutable_on_behalf_of() = *agents.on_behalf_of;
}

void SetRecorder(AnyResource* resource, const WriteAgents& agents) {
  std::visit([&](auto& r) { SetAgents(agents, r.mutable_provenance()); }, *resource);
}

void CoreCreate(PatientRecords* core, const std::string& patient, AnyResource resource, const std::string& request_id,
                const CallContext& ctx, WrittenDone done) {
  const std::string parent = domain::FormatParent(patient);
  std::visit(
      [&](auto& r) {
        using R = std::decay_t<decltype(r)>;
        if constexpr (std::is_same_v<R, v1::WhatMatters>) {
          v1::CreateWhatMattersRequest req;
          req.set_parent(parent);
          *req.mutable_what_matters() = std::move(r);
          req.set_request_id(request_id);
          core->CreateWhatMatters(req, ctx, std::move(done));
        } else if constexpr (std::is_same_v<R, v1::Goal>) {
          v1::CreateGoalRequest req;
          req.set_parent(parent);
          *req.mutable_goal() = std::move(r);
          req.set_request_id(request_id);
          core->CreateGoal(req, ctx, std::move(done));
        } else if constexpr (std::is_same_v<R, v1::Preference>) {
          v1::CreatePreferenceRequest req;
          req.set_parent(parent);
          *req.mutable_preference() = std::move(r);
          req.set_request_id(request_id);
          core->CreatePreference(req, ctx, std::move(done));
        } else if constexpr (std::is_same_v<R, v1::GoalScore>) {
          v1::CreateGoalScoreRequest req;
          req.set_parent(parent);
          *req.mutable_goal_score() = std::move(r);
          req.set_request_id(request_id);
          core->CreateGoalScore(req, ctx, std::move(done));
        } else {
          // The priorities exist (empty, version 0) before they are first
          // set: creating them is their first update, without an etag.
          v1::UpdatePrioritiesRequest req;
          r.set_name(domain::FormatName(storage::PRIORITIES, patient, domain::kPrioritiesId));
          r.clear_etag();
          *req.mutable_priorities() = std::move(r);
          req.set_request_id(request_id);
          core->UpdatePriorities(req, ctx, std::move(done));
        }
      },
      resource);
}

// A whole-resource update (no field mask) against `etag`.
void CoreUpdate(PatientRecords* core, const std::string& patient, const std::string& stored_id, AnyResource resource,
                const std::string& etag, const std::string& request_id, const CallContext& ctx, WrittenDone done) {
  std::visit(
      [&](auto& r) {
        using R = std::decay_t<decltype(r)>;
        constexpr Kind kind = std::is_same_v<R, v1::WhatMatters> ? storage::WHAT_MATTERS
                              : std::is_same_v<R, v1::Goal>      ? storage::GOAL
                              : std::is_same_v<R, v1::Preference> ? storage::PREFERENCE
                              : std::is_same_v<R, v1::GoalScore>  ? storage::GOAL_SCORE
                                                                  : storage::PRIORITIES;
        r.set_name(domain::FormatName(kind, patient, stored_id));
        r.set_etag(etag);
        if constexpr (std::is_same_v<R, v1::WhatMatters>) {
          v1::UpdateWhatMattersRequest req;
          *req.mutable_what_matters() = std::move(r);
          req.set_request_id(request_id);
          core->UpdateWhatMatters(req, ctx, std::move(done));
        } else if constexpr (std::is_same_v<R, v1::Goal>) {
          v1::UpdateGoalRequest req;
          *req.mutable_goal() = std::move(r);
          req.set_request_id(request_id);
          core->UpdateGoal(req, ctx, std::move(done));
        } else if constexpr (std::is_same_v<R, v1::Preference>) {
          v1::UpdatePreferenceRequest req;
          *req.mutable_preference() = std::move(r);
          req.set_request_id(request_id);
          core->UpdatePreference(req, ctx, std::move(done));
        } else if constexpr (std::is_same_v<R, v1::GoalScore>) {
          v1::UpdateGoalScoreRequest req;
          *req.mutable_goal_score() = std::move(r);
          req.set_request_id(request_id);
          core->UpdateGoalScore(req, ctx, std::move(done));
        } else {
          v1::UpdatePrioritiesRequest req;
          *req.mutable_priorities() = std::move(r);
          req.set_request_id(request_id);
          core->UpdatePriorities(req, ctx, std::move(done));
        }
      },
      resource);
}

void CoreRetract(PatientRecords* core, Kind kind, const std::string& patient, const std::string& id,
                 const std::string& etag, const WriteAgents& agents, const std::string& reason,
                 const std::string& request_id, const CallContext& ctx, WrittenDone done) {
  v1::RetractRequest req;
  req.set_name(domain::FormatName(kind, patient, id));
  req.set_etag(etag);
  req.set_reason(reason);
  *req.mutable_retracted_by() = agents.recorded_by;
  if (agents.on_behalf_of.has_value()) *req.mutable_on_behalf_of() = *agents.on_behalf_of;
  req.set_request_id(request_id);
  switch (kind) {
    case storage::WHAT_MATTERS:
      return core->RetractWhatMatters(req, ctx, std::move(done));
    case storage::GOAL:
      return core->RetractGoal(req, ctx, std::move(done));
    case storage::PREFERENCE:
      return core->RetractPreference(req, ctx, std::move(done));
    case storage::GOAL_SCORE:
      return core->RetractGoalScore(req, ctx, std::move(done));
    default:
      return done(absl::UnimplementedError("this resource cannot be deleted"));
  }
}

// ---------------------------------------------------------------- search results

struct Hit {
  Record record;
  // The rendered resource (null until rendered).
  std::unique_ptr<Document> doc;
};

bool PatientIdLess(const Record& a, const Record& b) {
  if (a.patient_id() != b.patient_id()) return a.patient_id() < b.patient_id();
  if (a.id() != b.id()) return a.id() < b.id();
  return a.kind() < b.kind();
}

// The (patient, id) position a page ends at, as a cursor string.
std::string PositionOf(const Record& r) { return absl::StrCat(r.patient_id(), "/", r.id()); }
std::pair<std::string, std::string> ParsePosition(absl::string_view s) {
  const size_t slash = s.find('/');
  if (slash == absl::string_view::npos) return {std::string(s), ""};
  return {std::string(s.substr(0, slash)), std::string(s.substr(slash + 1))};
}

// ---------------------------------------------------------------- the service

class FhirService final : public http::Handler {
 public:
  FhirService(PatientRecords* core, FhirServiceOptions options)
      : core_(core), options_(std::move(options)), started_micros_(absl::ToUnixMicros(absl::Now())) {}
  // Runs the answers still queued (nothing else may use this by then).
  ~FhirService() override { answer_pool_.join(); }

  void Handle(http::Request request, http::Respond respond) override;
  http::Response MakeError(http::Status status, const std::string& message, unsigned version,
                           bool keep_alive) override;

 private:
  void Route(const CallPtr& c, absl::string_view path);
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
  void Everything(const CallPtr& c, absl::string_view patient_id);
  void ReadAuditEvent(const CallPtr& c, absl::string_view id);
  void SearchAuditEvent(const CallPtr& c);
  // The audit trail needs a scope naming AuditEvent itself (wildcard "*"
  // scopes do not reach it); patient/ scopes only their patient's events.
  auth::Decision AuditDecision(const Call& c, auth::Permission p, absl::string_view patient) const;

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
  void AttemptUpdate(const CallPtr& c, std::string type, Kind kind, std::string patient, std::string stored_id,
                     AnyResource resource, std::string etag, std::string request_id, int retries);
  // Answers a write with the version it produced (not whatever is current by then).
  void RespondWritten(const CallPtr& c, absl::string_view type, const absl::StatusOr<Record>& written,
                      http::Status success);
  // Body per Prefer: the resource (default), nothing, or an OperationOutcome.
  void RespondResource(Call& c, http::Status status, absl::string_view type, const Record& record, Headers headers,
                       absl::string_view what);

  // Search machinery.
  absl::Status ScanCandidates(const SearchSpec& spec, Kind kind, const std::string& after_patient,
                              const std::string& after_id, const CallContext& ctx,
                              absl::FunctionRef<bool(const Record&)> visit);
  // Does `record` match? Renders into `scratch` when the criteria need the
  // FHIR form (then *scratch holds it).
  absl::StatusOr<bool> MatchRecord(const SearchSpec& spec, const Record& record, std::unique_ptr<Document>* scratch);
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
  // completion thread; answering a FHIR write reads the version back and
  // renders it, which on that one thread queued every write's answer behind
  // the others'. The callbacks hand the answer to these threads instead.
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

// ---------------------------------------------------------------- entry

void FhirService::Handle(http::Request request, http::Respond respond) {
  auto c = std::make_shared<Call>();
  c->version = request.version();
  c->request = std::move(request);
  c->respond = std::move(respond);
  c->content_type = "application/fhir+json; charset=utf-8";
  Guarded(c, [&] {
    const auto target = c->request.target();
    absl::string_view t(target.data(), target.size());
    // Absolute-form request targets (RFC 7230 5.3.2).
    if (absl::StartsWith(t, "http://") || absl::StartsWith(t, "https://")) {
      const size_t slash = t.find('/', t.find("//") + 2);
      t = slash == absl::string_view::npos ? absl::string_view("/") : t.substr(slash);
    }
    const size_t q = t.find('?');
    const absl::string_view path = t.substr(0, q);
    const absl::string_view query = q == absl::string_view::npos ? absl::string_view() : t.substr(q + 1);
    // Authentication comes first: only the CapabilityStatement and our
    // CodeSystem (no PHI) are public.
    const bool is_public = path == "/fhir/metadata" || path == "/fhir/metadata/" || path == "/fhir/CodeSystem" ||
                           absl::StartsWith(path, "/fhir/CodeSystem/");
    if (!is_public) {
      // Every other request is audited, refused ones included (see Reply).
      storage::AuditRecord& audit = c->audit.emplace();
      audit.set_source("fhir");
      audit.set_remote(std::string(c->Header(http::kRemoteAddressHeader)));
      absl::string_view rest = path;
      if (absl::ConsumePrefix(&rest, "/fhir/")) {
        const absl::string_view type = rest.substr(0, rest.find('/'));
        if (IsAuditedType(type)) {
          audit.set_resource_type(std::string(type));
        }
      }
      c->audit_sink = core_;
    }
    // A header that may appear once, sent twice, is ambiguous (which one
    // counts may differ between a proxy and us: whose token, which body
    // type, which request id), so it is refused rather than guessed.
    for (const absl::string_view name : {"Authorization", "Content-Type", "Host", "If-Match", "If-None-Match",
                                         "If-None-Exist", "X-Request-Id", "X-Provenance"}) {
      const auto [first, end] = c->request.equal_range(boost::beast::string_view(name.data(), name.size()));
      if (first != end && std::next(first) != end) {
        return ReplyError(*c, Bad("structure", absl::StrCat("the ", name, " header appears more than once")));
      }
    }
    if (!is_public && !Authenticate(*c)) return;
    auto params = ParseQueryString(query);
    if (!params.ok()) return ReplyError(*c, Bad("invalid", std::string(params.status().message())));
    c->query = std::move(*params);
    std::optional<std::string> format;
    for (const auto& p : c->query) {
      if (p.name == "_format") format = p.value;
      if (p.name == "_pretty") c->pretty = p.value == "true";
    }
    const Negotiated n =
        NegotiateResponseType(c->Header(bhttp::field::accept),
                              format.has_value() ? std::optional<absl::string_view>(*format) : std::nullopt);
    if (!n.acceptable) {
      return ReplyError(*c, MakeRestError(http::Status::not_acceptable, "not-supported", n.reason));
    }
    c->content_type = n.content_type;
    std::string prefer;
    for (auto [it, end] = c->request.equal_range(bhttp::field::prefer); it != end; ++it) {
      absl::StrAppend(&prefer, prefer.empty() ? "" : ",", absl::string_view(it->value().data(), it->value().size()));
    }
    c->prefer = ParsePrefer(prefer);
    c->ctx.deadline = absl::Now() + options_.request_timeout;
    if (!options_.base_url.empty()) {
      c->base = options_.base_url;
      while (!c->base.empty() && c->base.back() == '/') c->base.pop_back();
    } else {
      // Only host[:port] characters; anything else is not echoed back.
      std::string host(c->Header(bhttp::field::host));
      const bool ok = !host.empty() && std::all_of(host.begin(), host.end(), [](char ch) {
        return absl::ascii_isalnum(static_cast<unsigned char>(ch)) || ch == '.' || ch == '-' || ch == ':' ||
               ch == '[' || ch == ']' || ch == '_';
      });
      c->base = absl::StrCat("http://", ok ? host : "localhost", "/fhir");
    }
    Route(c, path);
  });
}

void FhirService::Guarded(const CallPtr& c, absl::FunctionRef<void()> body) {
  try {
    body();
  } catch (const std::exception&) {
    log::Error("fhir handler threw", {{"interaction", c->interaction}});
    ReplyError(*c, MakeRestError(http::Status::internal_server_error, "exception", "internal error"));
  } catch (...) {
    log::Error("fhir handler threw", {{"interaction", c->interaction}});
    ReplyError(*c, MakeRestError(http::Status::internal_server_error, "exception", "internal error"));
  }
}

http::Response FhirService::MakeError(http::Status status, const std::string& message, unsigned version,
                                      bool keep_alive) {
  std::string code = "structure";
  if (status == http::Status::payload_too_large || status == http::Status::request_header_fields_too_large) {
    code = "too-long";
  } else if (status == http::Status::service_unavailable) {
    // The HTTP server's own refusals: over its connection or in-flight limit,
    // or shutting down. Both pass; the message says which.
    code = "transient";
  } else if (static_cast<int>(status) >= 500) {
    code = "exception";
  }
  Document d;
  BuildOperationOutcome({Issue{"error", code, message, ""}}, &d, d.GetAllocator());
  http::Response res{status, version};
  res.set(bhttp::field::server, "wmty");
  res.set(bhttp::field::content_type, "application/fhir+json; charset=utf-8");
  res.body() = Serialize(d, false);
  res.keep_alive(keep_alive);
  return res;
}

// ---------------------------------------------------------------- authorization

bool FhirService::Authenticate(Call& c) {
  if (options_.verifier == nullptr) return true;
  // RFC 6750: no credentials -> no error code; bad credentials -> invalid_token.
  auto refuse = [&](absl::string_view why, bool with_error) {
    ReplyError(c, MakeRestError(http::Status::unauthorized, "login", std::string(why)),
               {{bhttp::field::www_authenticate,
                 with_error ? "Bearer realm=\"wmty\", error=\"invalid_token\"" : "Bearer realm=\"wmty\""}});
    return false;
  };
  if (c.request.find(bhttp::field::authorization) == c.request.end()) {
    return refuse("authentication required: send Authorization: Bearer <access token>", false);
  }
  const absl::string_view header = absl::StripAsciiWhitespace(c.Header(bhttp::field::authorization));
  if (header.size() < 7 || !absl::EqualsIgnoreCase(header.substr(0, 7), "Bearer ")) {
    return refuse("the Authorization header must be: Bearer <access token>", true);
  }
  const absl::string_view token = absl::StripLeadingAsciiWhitespace(header.substr(7));
  auto principal = options_.verifier->Verify(token);
  if (!principal.ok()) {
    // The verifier's message is safe to show (it never echoes the token).
    return refuse(absl::StrCat("invalid access token: ", principal.status().message()), true);
  }
  c.principal = std::move(*principal);
  c.ctx.principal = &*c.principal;  // the recorder of this request's writes
  return true;
}

bool FhirService::MayAtAll(const Call& c, absl::string_view type, auth::Permission p) const {
  if (!c.principal.has_value()) return true;
  return auth::Authorize(*c.principal, type, p, c.principal->patient.value_or("")) !=
         auth::Decision::kInsufficientScope;
}

namespace {
const char* PermissionName(auth::Permission p) {
  switch (p) {
    case auth::kCreate: return "create (c)";
    case auth::kRead: return "read (r)";
    case auth::kUpdate: return "update (u)";
    case auth::kDelete: return "delete (d)";
    case auth::kSearch: return "search (s)";
  }
  return "?";
}
}  // namespace

bool FhirService::AuthorizeType(Call& c, absl::string_view type, auth::Permission p) {
  if (MayAtAll(c, type, p)) return true;
  ReplyError(c,
             MakeRestError(http::Status::forbidden, "forbidden",
                           absl::StrCat("the access token has no scope granting ", PermissionName(p), " on ", type)),
             {{bhttp::field::www_authenticate, "Bearer realm=\"wmty\", error=\"insufficient_scope\""}});
  return false;
}

bool FhirService::Authorize(Call& c, absl::string_view type, auth::Permission p, absl::string_view patient,
                            const RestError* not_found) {
  if (!c.principal.has_value()) return true;
  const auth::Decision d = auth::Authorize(*c.principal, type, p, patient);
  if (d == auth::Decision::kAllow) return true;
  if (d == auth::Decision::kOtherPatient && not_found != nullptr) {
    ReplyError(c, *not_found);
    return false;
  }
  const std::string why =
      d == auth::Decision::kOtherPatient
          ? absl::StrCat("the access token's patient scopes do not reach this patient (", PermissionName(p), " on ",
                         type, "; searches need ", type == "Patient" ? "_id" : "patient", "=<the token's patient>)")
          : absl::StrCat("the access token has no scope granting ", PermissionName(p), " on ", type);
  ReplyError(c, MakeRestError(http::Status::forbidden, "forbidden", why),
             {{bhttp::field::www_authenticate, "Bearer realm=\"wmty\", error=\"insufficient_scope\""}});
  return false;
}

void FhirService::Route(const CallPtr& c, absl::string_view path) {
  if (path != "/fhir" && !absl::StartsWith(path, "/fhir/")) {
    return ReplyError(*c, MakeRestError(http::Status::not_found, "not-found",
                                        "no such endpoint: the FHIR base is /fhir (try /fhir/metadata)"));
  }
  std::vector<std::string> seg = absl::StrSplit(path.substr(5), '/', absl::SkipEmpty());
  const bhttp::verb method = c->request.method();
  const bool get = method == bhttp::verb::get;
  auto not_allowed = [&](absl::string_view allow) {
    ReplyError(*c,
               MakeRestError(http::Status::method_not_allowed, "not-supported",
                             absl::StrCat(std::string(c->request.method_string()), " is not supported here (allowed: ",
                                          allow, ")")),
               {{bhttp::field::allow, std::string(allow)}});
  };
  if (seg.empty()) {
    c->interaction = "system";
    return ReplyError(*c, Bad("not-supported",
                              "whole-system interactions (batch, transaction, system search, system history) are "
                              "not supported; see [base]/metadata"));
  }
  const std::string& type = seg[0];
  if (type == "metadata" && seg.size() == 1) {
    c->interaction = "capabilities";
    return get ? Metadata(c) : not_allowed("GET");
  }
  if (type == "_history" || absl::StartsWith(type, "$")) {
    c->interaction = "system";
    return ReplyError(*c, Bad("not-supported", "system-level history and operations are not supported"));
  }
  if (type == "CodeSystem") {
    if (seg.size() == 1 && get) {  // by canonical URL: CodeSystem?url=...
      c->interaction = "search";
      return SearchCodeSystem(c);
    }
    c->interaction = "read";
    if (seg.size() != 2) return not_allowed("GET [base]/CodeSystem/wmty");
    return get ? ReadCodeSystem(c, seg[1]) : not_allowed("GET");
  }
  if (type == "Patient") {
    if (seg.size() == 3 && seg[2] == "$everything") {
      c->interaction = "everything";
      return get ? Everything(c, seg[1]) : not_allowed("GET");
    }
    // The id is the EHR's: a Patient is created by PUT, and corrected, never deleted.
    if (seg.size() == 1 && method == bhttp::verb::post) {
      c->interaction = "create";
      return ReplyError(*c,
                        MakeRestError(http::Status::method_not_allowed, "not-supported",
                                      "a Patient's id is the EHR's patient id: send PUT [base]/Patient/<that id>"),
                        {{bhttp::field::allow, "GET"}});
    }
    if (seg.size() == 2 && method == bhttp::verb::delete_) {
      c->interaction = "delete";
      return ReplyError(*c,
                        MakeRestError(http::Status::method_not_allowed, "not-supported",
                                      "Patient records come from the hospital's systems and are not deleted here: "
                                      "PUT a corrected version"),
                        {{bhttp::field::allow, "GET, PUT"}});
    }
  }
  if (type == "Provenance") {
    if (seg.size() == 1 || (seg.size() == 2 && seg[1] == "_search")) {
      c->interaction = "search";
      if (!get && !(method == bhttp::verb::post && seg.size() == 2)) return not_allowed("GET, POST _search");
      std::vector<QueryParam> params = c->query;
      if (method == bhttp::verb::post) {
        if (!IsFormMediaType(c->Header(bhttp::field::content_type))) {
          return ReplyError(*c, MakeRestError(http::Status::unsupported_media_type, "not-supported",
                                              "POST _search takes application/x-www-form-urlencoded"));
        }
        auto body = ParseQueryString(c->request.body());
        if (!body.ok()) return ReplyError(*c, Bad("invalid", std::string(body.status().message())));
        params.insert(params.end(), body->begin(), body->end());
      }
      auto spec = ParseSearch("Provenance", params, c->prefer.strict);
      if (!spec.ok()) {
        return ReplyError(*c, Bad(spec.status().code() == absl::StatusCode::kUnimplemented ? "not-supported" : "invalid",
                                  std::string(spec.status().message())));
      }
      return SearchProvenance(c, *spec);
    }
    if (seg.size() == 2) {
      c->interaction = "read";
      return get ? ReadProvenance(c, seg[1]) : not_allowed("GET");
    }
    return not_allowed("GET [base]/Provenance/[id], GET [base]/Provenance?target=");
  }
  if (type == "AuditEvent") {
    // Read-only: the audit trail cannot be changed through any API.
    if (seg.size() == 1 || (seg.size() == 2 && seg[1] == "_search")) {
      c->interaction = "search";
      if (!get) return not_allowed("GET");
      return SearchAuditEvent(c);
    }
    if (seg.size() == 2) {
      c->interaction = "read";
      return get ? ReadAuditEvent(c, seg[1]) : not_allowed("GET");
    }
    c->interaction = "unknown";
    return not_allowed("GET [base]/AuditEvent/[id], GET [base]/AuditEvent?patient=");
  }
  if (!IsStoredType(type)) {
    c->interaction = "unknown-type";
    return ReplyError(*c, MakeRestError(http::Status::not_found, "not-supported",
                                        absl::StrCat("resource type ", type.substr(0, 64),
                                                     " is not supported (Goal, Observation, List, Patient, "
                                                     "Provenance, CodeSystem are)")));
  }
  const bool is_list = type == "List";
  if (seg.size() == 1) {
    if (get) {
      c->interaction = "search";
      return Search(c, type, c->query);
    }
    if (method == bhttp::verb::post) {
      c->interaction = "create";
      return Create(c, type);
    }
    return not_allowed("GET, POST");
  }
  if (seg.size() == 2 && seg[1] == "_search") {
    c->interaction = "search";
    if (!get && method != bhttp::verb::post) return not_allowed("GET, POST");
    std::vector<QueryParam> params = c->query;
    if (method == bhttp::verb::post) {
      if (!IsFormMediaType(c->Header(bhttp::field::content_type))) {
        return ReplyError(*c, MakeRestError(http::Status::unsupported_media_type, "not-supported",
                                            "POST _search takes application/x-www-form-urlencoded"));
      }
      auto body = ParseQueryString(c->request.body());
      if (!body.ok()) return ReplyError(*c, Bad("invalid", std::string(body.status().message())));
      params.insert(params.end(), body->begin(), body->end());
    }
    return Search(c, type, params);
  }
  if (seg.size() == 2 && seg[1] == "_history") {
    c->interaction = "history-type";
    return get ? TypeHistory(c, type) : not_allowed("GET");
  }
  if (seg.size() == 2) {
    switch (method) {
      case bhttp::verb::get:
        c->interaction = "read";
        return Read(c, type, seg[1]);
      case bhttp::verb::put:
        c->interaction = "update";
        return type == "Patient" ? UpdatePatient(c, seg[1]) : Update(c, type, seg[1]);
      case bhttp::verb::delete_:
        c->interaction = "delete";
        if (is_list) {
          return ReplyError(*c,
                            MakeRestError(http::Status::method_not_allowed, "not-supported",
                                          "a patient's priorities List cannot be deleted: PUT it with no entries to "
                                          "clear it"),
                            {{bhttp::field::allow, "GET, PUT"}});
        }
        return Delete(c, type, seg[1]);
      default:
        return not_allowed(is_list ? "GET, PUT" : "GET, PUT, DELETE");
    }
  }
  if (seg.size() == 3 && seg[2] == "_history") {
    c->interaction = "history-instance";
    return get ? InstanceHistory(c, type, seg[1]) : not_allowed("GET");
  }
  if (seg.size() == 4 && seg[2] == "_history") {
    c->interaction = "vread";
    return get ? VRead(c, type, seg[1], seg[3]) : not_allowed("GET");
  }
  c->interaction = "unknown";
  return ReplyError(*c, Bad("not-supported", "no such interaction (operations and compartments are not supported)"));
}

// ---------------------------------------------------------------- simple reads

void FhirService::Metadata(const CallPtr& c) {
  Document d;
  BuildCapabilityStatement(c->base, started_micros_, options_.smart, &d, d.GetAllocator());
  ReplyJson(*c, http::Status::ok, d);
}

void FhirService::ReadCodeSystem(const CallPtr& c, absl::string_view id) {
  if (id != kCodeSystemId) {
    return ReplyError(*c, MakeRestError(http::Status::not_found, "not-found",
                                        absl::StrCat("only CodeSystem/", kCodeSystemId, " is served here")));
  }
  Document d;
  d.SetObject();
  CodeSystem(&d, d.GetAllocator());
  ReplyJson(*c, http::Status::ok, d);
}

absl::StatusOr<std::optional<Record>> FhirService::FindCurrent(absl::string_view type, absl::string_view id) {
  for (Kind kind : KindsOf(type)) {
    auto r = core_->FindCurrentById(kind, id);
    if (!r.ok() || r->has_value()) return r;
  }
  return std::optional<Record>();
}

absl::StatusOr<std::optional<Record>> FhirService::FindVersion(const Record& current, int64_t version) {
  if (version == current.version()) return std::optional<Record>(current);
  std::optional<Record> found;
  if (version < 1 || version > current.version()) return found;
  auto s = core_->ScanStoredVersions(current.kind(), current.patient_id(), current.id(), version - 1,
                                     [&](const Record& r) {
                                       if (r.version() == version) found = r;
                                       return false;
                                     });
  if (!s.ok()) return s;
  return found;
}

// The resource of a stored version as the body.
// The compact FHIR JSON of a stored version, from the cache or rendered now.
absl::StatusOr<std::shared_ptr<const std::string>> Rendered(RenderCache& cache, const Record& record) {
  if (auto hit = cache.Get(record); hit != nullptr) return hit;
  Document d;
  d.SetObject();
  if (auto s = ToFhir(record, &d, d.GetAllocator()); !s.ok()) return s;
  auto json = std::make_shared<const std::string>(Serialize(d, /*pretty=*/false));
  cache.Put(record, json);
  return json;
}

void ReplyRecord(Call& c, RenderCache& cache, http::Status status, absl::string_view type, const Record& record,
                 const Headers& headers) {
  if (!c.pretty) {
    auto json = Rendered(cache, record);
    if (!json.ok()) return ReplyError(c, FromStatus(json.status(), record.kind()));
    return Reply(c, status, **json, headers);
  }
  Document d;
  d.SetObject();
  if (auto s = ToFhir(record, &d, d.GetAllocator()); !s.ok()) return ReplyError(c, FromStatus(s, record.kind()));
  ReplyJson(c, status, d, headers);
}

// One entry of a searchset Bundle whose resource is already rendered JSON.
struct RawEntry {
  std::string full_url;
  std::shared_ptr<const std::string> resource;
  const char* mode;
};

// A compact Writer that splices already-serialized JSON in with one memcpy:
// rapidjson's RawValue copies byte by byte, which was 22% of the CPU of a
// 20-Goal search (a 27 KB Bundle).
class SplicingWriter : public rapidjson::Writer<rapidjson::StringBuffer> {
 public:
  using Writer::Writer;
  bool RawObject(absl::string_view json) {
    Prefix(rapidjson::kObjectType);
    std::memcpy(os_->Push(json.size()), json.data(), json.size());
    return EndValue(true);
  }
};
void WriteRawObject(SplicingWriter& w, absl::string_view json) { w.RawObject(json); }
// _pretty=true: the compact rendering is parsed again so that the resource is
// indented like the rest (spliced raw, it stayed on one line).
void WriteRawObject(rapidjson::PrettyWriter<rapidjson::StringBuffer>& w, absl::string_view json) {
  Document d;
  d.Parse(json.data(), json.size());
  if (d.HasParseError()) {  // cannot happen (our own rendering): spliced as when compact
    w.RawValue(json.data(), json.size(), rapidjson::kObjectType);
    return;
  }
  d.Accept(w);
}

// Writes `head` (a Bundle without entries) and `entries`, splicing each
// rendered resource in as raw JSON rather than copying it through a DOM.
template <class Writer>
void WriteBundle(Writer& w, const Value& head, const std::vector<RawEntry>& entries) {
  w.StartObject();
  for (auto it = head.MemberBegin(); it != head.MemberEnd(); ++it) {
    w.Key(it->name.GetString(), it->name.GetStringLength());
    it->value.Accept(w);
  }
  if (!entries.empty()) {  // FHIR JSON has no empty arrays
    w.Key("entry");
    w.StartArray();
    for (const RawEntry& e : entries) {
      w.StartObject();
      w.Key("fullUrl");
      w.String(e.full_url.data(), static_cast<rapidjson::SizeType>(e.full_url.size()));
      w.Key("resource");
      WriteRawObject(w, *e.resource);
      w.Key("search");
      w.StartObject();
      w.Key("mode");
      w.String(e.mode);
      w.EndObject();
      w.EndObject();
    }
    w.EndArray();
  }
  w.EndObject();
}

std::string SerializeBundle(const Value& head, const std::vector<RawEntry>& entries, bool pretty) {
  rapidjson::StringBuffer buffer;
  size_t expected = 1024;  // the head and each entry's wrapping
  for (const RawEntry& e : entries) expected += e.resource->size() + e.full_url.size() + 64;
  buffer.Reserve(pretty ? expected * 2 : expected);
  if (pretty) {
    rapidjson::PrettyWriter<rapidjson::StringBuffer> writer(buffer);
    writer.SetIndent(' ', 2);
    WriteBundle(writer, head, entries);
  } else {
    SplicingWriter writer(buffer);
    WriteBundle(writer, head, entries);
  }
  return std::string(buffer.GetString(), buffer.GetSize());
}

// What a write that dropped elements R4 does not define answers
// (--fhir_unknown_elements=drop): what was written, and a warning per element.
std::vector<Issue> DroppedIssues(const Call& c, absl::string_view type, std::string written) {
  std::vector<Issue> issues = {Issue{"information", "informational", std::move(written), ""}};
  for (const std::string& path : c.dropped_elements) {
    issues.push_back(Issue{"warning", "structure",
                           absl::StrCat(path, ": ", kUnknownElement, " of FHIR R4 ", type, ", dropped: not stored"),
                           path});
  }
  if (c.dropped_count > c.dropped_elements.size()) {
    issues.push_back(Issue{"warning", "structure",
                           absl::StrCat(c.dropped_count - c.dropped_elements.size(), " more ", kUnknownElement,
                                        "s of FHIR R4 ", type, " dropped (not listed): not stored"),
                           std::string(type)});
  }
  return issues;
}

void FhirService::RespondResource(Call& c, http::Status status, absl::string_view type, const Record& record,
                                  Headers headers, absl::string_view what) {
  if (c.dropped_count > 0) {
    // Whatever Prefer asks: the client must learn what was not stored.
    Document d;
    BuildOperationOutcome(
        DroppedIssues(c, type, absl::StrCat(what, " ", type, "/", FhirId(record), " version ", record.version())), &d,
        d.GetAllocator());
    return ReplyJson(c, status, d, headers);
  }
  switch (c.prefer.return_pref) {
    case Prefer::Return::kMinimal:
      return Reply(c, status, std::nullopt, headers);
    case Prefer::Return::kOperationOutcome: {
      Document d;
      BuildOperationOutcome({Issue{"information", "informational",
                                   absl::StrCat(what, " ", type, "/", FhirId(record), " version ", record.version()),
                                   ""}},
                            &d, d.GetAllocator());
      return ReplyJson(c, status, d, headers);
    }
    default:
      return ReplyRecord(c, render_cache_, status, type, record, headers);
  }
}

// The one patient a search is confined to ("" when none, or several).
std::string SearchPatient(const SearchSpec& spec) {
  return spec.patients.has_value() && spec.patients->size() == 1 ? spec.patients->front() : std::string();
}

RestError UnknownId(absl::string_view type, absl::string_view id) {
  return MakeRestError(http::Status::not_found, "not-found", domain::NotFoundMessage(type, id.substr(0, 64)));
}

void FhirService::Read(const CallPtr& c, absl::string_view type, absl::string_view id) {
  if (!AuthorizeType(*c, type, auth::kRead)) return;
  auto current = FindCurrent(type, id);
  if (!current.ok()) return ReplyError(*c, FromStatus(current.status(), PrimaryKind(type)));
  const RestError unknown = UnknownId(type, id);
  if (!current->has_value()) return ReplyError(*c, unknown);
  const Record& r = **current;
  AuditTarget(*c, r.patient_id(), id);
  if (!Authorize(*c, type, auth::kRead, r.patient_id(), &unknown)) return;
  if (r.retracted()) {
    return ReplyError(*c,
                      MakeRestError(http::Status::gone, "deleted",
                                    absl::StrCat(type, "/", id, " was deleted (entered in error); its history is kept "
                                                                "at [base]/", type, "/", id, "/_history")),
                      {{bhttp::field::etag, EtagOf(r.version())}});
  }
  const absl::string_view if_none_match = c->Header(bhttp::field::if_none_match);
  if (!if_none_match.empty()) {
    for (absl::string_view tag : absl::StrSplit(if_none_match, ',')) {
      if (absl::StripAsciiWhitespace(tag) == "*" || ParseEtagVersion(tag) == r.version()) {
        return Reply(*c, http::Status::not_modified, std::nullopt, VersionHeaders(*c, type, r));
      }
    }
  }
  ReplyRecord(*c, render_cache_, http::Status::ok, type, r, VersionHeaders(*c, type, r));
}
void FhirService::VRead(const CallPtr& c, absl::string_view type, absl::string_view id, absl::string_view vid) {
  if (!AuthorizeType(*c, type, auth::kRead)) return;
  auto current = FindCurrent(type, id);
  if (!current.ok()) return ReplyError(*c, FromStatus(current.status(), PrimaryKind(type)));
  const RestError unknown = UnknownId(type, id);
  if (!current->has_value()) return ReplyError(*c, unknown);
  AuditTarget(*c, (*current)->patient_id(), id);
  if (!Authorize(*c, type, auth::kRead, (*current)->patient_id(), &unknown)) return;
  int64_t version = 0;
  if (!absl::SimpleAtoi(vid, &version) || version < 1) {
    return ReplyError(*c, MakeRestError(http::Status::not_found, "not-found",
                                        "no such version (versions are numbered 1, 2, ...)"));
  }
  auto record = FindVersion(**current, version);
  if (!record.ok()) return ReplyError(*c, FromStatus(record.status(), (*current)->kind()));
  if (!record->has_value()) {
    return ReplyError(*c, MakeRestError(http::Status::not_found, "not-found",
                                        absl::StrCat(type, "/", id, " has no version ", version)));
  }
  if ((*record)->retracted()) {
    return ReplyError(*c, MakeRestError(http::Status::gone, "deleted",
                                        absl::StrCat("version ", version, " of ", type, "/", id,
                                                     " is its deletion (entered in error)")));
  }
  ReplyRecord(*c, render_cache_, http::Status::ok, type, **record, VersionHeaders(*c, type, **record));
}

// ---------------------------------------------------------------- request bodies and headers

bool FhirService::ParseBody(Call& c, absl::string_view type, Document* doc) {
  const absl::string_view content_type = c.Header(bhttp::field::content_type);
  if (!IsJsonMediaType(content_type)) {
    ReplyError(c, MakeRestError(http::Status::unsupported_media_type, "not-supported",
                                "the body must be application/fhir+json (or application/json), UTF-8"));
    return false;
  }
  const std::string& body = c.request.body();
  if (absl::StripAsciiWhitespace(body).empty()) {
    ReplyError(c, Bad("structure", absl::StrCat("the request body is empty: send a ", type, " resource")));
    return false;
  }
  doc->Parse<rapidjson::kParseIterativeFlag | rapidjson::kParseValidateEncodingFlag>(body.data(), body.size());
  if (doc->HasParseError()) {
    // A body that is not JSON may be one whose Content-Length lies: what
    // follows it on the connection cannot be trusted to be the next request
    // (smuggling), so the connection is closed after this answer.
    ReplyError(c,
               Bad("structure", absl::StrCat("the body is not valid JSON: ",
                                             rapidjson::GetParseError_En(doc->GetParseError()), " (at byte ",
                                             doc->GetErrorOffset(), ")")),
               {{bhttp::field::connection, "close"}});
    return false;
  }
  if (auto s = CheckJsonShape(*doc, kMaxJsonDepth); !s.ok()) {
    ReplyError(c, Bad("structure", std::string(s.message())));
    return false;
  }
  if (!doc->IsObject()) {
    ReplyError(c, Bad("structure", "the body must be a JSON object (a FHIR resource)"));
    return false;
  }
  auto rt = doc->FindMember("resourceType");
  if (rt == doc->MemberEnd() || !rt->value.IsString()) {
    ReplyError(c, Bad("structure", "the body has no resourceType", "resourceType"));
    return false;
  }
  if (View(rt->value) != type) {
    ReplyError(c, Bad("invalid",
                      absl::StrCat("resourceType ", View(rt->value).substr(0, 64), " does not match the URL (", type,
                                   ")"),
                      "resourceType"));
    return false;
  }
  return true;
}

bool FhirService::RequestIdOf(Call& c, std::string* out) {
  const absl::string_view id = c.Header("X-Request-Id");
  if (!c.HasHeader("X-Request-Id")) return true;
  if (id.empty() || id.size() > 128 || !IsValidUtf8(id) || HasControlCharacters(id)) {
    ReplyError(c, Bad("value", "X-Request-Id must be 1 to 128 bytes of printable text (a UUID is recommended)"));
    return false;
  }
  *out = std::string(id);
  return true;
}

bool FhirService::RecorderOf(Call& c, WriteAgents* out, std::string* reason) {
  std::optional<XProvenance> stated;
  if (c.HasHeader("X-Provenance")) {
    auto parsed = ParseXProvenance(c.Header("X-Provenance"));
    if (!parsed.ok()) {
      ReplyError(c, Bad("invalid", std::string(parsed.status().message())));
      return false;
    }
    if (!parsed->reason.empty() && reason == nullptr) {
      // Never drop what a user typed: only a deletion keeps a reason.
      ReplyError(c, Bad("invalid", "X-Provenance reason[0].text is kept only on DELETE (why it is retracted)",
                        "Provenance.reason[0].text"));
      return false;
    }
    stated = std::move(*parsed);
  }
  if (reason != nullptr && stated.has_value()) *reason = stated->reason;
  std::optional<v1::Recorder> author = stated.has_value() ? std::move(stated->author) : std::nullopt;
  if (c.principal.has_value()) {
    out->on_behalf_of = std::move(author);
  } else if (author.has_value()) {
    out->recorded_by = std::move(*author);
  } else {
    out->recorded_by.set_practitioner_id(std::string(kUnattributedPractitioner));
  }
  return true;
}

// List entries name Goal/<id> or Observation/<id> (Incoming::list_item_refs);
// an Observation is either a what-matters answer or a preference, which only
// the store knows. Fills priorities->items with the domain names, in order.
bool FhirService::ResolvePriorityItems(Call& c, const std::string& patient, const std::vector<std::string>& refs,
                                       v1::Priorities* priorities) {
  priorities->clear_items();
  for (size_t i = 0; i < refs.size(); ++i) {
    const std::string where = absl::StrCat("List.entry[", i, "].item");
    auto ref = ParseReference(refs[i]);
    if (!ref.has_value() || (ref->type != "Goal" && ref->type != "Observation")) {
      ReplyError(c, Bad("value", "a priority must reference Goal/<id> or Observation/<id>", where));
      return false;
    }
    std::optional<Record> found;
    for (Kind kind : ref->type == "Goal" ? std::vector<Kind>{storage::GOAL}
                                         : std::vector<Kind>{storage::WHAT_MATTERS, storage::PREFERENCE}) {
      auto r = core_->FindCurrentById(kind, ref->id);
      if (!r.ok()) {
        ReplyError(c, FromStatus(r.status(), storage::PRIORITIES));
        return false;
      }
      if (r->has_value()) {
        found = std::move(**r);
        break;
      }
    }
    if (!found.has_value() || found->patient_id() != patient || found->retracted()) {
      ReplyError(c, Bad("value",
                        absl::StrCat(ref->type, "/", ref->id.substr(0, 64),
                                     " is not a current goal, what-matters answer or preference of this patient"),
                        where));
      return false;
    }
    priorities->add_items(domain::FormatName(found->kind(), patient, found->id()));
  }
  return true;
}

// ---------------------------------------------------------------- create

void FhirService::Create(const CallPtr& c, absl::string_view type) {
  if (!AuthorizeType(*c, type, auth::kCreate)) return;
  Document doc;
  if (!ParseBody(*c, type, &doc)) return;
  auto incoming = FromFhir(type, doc, options_.unknown_elements);
  if (!incoming.ok()) return ReplyError(*c, FromStatus(incoming.status(), PrimaryKind(type), true));
  c->dropped_count = incoming->dropped_count;
  c->dropped_elements = std::move(incoming->dropped_elements);
  // c for the patient the body names, before anything is looked up.
  AuditTarget(*c, incoming->patient_id);
  if (!Authorize(*c, type, auth::kCreate, incoming->patient_id)) return;
  std::string request_id;
  if (!RequestIdOf(*c, &request_id)) return;
  WriteAgents agents;
  if (!RecorderOf(*c, &agents)) return;
  SetRecorder(&incoming->resource, agents);
  if (incoming->kind == storage::PRIORITIES) {
    auto existing = core_->FindCurrentById(storage::PRIORITIES, incoming->patient_id);
    if (!existing.ok()) return ReplyError(*c, FromStatus(existing.status(), storage::PRIORITIES));
    if (existing->has_value() && !c->HasHeader("If-None-Exist") && request_id.empty()) {
      return ReplyError(*c, MakeRestError(http::Status::conflict, "duplicate",
                                          absl::StrCat("the patient's priorities List exists (List/",
                                                       incoming->patient_id, "): update it with PUT")));
    }
    if (!ResolvePriorityItems(*c, incoming->patient_id, incoming->list_item_refs,
                              &std::get<v1::Priorities>(incoming->resource))) {
      return;
    }
  }

  if (!c->HasHeader("If-None-Exist")) return DoCreate(c, std::string(type), std::move(*incoming), request_id, nullptr);

  // Conditional create: the criteria are a search of this type.
  absl::string_view criteria = absl::StripAsciiWhitespace(c->Header("If-None-Exist"));
  if (const size_t q = criteria.find('?'); q != absl::string_view::npos) criteria.remove_prefix(q + 1);
  auto params = ParseQueryString(criteria);
  if (!params.ok()) return ReplyError(*c, Bad("invalid", absl::StrCat("If-None-Exist: ", params.status().message())));
  // Strict always: ignoring an unknown parameter would widen the match.
  auto spec = ParseSearch(type, *params, /*strict=*/true);
  if (!spec.ok()) {
    return ReplyError(*c, Bad(spec.status().code() == absl::StatusCode::kUnimplemented ? "not-supported" : "invalid",
                              absl::StrCat("If-None-Exist: ", spec.status().message())));
  }
  if (spec->criteria.empty() && !spec->patients.has_value() && !spec->ids.has_value()) {
    return ReplyError(*c, Bad("invalid", "If-None-Exist names no search criteria"));
  }
  // The criteria are a search: s, confined like any search.
  if (!Authorize(*c, type, auth::kSearch, SearchPatient(*spec))) return;
  std::string key = absl::StrCat(type, "\n", CanonicalQuery(*spec));
  {
    absl::MutexLock lock(&inflight_mu_);
    if (!inflight_.insert(key).second) {
      return ReplyError(*c, MakeRestError(http::Status::conflict, "conflict",
                                          "a create with the same If-None-Exist is in progress; retry"));
    }
  }
  // Released when the last holder (this frame or the pending write) lets go.
  struct Inflight {
    FhirService* service;
    std::string key;
    ~Inflight() {
      absl::MutexLock lock(&service->inflight_mu_);
      service->inflight_.erase(key);
    }
  };
  auto hold = std::make_shared<Inflight>(Inflight{this, std::move(key)});
  std::vector<Hit> hits;
  if (auto s = FindInKeyOrder(*spec, "", "", 2, c->ctx, &hits); !s.ok()) {
    return ReplyError(*c, FromStatus(s, PrimaryKind(type)));
  }
  if (hits.size() > 1) {
    return ReplyError(*c, MakeRestError(http::Status::precondition_failed, "multiple-matches",
                                        "If-None-Exist matches more than one resource"));
  }
  if (hits.size() == 1) {
    const Record& r = hits[0].record;
    // The match is returned: r on it as well.
    if (!Authorize(*c, type, auth::kRead, r.patient_id())) return;
    return RespondResource(*c, http::Status::ok, type, r,
                           {{bhttp::field::etag, EtagOf(r.version())},
                            {bhttp::field::last_modified, HttpDate(r.update_time_micros())},
                            {bhttp::field::location, absl::StrCat(c->base, "/", type, "/", FhirId(r))}},
                           "matched existing");
  }
  DoCreate(c, std::string(type), std::move(*incoming), request_id, hold);
}

void FhirService::DoCreate(const CallPtr& c, std::string type, Incoming incoming, std::string request_id,
                           std::shared_ptr<void> hold) {
  c->ctx.fhir_extra_json = incoming.extra_json;
  const bool is_list = incoming.kind == storage::PRIORITIES;
  std::string patient = incoming.patient_id;
  CoreCreate(core_, patient, std::move(incoming.resource), request_id, c->ctx,
             OnAnswerPool([this, c, type, is_list, patient,
                           hold = std::move(hold)](absl::StatusOr<Record> written) mutable {
               Guarded(c, [&] {
                 // The List existed after all (a race, or a new X-Request-Id):
                 // the domain asks for its etag; FHIR says "exists".
                 if (is_list && !written.ok() && written.status().code() == absl::StatusCode::kInvalidArgument) {
                   const google::rpc::BadRequest bad = GetFieldViolations(written.status());
                   for (const auto& v : bad.field_violations()) {
                     if (v.field() == "priorities.etag") {
                       return ReplyError(*c, MakeRestError(http::Status::conflict, "duplicate",
                                                           absl::StrCat("the patient's priorities List exists (List/",
                                                                        patient, "): update it with PUT")));
                     }
                   }
                 }
                 RespondWritten(c, type, written, http::Status::created);
               });
               hold.reset();
             }));
}

void FhirService::RespondWritten(const CallPtr& c, absl::string_view type, const absl::StatusOr<Record>& written,
                                 http::Status success) {
  if (!written.ok()) {
    return ReplyError(*c, FromStatus(written.status(), PrimaryKind(type)));
  }
  // The version the write stored, as the store committed it: no read-back.
  const Record* record = &*written;
  // PUT-as-create of the List answers 201 too.
  if (record->version() == 1) success = http::Status::created;
  AuditTarget(*c, record->patient_id(), FhirId(*record));
  const std::string versioned = absl::StrCat(c->base, "/", type, "/", FhirId(*record), "/_history/", record->version());
  Headers headers = {{bhttp::field::etag, EtagOf(record->version())},
                     {bhttp::field::last_modified, HttpDate(record->update_time_micros())},
                     {bhttp::field::content_location, versioned}};
  if (success == http::Status::created) headers.emplace_back(bhttp::field::location, versioned);
  RespondResource(*c, success, type, *record, std::move(headers),
                  success == http::Status::created ? "created" : "updated");
}

// ---------------------------------------------------------------- update

void FhirService::Update(const CallPtr& c, absl::string_view type, absl::string_view id) {
  if (!AuthorizeType(*c, type, auth::kUpdate)) return;
  Document doc;
  if (!ParseBody(*c, type, &doc)) return;
  if (!BodyIdIsUrlId(*c, doc, type, id)) return;
  std::optional<int64_t> if_match;
  if (!IfMatchOf(*c, &if_match)) return;
  auto incoming = FromFhir(type, doc, options_.unknown_elements);
  if (!incoming.ok()) return ReplyError(*c, FromStatus(incoming.status(), PrimaryKind(type), true));
  c->dropped_count = incoming->dropped_count;
  c->dropped_elements = std::move(incoming->dropped_elements);
  // u for the patient the body names (and below, for the stored one).
  AuditTarget(*c, incoming->patient_id, id);
  if (!Authorize(*c, type, auth::kUpdate, incoming->patient_id)) return;
  std::string request_id;
  if (!RequestIdOf(*c, &request_id)) return;
  WriteAgents agents;
  if (!RecorderOf(*c, &agents)) return;
  SetRecorder(&incoming->resource, agents);
  const bool is_list = incoming->kind == storage::PRIORITIES;
  if (is_list && incoming->patient_id != id) {
    return ReplyError(*c, Bad("invalid", "a priorities List's id is its patient's id: subject must be Patient/<id>",
                              "List.subject"));
  }
  auto current = FindCurrent(type, id);
  if (!current.ok()) return ReplyError(*c, FromStatus(current.status(), incoming->kind));
  std::string etag;
  if (!current->has_value()) {
    if (!is_list) {
      return ReplyError(*c, MakeRestError(http::Status::method_not_allowed, "not-supported",
                                          absl::StrCat(type, "/", id.substr(0, 64),
                                                       " does not exist, and this server assigns ids: create it with "
                                                       "POST [base]/", type)),
                        {{bhttp::field::allow, "GET, PUT, DELETE"}});
    }
    if (if_match.has_value()) {
      return ReplyError(*c, MakeRestError(http::Status::precondition_failed, "conflict",
                                          "If-Match names a version, but the priorities were never set"));
    }
  } else {
    const Record& cur = **current;
    if (!Authorize(*c, type, auth::kUpdate, cur.patient_id())) return;
    if (cur.kind() != incoming->kind) {
      return ReplyError(*c, Bad("invalid",
                                "an Observation cannot change what it records (a what-matters answer, a "
                                "preference or a goal score stays one): create a new one and delete this one",
                                "Observation.code"));
    }
    if (cur.patient_id() != incoming->patient_id) {
      return ReplyError(*c, Bad("invalid", "a resource cannot move to another patient", absl::StrCat(type, ".subject")));
    }
    etag = EtagOf(if_match.value_or(cur.version()));
  }
  if (is_list && !ResolvePriorityItems(*c, incoming->patient_id, incoming->list_item_refs,
                                       &std::get<v1::Priorities>(incoming->resource))) {
    return;
  }
  c->ctx.fhir_extra_json = incoming->extra_json;
  // Without If-Match the client asked for "whatever is current": a race with
  // another writer is retried against the new current version.
  AttemptUpdate(c, std::string(type), incoming->kind, incoming->patient_id, StoredId(incoming->kind, id),
                std::move(incoming->resource), etag, request_id, if_match.has_value() ? 0 : kBlindUpdateRetries);
}

void FhirService::UpdatePatient(const CallPtr& c, absl::string_view id) {
  if (!AuthorizeType(*c, "Patient", auth::kUpdate)) return;
  Document doc;
  if (!ParseBody(*c, "Patient", &doc)) return;
  if (!BodyIdIsUrlId(*c, doc, "Patient", id)) return;
  if (!domain::IsValidId(id)) {
    return ReplyError(*c, Bad("invalid", "a patient id is 1-64 characters of A-Z a-z 0-9 - .", "Patient.id"));
  }
  std::optional<int64_t> if_match;
  if (!IfMatchOf(*c, &if_match)) return;
  auto incoming = PatientFromFhir(doc);
  if (!incoming.ok()) return ReplyError(*c, FromStatus(incoming.status(), storage::PATIENT, true));
  AuditTarget(*c, id, id);
  if (!Authorize(*c, "Patient", auth::kUpdate, id)) return;
  std::string request_id;
  if (!RequestIdOf(*c, &request_id)) return;
  v1::UpdatePatientRequest req;
  *req.mutable_patient() = std::move(incoming->patient);
  WriteAgents agents;
  if (!RecorderOf(*c, &agents)) return;
  SetAgents(agents, req.mutable_patient()->mutable_provenance());
  req.mutable_patient()->set_name(domain::FormatParent(id));
  req.mutable_patient()->set_etag(if_match.has_value() ? EtagOf(*if_match) : std::string());
  req.set_allow_missing(true);
  req.set_request_id(request_id);
  c->ctx.fhir_extra_json = std::move(incoming->extra_json);
  core_->UpdatePatient(req, c->ctx, OnAnswerPool([this, c](absl::StatusOr<Record> written) {
                         Guarded(c, [&] { RespondWritten(c, "Patient", written, http::Status::ok); });
                       }));
}

void FhirService::AttemptUpdate(const CallPtr& c, std::string type, Kind kind, std::string patient,
                                std::string stored_id, AnyResource resource, std::string etag, std::string request_id,
                                int retries) {
  AnyResource copy = resource;
  CoreUpdate(core_, patient, stored_id, std::move(copy), etag, request_id, c->ctx,
             OnAnswerPool([=, this, resource = std::move(resource)](absl::StatusOr<Record> written) mutable {
               Guarded(c, [&] {
                 const bool blind = retries > 0;  // no If-Match, not yet a replay probe
                 const absl::StatusCode code = written.ok() ? absl::StatusCode::kOk : written.status().code();
                 if (blind && absl::Now() < c->ctx.deadline &&
                     (code == absl::StatusCode::kAborted ||
                      (code == absl::StatusCode::kAlreadyExists && !request_id.empty()))) {
                   auto current = core_->FindCurrentById(kind, kind == storage::PRIORITIES ? patient : stored_id);
                   if (current.ok() && current->has_value() && !(*current)->retracted()) {
                     if (code == absl::StatusCode::kAborted) {
                       // Lost a race: again, against the new current version.
                       return AttemptUpdate(c, type, kind, patient, stored_id, std::move(resource),
                                            EtagOf((*current)->version()), request_id, retries - 1);
                     }
                     // A retry (same X-Request-Id) of a blind update that
                     // already succeeded: the request then carried the etag
                     // before the current one; if nothing wrote since, that
                     // replays the first result instead of refusing it.
                     if ((*current)->version() > 1) {
                       return AttemptUpdate(c, type, kind, patient, stored_id, std::move(resource),
                                            EtagOf((*current)->version() - 1), request_id, 0);
                     }
                   }
                 }
                 RespondWritten(c, type, written, http::Status::ok);
               });
             }));
}

// ---------------------------------------------------------------- delete

void FhirService::Delete(const CallPtr& c, absl::string_view type, absl::string_view id) {
  if (!AuthorizeType(*c, type, auth::kDelete)) return;
  std::optional<int64_t> if_match;
  if (!IfMatchOf(*c, &if_match)) return;
  const std::string etag = if_match.has_value() ? EtagOf(*if_match) : std::string();
  std::string request_id;
  if (!RequestIdOf(*c, &request_id)) return;
  WriteAgents agents;
  std::string reason;
  if (!RecorderOf(*c, &agents, &reason)) return;
  auto current = FindCurrent(type, id);
  if (!current.ok()) return ReplyError(*c, FromStatus(current.status(), PrimaryKind(type)));
  // FHIR: deleting what does not exist, or is already deleted, is 204 too.
  if (!current->has_value()) return Reply(*c, http::Status::no_content, std::nullopt);
  const Record cur = **current;
  AuditTarget(*c, cur.patient_id(), id);
  if (!Authorize(*c, type, auth::kDelete, cur.patient_id())) return;
  if (cur.retracted()) return Reply(*c, http::Status::no_content, std::nullopt, {{bhttp::field::etag, EtagOf(cur.version())}});
  CoreRetract(core_, cur.kind(), cur.patient_id(), cur.id(), etag, agents, reason, request_id, c->ctx,
              OnAnswerPool([this, c, kind = cur.kind()](absl::StatusOr<Record> written) {
                Guarded(c, [&] {
                  if (written.ok()) {
                    return Reply(*c, http::Status::no_content, std::nullopt,
                                 {{bhttp::field::etag, EtagOf(written->version())}});
                  }
                  // Deleted by someone else meanwhile: still "deleted".
                  if (written.status().code() == absl::StatusCode::kFailedPrecondition) {
                    return Reply(*c, http::Status::no_content, std::nullopt);
                  }
                  ReplyError(*c, FromStatus(written.status(), kind));
                });
              }));
}

// ---------------------------------------------------------------- history

namespace {

// _count, _since and _page_token of a history interaction.
struct HistoryParams {
  int count = kDefaultSearchCount;
  std::optional<int64_t> since;
  std::string since_raw;
  std::string page_token;
};

absl::StatusOr<HistoryParams> ParseHistoryParams(const std::vector<QueryParam>& query, bool strict) {
  HistoryParams h;
  for (const auto& p : query) {
    if (p.name == "_format" || p.name == "_pretty") continue;
    if (p.name == "_count") {
      int n = 0;
      if (!absl::SimpleAtoi(p.value, &n) || n < 1) {
        return absl::InvalidArgumentError(absl::StrCat("_count must be a number 1..", kMaxSearchCount));
      }
      h.count = std::min(n, kMaxSearchCount);
    } else if (p.name == "_since") {
      auto range = ParseFhirDateRange(p.value);
      if (!range.has_value()) return absl::InvalidArgumentError("_since must be a FHIR instant");
      h.since = range->lo;
      h.since_raw = p.value;
    } else if (p.name == "_page_token") {
      h.page_token = p.value;
    } else if (strict) {
      return absl::UnimplementedError(absl::StrCat("history does not support the parameter ", p.name.substr(0, 64)));
    }
  }
  return h;
}

// A deletion's reason in its history entry (response.outcome): the entry has
// no resource, and history readers should not need a Provenance per entry.
Value RetractionOutcome(const std::string& reason, Alloc& a) {
  Value issue(rapidjson::kObjectType);
  issue.AddMember("severity", "information", a);
  issue.AddMember("code", "deleted", a);
  Value details(rapidjson::kObjectType);
  details.AddMember("text", Str(reason, a), a);
  issue.AddMember("details", details, a);
  issue.AddMember("diagnostics", "entered in error (retracted); details.text is the reason given", a);
  Value outcome(rapidjson::kObjectType);
  outcome.AddMember("resourceType", "OperationOutcome", a);
  Value issues(rapidjson::kArrayType);
  issues.PushBack(issue, a);
  outcome.AddMember("issue", issues, a);
  return outcome;
}

}  // namespace

absl::Status FhirService::AddHistoryEntry(Call& c, const Record& r, Value* entries, Alloc& a) {
  const absl::string_view type = FhirTypeOf(r.kind());
  const std::string fid = FhirId(r);
  Value entry(rapidjson::kObjectType);
  entry.AddMember("fullUrl", Str(absl::StrCat(c.base, "/", type, "/", fid), a), a);
  if (!r.retracted()) {
    Value resource(rapidjson::kObjectType);
    if (auto s = ToFhir(r, &resource, a); !s.ok()) return s;
    entry.AddMember("resource", resource, a);
  }
  const bool created = r.version() == 1 && !r.retracted();
  const bool put_creates = r.kind() == storage::PRIORITIES || r.kind() == storage::PATIENT;
  const char* method = r.retracted() ? "DELETE" : (created && !put_creates ? "POST" : "PUT");
  Value request(rapidjson::kObjectType);
  request.AddMember("method", Str(method, a), a);
  request.AddMember("url", Str(std::string(method) == "POST" ? std::string(type) : absl::StrCat(type, "/", fid), a), a);
  entry.AddMember("request", request, a);
  Value response(rapidjson::kObjectType);
  response.AddMember("status", Str(r.retracted() ? "204 No Content" : created ? "201 Created" : "200 OK", a), a);
  if (!r.retracted()) {
    response.AddMember("location", Str(absl::StrCat(type, "/", fid, "/_history/", r.version()), a), a);
  }
  response.AddMember("etag", Str(EtagOf(r.version()), a), a);
  response.AddMember("lastModified", Str(FhirInstant(r.update_time_micros()), a), a);
  if (r.retracted()) {
    auto reason = RetractReasonOf(r);
    if (!reason.ok()) return reason.status();
    if (!reason->empty()) response.AddMember("outcome", RetractionOutcome(*reason, a), a);
  }
  entry.AddMember("response", response, a);
  entries->PushBack(entry, a);
  return absl::OkStatus();
}

// A new Bundle of `type` in `d`.
void StartBundle(Document& d, absl::string_view type) {
  Alloc& a = d.GetAllocator();
  d.SetObject();
  d.AddMember("resourceType", "Bundle", a);
  const absl::Time now = absl::Now();
  d.AddMember("id", Str(domain::NewResourceId(now), a), a);
  Value meta(rapidjson::kObjectType);
  meta.AddMember("lastUpdated", Str(FhirInstant(absl::ToUnixMicros(now)), a), a);
  d.AddMember("meta", meta, a);
  d.AddMember("type", Str(type, a), a);
}

void AddLink(Value* links, absl::string_view relation, absl::string_view url, Alloc& a) {
  Value link(rapidjson::kObjectType);
  link.AddMember("relation", Str(relation, a), a);
  link.AddMember("url", Str(url, a), a);
  links->PushBack(link, a);
}

RestError ParamError(const absl::Status& s) {
  return Bad(s.code() == absl::StatusCode::kUnimplemented ? "not-supported" : "invalid", std::string(s.message()));
}

RestError BadPageToken() {
  return Bad("invalid", "_page_token is not valid here (altered, or from another query)", "_page_token");
}

void FhirService::InstanceHistory(const CallPtr& c, absl::string_view type, absl::string_view id) {
  if (!AuthorizeType(*c, type, auth::kRead)) return;
  auto params = ParseHistoryParams(c->query, c->prefer.strict);
  if (!params.ok()) return ReplyError(*c, ParamError(params.status()));
  auto current = FindCurrent(type, id);
  if (!current.ok()) return ReplyError(*c, FromStatus(current.status(), PrimaryKind(type)));
  const RestError unknown = UnknownId(type, id);
  if (!current->has_value()) return ReplyError(*c, unknown);
  const Record& cur = **current;
  AuditTarget(*c, cur.patient_id(), id);
  if (!Authorize(*c, type, auth::kRead, cur.patient_id(), &unknown)) return;
  const std::string query_hash =
      domain::Sha256(absl::StrCat("history\n", type, "/", id, "\n", params->since_raw));
  // Newest first: this page holds versions top, top-1, ...
  int64_t top = cur.version();
  if (!params->page_token.empty()) {
    auto cursor = core_->page_tokens().Decode(params->page_token, query_hash, "_page_token");
    if (!cursor.ok()) return ReplyError(*c, BadPageToken());
    top = std::min<int64_t>(cursor->after_version() - 1, cur.version());
  }
  const int64_t lo = std::max<int64_t>(1, top - params->count);  // one extra, to know whether more follow
  std::vector<Record> versions;
  if (top >= 1) {
    auto s = core_->ScanStoredVersions(cur.kind(), cur.patient_id(), cur.id(), lo - 1, [&](const Record& r) {
      if (r.version() > top) return false;
      versions.push_back(r);
      return true;
    });
    if (!s.ok()) return ReplyError(*c, FromStatus(s, cur.kind()));
  }
  std::reverse(versions.begin(), versions.end());
  if (params->since.has_value()) {
    versions.erase(std::find_if(versions.begin(), versions.end(),
                                [&](const Record& r) { return r.update_time_micros() < *params->since; }),
                   versions.end());
  }
  const bool more = versions.size() > static_cast<size_t>(params->count);
  if (more) versions.resize(params->count);

  Document d;
  StartBundle(d, "history");
  Alloc& a = d.GetAllocator();
  if (!params->since.has_value()) d.AddMember("total", static_cast<int64_t>(cur.version()), a);
  Value links(rapidjson::kArrayType), entries(rapidjson::kArrayType);
  std::vector<QueryParam> self_params;
  if (!params->since_raw.empty()) self_params.push_back({"_since", params->since_raw});
  self_params.push_back({"_count", std::to_string(params->count)});
  const std::string self = absl::StrCat(c->base, "/", type, "/", id, "/_history");
  AddLink(&links, "self", absl::StrCat(self, "?", FormatQuery(self_params)), a);
  if (more) {
    storage::PageCursor cursor;
    cursor.set_query_hash(query_hash);
    cursor.set_after_version(versions.back().version());
    auto next_params = self_params;
    next_params.push_back({"_page_token", core_->page_tokens().Encode(cursor)});
    AddLink(&links, "next", absl::StrCat(self, "?", FormatQuery(next_params)), a);
  }
  for (const Record& r : versions) {
    if (auto s = AddHistoryEntry(*c, r, &entries, a); !s.ok()) return ReplyError(*c, FromStatus(s, r.kind()));
  }
  d.AddMember("link", links, a);
  if (!entries.Empty()) d.AddMember("entry", entries, a);  // FHIR JSON has no empty arrays
  ReplyJson(*c, http::Status::ok, d);
}

absl::StatusOr<uint64_t> FhirService::LastSequence() {
  // The change log is gap-free (1..N): find N with O(log N) seeks.
  auto exists = [&](uint64_t sequence) -> absl::StatusOr<bool> {
    bool found = false;
    auto s = core_->ScanStoredChanges(sequence - 1, [&](const storage::Change&) {
      found = true;
      return false;
    });
    if (!s.ok()) return s;
    return found;
  };
  auto first = exists(1);
  if (!first.ok()) return first.status();
  if (!*first) return 0;
  uint64_t lo = 1, hi = 2;  // exists(lo), and hi is the candidate above
  while (true) {
    auto e = exists(hi);
    if (!e.ok()) return e.status();
    if (!*e) break;
    lo = hi;
    if (hi > (uint64_t{1} << 62)) return absl::InternalError("change log too long");
    hi *= 2;
  }
  while (hi - lo > 1) {
    const uint64_t mid = lo + (hi - lo) / 2;
    auto e = exists(mid);
    if (!e.ok()) return e.status();
    (*e ? lo : hi) = mid;
  }
  return lo;
}

void FhirService::TypeHistory(const CallPtr& c, absl::string_view type) {
  // Type history spans every patient (it takes no patient parameter): only
  // user/ and system/ scopes reach it.
  if (!Authorize(*c, type, auth::kSearch, "")) return;
  auto params = ParseHistoryParams(c->query, c->prefer.strict);
  if (!params.ok()) return ReplyError(*c, ParamError(params.status()));
  const std::vector<Kind> kinds = KindsOf(type);
  const std::string query_hash = domain::Sha256(absl::StrCat("history\n", type, "\n", params->since_raw));
  // This page covers changes below `top_exclusive`, newest first.
  uint64_t top_exclusive = 0;
  if (!params->page_token.empty()) {
    auto cursor = core_->page_tokens().Decode(params->page_token, query_hash, "_page_token");
    if (!cursor.ok()) return ReplyError(*c, BadPageToken());
    top_exclusive = static_cast<uint64_t>(std::max<int64_t>(cursor->after_version(), 1));
  } else {
    auto last = LastSequence();
    if (!last.ok()) return ReplyError(*c, FromStatus(last.status(), PrimaryKind(type)));
    top_exclusive = *last + 1;
  }
  // Walk back through the change log in growing windows until a page is
  // full, the log starts, or changes get older than _since. The cost is the
  // number of changes walked (of all types) — small for a busy type, up to
  // the whole log for a rare one.
  const size_t need = static_cast<size_t>(params->count) + 1;
  std::vector<storage::Change> picked;  // newest first
  uint64_t top = top_exclusive - 1;     // inclusive
  uint64_t window = std::max<uint64_t>(256, 4 * need);
  bool reached_since = false;
  while (picked.size() < need && top >= 1 && !reached_since) {
    if (absl::Now() > c->ctx.deadline) {
      return ReplyError(*c, FromStatus(absl::DeadlineExceededError("history"), PrimaryKind(type)));
    }
    const uint64_t start = top > window ? top - window : 0;  // scan (start, top]
    std::vector<storage::Change> batch;
    uint64_t older_than_since = 0;
    auto s = core_->ScanStoredChanges(start, [&](const storage::Change& ch) {
      if (ch.sequence() > top) return false;
      if (params->since.has_value() && ch.time_micros() < *params->since) older_than_since = ch.sequence();
      if (std::find(kinds.begin(), kinds.end(), ch.kind()) != kinds.end()) batch.push_back(ch);
      return true;
    });
    if (!s.ok()) return ReplyError(*c, FromStatus(s, PrimaryKind(type)));
    for (auto it = batch.rbegin(); it != batch.rend() && picked.size() < need; ++it) {
      if (it->sequence() <= older_than_since) {
        reached_since = true;
        break;
      }
      picked.push_back(*it);
    }
    if (older_than_since > 0) reached_since = true;
    top = start;
    window = std::min<uint64_t>(window * 2, uint64_t{1} << 20);
  }
  const bool more = picked.size() > static_cast<size_t>(params->count);
  if (more) picked.resize(params->count);

  Document d;
  StartBundle(d, "history");
  Alloc& a = d.GetAllocator();
  Value links(rapidjson::kArrayType), entries(rapidjson::kArrayType);
  std::vector<QueryParam> self_params;
  if (!params->since_raw.empty()) self_params.push_back({"_since", params->since_raw});
  self_params.push_back({"_count", std::to_string(params->count)});
  const std::string self = absl::StrCat(c->base, "/", type, "/_history");
  AddLink(&links, "self", absl::StrCat(self, "?", FormatQuery(self_params)), a);
  if (more) {
    storage::PageCursor cursor;
    cursor.set_query_hash(query_hash);
    cursor.set_after_version(static_cast<int64_t>(picked.back().sequence()));
    auto next_params = self_params;
    next_params.push_back({"_page_token", core_->page_tokens().Encode(cursor)});
    AddLink(&links, "next", absl::StrCat(self, "?", FormatQuery(next_params)), a);
  }
  for (const auto& ch : picked) {
    auto r = core_->FindByChange(ch.sequence());
    if (!r.ok()) return ReplyError(*c, FromStatus(r.status(), ch.kind()));
    if (!r->has_value()) continue;
    if (auto s = AddHistoryEntry(*c, **r, &entries, a); !s.ok()) return ReplyError(*c, FromStatus(s, ch.kind()));
  }
  d.AddMember("link", links, a);
  if (!entries.Empty()) d.AddMember("entry", entries, a);  // FHIR JSON has no empty arrays
  ReplyJson(*c, http::Status::ok, d);
}

// ---------------------------------------------------------------- search

bool NeedsRender(const SearchSpec& spec) {
  return std::any_of(spec.criteria.begin(), spec.criteria.end(),
                     [](const Criterion& c) { return c.def->target != SearchTarget::kLastUpdated; });
}

absl::Status FhirService::ScanCandidates(const SearchSpec& spec, Kind kind, const std::string& after_patient,
                                         const std::string& after_id, const CallContext& ctx,
                                         absl::FunctionRef<bool(const Record&)> visit) {
  int scanned = 0;
  absl::Status late;
  bool stopped = false;
  auto wrapped = [&](const Record& r) -> bool {
    if (++scanned % kDeadlineCheckEvery == 0 && absl::Now() > ctx.deadline) {
      late = absl::DeadlineExceededError("search ran past its deadline");
      stopped = true;
      return false;
    }
    if (r.retracted()) return true;
    if (!visit(r)) {
      stopped = true;
      return false;
    }
    return true;
  };
  auto after = [&](const Record& r) {
    return std::tie(r.patient_id(), r.id()) > std::tie(after_patient, after_id);
  };
  if (spec.ids.has_value()) {
    // _id: point lookups instead of a scan.
    std::vector<Record> found;
    for (const std::string& id : *spec.ids) {
      auto r = core_->FindCurrentById(kind, id);
      if (!r.ok()) return r.status();
      if (!r->has_value()) continue;
      if (spec.patients.has_value() &&
          !std::binary_search(spec.patients->begin(), spec.patients->end(), (*r)->patient_id())) {
        continue;
      }
      found.push_back(std::move(**r));
    }
    std::sort(found.begin(), found.end(), PatientIdLess);
    for (const Record& r : found) {
      if (after(r) && !wrapped(r)) break;
    }
    return late;
  }
  if (spec.patients.has_value()) {
    for (const std::string& patient : *spec.patients) {
      if (patient < after_patient) continue;
      auto s = core_->ScanStoredCurrent(kind, patient, "", patient == after_patient ? after_id : std::string(),
                                        wrapped);
      if (!s.ok()) return s;
      if (stopped) break;
    }
    return late;
  }
  auto s = core_->ScanStoredCurrent(kind, std::nullopt, after_patient, after_id, wrapped);
  if (!s.ok()) return s;
  return late;
}

absl::StatusOr<bool> FhirService::MatchRecord(const SearchSpec& spec, const Record& record,
                                              std::unique_ptr<Document>* scratch) {
  if (!NeedsRender(spec)) {
    static const Value kEmpty(rapidjson::kObjectType);
    return Matches(spec, kEmpty, record.update_time_micros());
  }
  if (*scratch == nullptr || (*scratch)->GetAllocator().Size() > kScratchBytes) {
    *scratch = std::make_unique<Document>();
  }
  Document& d = **scratch;
  d.SetObject();
  if (auto s = ToFhir(record, &d, d.GetAllocator()); !s.ok()) return s;
  return Matches(spec, d, record.update_time_micros());
}

absl::Status FhirService::FindInKeyOrder(const SearchSpec& spec, const std::string& after_patient,
                                         const std::string& after_id, size_t limit, const CallContext& ctx,
                                         std::vector<Hit>* out) {
  const bool rendered = NeedsRender(spec);
  std::vector<Hit> all;
  std::unique_ptr<Document> scratch;
  for (Kind kind : KindsOf(spec.resource_type)) {
    // Each kind's first `limit` matches hold the overall first `limit`.
    size_t found = 0;
    absl::Status inner;
    auto s = ScanCandidates(spec, kind, after_patient, after_id, ctx, [&](const Record& r) {
      auto m = MatchRecord(spec, r, &scratch);
      if (!m.ok()) {
        inner = m.status();
        return false;
      }
      if (!*m) return true;
      Hit hit;
      hit.record = r;
      if (rendered) hit.doc = std::move(scratch);
      all.push_back(std::move(hit));
      return ++found < limit;
    });
    if (!s.ok()) return s;
    if (!inner.ok()) return inner;
  }
  std::sort(all.begin(), all.end(), [](const Hit& a, const Hit& b) { return PatientIdLess(a.record, b.record); });
  if (all.size() > limit) all.resize(limit);
  *out = std::move(all);
  return absl::OkStatus();
}

absl::Status FhirService::CountMatches(const SearchSpec& spec, const CallContext& ctx, int64_t* total) {
  std::unique_ptr<Document> scratch;
  absl::Status inner;
  *total = 0;
  for (Kind kind : KindsOf(spec.resource_type)) {
    auto s = ScanCandidates(spec, kind, "", "", ctx, [&](const Record& r) {
      auto m = MatchRecord(spec, r, &scratch);
      if (!m.ok()) {
        inner = m.status();
        return false;
      }
      if (*m) ++*total;
      return true;
    });
    if (!s.ok()) return s;
    if (!inner.ok()) return inner;
  }
  return absl::OkStatus();
}

// _sort=_lastUpdated: every match has to be looked at, but only the next
// `limit` after the cursor are kept (a bounded heap), so memory stays small.
// The order is (lastUpdated, patient, id) (descending time for
// -_lastUpdated), and a next page starts strictly after the last key shown.
absl::Status FhirService::FindSorted(const SearchSpec& spec, const std::optional<storage::PageCursor>& cursor,
                                     size_t limit, const CallContext& ctx, std::vector<Hit>* out) {
  const bool ascending = spec.sort == SearchSpec::Sort::kLastUpdatedAsc;
  using Key = std::tuple<int64_t, std::string, std::string>;
  auto key_of = [&](const Record& r) {
    return Key{ascending ? r.update_time_micros() : -r.update_time_micros(), r.patient_id(), r.id()};
  };
  std::optional<Key> after;
  if (cursor.has_value()) {
    auto [patient, id] = ParsePosition(cursor->after_id());
    after = Key{ascending ? cursor->after_version() : -cursor->after_version(), patient, id};
  }
  auto less = [&](const Hit& a, const Hit& b) { return key_of(a.record) < key_of(b.record); };
  const bool rendered = NeedsRender(spec);
  std::vector<Hit> heap;  // max-heap by key: the worst kept hit on top
  std::unique_ptr<Document> scratch;
  absl::Status inner;
  for (Kind kind : KindsOf(spec.resource_type)) {
    auto s = ScanCandidates(spec, kind, "", "", ctx, [&](const Record& r) {
      const Key key = key_of(r);
      if (after.has_value() && !(key > *after)) return true;
      if (heap.size() == limit && !(key < key_of(heap.front().record))) return true;
      auto m = MatchRecord(spec, r, &scratch);
      if (!m.ok()) {
        inner = m.status();
        return false;
      }
      if (!*m) return true;
      Hit hit;
      hit.record = r;
      if (rendered) hit.doc = std::move(scratch);
      if (heap.size() == limit) {
        std::pop_heap(heap.begin(), heap.end(), less);
        heap.pop_back();
      }
      heap.push_back(std::move(hit));
      std::push_heap(heap.begin(), heap.end(), less);
      return true;
    });
    if (!s.ok()) return s;
    if (!inner.ok()) return inner;
  }
  std::sort_heap(heap.begin(), heap.end(), less);
  *out = std::move(heap);
  return absl::OkStatus();
}

// Resolves our CodeSystem by its canonical URL (the FHIR way to read a
// canonical resource): a searchset with it when `url` matches (or is absent).
void FhirService::SearchCodeSystem(const CallPtr& c) {
  bool match = true;
  std::vector<QueryParam> applied;
  for (const auto& p : c->query) {
    if (p.name == "_format" || p.name == "_pretty") continue;
    if (p.name == "url") {
      match = match && p.value == kCodeSystemUrl;
      applied.push_back(p);
    } else if (c->prefer.strict) {
      return ReplyError(*c, Bad("not-supported", "CodeSystem search supports only the url parameter"));
    }
  }
  Document d;
  StartBundle(d, "searchset");
  Alloc& a = d.GetAllocator();
  d.AddMember("total", match ? 1 : 0, a);
  Value links(rapidjson::kArrayType);
  const std::string self = absl::StrCat(c->base, "/CodeSystem");
  AddLink(&links, "self", applied.empty() ? self : absl::StrCat(self, "?", FormatQuery(applied)), a);
  d.AddMember("link", links, a);
  if (match) {
    Value resource;
    CodeSystem(&resource, a);
    Value entry(rapidjson::kObjectType);
    entry.AddMember("fullUrl", Str(absl::StrCat(self, "/", kCodeSystemId), a), a);
    entry.AddMember("resource", resource, a);
    Value search(rapidjson::kObjectType);
    search.AddMember("mode", "match", a);
    entry.AddMember("search", search, a);
    Value entries(rapidjson::kArrayType);
    entries.PushBack(entry, a);
    d.AddMember("entry", entries, a);
  }
  ReplyJson(*c, http::Status::ok, d);
}

void FhirService::Search(const CallPtr& c, absl::string_view type, const std::vector<QueryParam>& params) {
  if (!AuthorizeType(*c, type, auth::kSearch)) return;
  auto spec = ParseSearch(type, params, c->prefer.strict);
  if (!spec.ok()) return ReplyError(*c, ParamError(spec.status()));
  // patient/ scopes: patient= (or subject=) must name the token's patient.
  // A _page_token is bound to the query, patient included, so every page is
  // covered by this check. _revinclude=Provenance:target adds the Provenance
  // of the matches only, which follows their permission.
  AuditTarget(*c, SearchPatient(*spec));
  if (!Authorize(*c, type, auth::kSearch, SearchPatient(*spec))) return;
  const std::string query_hash = domain::Sha256(CanonicalQuery(*spec));
  std::optional<storage::PageCursor> cursor;
  if (!spec->page_token.empty()) {
    auto decoded = core_->page_tokens().Decode(spec->page_token, query_hash, "_page_token");
    if (!decoded.ok()) return ReplyError(*c, BadPageToken());
    cursor = std::move(*decoded);
  }
  Document d;
  StartBundle(d, "searchset");
  Alloc& a = d.GetAllocator();
  Value links(rapidjson::kArrayType);
  const std::string self = absl::StrCat(c->base, "/", type);
  AddLink(&links, "self", spec->applied.empty() ? self : absl::StrCat(self, "?", FormatQuery(spec->applied)), a);

  if (spec->count_only) {
    int64_t total = 0;
    if (auto s = CountMatches(*spec, c->ctx, &total); !s.ok()) return ReplyError(*c, FromStatus(s, PrimaryKind(type)));
    d.AddMember("total", total, a);
    d.AddMember("link", links, a);
    return ReplyJson(*c, http::Status::ok, d);
  }

  const size_t need = static_cast<size_t>(spec->count) + 1;
  std::vector<Hit> hits;
  absl::Status s;
  if (spec->sort == SearchSpec::Sort::kNone) {
    auto [after_patient, after_id] =
        cursor.has_value() ? ParsePosition(cursor->after_id()) : std::pair<std::string, std::string>();
    s = FindInKeyOrder(*spec, after_patient, after_id, need, c->ctx, &hits);
  } else {
    s = FindSorted(*spec, cursor, need, c->ctx, &hits);
  }
  if (!s.ok()) return ReplyError(*c, FromStatus(s, PrimaryKind(type)));
  const bool more = hits.size() > static_cast<size_t>(spec->count);
  if (more) hits.resize(spec->count);
  if (more) {
    storage::PageCursor next;
    next.set_query_hash(query_hash);
    next.set_after_id(PositionOf(hits.back().record));
    next.set_after_version(hits.back().record.update_time_micros());
    std::vector<QueryParam> next_params;
    for (const auto& p : spec->applied) {
      if (p.name != "_count") next_params.push_back(p);
    }
    next_params.push_back({"_count", std::to_string(spec->count)});
    next_params.push_back({"_page_token", core_->page_tokens().Encode(next)});
    AddLink(&links, "next", absl::StrCat(self, "?", FormatQuery(next_params)), a);
  }
  std::vector<RawEntry> raw_entries;
  raw_entries.reserve(hits.size() * (spec->revinclude_provenance ? 2 : 1));
  for (Hit& hit : hits) {
    const Record& r = hit.record;
    std::shared_ptr<const std::string> json;
    if (hit.doc != nullptr) {  // rendered while matching
      json = std::make_shared<const std::string>(Serialize(*hit.doc, /*pretty=*/false));
      render_cache_.Put(r, json);
    } else {
      auto rendered = Rendered(render_cache_, r);
      if (!rendered.ok()) return ReplyError(*c, FromStatus(rendered.status(), r.kind()));
      json = std::move(*rendered);
    }
    raw_entries.push_back({absl::StrCat(c->base, "/", FhirTypeOf(r.kind()), "/", FhirId(r)), std::move(json), "match"});
    if (spec->revinclude_provenance) {
      Document prov;
      prov.SetObject();
      if (auto st = ProvenanceOf(r, &prov, prov.GetAllocator()); !st.ok()) {
        return ReplyError(*c, FromStatus(st, r.kind()));
      }
      raw_entries.push_back({absl::StrCat(c->base, "/Provenance/", ProvenanceId(r)),
                             std::make_shared<const std::string>(Serialize(prov, /*pretty=*/false)), "include"});
    }
  }
  d.AddMember("link", links, a);
  Reply(*c, http::Status::ok, SerializeBundle(d, raw_entries, c->pretty));
}

// ---------------------------------------------------------------- Provenance

void FhirService::ReadProvenance(const CallPtr& c, absl::string_view id) {
  if (!MayAtAll(*c, "Goal", auth::kRead) && !MayAtAll(*c, "Observation", auth::kRead) &&
      !MayAtAll(*c, "List", auth::kRead)) {
    return (void)AuthorizeType(*c, "Goal, Observation or List", auth::kRead);
  }
  uint64_t sequence = 0;
  const bool well_formed = id.size() >= 2 && id.size() <= 21 && id[0] == 's' &&
                           std::all_of(id.begin() + 1, id.end(), [](char ch) { return ch >= '0' && ch <= '9'; }) &&
                           absl::SimpleAtoi(id.substr(1), &sequence) && sequence > 0;
  std::optional<Record> record;
  if (well_formed) {
    auto r = core_->FindByChange(sequence);
    if (!r.ok()) return ReplyError(*c, FromStatus(r.status(), storage::KIND_UNSPECIFIED));
    record = std::move(*r);
  }
  const RestError unknown = UnknownId("Provenance", id);
  if (!record.has_value()) return ReplyError(*c, unknown);
  AuditTarget(*c, record->patient_id(), id);
  // A Provenance is read with its target's permission; anything short of
  // that looks like an unknown id (which target type it is stays hidden).
  if (c->principal.has_value() &&
      auth::Authorize(*c->principal, FhirTypeOf(record->kind()), auth::kRead, record->patient_id()) !=
          auth::Decision::kAllow) {
    return ReplyError(*c, unknown);
  }
  Document d;
  d.SetObject();
  if (auto s = ProvenanceOf(*record, &d, d.GetAllocator()); !s.ok()) return ReplyError(*c, FromStatus(s, record->kind()));
  ReplyJson(*c, http::Status::ok, d, {{bhttp::field::last_modified, HttpDate(record->update_time_micros())}});
}

// Provenance?target=...: the Provenance of every version of each target (or
// of the version a versioned reference names), in the order the targets were
// given, oldest version first.
void FhirService::SearchProvenance(const CallPtr& c, const SearchSpec& spec) {
  std::vector<const Criterion*> targets;
  for (const Criterion& cr : spec.criteria) targets.push_back(&cr);
  const bool impossible = spec.ids.has_value();  // every target value had an unusable type
  if (targets.empty() && !impossible) {
    return ReplyError(
        *c,
        Bad("required", "Provenance search needs target=Goal/<id>, Observation/<id>, List/<patient id> or Patient/<id>",
            "target"));
  }
  // Provenance follows its target: s on the target's type (403 when no
  // scope grants it for any target type named), and targets of another
  // patient are left out as if unknown.
  for (const Criterion* cr : targets) {
    for (const ReferenceValue& ref : cr->refs) {
      if (!ref.type.empty() && !AuthorizeType(*c, ref.type, auth::kSearch)) return;
    }
  }
  if (!MayAtAll(*c, "Goal", auth::kSearch) && !MayAtAll(*c, "Observation", auth::kSearch) &&
      !MayAtAll(*c, "List", auth::kSearch)) {
    return (void)AuthorizeType(*c, "Goal, Observation or List", auth::kSearch);
  }
  const std::string query_hash = domain::Sha256(CanonicalQuery(spec));
  int64_t after_index = -1, after_version = 0;
  if (!spec.page_token.empty()) {
    auto cursor = core_->page_tokens().Decode(spec.page_token, query_hash, "_page_token");
    if (!cursor.ok()) return ReplyError(*c, BadPageToken());
    if (!absl::SimpleAtoi(cursor->after_id(), &after_index)) return ReplyError(*c, BadPageToken());
    after_version = cursor->after_version();
  }
  // A version matches when every other target criterion names it too.
  auto names = [&](const Criterion& cr, const Record& r) {
    return std::any_of(cr.refs.begin(), cr.refs.end(), [&](const ReferenceValue& ref) {
      return (ref.type.empty() || ref.type == FhirTypeOf(r.kind())) && ref.id == FhirId(r) &&
             (ref.version.empty() || ref.version == std::to_string(r.version()));
    });
  };
  const size_t need = spec.count_only ? SIZE_MAX : static_cast<size_t>(spec.count) + 1;
  std::vector<std::pair<int64_t, Record>> found;  // (target index, version)
  int64_t total = 0;
  if (!impossible) {
    const std::vector<ReferenceValue>& refs = targets[0]->refs;
    for (size_t i = 0; i < refs.size() && found.size() < need; ++i) {
      const ReferenceValue& ref = refs[i];
      if (static_cast<int64_t>(i) < after_index) continue;
      for (absl::string_view type : domain::kStoredTypes) {
        if (!ref.type.empty() && ref.type != type) continue;
        if (!MayAtAll(*c, type, auth::kSearch)) continue;
        auto current = FindCurrent(type, ref.id);
        if (!current.ok()) return ReplyError(*c, FromStatus(current.status(), PrimaryKind(type)));
        if (!current->has_value()) continue;
        const Record& cur = **current;
        if (c->principal.has_value() &&
            auth::Authorize(*c->principal, type, auth::kSearch, cur.patient_id()) != auth::Decision::kAllow) {
          continue;  // another patient's: as if unknown
        }
        const int64_t from = static_cast<int64_t>(i) == after_index ? after_version : 0;
        auto s = core_->ScanStoredVersions(cur.kind(), cur.patient_id(), cur.id(), from, [&](const Record& r) {
          if (!std::all_of(targets.begin(), targets.end(), [&](const Criterion* cr) { return names(*cr, r); })) {
            return true;
          }
          ++total;
          if (!spec.count_only) found.emplace_back(static_cast<int64_t>(i), r);
          return found.size() < need;
        });
        if (!s.ok()) return ReplyError(*c, FromStatus(s, cur.kind()));
      }
    }
  }
  Document d;
  StartBundle(d, "searchset");
  Alloc& a = d.GetAllocator();
  Value links(rapidjson::kArrayType), entries(rapidjson::kArrayType);
  const std::string self = absl::StrCat(c->base, "/Provenance");
  AddLink(&links, "self", absl::StrCat(self, "?", FormatQuery(spec.applied)), a);
  if (spec.count_only) {
    d.AddMember("total", total, a);
    d.AddMember("link", links, a);
    return ReplyJson(*c, http::Status::ok, d);
  }
  const bool more = found.size() > static_cast<size_t>(spec.count);
  if (more) found.resize(spec.count);
  if (more) {
    storage::PageCursor next;
    next.set_query_hash(query_hash);
    next.set_after_id(std::to_string(found.back().first));
    next.set_after_version(found.back().second.version());
    std::vector<QueryParam> next_params;
    for (const auto& p : spec.applied) {
      if (p.name != "_count") next_params.push_back(p);
    }
    next_params.push_back({"_count", std::to_string(spec.count)});
    next_params.push_back({"_page_token", core_->page_tokens().Encode(next)});
    AddLink(&links, "next", absl::StrCat(self, "?", FormatQuery(next_params)), a);
  }
  for (const auto& [index, r] : found) {
    Value prov(rapidjson::kObjectType);
    if (auto s = ProvenanceOf(r, &prov, a); !s.ok()) return ReplyError(*c, FromStatus(s, r.kind()));
    Value entry(rapidjson::kObjectType);
    entry.AddMember("fullUrl", Str(absl::StrCat(c->base, "/Provenance/", ProvenanceId(r)), a), a);
    entry.AddMember("resource", prov, a);
    Value search(rapidjson::kObjectType);
    search.AddMember("mode", "match", a);
    entry.AddMember("search", search, a);
    entries.PushBack(entry, a);
  }
  d.AddMember("link", links, a);
  if (!entries.Empty()) d.AddMember("entry", entries, a);  // FHIR JSON has no empty arrays
  ReplyJson(*c, http::Status::ok, d);
}

// ---------------------------------------------------------------- $everything

void FhirService::Everything(const CallPtr& c, absl::string_view patient) {
  if (!domain::IsValidId(patient)) {
    return ReplyError(*c, MakeRestError(http::Status::not_found, "not-found", "not a valid patient id"));
  }
  AuditTarget(*c, patient, patient);
  // Everything of the patient: r on all three types for that patient.
  for (absl::string_view type : domain::kChartTypes) {
    if (!Authorize(*c, type, auth::kRead, patient)) return;
  }
  for (const auto& p : c->query) {
    if (p.name != "_format" && p.name != "_pretty" && c->prefer.strict) {
      return ReplyError(*c, Bad("not-supported", absl::StrCat("$everything takes no parameter ", p.name.substr(0, 64))));
    }
  }
  Document d;
  StartBundle(d, "searchset");
  Alloc& a = d.GetAllocator();
  Value links(rapidjson::kArrayType), entries(rapidjson::kArrayType);
  AddLink(&links, "self", absl::StrCat(c->base, "/Patient/", patient, "/$everything"), a);
  int64_t total = 0;
  bool truncated = false;
  // The Patient itself (who this is) first, for a caller that may read it.
  const bool with_patient = !c->principal.has_value() ||
                            auth::Authorize(*c->principal, "Patient", auth::kRead, patient) == auth::Decision::kAllow;
  for (Kind kind : {storage::PATIENT, storage::PRIORITIES, storage::GOAL, storage::WHAT_MATTERS, storage::PREFERENCE,
                    storage::GOAL_SCORE}) {
    if (kind == storage::PATIENT && !with_patient) continue;
    int n = 0, scanned = 0;
    absl::Status inner;
    auto s = core_->ScanStoredCurrent(kind, std::string(patient), "", "", [&](const Record& r) {
      if (++scanned % kDeadlineCheckEvery == 0 && absl::Now() > c->ctx.deadline) {
        inner = absl::DeadlineExceededError("$everything ran past its deadline");
        return false;
      }
      if (r.retracted()) return true;
      if (n == kEverythingMaxPerKind) {
        truncated = true;
        return false;
      }
      Value resource(rapidjson::kObjectType), prov(rapidjson::kObjectType);
      if (auto st = ToFhir(r, &resource, a); !st.ok()) {
        inner = st;
        return false;
      }
      if (auto st = ProvenanceOf(r, &prov, a); !st.ok()) {
        inner = st;
        return false;
      }
      Value entry(rapidjson::kObjectType);
      entry.AddMember("fullUrl", Str(absl::StrCat(c->base, "/", FhirTypeOf(kind), "/", FhirId(r)), a), a);
      entry.AddMember("resource", resource, a);
      Value search(rapidjson::kObjectType);
      search.AddMember("mode", "match", a);
      entry.AddMember("search", search, a);
      entries.PushBack(entry, a);
      Value pentry(rapidjson::kObjectType);
      pentry.AddMember("fullUrl", Str(absl::StrCat(c->base, "/Provenance/", ProvenanceId(r)), a), a);
      pentry.AddMember("resource", prov, a);
      Value psearch(rapidjson::kObjectType);
      psearch.AddMember("mode", "include", a);
      pentry.AddMember("search", psearch, a);
      entries.PushBack(pentry, a);
      ++n;
      return true;
    });
    if (!s.ok()) return ReplyError(*c, FromStatus(s, kind));
    if (!inner.ok()) return ReplyError(*c, FromStatus(inner, kind));
    total += n;
  }
  if (truncated) {
    Value oo(rapidjson::kObjectType);
    BuildOperationOutcome({Issue{"warning", "too-costly",
                                 absl::StrCat("more than ", kEverythingMaxPerKind,
                                              " resources of one kind: only the first are included; use search with "
                                              "paging for the rest"),
                                 ""}},
                          &oo, a);
    Value entry(rapidjson::kObjectType);
    entry.AddMember("resource", oo, a);
    Value search(rapidjson::kObjectType);
    search.AddMember("mode", "outcome", a);
    entry.AddMember("search", search, a);
    entries.PushBack(entry, a);
  }
  d.AddMember("total", total, a);
  d.AddMember("link", links, a);
  if (!entries.Empty()) d.AddMember("entry", entries, a);  // FHIR JSON has no empty arrays
  ReplyJson(*c, http::Status::ok, d);
}

}  // namespace

std::unique_ptr<http::Handler> NewFhirService(domain::PatientRecords* core, FhirServiceOptions options) {
  return std::make_unique<FhirService>(core, std::move(options));
}

}  // namespace wmty::fhir

namespace wmty::fhir {
namespace {

// ---------------------------------------------------------------- audit trail

auth::Decision FhirService::AuditDecision(const Call& c, auth::Permission p, absl::string_view patient) const {
  if (!c.principal.has_value()) return auth::Decision::kAllow;
  auth::Principal only = *c.principal;
  std::erase_if(only.scopes, [](const auth::Scope& s) { return s.resource_type != "AuditEvent"; });
  return auth::Authorize(only, "AuditEvent", p, patient);
}

void NoAuditScope(Call& c, auth::Permission p) {
  ReplyError(c,
             MakeRestError(http::Status::forbidden, "forbidden",
                           absl::StrCat("the access token has no scope naming AuditEvent that grants ",
                                        PermissionName(p), " (wildcard scopes do not reach the audit trail)")),
             {{bhttp::field::www_authenticate, "Bearer realm=\"wmty\", error=\"insufficient_scope\""}});
}

void FhirService::ReadAuditEvent(const CallPtr& c, absl::string_view id) {
  const RestError unknown = UnknownId("AuditEvent", id);
  if (c->principal.has_value() &&
      AuditDecision(*c, auth::kRead, c->principal->patient.value_or("")) == auth::Decision::kInsufficientScope) {
    return NoAuditScope(*c, auth::kRead);
  }
  AuditTarget(*c, "", id);
  const uint64_t sequence = AuditSequenceOf(id);
  std::optional<storage::AuditRecord> found;
  if (sequence > 0) {
    auto s = core_->ScanAudit(sequence - 1, [&](const storage::AuditRecord& r) {
      if (r.sequence() == sequence) found = r;
      return false;
    });
    if (!s.ok()) return ReplyError(*c, FromStatus(s, storage::KIND_UNSPECIFIED));
  }
  if (!found.has_value()) return ReplyError(*c, unknown);
  // Another patient's event (or one of no patient, to a patient/ scope) looks unknown.
  if (AuditDecision(*c, auth::kRead, found->patient_id()) != auth::Decision::kAllow) {
    return ReplyError(*c, unknown);
  }
  Document d;
  BuildAuditEvent(*found, &d, d.GetAllocator());
  ReplyJson(*c, http::Status::ok, d);
}

// Scans the audit column family oldest first from the page's cursor (the
// last sequence returned): the cost is the number of records walked, up to
// the whole trail for a rare match. Bounded by the request's deadline.
void FhirService::SearchAuditEvent(const CallPtr& c) {
  auto q = ParseAuditQuery(c->query, c->prefer.strict);
  if (!q.ok()) return ReplyError(*c, ParamError(q.status()));
  AuditTarget(*c, q->patient);
  switch (AuditDecision(*c, auth::kSearch, q->patient)) {
    case auth::Decision::kAllow:
      break;
    case auth::Decision::kInsufficientScope:
      return NoAuditScope(*c, auth::kSearch);
    case auth::Decision::kOtherPatient:
      return ReplyError(*c, MakeRestError(http::Status::forbidden, "forbidden",
                                          "the access token's patient scopes reach only their patient's audit "
                                          "events: search with patient=<the token's patient>"),
                        {{bhttp::field::www_authenticate, "Bearer realm=\"wmty\", error=\"insufficient_scope\""}});
  }
  const std::string query_hash = domain::Sha256(q->canonical);
  uint64_t after = 0;
  if (!q->page_token.empty()) {
    auto cursor = core_->page_tokens().Decode(q->page_token, query_hash, "_page_token");
    if (!cursor.ok() || cursor->after_version() < 0) return ReplyError(*c, BadPageToken());
    after = static_cast<uint64_t>(cursor->after_version());
  }
  const size_t need = static_cast<size_t>(q->count) + 1;
  std::vector<storage::AuditRecord> hits;
  int walked = 0;
  bool late = false;
  auto s = core_->ScanAudit(after, [&](const storage::AuditRecord& r) {
    if (++walked % kDeadlineCheckEvery == 0 && absl::Now() > c->ctx.deadline) {
      late = true;
      return false;
    }
    if (AuditMatches(*q, r)) hits.push_back(r);
    return hits.size() < need;
  });
  if (!s.ok()) return ReplyError(*c, FromStatus(s, storage::KIND_UNSPECIFIED));
  if (late) return ReplyError(*c, FromStatus(absl::DeadlineExceededError("audit search"), storage::KIND_UNSPECIFIED));
  const bool more = hits.size() > static_cast<size_t>(q->count);
  if (more) hits.resize(q->count);

  Document d;
  StartBundle(d, "searchset");
  Alloc& a = d.GetAllocator();
  Value links(rapidjson::kArrayType), entries(rapidjson::kArrayType);
  const std::string self = absl::StrCat(c->base, "/AuditEvent");
  AddLink(&links, "self", q->link_params.empty() ? self : absl::StrCat(self, "?", FormatQuery(q->link_params)), a);
  if (more) {
    storage::PageCursor cursor;
    cursor.set_query_hash(query_hash);
    cursor.set_after_version(static_cast<int64_t>(hits.back().sequence()));
    auto next_params = q->link_params;
    next_params.push_back({"_page_token", core_->page_tokens().Encode(cursor)});
    AddLink(&links, "next", absl::StrCat(self, "?", FormatQuery(next_params)), a);
  }
  for (const storage::AuditRecord& r : hits) {
    Value entry(rapidjson::kObjectType);
    entry.AddMember("fullUrl", Str(absl::StrCat(self, "/", AuditEventId(r.sequence())), a), a);
    Value resource;
    BuildAuditEvent(r, &resource, a);
    entry.AddMember("resource", resource, a);
    Value search(rapidjson::kObjectType);
    search.AddMember("mode", "match", a);
    entry.AddMember("search", search, a);
    entries.PushBack(entry, a);
  }
  d.AddMember("link", links, a);
  if (!entries.Empty()) d.AddMember("entry", entries, a);
  ReplyJson(*c, http::Status::ok, d);
}

}  // namespace
}  // namespace wmty::fhir
