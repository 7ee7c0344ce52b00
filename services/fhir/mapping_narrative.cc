// The generated narrative (text) of every mapped resource: what it says and
// who said it (mapping.cc section 2, "Narrative").
#include "absl/strings/ascii.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_replace.h"
#include "fhir/mapping_codes.h"
#include "fhir/mapping_internal.h"

namespace wmty::fhir::internal {

namespace {

std::string Para(absl::string_view label, absl::string_view value) {
  return absl::StrCat("<p><b>", json::XhtmlEscape(label), "</b>: ", json::XhtmlEscape(value), "</p>");
}

// Who said it, for people: "not stated" when the source did not say.
std::string SpeakerText(const v1::Speaker& s) {
  switch (s.kind()) {
    case v1::Speaker::PATIENT:
      return "the patient";
    case v1::Speaker::RELATED_PERSON:
      return absl::StrCat(s.name(), " (", s.relationship(), ")");
    case v1::Speaker::PRACTITIONER:
      return s.name().empty() ? absl::StrCat("practitioner ", s.practitioner_id())
                              : absl::StrCat(s.name(), " (practitioner ", s.practitioner_id(), ")");
    default:
      return "not stated";
  }
}

}  // namespace

Value Narrative(const std::string& xhtml_body, json::Allocator& a) {
  Value text(rapidjson::kObjectType);
  text.AddMember("status", "generated", a);
  text.AddMember("div", Str(absl::StrCat("<div xmlns=\"http://www.w3.org/1999/xhtml\">", xhtml_body, "</div>"), a), a);
  return text;
}

std::string NarrativeOf(storage::Kind kind, const AnyResource& r, const Value& resource, bool retracted) {
  std::string out;
  if (retracted) out += "<p><b>Entered in error</b></p>";
  switch (kind) {
    case storage::GOAL: {
      const auto& g = std::get<v1::Goal>(r);
      out += Para("Goal", g.description());
      if (auto status = StringMember(resource, "lifecycleStatus")) out += Para("Status", *status);
      if (!g.target_date().empty()) out += Para("Target date", g.target_date());
      break;
    }
    case storage::WHAT_MATTERS: {
      const auto& wm = std::get<v1::WhatMatters>(r);
      if (!wm.prompt().empty()) out += Para("Question", wm.prompt());
      out += Para("What matters", wm.statement());
      break;
    }
    case storage::PREFERENCE: {
      const auto& p = std::get<v1::Preference>(r);
      std::string value = p.value_text();
      if (value.empty()) value = p.value_code().display().empty() ? p.value_code().code() : p.value_code().display();
      std::string kind_name = absl::AsciiStrToLower(v1::PreferenceKind_Name(p.kind()));
      absl::StrReplaceAll({{"_", " "}}, &kind_name);
      out += Para(absl::StrCat("Preference (", kind_name, ")"), value.empty() ? "see details" : value);
      break;
    }
    case storage::GOAL_SCORE: {
      const auto& s = std::get<v1::GoalScore>(r);
      const codes::Code* row = codes::ByValue(codes::kGasAnswers, s.score());
      out += Para("Goal attainment score", absl::StrCat(s.score() > 0 ? "+" : "", s.score(), row != nullptr ? " " : "",
                                                        row != nullptr ? absl::StrCat("(", row->display, ")") : ""));
      if (!s.note().empty()) out += Para("Note", s.note());
      break;
    }
    case storage::PRIORITIES: {
      out += absl::StrCat("<p><b>", kListTitle, "</b>, most important first</p>");
      const Value* entries = Member(resource, "entry");
      if (entries != nullptr && entries->IsArray() && !entries->Empty()) {
        out += "<ol>";
        for (const Value& e : entries->GetArray()) {
          const Value* item = Member(e, "item");
          out += absl::StrCat("<li>", json::XhtmlEscape(item ? StringMember(*item, "reference").value_or("") : ""),
                              "</li>");
        }
        out += "</ol>";
      }
      break;
    }
    default:
      break;
  }
  out += Para(kind == storage::GOAL_SCORE ? "Scored by" : "Said by", SpeakerText(ProvenanceOfResource(r).said_by()));
  return out;
}

}  // namespace wmty::fhir::internal
