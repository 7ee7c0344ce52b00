// The FHIR face's history: instance history (a resource's versions) and type
// history (the change log, newest first), paged with page tokens.

#include <algorithm>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "domain/names.h"
#include "fhir/face/access.h"
#include "fhir/face/bundle.h"
#include "fhir/face/resource_types.h"
#include "fhir/face/service.h"

namespace wmty::fhir::face {
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
  const std::string query_hash = domain::Sha256(absl::StrCat("history\n", type, "/", id, "\n", params->since_raw));
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

}  // namespace wmty::fhir::face
