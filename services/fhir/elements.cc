#include "fhir/elements.h"

#include <rapidjson/pointer.h>

#include <algorithm>
#include <map>

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_replace.h"
#include "absl/strings/strip.h"

namespace wmty::fhir {
namespace {

using rapidjson::Value;

// An element of a type and the type of its value. FHIR's convention: a
// primitive type starts lower-case (string, code, dateTime), a complex one
// upper-case; backbone elements are named "<Resource>.<element>".
struct Element {
  absl::string_view name;
  absl::string_view type;
};

struct TypeInfo {
  std::vector<Element> elements;
  // A BackboneElement (or Timing): modifierExtension allowed.
  bool backbone = false;
  // A resource: the Resource and DomainResource elements are allowed.
  bool resource = false;
};

// The value[x] types of Observation and Observation.component (R4).
std::vector<Element> ObservationValues() {
  return {{"valueQuantity", "Quantity"}, {"valueCodeableConcept", "CodeableConcept"},
          {"valueString", "string"},     {"valueBoolean", "boolean"},
          {"valueInteger", "integer"},   {"valueRange", "Range"},
          {"valueRatio", "Ratio"},       {"valueSampledData", "SampledData"},
          {"valueTime", "time"},         {"valueDateTime", "dateTime"},
          {"valuePeriod", "Period"}};
}

std::vector<Element> With(std::vector<Element> a, const std::vector<Element>& b) {
  a.insert(a.end(), b.begin(), b.end());
  return a;
}

const std::map<absl::string_view, TypeInfo>& Types() {
  static const auto* types = new std::map<absl::string_view, TypeInfo>{
      // Datatypes. "Element": what a primitive's "_x" sibling may hold (id, extension).
      {"Element", {}},
      {"Coding",
       {{{"system", "uri"},
         {"version", "string"},
         {"code", "code"},
         {"display", "string"},
         {"userSelected", "boolean"}}}},
      {"CodeableConcept", {{{"coding", "Coding"}, {"text", "string"}}}},
      {"Reference", {{{"reference", "string"}, {"type", "uri"}, {"identifier", "Identifier"}, {"display", "string"}}}},
      {"Identifier",
       {{{"use", "code"},
         {"type", "CodeableConcept"},
         {"system", "uri"},
         {"value", "string"},
         {"period", "Period"},
         {"assigner", "Reference"}}}},
      {"Period", {{{"start", "dateTime"}, {"end", "dateTime"}}}},
      {"Quantity",
       {{{"value", "decimal"}, {"comparator", "code"}, {"unit", "string"}, {"system", "uri"}, {"code", "code"}}}},
      {"Range", {{{"low", "Quantity"}, {"high", "Quantity"}}}},
      {"Ratio", {{{"numerator", "Quantity"}, {"denominator", "Quantity"}}}},
      {"SampledData",
       {{{"origin", "Quantity"},
         {"period", "decimal"},
         {"factor", "decimal"},
         {"lowerLimit", "decimal"},
         {"upperLimit", "decimal"},
         {"dimensions", "positiveInt"},
         {"data", "string"}}}},
      {"Annotation",
       {{{"authorReference", "Reference"}, {"authorString", "string"}, {"time", "dateTime"}, {"text", "markdown"}}}},
      {"Timing", {{{"event", "dateTime"}, {"repeat", "Timing.repeat"}, {"code", "CodeableConcept"}}, true}},
      {"Timing.repeat",
       {{{"boundsDuration", "Quantity"},
         {"boundsRange", "Range"},
         {"boundsPeriod", "Period"},
         {"count", "positiveInt"},
         {"countMax", "positiveInt"},
         {"duration", "decimal"},
         {"durationMax", "decimal"},
         {"durationUnit", "code"},
         {"frequency", "positiveInt"},
         {"frequencyMax", "positiveInt"},
         {"period", "decimal"},
         {"periodMax", "decimal"},
         {"periodUnit", "code"},
         {"dayOfWeek", "code"},
         {"timeOfDay", "time"},
         {"when", "code"},
         {"offset", "unsignedInt"}}}},
      {"Meta",
       {{{"versionId", "id"},
         {"lastUpdated", "instant"},
         {"source", "uri"},
         {"profile", "canonical"},
         {"security", "Coding"},
         {"tag", "Coding"}}}},
      {"Narrative", {{{"status", "code"}, {"div", "xhtml"}}}},
      {"HumanName",
       {{{"use", "code"},
         {"text", "string"},
         {"family", "string"},
         {"given", "string"},
         {"prefix", "string"},
         {"suffix", "string"},
         {"period", "Period"}}}},
      {"ContactPoint",
       {{{"system", "code"}, {"value", "string"}, {"use", "code"}, {"rank", "positiveInt"}, {"period", "Period"}}}},
      {"Address",
       {{{"use", "code"},
         {"type", "code"},
         {"text", "string"},
         {"line", "string"},
         {"city", "string"},
         {"district", "string"},
         {"state", "string"},
         {"postalCode", "string"},
         {"country", "string"},
         {"period", "Period"}}}},
      {"Attachment",
       {{{"contentType", "code"},
         {"language", "code"},
         {"data", "base64Binary"},
         {"url", "url"},
         {"size", "unsignedInt"},
         {"hash", "base64Binary"},
         {"title", "string"},
         {"creation", "dateTime"}}}},
      // Resources.
      {"Goal",
       {{{"identifier", "Identifier"},
         {"lifecycleStatus", "code"},
         {"achievementStatus", "CodeableConcept"},
         {"category", "CodeableConcept"},
         {"priority", "CodeableConcept"},
         {"description", "CodeableConcept"},
         {"subject", "Reference"},
         {"startDate", "date"},
         {"startCodeableConcept", "CodeableConcept"},
         {"target", "Goal.target"},
         {"statusDate", "date"},
         {"statusReason", "string"},
         {"expressedBy", "Reference"},
         {"addresses", "Reference"},
         {"note", "Annotation"},
         {"outcomeCode", "CodeableConcept"},
         {"outcomeReference", "Reference"}},
        false,
        true}},
      {"Goal.target",
       {{{"measure", "CodeableConcept"},
         {"detailQuantity", "Quantity"},
         {"detailRange", "Range"},
         {"detailCodeableConcept", "CodeableConcept"},
         {"detailString", "string"},
         {"detailBoolean", "boolean"},
         {"detailInteger", "integer"},
         {"detailRatio", "Ratio"},
         {"dueDate", "date"},
         {"dueDuration", "Quantity"}},
        true}},
      {"Observation",
       {With({{"identifier", "Identifier"},
              {"basedOn", "Reference"},
              {"partOf", "Reference"},
              {"status", "code"},
              {"category", "CodeableConcept"},
              {"code", "CodeableConcept"},
              {"subject", "Reference"},
              {"focus", "Reference"},
              {"encounter", "Reference"},
              {"effectiveDateTime", "dateTime"},
              {"effectivePeriod", "Period"},
              {"effectiveTiming", "Timing"},
              {"effectiveInstant", "instant"},
              {"issued", "instant"},
              {"performer", "Reference"},
              {"dataAbsentReason", "CodeableConcept"},
              {"interpretation", "CodeableConcept"},
              {"note", "Annotation"},
              {"bodySite", "CodeableConcept"},
              {"method", "CodeableConcept"},
              {"specimen", "Reference"},
              {"device", "Reference"},
              {"referenceRange", "Observation.referenceRange"},
              {"hasMember", "Reference"},
              {"derivedFrom", "Reference"},
              {"component", "Observation.component"}},
             ObservationValues()),
        false, true}},
      {"Observation.referenceRange",
       {{{"low", "Quantity"},
         {"high", "Quantity"},
         {"type", "CodeableConcept"},
         {"appliesTo", "CodeableConcept"},
         {"age", "Range"},
         {"text", "string"}},
        true}},
      {"Observation.component",
       {With({{"code", "CodeableConcept"},
              {"dataAbsentReason", "CodeableConcept"},
              {"interpretation", "CodeableConcept"},
              {"referenceRange", "Observation.referenceRange"}},
             ObservationValues()),
        true}},
      {"List",
       {{{"identifier", "Identifier"},
         {"status", "code"},
         {"mode", "code"},
         {"title", "string"},
         {"code", "CodeableConcept"},
         {"subject", "Reference"},
         {"encounter", "Reference"},
         {"date", "dateTime"},
         {"source", "Reference"},
         {"orderedBy", "CodeableConcept"},
         {"note", "Annotation"},
         {"entry", "List.entry"},
         {"emptyReason", "CodeableConcept"}},
        false,
        true}},
      {"List.entry",
       {{{"flag", "CodeableConcept"}, {"deleted", "boolean"}, {"date", "dateTime"}, {"item", "Reference"}}, true}},
      // What the mapping reads, or may find, contained.
      {"RelatedPerson",
       {{{"identifier", "Identifier"},
         {"active", "boolean"},
         {"patient", "Reference"},
         {"relationship", "CodeableConcept"},
         {"name", "HumanName"},
         {"telecom", "ContactPoint"},
         {"gender", "code"},
         {"birthDate", "date"},
         {"address", "Address"},
         {"photo", "Attachment"},
         {"period", "Period"},
         {"communication", "RelatedPerson.communication"}},
        false,
        true}},
      {"RelatedPerson.communication", {{{"language", "CodeableConcept"}, {"preferred", "boolean"}}, true}},
      {"Practitioner",
       {{{"identifier", "Identifier"},
         {"active", "boolean"},
         {"name", "HumanName"},
         {"telecom", "ContactPoint"},
         {"address", "Address"},
         {"gender", "code"},
         {"birthDate", "date"},
         {"photo", "Attachment"},
         {"qualification", "Practitioner.qualification"},
         {"communication", "CodeableConcept"}},
        false,
        true}},
      {"Practitioner.qualification",
       {{{"identifier", "Identifier"}, {"code", "CodeableConcept"}, {"period", "Period"}, {"issuer", "Reference"}},
        true}},
  };
  return *types;
}

// Elements every resource has (Resource, DomainResource).
const std::vector<Element>& ResourceElements() {
  static const auto* e = new std::vector<Element>{
      {"id", "id"},          {"meta", "Meta"},          {"implicitRules", "uri"},   {"language", "code"},
      {"text", "Narrative"}, {"contained", "Resource"}, {"extension", "Extension"}, {"modifierExtension", "Extension"}};
  return *e;
}

bool IsPrimitive(absl::string_view type) { return !type.empty() && absl::ascii_islower(type[0]); }

// JSON Pointer escaping of one reference token (RFC 6901).
std::string PointerToken(absl::string_view name) { return absl::StrReplaceAll(name, {{"~", "~0"}, {"/", "~1"}}); }

class Walker {
 public:
  explicit Walker(std::vector<UnknownElement>* out) : out_(out) {}

  // Checks the members of `o`, a value of `type`, at `path` / `pointer`.
  void Object(const Value& o, absl::string_view type, const std::string& path, const std::string& pointer) {
    if (!o.IsObject()) return;
    if (type == "Extension") return Extension(o, path, pointer);
    if (type == "Resource") return Contained(o, path, pointer);
    auto it = Types().find(type);
    if (it == Types().end()) return;
    const TypeInfo& info = it->second;
    for (auto m = o.MemberBegin(); m != o.MemberEnd(); ++m) {
      absl::string_view name(m->name.GetString(), m->name.GetStringLength());
      const std::string child_path = absl::StrCat(path, ".", name);
      const std::string child_pointer = absl::StrCat(pointer, "/", PointerToken(name));
      if (info.resource && name == "resourceType") continue;
      absl::string_view base = name;
      const bool primitive_extension = absl::ConsumePrefix(&base, "_");
      const Element* e = Find(info, base);
      if (e == nullptr || (primitive_extension && !IsPrimitive(e->type))) {
        out_->push_back({child_path, child_pointer});
      } else if (primitive_extension) {
        Each(m->value, "Element", child_path, child_pointer);
      } else if (!IsPrimitive(e->type)) {
        Each(m->value, e->type, child_path, child_pointer);
      }
    }
  }

 private:
  // A single value or each value of an array.
  void Each(const Value& v, absl::string_view type, const std::string& path, const std::string& pointer) {
    if (!v.IsArray()) return Object(v, type, path, pointer);
    for (rapidjson::SizeType i = 0; i < v.Size(); ++i) {
      Object(v[i], type, absl::StrCat(path, "[", i, "]"), absl::StrCat(pointer, "/", i));
    }
  }

  static const Element* Find(const TypeInfo& info, absl::string_view name) {
    static const Element kId{"id", "string"}, kExtension{"extension", "Extension"},
        kModifierExtension{"modifierExtension", "Extension"};
    for (const Element& e : info.elements) {
      if (e.name == name) return &e;
    }
    if (info.resource) {
      for (const Element& e : ResourceElements()) {
        if (e.name == name) return &e;
      }
      return nullptr;
    }
    if (name == "id") return &kId;
    if (name == "extension") return &kExtension;
    if (name == "modifierExtension" && info.backbone) return &kModifierExtension;
    return nullptr;
  }

  // url, value[x] (any type: not descended into) and nested extensions.
  void Extension(const Value& o, const std::string& path, const std::string& pointer) {
    for (auto m = o.MemberBegin(); m != o.MemberEnd(); ++m) {
      absl::string_view name(m->name.GetString(), m->name.GetStringLength());
      if (name == "extension") {
        Each(m->value, "Extension", absl::StrCat(path, ".extension"), absl::StrCat(pointer, "/extension"));
        continue;
      }
      absl::string_view typed = name;
      absl::ConsumePrefix(&typed, "_");
      const bool value = absl::ConsumePrefix(&typed, "value") && !typed.empty() && absl::ascii_isupper(typed[0]);
      if (name != "id" && name != "url" && !value) {
        out_->push_back({absl::StrCat(path, ".", name), absl::StrCat(pointer, "/", PointerToken(name))});
      }
    }
  }

  // A contained resource of a type with a table; others are not checked.
  void Contained(const Value& o, const std::string& path, const std::string& pointer) {
    const auto type = o.FindMember("resourceType");
    if (type == o.MemberEnd() || !type->value.IsString()) return;
    absl::string_view name(type->value.GetString(), type->value.GetStringLength());
    auto it = Types().find(name);
    if (it == Types().end() || !it->second.resource) return;
    Object(o, name, path, pointer);
  }

  std::vector<UnknownElement>* out_;
};

}  // namespace

std::vector<UnknownElement> UnknownElements(absl::string_view resource_type, const rapidjson::Value& resource) {
  std::vector<UnknownElement> out;
  auto it = Types().find(resource_type);
  if (it == Types().end() || !it->second.resource) return out;
  Walker(&out).Object(resource, resource_type, std::string(resource_type), "");
  return out;
}

void RemoveElements(const std::vector<UnknownElement>& unknown, rapidjson::Value& resource) {
  // Later ones first: an array index of an earlier one stays right.
  for (auto it = unknown.rbegin(); it != unknown.rend(); ++it) {
    rapidjson::Pointer(it->pointer.c_str(), it->pointer.size()).Erase(resource);
  }
}

}  // namespace wmty::fhir
