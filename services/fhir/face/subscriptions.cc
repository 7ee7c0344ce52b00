// The FHIR face's Subscription interactions (Subscriptions Backport IG
// 1.1.0): create, read, vread, update, delete, search and instance history.
// The rules (validation, SSRF, ownership, who sees what) are
// domain::Subscriptions'; here the Subscription scope is checked, FHIR is
// translated (fhir/subscription_mapping.h) and the answer written.

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "common/status.h"
#include "domain/names.h"
#include "domain/page_token.h"
#include "domain/topics.h"
#include "fhir/face/access.h"
#include "fhir/face/bundle.h"
#include "fhir/face/service.h"
#include "fhir/subscription_mapping.h"

namespace wmty::fhir::face {
namespace {

constexpr absl::string_view kType = "Subscription";

// A domain error on a Subscription as HTTP: field violations named by FHIR path.
RestError SubscriptionError(const absl::Status& s, const IncomingSubscription* incoming = nullptr) {
  if (s.code() != absl::StatusCode::kInvalidArgument || incoming == nullptr) {
    return FromStatus(s, storage::SUBSCRIPTION, /*fields_are_fhir_paths=*/true);
  }
  FieldViolations renamed;
  const google::rpc::BadRequest bad_request = GetFieldViolations(s);
  for (const auto& v : bad_request.field_violations()) {
    renamed.Add(SubscriptionFhirPath(v.field(), *incoming), v.description());
  }
  if (renamed.empty()) return FromStatus(s, storage::SUBSCRIPTION, true);
  return FromStatus(renamed.ToStatus(), storage::SUBSCRIPTION, true);
}

}  // namespace

bool FhirService::SubscriptionsServed(Call& c, auth::Permission p) {
  if (options_.subscriptions == nullptr) {
    ReplyError(
        c, MakeRestError(http::Status::not_implemented, "not-supported", "this server does not serve Subscriptions"));
    return false;
  }
  // A Subscription belongs to no patient: the framework has no patient to
  // authorize; the owner rule is the domain's.
  c.patient_authorized = true;
  return AuthorizeType(c, kType, p);
}

void FhirService::RespondSubscription(Call& c, http::Status status, const Record& record, absl::string_view what) {
  AuditTarget(c, "", record.id());
  Headers headers = VersionHeaders(c, kType, record);
  if (status == http::Status::created) {
    headers.emplace_back(bhttp::field::location,
                         absl::StrCat(c.base, "/Subscription/", record.id(), "/_history/", record.version()));
  }
  switch (c.prefer.return_pref) {
    case Prefer::Return::kMinimal:
      return Reply(c, status, std::nullopt, headers);
    case Prefer::Return::kOperationOutcome: {
      Document d;
      BuildOperationOutcome(
          {Issue{"information", "informational",
                 absl::StrCat(what, " Subscription/", record.id(), " version ", record.version()), ""}},
          &d, d.GetAllocator());
      return ReplyJson(c, status, d, headers);
    }
    default: {
      Document d;
      if (auto s = SubscriptionToFhir(record, &d, d.GetAllocator()); !s.ok())
        return ReplyError(c, SubscriptionError(s));
      return ReplyJson(c, status, d, headers);
    }
  }
}

void FhirService::CreateSubscription(const CallPtr& c) {
  if (!SubscriptionsServed(*c, auth::kCreate)) return;
  Document doc;
  if (!ParseBody(*c, kType, &doc)) return;
  auto incoming = SubscriptionFromFhir(doc);
  if (!incoming.ok()) return ReplyError(*c, SubscriptionError(incoming.status()));
  auto in = std::make_shared<IncomingSubscription>(std::move(*incoming));
  options_.subscriptions->Create(in->subscription, c->ctx, OnAnswerPool([this, c, in](absl::StatusOr<Record> written) {
                                   Guarded(c, [&] {
                                     if (!written.ok())
                                       return ReplyError(*c, SubscriptionError(written.status(), &*in));
                                     RespondSubscription(*c, http::Status::created, *written, "created");
                                   });
                                 }));
}

void FhirService::ReadSubscription(const CallPtr& c, absl::string_view id, absl::string_view vid) {
  if (!SubscriptionsServed(*c, auth::kRead)) return;
  AuditTarget(*c, "", id);
  auto current = options_.subscriptions->Read(id, c->ctx);
  if (!current.ok()) {
    if (current.status().code() == absl::StatusCode::kNotFound) return ReplyError(*c, UnknownId(kType, id));
    return ReplyError(*c, SubscriptionError(current.status()));
  }
  Record record = *current;
  if (!vid.empty()) {
    int64_t version = 0;
    if (!absl::SimpleAtoi(vid, &version) || version < 1 || version > current->version()) {
      return ReplyError(*c, MakeRestError(http::Status::not_found, "not-found",
                                          absl::StrCat("Subscription/", id, " has no version ", vid.substr(0, 20))));
    }
    auto versions = options_.subscriptions->History(id, c->ctx);
    if (!versions.ok()) return ReplyError(*c, SubscriptionError(versions.status()));
    if (static_cast<size_t>(version) > versions->size()) return ReplyError(*c, UnknownId(kType, id));
    record = (*versions)[version - 1];
  }
  if (record.retracted()) {
    return ReplyError(*c,
                      MakeRestError(http::Status::gone, "deleted",
                                    absl::StrCat("Subscription/", id,
                                                 " was deleted (status off); its history is kept at [base]/"
                                                 "Subscription/",
                                                 id, "/_history")),
                      {{bhttp::field::etag, EtagOf(record.version())}});
  }
  Document d;
  if (auto s = SubscriptionToFhir(record, &d, d.GetAllocator()); !s.ok()) return ReplyError(*c, SubscriptionError(s));
  ReplyJson(*c, http::Status::ok, d, VersionHeaders(*c, kType, record));
}

void FhirService::UpdateSubscription(const CallPtr& c, absl::string_view id) {
  if (!SubscriptionsServed(*c, auth::kUpdate)) return;
  AuditTarget(*c, "", id);
  Document doc;
  if (!ParseBody(*c, kType, &doc)) return;
  if (!BodyIdIsUrlId(*c, doc, kType, id)) return;
  std::optional<int64_t> if_match;
  if (!IfMatchOf(*c, &if_match)) return;
  auto incoming = SubscriptionFromFhir(doc);
  if (!incoming.ok()) return ReplyError(*c, SubscriptionError(incoming.status()));
  auto in = std::make_shared<IncomingSubscription>(std::move(*incoming));
  const std::string sid(id);
  options_.subscriptions->Update(id, in->subscription, if_match, c->ctx,
                                 OnAnswerPool([this, c, in, sid](absl::StatusOr<Record> written) {
                                   Guarded(c, [&] {
                                     if (!written.ok() && written.status().code() == absl::StatusCode::kNotFound) {
                                       return ReplyError(*c, UnknownId(kType, sid));
                                     }
                                     if (!written.ok())
                                       return ReplyError(*c, SubscriptionError(written.status(), &*in));
                                     RespondSubscription(*c, http::Status::ok, *written, "updated");
                                   });
                                 }));
}

void FhirService::DeleteSubscription(const CallPtr& c, absl::string_view id) {
  if (!SubscriptionsServed(*c, auth::kDelete)) return;
  AuditTarget(*c, "", id);
  std::optional<int64_t> if_match;
  if (!IfMatchOf(*c, &if_match)) return;
  const std::string sid(id);
  options_.subscriptions->Delete(id, if_match, c->ctx, OnAnswerPool([this, c, sid](absl::StatusOr<Record> written) {
                                   Guarded(c, [&] {
                                     // Unknown, or another's: 404 (as a read, so "another's" looks unknown).
                                     // Already deleted: 204, as FHIR answers a repeated delete.
                                     const auto code = written.status().code();
                                     if (code == absl::StatusCode::kNotFound) {
                                       return ReplyError(*c, UnknownId(kType, sid));
                                     }
                                     if (written.ok() || code == absl::StatusCode::kFailedPrecondition) {
                                       Headers h;
                                       if (written.ok()) h.emplace_back(bhttp::field::etag, EtagOf(written->version()));
                                       return Reply(*c, http::Status::no_content, std::nullopt, h);
                                     }
                                     ReplyError(*c, SubscriptionError(written.status()));
                                   });
                                 }));
}

namespace {

// The search parameters of Subscription: _id, status, criteria (the topic),
// _count, _page_token. Others are refused with handling=strict, else ignored.
struct SubscriptionSearch {
  domain::SubscriptionQuery query;
  std::string page_token;
  std::vector<QueryParam> link_params;
  std::string canonical;
};

absl::StatusOr<SubscriptionSearch> ParseSubscriptionSearch(const std::vector<QueryParam>& params, bool strict) {
  SubscriptionSearch out;
  out.query.limit = 50;
  for (const QueryParam& p : params) {
    if (p.name == "_page_token") {
      out.page_token = p.value;
      continue;
    }
    if (p.name == "_count") {
      int n = 0;
      if (!absl::SimpleAtoi(p.value, &n) || n < 1) return absl::InvalidArgumentError("_count must be 1 or more");
      out.query.limit = std::min(n, 200);
    } else if (p.name == "_id") {
      out.query.id = p.value;
    } else if (p.name == "criteria") {
      out.query.topic = p.value;
    } else if (p.name == "status") {
      const storage::Subscription::Status statuses[] = {storage::Subscription::REQUESTED, storage::Subscription::ACTIVE,
                                                        storage::Subscription::ERROR, storage::Subscription::OFF};
      bool found = false;
      for (auto s : statuses) {
        if (SubscriptionStatusCode(s) == p.value) {
          out.query.status = s;
          found = true;
        }
      }
      if (!found) return absl::InvalidArgumentError("status is one of requested, active, error, off");
    } else if (p.name == "_format" || p.name == "_pretty") {
      continue;
    } else {
      if (strict) return absl::UnimplementedError(absl::StrCat("unknown search parameter ", p.name.substr(0, 64)));
      continue;
    }
    out.link_params.push_back(p);
    absl::StrAppend(&out.canonical, p.name, "=", p.value, "&");
  }
  return out;
}

}  // namespace

void FhirService::SearchSubscription(const CallPtr& c) {
  if (!SubscriptionsServed(*c, auth::kSearch)) return;
  std::vector<QueryParam> params;
  if (!SearchParamsOf(*c, &params)) return;
  auto search = ParseSubscriptionSearch(params, c->prefer.strict);
  if (!search.ok()) return ReplyError(*c, ParamError(search.status()));
  const std::string query_hash = domain::Sha256(absl::StrCat("Subscription?", search->canonical));
  if (!search->page_token.empty()) {
    auto cursor = core_->page_tokens().Decode(search->page_token, query_hash, "_page_token");
    if (!cursor.ok()) return ReplyError(*c, BadPageToken());
    search->query.after_id = cursor->after_id();
  }
  auto page = options_.subscriptions->Search(search->query, c->ctx);
  if (!page.ok()) return ReplyError(*c, SubscriptionError(page.status()));
  Document d;
  StartBundle(d, "searchset");
  Alloc& a = d.GetAllocator();
  Value links(rapidjson::kArrayType), entries(rapidjson::kArrayType);
  const std::string self = absl::StrCat(c->base, "/Subscription");
  AddLink(&links, "self",
          search->link_params.empty() ? self : absl::StrCat(self, "?", FormatQuery(search->link_params)), a);
  if (!page->next_after_id.empty()) {
    storage::PageCursor cursor;
    cursor.set_query_hash(query_hash);
    cursor.set_after_id(page->next_after_id);
    auto next = search->link_params;
    next.push_back({"_page_token", core_->page_tokens().Encode(cursor)});
    AddLink(&links, "next", absl::StrCat(self, "?", FormatQuery(next)), a);
  }
  for (const Record& r : page->records) {
    Value entry(rapidjson::kObjectType);
    entry.AddMember("fullUrl", Str(absl::StrCat(self, "/", r.id()), a), a);
    Value resource;
    if (auto s = SubscriptionToFhir(r, &resource, a); !s.ok()) return ReplyError(*c, SubscriptionError(s));
    entry.AddMember("resource", resource, a);
    Value mode(rapidjson::kObjectType);
    mode.AddMember("mode", "match", a);
    entry.AddMember("search", mode, a);
    entries.PushBack(entry, a);
  }
  d.AddMember("link", links, a);
  if (!entries.Empty()) d.AddMember("entry", entries, a);
  ReplyJson(*c, http::Status::ok, d);
}

void FhirService::SubscriptionHistory(const CallPtr& c, absl::string_view id) {
  if (!SubscriptionsServed(*c, auth::kRead)) return;
  AuditTarget(*c, "", id);
  auto versions = options_.subscriptions->History(id, c->ctx);
  if (!versions.ok()) {
    if (versions.status().code() == absl::StatusCode::kNotFound) return ReplyError(*c, UnknownId(kType, id));
    return ReplyError(*c, SubscriptionError(versions.status()));
  }
  Document d;
  StartBundle(d, "history");
  Alloc& a = d.GetAllocator();
  const std::string self = absl::StrCat(c->base, "/Subscription/", id);
  Value links(rapidjson::kArrayType), entries(rapidjson::kArrayType);
  AddLink(&links, "self", absl::StrCat(self, "/_history"), a);
  // Newest first, as every history.
  for (auto it = versions->rbegin(); it != versions->rend(); ++it) {
    const Record& r = *it;
    Value entry(rapidjson::kObjectType);
    entry.AddMember("fullUrl", Str(self, a), a);
    if (!r.retracted()) {
      Value resource;
      if (auto s = SubscriptionToFhir(r, &resource, a); !s.ok()) return ReplyError(*c, SubscriptionError(s));
      entry.AddMember("resource", resource, a);
    }
    Value request(rapidjson::kObjectType);
    const char* method = r.retracted() ? "DELETE" : r.version() == 1 ? "POST" : "PUT";
    request.AddMember("method", Value(method, a), a);
    request.AddMember("url", Str(r.version() == 1 ? "Subscription" : absl::StrCat("Subscription/", id), a), a);
    entry.AddMember("request", request, a);
    Value response(rapidjson::kObjectType);
    response.AddMember("status", Value(r.retracted() ? "204" : r.version() == 1 ? "201" : "200", a), a);
    response.AddMember("etag", Str(EtagOf(r.version()), a), a);
    response.AddMember("lastModified", Str(json::FormatInstant(r.update_time_micros()), a), a);
    entry.AddMember("response", response, a);
    entries.PushBack(entry, a);
  }
  d.AddMember("link", links, a);
  d.AddMember("entry", entries, a);
  ReplyJson(*c, http::Status::ok, d);
}

}  // namespace wmty::fhir::face
