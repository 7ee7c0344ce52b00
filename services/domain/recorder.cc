#include "domain/recorder.h"

#include <optional>

#include "absl/strings/str_cat.h"
#include "domain/names.h"
#include "domain/validation.h"

namespace wmty::domain {
namespace {

// The id of a "Practitioner/<id>" reference, relative or absolute (a
// version suffix "/_history/n" is ignored), or nullopt.
std::optional<std::string> PractitionerIdOf(absl::string_view reference) {
  const size_t pos = reference.rfind("Practitioner/");
  if (pos == absl::string_view::npos || (pos > 0 && reference[pos - 1] != '/')) return std::nullopt;
  absl::string_view id = reference.substr(pos + 13);
  if (const size_t slash = id.find('/'); slash != absl::string_view::npos) id = id.substr(0, slash);
  if (!IsValidId(id)) return std::nullopt;
  return std::string(id);
}

// Fills `recorder` (named `field`) with the principal `id`, or adds the
// violation when the request named someone else. True when `on_behalf_of`
// (null: absent) names the principal itself and is to be dropped.
bool Resolve(const std::string& id, v1::Recorder* recorder, absl::string_view field, const v1::Recorder* on_behalf_of,
             absl::string_view on_behalf_of_field, FieldViolations* v) {
  if (!recorder->practitioner_id().empty() && recorder->practitioner_id() != id) {
    v->Add(Field(field, "practitioner_id"),
           absl::StrCat("must be empty or the authenticated caller (", id,
                        "): a write is always recorded by its caller; to record for someone else, name them in ",
                        on_behalf_of_field));
    return false;
  }
  recorder->set_practitioner_id(id);
  if (on_behalf_of == nullptr || on_behalf_of->practitioner_id() != id) return false;
  if (recorder->display_name().empty()) recorder->set_display_name(on_behalf_of->display_name());
  if (recorder->role().empty()) recorder->set_role(on_behalf_of->role());
  return true;
}

}  // namespace

absl::StatusOr<std::string> RecorderIdOf(const auth::Principal& principal) {
  if (auto id = PractitionerIdOf(principal.fhir_user); id.has_value()) return *id;
  if (IsValidId(principal.subject)) return principal.subject;
  if (auto id = PractitionerIdOf(principal.subject); id.has_value()) return *id;
  return absl::PermissionDeniedError(
      "the token does not say who records this write: writes need a token whose fhirUser is Practitioner/<id> "
      "or whose sub is a FHIR id (1-64 of A-Z a-z 0-9 - .)");
}

absl::Status ApplyRecorderRule(const auth::Principal* principal, absl::string_view prefix, v1::Provenance* p,
                               FieldViolations* v) {
  if (principal == nullptr) return absl::OkStatus();
  auto id = RecorderIdOf(*principal);
  if (!id.ok()) return id.status();
  const std::string on_behalf_of_field = Field(prefix, "on_behalf_of");
  if (Resolve(*id, p->mutable_recorded_by(), Field(prefix, "recorded_by"),
              p->has_on_behalf_of() ? &p->on_behalf_of() : nullptr, on_behalf_of_field, v)) {
    p->clear_on_behalf_of();
  }
  return absl::OkStatus();
}

absl::Status ApplyRecorderRule(const auth::Principal* principal, v1::RetractRequest* req, FieldViolations* v) {
  if (principal == nullptr) return absl::OkStatus();
  auto id = RecorderIdOf(*principal);
  if (!id.ok()) return id.status();
  if (Resolve(*id, req->mutable_retracted_by(), "retracted_by",
              req->has_on_behalf_of() ? &req->on_behalf_of() : nullptr, "on_behalf_of", v)) {
    req->clear_on_behalf_of();
  }
  return absl::OkStatus();
}

}  // namespace wmty::domain
