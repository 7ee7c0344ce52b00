// The audit trail over FHIR: storage::AuditRecord (written by both faces, see
// record.proto) as an R4 AuditEvent following the IHE Basic Audit Log
// Patterns (BALP), and the AuditEvent search parameters. See "Reading the
// audit trail" in docs/security.md.
//
// Thread safety: pure functions.
#ifndef WMTY_FHIR_AUDIT_EVENT_H_
#define WMTY_FHIR_AUDIT_EVENT_H_

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include <rapidjson/document.h>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "fhir/search.h"
#include "wmty/storage/record.pb.h"

namespace wmty::fhir {

// The FHIR id of an audit record: "a<sequence>". 0 if `id` is not one.
std::string AuditEventId(uint64_t sequence);
uint64_t AuditSequenceOf(absl::string_view id);

// http://hl7.org/fhir/restful-interaction code for one of our interaction
// names (read, vread, search, history-instance, history-type, create, update,
// delete, summary, everything, ...): read, vread, search-type, create,
// update, delete, history-instance, history-type or operation.
absl::string_view RestfulInteractionOf(absl::string_view interaction);

// True for a type an audit record may name (AuditRecord.resource_type): the
// stored types, Provenance (derived from them) and AuditEvent itself.
bool IsAuditedType(absl::string_view type);

// The IP address in a transport peer string: "ipv4:1.2.3.4:5", "ipv6:[::1]:5"
// (also %5B/%5D escaped, as gRPC writes it), "1.2.3.4:5" or "[::1]:5".
std::string PeerAddress(absl::string_view remote);

// Writes the AuditEvent for `record` into `out` (an object).
void BuildAuditEvent(const storage::AuditRecord& record, rapidjson::Value* out,
                     rapidjson::Document::AllocatorType& alloc);

// AuditEvent?patient=&agent=&date=&action=&_count=&_page_token=
struct AuditQuery {
  std::string patient;               // empty: any
  std::vector<std::string> agents;   // any of (OR); empty: any
  std::vector<DateValue> dates;      // all of (AND)
  std::vector<std::string> actions;  // any of (OR); empty: any
  int count = 50;
  std::string page_token;
  // Canonical form of the criteria (for the page token's query hash) and
  // the parameters a next link repeats.
  std::string canonical;
  std::vector<QueryParam> link_params;
};
// INVALID_ARGUMENT (safe to show) for a malformed value, or an unknown
// parameter when `strict`.
absl::StatusOr<AuditQuery> ParseAuditQuery(const std::vector<QueryParam>& params, bool strict);
bool AuditMatches(const AuditQuery& q, const storage::AuditRecord& record);

}  // namespace wmty::fhir

#endif  // WMTY_FHIR_AUDIT_EVENT_H_
