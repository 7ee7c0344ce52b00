// Search execution of the FHIR face: candidates from the store (point
// lookups, per patient, or a scan), matching, key order or _sort, counting,
// paging, and the searchset with rendered resources spliced in.

#include <algorithm>
#include <tuple>

#include "absl/strings/str_cat.h"
#include "domain/names.h"
#include "fhir/face/access.h"
#include "fhir/face/bundle.h"
#include "fhir/face/resource_types.h"
#include "fhir/face/service.h"

namespace wmty::fhir::face {
namespace {

// A scratch document for matching is replaced once its arena grows past this.
constexpr size_t kScratchBytes = 1 << 20;

bool EveryRecord(const Record&) { return true; }

bool PatientIdLess(const Record& a, const Record& b) {
  if (a.patient_id() != b.patient_id()) return a.patient_id() < b.patient_id();
  if (a.id() != b.id()) return a.id() < b.id();
  return a.kind() < b.kind();
}

// The (patient, id) position a page ends at, as a cursor string.
std::string PositionOf(const Record& r) { return absl::StrCat(r.patient_id(), "/", r.id()); }
std::pair<std::string, std::string> ParsePosition(absl::string_view s) {
  const size_t slash = s.find('/');
  if (slash == absl::string_view::npos) return {std::string(s), ""};
  return {std::string(s.substr(0, slash)), std::string(s.substr(slash + 1))};
}

bool NeedsRender(const SearchSpec& spec) {
  return std::any_of(spec.criteria.begin(), spec.criteria.end(),
                     [](const Criterion& c) { return c.def->target != SearchTarget::kLastUpdated; });
}

}  // namespace

// The one patient a search is confined to ("" when none, or several).
std::string SearchPatient(const SearchSpec& spec) {
  return spec.patients.has_value() && spec.patients->size() == 1 ? spec.patients->front() : std::string();
}

absl::Status FhirService::ScanCandidates(const SearchSpec& spec, Kind kind, const std::string& after_patient,
                                         const std::string& after_id, const CallContext& ctx,
                                         absl::FunctionRef<bool(const Record&)> visit) {
  domain::RecordQuery query;
  query.kind = kind;
  query.patients = spec.patients;
  query.ids = spec.ids;  // _id: point lookups instead of a scan
  query.after_patient = after_patient;
  query.after_id = after_id;
  return core_->ScanRecords(query, ctx, visit);
}

absl::StatusOr<bool> FhirService::MatchRecord(const SearchSpec& spec, const Record& record,
                                              std::unique_ptr<Document>* scratch) {
  if (!NeedsRender(spec)) {
    static const Value kEmpty(rapidjson::kObjectType);
    return Matches(spec, kEmpty, record.update_time_micros());
  }
  if (*scratch == nullptr || (*scratch)->GetAllocator().Size() > kScratchBytes) {
    *scratch = std::make_unique<Document>();
  }
  Document& d = **scratch;
  d.SetObject();
  if (auto s = ToFhir(record, &d, d.GetAllocator()); !s.ok()) return s;
  return Matches(spec, d, record.update_time_micros());
}

absl::Status FhirService::ScanMatches(const SearchSpec& spec, Kind kind, const std::string& after_patient,
                                      const std::string& after_id, const CallContext& ctx,
                                      absl::FunctionRef<bool(const Record&)> wanted,
                                      absl::FunctionRef<bool(Hit)> visit) {
  const bool rendered = NeedsRender(spec);
  std::unique_ptr<Document> scratch;
  absl::Status inner;
  auto s = ScanCandidates(spec, kind, after_patient, after_id, ctx, [&](const Record& r) {
    if (!wanted(r)) return true;
    auto m = MatchRecord(spec, r, &scratch);
    if (!m.ok()) {
      inner = m.status();
      return false;
    }
    if (!*m) return true;
    Hit hit;
    hit.record = r;
    if (rendered) hit.doc = std::move(scratch);
    return visit(std::move(hit));
  });
  return s.ok() ? inner : s;
}

absl::Status FhirService::FindInKeyOrder(const SearchSpec& spec, const std::string& after_patient,
                                         const std::string& after_id, size_t limit, const CallContext& ctx,
                                         std::vector<Hit>* out) {
  std::vector<Hit> all;
  for (Kind kind : KindsOf(spec.resource_type)) {
    // Each kind's first `limit` matches hold the overall first `limit`.
    size_t found = 0;
    auto s = ScanMatches(spec, kind, after_patient, after_id, ctx, EveryRecord, [&](Hit hit) {
      all.push_back(std::move(hit));
      return ++found < limit;
    });
    if (!s.ok()) return s;
  }
  std::sort(all.begin(), all.end(), [](const Hit& a, const Hit& b) { return PatientIdLess(a.record, b.record); });
  if (all.size() > limit) all.resize(limit);
  *out = std::move(all);
  return absl::OkStatus();
}

absl::Status FhirService::CountMatches(const SearchSpec& spec, const CallContext& ctx, int64_t* total) {
  std::unique_ptr<Document> scratch;
  absl::Status inner;
  *total = 0;
  for (Kind kind : KindsOf(spec.resource_type)) {
    auto s = ScanCandidates(spec, kind, "", "", ctx, [&](const Record& r) {
      auto m = MatchRecord(spec, r, &scratch);
      if (!m.ok()) {
        inner = m.status();
        return false;
      }
      if (*m) ++*total;
      return true;
    });
    if (!s.ok()) return s;
    if (!inner.ok()) return inner;
  }
  return absl::OkStatus();
}

// _sort=_lastUpdated: every match has to be looked at, but only the next
// `limit` after the cursor are kept (a bounded heap), so memory stays small.
// The order is (lastUpdated, patient, id) (descending time for
// -_lastUpdated), and a next page starts strictly after the last key shown.
absl::Status FhirService::FindSorted(const SearchSpec& spec, const std::optional<storage::PageCursor>& cursor,
                                     size_t limit, const CallContext& ctx, std::vector<Hit>* out) {
  const bool ascending = spec.sort == SearchSpec::Sort::kLastUpdatedAsc;
  using Key = std::tuple<int64_t, std::string, std::string>;
  auto key_of = [&](const Record& r) {
    return Key{ascending ? r.update_time_micros() : -r.update_time_micros(), r.patient_id(), r.id()};
  };
  std::optional<Key> after;
  if (cursor.has_value()) {
    auto [patient, id] = ParsePosition(cursor->after_id());
    after = Key{ascending ? cursor->after_version() : -cursor->after_version(), patient, id};
  }
  auto less = [&](const Hit& a, const Hit& b) { return key_of(a.record) < key_of(b.record); };
  std::vector<Hit> heap;  // max-heap by key: the worst kept hit on top
  // Only a record that would be kept is matched (and rendered).
  auto would_keep = [&](const Record& r) {
    const Key key = key_of(r);
    if (after.has_value() && !(key > *after)) return false;
    return heap.size() < limit || key < key_of(heap.front().record);
  };
  for (Kind kind : KindsOf(spec.resource_type)) {
    auto s = ScanMatches(spec, kind, "", "", ctx, would_keep, [&](Hit hit) {
      if (heap.size() == limit) {
        std::pop_heap(heap.begin(), heap.end(), less);
        heap.pop_back();
      }
      heap.push_back(std::move(hit));
      std::push_heap(heap.begin(), heap.end(), less);
      return true;
    });
    if (!s.ok()) return s;
  }
  std::sort_heap(heap.begin(), heap.end(), less);
  *out = std::move(heap);
  return absl::OkStatus();
}

void FhirService::Search(const CallPtr& c, absl::string_view type, const std::vector<QueryParam>& params) {
  auto spec = ParseSearch(type, params, c->prefer.strict);
  if (!spec.ok()) return ReplyError(*c, ParamError(spec.status()));
  // patient/ scopes: patient= (or subject=) must name the token's patient.
  // A _page_token is bound to the query, patient included, so every page is
  // covered by this check. _revinclude=Provenance:target adds the Provenance
  // of the matches only, which follows their permission.
  if (!AuthorizePatient(*c, SearchPatient(*spec), "")) return;
  const std::string query_hash = domain::Sha256(CanonicalQuery(*spec));
  std::optional<storage::PageCursor> cursor;
  if (!spec->page_token.empty()) {
    auto decoded = core_->page_tokens().Decode(spec->page_token, query_hash, "_page_token");
    if (!decoded.ok()) return ReplyError(*c, BadPageToken());
    cursor = std::move(*decoded);
  }
  Document d;
  StartBundle(d, "searchset");
  Alloc& a = d.GetAllocator();
  Value links(rapidjson::kArrayType);
  const std::string self = absl::StrCat(c->base, "/", type);
  AddLink(&links, "self", spec->applied.empty() ? self : absl::StrCat(self, "?", FormatQuery(spec->applied)), a);

  if (spec->count_only) {
    int64_t total = 0;
    if (auto s = CountMatches(*spec, c->ctx, &total); !s.ok()) return ReplyError(*c, FromStatus(s, PrimaryKind(type)));
    d.AddMember("total", total, a);
    d.AddMember("link", links, a);
    return ReplyJson(*c, http::Status::ok, d);
  }

  const size_t need = static_cast<size_t>(spec->count) + 1;
  std::vector<Hit> hits;
  absl::Status s;
  if (spec->sort == SearchSpec::Sort::kNone) {
    auto [after_patient, after_id] =
        cursor.has_value() ? ParsePosition(cursor->after_id()) : std::pair<std::string, std::string>();
    s = FindInKeyOrder(*spec, after_patient, after_id, need, c->ctx, &hits);
  } else {
    s = FindSorted(*spec, cursor, need, c->ctx, &hits);
  }
  if (!s.ok()) return ReplyError(*c, FromStatus(s, PrimaryKind(type)));
  const bool more = hits.size() > static_cast<size_t>(spec->count);
  if (more) hits.resize(spec->count);
  if (more) {
    storage::PageCursor next;
    next.set_query_hash(query_hash);
    next.set_after_id(PositionOf(hits.back().record));
    next.set_after_version(hits.back().record.update_time_micros());
    std::vector<QueryParam> next_params;
    for (const auto& p : spec->applied) {
      if (p.name != "_count") next_params.push_back(p);
    }
    next_params.push_back({"_count", std::to_string(spec->count)});
    next_params.push_back({"_page_token", core_->page_tokens().Encode(next)});
    AddLink(&links, "next", absl::StrCat(self, "?", FormatQuery(next_params)), a);
  }
  std::vector<RawEntry> raw_entries;
  raw_entries.reserve(hits.size() * (spec->revinclude_provenance ? 2 : 1));
  for (Hit& hit : hits) {
    const Record& r = hit.record;
    std::shared_ptr<const std::string> json;
    if (hit.doc != nullptr) {  // rendered while matching
      json = std::make_shared<const std::string>(Serialize(*hit.doc, /*pretty=*/false));
      render_cache_.Put(r, json);
    } else {
      auto rendered = Rendered(render_cache_, r);
      if (!rendered.ok()) return ReplyError(*c, FromStatus(rendered.status(), r.kind()));
      json = std::move(*rendered);
    }
    raw_entries.push_back({absl::StrCat(c->base, "/", FhirTypeOf(r.kind()), "/", FhirId(r)), std::move(json), "match"});
    if (spec->revinclude_provenance) {
      Document prov;
      prov.SetObject();
      if (auto st = ProvenanceOf(r, &prov, prov.GetAllocator()); !st.ok()) {
        return ReplyError(*c, FromStatus(st, r.kind()));
      }
      raw_entries.push_back({absl::StrCat(c->base, "/Provenance/", ProvenanceId(r)),
                             std::make_shared<const std::string>(Serialize(prov, /*pretty=*/false)), "include"});
    }
  }
  d.AddMember("link", links, a);
  Reply(*c, http::Status::ok, SerializeBundle(d, raw_entries, c->pretty));
}

}  // namespace wmty::fhir::face
