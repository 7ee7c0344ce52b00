// Delivery (delivery.h): lanes, their schedule, and the rest-hook exchange
// over cpprestsdk.
#include "push/delivery.h"

#include <chrono>
#include <exception>
#include <system_error>

#include <boost/asio/post.hpp>
#include <boost/asio/ssl.hpp>
#include <boost/asio/steady_timer.hpp>
#include <cpprest/http_client.h>

#include "absl/random/random.h"
#include "absl/strings/ascii.h"
#include "absl/strings/str_cat.h"
#include "common/log.h"
#include "common/thread_name.h"
#include "domain/fhir_types.h"
#include "fhir/notification.h"

namespace wmty::push {
namespace {

using storage::Subscription;
namespace client = web::http::client;

constexpr absl::string_view kFhirJson = "application/fhir+json";

bool Ended(const Subscription& sub, absl::Time now) {
  return sub.status() == Subscription::OFF || (sub.end_micros() != 0 && now >= absl::FromUnixMicros(sub.end_micros()));
}

}  // namespace

struct Delivery::Lane {
  Lane(std::string lane_id, boost::asio::thread_pool& pool) : id(std::move(lane_id)), timer(pool.get_executor()) {}
  const std::string id;
  // Guarded by Delivery::mu_.
  bool busy = false;
  bool again = false;  // woken while busy: run again when done
  uint64_t timer_generation = 0;
  boost::asio::steady_timer timer;
  // After a failure, no attempt before this (new events do not cut a
  // backoff short).
  absl::Time not_before = absl::InfinitePast();
  Subscription::Status seen_status = Subscription::STATUS_UNSPECIFIED;
  uint64_t pending = 0;
  // Owned by the run that set `busy`.
  bool loaded = false;
  storage::SubscriptionDeliveryState state;
  absl::Time last_sent = absl::Now();  // heartbeats count from here
  std::unique_ptr<client::http_client> http;
  std::string http_key;  // endpoint and timeout the client was made for
  Subscription::Status requested_status = Subscription::STATUS_UNSPECIFIED;
};

struct Delivery::Notification {
  fhir::NotificationType type = fhir::NotificationType::kHeartbeat;
  std::string body;  // empty: nothing to send now
  uint64_t last_event = 0;
  std::vector<int64_t> event_micros;     // when each event's change committed
  std::vector<storage::Change> changes;  // the events' changes, for the audit trail
  absl::Time next = absl::InfiniteFuture();
};

struct Delivery::Attempt {
  bool ok = false;
  std::string outcome;  // metrics label
  std::string error;    // for $status: a code and reason, never the body
};

struct Delivery::Cancel {
  pplx::cancellation_token_source source;
};

Delivery::Delivery(storage::Store* store, domain::SubscriptionEvents* events, DeliveryOptions options,
                   metrics::Registry* registry)
    : store_(store),
      events_(events),
      options_(std::move(options)),
      outcomes_(registry->AddCounter("wmty_subscription_deliveries_total",
                                     "Subscription notification attempts by outcome (success, http_4xx, http_5xx, "
                                     "http_other, timeout, connection_error, refused).",
                                     {"outcome"})),
      latency_(registry
                   ->AddHistogram("wmty_subscription_delivery_latency_seconds",
                                  "From an event's commit to the receiver's 2xx for its notification.", {})
                   .Get({})),
      cancel_(std::make_unique<Cancel>()),
      pool_(static_cast<size_t>(std::max(1, options_.workers))) {}

Delivery::~Delivery() {
  // Cancelling cpprestsdk's requests or joining the pool can throw in theory;
  // a destructor must not.
  try {
    Stop();
  } catch (...) {
    log::Error("subscription delivery did not stop cleanly");
  }
}

void Delivery::Wake(const std::vector<std::string>& ids) {
  absl::MutexLock lock(&mu_);
  if (stopping_) return;
  for (const std::string& id : ids) {
    LanePtr& lane = lanes_[id];
    if (lane == nullptr) lane = std::make_shared<Lane>(id, pool_);
    if (lane->busy) {
      lane->again = true;
      continue;
    }
    if (absl::Now() < lane->not_before) continue;  // its timer runs it then
    ++lane->timer_generation;
    lane->timer.cancel();
    StartLocked(lane);
  }
}

void Delivery::StartLocked(const LanePtr& lane) {
  lane->busy = true;
  boost::asio::post(pool_, [this, lane] {
    thread_local const bool named = (NameThisThread("wmty-delivery"), true);
    (void)named;
    Run(lane);
  });
}

void Delivery::ScheduleLocked(const LanePtr& lane, absl::Time at) {
  const uint64_t generation = ++lane->timer_generation;
  lane->timer.expires_after(absl::ToChronoNanoseconds(std::max(absl::ZeroDuration(), at - absl::Now())));
  lane->timer.async_wait([this, lane, generation](const boost::system::error_code& ec) {
    if (ec) return;
    absl::MutexLock lock(&mu_);
    if (stopping_ || lane->busy || generation != lane->timer_generation) return;
    StartLocked(lane);
  });
}

void Delivery::Finish(const LanePtr& lane, absl::Time next, bool backoff) {
  absl::MutexLock lock(&mu_);
  lane->busy = false;
  lane->not_before = backoff ? next : absl::InfinitePast();
  if (stopping_) return;
  if (lane->again && !backoff) {
    lane->again = false;
    StartLocked(lane);
  } else if (next != absl::InfiniteFuture()) {
    lane->again = false;
    ScheduleLocked(lane, next);
  }
}

void Delivery::Run(const LanePtr& lane) {
  const absl::Time now = absl::Now();
  auto current = store_->NewReader()->GetCurrent(storage::SUBSCRIPTION, "", lane->id);
  Subscription sub;
  if (!current.ok() || (current->has_value() && !sub.ParseFromString((*current)->resource()))) {
    log::Error(
        "subscription delivery cannot read its subscription",
        {{"code", absl::StatusCodeToString(current.ok() ? absl::StatusCode::kDataLoss : current.status().code())}});
    return Finish(lane, now + options_.initial_backoff, /*backoff=*/true);
  }
  if (!current->has_value() || (*current)->retracted() || Ended(sub, now)) {
    // Deleted or off: the lane goes; a later change (matcher) makes a new one.
    absl::MutexLock lock(&mu_);
    lane->busy = false;
    auto it = lanes_.find(lane->id);
    if (it != lanes_.end() && it->second == lane && !lane->again) lanes_.erase(it);
    if (lane->again && !stopping_) {
      lane->again = false;
      StartLocked(lane);
    }
    return;
  }
  if (sub.status() == lane->requested_status) lane->requested_status = Subscription::STATUS_UNSPECIFIED;
  auto notification = Next(*lane, sub, now);
  if (!notification.ok()) {
    log::Error("subscription delivery cannot build a notification",
               {{"code", absl::StatusCodeToString(notification.status().code())}});
    return Finish(lane, now + options_.initial_backoff, /*backoff=*/true);
  }
  if (notification->body.empty()) return Finish(lane, notification->next);
  Send(lane, std::move(sub), std::move(*notification));
}

absl::StatusOr<Delivery::Notification> Delivery::Next(Lane& lane, const Subscription& sub, absl::Time now) {
  auto counters = events_->Counters(lane.id);
  if (!counters.ok()) return counters.status();
  if (!lane.loaded) {
    lane.state = counters->delivery;
    lane.loaded = true;
  }
  const uint64_t events = counters->match.events_since_start();
  {
    absl::MutexLock lock(&mu_);
    lane.seen_status = sub.status();
    lane.pending = events > lane.state.delivered_through() ? events - lane.state.delivered_through() : 0;
  }
  fhir::NotificationSubject subject;
  subject.base_url = options_.base_url;
  subject.subscription_id = lane.id;
  subject.subscription = sub;
  subject.events_since_start = events;
  subject.error = sub.error();
  Notification n;
  std::vector<fhir::NotificationEvent> batch;
  if (!lane.state.handshake_done() && sub.status() != Subscription::ACTIVE) {
    n.type = fhir::NotificationType::kHandshake;
    subject.status = Subscription::REQUESTED;
  } else if (lane.state.delivered_through() < events) {
    n.type = fhir::NotificationType::kEventNotification;
    if (auto s = LoadEvents(lane, sub, events, &n, &batch); !s.ok()) return s;
  } else if (sub.heartbeat_period_seconds() > 0) {
    const absl::Duration period = std::max(absl::Seconds(sub.heartbeat_period_seconds()), options_.min_heartbeat);
    if (now - lane.last_sent < period) {
      n.next = lane.last_sent + period;
      return n;
    }
    n.type = fhir::NotificationType::kHeartbeat;
  } else {
    return n;  // nothing to send until woken
  }
  auto body = fhir::NotificationBundle(subject, n.type, batch, sub.payload());
  if (!body.ok()) return body.status();
  n.body = std::move(*body);
  return n;
}

absl::Status Delivery::LoadEvents(const Lane& lane, const Subscription& sub, uint64_t events, Notification* n,
                                  std::vector<fhir::NotificationEvent>* batch) {
  const int max_count = sub.max_count() > 0 ? sub.max_count() : options_.default_max_count;
  auto stored = events_->ReadEvents(lane.id, lane.state.delivered_through() + 1, events,
                                    static_cast<size_t>(std::max(1, max_count)));
  if (!stored.ok()) return stored.status();
  if (stored->empty()) return absl::DataLossError("the subscription's undelivered events are missing");
  auto reader = store_->NewReader();
  for (storage::SubscriptionEvent& e : *stored) {
    fhir::NotificationEvent event;
    event.number = e.number();
    if (sub.payload() == Subscription::FULL_RESOURCE) {
      // The version the event matched (never a later one).
      const storage::Change& c = e.change();
      auto version = reader->GetVersion(c.kind(), c.patient_id(), c.id(), c.version());
      if (!version.ok()) return version.status();
      if (version->has_value()) event.version = std::move(**version);
    }
    n->event_micros.push_back(e.change().time_micros());
    n->changes.push_back(e.change());
    n->last_event = e.number();
    event.change = std::move(*e.mutable_change());
    batch->push_back(std::move(event));
  }
  return absl::OkStatus();
}

void Delivery::Send(const LanePtr& lane, Subscription sub, Notification notification) {
  if (options_.check_endpoint) {
    if (absl::Status s = options_.check_endpoint(sub.endpoint()); !s.ok()) {
      Attempt refused{false, "refused", absl::StrCat("endpoint refused: ", s.message())};
      return Done(lane, sub, notification, refused);
    }
  }
  web::http::http_request request(web::http::methods::POST);
  try {
    PrepareClient(*lane, sub);
    for (const std::string& line : sub.headers()) {
      const size_t colon = line.find(':');
      if (colon == std::string::npos) continue;
      request.headers().add(std::string(absl::StripAsciiWhitespace(line.substr(0, colon))),
                            std::string(absl::StripAsciiWhitespace(line.substr(colon + 1))));
    }
    request.set_body(notification.body, std::string(kFhirJson));
  } catch (const std::exception&) {
    Attempt bad{false, "connection_error", "the endpoint is not a usable URL"};
    return Done(lane, sub, notification, bad);
  }
  {
    absl::MutexLock lock(&mu_);
    ++in_flight_;
  }
  auto shared = std::make_shared<std::pair<Subscription, Notification>>(std::move(sub), std::move(notification));
  lane->http->request(request, cancel_->source.get_token())
      .then([this, lane, shared](pplx::task<web::http::http_response> task) {
        Attempt attempt;
        try {
          const web::http::status_code code = task.get().status_code();
          attempt.ok = code >= 200 && code < 300;
          attempt.outcome = attempt.ok ? "success" : code >= 500 ? "http_5xx" : code >= 400 ? "http_4xx" : "http_other";
          if (!attempt.ok) attempt.error = absl::StrCat("the endpoint answered HTTP ", code);
        } catch (const web::http::http_exception& e) {
          const bool timed_out = e.error_code() == std::errc::timed_out;
          attempt.outcome = timed_out ? "timeout" : "connection_error";
          attempt.error = timed_out ? "no answer within the timeout" : "could not connect to the endpoint";
        } catch (const std::exception&) {
          attempt.outcome = "connection_error";
          attempt.error = "the delivery was cancelled or failed";
        }
        boost::asio::post(pool_, [this, lane, shared, attempt = std::move(attempt)] {
          Done(lane, shared->first, shared->second, attempt);
        });
        absl::MutexLock lock(&mu_);
        --in_flight_;
      });
}

void Delivery::PrepareClient(Lane& lane, const Subscription& sub) {
  const absl::Duration timeout =
      sub.timeout_seconds() > 0 ? absl::Seconds(sub.timeout_seconds()) : options_.default_timeout;
  const std::string key = absl::StrCat(sub.endpoint(), "\n", absl::ToInt64Milliseconds(timeout));
  if (lane.http != nullptr && lane.http_key == key) return;
  client::http_client_config config;
  config.set_timeout(absl::ToChronoMilliseconds(timeout));
  config.set_validate_certificates(true);  // the system trust store
  if (!options_.client_cert_file.empty()) {
    config.set_ssl_context_callback(
        [cert = options_.client_cert_file, key_file = options_.client_key_file](boost::asio::ssl::context& ctx) {
          ctx.use_certificate_chain_file(cert);
          ctx.use_private_key_file(key_file, boost::asio::ssl::context::pem);
        });
  }
  lane.http = std::make_unique<client::http_client>(web::uri(sub.endpoint()), config);
  lane.http_key = key;
}

void Delivery::Done(const LanePtr& lane, const Subscription& sub, const Notification& n, const Attempt& attempt) {
  const absl::Time now = absl::Now();
  outcomes_.Get({attempt.outcome}).Increment();
  if (n.type == fhir::NotificationType::kEventNotification) Audit(sub, n, attempt);
  const storage::SubscriptionDeliveryState before = lane->state;
  storage::SubscriptionDeliveryState& state = lane->state;
  absl::Time next = now;
  bool backoff = false;
  // Asked for once the state is written, so $status agrees with the status.
  Subscription::Status status = Subscription::STATUS_UNSPECIFIED;
  if (attempt.ok) {
    state.set_failures(0);
    state.set_last_delivery_micros(absl::ToUnixMicros(now));
    state.set_total_deliveries(state.total_deliveries() + 1);
    lane->last_sent = now;
    if (n.type == fhir::NotificationType::kHandshake) state.set_handshake_done(true);
    if (n.type == fhir::NotificationType::kEventNotification) {
      state.set_delivered_through(n.last_event);
      for (int64_t micros : n.event_micros) latency_.Observe(absl::ToDoubleSeconds(now - absl::FromUnixMicros(micros)));
    }
    status = Subscription::ACTIVE;
  } else {
    state.set_failures(state.failures() + 1);
    state.set_total_failures(state.total_failures() + 1);
    state.set_last_error(attempt.error);
    state.set_last_error_micros(absl::ToUnixMicros(now));
    const bool handshake = n.type == fhir::NotificationType::kHandshake;
    if (handshake || state.failures() >= options_.failure_budget) status = Subscription::ERROR;
    next = now + Backoff(state.failures());
    backoff = true;
  }
  if (absl::Status s = events_->WriteDelivery(lane->id, before, state); !s.ok()) {
    // Not recorded: what was acknowledged is sent again (same event numbers).
    log::Error("subscription delivery state not written", {{"code", absl::StatusCodeToString(s.code())}});
    lane->loaded = false;
    next = now + options_.initial_backoff;
    backoff = true;
  }
  if (status != Subscription::STATUS_UNSPECIFIED) RequestStatus(*lane, sub, status, attempt.error);
  Finish(lane, next, backoff);
}

void Delivery::Audit(const Subscription& sub, const Notification& n, const Attempt& attempt) {
  // The receiver's host only: a URL's path or query may carry secrets.
  std::string host;
  try {
    host = web::uri(sub.endpoint()).host();
  } catch (const std::exception&) {
  }
  for (const storage::Change& change : n.changes) {
    storage::AuditRecord record;
    record.set_source("push");
    record.set_interaction("notification");
    record.set_action("E");
    record.set_resource_type(std::string(domain::FhirTypeOf(change.kind())));
    storage::Record focus;
    focus.set_kind(change.kind());
    focus.set_patient_id(change.patient_id());
    focus.set_id(change.id());
    record.set_resource_id(domain::FhirId(focus));
    record.set_patient_id(change.patient_id());
    record.set_agent(sub.owner_subject());
    record.set_client_id(sub.owner_client_id());
    record.set_outcome(attempt.ok ? 0 : 8);
    record.set_outcome_detail(attempt.ok ? "OK" : "UNAVAILABLE");
    record.set_remote(host);
    store_->AppendAudit(std::move(record));
  }
}

void Delivery::RequestStatus(Lane& lane, const Subscription& sub, Subscription::Status status,
                             const std::string& error) {
  if (!options_.set_status || sub.status() == status || lane.requested_status == status) return;
  lane.requested_status = status;
  options_.set_status(lane.id, status, error, [](absl::Status s) {
    if (!s.ok()) log::Warning("subscription status not changed", {{"code", absl::StatusCodeToString(s.code())}});
  });
}

absl::Duration Delivery::Backoff(int64_t failures) {
  // Full jitter: uniform in [0, min(max, initial * 2^(failures-1))].
  absl::Duration cap = options_.initial_backoff;
  for (int64_t i = 1; i < failures && cap < options_.max_backoff; ++i) cap *= 2;
  cap = std::min(cap, options_.max_backoff);
  thread_local absl::BitGen gen;
  return absl::Microseconds(absl::Uniform<int64_t>(absl::IntervalClosed, gen, 0, absl::ToInt64Microseconds(cap)));
}

void Delivery::Stop() {
  {
    absl::MutexLock lock(&mu_);
    if (stopping_) return;
    stopping_ = true;
    for (auto& [id, lane] : lanes_) {
      ++lane->timer_generation;
      lane->timer.cancel();
    }
  }
  cancel_->source.cancel();
  {
    absl::MutexLock lock(&mu_);
    mu_.Await(absl::Condition(
        +[](int* n) { return *n == 0; }, &in_flight_));
  }
  pool_.join();
  absl::MutexLock lock(&mu_);
  lanes_.clear();
}

DeliveryStats Delivery::Stats() const {
  absl::MutexLock lock(&mu_);
  DeliveryStats stats;
  stats.subscriptions = lanes_.size();
  for (const auto& [id, lane] : lanes_) {
    stats.pending_events_max = std::max(stats.pending_events_max, lane->pending);
    if (lane->seen_status == Subscription::ACTIVE) ++stats.active;
    if (lane->seen_status == Subscription::ERROR) ++stats.error;
    if (lane->seen_status == Subscription::REQUESTED) ++stats.requested;
  }
  return stats;
}

}  // namespace wmty::push
