// Notification Bundles and SubscriptionStatus Parameters (notification.h).
#include "fhir/notification.h"

#include "absl/random/random.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/time/clock.h"
#include "domain/fhir_types.h"
#include "fhir/mapping.h"
#include "fhir/mapping_json.h"
#include "fhir/rest.h"
#include "fhir/subscription_mapping.h"  // SubscriptionStatusCode

namespace wmty::fhir {
namespace {

using json::Str;
using rapidjson::Value;
using Alloc = rapidjson::Document::AllocatorType;

// A random (version 4) UUID, for the Bundle's id and the status's fullUrl.
std::string NewUuid() {
  thread_local absl::BitGen gen;
  const uint64_t hi = absl::Uniform<uint64_t>(gen), lo = absl::Uniform<uint64_t>(gen);
  return absl::StrFormat("%08x-%04x-4%03x-%04x-%012x", hi >> 32, (hi >> 16) & 0xffff, hi & 0xfff,
                         0x8000 | ((lo >> 48) & 0x3fff), lo & 0xffffffffffffULL);
}

// The FHIR type and id of a change's resource.
std::pair<absl::string_view, std::string> TypeAndId(const storage::Change& change) {
  storage::Record r;
  r.set_kind(change.kind());
  r.set_patient_id(change.patient_id());
  r.set_id(change.id());
  return {domain::FhirTypeOf(change.kind()), domain::FhirId(r)};
}

Value Parameter(absl::string_view name, absl::string_view value_type, Value value, Alloc& a) {
  Value p(rapidjson::kObjectType);
  p.AddMember("name", Str(name, a), a);
  p.AddMember(Str(value_type, a), value, a);
  return p;
}

Value EventParameter(const std::string& base, const NotificationEvent& event, bool with_focus, Alloc& a) {
  Value parts(rapidjson::kArrayType);
  // R4 has no integer64: the backport carries event numbers as strings.
  parts.PushBack(Parameter("event-number", "valueString", Str(absl::StrCat(event.number), a), a), a);
  parts.PushBack(Parameter("timestamp", "valueInstant", Str(FhirInstant(event.change.time_micros()), a), a), a);
  if (with_focus) {
    Value ref(rapidjson::kObjectType);
    ref.AddMember("reference", Str(FocusUrl(base, event.change), a), a);
    parts.PushBack(Parameter("focus", "valueReference", std::move(ref), a), a);
  }
  Value p(rapidjson::kObjectType);
  p.AddMember("name", "notification-event", a);
  p.AddMember("part", parts, a);
  return p;
}

// One history entry for an event's focus (id-only, or with the resource).
absl::Status AddFocusEntry(const std::string& base, const NotificationEvent& event, bool full, Value* entries,
                           Alloc& a) {
  const storage::Change& change = event.change;
  const auto [type, id] = TypeAndId(change);
  const bool put_creates = change.kind() == storage::PRIORITIES || change.kind() == storage::PATIENT;
  const bool retract = change.op() == storage::Change::RETRACT;
  const bool post = change.op() == storage::Change::CREATE && !put_creates;
  const char* method = retract ? "DELETE" : post ? "POST" : "PUT";
  Value entry(rapidjson::kObjectType);
  entry.AddMember("fullUrl", Str(FocusUrl(base, change), a), a);
  if (full && !retract && event.version.has_value()) {
    Value resource(rapidjson::kObjectType);
    if (auto s = ToFhir(*event.version, &resource, a); !s.ok()) return s;
    entry.AddMember("resource", resource, a);
  }
  Value request(rapidjson::kObjectType);
  request.AddMember("method", Str(method, a), a);
  request.AddMember("url", Str(post ? std::string(type) : absl::StrCat(type, "/", id), a), a);
  entry.AddMember("request", request, a);
  Value response(rapidjson::kObjectType);
  const bool created = change.op() == storage::Change::CREATE;
  response.AddMember("status", Str(retract ? "204 No Content" : created ? "201 Created" : "200 OK", a), a);
  if (!retract) response.AddMember("location", Str(absl::StrCat(type, "/", id, "/_history/", change.version()), a), a);
  entry.AddMember("response", response, a);
  entries->PushBack(entry, a);
  return absl::OkStatus();
}

Value StatusEntry(const NotificationSubject& subject, NotificationType type,
                  const std::vector<NotificationEvent>& events, bool in_history, Alloc& a) {
  Value params(rapidjson::kObjectType);
  SubscriptionStatusParameters(subject, type, events, &params, a);
  Value entry(rapidjson::kObjectType);
  entry.AddMember("fullUrl", Str(absl::StrCat("urn:uuid:", NewUuid()), a), a);
  entry.AddMember("resource", params, a);
  if (in_history) {
    // A history Bundle's entries need request and response (R4 bdl rules).
    Value request(rapidjson::kObjectType);
    request.AddMember("method", "GET", a);
    request.AddMember("url", Str(absl::StrCat("Subscription/", subject.subscription_id, "/$status"), a), a);
    entry.AddMember("request", request, a);
    Value response(rapidjson::kObjectType);
    response.AddMember("status", "200", a);
    entry.AddMember("response", response, a);
  } else {
    Value search(rapidjson::kObjectType);
    search.AddMember("mode", "match", a);
    entry.AddMember("search", search, a);
  }
  return entry;
}

void BundleHead(rapidjson::Document& d, absl::string_view bundle_type) {
  Alloc& a = d.GetAllocator();
  d.SetObject();
  d.AddMember("resourceType", "Bundle", a);
  d.AddMember("id", Str(NewUuid(), a), a);
  d.AddMember("type", Str(bundle_type, a), a);
  d.AddMember("timestamp", Str(FhirInstant(absl::ToUnixMicros(absl::Now())), a), a);
}

}  // namespace

absl::string_view NotificationTypeCode(NotificationType type) {
  switch (type) {
    case NotificationType::kHandshake:
      return "handshake";
    case NotificationType::kHeartbeat:
      return "heartbeat";
    case NotificationType::kEventNotification:
      return "event-notification";
    case NotificationType::kQueryStatus:
      return "query-status";
    case NotificationType::kQueryEvent:
      return "query-event";
  }
  return "event-notification";
}

std::string FocusUrl(absl::string_view base_url, const storage::Change& change) {
  const auto [type, id] = TypeAndId(change);
  return absl::StrCat(base_url, "/", type, "/", id);
}

void SubscriptionStatusParameters(const NotificationSubject& subject, NotificationType type,
                                  const std::vector<NotificationEvent>& events, Value* out, Alloc& a) {
  out->SetObject();
  out->AddMember("resourceType", "Parameters", a);
  Value meta(rapidjson::kObjectType);
  Value profiles(rapidjson::kArrayType);
  profiles.PushBack(Str(kSubscriptionStatusProfile, a), a);
  meta.AddMember("profile", profiles, a);
  out->AddMember("meta", meta, a);
  Value params(rapidjson::kArrayType);
  Value ref(rapidjson::kObjectType);
  ref.AddMember("reference", Str(absl::StrCat(subject.base_url, "/Subscription/", subject.subscription_id), a), a);
  params.PushBack(Parameter("subscription", "valueReference", std::move(ref), a), a);
  params.PushBack(Parameter("topic", "valueCanonical", Str(subject.subscription.topic(), a), a), a);
  const auto status =
      subject.status != storage::Subscription::STATUS_UNSPECIFIED ? subject.status : subject.subscription.status();
  params.PushBack(Parameter("status", "valueCode", Str(SubscriptionStatusCode(status), a), a), a);
  params.PushBack(Parameter("type", "valueCode", Str(NotificationTypeCode(type), a), a), a);
  params.PushBack(
      Parameter("events-since-subscription-start", "valueString", Str(absl::StrCat(subject.events_since_start), a), a),
      a);
  const bool with_focus = subject.subscription.payload() != storage::Subscription::EMPTY;
  for (const NotificationEvent& event : events)
    params.PushBack(EventParameter(subject.base_url, event, with_focus, a), a);
  if (!subject.error.empty()) {
    Value concept_value(rapidjson::kObjectType);
    concept_value.AddMember("text", Str(subject.error, a), a);
    params.PushBack(Parameter("error", "valueCodeableConcept", std::move(concept_value), a), a);
  }
  out->AddMember("parameter", params, a);
}

absl::StatusOr<std::string> NotificationBundle(const NotificationSubject& subject, NotificationType type,
                                               const std::vector<NotificationEvent>& events,
                                               storage::Subscription::Payload payload) {
  rapidjson::Document d;
  BundleHead(d, "history");
  Alloc& a = d.GetAllocator();
  Value entries(rapidjson::kArrayType);
  entries.PushBack(StatusEntry(subject, type, events, /*in_history=*/true, a), a);
  if (payload != storage::Subscription::EMPTY) {
    const bool full = payload == storage::Subscription::FULL_RESOURCE;
    for (const NotificationEvent& event : events) {
      if (auto s = AddFocusEntry(subject.base_url, event, full, &entries, a); !s.ok()) return s;
    }
  }
  d.AddMember("entry", entries, a);
  return json::Serialize(d);
}

std::string StatusBundle(const std::vector<NotificationSubject>& subjects) {
  rapidjson::Document d;
  BundleHead(d, "searchset");
  Alloc& a = d.GetAllocator();
  d.AddMember("total", static_cast<uint64_t>(subjects.size()), a);
  Value entries(rapidjson::kArrayType);
  for (const NotificationSubject& subject : subjects) {
    entries.PushBack(StatusEntry(subject, NotificationType::kQueryStatus, {}, /*in_history=*/false, a), a);
  }
  if (!entries.Empty()) d.AddMember("entry", entries, a);
  return json::Serialize(d);
}

}  // namespace wmty::fhir
