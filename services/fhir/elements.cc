// The FHIR R4 element tables (elements.h): one table of the element names,
// types and cardinalities of every resource, backbone element and datatype
// the FHIR face reads, and what is derived from it: unknown elements, R4
// element order, and what an element is (ElementOf).
#include "fhir/elements.h"

#include <algorithm>
#include <initializer_list>
#include <map>
#include <utility>

#include <rapidjson/pointer.h>

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_replace.h"
#include "absl/strings/strip.h"

namespace wmty::fhir {
namespace {

using rapidjson::Value;

// An element of a type, the type of its value and whether it repeats (R4
// cardinality ..*). FHIR's convention: a primitive type starts lower-case
// (string, code, dateTime), a complex one upper-case; backbone elements are
// named "<Resource>.<element>".
struct Element {
  absl::string_view name;
  absl::string_view type;
  bool many = false;
};
constexpr bool kMany = true;

enum class Role {
  kDatatype,
  // A BackboneElement (or Timing): modifierExtension allowed.
  kBackbone,
  // A resource: the Resource and DomainResource elements are allowed; also
  // checked when found contained.
  kResource,
  // A resource the FHIR face reads only on its own (Patient): not checked
  // when found contained in another resource, as the mapping does not read
  // it there.
  kStandaloneResource,
};

struct TypeInfo {
  std::vector<Element> elements;
  Role role = Role::kDatatype;
};

bool IsResource(const TypeInfo& info) { return info.role == Role::kResource || info.role == Role::kStandaloneResource; }

// The value[x] types of Observation and Observation.component (R4).
std::vector<Element> ObservationValues() {
  return {{"valueQuantity", "Quantity"}, {"valueCodeableConcept", "CodeableConcept"},
          {"valueString", "string"},     {"valueBoolean", "boolean"},
          {"valueInteger", "integer"},   {"valueRange", "Range"},
          {"valueRatio", "Ratio"},       {"valueSampledData", "SampledData"},
          {"valueTime", "time"},         {"valueDateTime", "dateTime"},
          {"valuePeriod", "Period"}};
}

std::vector<Element> Concat(std::initializer_list<std::vector<Element>> parts) {
  std::vector<Element> out;
  for (const std::vector<Element>& part : parts) out.insert(out.end(), part.begin(), part.end());
  return out;
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
      {"CodeableConcept", {{{"coding", "Coding", kMany}, {"text", "string"}}}},
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
      {"Timing",
       {{{"event", "dateTime", kMany}, {"repeat", "Timing.repeat"}, {"code", "CodeableConcept"}}, Role::kBackbone}},
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
         {"dayOfWeek", "code", kMany},
         {"timeOfDay", "time", kMany},
         {"when", "code", kMany},
         {"offset", "unsignedInt"}}}},
      {"Meta",
       {{{"versionId", "id"},
         {"lastUpdated", "instant"},
         {"source", "uri"},
         {"profile", "canonical", kMany},
         {"security", "Coding", kMany},
         {"tag", "Coding", kMany}}}},
      {"Narrative", {{{"status", "code"}, {"div", "xhtml"}}}},
      {"HumanName",
       {{{"use", "code"},
         {"text", "string"},
         {"family", "string"},
         {"given", "string", kMany},
         {"prefix", "string", kMany},
         {"suffix", "string", kMany},
         {"period", "Period"}}}},
      {"ContactPoint",
       {{{"system", "code"}, {"value", "string"}, {"use", "code"}, {"rank", "positiveInt"}, {"period", "Period"}}}},
      {"Address",
       {{{"use", "code"},
         {"type", "code"},
         {"text", "string"},
         {"line", "string", kMany},
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
       {{{"identifier", "Identifier", kMany},
         {"lifecycleStatus", "code"},
         {"achievementStatus", "CodeableConcept"},
         {"category", "CodeableConcept", kMany},
         {"priority", "CodeableConcept"},
         {"description", "CodeableConcept"},
         {"subject", "Reference"},
         {"startDate", "date"},
         {"startCodeableConcept", "CodeableConcept"},
         {"target", "Goal.target", kMany},
         {"statusDate", "date"},
         {"statusReason", "string"},
         {"expressedBy", "Reference"},
         {"addresses", "Reference", kMany},
         {"note", "Annotation", kMany},
         {"outcomeCode", "CodeableConcept", kMany},
         {"outcomeReference", "Reference", kMany}},
        Role::kResource}},
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
        Role::kBackbone}},
      {"Observation",
       {Concat({{{"identifier", "Identifier", kMany},
                 {"basedOn", "Reference", kMany},
                 {"partOf", "Reference", kMany},
                 {"status", "code"},
                 {"category", "CodeableConcept", kMany},
                 {"code", "CodeableConcept"},
                 {"subject", "Reference"},
                 {"focus", "Reference", kMany},
                 {"encounter", "Reference"},
                 {"effectiveDateTime", "dateTime"},
                 {"effectivePeriod", "Period"},
                 {"effectiveTiming", "Timing"},
                 {"effectiveInstant", "instant"},
                 {"issued", "instant"},
                 {"performer", "Reference", kMany}},
                ObservationValues(),
                {{"dataAbsentReason", "CodeableConcept"},
                 {"interpretation", "CodeableConcept", kMany},
                 {"note", "Annotation", kMany},
                 {"bodySite", "CodeableConcept"},
                 {"method", "CodeableConcept"},
                 {"specimen", "Reference"},
                 {"device", "Reference"},
                 {"referenceRange", "Observation.referenceRange", kMany},
                 {"hasMember", "Reference", kMany},
                 {"derivedFrom", "Reference", kMany},
                 {"component", "Observation.component", kMany}}}),
        Role::kResource}},
      {"Observation.referenceRange",
       {{{"low", "Quantity"},
         {"high", "Quantity"},
         {"type", "CodeableConcept"},
         {"appliesTo", "CodeableConcept", kMany},
         {"age", "Range"},
         {"text", "string"}},
        Role::kBackbone}},
      {"Observation.component",
       {Concat({{{"code", "CodeableConcept"}},
                ObservationValues(),
                {{"dataAbsentReason", "CodeableConcept"},
                 {"interpretation", "CodeableConcept", kMany},
                 {"referenceRange", "Observation.referenceRange", kMany}}}),
        Role::kBackbone}},
      {"List",
       {{{"identifier", "Identifier", kMany},
         {"status", "code"},
         {"mode", "code"},
         {"title", "string"},
         {"code", "CodeableConcept"},
         {"subject", "Reference"},
         {"encounter", "Reference"},
         {"date", "dateTime"},
         {"source", "Reference"},
         {"orderedBy", "CodeableConcept"},
         {"note", "Annotation", kMany},
         {"entry", "List.entry", kMany},
         {"emptyReason", "CodeableConcept"}},
        Role::kResource}},
      {"List.entry",
       {{{"flag", "CodeableConcept"}, {"deleted", "boolean"}, {"date", "dateTime"}, {"item", "Reference"}},
        Role::kBackbone}},
      // Patient (patient_mapping.cc) checks only its own elements and those
      // of the names and identifiers it reads.
      {"Patient",
       {{{"identifier", "Identifier", kMany},
         {"active", "boolean"},
         {"name", "HumanName", kMany},
         {"telecom", "ContactPoint", kMany},
         {"gender", "code"},
         {"birthDate", "date"},
         {"deceasedBoolean", "boolean"},
         {"deceasedDateTime", "dateTime"},
         {"address", "Address", kMany},
         {"maritalStatus", "CodeableConcept"},
         {"multipleBirthBoolean", "boolean"},
         {"multipleBirthInteger", "integer"},
         {"photo", "Attachment", kMany},
         {"contact", "Patient.contact", kMany},
         {"communication", "Patient.communication", kMany},
         {"generalPractitioner", "Reference", kMany},
         {"managingOrganization", "Reference"},
         {"link", "Patient.link", kMany}},
        Role::kStandaloneResource}},
      // What the mapping reads, or may find, contained.
      {"RelatedPerson",
       {{{"identifier", "Identifier", kMany},
         {"active", "boolean"},
         {"patient", "Reference"},
         {"relationship", "CodeableConcept", kMany},
         {"name", "HumanName", kMany},
         {"telecom", "ContactPoint", kMany},
         {"gender", "code"},
         {"birthDate", "date"},
         {"address", "Address", kMany},
         {"photo", "Attachment", kMany},
         {"period", "Period"},
         {"communication", "RelatedPerson.communication", kMany}},
        Role::kResource}},
      {"RelatedPerson.communication", {{{"language", "CodeableConcept"}, {"preferred", "boolean"}}, Role::kBackbone}},
      {"Practitioner",
       {{{"identifier", "Identifier", kMany},
         {"active", "boolean"},
         {"name", "HumanName", kMany},
         {"telecom", "ContactPoint", kMany},
         {"address", "Address", kMany},
         {"gender", "code"},
         {"birthDate", "date"},
         {"photo", "Attachment", kMany},
         {"qualification", "Practitioner.qualification", kMany},
         {"communication", "CodeableConcept", kMany}},
        Role::kResource}},
      {"Practitioner.qualification",
       {{{"identifier", "Identifier", kMany},
         {"code", "CodeableConcept"},
         {"period", "Period"},
         {"issuer", "Reference"}},
        Role::kBackbone}},
  };
  return *types;
}

// Elements every resource has (Resource, DomainResource).
const std::vector<Element>& ResourceElements() {
  static const auto* e = new std::vector<Element>{{"id", "id"},
                                                  {"meta", "Meta"},
                                                  {"implicitRules", "uri"},
                                                  {"language", "code"},
                                                  {"text", "Narrative"},
                                                  {"contained", "Resource", kMany},
                                                  {"extension", "Extension", kMany},
                                                  {"modifierExtension", "Extension", kMany}};
  return *e;
}

bool IsPrimitive(absl::string_view type) { return !type.empty() && absl::ascii_islower(type[0]); }

// The element `name` (no "_") of a type, or nullptr.
const Element* Find(const TypeInfo& info, absl::string_view name) {
  static const Element kId{"id", "string"}, kExtension{"extension", "Extension", kMany},
      kModifierExtension{"modifierExtension", "Extension", kMany};
  for (const Element& e : info.elements) {
    if (e.name == name) return &e;
  }
  if (IsResource(info)) {
    for (const Element& e : ResourceElements()) {
      if (e.name == name) return &e;
    }
    return nullptr;
  }
  if (name == "id") return &kId;
  if (name == "extension") return &kExtension;
  if (name == "modifierExtension" && info.role == Role::kBackbone) return &kModifierExtension;
  return nullptr;
}

// What member `member` of a value of `info` is; nullopt when R4 does not
// define it. "_x" is the sibling of a primitive x. Element.id is a FHIRPath
// String, not a FHIR primitive, so an element has no "_id" (a resource has).
std::optional<ElementInfo> MemberOf(const TypeInfo& info, absl::string_view member) {
  absl::string_view base = member;
  const bool sibling = absl::ConsumePrefix(&base, "_");
  const Element* e = Find(info, base);
  if (e == nullptr) return std::nullopt;
  if (sibling && (!IsPrimitive(e->type) || (base == "id" && !IsResource(info)))) return std::nullopt;
  return ElementInfo{e->type, e->many, IsPrimitive(e->type), sibling};
}

const TypeInfo* TypeOf(absl::string_view type) {
  auto it = Types().find(type);
  return it == Types().end() ? nullptr : &it->second;
}

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
    const TypeInfo* info = TypeOf(type);
    if (info == nullptr) return;
    for (auto m = o.MemberBegin(); m != o.MemberEnd(); ++m) {
      absl::string_view name(m->name.GetString(), m->name.GetStringLength());
      const std::string child_path = absl::StrCat(path, ".", name);
      const std::string child_pointer = absl::StrCat(pointer, "/", PointerToken(name));
      if (IsResource(*info) && name == "resourceType") continue;
      const std::optional<ElementInfo> e = MemberOf(*info, name);
      if (!e) {
        out_->push_back({child_path, child_pointer});
      } else if (e->sibling) {
        Each(m->value, "Element", child_path, child_pointer);
      } else if (!e->primitive) {
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
    const TypeInfo* info = TypeOf(name);
    if (info == nullptr || info->role != Role::kResource) return;
    Object(o, name, path, pointer);
  }

  std::vector<UnknownElement>* out_;
};

}  // namespace

std::vector<UnknownElement> UnknownElements(absl::string_view resource_type, const rapidjson::Value& resource) {
  std::vector<UnknownElement> out;
  const TypeInfo* info = TypeOf(resource_type);
  if (info == nullptr || !IsResource(*info)) return out;
  Walker(&out).Object(resource, resource_type, std::string(resource_type), "");
  return out;
}

std::optional<ElementInfo> ElementOf(absl::string_view type, absl::string_view member) {
  const TypeInfo* info = TypeOf(type);
  if (info == nullptr) return std::nullopt;
  if (IsResource(*info) && member == "resourceType") return ElementInfo{"code", false, true, false};
  return MemberOf(*info, member);
}

const std::vector<absl::string_view>& ElementOrder(absl::string_view type) {
  static const auto* orders = [] {
    auto* out = new std::map<absl::string_view, std::vector<absl::string_view>>;
    for (const auto& [name, info] : Types()) {
      std::vector<absl::string_view>& order = (*out)[name];
      if (IsResource(info)) {
        order.push_back("resourceType");
        for (const Element& e : ResourceElements()) order.push_back(e.name);
      }
      for (const Element& e : info.elements) order.push_back(e.name);
    }
    return out;
  }();
  static const auto* none = new std::vector<absl::string_view>;
  auto it = orders->find(type);
  return it == orders->end() ? *none : it->second;
}

void SortElements(absl::string_view type, rapidjson::Value& resource, rapidjson::Document::AllocatorType& alloc) {
  const auto& order = ElementOrder(type);
  auto rank = [&](absl::string_view name) {
    const bool primitive_extension = absl::ConsumePrefix(&name, "_");
    auto it = std::find(order.begin(), order.end(), name);
    const size_t base = it == order.end() ? order.size() : static_cast<size_t>(it - order.begin());
    return base * 2 + (primitive_extension ? 1 : 0);
  };
  std::vector<std::pair<size_t, size_t>> ranked;  // (rank, original position)
  std::vector<Value> names, values;
  for (auto it = resource.MemberBegin(); it != resource.MemberEnd(); ++it) {
    ranked.emplace_back(rank(absl::string_view(it->name.GetString(), it->name.GetStringLength())), names.size());
    names.emplace_back(std::move(it->name));
    values.emplace_back(std::move(it->value));
  }
  std::stable_sort(ranked.begin(), ranked.end());
  resource.SetObject();
  for (const auto& [r, i] : ranked) resource.AddMember(names[i], values[i], alloc);
}

void RemoveElements(const std::vector<UnknownElement>& unknown, rapidjson::Value& resource) {
  // Later ones first: an array index of an earlier one stays right.
  for (auto it = unknown.rbegin(); it != unknown.rend(); ++it) {
    rapidjson::Pointer(it->pointer.c_str(), it->pointer.size()).Erase(resource);
  }
}

}  // namespace wmty::fhir
