#include "http/http_server.h"

#include <atomic>
#include <optional>
#include <thread>
#include <type_traits>
#include <vector>

#include <boost/asio/dispatch.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/strand.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/ssl.hpp>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "common/log.h"

namespace wmty::http {
namespace {

namespace beast = boost::beast;
namespace bhttp = boost::beast::http;
namespace net = boost::asio;
namespace ssl = boost::asio::ssl;
using tcp = boost::asio::ip::tcp;

// How long a closing TLS connection waits for the peer's close_notify.
constexpr std::chrono::seconds kTlsShutdownTimeout{2};

bool IsHttpParseError(const beast::error_code& ec) {
  return ec.category() == bhttp::make_error_code(bhttp::error::bad_target).category();
}

}  // namespace

struct HttpServer::Impl {
  HttpServerOptions options;
  Handler* handler = nullptr;
  net::io_context ioc;
  tcp::acceptor acceptor{net::make_strand(ioc)};
  std::vector<std::thread> threads;
  std::atomic<int> in_flight{0};
  std::atomic<bool> stopping{false};
  int port = 0;
  bool shut_down = false;
  // Set when TLS is configured; shared by every TLS session.
  std::optional<ssl::context> tls;

  explicit Impl(int threads_hint) : ioc(threads_hint) {}
  void Accept();
};

namespace {

// Stream is beast::tcp_stream (plaintext) or beast::ssl_stream<beast::tcp_stream> (TLS).
template <class Stream>
class Session : public std::enable_shared_from_this<Session<Stream>> {
  static constexpr bool kTls = !std::is_same_v<Stream, beast::tcp_stream>;
  using std::enable_shared_from_this<Session<Stream>>::shared_from_this;

 public:
  Session(tcp::socket&& socket, HttpServer::Impl* server) requires(!kTls)
      : stream_(std::move(socket)), server_(server) {
    SetRemote();
  }
  Session(tcp::socket&& socket, HttpServer::Impl* server) requires(kTls)
      : stream_(std::move(socket), *server->tls), server_(server) {
    SetRemote();
  }

  void Start() {
    if constexpr (kTls) {
      net::dispatch(stream_.get_executor(), [self = shared_from_this()] { self->Handshake(); });
    } else {
      net::dispatch(stream_.get_executor(), [self = shared_from_this()] { self->Read(); });
    }
  }

 private:
  beast::tcp_stream& Tcp() { return beast::get_lowest_layer(stream_); }

  void SetRemote() {
    beast::error_code ec;
    const tcp::endpoint peer = Tcp().socket().remote_endpoint(ec);
    if (!ec) {
      const std::string ip = peer.address().to_string();
      remote_ = peer.address().is_v6() ? absl::StrCat("[", ip, "]:", peer.port()) : absl::StrCat(ip, ":", peer.port());
    }
  }

  // TLS only: the handshake, under the read timeout, before the first read.
  void Handshake() {
    if (server_->stopping.load()) return CloseSocket();
    Tcp().expires_after(absl::ToChronoSeconds(server_->options.read_timeout));
    stream_.async_handshake(ssl::stream_base::server, [self = shared_from_this()](beast::error_code ec) {
      if (ec) return self->CloseSocket();  // no TLS session to shut down
      self->tls_up_ = true;
      self->Read();
    });
  }

  void Read() {
    if (server_->stopping.load()) return Close();
    parser_.emplace();
    parser_->header_limit(static_cast<std::uint32_t>(server_->options.max_header_bytes));
    parser_->body_limit(server_->options.max_body_bytes);
    Tcp().expires_after(absl::ToChronoSeconds(server_->options.read_timeout));
    bhttp::async_read(stream_, buffer_, *parser_,
                      [self = shared_from_this()](beast::error_code ec, std::size_t) { self->OnRead(ec); });
  }

  void OnRead(beast::error_code ec) {
    if (ec == bhttp::error::end_of_stream || ec == beast::error::timeout || ec == net::error::operation_aborted) {
      return Close();
    }
    if (ec == bhttp::error::body_limit) {
      return Refuse(Status::payload_too_large,
                    absl::StrCat("request body larger than ", server_->options.max_body_bytes, " bytes"));
    }
    if (ec == bhttp::error::header_limit) {
      return Refuse(Status::request_header_fields_too_large,
                    absl::StrCat("request headers larger than ", server_->options.max_header_bytes, " bytes"));
    }
    if (ec && IsHttpParseError(ec)) return Refuse(Status::bad_request, "malformed HTTP request");
    if (ec) return Close();

    Tcp().expires_never();  // the handler may take as long as the request's own deadline
    server_->in_flight.fetch_add(1);
    Request request = parser_->release();
    keep_alive_ = request.keep_alive();
    // Only the server says who the peer is.
    request.erase(kRemoteAddressHeader);
    request.set(kRemoteAddressHeader, remote_);
    server_->handler->Handle(std::move(request), [self = shared_from_this()](Response response) {
      net::post(self->stream_.get_executor(),
                [self, response = std::move(response)]() mutable { self->Write(std::move(response), true); });
    });
  }

  // Answers a request that never reached the handler, then closes.
  void Refuse(Status status, const std::string& message) {
    keep_alive_ = false;
    const unsigned version = parser_.has_value() ? parser_->get().version() : 11;
    server_->in_flight.fetch_add(1);
    Write(server_->handler->MakeError(status, message, version, false), true);
  }

  void Write(Response response, bool counted) {
    if (server_->stopping.load()) keep_alive_ = false;
    response.keep_alive(keep_alive_);
    response.prepare_payload();
    auto shared = std::make_shared<Response>(std::move(response));
    Tcp().expires_after(absl::ToChronoSeconds(server_->options.read_timeout));
    bhttp::async_write(stream_, *shared,
                       [self = shared_from_this(), shared, counted](beast::error_code ec, std::size_t) {
                         if (counted) self->server_->in_flight.fetch_sub(1);
                         if (ec || !self->keep_alive_) return self->Close();
                         self->Read();
                       });
  }

  void Close() {
    if constexpr (kTls) {
      // Sends close_notify and waits briefly for the peer's; a timeout or
      // error (the socket may already be closed) just closes the socket.
      if (tls_up_ && Tcp().socket().is_open()) {
        tls_up_ = false;
        Tcp().expires_after(kTlsShutdownTimeout);
        stream_.async_shutdown([self = shared_from_this()](beast::error_code) { self->CloseSocket(); });
        return;
      }
    }
    CloseSocket();
  }

  void CloseSocket() {
    beast::error_code ignored;
    Tcp().socket().shutdown(tcp::socket::shutdown_both, ignored);
    Tcp().close();
  }

  Stream stream_;
  bool tls_up_ = false;  // TLS: handshake done, shutdown not yet started
  beast::flat_buffer buffer_;
  std::optional<bhttp::request_parser<bhttp::string_body>> parser_;
  HttpServer::Impl* server_;
  bool keep_alive_ = true;
  std::string remote_;  // the peer's "ip:port", for kRemoteAddressHeader
};

}  // namespace

void HttpServer::Impl::Accept() {
  acceptor.async_accept(net::make_strand(ioc), [this](beast::error_code ec, tcp::socket socket) {
    if (ec) {
      if (ec == net::error::operation_aborted || stopping.load()) return;
      log::Warning("http accept failed", {{"error", ec.message()}});
    } else {
      beast::error_code ignored;
      socket.set_option(tcp::no_delay(true), ignored);
      if (tls.has_value()) {
        std::make_shared<Session<beast::ssl_stream<beast::tcp_stream>>>(std::move(socket), this)->Start();
      } else {
        std::make_shared<Session<beast::tcp_stream>>(std::move(socket), this)->Start();
      }
    }
    if (!stopping.load()) Accept();
  });
}

HttpServer::HttpServer(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}

absl::StatusOr<std::unique_ptr<HttpServer>> HttpServer::Start(const HttpServerOptions& options, Handler* handler) {
  const size_t colon = options.listen.rfind(':');
  int port = 0;
  if (colon == std::string::npos || !absl::SimpleAtoi(options.listen.substr(colon + 1), &port) || port < 0 ||
      port > 65535) {
    return absl::InvalidArgumentError(absl::StrCat("bad listen address ", options.listen, " (want host:port)"));
  }
  std::string host = options.listen.substr(0, colon);
  if (host.size() >= 2 && host.front() == '[' && host.back() == ']') host = host.substr(1, host.size() - 2);
  beast::error_code ec;
  const auto address = net::ip::make_address(host, ec);
  if (ec) return absl::InvalidArgumentError(absl::StrCat("bad listen host ", host));

  auto impl = std::make_unique<Impl>(options.io_threads);
  impl->options = options;
  impl->handler = handler;
  if (options.tls_cert_pem.empty() != options.tls_key_pem.empty()) {
    return absl::InvalidArgumentError("a TLS certificate needs its private key, and a key its certificate");
  }
  if (!options.tls_client_ca_pem.empty() && options.tls_cert_pem.empty()) {
    return absl::InvalidArgumentError("client certificate verification (mTLS) needs TLS");
  }
  if (!options.tls_cert_pem.empty()) {
    ssl::context& tls = impl->tls.emplace(ssl::context::tls_server);
    tls.set_options(ssl::context::default_workarounds | ssl::context::no_sslv2 | ssl::context::no_sslv3 |
                        ssl::context::no_tlsv1 | ssl::context::no_tlsv1_1 | ssl::context::single_dh_use,
                    ec);
    if (ec) return absl::InternalError(absl::StrCat("TLS setup failed: ", ec.message()));
    tls.use_certificate_chain(net::buffer(options.tls_cert_pem), ec);
    if (ec) return absl::InvalidArgumentError(absl::StrCat("bad TLS certificate: ", ec.message()));
    tls.use_private_key(net::buffer(options.tls_key_pem), ssl::context::pem, ec);
    if (ec) return absl::InvalidArgumentError(absl::StrCat("bad TLS private key: ", ec.message()));
    if (SSL_CTX_check_private_key(tls.native_handle()) != 1) {
      return absl::InvalidArgumentError("the TLS private key does not match the certificate");
    }
    if (!options.tls_client_ca_pem.empty()) {
      tls.add_certificate_authority(net::buffer(options.tls_client_ca_pem), ec);
      if (ec) return absl::InvalidArgumentError(absl::StrCat("bad TLS client CA: ", ec.message()));
      tls.set_verify_mode(ssl::verify_peer | ssl::verify_fail_if_no_peer_cert, ec);
      if (ec) return absl::InternalError(absl::StrCat("TLS setup failed: ", ec.message()));
    }
  }
  const tcp::endpoint endpoint(address, static_cast<unsigned short>(port));
  impl->acceptor.open(endpoint.protocol(), ec);
  if (!ec) impl->acceptor.set_option(net::socket_base::reuse_address(true), ec);
  if (!ec) impl->acceptor.bind(endpoint, ec);
  if (!ec) impl->acceptor.listen(net::socket_base::max_listen_connections, ec);
  if (ec) return absl::UnavailableError(absl::StrCat("cannot listen on ", options.listen, ": ", ec.message()));
  impl->port = impl->acceptor.local_endpoint().port();
  impl->Accept();
  for (int i = 0; i < std::max(1, options.io_threads); ++i) {
    impl->threads.emplace_back([ioc = &impl->ioc] { ioc->run(); });
  }
  return std::unique_ptr<HttpServer>(new HttpServer(std::move(impl)));
}

int HttpServer::port() const { return impl_->port; }

void HttpServer::Shutdown(absl::Duration grace) {
  if (impl_->shut_down) return;
  impl_->shut_down = true;
  impl_->stopping.store(true);
  net::post(impl_->acceptor.get_executor(), [impl = impl_.get()] {
    beast::error_code ignored;
    impl->acceptor.close(ignored);
  });
  const absl::Time give_up = absl::Now() + grace;
  while (impl_->in_flight.load() > 0 && absl::Now() < give_up) absl::SleepFor(absl::Milliseconds(5));
  impl_->ioc.stop();
  for (auto& t : impl_->threads) t.join();
  impl_->threads.clear();
}

HttpServer::~HttpServer() { Shutdown(absl::ZeroDuration()); }

}  // namespace wmty::http
