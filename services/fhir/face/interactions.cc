// The FHIR face's registration point (see interactions.h): each row is one
// interaction, its path pattern, its access and its handler.

#include "fhir/face/interactions.h"

#include "fhir/face/service.h"

namespace wmty::fhir::face {
namespace {

using bhttp::verb;
constexpr auth::Permission kC = auth::kCreate, kR = auth::kRead, kU = auth::kUpdate, kD = auth::kDelete,
                           kS = auth::kSearch;

constexpr Access kPublic{};
// Reads of one stored resource: another patient's looks unknown.
constexpr Access kReadStored{"", kR, PatientFrom::kStored, OtherPatient::kUnknown, "R"};
constexpr Access kSearchQuery{"", kS, PatientFrom::kQuery, OtherPatient::kForbidden, "E"};

}  // namespace

const std::vector<Interaction>& Interactions() {
  using S = FhirService;
  // GET, or POST _search with a form body.
  auto search = [](S& s, const CallPtr& c, const RouteArgs& a) {
    std::vector<QueryParam> params;
    if (s.SearchParamsOf(*c, &params)) s.Search(c, a.type, params);
  };
  auto search_provenance = [](S& s, const CallPtr& c, const RouteArgs&) {
    std::vector<QueryParam> params;
    if (!s.SearchParamsOf(*c, &params)) return;
    auto spec = ParseSearch("Provenance", params, c->prefer.strict);
    if (!spec.ok()) return ReplyError(*c, ParamError(spec.status()));
    s.SearchProvenance(c, *spec);
  };
  static const std::vector<Interaction> kTable = {
      // Public: no token, no audit.
      {verb::get, "metadata", "capabilities", kPublic, [](S& s, const CallPtr& c, const RouteArgs&) { s.Metadata(c); }},
      {verb::get, "CodeSystem", "search", kPublic,
       [](S& s, const CallPtr& c, const RouteArgs&) { s.SearchCodeSystem(c); }},
      {verb::get, "CodeSystem/{id}", "read", kPublic,
       [](S& s, const CallPtr& c, const RouteArgs& a) { s.ReadCodeSystem(c, a.id); }},

      // Operations.
      {verb::get,
       "Patient/{id}/$everything",
       "everything",
       {"Patient", kR, PatientFrom::kHandler, OtherPatient::kForbidden, "R"},
       [](S& s, const CallPtr& c, const RouteArgs& a) { s.Everything(c, a.id); }},

      // Subscription notifications (Backport IG): whoever may see the
      // subscription (domain::Subscriptions: its owner, or system/ scopes).
      {verb::get,
       "Subscription/{id}/$status",
       "status",
       {"Subscription", kR, PatientFrom::kHandler, OtherPatient::kUnknown, "R"},
       [](S& s, const CallPtr& c, const RouteArgs& a) { s.SubscriptionStatus(c, a.id); }},
      {verb::post,
       "Subscription/{id}/$status",
       "status",
       {"Subscription", kR, PatientFrom::kHandler, OtherPatient::kUnknown, "R"},
       [](S& s, const CallPtr& c, const RouteArgs& a) { s.SubscriptionStatus(c, a.id); }},
      {verb::get,
       "Subscription/{id}/$events",
       "events",
       {"Subscription", kR, PatientFrom::kHandler, OtherPatient::kUnknown, "R"},
       [](S& s, const CallPtr& c, const RouteArgs& a) { s.SubscriptionEventsQuery(c, a.id); }},
      {verb::post,
       "Subscription/{id}/$events",
       "events",
       {"Subscription", kR, PatientFrom::kHandler, OtherPatient::kUnknown, "R"},
       [](S& s, const CallPtr& c, const RouteArgs& a) { s.SubscriptionEventsQuery(c, a.id); }},

      // Provenance: read-only, each following its target's permission.
      {verb::get,
       "Provenance",
       "search",
       {"Provenance", kS, PatientFrom::kHandler, OtherPatient::kLeftOut, "E"},
       search_provenance},
      {verb::get,
       "Provenance/_search",
       "search",
       {"Provenance", kS, PatientFrom::kHandler, OtherPatient::kLeftOut, "E"},
       search_provenance},
      {verb::post,
       "Provenance/_search",
       "search",
       {"Provenance", kS, PatientFrom::kHandler, OtherPatient::kLeftOut, "E"},
       search_provenance},
      {verb::get,
       "Provenance/{id}",
       "read",
       {"Provenance", kR, PatientFrom::kHandler, OtherPatient::kUnknown, "R"},
       [](S& s, const CallPtr& c, const RouteArgs& a) { s.ReadProvenance(c, a.id); }},

      // The audit trail: read-only through every API; AuditEvent scopes only.
      {verb::get,
       "AuditEvent",
       "search",
       {"AuditEvent", kS, PatientFrom::kHandler, OtherPatient::kForbidden, "E"},
       [](S& s, const CallPtr& c, const RouteArgs&) { s.SearchAuditEvent(c); }},
      {verb::get,
       "AuditEvent/_search",
       "search",
       {"AuditEvent", kS, PatientFrom::kHandler, OtherPatient::kForbidden, "E"},
       [](S& s, const CallPtr& c, const RouteArgs&) { s.SearchAuditEvent(c); }},
      {verb::get,
       "AuditEvent/{id}",
       "read",
       {"AuditEvent", kR, PatientFrom::kHandler, OtherPatient::kUnknown, "R"},
       [](S& s, const CallPtr& c, const RouteArgs& a) { s.ReadAuditEvent(c, a.id); }},

      // A Patient's id is the EHR's, and its records are corrected, never deleted.
      {verb::post,
       "Patient",
       "create",
       {"Patient", kC, PatientFrom::kBody, OtherPatient::kForbidden, "C"},
       nullptr,
       "a Patient's id is the EHR's patient id: send PUT [base]/Patient/<that id>"},
      {verb::delete_,
       "Patient/{id}",
       "delete",
       {"Patient", kD, PatientFrom::kStored, OtherPatient::kForbidden, "D"},
       nullptr,
       "Patient records come from the hospital's systems and are not deleted here: PUT a corrected version"},
      {verb::put,
       "Patient/{id}",
       "update",
       {"Patient", kU, PatientFrom::kPath, OtherPatient::kForbidden, "U"},
       [](S& s, const CallPtr& c, const RouteArgs& a) { s.UpdatePatient(c, a.id); }},
      {verb::delete_,
       "List/{id}",
       "delete",
       {"List", kD, PatientFrom::kStored, OtherPatient::kForbidden, "D"},
       nullptr,
       "a patient's priorities List cannot be deleted: PUT it with no entries to clear it"},

      // Subscription (Backport IG): the Subscription scope here, the owner
      // rule in domain::Subscriptions (another's looks unknown).
      {verb::post,
       "Subscription",
       "create",
       {"Subscription", kC, PatientFrom::kHandler, OtherPatient::kForbidden, "C"},
       [](S& s, const CallPtr& c, const RouteArgs&) { s.CreateSubscription(c); }},
      {verb::get,
       "Subscription",
       "search",
       {"Subscription", kS, PatientFrom::kHandler, OtherPatient::kLeftOut, "E"},
       [](S& s, const CallPtr& c, const RouteArgs&) { s.SearchSubscription(c); }},
      {verb::get,
       "Subscription/_search",
       "search",
       {"Subscription", kS, PatientFrom::kHandler, OtherPatient::kLeftOut, "E"},
       [](S& s, const CallPtr& c, const RouteArgs&) { s.SearchSubscription(c); }},
      {verb::post,
       "Subscription/_search",
       "search",
       {"Subscription", kS, PatientFrom::kHandler, OtherPatient::kLeftOut, "E"},
       [](S& s, const CallPtr& c, const RouteArgs&) { s.SearchSubscription(c); }},
      {verb::get,
       "Subscription/{id}",
       "read",
       {"Subscription", kR, PatientFrom::kHandler, OtherPatient::kUnknown, "R"},
       [](S& s, const CallPtr& c, const RouteArgs& a) { s.ReadSubscription(c, a.id, ""); }},
      {verb::put,
       "Subscription/{id}",
       "update",
       {"Subscription", kU, PatientFrom::kHandler, OtherPatient::kUnknown, "U"},
       [](S& s, const CallPtr& c, const RouteArgs& a) { s.UpdateSubscription(c, a.id); }},
      {verb::delete_,
       "Subscription/{id}",
       "delete",
       {"Subscription", kD, PatientFrom::kHandler, OtherPatient::kUnknown, "D"},
       [](S& s, const CallPtr& c, const RouteArgs& a) { s.DeleteSubscription(c, a.id); }},
      {verb::get,
       "Subscription/{id}/_history",
       "history-instance",
       {"Subscription", kR, PatientFrom::kHandler, OtherPatient::kUnknown, "R"},
       [](S& s, const CallPtr& c, const RouteArgs& a) { s.SubscriptionHistory(c, a.id); }},
      {verb::get,
       "Subscription/{id}/_history/{vid}",
       "vread",
       {"Subscription", kR, PatientFrom::kHandler, OtherPatient::kUnknown, "R"},
       [](S& s, const CallPtr& c, const RouteArgs& a) { s.ReadSubscription(c, a.id, a.vid); }},

      // The stored types: Goal, Observation, List, Patient.
      {verb::get, "{type}", "search", kSearchQuery, search},
      {verb::post,
       "{type}",
       "create",
       {"", kC, PatientFrom::kBody, OtherPatient::kForbidden, "C"},
       [](S& s, const CallPtr& c, const RouteArgs& a) { s.Create(c, a.type); }},
      {verb::get, "{type}/_search", "search", kSearchQuery, search},
      {verb::post, "{type}/_search", "search", kSearchQuery, search},
      {verb::get,
       "{type}/_history",
       "history-type",
       {"", kS, PatientFrom::kAllPatients, OtherPatient::kForbidden, "R"},
       [](S& s, const CallPtr& c, const RouteArgs& a) { s.TypeHistory(c, a.type); }},
      {verb::get, "{type}/{id}", "read", kReadStored,
       [](S& s, const CallPtr& c, const RouteArgs& a) { s.Read(c, a.type, a.id); }},
      {verb::put,
       "{type}/{id}",
       "update",
       {"", kU, PatientFrom::kBody, OtherPatient::kForbidden, "U"},
       [](S& s, const CallPtr& c, const RouteArgs& a) { s.Update(c, a.type, a.id); }},
      {verb::delete_,
       "{type}/{id}",
       "delete",
       {"", kD, PatientFrom::kStored, OtherPatient::kForbidden, "D"},
       [](S& s, const CallPtr& c, const RouteArgs& a) { s.Delete(c, a.type, a.id); }},
      {verb::get, "{type}/{id}/_history", "history-instance", kReadStored,
       [](S& s, const CallPtr& c, const RouteArgs& a) { s.InstanceHistory(c, a.type, a.id); }},
      {verb::get, "{type}/{id}/_history/{vid}", "vread", kReadStored,
       [](S& s, const CallPtr& c, const RouteArgs& a) { s.VRead(c, a.type, a.id, a.vid); }},
  };
  return kTable;
}

}  // namespace wmty::fhir::face
