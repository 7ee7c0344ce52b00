// Bundles of the FHIR face: a new Bundle's head, its links, and a searchset
// serialized with already-rendered resources spliced in.

#include "fhir/face/bundle.h"

#include <cstring>

#include <rapidjson/prettywriter.h>
#include <rapidjson/writer.h>

#include "domain/names.h"
#include "fhir/face/call.h"
#include "fhir/mapping.h"

namespace wmty::fhir::face {
namespace {

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

}  // namespace

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

}  // namespace wmty::fhir::face
