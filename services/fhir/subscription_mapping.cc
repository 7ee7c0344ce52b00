// FHIR R4 backport Subscription <-> storage::Subscription (subscription_mapping.h).

#include "fhir/subscription_mapping.h"

#include <algorithm>

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "absl/time/time.h"
#include "common/status.h"
#include "domain/subscriptions.h"
#include "fhir/mapping_json.h"
#include "fhir/rest.h"

namespace wmty::fhir {
namespace {

using json::Member;
using json::StringMember;
using json::Value;
using storage::Subscription;

constexpr absl::string_view kTopElements[] = {"resourceType", "id",        "meta",      "text",   "language",
                                              "contained",    "extension", "contact",   "status", "end",
                                              "reason",       "criteria",  "_criteria", "error",  "channel"};
constexpr absl::string_view kChannelElements[] = {"id",       "extension", "type",     "_type",
                                                  "endpoint", "payload",   "_payload", "header"};

struct StatusRow {
  Subscription::Status status;
  absl::string_view code;
};
constexpr StatusRow kStatuses[] = {{Subscription::REQUESTED, "requested"},
                                   {Subscription::ACTIVE, "active"},
                                   {Subscription::ERROR, "error"},
                                   {Subscription::OFF, "off"}};
struct PayloadRow {
  Subscription::Payload payload;
  absl::string_view code;
};
constexpr PayloadRow kPayloads[] = {
    {Subscription::EMPTY, "empty"}, {Subscription::ID_ONLY, "id-only"}, {Subscription::FULL_RESOURCE, "full-resource"}};

template <size_t N>
void RefuseUnknown(const Value& o, const absl::string_view (&known)[N], absl::string_view path, FieldViolations* v) {
  for (auto it = o.MemberBegin(); it != o.MemberEnd(); ++it) {
    const absl::string_view name(it->name.GetString(), it->name.GetStringLength());
    if (std::find(std::begin(known), std::end(known), name) == std::end(known)) {
      v->Add(absl::StrCat(path, ".", name.substr(0, 64)),
             name == "modifierExtension" || name == "implicitRules"
                 ? "not supported: its meaning could not be kept"
                 : absl::StrCat("not an element of an R4 Subscription ", path == "Subscription" ? "" : path));
    }
  }
}

// %XX-decodes a filter's name or value (search syntax).
std::string PercentDecode(absl::string_view s) {
  std::string out;
  for (size_t i = 0; i < s.size(); ++i) {
    int hi = 0;
    if (s[i] == '%' && i + 2 < s.size() && absl::SimpleHexAtoi(s.substr(i + 1, 2), &hi)) {
      out.push_back(static_cast<char>(hi));
      i += 2;
    } else {
      out.push_back(s[i]);
    }
  }
  return out;
}

// The extensions of `element` (an object's "extension" array) with `url`.
std::vector<const Value*> Extensions(const Value* element, absl::string_view url) {
  std::vector<const Value*> out;
  if (element == nullptr) return out;
  const Value* list = Member(*element, "extension");
  if (list == nullptr || !list->IsArray()) return out;
  for (const Value& e : list->GetArray()) {
    if (StringMember(e, "url") == url) out.push_back(&e);
  }
  return out;
}

void ParseFilters(const Value& json, IncomingSubscription* in, FieldViolations* v) {
  const Value* criteria_ext = Member(json, "_criteria");
  const Value* list = criteria_ext != nullptr ? Member(*criteria_ext, "extension") : nullptr;
  if (list == nullptr || !list->IsArray()) return;
  for (rapidjson::SizeType i = 0; i < list->Size(); ++i) {
    const Value& e = (*list)[i];
    if (StringMember(e, "url") != kBackportFilterCriteria) continue;
    const std::string path = absl::StrCat("Subscription.criteria.extension[", i, "]");
    const auto text = StringMember(e, "valueString");
    const size_t q = text.has_value() ? text->find('?') : absl::string_view::npos;
    if (q == absl::string_view::npos || q == 0 || q + 1 >= text->size()) {
      v->Add(path, "a filter criteria is a valueString \"Type?name=value\", e.g. \"Goal?patient=Patient/123\"");
      continue;
    }
    for (absl::string_view pair : absl::StrSplit(text->substr(q + 1), '&', absl::SkipEmpty())) {
      const size_t eq = pair.find('=');
      storage::SubscriptionFilter* f = in->subscription.add_filters();
      in->filter_extension.push_back(static_cast<int>(i));
      f->set_resource_type(std::string(text->substr(0, q)));
      f->set_name(PercentDecode(pair.substr(0, eq)));
      if (eq != absl::string_view::npos) f->set_value(PercentDecode(pair.substr(eq + 1)));
    }
  }
}

// A non-negative integer extension value of `element`'s extension `url`.
void ParseCount(const Value* element, absl::string_view url, absl::string_view value_key, absl::string_view path,
                int32_t* out, FieldViolations* v) {
  for (const Value* e : Extensions(element, url)) {
    const Value* n = Member(*e, value_key);
    if (n == nullptr || !n->IsInt() || n->GetInt() < (value_key == "valuePositiveInt" ? 1 : 0)) {
      v->Add(std::string(path), absl::StrCat("takes ", value_key, " (",
                                             value_key == "valuePositiveInt" ? "at least 1" : "0 or more", ")"));
      continue;
    }
    *out = n->GetInt();
  }
}

// channel.payload (MIME type) and its backport-payload-content extension.
void ParsePayload(const Value& channel, Subscription* s, FieldViolations* v) {
  const auto payload = StringMember(channel, "payload");
  const Value* payload_ext = Member(channel, "_payload");
  if (!payload.has_value()) {
    s->set_payload(Subscription::EMPTY);
    if (!Extensions(payload_ext, kBackportPayloadContent).empty()) {
      v->Add("Subscription.channel.payload", "a payload content needs the payload's MIME type: application/fhir+json");
    }
  } else {
    const std::string mime = absl::AsciiStrToLower(absl::StripAsciiWhitespace(payload->substr(0, payload->find(';'))));
    if (mime != "application/fhir+json" && mime != "application/json") {
      v->Add("Subscription.channel.payload",
             absl::StrCat("unsupported payload type ", payload->substr(0, 64), ": use application/fhir+json"));
    }
    s->set_content_type("application/fhir+json");
    s->set_payload(Subscription::ID_ONLY);
    for (const Value* e : Extensions(payload_ext, kBackportPayloadContent)) {
      const auto code = StringMember(*e, "valueCode");
      const auto row =
          std::find_if(std::begin(kPayloads), std::end(kPayloads), [&](const PayloadRow& r) { return code == r.code; });
      if (row == std::end(kPayloads)) {
        v->Add("Subscription.channel.payload.extension",
               "unsupported payload content: the backport-payload-content valueCode is empty, id-only or "
               "full-resource");
        continue;
      }
      s->set_payload(row->payload);
    }
  }
}

void ParseChannel(const Value& channel, Subscription* s, FieldViolations* v) {
  RefuseUnknown(channel, kChannelElements, "Subscription.channel", v);
  const auto type = StringMember(channel, "type");
  if (!type.has_value()) {
    v->Add("Subscription.channel.type", "required: rest-hook");
  } else if (*type != "rest-hook") {
    v->Add("Subscription.channel.type",
           absl::StrCat("unsupported channel type ", type->substr(0, 32), ": this server delivers rest-hook only"));
  }
  const auto endpoint = StringMember(channel, "endpoint");
  if (!endpoint.has_value() || endpoint->empty()) {
    v->Add("Subscription.channel.endpoint", "required: the https URL notifications are POSTed to");
  } else {
    s->set_endpoint(std::string(*endpoint));
  }
  if (const Value* headers = Member(channel, "header"); headers != nullptr) {
    if (!headers->IsArray()) v->Add("Subscription.channel.header", "is a list of strings");
    for (rapidjson::SizeType i = 0; headers->IsArray() && i < headers->Size(); ++i) {
      if (!(*headers)[i].IsString()) {
        v->Add(absl::StrCat("Subscription.channel.header[", i, "]"), "a header is a string \"Name: value\"");
        continue;
      }
      s->add_headers(std::string(json::StringOf((*headers)[i])));
    }
  }
  ParsePayload(channel, s, v);
  int32_t n = 0;
  ParseCount(&channel, kBackportHeartbeatPeriod, "valueUnsignedInt", "Subscription.channel.extension", &n, v);
  s->set_heartbeat_period_seconds(n);
  n = 0;
  ParseCount(&channel, kBackportTimeout, "valueUnsignedInt", "Subscription.channel.extension", &n, v);
  s->set_timeout_seconds(n);
  n = 0;
  ParseCount(&channel, kBackportMaxCount, "valuePositiveInt", "Subscription.channel.extension", &n, v);
  s->set_max_count(n);
}

void ParseTop(const Value& json, Subscription* s, FieldViolations* v) {
  RefuseUnknown(json, kTopElements, "Subscription", v);
  if (StringMember(json, "resourceType") != "Subscription") v->Add("Subscription.resourceType", "must be Subscription");
  if (const Value* status = Member(json, "status"); status != nullptr) {
    const absl::string_view code = json::StringOf(*status);
    const auto row =
        std::find_if(std::begin(kStatuses), std::end(kStatuses), [&](const StatusRow& r) { return r.code == code; });
    if (row == std::end(kStatuses)) {
      v->Add("Subscription.status", "one of requested, active, error, off");
    } else {
      s->set_status(row->status);
    }
  }
  const auto reason = StringMember(json, "reason");
  if (!reason.has_value() || absl::StripAsciiWhitespace(*reason).empty()) {
    v->Add("Subscription.reason", "required: why the subscription is made");
  } else {
    s->set_reason(std::string(*reason));
  }
  const auto criteria = StringMember(json, "criteria");
  if (!criteria.has_value() || criteria->empty()) {
    v->Add("Subscription.criteria",
           "required: the canonical URL of a subscription topic (see the CapabilityStatement)");
  } else {
    s->set_topic(std::string(*criteria));
  }
  if (const Value* end = Member(json, "end"); end != nullptr) {
    google::protobuf::Timestamp t;
    if (!end->IsString() || !json::ParseDateTime(json::StringOf(*end), &t)) {
      v->Add("Subscription.end", "a FHIR instant, e.g. 2030-01-01T00:00:00Z");
    } else {
      s->set_end_micros(t.seconds() * 1000000 + t.nanos() / 1000);
    }
  }
}

}  // namespace

absl::StatusOr<IncomingSubscription> SubscriptionFromFhir(const rapidjson::Value& json) {
  if (!json.IsObject()) return InvalidField("Subscription", "the body must be a JSON object");
  IncomingSubscription in;
  FieldViolations v;
  ParseTop(json, &in.subscription, &v);
  ParseFilters(json, &in, &v);
  const Value* channel = Member(json, "channel");
  if (channel == nullptr || !channel->IsObject()) {
    v.Add("Subscription.channel", "required: {\"type\": \"rest-hook\", \"endpoint\": \"https://...\", ...}");
  } else {
    ParseChannel(*channel, &in.subscription, &v);
  }
  if (!v.empty()) return v.ToStatus();
  return in;
}

absl::string_view SubscriptionStatusCode(Subscription::Status status) {
  for (const StatusRow& r : kStatuses) {
    if (r.status == status) return r.code;
  }
  return "requested";
}

absl::string_view PayloadContentCode(Subscription::Payload payload) {
  for (const PayloadRow& r : kPayloads) {
    if (r.payload == payload) return r.code;
  }
  return "empty";
}

namespace {

Value Extension(absl::string_view url, absl::string_view value_key, Value value, json::Allocator& a) {
  Value e(rapidjson::kObjectType);
  e.AddMember("url", json::Str(url, a), a);
  e.AddMember(json::Str(value_key, a), value, a);
  return e;
}

Value FilterCriteria(const Subscription& s, json::Allocator& a) {
  Value list(rapidjson::kArrayType);
  for (const storage::SubscriptionFilter& f : s.filters()) {
    list.PushBack(Extension(kBackportFilterCriteria, "valueString",
                            json::Str(absl::StrCat(f.resource_type(), "?", f.name(), "=", f.value()), a), a),
                  a);
  }
  return list;
}

Value Channel(const Subscription& s, json::Allocator& a) {
  Value channel(rapidjson::kObjectType);
  Value ext(rapidjson::kArrayType);
  if (s.heartbeat_period_seconds() > 0) {
    ext.PushBack(Extension(kBackportHeartbeatPeriod, "valueUnsignedInt", Value(s.heartbeat_period_seconds()), a), a);
  }
  if (s.timeout_seconds() > 0) {
    ext.PushBack(Extension(kBackportTimeout, "valueUnsignedInt", Value(s.timeout_seconds()), a), a);
  }
  if (s.max_count() > 0) ext.PushBack(Extension(kBackportMaxCount, "valuePositiveInt", Value(s.max_count()), a), a);
  if (!ext.Empty()) channel.AddMember("extension", ext, a);
  channel.AddMember("type", "rest-hook", a);
  channel.AddMember("endpoint", json::Str(s.endpoint(), a), a);
  if (s.payload() != Subscription::EMPTY) {
    channel.AddMember("payload", json::Str(s.content_type().empty() ? "application/fhir+json" : s.content_type(), a),
                      a);
    Value payload_ext(rapidjson::kObjectType);
    Value list(rapidjson::kArrayType);
    list.PushBack(Extension(kBackportPayloadContent, "valueCode", json::Str(PayloadContentCode(s.payload()), a), a), a);
    payload_ext.AddMember("extension", list, a);
    channel.AddMember("_payload", payload_ext, a);
  }
  if (s.headers_size() > 0) {
    Value headers(rapidjson::kArrayType);
    for (const std::string& h : s.headers()) {
      const absl::string_view name = absl::string_view(h).substr(0, h.find(':'));
      headers.PushBack(json::Str(absl::StrCat(name, ": ", domain::kMaskedHeaderValue), a), a);
    }
    channel.AddMember("header", headers, a);
  }
  return channel;
}

}  // namespace

absl::Status SubscriptionToFhir(const storage::Record& record, rapidjson::Value* out, json::Allocator& a) {
  Subscription s;
  if (!s.ParseFromString(record.resource())) return absl::DataLossError("stored subscription does not parse");
  out->SetObject();
  out->AddMember("resourceType", "Subscription", a);
  out->AddMember("id", json::Str(record.id(), a), a);
  Value meta(rapidjson::kObjectType);
  meta.AddMember("versionId", json::Str(absl::StrCat(record.version()), a), a);
  meta.AddMember("lastUpdated", json::Str(json::FormatInstant(record.update_time_micros()), a), a);
  Value profiles(rapidjson::kArrayType);
  profiles.PushBack(json::Str(kBackportSubscriptionProfile, a), a);
  meta.AddMember("profile", profiles, a);
  out->AddMember("meta", meta, a);
  out->AddMember("status", json::Str(SubscriptionStatusCode(s.status()), a), a);
  if (s.end_micros() != 0) out->AddMember("end", json::Str(json::FormatInstant(s.end_micros()), a), a);
  out->AddMember("reason", json::Str(s.reason(), a), a);
  out->AddMember("criteria", json::Str(s.topic(), a), a);
  if (s.filters_size() > 0) {
    Value criteria_ext(rapidjson::kObjectType);
    criteria_ext.AddMember("extension", FilterCriteria(s, a), a);
    out->AddMember("_criteria", criteria_ext, a);
  }
  if (!s.error().empty()) out->AddMember("error", json::Str(s.error(), a), a);
  out->AddMember("channel", Channel(s, a), a);
  return absl::OkStatus();
}

std::string SubscriptionFhirPath(absl::string_view field, const IncomingSubscription& incoming) {
  if (field == "topic") return "Subscription.criteria";
  if (absl::StartsWith(field, "filters[")) {
    size_t i = 0;
    const absl::string_view digits = field.substr(8, field.find(']') - 8);
    if (absl::SimpleAtoi(digits, &i) && i < incoming.filter_extension.size()) {
      return absl::StrCat("Subscription.criteria.extension[", incoming.filter_extension[i], "]");
    }
    return "Subscription.criteria.extension";
  }
  if (field == "endpoint") return "Subscription.channel.endpoint";
  if (absl::StartsWith(field, "headers")) return absl::StrCat("Subscription.channel.header", field.substr(7));
  if (field == "payload") return "Subscription.channel.payload";
  if (field == "status" || field == "reason") return absl::StrCat("Subscription.", field);
  if (field == "heartbeat_period_seconds" || field == "timeout_seconds" || field == "max_count") {
    return "Subscription.channel.extension";
  }
  return "Subscription";
}

}  // namespace wmty::fhir
