// The FHIR Patient mapping (see patient_mapping.h for the rules). Patient's
// R4 elements are in the one element table, elements.cc.
#include "fhir/patient_mapping.h"

#include <algorithm>
#include <set>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "common/status.h"
#include "fhir/elements.h"
#include "fhir/mapping_json.h"

namespace wmty::fhir {
namespace {

using json::Member;
using json::Str;
using json::StringMember;
using rapidjson::Value;
using Allocator = rapidjson::Document::AllocatorType;

constexpr absl::string_view kIdentifierTypeSystem = "http://terminology.hl7.org/CodeSystem/v2-0203";

// The JSON form an element must have (FHIR JSON of its type). Kept elements
// are checked this far (so wmty never serves back what is not FHIR JSON);
// their contents below that are not.
enum class Shape {
  kString,  // a primitive given as a JSON string (not empty)
  kBool,
  kInteger,
  kObject,    // one complex value (or a primitive's _ sibling)
  kArray,     // a list of complex values: a non-empty array of objects
  kStrings,   // a list of primitive strings: a non-empty array of non-empty strings
  kSiblings,  // the _ sibling of such a list: a non-empty array of objects or nulls
};

// Never kept: the server owns them.
constexpr absl::string_view kHeaders[] = {"resourceType", "id", "_id", "meta", "text"};

constexpr struct {
  absl::string_view code;
  v1::AdministrativeGender value;
} kGenders[] = {
    {"male", v1::MALE}, {"female", v1::FEMALE}, {"other", v1::OTHER_GENDER}, {"unknown", v1::UNKNOWN_GENDER}};

bool IsHeader(absl::string_view name) {
  return std::find(std::begin(kHeaders), std::end(kHeaders), name) != std::end(kHeaders);
}

// The JSON form of an element of its R4 type and cardinality.
Shape ShapeOf(const ElementInfo& e) {
  if (e.sibling) return e.many ? Shape::kSiblings : Shape::kObject;
  if (!e.primitive) return e.many ? Shape::kArray : Shape::kObject;
  if (e.many) return Shape::kStrings;
  if (e.type == "boolean") return Shape::kBool;
  if (e.type == "integer") return Shape::kInteger;
  return Shape::kString;
}

absl::string_view NameOf(const Value::ConstMemberIterator& it) {
  return absl::string_view(it->name.GetString(), it->name.GetStringLength());
}

// What is wrong with `v` as `shape` ("" when nothing).
absl::string_view ShapeError(const Value& v, Shape shape) {
  auto all = [&](auto ok) { return std::all_of(v.Begin(), v.End(), ok); };
  switch (shape) {
    case Shape::kString:
      return v.IsString() && v.GetStringLength() > 0 ? "" : "must be a non-empty string";
    case Shape::kBool:
      return v.IsBool() ? "" : "must be true or false";
    case Shape::kInteger:
      return v.IsInt64() ? "" : "must be an integer";
    case Shape::kObject:
      return v.IsObject() ? "" : "must be an object";
    case Shape::kArray:
      return v.IsArray() && !v.Empty() && all([](const Value& x) { return x.IsObject(); })
                 ? ""
                 : "must be a non-empty array of objects";
    case Shape::kStrings:
      return v.IsArray() && !v.Empty() && all([](const Value& x) { return x.IsString() && x.GetStringLength() > 0; })
                 ? ""
                 : "must be a non-empty array of non-empty strings";
    case Shape::kSiblings:
      return v.IsArray() && !v.Empty() && all([](const Value& x) { return x.IsObject() || x.IsNull(); })
                 ? ""
                 : "must be a non-empty array of objects or nulls";
  }
  return "";
}

// Refuses members of `o` (a value of R4 type `type`) that R4 does not
// define, or whose JSON form is not their type's, naming their paths.
void CheckElements(const Value& o, absl::string_view type, absl::string_view path, FieldViolations* v) {
  for (auto it = o.MemberBegin(); it != o.MemberEnd(); ++it) {
    const absl::string_view name = NameOf(it);
    const std::optional<ElementInfo> e = ElementOf(type, name);
    if (!e) {
      v->Add(absl::StrCat(path, ".", name.substr(0, 64)),
             "not an element of R4 Patient: remove it, or send it as an extension");
    } else if (absl::string_view error = ShapeError(it->value, ShapeOf(*e)); !error.empty()) {
      v->Add(absl::StrCat(path, ".", name), std::string(error));
    }
  }
}

// Checks the elements of a Patient and, inside the ones wmty interprets
// (name, identifier), theirs.
void CheckPatientElements(const Value& resource, FieldViolations* v) {
  for (absl::string_view refused : {"modifierExtension", "implicitRules"}) {
    if (Member(resource, refused) != nullptr) {
      v->Add(absl::StrCat("Patient.", refused),
             "not supported: it would change the meaning of the resource in a way this server cannot keep");
    }
  }
  const int before = v->proto().field_violations_size();
  CheckElements(resource, "Patient", "Patient", v);
  if (v->proto().field_violations_size() != before) return;  // the lists below are not lists
  if (const Value* names = Member(resource, "name"); names != nullptr) {
    for (rapidjson::SizeType i = 0; i < names->Size(); ++i) {
      CheckElements((*names)[i], "HumanName", absl::StrCat("Patient.name[", i, "]"), v);
    }
  }
  if (const Value* ids = Member(resource, "identifier"); ids != nullptr) {
    for (rapidjson::SizeType i = 0; i < ids->Size(); ++i) {
      const std::string path = absl::StrCat("Patient.identifier[", i, "]");
      CheckElements((*ids)[i], "Identifier", path, v);
      const Value* type = Member((*ids)[i], "type");
      if (type != nullptr && type->IsObject()) CheckElements(*type, "CodeableConcept", path + ".type", v);
    }
  }
}

// The strings of `a` (a FHIR list of strings; anything else: none).
void StringsOf(const Value* a, google::protobuf::RepeatedPtrField<std::string>* out) {
  if (a == nullptr || !a->IsArray()) return;
  for (const Value& x : a->GetArray()) {
    if (x.IsString()) out->Add(std::string(json::StringOf(x)));
  }
}

std::string StringElement(const Value& o, absl::string_view name) {
  return std::string(StringMember(o, name).value_or(""));
}

v1::HumanName NameFrom(const Value& n) {
  v1::HumanName out;
  out.set_use(StringElement(n, "use"));
  out.set_text(StringElement(n, "text"));
  out.set_family(StringElement(n, "family"));
  StringsOf(Member(n, "given"), out.mutable_given());
  StringsOf(Member(n, "prefix"), out.mutable_prefix());
  StringsOf(Member(n, "suffix"), out.mutable_suffix());
  return out;
}

// The v2-0203 code of Identifier.type ("" when it has none).
std::string TypeCodeOf(const Value* type) {
  const Value* codings = type == nullptr ? nullptr : Member(*type, "coding");
  if (codings == nullptr || !codings->IsArray()) return "";
  for (const Value& c : codings->GetArray()) {
    if (StringMember(c, "system").value_or("") == kIdentifierTypeSystem) {
      return std::string(StringMember(c, "code").value_or(""));
    }
  }
  return "";
}

v1::Identifier IdentifierFrom(const Value& id) {
  v1::Identifier out;
  out.set_system(StringElement(id, "system"));
  out.set_value(StringElement(id, "value"));
  out.set_type_code(TypeCodeOf(Member(id, "type")));
  return out;
}

// Maps the interpreted elements of `resource` (whose elements were checked)
// into `out`; an unknown gender code is a violation.
void Interpret(const Value& resource, v1::Patient* out, FieldViolations* v) {
  if (const Value* names = Member(resource, "name"); names != nullptr && names->IsArray()) {
    for (const Value& n : names->GetArray()) *out->add_names() = NameFrom(n);
  }
  if (const Value* ids = Member(resource, "identifier"); ids != nullptr && ids->IsArray()) {
    for (const Value& id : ids->GetArray()) *out->add_identifiers() = IdentifierFrom(id);
  }
  out->set_birth_date(StringElement(resource, "birthDate"));
  const std::string gender = StringElement(resource, "gender");
  if (!gender.empty()) {
    auto row = std::find_if(std::begin(kGenders), std::end(kGenders), [&](const auto& g) { return g.code == gender; });
    if (row == std::end(kGenders)) {
      v->Add("Patient.gender", "must be male, female, other or unknown (administrative-gender)");
    } else {
      out->set_gender(row->value);
    }
  }
}

// ---- generation from the model

Value StringArray(const google::protobuf::RepeatedPtrField<std::string>& items, Allocator& a) {
  Value out(rapidjson::kArrayType);
  for (const std::string& s : items) out.PushBack(Str(s, a), a);
  return out;
}

Value GenerateName(const v1::HumanName& n, Allocator& a) {
  Value out(rapidjson::kObjectType);
  if (!n.use().empty()) out.AddMember("use", Str(n.use(), a), a);
  if (!n.text().empty()) out.AddMember("text", Str(n.text(), a), a);
  if (!n.family().empty()) out.AddMember("family", Str(n.family(), a), a);
  if (!n.given().empty()) out.AddMember("given", StringArray(n.given(), a), a);
  if (!n.prefix().empty()) out.AddMember("prefix", StringArray(n.prefix(), a), a);
  if (!n.suffix().empty()) out.AddMember("suffix", StringArray(n.suffix(), a), a);
  return out;
}

Value GenerateIdentifier(const v1::Identifier& id, Allocator& a) {
  Value out(rapidjson::kObjectType);
  if (!id.type_code().empty()) {
    out.AddMember("type", json::Concept(json::Coding(kIdentifierTypeSystem, id.type_code(), "", a), a), a);
  }
  out.AddMember("system", Str(id.system(), a), a);
  out.AddMember("value", Str(id.value(), a), a);
  return out;
}

template <class Message>
bool SameList(const google::protobuf::RepeatedPtrField<Message>& x,
              const google::protobuf::RepeatedPtrField<Message>& y) {
  if (x.size() != y.size()) return false;
  for (int i = 0; i < x.size(); ++i) {
    if (x[i].SerializeAsString() != y[i].SerializeAsString()) return false;
  }
  return true;
}

// The interpreted elements as `p` holds them: each the kept original when it
// still maps to the model, else generated. Members of `body`.
void InterpretedElements(const v1::Patient& p, const Value* kept, Value* body, Allocator& a) {
  v1::Patient as_kept;
  if (kept != nullptr) {
    FieldViolations ignored;  // it was checked when it came in
    Interpret(*kept, &as_kept, &ignored);
  }
  auto keep = [&](absl::string_view name) {
    if (const Value* m = Member(*kept, name); m != nullptr) json::Set(*body, name, Value(*m, a), a);
  };
  // A list element: the kept original when it maps to the same list, else
  // generated item by item.
  auto list = [&](absl::string_view name, const auto& as_kept_items, const auto& items, auto generate) {
    if (kept != nullptr && SameList(as_kept_items, items)) {
      keep(name);
    } else if (!items.empty()) {
      Value values(rapidjson::kArrayType);
      for (const auto& item : items) values.PushBack(generate(item, a), a);
      json::Set(*body, name, std::move(values), a);
    }
  };
  list("identifier", as_kept.identifiers(), p.identifiers(), GenerateIdentifier);
  list("name", as_kept.names(), p.names(), GenerateName);
  if (kept != nullptr && as_kept.gender() == p.gender()) {
    keep("gender");
    keep("_gender");
  } else if (p.gender() != v1::ADMINISTRATIVE_GENDER_UNSPECIFIED) {
    auto row =
        std::find_if(std::begin(kGenders), std::end(kGenders), [&](const auto& g) { return g.value == p.gender(); });
    if (row != std::end(kGenders)) json::Set(*body, "gender", Str(row->code, a), a);
  }
  if (kept != nullptr && as_kept.birth_date() == p.birth_date()) {
    keep("birthDate");
    keep("_birthDate");
  } else if (!p.birth_date().empty()) {
    json::Set(*body, "birthDate", Str(p.birth_date(), a), a);
  }
}

std::string DisplayName(const v1::HumanName& n) {
  if (!n.text().empty()) return n.text();
  std::vector<std::string> parts(n.given().begin(), n.given().end());
  if (!n.family().empty()) parts.push_back(n.family());
  return absl::StrJoin(parts, " ");
}

Value Narrative(const v1::Patient& p, Allocator& a) {
  std::string div = "<div xmlns=\"http://www.w3.org/1999/xhtml\">";
  if (!p.names().empty()) absl::StrAppend(&div, "<p><b>Name</b>: ", json::XhtmlEscape(DisplayName(p.names(0))), "</p>");
  if (!p.birth_date().empty()) {
    absl::StrAppend(&div, "<p><b>Date of birth</b>: ", json::XhtmlEscape(p.birth_date()), "</p>");
  }
  for (const auto& id : p.identifiers()) {
    const std::string label = id.type_code() == "MR" ? "MRN" : id.type_code().empty() ? "Identifier" : id.type_code();
    absl::StrAppend(&div, "<p><b>", json::XhtmlEscape(label), "</b>: ", json::XhtmlEscape(id.value()), "</p>");
  }
  div += "</div>";
  Value text(rapidjson::kObjectType);
  text.AddMember("status", "generated", a);
  text.AddMember("div", Str(div, a), a);
  return text;
}

}  // namespace

absl::StatusOr<IncomingPatient> PatientFromFhir(const rapidjson::Value& resource) {
  if (!resource.IsObject()) return InvalidField("resourceType", "the body must be a JSON object (a FHIR resource)");
  if (StringMember(resource, "resourceType").value_or("") != "Patient") {
    return InvalidField("resourceType", "must be Patient");
  }
  FieldViolations v;
  CheckPatientElements(resource, &v);
  if (!v.empty()) return v.ToStatus();
  IncomingPatient in;
  Interpret(resource, &in.patient, &v);
  if (!v.empty()) return v.ToStatus();
  rapidjson::Document kept;
  kept.SetObject();
  for (auto it = resource.MemberBegin(); it != resource.MemberEnd(); ++it) {
    if (!IsHeader(NameOf(it))) {
      kept.AddMember(Value(it->name, kept.GetAllocator()), Value(it->value, kept.GetAllocator()), kept.GetAllocator());
    }
  }
  if (!kept.ObjectEmpty()) in.extra_json = json::Serialize(kept);
  return in;
}

absl::Status PatientToFhir(const storage::Record& record, rapidjson::Value* out, Allocator& a) {
  v1::Patient p;
  if (!p.ParseFromString(record.resource())) return absl::DataLossError("stored resource does not parse");
  rapidjson::Document kept_doc;
  absl::StatusOr<const Value*> stored = json::ParseStoredElements(record.fhir_extra_json(), &kept_doc);
  if (!stored.ok()) return stored.status();
  const Value* kept = *stored;
  Value body(rapidjson::kObjectType);
  if (kept != nullptr) {
    for (auto it = kept->MemberBegin(); it != kept->MemberEnd(); ++it)
      body.AddMember(Value(it->name, a), Value(it->value, a), a);
  }
  for (absl::string_view interpreted : {"identifier", "name", "gender", "_gender", "birthDate", "_birthDate"}) {
    json::Remove(body, interpreted);
  }
  InterpretedElements(p, kept, &body, a);

  Value meta(rapidjson::kObjectType);
  meta.AddMember("versionId", Str(absl::StrCat(record.version()), a), a);
  meta.AddMember("lastUpdated", Str(json::FormatInstant(record.update_time_micros()), a), a);
  Value profiles(rapidjson::kArrayType);
  profiles.PushBack(Str(kUsCorePatientProfile, a), a);
  meta.AddMember("profile", profiles, a);

  out->SetObject();
  out->AddMember("resourceType", "Patient", a);
  out->AddMember("id", Str(record.patient_id(), a), a);
  out->AddMember("meta", meta, a);
  // In R4 order, each primitive's "_" sibling after it.
  for (const absl::string_view name : ElementOrder("Patient")) {
    if (name == "id" || name == "meta") continue;
    if (name == "text") {
      out->AddMember("text", Narrative(p, a), a);
      continue;
    }
    for (const std::string& member : {std::string(name), absl::StrCat("_", name)}) {
      if (Value* m = json::MutableMember(body, member); m != nullptr) out->AddMember(Str(member, a), *m, a);
    }
  }
  return absl::OkStatus();
}

std::string PatientFhirPath(absl::string_view field) {
  // "patient.names[0].family" -> "Patient.name[0].family"
  static constexpr std::pair<absl::string_view, absl::string_view> kRenames[] = {
      {"patient.names", "Patient.name"},
      {"patient.identifiers", "Patient.identifier"},
      {"patient.birth_date", "Patient.birthDate"},
      {"patient.gender", "Patient.gender"},
      {"patient.name", "Patient.id"},
      {"patient.provenance", "Patient.meta"},
  };
  for (const auto& [from, to] : kRenames) {
    if (absl::StartsWith(field, from)) {
      std::string out = absl::StrCat(to, field.substr(from.size()));
      if (absl::EndsWith(out, ".type_code")) out.replace(out.size() - 10, 10, ".type");
      return out;
    }
  }
  return std::string(field);
}

}  // namespace wmty::fhir
