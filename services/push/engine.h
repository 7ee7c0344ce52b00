// Engine: FHIR Subscription notifications, assembled. Owns the Matcher (the
// change log -> numbered events, services/push/matcher.h) and Delivery (the
// rest-hook lanes, delivery.h), wires the store's commit listener to the
// matcher and the matcher to delivery, and answers the server's metrics.
// The server starts it after the store opens and stops it before the store
// closes. docs/subscriptions.md ("Notifications", "Delivery guarantees")
// and docs/operations.md ("Subscription delivery") describe what it does.
//
// The matcher's cursor is the change log's retention floor (matcher_cursor):
// the log is never trimmed past what has not been matched.
//
// Errors: Start returns the store's (reading the cursor and subscriptions).
// Thread safety: Start and Stop from one thread; the rest from any.
#ifndef WMTY_PUSH_ENGINE_H_
#define WMTY_PUSH_ENGINE_H_

#include <memory>

#include "absl/status/statusor.h"
#include "common/metrics.h"
#include "domain/subscription_events.h"
#include "domain/subscriptions.h"
#include "push/delivery.h"
#include "push/matcher.h"
#include "storage/store.h"

namespace wmty::push {

struct EngineOptions {
  MatcherOptions matcher;  // is_event defaults to domain::IsSubscriptionEvent
  // set_status defaults to subscriptions->SetStatus; check_endpoint to
  // domain::CheckEndpoint with the subscriptions' allow_private_endpoints.
  DeliveryOptions delivery;
};

class Engine {
 public:
  // Everything must outlive the engine; `registry` records its counters.
  static absl::StatusOr<std::unique_ptr<Engine>> Start(storage::Store* store, domain::SubscriptionEvents* events,
                                                       domain::Subscriptions* subscriptions, EngineOptions options,
                                                       metrics::Registry* registry);
  ~Engine();  // Stop()
  // Stops matching and delivery (in-flight deliveries are cancelled: sent
  // again after a restart). Idempotent.
  void Stop();

  // The last change matched and recorded: trim the change log only below it.
  uint64_t matcher_cursor() const { return matcher_->cursor(); }
  // Gauges for /metrics: pending events, subscriptions by status, matcher lag.
  void CollectMetrics(metrics::Writer& writer) const;

 private:
  struct Wakeup;
  Engine() = default;
  storage::Store* store_ = nullptr;
  std::shared_ptr<Wakeup> wakeup_;
  std::unique_ptr<Delivery> delivery_;
  std::unique_ptr<Matcher> matcher_;
};

}  // namespace wmty::push

#endif  // WMTY_PUSH_ENGINE_H_
