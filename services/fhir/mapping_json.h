// Small RapidJSON helpers and FHIR primitive formats used by the FHIR mapping
// (mapping.cc) and available to the rest of wmty_fhir.
//
// Thread safety: pure functions.
#ifndef WMTY_FHIR_MAPPING_JSON_H_
#define WMTY_FHIR_MAPPING_JSON_H_

#include <cstdint>
#include <optional>
#include <string>

#include <google/protobuf/timestamp.pb.h>
#include <rapidjson/document.h>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"

namespace wmty::fhir::json {

using Value = rapidjson::Value;
using Allocator = rapidjson::Document::AllocatorType;

// The member `name` of object `o`, or nullptr (also when `o` is not an object).
const Value* Member(const Value& o, absl::string_view name);
Value* MutableMember(Value& o, absl::string_view name);
// The string member `name`, or nullopt when absent or not a string.
std::optional<absl::string_view> StringMember(const Value& o, absl::string_view name);
absl::string_view StringOf(const Value& v);  // "" unless a string

// A string value holding a copy of `s`.
Value Str(absl::string_view s, Allocator& alloc);
// Adds member `name` (copied) to object `o`; replaces an existing one.
void Set(Value& o, absl::string_view name, Value v, Allocator& alloc);
void Remove(Value& o, absl::string_view name);

// {"system", "code", "display"} (system and display omitted when empty).
Value Coding(absl::string_view system, absl::string_view code, absl::string_view display, Allocator& alloc);
// {"coding": [coding]}.
Value Concept(Value coding, Allocator& alloc);
// {"reference": ref} (+ "display" when not empty).
Value Reference(absl::string_view ref, absl::string_view display, Allocator& alloc);

// Compact JSON text of `v`.
std::string Serialize(const Value& v);
// Parses `text` into `doc`; INVALID_ARGUMENT when it is not JSON.
absl::Status Parse(absl::string_view text, rapidjson::Document* doc);
// Parses the FHIR elements stored with a version (Record.fhir_extra_json)
// into `doc`: nullptr when `text` is empty, else the object; DATA_LOSS when
// it is not a JSON object.
absl::StatusOr<const Value*> ParseStoredElements(absl::string_view text, rapidjson::Document* doc);

// FHIR instant with millisecond precision, UTC: "2026-11-23T16:33:29.520Z".
std::string FormatInstant(int64_t unix_micros);
// FHIR dateTime in UTC with only as many fractional digits as needed:
// "2025-02-15T15:15:00Z", "2025-02-15T15:15:00.25Z".
std::string FormatDateTime(const google::protobuf::Timestamp& t);
// Parses a FHIR dateTime/instant ("YYYY", "YYYY-MM", "YYYY-MM-DD" are taken
// as the start of that period in UTC; otherwise a time with seconds and a
// zone is required). false when malformed.
bool ParseDateTime(absl::string_view s, google::protobuf::Timestamp* out);

// Escapes text for XHTML element content and attribute values.
std::string XhtmlEscape(absl::string_view s);

}  // namespace wmty::fhir::json

#endif  // WMTY_FHIR_MAPPING_JSON_H_
