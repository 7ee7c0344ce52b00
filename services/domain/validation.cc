#include "domain/validation.h"

#include <set>
#include <vector>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "absl/time/civil_time.h"
#include "common/text.h"
#include "domain/names.h"

namespace wmty::domain {
namespace {

template <class EnumIsValid>
void CheckEnum(int value, EnumIsValid is_valid, absl::string_view field, bool required, FieldViolations* v) {
  if (!is_valid(value)) {
    v->Add(std::string(field), absl::StrCat("unknown enum value ", value));
  } else if (required && value == 0) {
    v->Add(std::string(field), "required");
  }
}

template <class Repeated, class EnumIsValid>
void CheckEnumList(const Repeated& values, EnumIsValid is_valid, absl::string_view field, int max, FieldViolations* v) {
  if (values.size() > max) v->Add(std::string(field), absl::StrCat("at most ", max, " entries"));
  std::set<int> seen;
  for (int i = 0; i < values.size(); ++i) {
    std::string f = absl::StrCat(field, "[", i, "]");
    if (!is_valid(values[i]) || values[i] == 0) {
      v->Add(f, absl::StrCat("unknown enum value ", values[i]));
    } else if (!seen.insert(values[i]).second) {
      v->Add(f, "duplicate");
    }
  }
}

void CheckShort(absl::string_view value, absl::string_view field, bool required, FieldViolations* v) {
  CheckText(value, field, required, kMaxShortTextBytes, v);
}

void CheckOptionalId(absl::string_view value, absl::string_view field, FieldViolations* v) {
  if (!value.empty() && !IsValidId(value)) v->Add(std::string(field), "must be 1-64 characters of A-Z a-z 0-9 - .");
}

// [first day, last day] a FHIR date covers, as YYYYMMDD numbers.
std::pair<int, int> DateRange(absl::string_view date) {
  int y = 0, m = 0, d = 0;
  (void)absl::SimpleAtoi(date.substr(0, 4), &y);
  if (date.size() >= 7) (void)absl::SimpleAtoi(date.substr(5, 2), &m);
  if (date.size() == 10) (void)absl::SimpleAtoi(date.substr(8, 2), &d);
  int lo_m = m ? m : 1, hi_m = m ? m : 12;
  int lo_d = d ? d : 1, hi_d = d ? d : 31;
  return {y * 10000 + lo_m * 100 + lo_d, y * 10000 + hi_m * 100 + hi_d};
}

void CheckTimestamp(const google::protobuf::Timestamp& t, absl::string_view field, absl::Time now, FieldViolations* v) {
  if (t.seconds() < -62135596800 || t.seconds() > 253402300799 || t.nanos() < 0 || t.nanos() > 999999999) {
    v->Add(std::string(field), "not a valid timestamp");
    return;
  }
  if (absl::FromUnixSeconds(t.seconds()) > now + absl::Minutes(5)) v->Add(std::string(field), "is in the future");
}

}  // namespace

std::string Field(absl::string_view prefix, absl::string_view name) {
  return prefix.empty() ? std::string(name) : absl::StrCat(prefix, ".", name);
}

void CheckText(absl::string_view value, absl::string_view field, bool required, size_t max_bytes, FieldViolations* v) {
  if (value.size() > max_bytes) {
    v->Add(std::string(field), absl::StrCat("longer than ", max_bytes, " bytes"));
  } else if (!IsValidUtf8(value)) {
    v->Add(std::string(field), "not valid UTF-8");
  } else if (HasControlCharacters(value)) {
    v->Add(std::string(field), "contains control characters");
  } else if (required && IsBlank(value)) {
    v->Add(std::string(field), value.empty() ? "required" : "must not be blank");
  }
}

void CheckRequestId(absl::string_view request_id, absl::string_view field, FieldViolations* v) {
  if (request_id.size() > kMaxRequestIdBytes) {
    v->Add(std::string(field), absl::StrCat("longer than ", kMaxRequestIdBytes, " bytes"));
  } else if (!IsValidUtf8(request_id) || HasControlCharacters(request_id)) {
    v->Add(std::string(field), "must be printable text");
  }
}

bool IsValidFhirDate(absl::string_view date) {
  if (date.size() != 4 && date.size() != 7 && date.size() != 10) return false;
  for (size_t i = 0; i < date.size(); ++i) {
    if (i == 4 || i == 7) {
      if (date[i] != '-') return false;
    } else if (date[i] < '0' || date[i] > '9') {
      return false;
    }
  }
  int y = 0, m = 0, d = 0;
  (void)absl::SimpleAtoi(date.substr(0, 4), &y);
  if (y < 1) return false;
  if (date.size() >= 7) {
    (void)absl::SimpleAtoi(date.substr(5, 2), &m);
    if (m < 1 || m > 12) return false;
  }
  if (date.size() == 10) {
    (void)absl::SimpleAtoi(date.substr(8, 2), &d);
    static constexpr int kDays[] = {31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
    bool leap = (y % 4 == 0 && y % 100 != 0) || y % 400 == 0;
    int max_day = kDays[m - 1] + (m == 2 && leap ? 1 : 0);
    if (d < 1 || d > max_day) return false;
  }
  return true;
}

void CheckPatientRef(const v1::PatientRef& ref, absl::string_view patient_id, absl::string_view prefix,
                     FieldViolations* v) {
  if (!ref.id().empty() && ref.id() != patient_id) {
    v->Add(Field(prefix, "id"), "must be empty or equal to the patient in the resource name");
  }
  CheckShort(ref.identifier_system(), Field(prefix, "identifier_system"), false, v);
  CheckShort(ref.identifier_value(), Field(prefix, "identifier_value"), false, v);
  if (ref.identifier_system().empty() != ref.identifier_value().empty()) {
    v->Add(Field(prefix, "identifier_value"), "identifier_system and identifier_value go together");
  }
}

void CheckRecorder(const v1::Recorder& r, bool has, absl::string_view prefix, FieldViolations* v) {
  if (!has || r.practitioner_id().empty()) {
    v->Add(Field(prefix, "practitioner_id"),
           "required: who records this (set by the server from the token when authentication is on)");
  } else {
    CheckOptionalId(r.practitioner_id(), Field(prefix, "practitioner_id"), v);
  }
  CheckShort(r.display_name(), Field(prefix, "display_name"), false, v);
  CheckShort(r.role(), Field(prefix, "role"), false, v);
}

void CheckOnBehalfOf(const v1::Recorder& r, absl::string_view prefix, FieldViolations* v) {
  if (r.practitioner_id().empty()) {
    v->Add(Field(prefix, "practitioner_id"), "required: for whom it is recorded (or leave on_behalf_of out)");
  } else {
    CheckOptionalId(r.practitioner_id(), Field(prefix, "practitioner_id"), v);
  }
  CheckShort(r.display_name(), Field(prefix, "display_name"), false, v);
  CheckShort(r.role(), Field(prefix, "role"), false, v);
}

void CheckSpeaker(const v1::Speaker& s, absl::string_view prefix, FieldViolations* v) {
  using K = v1::Speaker;
  const std::string kind = Field(prefix, "kind");
  if (!K::Kind_IsValid(s.kind())) {
    v->Add(kind, absl::StrCat("unknown enum value ", s.kind()));
    return;
  }
  const bool has_details = !s.name().empty() || !s.relationship().empty() || !s.practitioner_id().empty();
  if (s.kind() == K::KIND_UNSPECIFIED) {
    // Absent means "not stated" (SpeakerOrNotStated); details without a kind
    // are a mistake we cannot guess the meaning of.
    if (has_details) v->Add(kind, absl::StrCat("required with name, relationship or practitioner_id: ", kSpeakerKinds));
    return;
  }
  if (s.kind() == K::NOT_STATED) {
    if (has_details) v->Add(kind, "NOT_STATED takes no name, relationship or practitioner_id");
    return;
  }
  const bool related = s.kind() == K::RELATED_PERSON;
  const bool practitioner = s.kind() == K::PRACTITIONER;
  CheckShort(s.name(), Field(prefix, "name"), related, v);
  if (related) {
    CheckShort(s.relationship(), Field(prefix, "relationship"), true, v);
  } else if (!s.relationship().empty()) {
    v->Add(Field(prefix, "relationship"), "only for RELATED_PERSON");
  }
  const std::string practitioner_id = Field(prefix, "practitioner_id");
  if (practitioner && s.practitioner_id().empty()) {
    v->Add(practitioner_id, "required for PRACTITIONER: the practitioner's id in the EHR");
  } else if (practitioner) {
    CheckOptionalId(s.practitioner_id(), practitioner_id, v);
  } else if (!s.practitioner_id().empty()) {
    v->Add(practitioner_id, "only for PRACTITIONER");
  }
}

v1::Speaker SpeakerOrNotStated(const v1::Speaker& s) {
  if (s.kind() != v1::Speaker::KIND_UNSPECIFIED) return s;
  v1::Speaker not_stated;
  not_stated.set_kind(v1::Speaker::NOT_STATED);
  return not_stated;
}

void CheckProvenance(const v1::Provenance& p, bool has, absl::string_view prefix, absl::Time now, FieldViolations* v) {
  if (!has) {
    v->Add(std::string(prefix), "required without authentication: who recorded it (recorded_by)");
    return;
  }
  CheckRecorder(p.recorded_by(), p.has_recorded_by(), Field(prefix, "recorded_by"), v);
  if (p.has_on_behalf_of()) CheckOnBehalfOf(p.on_behalf_of(), Field(prefix, "on_behalf_of"), v);
  CheckSpeaker(p.said_by(), Field(prefix, "said_by"), v);
  if (p.has_said_time()) CheckTimestamp(p.said_time(), Field(prefix, "said_time"), now, v);
  CheckOptionalId(p.encounter_id(), Field(prefix, "encounter_id"), v);
  CheckEnum(p.channel(), v1::Channel_IsValid, Field(prefix, "channel"), false, v);
}

void CheckWhatMatters(const v1::WhatMatters& r, absl::string_view patient_id, absl::string_view prefix, absl::Time now,
                      FieldViolations* v) {
  CheckPatientRef(r.patient(), patient_id, Field(prefix, "patient"), v);
  CheckText(r.statement(), Field(prefix, "statement"), true, kMaxTextBytes, v);
  CheckShort(r.prompt(), Field(prefix, "prompt"), false, v);
  CheckEnumList(r.life_domains(), v1::LifeDomain_IsValid, Field(prefix, "life_domains"), kMaxTags, v);
  CheckEnumList(r.dignity_elements(), v1::DignityElement_IsValid, Field(prefix, "dignity_elements"), kMaxTags, v);
  CheckProvenance(r.provenance(), r.has_provenance(), Field(prefix, "provenance"), now, v);
}

namespace {
void CheckLinks(const google::protobuf::RepeatedPtrField<std::string>& links, absl::string_view patient_id,
                absl::string_view field, bool allow_any_kind, int max, FieldViolations* v) {
  if (links.size() > max) v->Add(std::string(field), absl::StrCat("at most ", max, " entries"));
  std::set<std::string> seen;
  for (int i = 0; i < links.size(); ++i) {
    std::string f = absl::StrCat(field, "[", i, "]");
    auto name = ParseName(links[i], f);
    if (!name.ok()) {
      v->Add(f, "must be a resource name");
      continue;
    }
    if (name->patient_id != patient_id) {
      v->Add(f, "must belong to the same patient");
    } else if (name->kind == storage::PRIORITIES || name->kind == storage::GOAL_SCORE ||
               name->kind == storage::PATIENT || (!allow_any_kind && name->kind != storage::WHAT_MATTERS)) {
      v->Add(f, allow_any_kind ? "must name a whatMatters, goal or preference" : "must name a whatMatters entry");
    } else if (!seen.insert(links[i]).second) {
      v->Add(f, "duplicate");
    }
  }
}
}  // namespace

void CheckGoal(const v1::Goal& r, absl::string_view patient_id, absl::string_view prefix, absl::Time now,
               FieldViolations* v) {
  CheckPatientRef(r.patient(), patient_id, Field(prefix, "patient"), v);
  CheckText(r.description(), Field(prefix, "description"), true, kMaxTextBytes, v);
  CheckEnum(r.lifecycle_status(), v1::GoalLifecycleStatus_IsValid, Field(prefix, "lifecycle_status"), true, v);
  CheckEnum(r.achievement_status(), v1::GoalAchievementStatus_IsValid, Field(prefix, "achievement_status"), false, v);
  CheckEnum(r.priority(), v1::GoalPriority_IsValid, Field(prefix, "priority"), false, v);
  CheckEnumList(r.categories(), v1::GoalCategory_IsValid, Field(prefix, "categories"), kMaxTags, v);
  bool start_ok = r.start_date().empty() || IsValidFhirDate(r.start_date());
  bool target_ok = r.target_date().empty() || IsValidFhirDate(r.target_date());
  if (!start_ok) v->Add(Field(prefix, "start_date"), "must be a date: YYYY, YYYY-MM or YYYY-MM-DD");
  if (!target_ok) v->Add(Field(prefix, "target_date"), "must be a date: YYYY, YYYY-MM or YYYY-MM-DD");
  if (start_ok && target_ok && !r.start_date().empty() && !r.target_date().empty() &&
      DateRange(r.target_date()).second < DateRange(r.start_date()).first) {
    v->Add(Field(prefix, "target_date"), "must not be before start_date");
  }
  if (r.notes_size() > kMaxNotes) v->Add(Field(prefix, "notes"), absl::StrCat("at most ", kMaxNotes, " notes"));
  for (int i = 0; i < r.notes_size(); ++i) {
    std::string f = absl::StrCat(Field(prefix, "notes"), "[", i, "]");
    CheckText(r.notes(i).text(), Field(f, "text"), true, kMaxTextBytes, v);
    CheckShort(r.notes(i).author(), Field(f, "author"), false, v);
    if (r.notes(i).has_time()) CheckTimestamp(r.notes(i).time(), Field(f, "time"), now, v);
  }
  CheckLinks(r.what_matters(), patient_id, Field(prefix, "what_matters"), false, kMaxLinks, v);
  CheckProvenance(r.provenance(), r.has_provenance(), Field(prefix, "provenance"), now, v);
}

void CheckPreference(const v1::Preference& r, absl::string_view patient_id, absl::string_view prefix, absl::Time now,
                     FieldViolations* v) {
  CheckPatientRef(r.patient(), patient_id, Field(prefix, "patient"), v);
  CheckEnum(r.kind(), v1::PreferenceKind_IsValid, Field(prefix, "kind"), true, v);
  const std::string code = Field(prefix, "value_code");
  CheckShort(r.value_code().system(), Field(code, "system"), false, v);
  CheckShort(r.value_code().code(), Field(code, "code"), r.has_value_code(), v);
  CheckShort(r.value_code().display(), Field(code, "display"), false, v);
  CheckText(r.value_text(), Field(prefix, "value_text"), false, kMaxTextBytes, v);

  using P = v1::Preference;
  const bool has_value = !r.value_text().empty() || r.has_value_code() || r.detail_case() != P::DETAIL_NOT_SET;
  if (!has_value) v->Add(Field(prefix, "value_text"), "a preference needs value_text, value_code or a detail");
  if (!r.value_text().empty() && IsBlank(r.value_text())) v->Add(Field(prefix, "value_text"), "must not be blank");

  // The structured detail, when given, must match the kind.
  struct Expect {
    P::DetailCase detail;
    v1::PreferenceKind kind;
    const char* field;
  };
  static constexpr Expect kExpect[] = {
      {P::kChannelRanking, v1::COMMUNICATION_CHANNELS, "channel_ranking"},
      {P::kContactWindow, v1::CONTACT_TIME_WINDOW, "contact_window"},
      {P::kLanguage, v1::LANGUAGE, "language"},
      {P::kFamilyInvolvement, v1::FAMILY_INVOLVEMENT, "family_involvement"},
  };
  for (const auto& e : kExpect) {
    if (r.detail_case() == e.detail && r.kind() != e.kind) {
      v->Add(Field(prefix, e.field), absl::StrCat("only for kind ", v1::PreferenceKind_Name(e.kind)));
    }
  }
  if (r.kind() == v1::COMMUNICATION_CHANNELS && r.detail_case() != P::kChannelRanking) {
    v->Add(Field(prefix, "channel_ranking"), "required for COMMUNICATION_CHANNELS");
  }
  if (r.kind() == v1::CONTACT_TIME_WINDOW && r.detail_case() != P::kContactWindow) {
    v->Add(Field(prefix, "contact_window"), "required for CONTACT_TIME_WINDOW");
  }
  if (r.kind() == v1::LANGUAGE && r.detail_case() != P::kLanguage) {
    v->Add(Field(prefix, "language"), "required for LANGUAGE");
  }
  if (r.has_channel_ranking()) {
    const auto& channels = r.channel_ranking().channels();
    std::string f = Field(prefix, "channel_ranking.channels");
    if (channels.empty()) v->Add(f, "at least one channel");
    CheckEnumList(channels, v1::ContactChannel_IsValid, f, 10, v);
  }
  if (r.has_contact_window()) {
    const auto& w = r.contact_window();
    std::string f = Field(prefix, "contact_window");
    std::set<int> days;
    for (int i = 0; i < w.days_of_week_size(); ++i) {
      if (w.days_of_week(i) < 1 || w.days_of_week(i) > 7 || !days.insert(w.days_of_week(i)).second) {
        v->Add(absl::StrCat(f, ".days_of_week[", i, "]"), "must be distinct ISO weekdays 1..7");
      }
    }
    // Digits only: SimpleAtoi alone would accept " 9", "+9" and "9 ".
    auto is_time = [](absl::string_view t) {
      auto digit = [](char c) { return c >= '0' && c <= '9'; };
      if (t.size() != 5 || t[2] != ':' || !digit(t[0]) || !digit(t[1]) || !digit(t[3]) || !digit(t[4])) {
        return false;
      }
      const int h = (t[0] - '0') * 10 + (t[1] - '0');
      const int m = (t[3] - '0') * 10 + (t[4] - '0');
      return h < 24 && m < 60;
    };
    if (!is_time(w.start_time())) v->Add(Field(f, "start_time"), "must be HH:MM");
    if (!is_time(w.end_time())) v->Add(Field(f, "end_time"), "must be HH:MM");
    CheckShort(w.time_zone(), Field(f, "time_zone"), false, v);
  }
  if (r.has_language()) {
    // Subtags of 1-8 letters or digits joined by single hyphens; the first
    // (the language) letters only.
    const std::string& tag = r.language().language();
    bool ok = !tag.empty() && tag.size() <= 35;
    std::vector<absl::string_view> subtags = absl::StrSplit(tag, '-');
    for (size_t i = 0; ok && i < subtags.size(); ++i) {
      ok = !subtags[i].empty() && subtags[i].size() <= 8;
      for (char c : subtags[i]) {
        const bool letter = (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z');
        ok = ok && (letter || (i > 0 && c >= '0' && c <= '9'));
      }
    }
    if (!ok) v->Add(Field(prefix, "language.language"), "must be a BCP-47 language tag, e.g. es or pt-BR");
  }
  if (r.has_family_involvement()) {
    std::string f = Field(prefix, "family_involvement");
    CheckShort(r.family_involvement().person_name(), Field(f, "person_name"), true, v);
    CheckShort(r.family_involvement().relationship(), Field(f, "relationship"), false, v);
    CheckText(r.family_involvement().how(), Field(f, "how"), false, kMaxTextBytes, v);
  }
  CheckProvenance(r.provenance(), r.has_provenance(), Field(prefix, "provenance"), now, v);
}

void CheckGoalScore(const v1::GoalScore& r, absl::string_view patient_id, absl::string_view prefix, absl::Time now,
                    FieldViolations* v) {
  CheckPatientRef(r.patient(), patient_id, Field(prefix, "patient"), v);
  const std::string goal_field = Field(prefix, "goal");
  if (r.goal().empty()) {
    v->Add(goal_field, "required: the name of the scored goal");
  } else {
    auto goal = ParseName(r.goal(), goal_field);
    if (!goal.ok() || goal->kind != storage::GOAL) {
      v->Add(goal_field, "must be patients/{patient}/goals/{id}");
    } else if (goal->patient_id != patient_id) {
      v->Add(goal_field, "must belong to the same patient");
    }
  }
  CheckEnum(r.score_type(), v1::GoalScoreType_IsValid, Field(prefix, "score_type"), true, v);
  if (r.score() < -2 || r.score() > 2) v->Add(Field(prefix, "score"), "must be -2..+2 (goal-attainment scaling)");
  if (r.has_effective_time()) CheckTimestamp(r.effective_time(), Field(prefix, "effective_time"), now, v);
  CheckText(r.note(), Field(prefix, "note"), false, kMaxTextBytes, v);
  CheckProvenance(r.provenance(), r.has_provenance(), Field(prefix, "provenance"), now, v);
}

void CheckPriorities(const v1::Priorities& r, absl::string_view patient_id, absl::string_view prefix, absl::Time now,
                     FieldViolations* v) {
  CheckPatientRef(r.patient(), patient_id, Field(prefix, "patient"), v);
  CheckLinks(r.items(), patient_id, Field(prefix, "items"), true, kMaxPriorityItems, v);
  CheckProvenance(r.provenance(), r.has_provenance(), Field(prefix, "provenance"), now, v);
}

namespace {

void CheckNameParts(const google::protobuf::RepeatedPtrField<std::string>& parts, absl::string_view field,
                    FieldViolations* v) {
  if (parts.size() > kMaxNameParts) v->Add(std::string(field), absl::StrCat("at most ", kMaxNameParts, " entries"));
  for (int i = 0; i < parts.size(); ++i) CheckShort(parts[i], absl::StrCat(field, "[", i, "]"), true, v);
}

void CheckHumanName(const v1::HumanName& n, absl::string_view field, FieldViolations* v) {
  static const auto* kUses =
      new std::set<std::string>{"", "usual", "official", "temp", "nickname", "anonymous", "old", "maiden"};
  if (!kUses->count(n.use())) {
    v->Add(Field(field, "use"), "must be usual, official, temp, nickname, anonymous, old or maiden");
  }
  CheckShort(n.text(), Field(field, "text"), false, v);
  CheckShort(n.family(), Field(field, "family"), false, v);
  CheckNameParts(n.given(), Field(field, "given"), v);
  CheckNameParts(n.prefix(), Field(field, "prefix"), v);
  CheckNameParts(n.suffix(), Field(field, "suffix"), v);
  if (IsBlank(n.text()) && IsBlank(n.family()) && n.given().empty()) {
    v->Add(std::string(field), "needs a family name, a given name or the text of the name");
  }
}

void CheckIdentifier(const v1::Identifier& id, absl::string_view field, FieldViolations* v) {
  CheckShort(id.system(), Field(field, "system"), true, v);
  CheckShort(id.value(), Field(field, "value"), true, v);
  CheckShort(id.type_code(), Field(field, "type_code"), false, v);
}

// The UTC day of `now` as YYYYMMDD.
int DayNumber(absl::Time now) {
  const absl::CivilDay day = absl::ToCivilDay(now, absl::UTCTimeZone());
  return static_cast<int>(day.year() * 10000 + day.month() * 100 + day.day());
}

}  // namespace

void CheckPatient(const v1::Patient& r, absl::string_view patient_id, absl::string_view prefix, absl::Time now,
                  FieldViolations* v) {
  CheckPatientRef(r.patient(), patient_id, Field(prefix, "patient"), v);
  const std::string names = Field(prefix, "names");
  if (r.names().empty()) v->Add(names, "required: at least one name (US Core)");
  if (r.names_size() > kMaxPatientNames) v->Add(names, absl::StrCat("at most ", kMaxPatientNames, " entries"));
  for (int i = 0; i < r.names_size(); ++i) CheckHumanName(r.names(i), absl::StrCat(names, "[", i, "]"), v);
  const std::string identifiers = Field(prefix, "identifiers");
  if (r.identifiers().empty()) v->Add(identifiers, "required: at least one identifier, e.g. the MRN (US Core)");
  if (r.identifiers_size() > kMaxPatientIdentifiers) {
    v->Add(identifiers, absl::StrCat("at most ", kMaxPatientIdentifiers, " entries"));
  }
  for (int i = 0; i < r.identifiers_size(); ++i) {
    CheckIdentifier(r.identifiers(i), absl::StrCat(identifiers, "[", i, "]"), v);
  }
  const std::string birth_date = Field(prefix, "birth_date");
  if (!r.birth_date().empty()) {
    if (!IsValidFhirDate(r.birth_date())) {
      v->Add(birth_date, "must be a FHIR date: YYYY, YYYY-MM or YYYY-MM-DD");
    } else if (DateRange(r.birth_date()).first > DayNumber(now)) {
      v->Add(birth_date, "is in the future");
    }
  }
  CheckEnum(r.gender(), v1::AdministrativeGender_IsValid, Field(prefix, "gender"), false, v);
  const std::string provenance = Field(prefix, "provenance");
  if (!r.has_provenance()) {
    v->Add(provenance, "required: who records this (provenance.recorded_by)");
  } else {
    CheckRecorder(r.provenance().recorded_by(), r.provenance().has_recorded_by(), Field(provenance, "recorded_by"), v);
    CheckEnum(r.provenance().channel(), v1::Channel_IsValid, Field(provenance, "channel"), false, v);
  }
}

}  // namespace wmty::domain
