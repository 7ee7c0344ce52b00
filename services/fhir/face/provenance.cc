// Provenance of the FHIR face: read by id (one per stored version) and
// search by target, each following its target's permission.

#include <algorithm>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "domain/names.h"
#include "fhir/face/access.h"
#include "fhir/face/bundle.h"
#include "fhir/face/resource_types.h"
#include "fhir/face/service.h"

namespace wmty::fhir::face {

void FhirService::ReadProvenance(const CallPtr& c, absl::string_view id) {
  if (!MayOnSomeChartType(*c, auth::kRead)) return;
  uint64_t sequence = 0;
  const bool well_formed = id.size() >= 2 && id.size() <= 21 && id[0] == 's' &&
                           std::all_of(id.begin() + 1, id.end(), [](char ch) { return ch >= '0' && ch <= '9'; }) &&
                           absl::SimpleAtoi(id.substr(1), &sequence) && sequence > 0;
  std::optional<Record> record;
  if (well_formed) {
    auto r = core_->FindByChange(sequence);
    if (!r.ok()) return ReplyError(*c, FromStatus(r.status(), storage::KIND_UNSPECIFIED));
    record = std::move(*r);
  }
  const RestError unknown = UnknownId("Provenance", id);
  if (!record.has_value()) return ReplyError(*c, unknown);
  AuditTarget(*c, record->patient_id(), id);
  // A Provenance is read with its target's permission; anything short of
  // that looks like an unknown id (which target type it is stays hidden).
  if (c->principal.has_value() && auth::Authorize(*c->principal, FhirTypeOf(record->kind()), auth::kRead,
                                                  record->patient_id()) != auth::Decision::kAllow) {
    return ReplyError(*c, unknown);
  }
  Document d;
  d.SetObject();
  if (auto s = ProvenanceOf(*record, &d, d.GetAllocator()); !s.ok())
    return ReplyError(*c, FromStatus(s, record->kind()));
  ReplyJson(*c, http::Status::ok, d, {{bhttp::field::last_modified, HttpDate(record->update_time_micros())}});
}

// A Provenance follows its target: does any scope grant `p` on Goal,
// Observation or List? 403 (false, answered) otherwise.
bool FhirService::MayOnSomeChartType(Call& c, auth::Permission p) {
  for (absl::string_view type : domain::kChartTypes) {
    if (MayAtAll(c, type, p)) return true;
  }
  return AuthorizeType(c, "Goal, Observation or List", p);
}

// Provenance?target=...: the Provenance of every version of each target (or
// of the version a versioned reference names), in the order the targets were
// given, oldest version first.
void FhirService::SearchProvenance(const CallPtr& c, const SearchSpec& spec) {
  std::vector<const Criterion*> targets;
  for (const Criterion& cr : spec.criteria) targets.push_back(&cr);
  const bool impossible = spec.ids.has_value();  // every target value had an unusable type
  if (targets.empty() && !impossible) {
    return ReplyError(
        *c,
        Bad("required", "Provenance search needs target=Goal/<id>, Observation/<id>, List/<patient id> or Patient/<id>",
            "target"));
  }
  // s on each target type named (403 when no scope grants it), and on one
  // of the chart types at all; targets of another patient are left out.
  for (const Criterion* cr : targets) {
    for (const ReferenceValue& ref : cr->refs) {
      if (!ref.type.empty() && !AuthorizeType(*c, ref.type, auth::kSearch)) return;
    }
  }
  if (!MayOnSomeChartType(*c, auth::kSearch)) return;
  ProvenancePage page;
  page.query_hash = domain::Sha256(CanonicalQuery(spec));
  if (!spec.page_token.empty()) {
    auto cursor = core_->page_tokens().Decode(spec.page_token, page.query_hash, "_page_token");
    if (!cursor.ok()) return ReplyError(*c, BadPageToken());
    if (!absl::SimpleAtoi(cursor->after_id(), &page.after_index)) return ReplyError(*c, BadPageToken());
    page.after_version = cursor->after_version();
  }
  if (!impossible) {
    if (auto s = FindProvenanceVersions(*c, spec, targets, &page); !s.ok()) {
      return ReplyError(*c, FromStatus(s, storage::KIND_UNSPECIFIED));
    }
  }
  ReplyProvenanceBundle(*c, spec, page);
}

// Versions of the first criterion's targets, in the order given, that every
// other target criterion names too; the caller's patient scopes decide which
// targets are visible (another patient's: as if unknown).
absl::Status FhirService::FindProvenanceVersions(Call& c, const SearchSpec& spec,
                                                 const std::vector<const Criterion*>& targets, ProvenancePage* page) {
  auto names = [&](const Criterion& cr, const Record& r) {
    return std::any_of(cr.refs.begin(), cr.refs.end(), [&](const ReferenceValue& ref) {
      return (ref.type.empty() || ref.type == FhirTypeOf(r.kind())) && ref.id == FhirId(r) &&
             (ref.version.empty() || ref.version == std::to_string(r.version()));
    });
  };
  const size_t need = spec.count_only ? SIZE_MAX : static_cast<size_t>(spec.count) + 1;
  const std::vector<ReferenceValue>& refs = targets[0]->refs;
  for (size_t i = 0; i < refs.size() && page->found.size() < need; ++i) {
    const ReferenceValue& ref = refs[i];
    if (static_cast<int64_t>(i) < page->after_index) continue;
    for (absl::string_view type : domain::kStoredTypes) {
      if (!ref.type.empty() && ref.type != type) continue;
      if (!MayAtAll(c, type, auth::kSearch)) continue;
      auto current = FindCurrent(type, ref.id);
      if (!current.ok()) return current.status();
      if (!current->has_value()) continue;
      const Record& cur = **current;
      if (c.principal.has_value() &&
          auth::Authorize(*c.principal, type, auth::kSearch, cur.patient_id()) != auth::Decision::kAllow) {
        continue;  // another patient's: as if unknown
      }
      const int64_t from = static_cast<int64_t>(i) == page->after_index ? page->after_version : 0;
      auto s = core_->ScanStoredVersions(cur.kind(), cur.patient_id(), cur.id(), from, [&](const Record& r) {
        if (!std::all_of(targets.begin(), targets.end(), [&](const Criterion* cr) { return names(*cr, r); })) {
          return true;
        }
        ++page->total;
        if (!spec.count_only) page->found.emplace_back(static_cast<int64_t>(i), r);
        return page->found.size() < need;
      });
      if (!s.ok()) return s;
    }
  }
  return absl::OkStatus();
}

// The searchset: the total only (_summary=count), or one page of Provenance
// with a next link whose cursor is (target index, version).
void FhirService::ReplyProvenanceBundle(Call& c, const SearchSpec& spec, ProvenancePage& page) {
  Document d;
  StartBundle(d, "searchset");
  Alloc& a = d.GetAllocator();
  Value links(rapidjson::kArrayType), entries(rapidjson::kArrayType);
  const std::string self = absl::StrCat(c.base, "/Provenance");
  AddLink(&links, "self", absl::StrCat(self, "?", FormatQuery(spec.applied)), a);
  if (spec.count_only) {
    d.AddMember("total", page.total, a);
    d.AddMember("link", links, a);
    return ReplyJson(c, http::Status::ok, d);
  }
  if (page.found.size() > static_cast<size_t>(spec.count)) {
    page.found.resize(spec.count);
    storage::PageCursor next;
    next.set_query_hash(page.query_hash);
    next.set_after_id(std::to_string(page.found.back().first));
    next.set_after_version(page.found.back().second.version());
    std::vector<QueryParam> next_params;
    for (const auto& p : spec.applied) {
      if (p.name != "_count") next_params.push_back(p);
    }
    next_params.push_back({"_count", std::to_string(spec.count)});
    next_params.push_back({"_page_token", core_->page_tokens().Encode(next)});
    AddLink(&links, "next", absl::StrCat(self, "?", FormatQuery(next_params)), a);
  }
  for (const auto& [index, r] : page.found) {
    Value prov(rapidjson::kObjectType);
    if (auto s = ProvenanceOf(r, &prov, a); !s.ok()) return ReplyError(c, FromStatus(s, r.kind()));
    Value entry(rapidjson::kObjectType);
    entry.AddMember("fullUrl", Str(absl::StrCat(c.base, "/Provenance/", ProvenanceId(r)), a), a);
    entry.AddMember("resource", prov, a);
    Value search(rapidjson::kObjectType);
    search.AddMember("mode", "match", a);
    entry.AddMember("search", search, a);
    entries.PushBack(entry, a);
  }
  d.AddMember("link", links, a);
  if (!entries.Empty()) d.AddMember("entry", entries, a);  // FHIR JSON has no empty arrays
  ReplyJson(c, http::Status::ok, d);
}

}  // namespace wmty::fhir::face
