// Matcher: turns the change log into each FHIR Subscription's numbered
// events. One thread reads the log in order from a durable cursor
// (domain::SubscriptionEvents); for each change it decides, per live
// subscription, whether the change is one of its events (`is_event`:
// domain::IsSubscriptionEvent, which applies the topic, the filters and the
// owner's read limits), and after a step of changes writes the new events,
// the subscriptions' counters and the cursor in ONE atomic state write. A
// crash re-matches from the cursor and hands out the same event numbers.
//
// Subscriptions themselves come from the log too: the SUBSCRIPTION create at
// sequence S starts one (its events are the matching changes after S), an
// update replaces its definition as of that point, status `off` or a delete
// ends it. At start the definitions as of the cursor are read back from the
// subscriptions' versions.
//
// Off the commit path: Wake() (from the store's commit listener) only
// signals the thread; a slow step delays notifications, never writes.
//
// Errors: a failed step (store I/O) is logged and retried after a pause,
// from the same cursor. A cursor the log no longer reaches (trimmed past it;
// retention keeps a floor at the cursor, so only after a misconfiguration) is
// logged as an error and matching goes on from the oldest entry held.
//
// Thread safety: Wake() and cursor() from any thread; Start/Stop from one.
#ifndef WMTY_PUSH_MATCHER_H_
#define WMTY_PUSH_MATCHER_H_

#include <atomic>
#include <cstdint>
#include <functional>
#include <string>
#include <thread>
#include <vector>

#include "absl/container/flat_hash_map.h"
#include "absl/container/flat_hash_set.h"
#include "absl/status/status.h"
#include "absl/synchronization/mutex.h"
#include "domain/subscription_events.h"
#include "storage/store.h"
#include "wmty/storage/subscription.pb.h"

namespace wmty::push {

// Is the change (which wrote `version`) an event of the subscription?
using EventPredicate =
    std::function<bool(const storage::Subscription&, const storage::Change&, const storage::Record& version)>;

struct MatcherOptions {
  // Most changes applied per atomic step.
  size_t max_changes_per_step = 512;
  EventPredicate is_event;
  // Pause after a failed step.
  absl::Duration retry_pause = absl::Seconds(1);
};

class Matcher {
 public:
  // `touched(ids)` runs on the matcher thread after each committed step with
  // the subscriptions that got events or changed; it must not block.
  Matcher(storage::Store* store, domain::SubscriptionEvents* events, MatcherOptions options,
          std::function<void(const std::vector<std::string>& ids)> touched);
  ~Matcher();  // Stop()
  Matcher(const Matcher&) = delete;
  Matcher& operator=(const Matcher&) = delete;

  // Reads the cursor (none yet: from the oldest change the log holds) and
  // the subscriptions as of it, then starts the thread. Errors: the store's.
  absl::Status Start();
  // Stops the thread (after the step in progress). Idempotent.
  void Stop();
  // Something was committed: look at the log again. Cheap, never blocks long.
  void Wake();
  // The last sequence matched and durably recorded.
  uint64_t cursor() const { return cursor_.load(std::memory_order_acquire); }
  // Live (not ended) subscriptions.
  size_t live_subscriptions() const { return live_.load(std::memory_order_relaxed); }

 private:
  struct Live {
    storage::Subscription definition;
    storage::SubscriptionMatchState state;
  };
  // Step state: what one pass over a run of changes produced.
  struct Step;

  void Loop();
  static bool WokenOrStopping(Matcher* m);
  // One step: false when there was nothing to match.
  absl::StatusOr<bool> RunStep();
  absl::Status Apply(const storage::Reader& reader, const storage::Change& change, Step& step);
  absl::Status ApplySubscriptionChange(const storage::Reader& reader, const storage::Change& change, Step& step);
  absl::Status LoadSubscriptions(const storage::Reader& reader);
  // The version of subscription `id` current at `sequence` (nullopt: none).
  static absl::StatusOr<std::optional<storage::Record>> VersionAt(const storage::Reader& reader, absl::string_view id,
                                                                  uint64_t sequence);

  storage::Store* const store_;
  domain::SubscriptionEvents* const events_;
  const MatcherOptions options_;
  const std::function<void(const std::vector<std::string>&)> touched_;

  // Matcher thread only (and Start, before it runs).
  absl::flat_hash_map<std::string, Live> subscriptions_;
  std::atomic<uint64_t> cursor_{0};
  std::atomic<size_t> live_{0};

  absl::Mutex mu_;
  bool woken_ ABSL_GUARDED_BY(mu_) = false;
  bool stopping_ ABSL_GUARDED_BY(mu_) = false;
  std::thread thread_;
};

}  // namespace wmty::push

#endif  // WMTY_PUSH_MATCHER_H_
