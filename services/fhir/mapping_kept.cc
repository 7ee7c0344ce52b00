// ============================================================================
// 3. What survives a round trip: extra_json
// ============================================================================
// Mapped elements are handled in groups: an element together with its
// primitive-extension sibling and its other choice types ("startDate",
// "_startDate", "startCodeableConcept" are one group; "entry" and
// "emptyReason" are one group). On input:
//   * first, every member name, at the top and inside every element below it,
//     is checked against FHIR R4 (elements.h: the element tables of Goal,
//     Observation, List, a contained RelatedPerson or Practitioner, and the
//     datatypes inside them). One R4 does not define ("foo", "subject.foo",
//     "component[0].bar") is refused with its path (UnknownElementPolicy
//     kRefuse, the default), or dropped before mapping (kDrop, wmtyd's
//     --fhir_unknown_elements=drop): it is never kept, so never served;
//   * a member that belongs to no group (extension, identifier, basedOn,
//     derivedFrom, ...) is kept verbatim in extra_json;
//   * a group is kept verbatim (all its members as given) when what we would
//     generate from the mapped model differs from what came in: extra codings,
//     extensions, a display, a text, a note's authorReference, more targets,
//     other addresses, foreign components... The rule is "keep the entire
//     original of every element we only partly understand";
//   * resourceType, id, meta and text are never kept; modifierExtension and
//     implicitRules are refused (we cannot honour what they change).
// On output the model is generated, then every kept group replaces its
// generated counterpart if the kept original still maps to what the model
// holds now (checked by mapping the candidate resource back and comparing the
// generated result): first all kept groups together; when that fails, kept
// contained resources are all kept (our "speaker" regenerated) and every other
// group is checked on its own. A group changed since through the gRPC face
// (e.g. new categories) is generated from the model instead, losing that
// element's FHIR-only parts; the other groups stay as they came. Contained
// resources no longer referenced are dropped (dom-3). Members that belong to
// no group are added as they came; elements R4 does not define (kept by
// versions stored before they were refused) are left out. Output elements
// are in R4 order. JSON numbers go through RapidJSON (double), so 1.50 comes
// back as 1.5.
//
// This file owns that rule: the groups of mapped elements, what of an
// incoming resource is kept, and how kept elements are merged back.
#include <algorithm>
#include <set>
#include <utility>

#include "absl/strings/match.h"
#include "absl/strings/strip.h"
#include "fhir/mapping_internal.h"

namespace wmty::fhir::internal {

namespace {

struct Group {
  absl::string_view name;
  std::vector<absl::string_view> members;
};

const std::vector<Group>& GoalGroups() {
  static const auto* g = new std::vector<Group>{
      {"contained", {"contained"}},
      {"lifecycleStatus", {"lifecycleStatus", "_lifecycleStatus"}},
      {"achievementStatus", {"achievementStatus"}},
      {"category", {"category"}},
      {"priority", {"priority"}},
      {"description", {"description"}},
      {"subject", {"subject"}},
      {"start", {"startDate", "_startDate", "startCodeableConcept"}},
      {"target", {"target"}},
      {"expressedBy", {"expressedBy"}},
      {"addresses", {"addresses"}},
      {"note", {"note"}},
  };
  return *g;
}

const std::vector<Group>& ObservationGroups() {
  static const auto* g = new std::vector<Group>{
      {"contained", {"contained"}},
      {"status", {"status", "_status"}},
      {"category", {"category"}},
      {"code", {"code"}},
      {"subject", {"subject"}},
      {"focus", {"focus"}},
      {"encounter", {"encounter"}},
      {"effective",
       {"effectiveDateTime", "_effectiveDateTime", "effectivePeriod", "effectiveTiming", "effectiveInstant",
        "_effectiveInstant"}},
      {"performer", {"performer"}},
      {"value",
       {"valueQuantity", "valueCodeableConcept", "valueString", "_valueString", "valueBoolean", "_valueBoolean",
        "valueInteger", "_valueInteger", "valueRange", "valueRatio", "valueSampledData", "valueTime", "_valueTime",
        "valueDateTime", "_valueDateTime", "valuePeriod", "dataAbsentReason"}},
      {"note", {"note"}},
      {"component", {"component"}},
  };
  return *g;
}

const std::vector<Group>& ListGroups() {
  static const auto* g = new std::vector<Group>{
      {"contained", {"contained"}}, {"status", {"status", "_status"}},
      {"mode", {"mode", "_mode"}},  {"title", {"title", "_title"}},
      {"code", {"code"}},           {"subject", {"subject"}},
      {"encounter", {"encounter"}}, {"source", {"source"}},
      {"orderedBy", {"orderedBy"}}, {"entry", {"entry", "emptyReason"}},
  };
  return *g;
}

const std::vector<Group>& GroupsFor(storage::Kind kind) {
  switch (kind) {
    case storage::GOAL:
      return GoalGroups();
    case storage::PRIORITIES:
      return ListGroups();
    default:
      return ObservationGroups();
  }
}

const Group* GroupOf(storage::Kind kind, absl::string_view member) {
  for (const Group& g : GroupsFor(kind)) {
    for (absl::string_view m : g.members) {
      if (m == member) return &g;
    }
  }
  return nullptr;
}

bool IsHeader(absl::string_view name) {
  return name == "resourceType" || name == "id" || name == "meta" || name == "text";
}

// The members of group `g` present in object `o`, as an object (copied).
Value GroupValue(const Value& o, const Group& g, json::Allocator& alloc) {
  Value out(rapidjson::kObjectType);
  for (absl::string_view m : g.members) {
    if (const Value* v = Member(o, m)) out.AddMember(Str(m, alloc), Value(*v, alloc), alloc);
  }
  return out;
}

// Replaces the members of group `g` in `o` with those of `with` (an object).
void ReplaceGroup(Value& o, const Group& g, const Value& with, json::Allocator& alloc) {
  for (absl::string_view m : g.members) json::Remove(o, m);
  for (auto it = with.MemberBegin(); it != with.MemberEnd(); ++it) {
    o.AddMember(Value(it->name, alloc), Value(it->value, alloc), alloc);
  }
}

// Collects every Reference.reference string starting with '#' in `v`.
void CollectLocalRefs(const Value& v, std::set<std::string>* out) {
  if (v.IsObject()) {
    for (auto it = v.MemberBegin(); it != v.MemberEnd(); ++it) {
      absl::string_view name(it->name.GetString(), it->name.GetStringLength());
      if (name == "reference" && it->value.IsString()) {
        absl::string_view ref = StringOf(it->value);
        if (absl::StartsWith(ref, "#")) out->insert(std::string(ref.substr(1)));
      } else {
        CollectLocalRefs(it->value, out);
      }
    }
  } else if (v.IsArray()) {
    for (const Value& e : v.GetArray()) CollectLocalRefs(e, out);
  }
}

// Whether `candidate` (a body) maps to a model that generates `generated`.
bool Consistent(storage::Kind kind, const Value& candidate, const Value& generated, const GenContext& ctx) {
  rapidjson::Document doc;
  auto& a = doc.GetAllocator();
  Value resource(rapidjson::kObjectType);
  const absl::string_view type = FhirTypeOf(kind);
  resource.AddMember("resourceType", Str(type, a), a);
  for (auto it = candidate.MemberBegin(); it != candidate.MemberEnd(); ++it) {
    resource.AddMember(Value(it->name, a), Value(it->value, a), a);
  }
  FieldViolations v;
  Parsed parsed = ParseResource(type, resource, &v);
  if (!v.empty() || parsed.kind != kind || parsed.patient_id != ctx.patient_id) return false;
  Value regenerated;
  GenerateBody(kind, parsed.resource, ctx, kind == storage::PRIORITIES ? &parsed.item_refs : nullptr, &regenerated, a);
  return regenerated == generated;
}

}  // namespace

Value KeptElements(storage::Kind kind, const Value& resource, const Value& generated, json::Allocator& a) {
  Value extra(rapidjson::kObjectType);
  AddUngrouped(kind, resource, &extra, a);
  for (const Group& g : GroupsFor(kind)) {
    Value original = GroupValue(resource, g, a);
    if (original.ObjectEmpty()) continue;
    if (original == GroupValue(generated, g, a)) continue;
    for (auto it = original.MemberBegin(); it != original.MemberEnd(); ++it) {
      extra.AddMember(Value(it->name, a), Value(it->value, a), a);
    }
  }
  return extra;
}

void AddUngrouped(storage::Kind kind, const Value& extra, Value* out, json::Allocator& a) {
  for (auto it = extra.MemberBegin(); it != extra.MemberEnd(); ++it) {
    absl::string_view name(it->name.GetString(), it->name.GetStringLength());
    if (IsHeader(name) || GroupOf(kind, name) != nullptr) continue;
    out->AddMember(Value(it->name, a), Value(it->value, a), a);
  }
}

void PruneContained(Value& resource) {
  Value* contained = json::MutableMember(resource, "contained");
  if (contained == nullptr) return;
  if (!contained->IsArray()) return;
  std::set<std::string> refs;
  for (auto it = resource.MemberBegin(); it != resource.MemberEnd(); ++it) {
    if (absl::string_view(it->name.GetString(), it->name.GetStringLength()) == "contained") continue;
    CollectLocalRefs(it->value, &refs);
  }
  std::vector<bool> keep(contained->Size(), false);
  bool changed = true;
  while (changed) {
    changed = false;
    for (rapidjson::SizeType i = 0; i < contained->Size(); ++i) {
      if (keep[i]) continue;
      auto id = StringMember((*contained)[i], "id");
      if (id && refs.count(std::string(*id)) > 0) {
        keep[i] = true;
        changed = true;
        CollectLocalRefs((*contained)[i], &refs);
      }
    }
  }
  for (rapidjson::SizeType i = contained->Size(); i > 0; --i) {
    if (!keep[i - 1]) contained->Erase(contained->Begin() + (i - 1));
  }
  if (contained->Empty()) json::Remove(resource, "contained");
}

void MergeKept(storage::Kind kind, const Value& generated, const Value& extra, const GenContext& ctx, Value* out,
               json::Allocator& a) {
  out->CopyFrom(generated, a);
  std::vector<const Group*> kept;
  for (const Group& g : GroupsFor(kind)) {
    for (absl::string_view m : g.members) {
      if (Member(extra, m) != nullptr) {
        kept.push_back(&g);
        break;
      }
    }
  }
  if (kept.empty()) return;
  Value all(generated, a);
  for (const Group* g : kept) ReplaceGroup(all, *g, GroupValue(extra, *g, a), a);
  if (Consistent(kind, all, generated, ctx)) {
    out->Swap(all);
    return;
  }
  // Something changed through the model. Contained resources are all kept
  // (ours, "speaker", regenerated); then each other kept group is used when,
  // with them, it still maps to the model.
  Value contained(rapidjson::kArrayType);
  if (const Value* kept_contained = Member(extra, "contained");
      kept_contained != nullptr && kept_contained->IsArray()) {
    for (const Value& r : kept_contained->GetArray()) {
      if (StringMember(r, "id").value_or("") != kSpeakerId) contained.PushBack(Value(r, a), a);
    }
  }
  if (const Value* ours = Member(generated, "contained"); ours != nullptr && ours->IsArray()) {
    for (const Value& r : ours->GetArray()) contained.PushBack(Value(r, a), a);
  }
  json::Remove(*out, "contained");
  if (!contained.Empty()) out->AddMember("contained", Value(contained, a), a);
  Value base(*out, a);
  for (const Group* g : kept) {
    if (g->name == "contained") continue;
    Value one(base, a);
    Value original = GroupValue(extra, *g, a);
    ReplaceGroup(one, *g, original, a);
    if (Consistent(kind, one, generated, ctx)) ReplaceGroup(*out, *g, original, a);
  }
}

}  // namespace wmty::fhir::internal
