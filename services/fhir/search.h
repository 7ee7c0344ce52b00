// FHIR search parameters of the FHIR face: decoding a query string, parsing
// the parameters we support into a SearchSpec, and matching a FHIR resource
// (as ToFhir renders it) against it.
//
// Supported (FHIR R4 search.html semantics):
//   Goal         patient, subject, lifecycle-status, achievement-status,
//                category, target-date, identifier, _id, _lastUpdated
//   Observation  patient, subject, code, category, date, focus, identifier,
//                _id, _lastUpdated
//   List         patient, subject, code, _id, _lastUpdated
//   Patient      name, family, given, birthdate, gender, identifier, _id (the
//                patient id), _lastUpdated
//   Provenance   target
// Values: token system|code, |code (no system), system| (any code of the
// system), code; date with prefixes eq ne gt lt ge le sa eb (ap is not
// supported) over the implicit range of the value's precision (dates and
// date-times without a time zone are read as UTC); reference Type/id, id,
// absolute URL, with an optional /_history/n; a comma means OR, a repeated
// parameter AND; "\," "\|" "\$" "\\" escape. string (Patient name, family,
// given): case-insensitive (ASCII letters) "starts with", on a whole part of
// the name or on any of its words ("san" finds family "Santos" and text
// "Maria Santos"); no modifiers.
// Result parameters: _count (0..1000, default 50; larger values are clamped),
// _sort=_lastUpdated or -_lastUpdated, _summary=count (or false),
// _revinclude=Provenance:target, _page_token (from a next link); _format and
// _pretty are general parameters and are accepted everywhere.
// Anything else (unknown names, modifiers other than a reference's :Type,
// other _sort/_summary/_revinclude values) is an error under
// Prefer: handling=strict and ignored (and left out of the self link) under
// lenient handling, the default. A malformed value of a supported parameter is
// always an error.
//
// Thread safety: pure functions; the parameter tables are immutable.
#ifndef WMTY_FHIR_SEARCH_H_
#define WMTY_FHIR_SEARCH_H_

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include <rapidjson/document.h>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/types/span.h"

namespace wmty::fhir {

// One decoded name=value pair of a query string (name keeps its ":modifier").
struct QueryParam {
  std::string name;
  std::string value;
  bool operator==(const QueryParam&) const = default;
};

// Decodes application/x-www-form-urlencoded (a URL query string or a POST
// _search body): '&'-separated pairs, '+' is a space, %XX escapes. Empty pairs
// are skipped. INVALID_ARGUMENT on a bad escape or a decoded value that is not
// UTF-8.
absl::StatusOr<std::vector<QueryParam>> ParseQueryString(absl::string_view query);
// Percent-encodes everything but unreserved characters (RFC 3986).
std::string EncodeQueryComponent(absl::string_view s);
// "a=1&b=2", encoded.
std::string FormatQuery(const std::vector<QueryParam>& params);

// What a search parameter looks at in a resource.
enum class SearchTarget {
  kId,               // Resource.id
  kLastUpdated,      // Resource.meta.lastUpdated (the stored update time)
  kPatient,          // subject, a Patient (answered by the patient key range)
  kCode,             // a primitive code with an implied system
  kCodeableConcept,  // CodeableConcept(s): any coding
  kIdentifier,       // Identifier(s): system|value
  kDate,             // date / dateTime / instant
  kEffective,        // Observation.effective[x]: dateTime, instant or Period
  kReference,        // Reference(s): type and id
  kString,           // the strings in an element (a HumanName's parts): starts with
};

struct SearchParamDef {
  absl::string_view name;
  // FHIR SearchParamType: "token", "date", "reference" or "string".
  absl::string_view type;
  // Element path from the resource root ('.'-separated; arrays are flattened).
  absl::string_view path;
  SearchTarget target;
  // kCode: the system the code belongs to (so system|code also matches).
  absl::string_view implied_system;
  // Canonical URL of the SearchParameter, for the CapabilityStatement.
  absl::string_view definition;
  absl::string_view documentation;
};

// The search parameters of a resource type (empty for types we do not search).
absl::Span<const SearchParamDef> SearchParamsOf(absl::string_view resource_type);

// [lo, hi) in Unix microseconds; open ends are INT64_MIN / INT64_MAX.
struct DateRange {
  int64_t lo = 0;
  int64_t hi = 0;
};
// A FHIR date (YYYY, YYYY-MM, YYYY-MM-DD), dateTime or instant as the range
// its precision covers. No time zone: UTC.
std::optional<DateRange> ParseFhirDateRange(absl::string_view s);

enum class DatePrefix { kEq, kNe, kGt, kLt, kGe, kLe, kSa, kEb };
struct DateValue {
  DatePrefix prefix = DatePrefix::kEq;
  DateRange range;
};
// search.html: eq = the search range contains the target range; gt = the
// range above the search value overlaps the target; ge = gt or eq; lt/le
// likewise below; sa = the target starts after the search range; eb = the
// target ends before it; ne = not eq.
bool DateMatches(const DateValue& value, const DateRange& target);

struct TokenValue {
  // False for a bare "code" (any system).
  bool has_system = false;
  // "" with has_system: "|code" (no system).
  std::string system;
  // "" with has_system: "system|" (any code of the system).
  std::string code;
};

struct ReferenceValue {
  std::string type;  // "" for a bare id
  std::string id;
  std::string version;  // from /_history/n, else ""
};
// Type/id, id, [url/]Type/id[/_history/v]. nullopt if it names no id.
std::optional<ReferenceValue> ParseReference(absl::string_view s);

// One parameter occurrence: the values are ORed.
struct Criterion {
  const SearchParamDef* def = nullptr;
  std::vector<TokenValue> tokens;
  std::vector<DateValue> dates;
  std::vector<ReferenceValue> refs;
  std::vector<std::string> strings;  // kString: lower-cased (ASCII)
};

struct SearchSpec {
  std::string resource_type;
  // ANDed. patient, subject and _id are not here: see patients and ids.
  std::vector<Criterion> criteria;
  // Set when patient/subject was given: the only patients that can match
  // (sorted, unique; empty = nothing can match).
  std::optional<std::vector<std::string>> patients;
  // Set when _id was given (sorted, unique).
  std::optional<std::vector<std::string>> ids;
  int count = 50;
  // _summary=count or _count=0: the total only.
  bool count_only = false;
  enum class Sort { kNone, kLastUpdatedAsc, kLastUpdatedDesc };
  Sort sort = Sort::kNone;
  bool revinclude_provenance = false;
  std::string page_token;
  // The parameters the search used, in the order given (for the self link):
  // everything but ignored ones, _page_token, _format and _pretty.
  std::vector<QueryParam> applied;
  // Names of the parameters ignored under lenient handling.
  std::vector<std::string> ignored;
};

inline constexpr int kDefaultSearchCount = 50;
inline constexpr int kMaxSearchCount = 1000;

// Errors: INVALID_ARGUMENT for a malformed value of a supported parameter;
// UNIMPLEMENTED for an unsupported parameter, modifier or value under strict
// handling. Messages are safe to show.
absl::StatusOr<SearchSpec> ParseSearch(absl::string_view resource_type, const std::vector<QueryParam>& params,
                                       bool strict);

// Whether `resource` (a FHIR resource as ToFhir renders it) meets every
// criterion. patients and ids are not checked here (the caller scans only
// those); `last_updated_micros` answers _lastUpdated.
bool Matches(const SearchSpec& spec, const rapidjson::Value& resource, int64_t last_updated_micros);

// The parameters that identify the result set (applied minus _count), in a
// canonical order: what a page token is bound to.
std::string CanonicalQuery(const SearchSpec& spec);

}  // namespace wmty::fhir

#endif  // WMTY_FHIR_SEARCH_H_
