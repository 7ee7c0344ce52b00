// Delivery: sends FHIR Subscription notifications to rest-hook endpoints
// with cpprestsdk's http_client, at least once and in order per
// subscription.
//
// Each subscription has a lane: at most one notification in flight, so its
// notifications arrive in order and a dead receiver holds only its own lane.
// A lane runs on a small worker pool (never a thread per subscription); the
// HTTP exchange itself is asynchronous (cpprestsdk's own I/O threads), so a
// receiver that hangs until its timeout holds no worker. What a lane does
// next, in this order:
//   1. handshake, while the handshake was never acknowledged (requested, or
//      error after a failed handshake): a 2xx makes the subscription active;
//      a failure makes it `error` at once;
//   2. events after `delivered_through` (domain::SubscriptionEvents), up to
//      the subscription's max_count per notification; a 2xx advances
//      `delivered_through` (durably) and brings an `error` subscription back
//      to `active`;
//   3. a heartbeat when heartbeat_period passed without any notification.
// A failure (non-2xx, timeout, connection error, or an endpoint the SSRF
// check refuses now) is counted and retried after an exponential backoff
// with full jitter (a random delay up to min(max, initial * 2^failures));
// after `failure_budget` consecutive failures the subscription becomes
// `error` (a new version, via set_status) and is still retried at the
// maximum backoff, so a receiver that returns recovers it.
//
// A crash between a 2xx and the durable delivered_through re-sends that
// notification: duplicates carry the same event numbers.
//
// Every event notification attempt is audited, per event (see Audit).
//
// Nothing here blocks writes: lanes read the store and write only their own
// state (Store::WriteState).
//
// Thread safety: all public methods may be called from any thread.
#ifndef WMTY_PUSH_DELIVERY_H_
#define WMTY_PUSH_DELIVERY_H_

#include <atomic>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include <boost/asio/thread_pool.hpp>

#include "absl/container/flat_hash_map.h"
#include "absl/functional/any_invocable.h"
#include "absl/status/status.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "common/metrics.h"
#include "domain/subscription_events.h"
#include "fhir/notification.h"
#include "storage/store.h"
#include "wmty/storage/subscription.pb.h"

namespace wmty::push {

// Changes a subscription's status (domain::Subscriptions::SetStatus).
using SetStatusFn = std::function<void(const std::string& id, storage::Subscription::Status status, std::string error,
                                       absl::AnyInvocable<void(absl::Status)> done)>;

struct DeliveryOptions {
  // Absolute FHIR base URL the notifications' references use.
  std::string base_url = "http://127.0.0.1:8080/fhir";
  int workers = 2;
  absl::Duration initial_backoff = absl::Seconds(1);
  absl::Duration max_backoff = absl::Minutes(5);
  // Consecutive failures before the subscription becomes `error`.
  int failure_budget = 5;
  // Per attempt, when the subscription sets no timeout.
  absl::Duration default_timeout = absl::Seconds(10);
  // Events per notification, when the subscription sets no max_count.
  int default_max_count = 100;
  // Shortest heartbeat honoured (a subscription asking less gets this).
  absl::Duration min_heartbeat = absl::Seconds(1);
  // Client certificate (PEM files) presented to receivers that ask; empty: none.
  std::string client_cert_file;
  std::string client_key_file;
  // The endpoint check (SSRF: scheme, loopback and private addresses), run
  // again before every attempt; null: none.
  std::function<absl::Status(absl::string_view endpoint)> check_endpoint;
  SetStatusFn set_status;
};

// Counts for /metrics.
struct DeliveryStats {
  uint64_t pending_events_max = 0;  // of any one subscription
  uint64_t subscriptions = 0;       // with a lane
  // By the status each lane last saw.
  uint64_t requested = 0, active = 0, error = 0;
};

class Delivery {
 public:
  // Records its counters in `registry` (which must outlive it).
  Delivery(storage::Store* store, domain::SubscriptionEvents* events, DeliveryOptions options,
           metrics::Registry* registry);
  ~Delivery();  // Stop()
  Delivery(const Delivery&) = delete;
  Delivery& operator=(const Delivery&) = delete;

  // Something changed for these subscriptions (events, or the subscription
  // itself): their lanes look again soon. Creates lanes on first sight.
  void Wake(const std::vector<std::string>& ids);
  // Cancels what is in flight, stops timers and waits for the workers.
  // Later Wake calls do nothing. Idempotent.
  void Stop();

  DeliveryStats Stats() const;

 private:
  struct Lane;
  using LanePtr = std::shared_ptr<Lane>;
  // The outcome of one attempt, for metrics and the state.
  struct Attempt;

  // Runs a lane's next step on a worker; the lane is busy until Finish.
  void Run(const LanePtr& lane);
  // Lane is no longer busy: schedules its next run at `next` (InfiniteFuture:
  // only when woken), or at once when it was woken meanwhile, unless `next`
  // ends a backoff after a failure (then wake-ups wait for it too).
  void Finish(const LanePtr& lane, absl::Time next, bool backoff = false);
  void StartLocked(const LanePtr& lane) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  void ScheduleLocked(const LanePtr& lane, absl::Time at) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // Builds the next notification of the lane (empty body: nothing to send
  // now; then *next says when to look again).
  struct Notification;
  absl::StatusOr<Notification> Next(Lane& lane, const storage::Subscription& sub, absl::Time now);
  // The next events after delivered_through (at most max_count) into `n` and
  // `batch`, with their versions for full-resource payloads.
  absl::Status LoadEvents(const Lane& lane, const storage::Subscription& sub, uint64_t events, Notification* n,
                          std::vector<fhir::NotificationEvent>* batch);
  // POSTs the notification; Done runs with the outcome (on a worker).
  void Send(const LanePtr& lane, storage::Subscription sub, Notification notification);
  // The lane's HTTP client for the subscription's endpoint and timeout
  // (made again when they change). Throws on a URL cpprestsdk refuses.
  void PrepareClient(Lane& lane, const storage::Subscription& sub);
  void Done(const LanePtr& lane, const storage::Subscription& sub, const Notification& notification,
            const Attempt& attempt);
  // One audit record per event of an event notification attempt (source
  // "push", action E, the owner as agent, the receiver's host as remote;
  // outcome 0 on a 2xx, else 8): a disclosure, or an attempted one.
  void Audit(const storage::Subscription& sub, const Notification& n, const Attempt& attempt);
  // Asks for the subscription's status to become `status` (once: not when
  // it already is, nor again while the change is on its way).
  void RequestStatus(Lane& lane, const storage::Subscription& sub, storage::Subscription::Status status,
                     const std::string& error);
  absl::Duration Backoff(int64_t failures);

  storage::Store* const store_;
  domain::SubscriptionEvents* const events_;
  const DeliveryOptions options_;
  metrics::Family<metrics::Counter>& outcomes_;
  metrics::Histogram& latency_;

  mutable absl::Mutex mu_;
  absl::flat_hash_map<std::string, LanePtr> lanes_ ABSL_GUARDED_BY(mu_);
  bool stopping_ ABSL_GUARDED_BY(mu_) = false;
  int in_flight_ ABSL_GUARDED_BY(mu_) = 0;  // HTTP exchanges not yet finished
  struct Cancel;
  std::unique_ptr<Cancel> cancel_;
  boost::asio::thread_pool pool_;
};

}  // namespace wmty::push

#endif  // WMTY_PUSH_DELIVERY_H_
