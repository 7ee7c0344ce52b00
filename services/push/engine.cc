// Engine (engine.h): the matcher and delivery, wired to the store.
#include "push/engine.h"

#include "absl/synchronization/mutex.h"
#include "domain/topics.h"

namespace wmty::push {

// The store's commit listener lives as long as the store; it reaches the
// matcher through this, which Stop() disconnects.
struct Engine::Wakeup {
  absl::Mutex mu;
  Matcher* matcher ABSL_GUARDED_BY(mu) = nullptr;
};

absl::StatusOr<std::unique_ptr<Engine>> Engine::Start(storage::Store* store, domain::SubscriptionEvents* events,
                                                      domain::Subscriptions* subscriptions, EngineOptions options,
                                                      metrics::Registry* registry) {
  std::unique_ptr<Engine> engine(new Engine());
  engine->store_ = store;
  if (!options.matcher.is_event) options.matcher.is_event = domain::IsSubscriptionEvent;
  if (!options.delivery.set_status) {
    options.delivery.set_status = [subscriptions](const std::string& id, storage::Subscription::Status status,
                                                  std::string error, absl::AnyInvocable<void(absl::Status)> done) {
      subscriptions->SetStatus(id, status, std::move(error), std::move(done));
    };
  }
  if (!options.delivery.check_endpoint) {
    options.delivery.check_endpoint = [subscriptions](absl::string_view endpoint) {
      return domain::CheckEndpoint(endpoint, subscriptions->options().allow_private_endpoints,
                                   subscriptions->options().resolve);
    };
  }
  engine->delivery_ = std::make_unique<Delivery>(store, events, std::move(options.delivery), registry);
  Delivery* delivery = engine->delivery_.get();
  engine->matcher_ =
      std::make_unique<Matcher>(store, events, std::move(options.matcher),
                                [delivery](const std::vector<std::string>& ids) { delivery->Wake(ids); });
  if (auto s = engine->matcher_->Start(); !s.ok()) return s;
  engine->wakeup_ = std::make_shared<Wakeup>();
  {
    absl::MutexLock lock(&engine->wakeup_->mu);
    engine->wakeup_->matcher = engine->matcher_.get();
  }
  store->AddCommitListener([wakeup = engine->wakeup_](uint64_t) {
    absl::MutexLock lock(&wakeup->mu);
    if (wakeup->matcher != nullptr) wakeup->matcher->Wake();
  });
  engine->matcher_->Wake();  // what was committed before the listener
  // Every subscription not deleted gets a lane: handshakes not yet done,
  // events not yet delivered, heartbeats.
  std::vector<std::string> ids;
  auto scanned = store->NewReader()->ScanCurrent("", storage::SUBSCRIPTION, "", [&](const storage::Record& r) {
    if (!r.retracted()) ids.push_back(r.id());
    return true;
  });
  if (!scanned.ok()) return scanned;
  delivery->Wake(ids);
  return engine;
}

void Engine::Stop() {
  if (wakeup_ != nullptr) {
    absl::MutexLock lock(&wakeup_->mu);
    wakeup_->matcher = nullptr;
  }
  if (matcher_ != nullptr) matcher_->Stop();
  if (delivery_ != nullptr) delivery_->Stop();
}

Engine::~Engine() { Stop(); }

void Engine::CollectMetrics(metrics::Writer& writer) const {
  const DeliveryStats stats = delivery_->Stats();
  writer.Gauge("wmty_subscription_pending_events_max",
               "Most events matched but not yet acknowledged by the receiver, of any one subscription.",
               static_cast<double>(stats.pending_events_max));
  const char* help = "Subscriptions being delivered, by the status delivery last saw.";
  writer.Gauge("wmty_subscriptions", help, static_cast<double>(stats.requested), {{"status", "requested"}});
  writer.Gauge("wmty_subscriptions", help, static_cast<double>(stats.active), {{"status", "active"}});
  writer.Gauge("wmty_subscriptions", help, static_cast<double>(stats.error), {{"status", "error"}});
  const uint64_t cursor = matcher_->cursor(), last = store_->LastSequence();
  writer.Gauge("wmty_subscription_matcher_sequence", "Last change-log sequence the subscription matcher recorded.",
               static_cast<double>(cursor));
  writer.Gauge("wmty_subscription_matcher_lag", "Changes committed but not yet matched against subscriptions.",
               static_cast<double>(last > cursor ? last - cursor : 0));
}

}  // namespace wmty::push
