// Domain field paths -> FHIR element paths (FhirPathFor, mapping.h), so that
// a domain violation ("goal.description") names the FHIR element
// ("Goal.description.text") in OperationOutcome.issue.expression.
#include <optional>
#include <span>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_replace.h"
#include "fhir/mapping.h"
#include "fhir/patient_mapping.h"

namespace wmty::fhir {

namespace {

// A domain field path (indices as "[i]") and the FHIR path it maps to; "" when
// there is no better name than the domain path. "{type}" is the FHIR type,
// "{speaker}" the element of who said it.
struct PathRow {
  absl::string_view from;
  absl::string_view to;
};

constexpr PathRow kCommonPaths[] = {
    {"name", "{type}.id"},
    {"patient", "{type}.subject"},
    {"patient.id", "{type}.subject.reference"},
    {"patient.identifier_system", "{type}.subject.identifier.system"},
    {"patient.identifier_value", "{type}.subject.identifier.value"},
    {"provenance", "{speaker}"},
    {"provenance.said_by", "{speaker}"},
    {"provenance.encounter_id", "{type}.encounter"},
    // Set by the server, not by the FHIR resource: no better name.
    {"provenance.recorded_by", ""},
    {"provenance.on_behalf_of", ""},  // from the X-Provenance header
    {"provenance.channel", ""},
    {"provenance.said_time", ""},  // Goal and List have no element for it
};

constexpr PathRow kObservationPaths[] = {
    {"provenance.said_time", "Observation.effectiveDateTime"},
};

constexpr PathRow kGoalPaths[] = {
    {"description", "Goal.description.text"},
    {"lifecycle_status", "Goal.lifecycleStatus"},
    {"achievement_status", "Goal.achievementStatus"},
    {"priority", "Goal.priority"},
    {"categories", "Goal.category"},
    {"categories[i]", "Goal.category"},
    {"start_date", "Goal.startDate"},
    {"target_date", "Goal.target[0].dueDate"},
    {"notes", "Goal.note"},
    {"notes[i]", "Goal.note[i]"},
    {"notes[i].text", "Goal.note[i].text"},
    {"notes[i].author", "Goal.note[i].authorString"},
    {"notes[i].time", "Goal.note[i].time"},
    // addresses may hold other references too: no index.
    {"what_matters", "Goal.addresses"},
    {"what_matters[i]", "Goal.addresses"},
};

constexpr PathRow kWhatMattersPaths[] = {
    {"statement", "Observation.valueString"},
    {"prompt", "Observation.component"},
    {"life_domains", "Observation.component"},
    {"dignity_elements", "Observation.component"},
};

constexpr PathRow kPreferencePaths[] = {
    {"kind", "Observation.code"},
    {"value_code", "Observation.valueCodeableConcept"},
    {"value_code.system", "Observation.valueCodeableConcept.coding[0].system"},
    {"value_code.code", "Observation.valueCodeableConcept.coding[0].code"},
    {"value_code.display", "Observation.valueCodeableConcept.coding[0].display"},
    {"value_text", "Observation.valueString"},
    {"channel_ranking", "Observation.component"},
    {"contact_window", "Observation.component"},
    {"language", "Observation.component"},
    {"family_involvement", "Observation.component"},
};

constexpr PathRow kGoalScorePaths[] = {
    {"goal", "Observation.focus"},
    {"score_type", "Observation.code"},
    {"score", "Observation.valueCodeableConcept"},
    {"effective_time", "Observation.effectiveDateTime"},
    {"note", "Observation.note[0].text"},
};

constexpr PathRow kPrioritiesPaths[] = {
    {"items", "List.entry"},
    {"items[i]", "List.entry[i].item"},
};

std::span<const PathRow> KindPaths(storage::Kind kind) {
  switch (kind) {
    case storage::GOAL:
      return kGoalPaths;
    case storage::WHAT_MATTERS:
      return kWhatMattersPaths;
    case storage::PREFERENCE:
      return kPreferencePaths;
    case storage::GOAL_SCORE:
      return kGoalScorePaths;
    case storage::PRIORITIES:
      return kPrioritiesPaths;
    default:
      return {};
  }
}

// The row for `pattern`: the kind's own first, then the common ones.
const PathRow* FindRow(storage::Kind kind, absl::string_view pattern) {
  std::vector<std::span<const PathRow>> tables = {KindPaths(kind)};
  if (FhirTypeOf(kind) == "Observation") tables.push_back(kObservationPaths);
  tables.push_back(kCommonPaths);
  for (std::span<const PathRow> table : tables) {
    for (const PathRow& row : table) {
      if (row.from == pattern) return &row;
    }
  }
  return nullptr;
}

// A field path with each index "[n]" replaced by "[i]", and the indices in
// order; nullopt when a "[" is not closed.
struct Pattern {
  std::string path;
  std::vector<std::string> indices;
};
std::optional<Pattern> PatternOf(absl::string_view field) {
  Pattern out;
  for (size_t i = 0; i < field.size(); ++i) {
    if (field[i] != '[') {
      out.path += field[i];
      continue;
    }
    const size_t close = field.find(']', i);
    if (close == absl::string_view::npos) return std::nullopt;
    out.indices.emplace_back(field.substr(i + 1, close - i - 1));
    out.path += "[i]";
    i = close;
  }
  return out;
}

// `to` of a row for `kind`, with its "[i]" replaced by `indices` in order.
std::string Substitute(storage::Kind kind, absl::string_view to, const std::vector<std::string>& indices) {
  const absl::string_view speaker = kind == storage::GOAL               ? "Goal.expressedBy"
                                    : FhirTypeOf(kind) == "Observation" ? "Observation.performer"
                                                                        : "List.source";
  const std::string named = absl::StrReplaceAll(to, {{"{type}", FhirTypeOf(kind)}, {"{speaker}", speaker}});
  std::string result;
  size_t next = 0;
  for (size_t i = 0; i < named.size(); ++i) {
    if (named.compare(i, 3, "[i]") == 0 && next < indices.size()) {
      absl::StrAppend(&result, "[", indices[next++], "]");
      i += 2;
    } else {
      result += named[i];
    }
  }
  return result;
}

}  // namespace

std::string FhirPathFor(storage::Kind kind, absl::string_view field) {
  if (kind == storage::PATIENT) return PatientFhirPath(field);
  // Domain paths are "<prefix>.<field path>" (prefix: goal, what_matters,
  // preference, goal_score, priorities).
  const size_t dot = field.find('.');
  if (dot == absl::string_view::npos) return std::string(field);
  const std::optional<Pattern> pattern = PatternOf(field.substr(dot + 1));
  if (!pattern) return std::string(field);
  // Longest matching prefix of the path (by segments).
  std::string probe = pattern->path;
  while (!probe.empty()) {
    if (const PathRow* row = FindRow(kind, probe)) {
      return row->to.empty() ? std::string(field) : Substitute(kind, row->to, pattern->indices);
    }
    const size_t cut = probe.find_last_of('.');
    if (cut == std::string::npos) break;
    probe.resize(cut);
  }
  return std::string(field);
}

}  // namespace wmty::fhir
