// The audit trail through the FHIR face: AuditEvent read and search (read
// only; scopes naming AuditEvent itself).

#include "absl/strings/str_cat.h"
#include "domain/names.h"
#include "fhir/audit_event.h"
#include "fhir/face/access.h"
#include "fhir/face/bundle.h"
#include "fhir/face/service.h"

namespace wmty::fhir::face {

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
      return ReplyError(*c,
                        MakeRestError(http::Status::forbidden, "forbidden",
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

}  // namespace wmty::fhir::face
