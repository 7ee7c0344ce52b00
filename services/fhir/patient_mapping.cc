// The FHIR Patient mapping (see patient_mapping.h for the rules).
#include "fhir/patient_mapping.h"

#include <algorithm>
#include <set>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "common/status.h"
#include "fhir/mapping_json.h"

namespace wmty::fhir {
namespace {

using json::Member;
using json::Str;
using json::StringMember;
using rapidjson::Value;
using Allocator = rapidjson::Document::AllocatorType;

constexpr absl::string_view kIdentifierTypeSystem = "http://terminology.hl7.org/CodeSystem/v2-0203";

// R4 Patient's elements in definition order (with the _ siblings of its
// primitives): the output order, and everything an incoming Patient may hold.
constexpr absl::string_view kPatientElements[] = {"id",
                                                  "_id",
                                                  "meta",
                                                  "implicitRules",
                                                  "_implicitRules",
                                                  "language",
                                                  "_language",
                                                  "text",
                                                  "contained",
                                                  "extension",
                                                  "modifierExtension",
                                                  "identifier",
                                                  "active",
                                                  "_active",
                                                  "name",
                                                  "telecom",
                                                  "gender",
                                                  "_gender",
                                                  "birthDate",
                                                  "_birthDate",
                                                  "deceasedBoolean",
                                                  "_deceasedBoolean",
                                                  "deceasedDateTime",
                                                  "_deceasedDateTime",
                                                  "address",
                                                  "maritalStatus",
                                                  "multipleBirthBoolean",
                                                  "_multipleBirthBoolean",
                                                  "multipleBirthInteger",
                                                  "_multipleBirthInteger",
                                                  "photo",
                                                  "contact",
                                                  "communication",
                                                  "generalPractitioner",
                                                  "managingOrganization",
                                                  "link"};
constexpr absl::string_view kHumanNameElements[] = {"id",     "extension", "use",     "_use",    "text",
                                                    "_text",  "family",    "_family", "given",   "_given",
                                                    "prefix", "_prefix",   "suffix",  "_suffix", "period"};
constexpr absl::string_view kIdentifierElements[] = {"id",      "extension", "use",    "_use",   "type",    "system",
                                                     "_system", "value",     "_value", "period", "assigner"};
// Never kept: the server owns them.
constexpr absl::string_view kHeaders[] = {"resourceType", "id", "_id", "meta", "text"};

constexpr struct {
  absl::string_view code;
  v1::AdministrativeGender value;
} kGenders[] = {
    {"male", v1::MALE}, {"female", v1::FEMALE}, {"other", v1::OTHER_GENDER}, {"unknown", v1::UNKNOWN_GENDER}};

template <size_t N>
bool IsOneOf(absl::string_view name, const absl::string_view (&set)[N]) {
  return std::find(std::begin(set), std::end(set), name) != std::end(set);
}

absl::string_view NameOf(const Value::ConstMemberIterator& it) {
  return absl::string_view(it->name.GetString(), it->name.GetStringLength());
}

// Refuses members of `o` that `allowed` does not define, naming their paths.
template <size_t N>
void CheckElements(const Value& o, const absl::string_view (&allowed)[N], absl::string_view path, FieldViolations* v) {
  for (auto it = o.MemberBegin(); it != o.MemberEnd(); ++it) {
    const absl::string_view name = NameOf(it);
    if (!IsOneOf(name, allowed)) {
      v->Add(absl::StrCat(path, ".", name.substr(0, 64)),
             "not an element of R4 Patient: remove it, or send it as an extension");
    }
  }
}

// Appends the strings of array `a` (a FHIR list of strings) to `out`.
void StringsOf(const Value* a, absl::string_view path, google::protobuf::RepeatedPtrField<std::string>* out,
               FieldViolations* v) {
  if (a == nullptr) return;
  if (!a->IsArray()) return v->Add(std::string(path), "must be an array of strings");
  for (rapidjson::SizeType i = 0; i < a->Size(); ++i) {
    if (!(*a)[i].IsString()) {
      v->Add(absl::StrCat(path, "[", i, "]"), "must be a string");
    } else {
      out->Add(std::string(json::StringOf((*a)[i])));
    }
  }
}

// The string member `name`, refusing another JSON type.
std::string StringElement(const Value& o, absl::string_view name, absl::string_view path, FieldViolations* v) {
  const Value* m = Member(o, name);
  if (m == nullptr) return "";
  if (!m->IsString()) {
    v->Add(absl::StrCat(path, ".", name), "must be a string");
    return "";
  }
  return std::string(json::StringOf(*m));
}

v1::HumanName NameFrom(const Value& n, absl::string_view path, FieldViolations* v) {
  v1::HumanName out;
  if (!n.IsObject()) {
    v->Add(std::string(path), "must be a HumanName object");
    return out;
  }
  CheckElements(n, kHumanNameElements, path, v);
  out.set_use(StringElement(n, "use", path, v));
  out.set_text(StringElement(n, "text", path, v));
  out.set_family(StringElement(n, "family", path, v));
  StringsOf(Member(n, "given"), absl::StrCat(path, ".given"), out.mutable_given(), v);
  StringsOf(Member(n, "prefix"), absl::StrCat(path, ".prefix"), out.mutable_prefix(), v);
  StringsOf(Member(n, "suffix"), absl::StrCat(path, ".suffix"), out.mutable_suffix(), v);
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

v1::Identifier IdentifierFrom(const Value& id, absl::string_view path, FieldViolations* v) {
  v1::Identifier out;
  if (!id.IsObject()) {
    v->Add(std::string(path), "must be an Identifier object");
    return out;
  }
  CheckElements(id, kIdentifierElements, path, v);
  out.set_system(StringElement(id, "system", path, v));
  out.set_value(StringElement(id, "value", path, v));
  out.set_type_code(TypeCodeOf(Member(id, "type")));
  return out;
}

// Maps the interpreted elements of `resource` into `out`.
void Interpret(const Value& resource, v1::Patient* out, FieldViolations* v) {
  if (const Value* names = Member(resource, "name"); names != nullptr) {
    if (!names->IsArray()) {
      v->Add("Patient.name", "must be an array of HumanName");
    } else {
      for (rapidjson::SizeType i = 0; i < names->Size(); ++i) {
        *out->add_names() = NameFrom((*names)[i], absl::StrCat("Patient.name[", i, "]"), v);
      }
    }
  }
  if (const Value* ids = Member(resource, "identifier"); ids != nullptr) {
    if (!ids->IsArray()) {
      v->Add("Patient.identifier", "must be an array of Identifier");
    } else {
      for (rapidjson::SizeType i = 0; i < ids->Size(); ++i) {
        *out->add_identifiers() = IdentifierFrom((*ids)[i], absl::StrCat("Patient.identifier[", i, "]"), v);
      }
    }
  }
  out->set_birth_date(StringElement(resource, "birthDate", "Patient", v));
  const std::string gender = StringElement(resource, "gender", "Patient", v);
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
  if (kept != nullptr && SameList(as_kept.identifiers(), p.identifiers())) {
    keep("identifier");
  } else if (!p.identifiers().empty()) {
    Value ids(rapidjson::kArrayType);
    for (const auto& id : p.identifiers()) ids.PushBack(GenerateIdentifier(id, a), a);
    json::Set(*body, "identifier", std::move(ids), a);
  }
  if (kept != nullptr && SameList(as_kept.names(), p.names())) {
    keep("name");
  } else if (!p.names().empty()) {
    Value names(rapidjson::kArrayType);
    for (const auto& n : p.names()) names.PushBack(GenerateName(n, a), a);
    json::Set(*body, "name", std::move(names), a);
  }
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
  for (auto it = resource.MemberBegin(); it != resource.MemberEnd(); ++it) {
    const absl::string_view name = NameOf(it);
    if (name == "resourceType") continue;
    if (name == "modifierExtension" || name == "implicitRules") {
      v.Add(absl::StrCat("Patient.", name),
            "not supported: it would change the meaning of the resource in a way this server cannot keep");
    } else if (!IsOneOf(name, kPatientElements)) {
      v.Add(absl::StrCat("Patient.", name.substr(0, 64)),
            "not an element of R4 Patient: remove it, or send it as an extension");
    }
  }
  IncomingPatient in;
  Interpret(resource, &in.patient, &v);
  if (!v.empty()) return v.ToStatus();
  rapidjson::Document kept;
  kept.SetObject();
  for (auto it = resource.MemberBegin(); it != resource.MemberEnd(); ++it) {
    if (!IsOneOf(NameOf(it), kHeaders)) {
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
  const Value* kept = nullptr;
  if (!record.fhir_extra_json().empty()) {
    if (!json::Parse(record.fhir_extra_json(), &kept_doc).ok() || !kept_doc.IsObject()) {
      return absl::DataLossError("stored FHIR elements do not parse");
    }
    kept = &kept_doc;
  }
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
  for (absl::string_view name : kPatientElements) {
    if (name == "id" || name == "meta") continue;
    if (name == "text") {
      out->AddMember("text", Narrative(p, a), a);
      continue;
    }
    if (Value* m = json::MutableMember(body, name); m != nullptr) out->AddMember(Str(name, a), *m, a);
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
