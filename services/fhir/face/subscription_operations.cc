// Subscription/[id]/$status and Subscription/[id]/$events (Subscriptions
// Backport IG 1.1.0): what the server knows of a subscription's
// notifications, read from the durable event log (domain::SubscriptionEvents).
// Who may ask: whoever may see the subscription (domain::Subscriptions::Read:
// its owner, or a system/ scope); others get 404 as for an unknown id.
// $events carries full resources only of what the caller may read itself.
#include <algorithm>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "domain/fhir_types.h"
#include "fhir/face/access.h"
#include "fhir/face/service.h"
#include "fhir/notification.h"

namespace wmty::fhir::face {
namespace {

// Most events one $events answer carries.
constexpr uint64_t kMaxEventsPerQuery = 100;

bool ParseNumberParam(Call& c, absl::string_view name, uint64_t* out) {
  for (const QueryParam& p : c.query) {
    if (p.name != name) continue;
    if (!absl::SimpleAtoi(p.value, out)) {
      ReplyError(c, Bad("invalid", absl::StrCat(name, " must be a non-negative integer")));
      return false;
    }
  }
  return true;
}

}  // namespace

// The subscription the caller may see, and its notification counters, as a
// NotificationSubject; false after replying.
bool FhirService::SubscriptionSubjectOf(Call& c, absl::string_view id, NotificationSubject* out) {
  // The Subscription scope (403 without it), as for a read of it.
  if (!SubscriptionsServed(c, auth::kRead)) return false;
  if (options_.subscription_events == nullptr) {
    ReplyError(c, UnknownId("Subscription", id));
    return false;
  }
  AuditTarget(c, "", id);
  CallContext ctx = c.ctx;
  ctx.principal = c.principal.has_value() ? &*c.principal : nullptr;
  auto record = options_.subscriptions->Read(id, ctx);
  if (!record.ok() || record->retracted()) {
    const bool unknown = !record.ok() && absl::IsNotFound(record.status());
    ReplyError(c, unknown || record.ok() ? UnknownId("Subscription", id)
                                         : FromStatus(record.status(), storage::KIND_UNSPECIFIED));
    return false;
  }
  if (!out->subscription.ParseFromString(record->resource())) {
    ReplyError(c, FromStatus(absl::DataLossError("stored subscription does not parse"), storage::KIND_UNSPECIFIED));
    return false;
  }
  auto counters = options_.subscription_events->Counters(id);
  if (!counters.ok()) {
    ReplyError(c, FromStatus(counters.status(), storage::KIND_UNSPECIFIED));
    return false;
  }
  out->base_url = c.base;
  out->subscription_id = std::string(id);
  out->events_since_start = counters->match.events_since_start();
  out->error = out->subscription.error();
  if (out->error.empty() && out->subscription.status() == storage::Subscription::ERROR) {
    out->error = counters->delivery.last_error();
  }
  return true;
}

void FhirService::SubscriptionStatus(const CallPtr& c, absl::string_view id) {
  NotificationSubject subject;
  if (!SubscriptionSubjectOf(*c, id, &subject)) return;
  Reply(*c, http::Status::ok, StatusBundle({subject}));
}

void FhirService::SubscriptionEventsQuery(const CallPtr& c, absl::string_view id) {
  NotificationSubject subject;
  if (!SubscriptionSubjectOf(*c, id, &subject)) return;
  uint64_t since = 1, until = subject.events_since_start;
  if (!ParseNumberParam(*c, "eventsSinceNumber", &since) || !ParseNumberParam(*c, "eventsUntilNumber", &until)) return;
  storage::Subscription::Payload payload = subject.subscription.payload();
  for (const QueryParam& p : c->query) {
    if (p.name != "content") continue;
    if (p.value == "empty")
      payload = storage::Subscription::EMPTY;
    else if (p.value == "id-only")
      payload = storage::Subscription::ID_ONLY;
    else if (p.value == "full-resource")
      payload = storage::Subscription::FULL_RESOURCE;
    else
      return ReplyError(*c, Bad("invalid", "content must be empty, id-only or full-resource"));
  }
  until = std::min(until, subject.events_since_start);
  if (since == 0) since = 1;
  auto stored = options_.subscription_events->ReadEvents(id, since, until, kMaxEventsPerQuery);
  if (!stored.ok()) return ReplyError(*c, FromStatus(stored.status(), storage::KIND_UNSPECIFIED));
  auto reader_events = std::vector<NotificationEvent>();
  for (storage::SubscriptionEvent& e : *stored) {
    NotificationEvent event;
    event.number = e.number();
    event.change = std::move(*e.mutable_change());
    const storage::Change& change = event.change;
    // The caller's own read access decides whether the resource comes along.
    const bool may_read =
        !c->principal.has_value() || auth::Authorize(*c->principal, domain::FhirTypeOf(change.kind()), auth::kRead,
                                                     change.patient_id()) == auth::Decision::kAllow;
    if (payload == storage::Subscription::FULL_RESOURCE && may_read) {
      auto version = core_->ScanStoredVersions(change.kind(), change.patient_id(), change.id(), change.version() - 1,
                                               [&](const Record& r) {
                                                 if (r.version() == change.version()) event.version = r;
                                                 return false;
                                               });
      if (!version.ok()) return ReplyError(*c, FromStatus(version, change.kind()));
    }
    reader_events.push_back(std::move(event));
  }
  auto body = NotificationBundle(subject, NotificationType::kQueryEvent, reader_events, payload);
  if (!body.ok()) return ReplyError(*c, FromStatus(body.status(), storage::KIND_UNSPECIFIED));
  Reply(*c, http::Status::ok, std::move(*body));
}

}  // namespace wmty::fhir::face
