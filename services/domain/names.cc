#include "domain/names.h"

#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "common/status.h"

namespace wmty::domain {

bool IsValidId(absl::string_view id) {
  if (id.empty() || id.size() > 64) return false;
  for (char c : id) {
    bool ok = (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-' || c == '.';
    if (!ok) return false;
  }
  return true;
}

absl::string_view CollectionOf(storage::Kind kind) {
  switch (kind) {
    case storage::WHAT_MATTERS:
      return "whatMatters";
    case storage::GOAL:
      return "goals";
    case storage::PREFERENCE:
      return "preferences";
    case storage::PRIORITIES:
      return "priorities";
    case storage::GOAL_SCORE:
      return "goalScores";
    default:
      return "";
  }
}

std::string NotFoundMessage(absl::string_view label, absl::string_view name) {
  return absl::StrCat(label, " ", name, " not found");
}

std::string FormatParent(absl::string_view patient_id) { return absl::StrCat("patients/", patient_id); }

std::string FormatName(storage::Kind kind, absl::string_view patient_id, absl::string_view id) {
  if (kind == storage::PRIORITIES) return absl::StrCat("patients/", patient_id, "/priorities");
  if (kind == storage::PATIENT) return FormatParent(patient_id);
  return absl::StrCat("patients/", patient_id, "/", CollectionOf(kind), "/", id);
}

absl::StatusOr<std::string> ParseParent(absl::string_view parent, absl::string_view field) {
  if (parent.empty()) return InvalidField(std::string(field), "required (patients/{patient})");
  std::vector<absl::string_view> parts = absl::StrSplit(parent, '/');
  if (parts.size() != 2 || parts[0] != "patients") {
    return InvalidField(std::string(field), "must be patients/{patient}");
  }
  if (!IsValidId(parts[1])) {
    return InvalidField(std::string(field), "patient id must be 1-64 characters of A-Z a-z 0-9 - .");
  }
  return std::string(parts[1]);
}

absl::StatusOr<ResourceName> ParseName(absl::string_view name, absl::string_view field) {
  if (name.empty()) return InvalidField(std::string(field), "required");
  std::vector<absl::string_view> parts = absl::StrSplit(name, '/');
  if (parts.size() < 2 || parts[0] != "patients") {
    return InvalidField(std::string(field), "must be patients/{patient}/{collection}/{id}");
  }
  if (!IsValidId(parts[1])) {
    return InvalidField(std::string(field), "patient id must be 1-64 characters of A-Z a-z 0-9 - .");
  }
  ResourceName out;
  out.patient_id = std::string(parts[1]);
  if (parts.size() == 2) {  // the Patient itself
    out.kind = storage::PATIENT;
    out.id = out.patient_id;
    return out;
  }
  if (parts.size() == 3 && parts[2] == "priorities") {
    out.kind = storage::PRIORITIES;
    out.id = std::string(kPrioritiesId);
    return out;
  }
  if (parts.size() != 4) return InvalidField(std::string(field), "must be patients/{patient}/{collection}/{id}");
  if (parts[2] == "whatMatters") {
    out.kind = storage::WHAT_MATTERS;
  } else if (parts[2] == "goals") {
    out.kind = storage::GOAL;
  } else if (parts[2] == "preferences") {
    out.kind = storage::PREFERENCE;
  } else if (parts[2] == "goalScores") {
    out.kind = storage::GOAL_SCORE;
  } else {
    return InvalidField(std::string(field),
                        "unknown collection (whatMatters, goals, preferences, goalScores, priorities)");
  }
  if (!IsValidId(parts[3])) return InvalidField(std::string(field), "id must be 1-64 characters of A-Z a-z 0-9 - .");
  out.id = std::string(parts[3]);
  return out;
}

absl::StatusOr<ResourceName> ParseNameOfKind(absl::string_view name, storage::Kind kind, absl::string_view field) {
  auto parsed = ParseName(name, field);
  if (!parsed.ok()) return parsed.status();
  if (parsed->kind != kind) {
    return InvalidField(std::string(field), kind == storage::PRIORITIES ? "must be patients/{patient}/priorities"
                                            : kind == storage::PATIENT  ? "must be patients/{patient}"
                                                                        : absl::StrCat("must be patients/{patient}/",
                                                                                       CollectionOf(kind), "/{id}"));
  }
  return parsed;
}

}  // namespace wmty::domain
