// A rest-hook receiver for the push tests: the repo's real HTTP server
// (services/http, Boost.Beast) on 127.0.0.1 port 0, recording every
// notification Bundle it is sent (parsed), answering 200, or a set status
// for the next N requests, or holding requests until released (a hung
// receiver).
//
// Thread safety: every method may be called from any thread while it serves.
#ifndef WMTY_TESTS_PUSH_RECEIVER_H_
#define WMTY_TESTS_PUSH_RECEIVER_H_

#include <memory>
#include <string>
#include <vector>

#include <rapidjson/document.h>

#include "absl/strings/str_cat.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/clock.h"
#include "http/http_server.h"

namespace wmty::testing {

// What the receiver took from one notification.
struct Received {
  std::string type;  // handshake, heartbeat, event-notification
  std::string status;
  uint64_t events_since_start = 0;
  std::vector<uint64_t> event_numbers;
  std::vector<std::string> focus;  // notification-event focus references
  int entries = 0;                 // Bundle entries, the status included
  int resources = 0;               // focus entries carrying a resource
  std::string authorization;       // the Authorization header sent
  std::string body;
};

class Receiver final : public http::Handler {
 public:
  // With a certificate and key (PEM), it serves HTTPS.
  explicit Receiver(std::string tls_cert_pem = "", std::string tls_key_pem = "")
      : scheme_(tls_cert_pem.empty() ? "http" : "https") {
    http::HttpServerOptions options;
    options.listen = "127.0.0.1:0";
    options.io_threads = 2;
    options.tls_cert_pem = std::move(tls_cert_pem);
    options.tls_key_pem = std::move(tls_key_pem);
    server_ = std::move(*http::HttpServer::Start(options, this));
  }
  ~Receiver() override {
    Release();
    server_->Shutdown(absl::ZeroDuration());
  }

  std::string url() const { return absl::StrCat(scheme_, "://127.0.0.1:", server_->port(), "/hook"); }

  // The next `n` requests (handshakes included) get `status`.
  void FailNext(int n, http::Status status = http::Status::internal_server_error) {
    absl::MutexLock lock(&mu_);
    fail_next_ = n;
    fail_status_ = status;
  }
  // Every request gets `status` until Heal().
  void FailAlways(http::Status status = http::Status::service_unavailable) { FailNext(1 << 30, status); }
  void Heal() { FailNext(0); }
  // Requests are held unanswered until Release() (a hung receiver).
  void Hang() {
    absl::MutexLock lock(&mu_);
    hang_ = true;
  }
  void Release() {
    std::vector<http::Respond> held;
    {
      absl::MutexLock lock(&mu_);
      hang_ = false;
      held.swap(held_);
    }
    for (auto& respond : held) {
      http::Response r{http::Status::ok, 11};
      respond(std::move(r));
    }
  }
  int held() const {
    absl::MutexLock lock(&mu_);
    return static_cast<int>(held_.size());
  }
  int requests() const {
    absl::MutexLock lock(&mu_);
    return requests_;
  }
  // What was acknowledged with a 2xx, in arrival order.
  std::vector<Received> accepted() const {
    absl::MutexLock lock(&mu_);
    return accepted_;
  }
  // Waits until `done(accepted())` holds, up to `limit`; false on timeout.
  template <class F>
  bool WaitFor(F done, absl::Duration limit = absl::Seconds(30)) const {
    const absl::Time end = absl::Now() + limit;
    while (absl::Now() < end) {
      if (done(accepted())) return true;
      absl::SleepFor(absl::Milliseconds(10));
    }
    return done(accepted());
  }
  // Event numbers acknowledged, in order (duplicates kept).
  std::vector<uint64_t> EventNumbers() const {
    std::vector<uint64_t> out;
    for (const Received& r : accepted()) out.insert(out.end(), r.event_numbers.begin(), r.event_numbers.end());
    return out;
  }

  void Handle(http::Request request, http::Respond respond) override {
    absl::MutexLock lock(&mu_);
    ++requests_;
    if (hang_) {
      held_.push_back(std::move(respond));
      return;
    }
    if (fail_next_ > 0) {
      --fail_next_;
      respond(http::Response{fail_status_, request.version()});
      return;
    }
    accepted_.push_back(Parse(request));
    respond(http::Response{http::Status::ok, request.version()});
  }
  http::Response MakeError(http::Status status, const std::string&, unsigned version, bool) override {
    return http::Response{status, version};
  }

 private:
  static Received Parse(const http::Request& request) {
    Received r;
    r.body = request.body();
    auto auth = request.find(boost::beast::http::field::authorization);
    if (auth != request.end()) r.authorization = std::string(auth->value());
    rapidjson::Document d;
    d.Parse(r.body.c_str());
    if (!d.IsObject() || !d.HasMember("entry")) return r;
    const auto& entries = d["entry"];
    r.entries = static_cast<int>(entries.Size());
    for (rapidjson::SizeType i = 1; i < entries.Size(); ++i) {
      if (entries[i].HasMember("resource")) ++r.resources;
    }
    const auto& params = entries[0]["resource"]["parameter"];
    for (const auto& p : params.GetArray()) {
      const std::string name = p["name"].GetString();
      if (name == "type") r.type = p["valueCode"].GetString();
      if (name == "status") r.status = p["valueCode"].GetString();
      if (name == "events-since-subscription-start") {
        r.events_since_start = std::stoull(p["valueString"].GetString());
      }
      if (name != "notification-event") continue;
      for (const auto& part : p["part"].GetArray()) {
        const std::string part_name = part["name"].GetString();
        if (part_name == "event-number") r.event_numbers.push_back(std::stoull(part["valueString"].GetString()));
        if (part_name == "focus") r.focus.push_back(part["valueReference"]["reference"].GetString());
      }
    }
    return r;
  }

  mutable absl::Mutex mu_;
  int fail_next_ ABSL_GUARDED_BY(mu_) = 0;
  http::Status fail_status_ ABSL_GUARDED_BY(mu_) = http::Status::internal_server_error;
  bool hang_ ABSL_GUARDED_BY(mu_) = false;
  std::vector<http::Respond> held_ ABSL_GUARDED_BY(mu_);
  int requests_ ABSL_GUARDED_BY(mu_) = 0;
  std::vector<Received> accepted_ ABSL_GUARDED_BY(mu_);
  const std::string scheme_;
  std::unique_ptr<http::HttpServer> server_;
};

}  // namespace wmty::testing

#endif  // WMTY_TESTS_PUSH_RECEIVER_H_
