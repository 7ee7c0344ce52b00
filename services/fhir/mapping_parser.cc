// Parser (mapping_parser.h): reading one incoming FHIR resource.
#include "fhir/mapping_parser.h"

#include <algorithm>
#include <utility>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"

namespace wmty::fhir::internal {

void Parser::Fail(absl::string_view path, std::string message) {
  v_->Add(absl::StrCat(type_, ".", path), std::move(message));
}

std::string Parser::Subject(v1::PatientRef* patient) {
  const Value* subject = Member(json_, "subject");
  auto ref = subject != nullptr ? StringMember(*subject, "reference") : std::nullopt;
  if (!ref) {
    Fail("subject", "required: a reference to the patient (Patient/<id>)");
    return "";
  }
  auto id = RefId(*ref, "Patient");
  if (!id) {
    Fail("subject.reference", "must be Patient/<id> (id: 1-64 characters of A-Z a-z 0-9 - .)");
    return "";
  }
  patient->set_id(*id);
  if (const Value* identifier = Member(*subject, "identifier")) {
    patient->set_identifier_system(std::string(StringMember(*identifier, "system").value_or("")));
    patient->set_identifier_value(std::string(StringMember(*identifier, "value").value_or("")));
  }
  patient_id_ = *id;
  return *id;
}

bool Parser::Speaker(const Value& ref, absl::string_view path, v1::Speaker* out) {
  auto r = StringMember(ref, "reference");
  if (!r) return false;
  if (absl::StartsWith(*r, "Practitioner/")) {
    auto id = RefId(*r, "Practitioner");
    if (!id) {
      Fail(path, "must be Practitioner/<id> (id: 1-64 characters of A-Z a-z 0-9 - .)");
      return true;
    }
    out->set_kind(v1::Speaker::PRACTITIONER);
    out->set_practitioner_id(*id);
    out->set_name(std::string(StringMember(ref, "display").value_or("")));
    return true;
  }
  if (absl::StartsWith(*r, "Patient/")) {
    auto id = RefId(*r, "Patient");
    if (!id || *id != patient_id_) {
      Fail(path, "a patient who said it must be the subject patient (Patient/<subject id>)");
      return true;
    }
    out->set_kind(v1::Speaker::PATIENT);
    return true;
  }
  if (absl::StartsWith(*r, "RelatedPerson/")) {
    out->set_kind(v1::Speaker::RELATED_PERSON);
    out->set_name(std::string(StringMember(ref, "display").value_or("")));
    return true;
  }
  if (absl::StartsWith(*r, "#")) {
    const Value* person = Contained(r->substr(1));
    if (person == nullptr) {
      Fail(path, absl::StrCat("no contained resource with id \"", r->substr(1), "\""));
      return true;
    }
    if (StringMember(*person, "resourceType").value_or("") != "RelatedPerson") return false;
    out->set_kind(v1::Speaker::RELATED_PERSON);
    out->set_name(PersonName(*person));
    out->set_relationship(Relationship(*person));
    return true;
  }
  return false;
}

bool Parser::NamesTypeOf(const Value& ref, std::initializer_list<absl::string_view> types) const {
  auto r = StringMember(ref, "reference");
  if (!r) return ref.IsObject();
  absl::string_view type;
  if (absl::StartsWith(*r, "#")) {
    const Value* contained = Contained(r->substr(1));
    if (contained == nullptr) return false;
    type = StringMember(*contained, "resourceType").value_or("");
  } else {
    absl::string_view path = *r;
    const size_t history = path.find("/_history/");
    if (history != absl::string_view::npos) path = path.substr(0, history);
    const size_t last = path.rfind('/');
    if (last == absl::string_view::npos) return false;
    path = path.substr(0, last);
    type = path.substr(path.rfind('/') + 1);
  }
  return std::find(types.begin(), types.end(), type) != types.end();
}

const Value* Parser::Contained(absl::string_view id) const {
  const Value* contained = Member(json_, "contained");
  if (contained == nullptr || !contained->IsArray()) return nullptr;
  for (const Value& r : contained->GetArray()) {
    if (StringMember(r, "id").value_or("") == id) return &r;
  }
  return nullptr;
}

std::string Parser::PersonName(const Value& person) {
  const Value* names = Member(person, "name");
  if (names == nullptr || !names->IsArray() || names->Empty()) return "";
  const Value& name = (*names)[0];
  if (auto text = StringMember(name, "text"); text && !text->empty()) return std::string(*text);
  std::vector<std::string> parts;
  if (const Value* given = Member(name, "given"); given != nullptr && given->IsArray()) {
    for (const Value& g : given->GetArray()) {
      if (g.IsString()) parts.emplace_back(StringOf(g));
    }
  }
  if (auto family = StringMember(name, "family")) parts.emplace_back(*family);
  return absl::StrJoin(parts, " ");
}

std::string Parser::Relationship(const Value& person) {
  const Value* rels = Member(person, "relationship");
  if (rels == nullptr || !rels->IsArray() || rels->Empty()) return "";
  const Value& rel = (*rels)[0];
  if (auto text = StringMember(rel, "text"); text && !text->empty()) return std::string(*text);
  const Value* codings = Member(rel, "coding");
  if (codings == nullptr || !codings->IsArray() || codings->Empty()) return "";
  const Value& c = (*codings)[0];
  if (auto display = StringMember(c, "display"); display && !display->empty()) return std::string(*display);
  return std::string(StringMember(c, "code").value_or(""));
}

bool Parser::DateTime(const Value& o, absl::string_view member, absl::string_view path,
                      google::protobuf::Timestamp* out) {
  const Value* v = Member(o, member);
  if (v == nullptr) return false;
  if (!v->IsString() || !json::ParseDateTime(StringOf(*v), out)) {
    Fail(path, "must be a FHIR dateTime, e.g. 2025-02-15T15:15:00Z");
    return false;
  }
  return true;
}

std::vector<const Value*> Parser::Codings(const Value* cc) {
  std::vector<const Value*> out;
  if (cc == nullptr) return out;
  const Value* codings = Member(*cc, "coding");
  if (codings == nullptr || !codings->IsArray()) return out;
  for (const Value& c : codings->GetArray()) {
    if (c.IsObject()) out.push_back(&c);
  }
  return out;
}

bool Parser::Is(const Value& coding, absl::string_view system, absl::string_view code) {
  return StringMember(coding, "system").value_or("") == system && StringMember(coding, "code").value_or("") == code;
}

bool Parser::HasCoding(const Value* cc, absl::string_view system, absl::string_view code) {
  for (const Value* c : Codings(cc)) {
    if (Is(*c, system, code)) return true;
  }
  return false;
}

std::optional<int> Parser::Bound(absl::string_view member, absl::string_view system,
                                 std::span<const codes::Code> table) {
  for (const Value* c : Codings(Member(json_, member))) {
    if (StringMember(*c, "system").value_or("") != system) continue;
    absl::string_view code = StringMember(*c, "code").value_or("");
    if (const codes::Code* row = codes::ByCode(table, code)) return row->value;
    Fail(member, absl::StrCat("unknown code \"", code, "\" of ", system));
    return std::nullopt;
  }
  return std::nullopt;
}

std::string EncounterIdOf(const Value& resource) {
  const Value* e = Member(resource, "encounter");
  if (e == nullptr) return "";
  return RefId(StringMember(*e, "reference").value_or(""), "Encounter").value_or("");
}

}  // namespace wmty::fhir::internal
