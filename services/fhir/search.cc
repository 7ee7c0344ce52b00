#include "fhir/search.h"

#include <algorithm>
#include <climits>
#include <set>

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_replace.h"
#include "absl/strings/str_split.h"
#include "absl/time/civil_time.h"
#include "absl/time/time.h"
#include "common/text.h"
#include "domain/names.h"

namespace wmty::fhir {
namespace {

using rapidjson::Value;

#define WMTY_SP(id) "http://hl7.org/fhir/SearchParameter/" id

constexpr SearchParamDef kGoalParams[] = {
    {"patient", "reference", "subject", SearchTarget::kPatient, "", WMTY_SP("clinical-patient"),
     "The patient (Patient/<id> or <id>)."},
    {"subject", "reference", "subject", SearchTarget::kPatient, "", WMTY_SP("Goal-subject"),
     "Who the goal is for: always a Patient here."},
    {"lifecycle-status", "token", "lifecycleStatus", SearchTarget::kCode, "http://hl7.org/fhir/goal-status",
     WMTY_SP("Goal-lifecycle-status"),
     "proposed | planned | accepted | active | on-hold | completed | cancelled | "
     "rejected (entered-in-error goals are deleted and never match)."},
    {"achievement-status", "token", "achievementStatus", SearchTarget::kCodeableConcept, "",
     WMTY_SP("Goal-achievement-status"), "http://terminology.hl7.org/CodeSystem/goal-achievement codes."},
    {"category", "token", "category", SearchTarget::kCodeableConcept, "", WMTY_SP("Goal-category"),
     "e.g. http://loinc.org|87528-6 (personal health goal)."},
    {"target-date", "date", "target.dueDate", SearchTarget::kDate, "", WMTY_SP("Goal-target-date"),
     "Goal.target.dueDate; prefixes eq ne gt lt ge le sa eb."},
    {"identifier", "token", "identifier", SearchTarget::kIdentifier, "", WMTY_SP("clinical-identifier"),
     "system|value of Goal.identifier."},
    {"_id", "token", "id", SearchTarget::kId, "", WMTY_SP("Resource-id"), "Logical id."},
    {"_lastUpdated", "date", "meta.lastUpdated", SearchTarget::kLastUpdated, "", WMTY_SP("Resource-lastUpdated"),
     "When the current version was written."},
};

constexpr SearchParamDef kObservationParams[] = {
    {"patient", "reference", "subject", SearchTarget::kPatient, "", WMTY_SP("clinical-patient"),
     "The patient (Patient/<id> or <id>)."},
    {"subject", "reference", "subject", SearchTarget::kPatient, "", WMTY_SP("Observation-subject"),
     "Who the observation is about: always a Patient here."},
    {"code", "token", "code", SearchTarget::kCodeableConcept, "", WMTY_SP("clinical-code"),
     "Any coding of Observation.code, e.g. http://loinc.org|95541-9."},
    {"category", "token", "category", SearchTarget::kCodeableConcept, "", WMTY_SP("Observation-category"),
     "e.g. http://hl7.org/fhir/us/core/CodeSystem/us-core-category|care-experience-preference."},
    {"date", "date", "effective", SearchTarget::kEffective, "", WMTY_SP("clinical-date"),
     "Observation.effective[x]; prefixes eq ne gt lt ge le sa eb."},
    {"focus", "reference", "focus", SearchTarget::kReference, "", WMTY_SP("Observation-focus"),
     "What a goal-attainment score is about, e.g. Goal/<id>."},
    {"identifier", "token", "identifier", SearchTarget::kIdentifier, "", WMTY_SP("clinical-identifier"),
     "system|value of Observation.identifier."},
    {"_id", "token", "id", SearchTarget::kId, "", WMTY_SP("Resource-id"), "Logical id."},
    {"_lastUpdated", "date", "meta.lastUpdated", SearchTarget::kLastUpdated, "", WMTY_SP("Resource-lastUpdated"),
     "When the current version was written."},
};

constexpr SearchParamDef kListParams[] = {
    {"patient", "reference", "subject", SearchTarget::kPatient, "", WMTY_SP("clinical-patient"),
     "The patient whose priorities these are."},
    {"subject", "reference", "subject", SearchTarget::kPatient, "", WMTY_SP("List-subject"), "Always a Patient here."},
    {"code", "token", "code", SearchTarget::kCodeableConcept, "", WMTY_SP("List-code"),
     "e.g. http://loinc.org|81340-2 (priorities)."},
    {"_id", "token", "id", SearchTarget::kId, "", WMTY_SP("Resource-id"), "Logical id (the patient id)."},
    {"_lastUpdated", "date", "meta.lastUpdated", SearchTarget::kLastUpdated, "", WMTY_SP("Resource-lastUpdated"),
     "When the current version was written."},
};

// A Patient's id is its patient id: _id also confines the search to those
// patients (see ParseSearch), which is what patient/ scopes check.
constexpr SearchParamDef kPatientParams[] = {
    {"name", "string", "name", SearchTarget::kString, "", WMTY_SP("Patient-name"),
     "Any part of any name (family, given, prefix, suffix, text): starts with, case-insensitive, also on each word."},
    {"family", "string", "name.family", SearchTarget::kString, "", WMTY_SP("individual-family"),
     "The family name: starts with, case-insensitive."},
    {"given", "string", "name.given", SearchTarget::kString, "", WMTY_SP("individual-given"),
     "A given name: starts with, case-insensitive."},
    {"birthdate", "date", "birthDate", SearchTarget::kDate, "", WMTY_SP("individual-birthdate"),
     "Patient.birthDate; 1950-03-14 matches that day, 1950 any day of 1950; prefixes eq ne gt lt ge le sa eb."},
    {"gender", "token", "gender", SearchTarget::kCode, "http://hl7.org/fhir/administrative-gender",
     WMTY_SP("individual-gender"), "male | female | other | unknown."},
    {"identifier", "token", "identifier", SearchTarget::kIdentifier, "", WMTY_SP("Patient-identifier"),
     "system|value of Patient.identifier (e.g. the MRN), or value alone."},
    {"_id", "token", "id", SearchTarget::kId, "", WMTY_SP("Resource-id"), "Logical id (the EHR's patient id)."},
    {"_lastUpdated", "date", "meta.lastUpdated", SearchTarget::kLastUpdated, "", WMTY_SP("Resource-lastUpdated"),
     "When the current version was written."},
};

constexpr SearchParamDef kProvenanceParams[] = {
    {"target", "reference", "target", SearchTarget::kReference, "", WMTY_SP("Provenance-target"),
     "Goal/<id>, Observation/<id>, List/<patient id> or Patient/<patient id>, optionally /_history/<n> (required)."},
};

#undef WMTY_SP

// Splits on `sep` not preceded by a backslash; pieces keep their escapes.
std::vector<std::string> SplitUnescaped(absl::string_view s, char sep) {
  std::vector<std::string> out(1);
  for (size_t i = 0; i < s.size(); ++i) {
    if (s[i] == '\\' && i + 1 < s.size()) {
      out.back().push_back(s[i]);
      out.back().push_back(s[++i]);
    } else if (s[i] == sep) {
      out.emplace_back();
    } else {
      out.back().push_back(s[i]);
    }
  }
  return out;
}

std::string Unescape(absl::string_view s) {
  std::string out;
  for (size_t i = 0; i < s.size(); ++i) {
    if (s[i] == '\\' && i + 1 < s.size()) ++i;
    out.push_back(s[i]);
  }
  return out;
}

// First occurrence of `sep` not escaped, or npos.
size_t FindUnescaped(absl::string_view s, char sep) {
  for (size_t i = 0; i < s.size(); ++i) {
    if (s[i] == '\\') {
      ++i;
    } else if (s[i] == sep) {
      return i;
    }
  }
  return absl::string_view::npos;
}

int HexValue(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

absl::StatusOr<std::string> PercentDecode(absl::string_view s) {
  std::string out;
  out.reserve(s.size());
  for (size_t i = 0; i < s.size(); ++i) {
    if (s[i] == '+') {
      out.push_back(' ');
    } else if (s[i] == '%') {
      if (i + 2 >= s.size()) return absl::InvalidArgumentError("bad % escape in query");
      const int hi = HexValue(s[i + 1]), lo = HexValue(s[i + 2]);
      if (hi < 0 || lo < 0) return absl::InvalidArgumentError("bad % escape in query");
      out.push_back(static_cast<char>(hi * 16 + lo));
      i += 2;
    } else {
      out.push_back(s[i]);
    }
  }
  return out;
}

bool Digits(absl::string_view s, size_t pos, size_t n, int* out) {
  if (pos + n > s.size()) return false;
  int v = 0;
  for (size_t i = pos; i < pos + n; ++i) {
    if (s[i] < '0' || s[i] > '9') return false;
    v = v * 10 + (s[i] - '0');
  }
  *out = v;
  return true;
}

int64_t Micros(absl::Time t) { return absl::ToUnixMicros(t); }

bool Contains(const DateRange& outer, const DateRange& inner) { return outer.lo <= inner.lo && inner.hi <= outer.hi; }

absl::string_view View(const Value& v) { return absl::string_view(v.GetString(), v.GetStringLength()); }

const Value* MemberOf(const Value& v, absl::string_view name) {
  if (!v.IsObject()) return nullptr;
  for (const auto& m : v.GetObject()) {
    if (View(m.name) == name) return &m.value;
  }
  return nullptr;
}

// Every value at `path` (arrays flattened at each step).
void Collect(const Value& v, absl::string_view path, std::vector<const Value*>* out) {
  if (v.IsArray()) {
    for (const auto& e : v.GetArray()) Collect(e, path, out);
    return;
  }
  if (path.empty()) {
    out->push_back(&v);
    return;
  }
  const size_t dot = path.find('.');
  const absl::string_view head = path.substr(0, dot);
  const absl::string_view rest = dot == absl::string_view::npos ? absl::string_view() : path.substr(dot + 1);
  if (const Value* m = MemberOf(v, head); m != nullptr) Collect(*m, rest, out);
}

std::optional<std::string> StringMember(const Value& v, absl::string_view name) {
  const Value* m = MemberOf(v, name);
  if (m == nullptr || !m->IsString()) return std::nullopt;
  return std::string(View(*m));
}

bool TokenMatchesCoding(const TokenValue& t, const Value& coding, absl::string_view system_key,
                        absl::string_view code_key) {
  if (!coding.IsObject()) return false;
  const std::optional<std::string> system = StringMember(coding, system_key);
  const std::optional<std::string> code = StringMember(coding, code_key);
  if (t.has_system) {
    if (t.system.empty() ? system.has_value() : system != t.system) return false;
    if (t.code.empty()) return true;
  }
  return code.has_value() && *code == t.code;
}

bool TokenMatches(const TokenValue& t, const SearchParamDef& def, const Value& element) {
  switch (def.target) {
    case SearchTarget::kCode:
      if (!element.IsString()) return false;
      if (t.has_system && t.system != def.implied_system) return false;
      return t.code.empty() || View(element) == t.code;
    case SearchTarget::kCodeableConcept: {
      const Value* codings = MemberOf(element, "coding");
      if (codings == nullptr) return false;
      if (!codings->IsArray()) return TokenMatchesCoding(t, *codings, "system", "code");
      for (const auto& c : codings->GetArray()) {
        if (TokenMatchesCoding(t, c, "system", "code")) return true;
      }
      return false;
    }
    case SearchTarget::kIdentifier:
      return TokenMatchesCoding(t, element, "system", "value");
    default:
      return false;
  }
}

std::optional<DateRange> ElementRange(const Value& v) {
  if (v.IsString()) return ParseFhirDateRange(View(v));
  if (v.IsObject()) {  // Period
    DateRange r{INT64_MIN, INT64_MAX};
    bool any = false;
    if (auto start = StringMember(v, "start"); start.has_value()) {
      auto s = ParseFhirDateRange(*start);
      if (!s.has_value()) return std::nullopt;
      r.lo = s->lo;
      any = true;
    }
    if (auto end = StringMember(v, "end"); end.has_value()) {
      auto e = ParseFhirDateRange(*end);
      if (!e.has_value()) return std::nullopt;
      r.hi = e->hi;
      any = true;
    }
    if (any) return r;
  }
  return std::nullopt;
}

// Every string in `v` (an element and what it contains), but codes that are
// not names (HumanName.use) and periods.
void CollectStrings(const Value& v, std::vector<absl::string_view>* out) {
  if (v.IsString()) {
    out->push_back(View(v));
  } else if (v.IsArray()) {
    for (const auto& e : v.GetArray()) CollectStrings(e, out);
  } else if (v.IsObject()) {
    for (const auto& m : v.GetObject()) {
      const absl::string_view name = View(m.name);
      const bool skip = name == "use" || name == "period" || name == "extension" || absl::StartsWith(name, "_");
      if (!skip) CollectStrings(m.value, out);
    }
  }
}

// FHIR string search: the text, or one of its words, starts with `lower`.
bool StringMatches(absl::string_view text, absl::string_view lower) {
  for (size_t start = 0; start < text.size();) {
    if (text.size() - start >= lower.size() && absl::EqualsIgnoreCase(text.substr(start, lower.size()), lower)) {
      return true;
    }
    const size_t space = text.find_first_of(" -'", start);
    if (space == absl::string_view::npos) break;
    start = space + 1;
  }
  return false;
}

bool ReferenceMatches(const ReferenceValue& want, const Value& element) {
  if (!element.IsObject()) return false;
  auto ref = StringMember(element, "reference");
  if (!ref.has_value()) return false;
  auto have = ParseReference(*ref);
  if (!have.has_value()) return false;
  if (!want.type.empty() && want.type != have->type) return false;
  if (!want.version.empty() && want.version != have->version) return false;
  return want.id == have->id;
}

bool CriterionMatches(const Criterion& c, const Value& resource, int64_t last_updated_micros) {
  const SearchParamDef& def = *c.def;
  if (def.target == SearchTarget::kLastUpdated) {
    const DateRange t{last_updated_micros, last_updated_micros + 1};
    return std::any_of(c.dates.begin(), c.dates.end(), [&](const DateValue& d) { return DateMatches(d, t); });
  }
  std::vector<const Value*> elements;
  if (def.target == SearchTarget::kEffective) {
    for (absl::string_view name : {"effectiveDateTime", "effectiveInstant", "effectivePeriod"}) {
      if (const Value* m = MemberOf(resource, name); m != nullptr) elements.push_back(m);
    }
  } else {
    Collect(resource, def.path, &elements);
  }
  for (const Value* e : elements) {
    switch (def.target) {
      case SearchTarget::kCode:
      case SearchTarget::kCodeableConcept:
      case SearchTarget::kIdentifier:
        for (const auto& t : c.tokens) {
          if (TokenMatches(t, def, *e)) return true;
        }
        break;
      case SearchTarget::kDate:
      case SearchTarget::kEffective: {
        auto range = ElementRange(*e);
        if (!range.has_value()) break;
        for (const auto& d : c.dates) {
          if (DateMatches(d, *range)) return true;
        }
        break;
      }
      case SearchTarget::kReference:
        for (const auto& r : c.refs) {
          if (ReferenceMatches(r, *e)) return true;
        }
        break;
      case SearchTarget::kString: {
        std::vector<absl::string_view> texts;
        CollectStrings(*e, &texts);
        for (absl::string_view text : texts) {
          for (const auto& want : c.strings) {
            if (StringMatches(text, want)) return true;
          }
        }
        break;
      }
      default:
        break;
    }
  }
  return false;
}

std::vector<std::string> Intersect(const std::optional<std::vector<std::string>>& have, std::set<std::string> add) {
  std::vector<std::string> out;
  if (!have.has_value()) return std::vector<std::string>(add.begin(), add.end());
  for (const auto& s : *have) {
    if (add.count(s)) out.push_back(s);
  }
  return out;
}

}  // namespace

absl::StatusOr<std::vector<QueryParam>> ParseQueryString(absl::string_view query) {
  std::vector<QueryParam> out;
  for (absl::string_view pair : absl::StrSplit(query, '&')) {
    if (pair.empty()) continue;
    const size_t eq = pair.find('=');
    auto name = PercentDecode(pair.substr(0, eq));
    if (!name.ok()) return name.status();
    absl::StatusOr<std::string> value = std::string();
    if (eq != absl::string_view::npos) value = PercentDecode(pair.substr(eq + 1));
    if (!value.ok()) return value.status();
    if (!IsValidUtf8(*name) || !IsValidUtf8(*value)) {
      return absl::InvalidArgumentError("query parameter is not valid UTF-8");
    }
    if (name->empty()) continue;
    out.push_back({std::move(*name), std::move(*value)});
  }
  return out;
}

std::string EncodeQueryComponent(absl::string_view s) {
  static constexpr char kHex[] = "0123456789ABCDEF";
  std::string out;
  for (unsigned char c : s) {
    if (absl::ascii_isalnum(c) || c == '-' || c == '.' || c == '_' || c == '~') {
      out.push_back(static_cast<char>(c));
    } else {
      out.push_back('%');
      out.push_back(kHex[c >> 4]);
      out.push_back(kHex[c & 15]);
    }
  }
  return out;
}

std::string FormatQuery(const std::vector<QueryParam>& params) {
  std::string out;
  for (const auto& p : params) {
    if (!out.empty()) out.push_back('&');
    // ':' and '/' may stay as they are in a query (RFC 3986): keeps links readable.
    const auto readable = [](absl::string_view s) {
      return absl::StrReplaceAll(EncodeQueryComponent(s), {{"%3A", ":"}, {"%2F", "/"}});
    };
    absl::StrAppend(&out, readable(p.name), "=", readable(p.value));
  }
  return out;
}

absl::Span<const SearchParamDef> SearchParamsOf(absl::string_view resource_type) {
  if (resource_type == "Goal") return kGoalParams;
  if (resource_type == "Observation") return kObservationParams;
  if (resource_type == "List") return kListParams;
  if (resource_type == "Patient") return kPatientParams;
  if (resource_type == "Provenance") return kProvenanceParams;
  return {};
}

std::optional<DateRange> ParseFhirDateRange(absl::string_view s) {
  int y = 0, m = 1, d = 1, hh = 0, mm = 0, ss = 0;
  if (!Digits(s, 0, 4, &y) || y < 1) return std::nullopt;
  const absl::TimeZone utc = absl::UTCTimeZone();
  if (s.size() == 4) {
    return DateRange{Micros(absl::FromCivil(absl::CivilYear(y), utc)),
                     Micros(absl::FromCivil(absl::CivilYear(y + 1), utc))};
  }
  if (s[4] != '-' || !Digits(s, 5, 2, &m) || m < 1 || m > 12) return std::nullopt;
  if (s.size() == 7) {
    const absl::CivilMonth month(y, m);
    return DateRange{Micros(absl::FromCivil(month, utc)), Micros(absl::FromCivil(month + 1, utc))};
  }
  if (s.size() < 10 || s[7] != '-' || !Digits(s, 8, 2, &d)) return std::nullopt;
  const absl::CivilDay day(y, m, d);
  if (day.year() != y || day.month() != m || day.day() != d) return std::nullopt;
  if (s.size() == 10) return DateRange{Micros(absl::FromCivil(day, utc)), Micros(absl::FromCivil(day + 1, utc))};
  if (s[10] != 'T' || !Digits(s, 11, 2, &hh) || hh > 23 || s.size() < 16 || s[13] != ':' || !Digits(s, 14, 2, &mm) ||
      mm > 59) {
    return std::nullopt;
  }
  size_t pos = 16;
  int64_t unit = 60 * 1000000LL;  // minute precision
  int64_t frac = 0;
  if (pos < s.size() && s[pos] == ':') {
    if (!Digits(s, 17, 2, &ss) || ss > 60) return std::nullopt;
    if (ss == 60) ss = 59;  // leap second
    pos = 19;
    unit = 1000000;
    if (pos < s.size() && s[pos] == '.') {
      ++pos;
      int digits = 0;
      while (pos < s.size() && s[pos] >= '0' && s[pos] <= '9') {
        if (digits < 6) {
          frac = frac * 10 + (s[pos] - '0');
          unit /= 10;
        }
        ++digits;
        ++pos;
      }
      if (digits == 0) return std::nullopt;
      for (int i = std::min(digits, 6); i < 6; ++i) frac *= 10;
    }
  }
  int64_t offset_micros = 0;
  if (pos < s.size()) {
    if (s[pos] == 'Z') {
      ++pos;
    } else if (s[pos] == '+' || s[pos] == '-') {
      int oh = 0, om = 0;
      if (!Digits(s, pos + 1, 2, &oh) || pos + 3 >= s.size() || s[pos + 3] != ':' || !Digits(s, pos + 4, 2, &om) ||
          oh > 14 || om > 59) {
        return std::nullopt;
      }
      offset_micros = (oh * 3600LL + om * 60LL) * 1000000LL * (s[pos] == '-' ? -1 : 1);
      pos += 6;
    } else {
      return std::nullopt;
    }
  }
  if (pos != s.size()) return std::nullopt;
  const int64_t lo = Micros(absl::FromCivil(absl::CivilSecond(y, m, d, hh, mm, ss), utc)) - offset_micros + frac;
  return DateRange{lo, lo + unit};
}

bool DateMatches(const DateValue& value, const DateRange& t) {
  const DateRange& v = value.range;
  const bool eq = Contains(v, t);
  switch (value.prefix) {
    case DatePrefix::kEq:
      return eq;
    case DatePrefix::kNe:
      return !eq;
    case DatePrefix::kGt:
      return t.hi > v.hi;
    case DatePrefix::kLt:
      return t.lo < v.lo;
    case DatePrefix::kGe:
      return t.hi > v.hi || eq;
    case DatePrefix::kLe:
      return t.lo < v.lo || eq;
    case DatePrefix::kSa:
      return t.lo >= v.hi;
    case DatePrefix::kEb:
      return t.hi <= v.lo;
  }
  return false;
}

std::optional<ReferenceValue> ParseReference(absl::string_view s) {
  if (s.empty()) return std::nullopt;
  // Drop a query or fragment (never part of a literal reference id).
  s = s.substr(0, s.find_first_of("?#"));
  std::vector<absl::string_view> seg = absl::StrSplit(s, '/');
  while (!seg.empty() && seg.back().empty()) seg.pop_back();
  if (seg.empty()) return std::nullopt;
  ReferenceValue r;
  if (seg.size() >= 4 && seg[seg.size() - 2] == "_history") {
    r.version = std::string(seg.back());
    seg.resize(seg.size() - 2);
  }
  if (seg.size() == 1) {
    r.id = std::string(seg[0]);
    return r;
  }
  const absl::string_view type = seg[seg.size() - 2];
  if (type.empty() || !absl::ascii_isupper(static_cast<unsigned char>(type[0]))) return std::nullopt;
  r.type = std::string(type);
  r.id = std::string(seg.back());
  return r;
}

namespace {

// What ParseSearch has read so far, and how unsupported parameters are met:
// refused under strict handling (the first refusal is kept), else ignored
// and listed.
struct SearchParse {
  SearchSpec spec;
  bool strict = false;
  absl::Status refused;

  void Unsupported(const QueryParam& p, std::string why) {
    if (strict) {
      if (refused.ok()) refused = absl::UnimplementedError(why);
    } else {
      spec.ignored.push_back(p.name);
    }
  }
};

// _count: a page size (0: the count only).
absl::Status ParseCount(const QueryParam& p, SearchSpec* spec) {
  int count = 0;
  if (!absl::SimpleAtoi(p.value, &count) || count < 0) {
    return absl::InvalidArgumentError(absl::StrCat("_count must be a number 0..", kMaxSearchCount));
  }
  spec->count = std::min(count, kMaxSearchCount);
  if (count == 0) spec->count_only = true;
  spec->applied.push_back(p);
  return absl::OkStatus();
}

void ParseSummary(const QueryParam& p, SearchParse* s) {
  if (p.value == "count") {
    s->spec.count_only = true;
    s->spec.applied.push_back(p);
  } else if (p.value == "false") {
    s->spec.applied.push_back(p);
  } else {
    s->Unsupported(p, absl::StrCat("_summary=", p.value, " is not supported (count and false are)"));
  }
}

void ParseSort(const QueryParam& p, SearchParse* s) {
  if (s->spec.resource_type == "Provenance") {
    s->Unsupported(p, "_sort is not supported for Provenance");
  } else if (p.value == "_lastUpdated") {
    s->spec.sort = SearchSpec::Sort::kLastUpdatedAsc;
    s->spec.applied.push_back(p);
  } else if (p.value == "-_lastUpdated") {
    s->spec.sort = SearchSpec::Sort::kLastUpdatedDesc;
    s->spec.applied.push_back(p);
  } else {
    s->Unsupported(p, absl::StrCat("_sort=", p.value, " is not supported (_lastUpdated and -_lastUpdated are)"));
  }
}

void ParseRevinclude(const QueryParam& p, SearchParse* s) {
  const std::string& type = s->spec.resource_type;
  if (type != "Provenance" && (p.value == "Provenance:target" || p.value == absl::StrCat("Provenance:target:", type))) {
    s->spec.revinclude_provenance = true;
    s->spec.applied.push_back(p);
  } else {
    s->Unsupported(p, absl::StrCat("_revinclude=", p.value, " is not supported (Provenance:target is)"));
  }
}

// The result parameters (_count, _summary, _sort, _revinclude, _page_token,
// _format, _pretty). False when `name` is none of them.
absl::StatusOr<bool> ParseResultParam(const QueryParam& p, const std::string& name, const std::string& modifier,
                                      SearchParse* s) {
  if (name == "_format" || name == "_pretty") return true;
  if (name == "_page_token") {
    s->spec.page_token = p.value;
    return true;
  }
  if (!modifier.empty() && !name.empty() && name.front() == '_' && name != "_id" && name != "_lastUpdated") {
    s->Unsupported(p, absl::StrCat("modifier :", modifier, " is not supported on ", name));
    return true;
  }
  if (name == "_count") {
    if (auto st = ParseCount(p, &s->spec); !st.ok()) return st;
    return true;
  }
  if (name == "_summary") {
    ParseSummary(p, s);
    return true;
  }
  if (name == "_sort") {
    ParseSort(p, s);
    return true;
  }
  if (name == "_revinclude") {
    ParseRevinclude(p, s);
    return true;
  }
  return false;
}

// A token value: "code", "system|code", "|code" or "system|".
absl::Status ParseTokenValue(absl::string_view name, const std::string& raw, Criterion* c) {
  TokenValue t;
  const size_t bar = FindUnescaped(raw, '|');
  if (bar == std::string::npos) {
    t.code = Unescape(raw);
  } else {
    t.has_system = true;
    t.system = Unescape(absl::string_view(raw).substr(0, bar));
    t.code = Unescape(absl::string_view(raw).substr(bar + 1));
    if (t.system.empty() && t.code.empty()) {
      return absl::InvalidArgumentError(absl::StrCat(name, ": \"|\" alone names no code"));
    }
  }
  c->tokens.push_back(std::move(t));
  return absl::OkStatus();
}

// A date value: an optional prefix (eq ne gt lt ge le sa eb) and a FHIR date.
absl::Status ParseDateValue(absl::string_view name, absl::string_view v, Criterion* c) {
  DateValue d;
  static constexpr std::pair<absl::string_view, DatePrefix> kPrefixes[] = {
      {"eq", DatePrefix::kEq}, {"ne", DatePrefix::kNe}, {"gt", DatePrefix::kGt}, {"lt", DatePrefix::kLt},
      {"ge", DatePrefix::kGe}, {"le", DatePrefix::kLe}, {"sa", DatePrefix::kSa}, {"eb", DatePrefix::kEb}};
  if (v.size() >= 2 && absl::ascii_isalpha(static_cast<unsigned char>(v[0]))) {
    bool known = false;
    for (const auto& [text, prefix] : kPrefixes) {
      if (v.substr(0, 2) == text) {
        d.prefix = prefix;
        known = true;
      }
    }
    if (!known) {
      return absl::InvalidArgumentError(
          absl::StrCat(name, ": unsupported date prefix \"", v.substr(0, 2), "\" (eq ne gt lt ge le sa eb)"));
    }
    v.remove_prefix(2);
  }
  auto range = ParseFhirDateRange(v);
  if (!range.has_value()) {
    return absl::InvalidArgumentError(
        absl::StrCat(name, ": not a FHIR date/dateTime (YYYY, YYYY-MM, YYYY-MM-DD, or with Thh:mm[:ss][Z])"));
  }
  d.range = *range;
  c->dates.push_back(d);
  return absl::OkStatus();
}

// A reference value (patient ids into `ids`, other references into c->refs);
// `type_modifier` is the :Type modifier ("" when none).
absl::Status ParseReferenceValue(const SearchParamDef& def, absl::string_view name, const std::string& raw,
                                 const std::string& type_modifier, Criterion* c, std::set<std::string>* ids) {
  auto ref = ParseReference(Unescape(raw));
  if (!ref.has_value()) return absl::InvalidArgumentError(absl::StrCat(name, ": not a reference (Type/id or id)"));
  if (!type_modifier.empty()) {
    if (!ref->type.empty() && ref->type != type_modifier) return absl::OkStatus();  // cannot match
    ref->type = type_modifier;
  }
  if (def.target == SearchTarget::kPatient) {
    if ((ref->type.empty() || ref->type == "Patient") && domain::IsValidId(ref->id)) ids->insert(ref->id);
  } else {
    c->refs.push_back(std::move(*ref));
  }
  return absl::OkStatus();
}

// One value of a comma-separated list, by the parameter's target.
absl::Status ParseValue(const SearchParamDef& def, absl::string_view name, const std::string& raw,
                        const std::string& type_modifier, Criterion* c, std::set<std::string>* ids) {
  switch (def.target) {
    case SearchTarget::kId: {
      const std::string id = Unescape(raw);
      if (domain::IsValidId(id)) ids->insert(id);
      return absl::OkStatus();
    }
    case SearchTarget::kPatient:
    case SearchTarget::kReference:
      return ParseReferenceValue(def, name, raw, type_modifier, c, ids);
    case SearchTarget::kCode:
    case SearchTarget::kCodeableConcept:
    case SearchTarget::kIdentifier:
      return ParseTokenValue(name, raw, c);
    case SearchTarget::kString:
      c->strings.push_back(absl::AsciiStrToLower(Unescape(raw)));
      return absl::OkStatus();
    case SearchTarget::kDate:
    case SearchTarget::kEffective:
    case SearchTarget::kLastUpdated:
      return ParseDateValue(name, raw, c);
  }
  return absl::OkStatus();
}

// Adds one parsed parameter: patients and ids narrow the candidates (ANDed
// by intersection); everything else is a criterion.
void AddCriterion(const SearchParamDef& def, Criterion c, std::set<std::string> ids, SearchSpec* spec) {
  if (def.target == SearchTarget::kPatient) {
    spec->patients = Intersect(spec->patients, std::move(ids));
  } else if (def.target == SearchTarget::kId) {
    spec->ids = Intersect(spec->ids, std::move(ids));
  } else if (def.target == SearchTarget::kReference && c.refs.empty()) {
    // Every value had the wrong type: nothing can match.
    spec->ids = std::vector<std::string>();
  } else {
    spec->criteria.push_back(std::move(c));
  }
}

// A search parameter of the type (`defs`): its values into the spec.
absl::Status ParseSearchParam(const QueryParam& p, const std::string& name, const std::string& modifier,
                              absl::Span<const SearchParamDef> defs, SearchParse* s) {
  const SearchParamDef* def = nullptr;
  for (const auto& d : defs) {
    if (d.name == name) def = &d;
  }
  if (def == nullptr) {
    s->Unsupported(p, absl::StrCat("unknown search parameter ", name, " for ", s->spec.resource_type));
    return absl::OkStatus();
  }
  // The only modifier supported is a reference's target type.
  const bool type_modifier =
      !modifier.empty() && def->type == "reference" && absl::ascii_isupper(static_cast<unsigned char>(modifier[0]));
  if (!modifier.empty() && !type_modifier) {
    s->Unsupported(p, absl::StrCat("modifier :", modifier, " is not supported on ", name));
    return absl::OkStatus();
  }
  if (p.value.empty()) return absl::OkStatus();  // an empty value constrains nothing
  Criterion c;
  c.def = def;
  std::set<std::string> ids;
  for (const std::string& raw : SplitUnescaped(p.value, ',')) {
    if (raw.empty()) return absl::InvalidArgumentError(absl::StrCat(name, ": empty value in a comma-separated list"));
    if (auto st = ParseValue(*def, name, raw, type_modifier ? modifier : "", &c, &ids); !st.ok()) return st;
  }
  s->spec.applied.push_back(p);
  AddCriterion(*def, std::move(c), std::move(ids), &s->spec);
  return absl::OkStatus();
}

}  // namespace

absl::StatusOr<SearchSpec> ParseSearch(absl::string_view resource_type, const std::vector<QueryParam>& params,
                                       bool strict) {
  SearchParse s;
  s.spec.resource_type = std::string(resource_type);
  s.strict = strict;
  const absl::Span<const SearchParamDef> defs = SearchParamsOf(resource_type);
  for (const QueryParam& p : params) {
    if (!s.refused.ok()) break;
    const size_t colon = p.name.find(':');
    const std::string name = p.name.substr(0, colon);
    const std::string modifier = colon == std::string::npos ? "" : p.name.substr(colon + 1);
    auto result_param = ParseResultParam(p, name, modifier, &s);
    if (!result_param.ok()) return result_param.status();
    if (*result_param) continue;
    if (auto st = ParseSearchParam(p, name, modifier, defs, &s); !st.ok()) return st;
  }
  if (!s.refused.ok()) return s.refused;
  if (resource_type == "Patient" && s.spec.ids.has_value()) s.spec.patients = s.spec.ids;  // the id is the patient id
  return std::move(s.spec);
}

bool Matches(const SearchSpec& spec, const Value& resource, int64_t last_updated_micros) {
  for (const Criterion& c : spec.criteria) {
    if (!CriterionMatches(c, resource, last_updated_micros)) return false;
  }
  return true;
}

std::string CanonicalQuery(const SearchSpec& spec) {
  std::vector<std::string> parts;
  for (const auto& p : spec.applied) {
    if (p.name == "_count") continue;
    parts.push_back(absl::StrCat(EncodeQueryComponent(p.name), "=", EncodeQueryComponent(p.value)));
  }
  std::sort(parts.begin(), parts.end());
  return absl::StrCat(spec.resource_type, "?", absl::StrJoin(parts, "&"));
}

}  // namespace wmty::fhir
