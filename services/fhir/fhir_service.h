// FhirService: the FHIR R4 REST face (base URL /fhir), an http::Handler over
// the domain core. Interactions: read, vread, create (also conditional),
// update (If-Match), delete (= retract), instance and type history, search,
// Patient/[id]/$everything, metadata (CapabilityStatement), and our
// CodeSystem. Every error is an OperationOutcome. See docs/fhir-rest.md.
//
// Threads: reads and searches run on the calling (HTTP I/O) thread against
// RocksDB snapshots; writes are handed to the domain core and, once durable,
// answered from the service's answer pool (two threads: the store's
// completion thread only posts to it).
//
// Thread safety: safe for concurrent Handle calls. `core` must outlive it,
// and so must the service itself until the store has been closed (pending
// writes answer through it).
#ifndef WMTY_FHIR_FHIR_SERVICE_H_
#define WMTY_FHIR_FHIR_SERVICE_H_

#include <memory>
#include <string>

#include "absl/time/time.h"
#include "auth/token_verifier.h"
#include "domain/patient_records.h"
#include "domain/subscriptions.h"
#include "fhir/mapping.h"
#include "fhir/smart_configuration.h"
#include "http/http_server.h"

namespace wmty::fhir {

struct FhirServiceOptions {
  // Absolute base URL used in Location headers, fullUrl and next links, e.g.
  // "http://127.0.0.1:8080/fhir". When empty it is built from the Host header.
  std::string base_url;
  // Each request's deadline (reads stop, writes are not committed past it).
  absl::Duration request_timeout = absl::Seconds(30);
  // Null: authentication disabled (--auth_disabled, loopback only). Otherwise
  // every request but metadata and CodeSystem needs a bearer token whose
  // scopes allow the interaction for the patient concerned.
  std::shared_ptr<const auth::TokenVerifier> verifier;
  // Elements FHIR R4 does not define in a created or updated resource:
  // refused (400 + OperationOutcome naming each), or dropped (not stored; the
  // 201/200 answers an OperationOutcome with a warning per element).
  UnknownElementPolicy unknown_elements = UnknownElementPolicy::kRefuse;
  // The authorization server the CapabilityStatement's security names.
  SmartConfiguration smart;
  // The Subscription resource's rules (must outlive the service); null: the
  // Subscription interactions answer 501.
  domain::Subscriptions* subscriptions = nullptr;
};

std::unique_ptr<http::Handler> NewFhirService(domain::PatientRecords* core, FhirServiceOptions options);

}  // namespace wmty::fhir

#endif  // WMTY_FHIR_FHIR_SERVICE_H_
