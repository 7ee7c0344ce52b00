// FHIR -> model: Goal and List (mapping.cc section 2), and the dispatch of
// an incoming resource to its family's parser. The Observations are in
// mapping_parse_observation.cc.
#include <set>
#include <utility>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "domain/names.h"
#include "fhir/mapping_parser.h"

namespace wmty::fhir::internal {

namespace {

// What the model stores as a Goal's description: description.text, else (a
// goal coded only, as US Core allows) the first coding's display, else its
// code. The codings themselves are kept (section 3) and returned as they came.
std::optional<std::string> GoalDescription(const Value* description) {
  if (description == nullptr) return std::nullopt;
  if (auto text = StringMember(*description, "text")) return std::string(*text);
  for (const Value* c : Parser::Codings(description)) {
    if (auto display = StringMember(*c, "display"); display && !display->empty()) return std::string(*display);
  }
  for (const Value* c : Parser::Codings(description)) {
    if (auto code = StringMember(*c, "code"); code && !code->empty()) return std::string(*code);
  }
  return std::nullopt;
}

void ParseLifecycleStatus(Parser& p, v1::Goal* g) {
  auto status = StringMember(p.json(), "lifecycleStatus");
  if (!status) {
    p.Fail("lifecycleStatus",
           "required: a goal-status code (proposed, planned, accepted, active, on-hold, completed, cancelled or "
           "rejected)");
  } else if (*status == "entered-in-error") {
    p.Fail("lifecycleStatus", "entered-in-error is not set by update: retract the goal with DELETE");
  } else if (const codes::Code* row = codes::ByCode(codes::kGoalLifecycle, *status)) {
    g->set_lifecycle_status(static_cast<v1::GoalLifecycleStatus>(row->value));
  } else {
    p.Fail("lifecycleStatus", absl::StrCat("unknown goal-status code \"", *status, "\""));
  }
}

// The GoalCategory of one coding of category[i]; 0 for a coding of another
// system, nullopt (with a violation) for an unknown goal-category code.
std::optional<int> CategoryOf(Parser& p, const Value& coding, rapidjson::SizeType i) {
  if (Parser::Is(coding, codes::kLoinc, codes::kLoincPersonalHealthGoal)) return v1::PERSONAL_HEALTH_GOAL;
  if (StringMember(coding, "system").value_or("") != codes::kGoalCategory) return 0;
  absl::string_view code = StringMember(coding, "code").value_or("");
  if (const codes::Code* row = codes::ByCode(codes::kGoalCategoryCodes, code)) return row->value;
  p.Fail(absl::StrCat("category[", i, "]"), absl::StrCat("unknown goal-category code \"", code, "\""));
  return std::nullopt;
}

// category: each known category once, in order; other codings ignored.
void ParseCategories(Parser& p, v1::Goal* g) {
  const Value* categories = Member(p.json(), "category");
  if (categories == nullptr || !categories->IsArray()) return;
  std::set<int> seen;
  for (rapidjson::SizeType i = 0; i < categories->Size(); ++i) {
    for (const Value* c : Parser::Codings(&(*categories)[i])) {
      std::optional<int> value = CategoryOf(p, *c, i);
      if (value && *value != 0 && seen.insert(*value).second) g->add_categories(static_cast<v1::GoalCategory>(*value));
    }
  }
}

void ParseTargetDate(const Value& j, v1::Goal* g) {
  const Value* targets = Member(j, "target");
  if (targets == nullptr || !targets->IsArray()) return;
  for (const Value& t : targets->GetArray()) {
    if (auto due = StringMember(t, "dueDate")) {
      g->set_target_date(std::string(*due));
      return;
    }
  }
}

void ParseExpressedBy(Parser& p, v1::Goal* g) {
  const Value* by = Member(p.json(), "expressedBy");
  if (by == nullptr) return;
  if (!p.Speaker(*by, "expressedBy", g->mutable_provenance()->mutable_said_by()) &&
      !p.NamesTypeOf(*by, {"PractitionerRole"})) {
    p.Fail("expressedBy",
           "must be the patient (Patient/<id>), a related person (a contained RelatedPerson or "
           "RelatedPerson/<id>), a practitioner (Practitioner/<id>) or a PractitionerRole; or leave expressedBy "
           "out when the source did not say who expressed the goal");
  }
}

// addresses "Observation/<id>" -> what_matters; other addresses are kept.
void ParseAddresses(Parser& p, const std::string& pid, v1::Goal* g) {
  const Value* addresses = Member(p.json(), "addresses");
  if (addresses == nullptr || !addresses->IsArray()) return;
  for (rapidjson::SizeType i = 0; i < addresses->Size(); ++i) {
    auto ref = StringMember((*addresses)[i], "reference");
    if (!ref || !absl::StartsWith(*ref, "Observation/")) continue;
    auto id = RefId(*ref, "Observation");
    if (!id) {
      p.Fail(absl::StrCat("addresses[", i, "].reference"), "must be Observation/<id>");
      continue;
    }
    g->add_what_matters(domain::FormatName(storage::WHAT_MATTERS, pid, *id));
  }
}

// A note's author: authorString, else authorReference's display, else the
// id after the last '/' of its reference.
std::string NoteAuthor(const Value& n) {
  if (auto author = StringMember(n, "authorString")) return std::string(*author);
  const Value* ref = Member(n, "authorReference");
  if (ref == nullptr) return "";
  if (auto display = StringMember(*ref, "display"); display && !display->empty()) return std::string(*display);
  if (auto r = StringMember(*ref, "reference")) return std::string(r->substr(r->rfind('/') + 1));
  return "";
}

void ParseNotes(Parser& p, v1::Goal* g) {
  const Value* notes = Member(p.json(), "note");
  if (notes == nullptr || !notes->IsArray()) return;
  for (rapidjson::SizeType i = 0; i < notes->Size(); ++i) {
    const Value& n = (*notes)[i];
    const std::string path = absl::StrCat("note[", i, "]");
    v1::Note* note = g->add_notes();
    if (auto t = StringMember(n, "text")) {
      note->set_text(std::string(*t));
    } else {
      p.Fail(absl::StrCat(path, ".text"), "required: the note's text (leave out a note without text)");
    }
    note->set_author(NoteAuthor(n));
    if (Member(n, "time") != nullptr) {
      google::protobuf::Timestamp t;
      if (p.DateTime(n, "time", absl::StrCat(path, ".time"), &t)) *note->mutable_time() = t;
    }
  }
}

}  // namespace

void ParseGoal(Parser& p, Parsed* out) {
  v1::Goal g;
  const Value& j = p.json();
  const std::string pid = p.Subject(g.mutable_patient());
  ParseLifecycleStatus(p, &g);
  if (auto v = p.Bound("achievementStatus", codes::kGoalAchievement, codes::kGoalAchievementCodes)) {
    g.set_achievement_status(static_cast<v1::GoalAchievementStatus>(*v));
  }
  if (auto v = p.Bound("priority", codes::kGoalPriority, codes::kGoalPriorityCodes)) {
    g.set_priority(static_cast<v1::GoalPriority>(*v));
  }
  ParseCategories(p, &g);
  if (auto description = GoalDescription(Member(j, "description"))) {
    g.set_description(*description);
  } else {
    p.Fail("description.text",
           "required: the goal in the patient's own words (description.text), or a coded goal "
           "(description.coding with a display or code)");
  }
  if (auto start = StringMember(j, "startDate")) g.set_start_date(std::string(*start));
  ParseTargetDate(j, &g);
  ParseExpressedBy(p, &g);
  ParseAddresses(p, pid, &g);
  ParseNotes(p, &g);
  out->kind = storage::GOAL;
  out->patient_id = pid;
  out->resource = std::move(g);
}

void ParseList(Parser& p, Parsed* out) {
  const Value& j = p.json();
  v1::Priorities pr;
  const std::string pid = p.Subject(pr.mutable_patient());
  if (!Parser::HasCoding(Member(j, "code"), codes::kLoinc, codes::kLoincPrioritiesList)) {
    p.Fail("code", "required: LOINC 81340-2 (goals and preferences in order of priority)");
  }
  if (auto status = StringMember(j, "status")) {
    if (*status == "entered-in-error") {
      p.Fail("status", "a patient's priorities cannot be entered in error: send an empty list instead");
    } else if (*status != "current") {
      p.Fail("status", "must be current");
    }
  } else {
    p.Fail("status", "required: current");
  }
  if (const Value* source = Member(j, "source")) {
    // R4 List.source: Practitioner | PractitionerRole | Patient | Device.
    const bool related = p.NamesTypeOf(*source, {"RelatedPerson"}) && StringMember(*source, "reference");
    if (related || (!p.Speaker(*source, "source", pr.mutable_provenance()->mutable_said_by()) &&
                    !p.NamesTypeOf(*source, {"PractitionerRole", "Device"}))) {
      p.Fail("source",
             "must be the patient (Patient/<id>), a practitioner (Practitioner/<id>), a PractitionerRole or a "
             "Device (FHIR R4 allows no RelatedPerson here); leave source out when the source did not say who "
             "ranked the list");
    }
  }
  pr.mutable_provenance()->set_encounter_id(EncounterIdOf(j));
  if (const Value* entries = Member(j, "entry"); entries != nullptr && entries->IsArray()) {
    for (rapidjson::SizeType i = 0; i < entries->Size(); ++i) {
      const Value* item = Member((*entries)[i], "item");
      absl::string_view ref = item != nullptr ? StringMember(*item, "reference").value_or("") : "";
      if (RefId(ref, "Goal") || RefId(ref, "Observation")) {
        out->item_refs.emplace_back(ref);
      } else {
        p.Fail(absl::StrCat("entry[", i, "].item"), "must reference Goal/<id> or Observation/<id>");
      }
    }
  }
  out->kind = storage::PRIORITIES;
  out->patient_id = pid;
  out->resource = std::move(pr);
}

// Maps the elements of a FHIR resource of `type` (already checked to be ours).
Parsed ParseResource(absl::string_view type, const Value& resource, FieldViolations* v) {
  Parser p(type, resource, v);
  Parsed out;
  if (type == "Goal") {
    ParseGoal(p, &out);
  } else if (type == "List") {
    ParseList(p, &out);
  } else {
    ParseObservation(p, &out);
  }
  return out;
}

}  // namespace wmty::fhir::internal
