// The vocabulary of the generic write entry points of PatientRecords
// (Create/Update/Retract taking any resource): the resource variant, the
// precondition an update is checked against, and the typed "already exists"
// error. A face that writes several resource types (the FHIR face) uses these
// instead of one method per type.
//
// Thread safety: plain values and pure functions.
#ifndef WMTY_DOMAIN_RESOURCES_H_
#define WMTY_DOMAIN_RESOURCES_H_

#include <string>
#include <utility>
#include <variant>

#include "absl/status/status.h"
#include "absl/strings/string_view.h"
#include "wmty/storage/record.pb.h"
#include "wmty/v1/service.pb.h"

namespace wmty::domain {

// Any resource a face creates, updates or retracts through the generic entry
// points. (The Patient is not one: it is upserted whole by the hospital's
// feed, see PatientRecords::UpdatePatient.)
using AnyResource = std::variant<v1::WhatMatters, v1::Goal, v1::Preference, v1::GoalScore, v1::Priorities>;

// The stored kind of the resource `r` holds.
storage::Kind KindOf(const AnyResource& r);

// What the current version must be for an update or a retraction to apply.
// Checked on the store's commit thread, atomically with the write: no other
// write can come between the check and the new version.
class Precondition {
 public:
  // The current version's etag must be `etag`, else ABORTED (stale etag).
  static Precondition Etag(std::string etag) { return Precondition(std::move(etag)); }
  // Whatever version is current (FHIR PUT or DELETE without If-Match). The
  // resource must still exist and not be retracted; two such updates that
  // race both apply, one after the other.
  static Precondition AnyVersion() { return Precondition(std::string()); }

  bool any_version() const { return etag_.empty(); }
  // The etag required; empty for AnyVersion.
  const std::string& etag() const { return etag_; }

 private:
  explicit Precondition(std::string etag) : etag_(std::move(etag)) {}
  std::string etag_;
};

// ALREADY_EXISTS saying that the resource a create names exists already (the
// patient's priorities: one per patient). It carries a google.rpc.ErrorInfo
// payload (reason RESOURCE_EXISTS) so a face can tell it from the other
// ALREADY_EXISTS, "request_id reused for another request", without matching
// message text.
absl::Status ResourceExistsError(absl::string_view message);
// Whether `status` is a ResourceExistsError.
bool IsResourceExists(const absl::Status& status);

}  // namespace wmty::domain

#endif  // WMTY_DOMAIN_RESOURCES_H_
