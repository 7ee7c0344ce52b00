// RemoteJwks: fetching the JWKS with cpprestsdk, the refresh thread and the
// rate limit on refreshes for unknown key ids (remote_jwks.h).
#include "auth/remote_jwks.h"

#include <algorithm>
#include <chrono>
#include <exception>
#include <mutex>

#include <cpprest/http_client.h>
#include <pplx/threadpool.h>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "common/log.h"
#include "common/thread_name.h"

namespace wmty::auth {
namespace {

constexpr size_t kMaxJwksBytes = 1024 * 1024;

// cpprestsdk runs its I/O on a process-wide pool that defaults to 40
// threads; a few JWKS fetches an hour need two. Only effective before
// cpprestsdk's first use, so done once, before our first client.
void SizeCpprestPool() {
  static std::once_flag once;
  std::call_once(once, [] {
    try {
      crossplat::threadpool::initialize_with_threads(2);
    } catch (const std::exception&) {
      // Already initialized by another user of cpprestsdk: keep theirs.
    }
  });
}

bool IsLoopbackHost(const std::string& host) {
  return host == "127.0.0.1" || host == "localhost" || host == "::1" || host == "[::1]";
}

absl::Status CheckUrl(const std::string& url) {
  if (!web::uri::validate(url)) return absl::InvalidArgumentError("--auth_jwks_url is not a valid URL");
  const web::uri uri(url);
  if (uri.scheme() == "https") return absl::OkStatus();
  if (uri.scheme() == "http" && IsLoopbackHost(uri.host())) return absl::OkStatus();
  return absl::InvalidArgumentError(
      "--auth_jwks_url must be https:// (plain http:// only to a loopback host: keys fetched in the clear could be "
      "replaced on the way)");
}

// The URL without its query and fragment, for log lines.
std::string LoggableUrl(const std::string& url) {
  const web::uri uri(url);
  return absl::StrCat(uri.scheme(), "://", uri.host(), uri.port() > 0 ? absl::StrCat(":", uri.port()) : "", uri.path());
}

// GET `url`; the body of a 200, else why not.
absl::StatusOr<std::string> HttpGet(const std::string& url, absl::Duration timeout) {
  web::http::client::http_client_config config;
  config.set_timeout(std::chrono::milliseconds(absl::ToInt64Milliseconds(timeout)));
  config.set_validate_certificates(true);
  try {
    web::http::client::http_client client(url, config);
    web::http::http_request request(web::http::methods::GET);
    request.headers().add(U("Accept"), U("application/json, application/jwk-set+json"));
    web::http::http_response response = client.request(request).get();
    if (response.status_code() != web::http::status_codes::OK) {
      return absl::UnavailableError(absl::StrCat("the JWKS URL answered HTTP ", response.status_code()));
    }
    if (response.headers().content_length() > kMaxJwksBytes) {
      return absl::UnavailableError("the JWKS document is larger than 1 MiB");
    }
    std::string body = response.extract_utf8string(/*ignore_content_type=*/true).get();
    if (body.size() > kMaxJwksBytes) return absl::UnavailableError("the JWKS document is larger than 1 MiB");
    return body;
  } catch (const std::exception& e) {
    // cpprestsdk's messages name the failure (timeout, refused, TLS), not data.
    return absl::UnavailableError(absl::StrCat("fetching the JWKS failed: ", e.what()));
  }
}

// The signing keys at the URL, or why there are none.
absl::StatusOr<KeySet> FetchKeys(const RemoteJwksOptions& options) {
  absl::StatusOr<std::string> body = HttpGet(options.url, options.fetch_timeout);
  if (!body.ok()) return body.status();
  absl::StatusOr<KeySet> keys = KeysFromJwks(*body);
  if (!keys.ok()) return absl::UnavailableError(absl::StrCat("the JWKS is not usable: ", keys.status().message()));
  return keys;
}

}  // namespace

RemoteJwks::RemoteJwks(RemoteJwksOptions options) : options_(std::move(options)) {}

absl::StatusOr<std::shared_ptr<RemoteJwks>> RemoteJwks::Start(RemoteJwksOptions options) {
  if (absl::Status url = CheckUrl(options.url); !url.ok()) return url;
  if (options.refresh_interval <= absl::ZeroDuration() || options.fetch_timeout <= absl::ZeroDuration() ||
      options.min_refresh_interval < absl::ZeroDuration()) {
    return absl::InvalidArgumentError("JWKS refresh intervals and the fetch timeout must be positive");
  }
  SizeCpprestPool();
  std::shared_ptr<RemoteJwks> jwks(new RemoteJwks(std::move(options)));
  const absl::Time give_up = absl::Now() + jwks->options_.startup_wait;
  absl::Duration backoff = absl::Milliseconds(200);
  absl::Status last;
  for (;;) {
    {
      absl::MutexLock lock(&jwks->fetch_mu_);
      last = jwks->FetchLocked();
    }
    if (last.ok()) break;
    if (absl::Now() + backoff > give_up) {
      return absl::UnavailableError(absl::StrCat("no keys from --auth_jwks_url within ",
                                                 absl::FormatDuration(jwks->options_.startup_wait), ": ",
                                                 last.message()));
    }
    absl::SleepFor(backoff);
    backoff = std::min(backoff * 2, absl::Seconds(5));
  }
  jwks->refresher_ = std::thread([raw = jwks.get()] { raw->RefreshLoop(); });
  return jwks;
}

RemoteJwks::~RemoteJwks() {
  {
    absl::MutexLock lock(&mu_);
    stopping_ = true;
  }
  if (refresher_.joinable()) refresher_.join();
}

std::shared_ptr<const KeySet> RemoteJwks::Current() const {
  absl::MutexLock lock(&mu_);
  return keys_;
}

std::shared_ptr<const KeySet> RemoteJwks::RefreshForUnknownKid(absl::string_view kid) {
  const std::shared_ptr<const KeySet> before = Current();
  absl::MutexLock lock(&fetch_mu_);
  // Someone may have fetched while we waited for the lock.
  if (std::shared_ptr<const KeySet> now = Current(); now != before) return now;
  if (absl::Now() - last_attempt_ < options_.min_refresh_interval) return nullptr;
  (void)kid;  // chosen by whoever sent the token: not logged
  log::Info("a token names an unknown key id: fetching the JWKS again");
  if (!FetchLocked().ok()) return nullptr;
  return Current();
}

absl::Status RemoteJwks::FetchLocked() {
  last_attempt_ = absl::Now();
  absl::StatusOr<KeySet> keys = FetchKeys(options_);
  absl::MutexLock lock(&mu_);
  if (!keys.ok()) {
    ++failures_;
    log::Warning("JWKS fetch failed; keeping the last good keys",
                 {{"url", LoggableUrl(options_.url)}, {"error", std::string(keys.status().message())}});
    return keys.status();
  }
  ++successes_;
  keys_ = std::make_shared<const KeySet>(std::move(*keys));
  return absl::OkStatus();
}

void RemoteJwks::RefreshLoop() {
  NameThisThread("wmty-jwks");
  for (;;) {
    {
      absl::MutexLock lock(&mu_);
      const bool stop = mu_.AwaitWithTimeout(absl::Condition(&stopping_), options_.refresh_interval);
      if (stop) return;
    }
    absl::MutexLock lock(&fetch_mu_);
    (void)FetchLocked();
  }
}

int RemoteJwks::successful_fetches() const {
  absl::MutexLock lock(&mu_);
  return successes_;
}

int RemoteJwks::failed_fetches() const {
  absl::MutexLock lock(&mu_);
  return failures_;
}

}  // namespace wmty::auth
