// Subscriptions: the rules of the FHIR Subscription resource (Subscriptions
// R5 Backport IG 1.1.0 on R4) over the store, once, for every face: what a
// valid subscription is (topic, filters, endpoint: CheckEndpoint), who may
// create, see and change one, and the status changes the server makes on its
// own (SetStatus, for the push engine). A subscription is a record of kind
// SUBSCRIPTION (patient id "") holding a storage::Subscription; every change
// is a new version (history, etags) and is in the change log.
//
// Rules:
// - Create: the topic's FHIR types must be readable by the caller (read on
//   each of SubscriptionTopic::resource_types, for the patient its filters
//   name, or for its own patient); a caller with only patient/ scopes is
//   confined to its patient: a patient filter naming another patient is
//   refused (PERMISSION_DENIED), none is added (the subscription is stored
//   with owner_patient set, so every event is of that patient). The owner
//   (subject, client id, patient) and the kinds it can read are stored.
//   Status: requested, or unset, or active (stored as requested: the
//   server's handshake decides), or off; error is refused.
// - Update: the owner's (or a system/ scope's) update; the topic may not
//   change; status as for create, except that a subscription keeps its
//   server-set status (active/error) when the client sends it back as is.
// - Delete: a retraction whose version has status off (history kept).
// - Who sees one: its owner (same subject and client id), or a caller with a
//   system/ scope on Subscription; anyone else gets NOT_FOUND, as for an
//   unknown id. With authentication disabled (principal null) everyone.
//
// Errors: INVALID_ARGUMENT with field violations (fields of
// storage::Subscription: "topic", "filters[0].value", "endpoint", ...);
// NOT_FOUND; PERMISSION_DENIED; ABORTED (stale version); FAILED_PRECONDITION
// (change to a deleted subscription); and the store's (UNAVAILABLE, ...).
//
// Thread safety: all methods are safe to call concurrently. The store must
// outlive this object. Write callbacks run on the store's completion thread
// and must not block.
#ifndef WMTY_DOMAIN_SUBSCRIPTIONS_H_
#define WMTY_DOMAIN_SUBSCRIPTIONS_H_

#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <vector>

#include "absl/functional/any_invocable.h"
#include "absl/functional/function_ref.h"
#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/time/time.h"
#include "auth/scopes.h"
#include "domain/patient_records.h"
#include "storage/store.h"
#include "wmty/storage/subscription.pb.h"

namespace wmty::domain {

// What reads show instead of a header's value ("Authorization: " + this):
// header values (receivers' credentials) are never served back. An update
// sending a header with exactly this value keeps the stored value of the
// header of that name (INVALID_ARGUMENT if there is none).
inline constexpr absl::string_view kMaskedHeaderValue = "(hidden)";

// Resolves a host name to its addresses (textual IPv4/IPv6). Injected by
// tests; the default uses getaddrinfo (blocking: call off I/O loops' hot paths).
using HostResolver = std::function<absl::StatusOr<std::vector<std::string>>(absl::string_view host)>;
HostResolver SystemResolver();

// Whether a notification may be sent to `url` (SSRF policy, docs/security.md):
// an absolute http(s) URL with a host and no user info; https unless
// `allow_private`; and the host, and every address it resolves to, is not
// loopback, private (RFC 1918, CGNAT 100.64/10), link-local (incl. the cloud
// metadata address 169.254.169.254), unique local (fc00::/7), unspecified,
// multicast or broadcast, nor "localhost" or a "metadata" name, unless
// `allow_private`. INVALID_ARGUMENT with a message saying why; OK otherwise.
// A name that does not resolve is refused (INVALID_ARGUMENT) unless
// `allow_private` (then it is only a delivery failure later).
// The push engine calls it again before every delivery (DNS may change).
absl::Status CheckEndpoint(absl::string_view url, bool allow_private, const HostResolver& resolve = SystemResolver());
// Whether a textual IP address is one CheckEndpoint refuses.
bool IsPrivateAddress(absl::string_view ip);

struct SubscriptionsOptions {
  // --subscription_allow_private_endpoints: plain http and private addresses.
  bool allow_private_endpoints = false;
  HostResolver resolve = SystemResolver();
};

// One page of a search, in id order.
struct SubscriptionPage {
  std::vector<storage::Record> records;
  std::string next_after_id;  // "" on the last page
};

// What a search asks for (every condition ANDed; unset: any).
struct SubscriptionQuery {
  std::optional<storage::Subscription::Status> status;
  std::string topic;     // criteria (canonical)
  std::string id;        // _id
  std::string after_id;  // the page's position
  size_t limit = 50;
};

class Subscriptions {
 public:
  Subscriptions(storage::Store* store, SubscriptionsOptions options = {});

  // ---- For the faces (ctx.principal null: authentication disabled).
  // Creates with a new id; `done` gets the stored version.
  void Create(storage::Subscription s, const CallContext& ctx, Done<storage::Record> done);
  // Replaces the subscription's client-set elements; `if_version` (when set)
  // must be the current version (ABORTED otherwise).
  void Update(absl::string_view id, storage::Subscription s, std::optional<int64_t> if_version, const CallContext& ctx,
              Done<storage::Record> done);
  // Retracts it with status off.
  void Delete(absl::string_view id, std::optional<int64_t> if_version, const CallContext& ctx,
              Done<storage::Record> done);
  // The current version (possibly a deletion: retracted), if the caller may
  // see it; NOT_FOUND otherwise.
  absl::StatusOr<storage::Record> Read(absl::string_view id, const CallContext& ctx) const;
  // Every version, oldest first, if the caller may see it.
  absl::StatusOr<std::vector<storage::Record>> History(absl::string_view id, const CallContext& ctx) const;
  // The caller's visible, not deleted subscriptions matching `q`.
  absl::StatusOr<SubscriptionPage> Search(const SubscriptionQuery& q, const CallContext& ctx) const;

  // ---- For the push engine (no caller: the server's own).
  // The server's own status change (handshake done, delivery error,
  // recovery): a new version (history keeps it). `error` is stored as
  // Subscription.error (no PHI: codes and reasons only). Not applied
  // (FAILED_PRECONDITION) to a deleted subscription. `done` runs on the
  // store's completion thread.
  void SetStatus(absl::string_view id, storage::Subscription::Status status, std::string error,
                 absl::AnyInvocable<void(absl::Status)> done);
  // The current version of subscription `id` (nullopt: none).
  absl::StatusOr<std::optional<storage::Record>> Get(absl::string_view id) const;
  // Visits the current version of every subscription, deleted ones
  // (retracted, status off) included, in id order, from one snapshot, until
  // `visit` returns false (e.g. to load them all at startup).
  absl::Status ForEach(absl::FunctionRef<bool(const storage::Record&)> visit) const;

  const SubscriptionsOptions& options() const { return options_; }

 private:
  // Validates what a client sent (topic, filters, endpoint, status).
  absl::Status Validate(const storage::Subscription& s) const;
  // Checks the caller may subscribe to `s`'s topic and fills in the owner.
  absl::Status Authorize(storage::Subscription* s, const CallContext& ctx) const;
  // May the caller see (and change) the stored subscription?
  bool MaySee(const storage::Subscription& s, const CallContext& ctx) const;
  // The visible current version, or NOT_FOUND.
  absl::StatusOr<storage::Record> Visible(absl::string_view id, const CallContext& ctx) const;

  storage::Store* const store_;
  const SubscriptionsOptions options_;
};

}  // namespace wmty::domain

#endif  // WMTY_DOMAIN_SUBSCRIPTIONS_H_
