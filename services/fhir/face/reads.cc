// The FHIR face's reads: read (with If-None-Match) and vread, and finding a
// stored resource or version by its FHIR id.

#include "absl/strings/ascii.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "fhir/face/access.h"
#include "fhir/face/resource_types.h"
#include "fhir/face/service.h"

namespace wmty::fhir::face {

absl::StatusOr<std::optional<Record>> FhirService::FindCurrent(absl::string_view type, absl::string_view id) {
  for (Kind kind : KindsOf(type)) {
    auto r = core_->FindCurrentById(kind, id);
    if (!r.ok() || r->has_value()) return r;
  }
  return std::optional<Record>();
}

absl::StatusOr<std::optional<Record>> FhirService::FindVersion(const Record& current, int64_t version) {
  if (version == current.version()) return std::optional<Record>(current);
  std::optional<Record> found;
  if (version < 1 || version > current.version()) return found;
  auto s =
      core_->ScanStoredVersions(current.kind(), current.patient_id(), current.id(), version - 1, [&](const Record& r) {
        if (r.version() == version) found = r;
        return false;
      });
  if (!s.ok()) return s;
  return found;
}

// The resource of a stored version as the body.

void FhirService::Read(const CallPtr& c, absl::string_view type, absl::string_view id) {
  if (!AuthorizeType(*c, type, auth::kRead)) return;
  auto current = FindCurrent(type, id);
  if (!current.ok()) return ReplyError(*c, FromStatus(current.status(), PrimaryKind(type)));
  const RestError unknown = UnknownId(type, id);
  if (!current->has_value()) return ReplyError(*c, unknown);
  const Record& r = **current;
  AuditTarget(*c, r.patient_id(), id);
  if (!Authorize(*c, type, auth::kRead, r.patient_id(), &unknown)) return;
  if (r.retracted()) {
    return ReplyError(*c,
                      MakeRestError(http::Status::gone, "deleted",
                                    absl::StrCat(type, "/", id,
                                                 " was deleted (entered in error); its history is kept "
                                                 "at [base]/",
                                                 type, "/", id, "/_history")),
                      {{bhttp::field::etag, EtagOf(r.version())}});
  }
  const absl::string_view if_none_match = c->Header(bhttp::field::if_none_match);
  if (!if_none_match.empty()) {
    for (absl::string_view tag : absl::StrSplit(if_none_match, ',')) {
      if (absl::StripAsciiWhitespace(tag) == "*" || ParseEtagVersion(tag) == r.version()) {
        return Reply(*c, http::Status::not_modified, std::nullopt, VersionHeaders(*c, type, r));
      }
    }
  }
  ReplyRecord(*c, render_cache_, http::Status::ok, type, r, VersionHeaders(*c, type, r));
}
void FhirService::VRead(const CallPtr& c, absl::string_view type, absl::string_view id, absl::string_view vid) {
  if (!AuthorizeType(*c, type, auth::kRead)) return;
  auto current = FindCurrent(type, id);
  if (!current.ok()) return ReplyError(*c, FromStatus(current.status(), PrimaryKind(type)));
  const RestError unknown = UnknownId(type, id);
  if (!current->has_value()) return ReplyError(*c, unknown);
  AuditTarget(*c, (*current)->patient_id(), id);
  if (!Authorize(*c, type, auth::kRead, (*current)->patient_id(), &unknown)) return;
  int64_t version = 0;
  if (!absl::SimpleAtoi(vid, &version) || version < 1) {
    return ReplyError(
        *c, MakeRestError(http::Status::not_found, "not-found", "no such version (versions are numbered 1, 2, ...)"));
  }
  auto record = FindVersion(**current, version);
  if (!record.ok()) return ReplyError(*c, FromStatus(record.status(), (*current)->kind()));
  if (!record->has_value()) {
    return ReplyError(*c, MakeRestError(http::Status::not_found, "not-found",
                                        absl::StrCat(type, "/", id, " has no version ", version)));
  }
  if ((*record)->retracted()) {
    return ReplyError(*c, MakeRestError(http::Status::gone, "deleted",
                                        absl::StrCat("version ", version, " of ", type, "/", id,
                                                     " is its deletion (entered in error)")));
  }
  ReplyRecord(*c, render_cache_, http::Status::ok, type, **record, VersionHeaders(*c, type, **record));
}

}  // namespace wmty::fhir::face
