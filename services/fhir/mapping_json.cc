#include "fhir/mapping_json.h"

#include <cstring>

#include <rapidjson/error/en.h>
#include <rapidjson/stringbuffer.h>
#include <rapidjson/writer.h>

#include "absl/strings/ascii.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/time/civil_time.h"
#include "absl/time/time.h"
#include "domain/validation.h"

namespace wmty::fhir::json {

namespace {

bool NameIs(const Value& name, absl::string_view want) {
  return name.GetStringLength() == want.size() && std::memcmp(name.GetString(), want.data(), want.size()) == 0;
}

}  // namespace

const Value* Member(const Value& o, absl::string_view name) {
  if (!o.IsObject()) return nullptr;
  for (auto it = o.MemberBegin(); it != o.MemberEnd(); ++it) {
    if (NameIs(it->name, name)) return &it->value;
  }
  return nullptr;
}

Value* MutableMember(Value& o, absl::string_view name) {
  if (!o.IsObject()) return nullptr;
  for (auto it = o.MemberBegin(); it != o.MemberEnd(); ++it) {
    if (NameIs(it->name, name)) return &it->value;
  }
  return nullptr;
}

std::optional<absl::string_view> StringMember(const Value& o, absl::string_view name) {
  const Value* v = Member(o, name);
  if (v == nullptr || !v->IsString()) return std::nullopt;
  return absl::string_view(v->GetString(), v->GetStringLength());
}

absl::string_view StringOf(const Value& v) {
  if (!v.IsString()) return {};
  return absl::string_view(v.GetString(), v.GetStringLength());
}

Value Str(absl::string_view s, Allocator& alloc) {
  return Value(s.data(), static_cast<rapidjson::SizeType>(s.size()), alloc);
}

void Set(Value& o, absl::string_view name, Value v, Allocator& alloc) {
  if (Value* existing = MutableMember(o, name)) {
    *existing = std::move(v);
    return;
  }
  o.AddMember(Str(name, alloc), v, alloc);
}

void Remove(Value& o, absl::string_view name) {
  if (!o.IsObject()) return;
  for (auto it = o.MemberBegin(); it != o.MemberEnd(); ++it) {
    if (NameIs(it->name, name)) {
      o.EraseMember(it);  // keeps the order of the other members
      return;
    }
  }
}

Value Coding(absl::string_view system, absl::string_view code, absl::string_view display, Allocator& alloc) {
  Value c(rapidjson::kObjectType);
  if (!system.empty()) c.AddMember("system", Str(system, alloc), alloc);
  c.AddMember("code", Str(code, alloc), alloc);
  if (!display.empty()) c.AddMember("display", Str(display, alloc), alloc);
  return c;
}

Value Concept(Value coding, Allocator& alloc) {
  Value codings(rapidjson::kArrayType);
  codings.PushBack(coding, alloc);
  Value cc(rapidjson::kObjectType);
  cc.AddMember("coding", codings, alloc);
  return cc;
}

Value Reference(absl::string_view ref, absl::string_view display, Allocator& alloc) {
  Value r(rapidjson::kObjectType);
  r.AddMember("reference", Str(ref, alloc), alloc);
  if (!display.empty()) r.AddMember("display", Str(display, alloc), alloc);
  return r;
}

std::string Serialize(const Value& v) {
  rapidjson::StringBuffer buffer;
  rapidjson::Writer<rapidjson::StringBuffer> writer(buffer);
  v.Accept(writer);
  return std::string(buffer.GetString(), buffer.GetSize());
}

absl::Status Parse(absl::string_view text, rapidjson::Document* doc) {
  doc->Parse<rapidjson::kParseFullPrecisionFlag>(text.data(), text.size());
  if (doc->HasParseError()) {
    return absl::InvalidArgumentError(absl::StrCat(
        "not valid JSON: ", rapidjson::GetParseError_En(doc->GetParseError()), " at offset ", doc->GetErrorOffset()));
  }
  return absl::OkStatus();
}

absl::StatusOr<const Value*> ParseStoredElements(absl::string_view text, rapidjson::Document* doc) {
  if (text.empty()) return static_cast<const Value*>(nullptr);
  if (!Parse(text, doc).ok() || !doc->IsObject()) return absl::DataLossError("stored FHIR elements do not parse");
  return doc;
}

std::string FormatInstant(int64_t unix_micros) {
  return absl::FormatTime("%Y-%m-%dT%H:%M:%E3SZ", absl::FromUnixMicros(unix_micros), absl::UTCTimeZone());
}

std::string FormatDateTime(const google::protobuf::Timestamp& t) {
  absl::Time time = absl::FromUnixSeconds(t.seconds()) + absl::Nanoseconds(t.nanos());
  return absl::FormatTime("%Y-%m-%dT%H:%M:%E*SZ", time, absl::UTCTimeZone());
}

bool ParseDateTime(absl::string_view s, google::protobuf::Timestamp* out) {
  absl::Time time;
  if (s.size() == 4 || s.size() == 7 || s.size() == 10) {
    if (!domain::IsValidFhirDate(s)) return false;
    int year = 0, month = 1, day = 1;
    if (!absl::SimpleAtoi(s.substr(0, 4), &year)) return false;
    if (s.size() >= 7 && !absl::SimpleAtoi(s.substr(5, 2), &month)) return false;
    if (s.size() == 10 && !absl::SimpleAtoi(s.substr(8, 2), &day)) return false;
    time = absl::FromCivil(absl::CivilDay(year, month, day), absl::UTCTimeZone());
  } else {
    // FHIR requires seconds and a zone once a time is given.
    if (s.size() < 20 || s[10] != 'T' || s[13] != ':' || s[16] != ':') return false;
    if (!domain::IsValidFhirDate(s.substr(0, 10))) return false;
    std::string err;
    if (!absl::ParseTime("%Y-%m-%dT%H:%M:%E*S%Ez", s, &time, &err)) return false;
  }
  const int64_t seconds = absl::ToUnixSeconds(time);  // floor
  out->set_seconds(seconds);
  out->set_nanos(static_cast<int32_t>((time - absl::FromUnixSeconds(seconds)) / absl::Nanoseconds(1)));
  return true;
}

std::string XhtmlEscape(absl::string_view s) {
  std::string out;
  out.reserve(s.size());
  for (char c : s) {
    switch (c) {
      case '&':
        out += "&amp;";
        break;
      case '<':
        out += "&lt;";
        break;
      case '>':
        out += "&gt;";
        break;
      case '"':
        out += "&quot;";
        break;
      case '\'':
        out += "&#39;";
        break;
      default:
        out += c;
    }
  }
  return out;
}

}  // namespace wmty::fhir::json
