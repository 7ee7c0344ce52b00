#include "fhir/audit_event.h"

#include <algorithm>

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_replace.h"
#include "absl/strings/str_split.h"
#include "domain/fhir_types.h"
#include "domain/names.h"
#include "fhir/rest.h"

namespace wmty::fhir {
namespace {

using rapidjson::Value;
using Alloc = rapidjson::Document::AllocatorType;

Value Str(absl::string_view s, Alloc& a) { return Value(s.data(), static_cast<rapidjson::SizeType>(s.size()), a); }

Value Coding(absl::string_view system, absl::string_view code, absl::string_view display, Alloc& a) {
  Value c(rapidjson::kObjectType);
  c.AddMember("system", Str(system, a), a);
  c.AddMember("code", Str(code, a), a);
  if (!display.empty()) c.AddMember("display", Str(display, a), a);
  return c;
}

Value Concept(Value coding, Alloc& a) {
  Value cc(rapidjson::kObjectType);
  Value codings(rapidjson::kArrayType);
  codings.PushBack(coding, a);
  cc.AddMember("coding", codings, a);
  return cc;
}

Value Reference(absl::string_view reference, Alloc& a) {
  Value r(rapidjson::kObjectType);
  r.AddMember("reference", Str(reference, a), a);
  return r;
}

constexpr absl::string_view kEntityType = "http://terminology.hl7.org/CodeSystem/audit-entity-type";
constexpr absl::string_view kObjectRole = "http://terminology.hl7.org/CodeSystem/object-role";

bool ParsePrefix(absl::string_view* v, DatePrefix* p) {
  static const std::pair<absl::string_view, DatePrefix> kPrefixes[] = {
      {"eq", DatePrefix::kEq}, {"ne", DatePrefix::kNe}, {"gt", DatePrefix::kGt}, {"lt", DatePrefix::kLt},
      {"ge", DatePrefix::kGe}, {"le", DatePrefix::kLe}, {"sa", DatePrefix::kSa}, {"eb", DatePrefix::kEb}};
  *p = DatePrefix::kEq;
  if (v->size() < 2 || !absl::ascii_isalpha(static_cast<unsigned char>((*v)[0]))) return true;
  for (const auto& [name, prefix] : kPrefixes) {
    if (absl::StartsWith(*v, name)) {
      *p = prefix;
      v->remove_prefix(2);
      return true;
    }
  }
  return false;
}

}  // namespace

std::string AuditEventId(uint64_t sequence) { return absl::StrCat("a", sequence); }

uint64_t AuditSequenceOf(absl::string_view id) {
  uint64_t s = 0;
  if (id.size() < 2 || id.size() > 21 || id[0] != 'a') return 0;
  for (char ch : id.substr(1)) {
    if (ch < '0' || ch > '9') return 0;
  }
  if (!absl::SimpleAtoi(id.substr(1), &s)) return 0;
  return s;
}

absl::string_view RestfulInteractionOf(absl::string_view i) {
  if (i == "read" || i == "vread" || i == "create" || i == "update" || i == "delete" || i == "history-instance" ||
      i == "history-type") {
    return i;
  }
  if (i == "search") return "search-type";
  if (i == "history") return "history-instance";
  if (i == "summary" || i == "everything") return "operation";
  return "";
}

bool IsAuditedType(absl::string_view type) {
  return domain::IsStoredType(type) || type == "Provenance" || type == "AuditEvent" || type == "Subscription";
}

std::string PeerAddress(absl::string_view remote) {
  std::string r = absl::StrReplaceAll(remote, {{"%5B", "["}, {"%5D", "]"}, {"%5b", "["}, {"%5d", "]"}});
  absl::string_view v = r;
  if (absl::ConsumePrefix(&v, "ipv4:") || absl::ConsumePrefix(&v, "ipv6:")) {
  }
  if (absl::StartsWith(v, "[")) {
    const size_t close = v.find(']');
    if (close != absl::string_view::npos) return std::string(v.substr(1, close - 1));
    return std::string(v);
  }
  // host:port (an IPv6 address without brackets has several colons: keep it).
  if (std::count(v.begin(), v.end(), ':') == 1) v = v.substr(0, v.find(':'));
  return std::string(v);
}

void BuildAuditEvent(const storage::AuditRecord& rec, Value* out, Alloc& a) {
  out->SetObject();
  out->AddMember("resourceType", "AuditEvent", a);
  out->AddMember("id", Str(AuditEventId(rec.sequence()), a), a);
  out->AddMember("type",
                 Coding("http://terminology.hl7.org/CodeSystem/audit-event-type", "rest", "RESTful Operation", a), a);
  if (absl::string_view sub = RestfulInteractionOf(rec.interaction()); !sub.empty()) {
    Value subtype(rapidjson::kArrayType);
    subtype.PushBack(Coding("http://hl7.org/fhir/restful-interaction", sub, "", a), a);
    out->AddMember("subtype", subtype, a);
  }
  if (rec.action().size() == 1 && absl::StrContains("CRUDE", rec.action())) {
    out->AddMember("action", Str(rec.action(), a), a);
  }
  out->AddMember("recorded", Str(FhirInstant(rec.time_micros()), a), a);
  const int o = rec.outcome();
  out->AddMember("outcome", Str(o == 0 || o == 4 || o == 8 || o == 12 ? std::to_string(o) : "8", a), a);
  if (!rec.outcome_detail().empty()) {
    out->AddMember("outcomeDesc",
                   Str(absl::StrCat(rec.outcome_detail(), " (", rec.source(), " ", rec.interaction(), ")"), a), a);
  }

  Value agents(rapidjson::kArrayType);
  {
    Value agent(rapidjson::kObjectType);
    agent.AddMember(
        "type",
        Concept(Coding("http://terminology.hl7.org/CodeSystem/extra-security-role-type", "humanuser", "human user", a),
                a),
        a);
    Value who(rapidjson::kObjectType);
    if (!rec.agent().empty()) {
      Value identifier(rapidjson::kObjectType);
      identifier.AddMember("value", Str(rec.agent(), a), a);
      who.AddMember("identifier", identifier, a);
    } else {
      who.AddMember("display", "anonymous (no verified access token)", a);
    }
    agent.AddMember("who", who, a);
    agent.AddMember("requestor", true, a);
    if (!rec.remote().empty()) {
      const std::string address = PeerAddress(rec.remote());
      if (!address.empty()) {
        Value network(rapidjson::kObjectType);
        network.AddMember("address", Str(address, a), a);
        network.AddMember("type", "2", a);  // IP address
        agent.AddMember("network", network, a);
      }
    }
    agents.PushBack(agent, a);
  }
  if (!rec.client_id().empty()) {
    Value app(rapidjson::kObjectType);
    app.AddMember("type",
                  Concept(Coding("http://dicom.nema.org/resources/ontology/DCM", "110150", "Application", a), a), a);
    Value who(rapidjson::kObjectType);
    Value identifier(rapidjson::kObjectType);
    identifier.AddMember("value", Str(rec.client_id(), a), a);
    who.AddMember("identifier", identifier, a);
    app.AddMember("who", who, a);
    app.AddMember("requestor", false, a);
    agents.PushBack(app, a);
  }
  out->AddMember("agent", agents, a);

  Value source(rapidjson::kObjectType);
  source.AddMember("site", Str(rec.source() == "grpc" ? "wmty gRPC API" : "wmty FHIR API", a), a);
  Value observer(rapidjson::kObjectType);
  observer.AddMember("display", "wmty", a);
  source.AddMember("observer", observer, a);
  Value source_type(rapidjson::kArrayType);
  source_type.PushBack(
      Coding("http://terminology.hl7.org/CodeSystem/security-source-type", "4", "Application Server", a), a);
  source.AddMember("type", source_type, a);
  out->AddMember("source", source, a);

  Value entities(rapidjson::kArrayType);
  if (!rec.patient_id().empty() && domain::IsValidId(rec.patient_id())) {
    Value e(rapidjson::kObjectType);
    e.AddMember("what", Reference(absl::StrCat("Patient/", rec.patient_id()), a), a);
    e.AddMember("type", Coding(kEntityType, "1", "Person", a), a);
    e.AddMember("role", Coding(kObjectRole, "1", "Patient", a), a);
    entities.PushBack(e, a);
  }
  const bool same_as_patient = rec.resource_type() == "Patient" && rec.resource_id() == rec.patient_id();
  if (!rec.resource_id().empty() && IsAuditedType(rec.resource_type()) && !same_as_patient) {
    Value e(rapidjson::kObjectType);
    e.AddMember("what", Reference(absl::StrCat(rec.resource_type(), "/", rec.resource_id()), a), a);
    e.AddMember("type", Coding(kEntityType, "2", "System Object", a), a);
    e.AddMember("role", Coding(kObjectRole, "4", "Domain Resource", a), a);
    entities.PushBack(e, a);
  } else if (rec.resource_id().empty() && IsAuditedType(rec.resource_type()) && rec.resource_type() != "Patient") {
    // A type-level interaction (search, create refused before an id): the type.
    Value e(rapidjson::kObjectType);
    Value what(rapidjson::kObjectType);
    what.AddMember("display", Str(rec.resource_type(), a), a);
    e.AddMember("what", what, a);
    e.AddMember("type", Coding(kEntityType, "2", "System Object", a), a);
    e.AddMember("role", Coding(kObjectRole, "4", "Domain Resource", a), a);
    entities.PushBack(e, a);
  }
  if (!entities.Empty()) out->AddMember("entity", entities, a);
}

absl::StatusOr<AuditQuery> ParseAuditQuery(const std::vector<QueryParam>& params, bool strict) {
  AuditQuery q;
  std::vector<std::string> canonical;
  for (const QueryParam& p : params) {
    const absl::string_view name = p.name;
    const absl::string_view value = p.value;
    if (name == "_format" || name == "_pretty") continue;
    if (name == "_page_token") {
      q.page_token = p.value;
      continue;
    }
    if (name == "_count") {
      int n = 0;
      if (!absl::SimpleAtoi(value, &n) || n < 0) {
        return absl::InvalidArgumentError("_count must be a non-negative integer");
      }
      q.count = std::clamp(n, 1, 1000);
      q.link_params.push_back(p);
      continue;
    }
    if (name == "patient") {
      absl::string_view id = value;
      absl::ConsumePrefix(&id, "Patient/");
      if (!domain::IsValidId(id)) return absl::InvalidArgumentError("patient must be a patient id or Patient/<id>");
      if (!q.patient.empty() && q.patient != id) {
        return absl::InvalidArgumentError("patient may be given once");
      }
      q.patient = std::string(id);
    } else if (name == "agent") {
      for (absl::string_view v : absl::StrSplit(value, ',', absl::SkipEmpty())) q.agents.emplace_back(v);
      if (q.agents.empty()) return absl::InvalidArgumentError("agent needs a value");
    } else if (name == "date") {
      absl::string_view v = value;
      DateValue d;
      if (!ParsePrefix(&v, &d.prefix))
        return absl::InvalidArgumentError("date: unknown prefix (eq, ge, le, gt, lt, ...)");
      auto range = ParseFhirDateRange(v);
      if (!range.has_value()) return absl::InvalidArgumentError("date must be a FHIR date, dateTime or instant");
      d.range = *range;
      q.dates.push_back(d);
    } else if (name == "action") {
      for (absl::string_view v : absl::StrSplit(value, ',', absl::SkipEmpty())) {
        if (v.size() != 1 || !absl::StrContains("CRUDE", v)) {
          return absl::InvalidArgumentError("action must be C, R, U, D or E");
        }
        q.actions.emplace_back(v);
      }
      if (q.actions.empty()) return absl::InvalidArgumentError("action needs a value");
    } else {
      if (strict) {
        return absl::UnimplementedError(absl::StrCat(
            "AuditEvent search supports patient, agent, date, action and _count, not ", name.substr(0, 64)));
      }
      continue;
    }
    q.link_params.push_back(p);
    canonical.push_back(absl::StrCat(name, "=", value));
  }
  q.canonical = absl::StrCat("audit\n", absl::StrJoin(canonical, "\n"));
  return q;
}

bool AuditMatches(const AuditQuery& q, const storage::AuditRecord& r) {
  if (!q.patient.empty() && r.patient_id() != q.patient) return false;
  if (!q.agents.empty() && std::none_of(q.agents.begin(), q.agents.end(),
                                        [&](const std::string& a) { return a == r.agent() || a == r.client_id(); })) {
    return false;
  }
  if (!q.actions.empty() && std::find(q.actions.begin(), q.actions.end(), r.action()) == q.actions.end()) return false;
  const DateRange t{r.time_micros(), r.time_micros() + 1};
  for (const DateValue& d : q.dates) {
    if (!DateMatches(d, t)) return false;
  }
  return true;
}

}  // namespace wmty::fhir
