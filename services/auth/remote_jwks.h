// RemoteJwks: the authorization server's signing keys, fetched from its JWKS
// URL (--auth_jwks_url) and kept fresh, so key rotation needs no restart.
//
// Fetching is outbound HTTP(S) with cpprestsdk's http_client: TLS checks the
// server's certificate against the system trust store; every fetch has a
// timeout; bodies over 1 MiB are refused. Plain http:// is accepted only for
// a loopback host (tests, a sidecar), since keys fetched in the clear could be
// swapped by anyone on the path.
//
// When keys are fetched:
//   - at Start: until one fetch succeeds, for up to startup_wait (retrying
//     with backoff); if none does, Start fails and wmtyd does not start;
//   - every refresh_interval on a background thread;
//   - when a token names a `kid` the current keys lack (the server rotated):
//     at once, on the verifying thread, but at most once per
//     min_refresh_interval, so a stream of tokens with made-up kids cannot
//     turn wmtyd into a traffic source against the authorization server.
// A fetch that fails, or returns a document without usable keys, keeps the
// last good keys (and logs a warning without the URL's query or the body).
//
// Thread safety: all methods may be called concurrently. Fetches are
// serialized: callers that arrive during one wait for it and share its result.
#ifndef WMTY_AUTH_REMOTE_JWKS_H_
#define WMTY_AUTH_REMOTE_JWKS_H_

#include <memory>
#include <string>
#include <thread>

#include "absl/base/thread_annotations.h"
#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "auth/token_verifier.h"

namespace wmty::auth {

struct RemoteJwksOptions {
  std::string url;  // https://..., or http:// to a loopback host
  absl::Duration refresh_interval = absl::Minutes(10);
  absl::Duration min_refresh_interval = absl::Minutes(1);
  absl::Duration fetch_timeout = absl::Seconds(5);
  absl::Duration startup_wait = absl::Seconds(30);
};

class RemoteJwks : public KeySource {
 public:
  // Fetches the keys (see above) and starts the refresh thread. Errors:
  // INVALID_ARGUMENT for a bad URL or options; UNAVAILABLE when no fetch
  // succeeded within startup_wait (the message says why the last one failed).
  static absl::StatusOr<std::shared_ptr<RemoteJwks>> Start(RemoteJwksOptions options);
  // Stops the refresh thread (waits for a fetch in progress).
  ~RemoteJwks() override;

  std::shared_ptr<const KeySet> Current() const override;
  std::shared_ptr<const KeySet> RefreshForUnknownKid(absl::string_view kid) override;

  // Fetches that succeeded / failed since Start (for tests and logs).
  int successful_fetches() const;
  int failed_fetches() const;

 private:
  explicit RemoteJwks(RemoteJwksOptions options);
  // One fetch; on success replaces the keys. Caller holds fetch_mu_.
  absl::Status FetchLocked() ABSL_EXCLUSIVE_LOCKS_REQUIRED(fetch_mu_);
  void RefreshLoop();

  const RemoteJwksOptions options_;
  // Held for the duration of a fetch; protects last_attempt_.
  absl::Mutex fetch_mu_;
  absl::Time last_attempt_ ABSL_GUARDED_BY(fetch_mu_) = absl::InfinitePast();
  // Protects the keys and counters, never held across I/O.
  mutable absl::Mutex mu_;
  std::shared_ptr<const KeySet> keys_ ABSL_GUARDED_BY(mu_);
  int successes_ ABSL_GUARDED_BY(mu_) = 0;
  int failures_ ABSL_GUARDED_BY(mu_) = 0;
  bool stopping_ ABSL_GUARDED_BY(mu_) = false;
  std::thread refresher_;
};

}  // namespace wmty::auth

#endif  // WMTY_AUTH_REMOTE_JWKS_H_
