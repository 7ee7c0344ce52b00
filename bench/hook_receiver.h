// HookReceiver: the rest-hook receiver of bench/push_bench.cc, a Boost.Beast
// HTTP/1.1 server on 127.0.0.1 (port chosen by the OS) that answers 200 to
// every POST and hands each notification Bundle's parts to a callback:
// the subscription it names, the SubscriptionStatus type (handshake,
// heartbeat, event-notification) and, per event, the focus reference.
//
// Threading: `threads` threads run the io_context; the callback runs on them
// (concurrently for different connections) and must be thread-safe.
#ifndef WMTY_BENCH_HOOK_RECEIVER_H_
#define WMTY_BENCH_HOOK_RECEIVER_H_

#include <functional>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include <boost/asio/dispatch.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/strand.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>

#include "rapidjson/document.h"

namespace wmty::bench {

// What one notification said.
struct Notification {
  std::string subscription;          // "Subscription/<id>" (as sent)
  std::string type;                  // handshake | heartbeat | event-notification | ...
  std::vector<std::string> focuses;  // per event: the focus reference ("Goal/<id>"), in order
  std::vector<std::string> event_numbers;
};

// Reads a SubscriptionStatus Parameters (the Bundle's first entry).
inline Notification ParseNotification(const std::string& body) {
  Notification out;
  rapidjson::Document doc;
  doc.Parse(body.data(), body.size());
  if (doc.HasParseError() || !doc.IsObject() || !doc.HasMember("entry") || !doc["entry"].IsArray() ||
      doc["entry"].Empty()) {
    return out;
  }
  const auto& first = doc["entry"][0];
  if (!first.HasMember("resource") || !first["resource"].HasMember("parameter")) return out;
  for (const auto& p : first["resource"]["parameter"].GetArray()) {
    const std::string name = p["name"].GetString();
    if (name == "type" && p.HasMember("valueCode")) out.type = p["valueCode"].GetString();
    if (name == "subscription" && p.HasMember("valueReference") && p["valueReference"].HasMember("reference")) {
      out.subscription = p["valueReference"]["reference"].GetString();
    }
    if (name != "notification-event" || !p.HasMember("part")) continue;
    std::string focus, number;
    for (const auto& part : p["part"].GetArray()) {
      const std::string pn = part["name"].GetString();
      if (pn == "focus" && part.HasMember("valueReference") && part["valueReference"].HasMember("reference")) {
        focus = part["valueReference"]["reference"].GetString();
      }
      if (pn == "event-number" && part.HasMember("valueString")) number = part["valueString"].GetString();
      if (pn == "event-number" && part.HasMember("valueInteger64")) number = part["valueInteger64"].GetString();
    }
    out.focuses.push_back(focus);
    out.event_numbers.push_back(number);
  }
  return out;
}

class HookReceiver {
 public:
  using Callback = std::function<void(const Notification&)>;

  HookReceiver(int threads, Callback callback) : acceptor_(io_), callback_(std::move(callback)) {
    namespace net = boost::asio;
    const net::ip::tcp::endpoint endpoint(net::ip::make_address("127.0.0.1"), 0);
    acceptor_.open(endpoint.protocol());
    acceptor_.set_option(net::socket_base::reuse_address(true));
    acceptor_.bind(endpoint);
    acceptor_.listen(net::socket_base::max_listen_connections);
    Accept();
    for (int i = 0; i < threads; ++i) threads_.emplace_back([this] { io_.run(); });
  }
  ~HookReceiver() {
    io_.stop();
    for (auto& t : threads_) t.join();
  }
  HookReceiver(const HookReceiver&) = delete;
  HookReceiver& operator=(const HookReceiver&) = delete;

  int port() const { return acceptor_.local_endpoint().port(); }

 private:
  class Session : public std::enable_shared_from_this<Session> {
   public:
    Session(boost::asio::ip::tcp::socket&& socket, const Callback* callback)
        : stream_(std::move(socket)), callback_(callback) {}
    void Start() {
      boost::asio::dispatch(stream_.get_executor(), [self = shared_from_this()] { self->Read(); });
    }

   private:
    void Read() {
      request_ = {};
      boost::beast::http::async_read(
          stream_, buffer_, request_,
          [self = shared_from_this()](boost::beast::error_code ec, std::size_t) { self->OnRead(ec); });
    }
    void OnRead(boost::beast::error_code ec) {
      namespace http = boost::beast::http;
      if (ec) return;
      (*callback_)(ParseNotification(request_.body()));
      auto response = std::make_shared<http::response<http::string_body>>(http::status::ok, request_.version());
      response->keep_alive(request_.keep_alive());
      response->prepare_payload();
      http::async_write(stream_, *response,
                        [self = shared_from_this(), response](boost::beast::error_code ec, std::size_t) {
                          if (ec || !response->keep_alive()) return;
                          self->Read();
                        });
    }
    boost::beast::tcp_stream stream_;
    boost::beast::flat_buffer buffer_;
    boost::beast::http::request<boost::beast::http::string_body> request_;
    const Callback* callback_;
  };

  void Accept() {
    acceptor_.async_accept(boost::asio::make_strand(io_),
                           [this](boost::beast::error_code ec, boost::asio::ip::tcp::socket socket) {
                             if (!ec) {
                               socket.set_option(boost::asio::ip::tcp::no_delay(true));
                               std::make_shared<Session>(std::move(socket), &callback_)->Start();
                             }
                             if (acceptor_.is_open()) Accept();
                           });
  }

  boost::asio::io_context io_;
  boost::asio::ip::tcp::acceptor acceptor_;
  Callback callback_;
  std::vector<std::thread> threads_;
};

}  // namespace wmty::bench

#endif  // WMTY_BENCH_HOOK_RECEIVER_H_
