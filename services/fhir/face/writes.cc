// The FHIR face's writes: create (also conditional, If-None-Exist), update
// (If-Match), PUT Patient, delete (= retract), handed to the domain core and
// answered from the answer pool with the version they wrote.

#include <variant>

#include "absl/strings/ascii.h"
#include "absl/strings/str_cat.h"
#include "common/status.h"
#include "domain/names.h"
#include "domain/resources.h"
#include "fhir/face/access.h"
#include "fhir/face/resource_types.h"
#include "fhir/face/service.h"
#include "fhir/patient_mapping.h"

namespace wmty::fhir::face {

// What a write that dropped elements R4 does not define answers
// (--fhir_unknown_elements=drop): what was written, and a warning per element.
std::vector<Issue> DroppedIssues(const Call& c, absl::string_view type, std::string written) {
  std::vector<Issue> issues = {Issue{"information", "informational", std::move(written), ""}};
  for (const std::string& path : c.dropped_elements) {
    issues.push_back(Issue{"warning", "structure",
                           absl::StrCat(path, ": ", kUnknownElement, " of FHIR R4 ", type, ", dropped: not stored"),
                           path});
  }
  if (c.dropped_count > c.dropped_elements.size()) {
    issues.push_back(Issue{"warning", "structure",
                           absl::StrCat(c.dropped_count - c.dropped_elements.size(), " more ", kUnknownElement,
                                        "s of FHIR R4 ", type, " dropped (not listed): not stored"),
                           std::string(type)});
  }
  return issues;
}

void FhirService::RespondResource(Call& c, http::Status status, absl::string_view type, const Record& record,
                                  Headers headers, absl::string_view what) {
  if (c.dropped_count > 0) {
    // Whatever Prefer asks: the client must learn what was not stored.
    Document d;
    BuildOperationOutcome(
        DroppedIssues(c, type, absl::StrCat(what, " ", type, "/", FhirId(record), " version ", record.version())), &d,
        d.GetAllocator());
    return ReplyJson(c, status, d, headers);
  }
  switch (c.prefer.return_pref) {
    case Prefer::Return::kMinimal:
      return Reply(c, status, std::nullopt, headers);
    case Prefer::Return::kOperationOutcome: {
      Document d;
      BuildOperationOutcome(
          {Issue{"information", "informational",
                 absl::StrCat(what, " ", type, "/", FhirId(record), " version ", record.version()), ""}},
          &d, d.GetAllocator());
      return ReplyJson(c, status, d, headers);
    }
    default:
      return ReplyRecord(c, render_cache_, status, type, record, headers);
  }
}

// ---------------------------------------------------------------- create

void FhirService::Create(const CallPtr& c, absl::string_view type) {
  Document doc;
  if (!ParseBody(*c, type, &doc)) return;
  auto incoming = FromFhir(type, doc, options_.unknown_elements);
  if (!incoming.ok()) return ReplyError(*c, FromStatus(incoming.status(), PrimaryKind(type), true));
  c->dropped_count = incoming->dropped_count;
  c->dropped_elements = std::move(incoming->dropped_elements);
  // c for the patient the body names, before anything is looked up.
  if (!AuthorizePatient(*c, incoming->patient_id, "")) return;
  std::string request_id;
  if (!RequestIdOf(*c, &request_id)) return;
  WriteAgents agents;
  if (!RecorderOf(*c, &agents)) return;
  SetRecorder(&incoming->resource, agents);
  if (incoming->kind == storage::PRIORITIES) {
    auto existing = core_->FindCurrentById(storage::PRIORITIES, incoming->patient_id);
    if (!existing.ok()) return ReplyError(*c, FromStatus(existing.status(), storage::PRIORITIES));
    if (existing->has_value() && !c->HasHeader("If-None-Exist") && request_id.empty()) {
      return ReplyError(*c, MakeRestError(http::Status::conflict, "duplicate",
                                          absl::StrCat("the patient's priorities List exists (List/",
                                                       incoming->patient_id, "): update it with PUT")));
    }
    if (!ResolvePriorityItems(*c, incoming->patient_id, incoming->list_item_refs,
                              &std::get<v1::Priorities>(incoming->resource))) {
      return;
    }
  }

  if (!c->HasHeader("If-None-Exist")) return DoCreate(c, std::string(type), std::move(*incoming), request_id, nullptr);

  // Conditional create: the criteria are a search of this type.
  absl::string_view criteria = absl::StripAsciiWhitespace(c->Header("If-None-Exist"));
  if (const size_t q = criteria.find('?'); q != absl::string_view::npos) criteria.remove_prefix(q + 1);
  auto params = ParseQueryString(criteria);
  if (!params.ok()) return ReplyError(*c, Bad("invalid", absl::StrCat("If-None-Exist: ", params.status().message())));
  // Strict always: ignoring an unknown parameter would widen the match.
  auto spec = ParseSearch(type, *params, /*strict=*/true);
  if (!spec.ok()) {
    return ReplyError(*c, Bad(spec.status().code() == absl::StatusCode::kUnimplemented ? "not-supported" : "invalid",
                              absl::StrCat("If-None-Exist: ", spec.status().message())));
  }
  if (spec->criteria.empty() && !spec->patients.has_value() && !spec->ids.has_value()) {
    return ReplyError(*c, Bad("invalid", "If-None-Exist names no search criteria"));
  }
  // The criteria are a search: s, confined like any search.
  if (!Authorize(*c, type, auth::kSearch, SearchPatient(*spec))) return;
  std::string key = absl::StrCat(type, "\n", CanonicalQuery(*spec));
  {
    absl::MutexLock lock(&inflight_mu_);
    if (!inflight_.insert(key).second) {
      return ReplyError(*c, MakeRestError(http::Status::conflict, "conflict",
                                          "a create with the same If-None-Exist is in progress; retry"));
    }
  }
  // Released when the last holder (this frame or the pending write) lets go.
  struct Inflight {
    FhirService* service;
    std::string key;
    ~Inflight() {
      absl::MutexLock lock(&service->inflight_mu_);
      service->inflight_.erase(key);
    }
  };
  auto hold = std::make_shared<Inflight>(Inflight{this, std::move(key)});
  std::vector<Hit> hits;
  if (auto s = FindInKeyOrder(*spec, "", "", 2, c->ctx, &hits); !s.ok()) {
    return ReplyError(*c, FromStatus(s, PrimaryKind(type)));
  }
  if (hits.size() > 1) {
    return ReplyError(*c, MakeRestError(http::Status::precondition_failed, "multiple-matches",
                                        "If-None-Exist matches more than one resource"));
  }
  if (hits.size() == 1) {
    const Record& r = hits[0].record;
    // The match is returned: r on it as well.
    if (!Authorize(*c, type, auth::kRead, r.patient_id())) return;
    return RespondResource(*c, http::Status::ok, type, r,
                           {{bhttp::field::etag, EtagOf(r.version())},
                            {bhttp::field::last_modified, HttpDate(r.update_time_micros())},
                            {bhttp::field::location, absl::StrCat(c->base, "/", type, "/", FhirId(r))}},
                           "matched existing");
  }
  DoCreate(c, std::string(type), std::move(*incoming), request_id, hold);
}

void FhirService::DoCreate(const CallPtr& c, std::string type, Incoming incoming, std::string request_id,
                           std::shared_ptr<void> hold) {
  c->ctx.fhir_extra_json = incoming.extra_json;
  const bool is_list = incoming.kind == storage::PRIORITIES;
  std::string patient = incoming.patient_id;
  core_->Create(
      std::move(incoming.resource), patient, request_id, c->ctx,
      OnAnswerPool([this, c, type, is_list, patient, hold = std::move(hold)](absl::StatusOr<Record> written) mutable {
        Guarded(c, [&] {
          // The List existed after all (a race, or a new X-Request-Id).
          if (is_list && !written.ok() && domain::IsResourceExists(written.status())) {
            return ReplyError(*c, MakeRestError(http::Status::conflict, "duplicate",
                                                absl::StrCat("the patient's priorities List exists (List/", patient,
                                                             "): update it with PUT")));
          }
          RespondWritten(c, type, written, http::Status::created);
        });
        hold.reset();
      }));
}

void FhirService::RespondWritten(const CallPtr& c, absl::string_view type, const absl::StatusOr<Record>& written,
                                 http::Status success) {
  if (!written.ok()) {
    return ReplyError(*c, FromStatus(written.status(), PrimaryKind(type)));
  }
  // The version the write stored, as the store committed it: no read-back.
  const Record* record = &*written;
  // PUT-as-create of the List answers 201 too.
  if (record->version() == 1) success = http::Status::created;
  AuditTarget(*c, record->patient_id(), FhirId(*record));
  const std::string versioned = absl::StrCat(c->base, "/", type, "/", FhirId(*record), "/_history/", record->version());
  Headers headers = {{bhttp::field::etag, EtagOf(record->version())},
                     {bhttp::field::last_modified, HttpDate(record->update_time_micros())},
                     {bhttp::field::content_location, versioned}};
  if (success == http::Status::created) headers.emplace_back(bhttp::field::location, versioned);
  RespondResource(*c, success, type, *record, std::move(headers),
                  success == http::Status::created ? "created" : "updated");
}

// ---------------------------------------------------------------- update

void FhirService::Update(const CallPtr& c, absl::string_view type, absl::string_view id) {
  Document doc;
  if (!ParseBody(*c, type, &doc)) return;
  if (!BodyIdIsUrlId(*c, doc, type, id)) return;
  std::optional<int64_t> if_match;
  if (!IfMatchOf(*c, &if_match)) return;
  auto incoming = FromFhir(type, doc, options_.unknown_elements);
  if (!incoming.ok()) return ReplyError(*c, FromStatus(incoming.status(), PrimaryKind(type), true));
  c->dropped_count = incoming->dropped_count;
  c->dropped_elements = std::move(incoming->dropped_elements);
  // u for the patient the body names (and below, for the stored one).
  if (!AuthorizePatient(*c, incoming->patient_id, id)) return;
  std::string request_id;
  if (!RequestIdOf(*c, &request_id)) return;
  WriteAgents agents;
  if (!RecorderOf(*c, &agents)) return;
  SetRecorder(&incoming->resource, agents);
  const bool is_list = incoming->kind == storage::PRIORITIES;
  if (is_list && incoming->patient_id != id) {
    return ReplyError(
        *c, Bad("invalid", "a priorities List's id is its patient's id: subject must be Patient/<id>", "List.subject"));
  }
  auto current = FindCurrent(type, id);
  if (!current.ok()) return ReplyError(*c, FromStatus(current.status(), incoming->kind));
  if (!current->has_value()) {
    if (!is_list) {
      return ReplyError(*c,
                        MakeRestError(http::Status::method_not_allowed, "not-supported",
                                      absl::StrCat(type, "/", id.substr(0, 64),
                                                   " does not exist, and this server assigns ids: create it with "
                                                   "POST [base]/",
                                                   type)),
                        {{bhttp::field::allow, "GET, PUT, DELETE"}});
    }
    if (if_match.has_value()) {
      return ReplyError(*c, MakeRestError(http::Status::precondition_failed, "conflict",
                                          "If-Match names a version, but the priorities were never set"));
    }
  } else {
    const Record& cur = **current;
    if (!Authorize(*c, type, auth::kUpdate, cur.patient_id())) return;
    if (cur.kind() != incoming->kind) {
      return ReplyError(*c, Bad("invalid",
                                "an Observation cannot change what it records (a what-matters answer, a "
                                "preference or a goal score stays one): create a new one and delete this one",
                                "Observation.code"));
    }
    if (cur.patient_id() != incoming->patient_id) {
      return ReplyError(*c,
                        Bad("invalid", "a resource cannot move to another patient", absl::StrCat(type, ".subject")));
    }
  }
  if (is_list && !ResolvePriorityItems(*c, incoming->patient_id, incoming->list_item_refs,
                                       &std::get<v1::Priorities>(incoming->resource))) {
    return;
  }
  c->ctx.fhir_extra_json = incoming->extra_json;
  // Without If-Match the client asked for "whatever is current": the domain
  // checks that on its commit thread, so a race with another writer is not
  // lost and needs no retry.
  const auto precondition =
      if_match.has_value() ? domain::Precondition::Etag(EtagOf(*if_match)) : domain::Precondition::AnyVersion();
  core_->Update(std::move(incoming->resource), incoming->patient_id, id, precondition, request_id, c->ctx,
                OnAnswerPool([this, c, type = std::string(type)](absl::StatusOr<Record> written) {
                  Guarded(c, [&] { RespondWritten(c, type, written, http::Status::ok); });
                }));
}

void FhirService::UpdatePatient(const CallPtr& c, absl::string_view id) {
  Document doc;
  if (!ParseBody(*c, "Patient", &doc)) return;
  if (!BodyIdIsUrlId(*c, doc, "Patient", id)) return;
  if (!domain::IsValidId(id)) {
    return ReplyError(*c, Bad("invalid", "a patient id is 1-64 characters of A-Z a-z 0-9 - .", "Patient.id"));
  }
  std::optional<int64_t> if_match;
  if (!IfMatchOf(*c, &if_match)) return;
  auto incoming = PatientFromFhir(doc);
  if (!incoming.ok()) return ReplyError(*c, FromStatus(incoming.status(), storage::PATIENT, true));
  if (!AuthorizePatient(*c, id, id)) return;
  std::string request_id;
  if (!RequestIdOf(*c, &request_id)) return;
  v1::UpdatePatientRequest req;
  *req.mutable_patient() = std::move(incoming->patient);
  WriteAgents agents;
  if (!RecorderOf(*c, &agents)) return;
  SetAgents(agents, req.mutable_patient()->mutable_provenance());
  req.mutable_patient()->set_name(domain::FormatParent(id));
  req.mutable_patient()->set_etag(if_match.has_value() ? EtagOf(*if_match) : std::string());
  req.set_allow_missing(true);
  req.set_request_id(request_id);
  c->ctx.fhir_extra_json = std::move(incoming->extra_json);
  core_->UpdatePatient(req, c->ctx, OnAnswerPool([this, c](absl::StatusOr<Record> written) {
                         Guarded(c, [&] { RespondWritten(c, "Patient", written, http::Status::ok); });
                       }));
}

// ---------------------------------------------------------------- delete

void FhirService::Delete(const CallPtr& c, absl::string_view type, absl::string_view id) {
  std::optional<int64_t> if_match;
  if (!IfMatchOf(*c, &if_match)) return;
  std::string request_id;
  if (!RequestIdOf(*c, &request_id)) return;
  WriteAgents agents;
  std::string reason;
  if (!RecorderOf(*c, &agents, &reason)) return;
  auto current = FindCurrent(type, id);
  if (!current.ok()) return ReplyError(*c, FromStatus(current.status(), PrimaryKind(type)));
  // FHIR: deleting what does not exist, or is already deleted, is 204 too.
  if (!current->has_value()) {
    c->patient_authorized = true;  // nothing stored: no patient's data to protect
    return Reply(*c, http::Status::no_content, std::nullopt);
  }
  const Record cur = **current;
  if (!AuthorizePatient(*c, cur.patient_id(), id)) return;
  if (cur.retracted())
    return Reply(*c, http::Status::no_content, std::nullopt, {{bhttp::field::etag, EtagOf(cur.version())}});
  v1::RetractRequest req;
  req.set_name(domain::FormatName(cur.kind(), cur.patient_id(), cur.id()));
  req.set_etag(if_match.has_value() ? EtagOf(*if_match) : std::string());  // none: any version
  req.set_reason(reason);
  *req.mutable_retracted_by() = agents.recorded_by;
  if (agents.on_behalf_of.has_value()) *req.mutable_on_behalf_of() = *agents.on_behalf_of;
  req.set_request_id(request_id);
  core_->Retract(req, c->ctx, OnAnswerPool([this, c, kind = cur.kind()](absl::StatusOr<Record> written) {
                   Guarded(c, [&] {
                     if (written.ok()) {
                       return Reply(*c, http::Status::no_content, std::nullopt,
                                    {{bhttp::field::etag, EtagOf(written->version())}});
                     }
                     // Deleted by someone else meanwhile: still "deleted".
                     if (written.status().code() == absl::StatusCode::kFailedPrecondition) {
                       return Reply(*c, http::Status::no_content, std::nullopt);
                     }
                     ReplyError(*c, FromStatus(written.status(), kind));
                   });
                 }));
}

}  // namespace wmty::fhir::face
