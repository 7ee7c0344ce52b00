#include "http/http_server.h"

#include <atomic>
#include <optional>
#include <thread>
#include <type_traits>
#include <utility>
#include <vector>

#include <boost/asio/dispatch.hpp>
#include <boost/asio/executor_work_guard.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/strand.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/ssl.hpp>

#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "common/admission.h"
#include "common/log.h"
#include "common/thread_name.h"

namespace wmty::http {
namespace {

namespace beast = boost::beast;
namespace bhttp = boost::beast::http;
namespace net = boost::asio;
namespace ssl = boost::asio::ssl;
using tcp = boost::asio::ip::tcp;

// How long a closing TLS connection waits for the peer's close_notify.
constexpr std::chrono::seconds kTlsShutdownTimeout{2};
// How long a connection refused for being over the limit waits for the
// client's FIN after the 503 (reading and dropping what it sent), so that
// closing with unread bytes does not reset the connection before the client
// has read the answer.
constexpr std::chrono::seconds kRefusedLinger{1};

std::chrono::milliseconds ToChrono(absl::Duration d) {
  return std::chrono::milliseconds(std::max<int64_t>(1, absl::ToInt64Milliseconds(d)));
}

bool IsHttpParseError(const beast::error_code& ec) {
  return ec.category() == bhttp::make_error_code(bhttp::error::bad_target).category();
}

}  // namespace

struct HttpServer::Impl {
  HttpServerOptions options;
  Handler* handler = nullptr;
  net::io_context ioc;
  // Keeps the I/O threads running while no operation is pending: once the
  // acceptor is closed (shutting down) and every connection is waiting for
  // its handler, run() would otherwise return, and the responses posted
  // later would never be written (nor in_flight come down).
  net::executor_work_guard<net::io_context::executor_type> keep_running = net::make_work_guard(ioc);
  tcp::acceptor acceptor{net::make_strand(ioc)};
  std::vector<std::thread> threads;
  // Requests being answered (handler or refusal, until the response is
  // written): Shutdown waits for them.
  std::atomic<int> in_flight{0};
  // Open connections, refused ones excepted (max_connections).
  std::atomic<int> connections{0};
  std::atomic<bool> stopping{false};
  int port = 0;
  bool shut_down = false;
  // Set when TLS is configured; shared by every TLS session.
  std::optional<ssl::context> tls;

  // Requests handed to the handler and not yet answered (max_inflight), and
  // every refusal for being over a limit (max_connections too).
  common::Admission handling;

  explicit Impl(const HttpServerOptions& o)
      : options(o), ioc(o.io_threads), handling(o.max_inflight, "http overloaded: refusing with 503") {}
  void Accept();
};

namespace {

// Stream is beast::tcp_stream (plaintext) or beast::ssl_stream<beast::tcp_stream> (TLS).
template <class Stream>
class Session : public std::enable_shared_from_this<Session<Stream>> {
  static constexpr bool kTls = !std::is_same_v<Stream, beast::tcp_stream>;
  using std::enable_shared_from_this<Session<Stream>>::shared_from_this;

 public:
  // `over_capacity`: the connection is past max_connections; it gets a 503
  // and is closed, and does not count as open.
  Session(tcp::socket&& socket, HttpServer::Impl* server, bool over_capacity) requires(!kTls)
      : stream_(std::move(socket)), server_(server), over_capacity_(over_capacity) {
    SetRemote();
    if (!over_capacity_) server_->connections.fetch_add(1);
  }
  Session(tcp::socket&& socket, HttpServer::Impl* server, bool over_capacity) requires(kTls)
      : stream_(std::move(socket), *server->tls), server_(server), over_capacity_(over_capacity) {
    SetRemote();
    if (!over_capacity_) server_->connections.fetch_add(1);
  }
  ~Session() {
    if (!over_capacity_) server_->connections.fetch_sub(1);
  }

  void Start() {
    if constexpr (kTls) {
      net::dispatch(stream_.get_executor(), [self = shared_from_this()] { self->Handshake(); });
    } else {
      net::dispatch(stream_.get_executor(), [self = shared_from_this()] { self->FirstRead(); });
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
    Tcp().expires_after(ToChrono(server_->options.read_timeout));
    stream_.async_handshake(ssl::stream_base::server, [self = shared_from_this()](beast::error_code ec) {
      if (ec) return self->CloseSocket();  // no TLS session to shut down
      self->tls_up_ = true;
      self->FirstRead();
    });
  }

  void FirstRead() {
    if (over_capacity_) return RefuseConnection();
    Read();
  }

  // Over max_connections: a 503 before reading anything, then close. The
  // request the client may already have sent is read and dropped (briefly)
  // so that the close does not reset the connection under the answer.
  void RefuseConnection() {
    keep_alive_ = false;
    Response response =
        server_->handler->MakeError(Status::service_unavailable, "too many open connections; retry later", 11, false);
    response.set(bhttp::field::retry_after, std::to_string(kRetryAfterSeconds));
    response.keep_alive(false);
    response.prepare_payload();
    auto shared = std::make_shared<Response>(std::move(response));
    Tcp().expires_after(ToChrono(server_->options.read_timeout));
    bhttp::async_write(stream_, *shared, [self = shared_from_this(), shared](beast::error_code ec, std::size_t) {
      if (ec) return self->Close();
      if constexpr (kTls) {
        self->Close();  // the TLS shutdown waits for the client's close_notify
      } else {
        beast::error_code ignored;
        self->Tcp().socket().shutdown(tcp::socket::shutdown_send, ignored);
        self->Tcp().expires_after(kRefusedLinger);
        self->Drain();
      }
    });
  }

  // Reads and drops until the client closes, an error, or the timer.
  void Drain() {
    drain_buffer_.resize(4096);
    Tcp().async_read_some(net::buffer(drain_buffer_), [self = shared_from_this()](beast::error_code ec, std::size_t) {
      if (ec) return self->CloseSocket();
      self->Drain();
    });
  }

  void Read() {
    if (server_->stopping.load()) return Close();
    parser_.emplace();
    parser_->header_limit(static_cast<std::uint32_t>(server_->options.max_header_bytes));
    parser_->body_limit(server_->options.max_body_bytes);
    // One deadline for the whole request (and the idle wait before it): the
    // stream's timer is absolute, so each byte a slow client sends does not
    // push it back.
    Tcp().expires_after(ToChrono(server_->options.read_timeout));
    ReadHeaderBytes();
  }

  // Reads until the buffer holds the whole header section, to look at its raw
  // bytes before Beast parses them: Beast silently unfolds obs-fold (a header
  // line continued on the next, e.g. "Content-Length:\r\n 42"), which a proxy
  // in front may frame differently (request smuggling), so it is refused
  // (RFC 9112 5.2 allows either). Beast then parses from the buffer as before;
  // over-long headers and bare-LF line ends are left to it.
  void ReadHeaderBytes() {
    const absl::string_view have(static_cast<const char*>(buffer_.data().data()), buffer_.size());
    const size_t end = have.find("\r\n\r\n");
    const bool bare_lf = absl::StrContains(have, "\n\n");  // not CRLF: Beast refuses it
    if (end != absl::string_view::npos || bare_lf || have.size() > server_->options.max_header_bytes) {
      const absl::string_view head = have.substr(0, end == absl::string_view::npos ? have.size() : end + 2);
      if (absl::StrContains(head, "\r\n ") || absl::StrContains(head, "\r\n\t")) {
        return Refuse(Status::bad_request, "obs-fold (a header line starting with white space) is not accepted");
      }
      bhttp::async_read(stream_, buffer_, *parser_,
                        [self = shared_from_this()](beast::error_code ec, std::size_t) { self->OnRead(ec); });
      return;
    }
    stream_.async_read_some(buffer_.prepare(16 * 1024),
                            [self = shared_from_this()](beast::error_code ec, std::size_t n) {
                              if (ec) return self->OnRead(ec);
                              self->buffer_.commit(n);
                              self->ReadHeaderBytes();
                            });
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
    keep_alive_ = parser_->get().keep_alive();
    if (server_->stopping.load()) {
      // Arrived on a kept-alive connection while draining.
      keep_alive_ = false;
      return Shed("the server is shutting down; retry");
    }
    std::optional<common::Admission::Slot> slot = server_->handling.TryAdmit("limit", "max_inflight");
    if (!slot.has_value()) return Shed("too many requests in progress; retry later");
    server_->in_flight.fetch_add(1);
    Request request = parser_->release();
    // Only the server says who the peer is.
    request.erase(kRemoteAddressHeader);
    request.set(kRemoteAddressHeader, remote_);
    server_->handler->Handle(
        std::move(request), [self = shared_from_this(), slot = std::move(*slot)](Response response) mutable {
          slot.Release();
          net::post(self->stream_.get_executor(),
                    [self, response = std::move(response)]() mutable { self->Write(std::move(response), true); });
        });
  }

  // Answers a request (read in full) with 503 + Retry-After without handing
  // it to the handler; the connection stays open unless keep_alive_ is off.
  void Shed(const std::string& message) {
    const unsigned version = parser_->get().version();
    Response response = server_->handler->MakeError(Status::service_unavailable, message, version, keep_alive_);
    response.set(bhttp::field::retry_after, std::to_string(kRetryAfterSeconds));
    server_->in_flight.fetch_add(1);
    Write(std::move(response), true);
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
    // The handler may end the connection (e.g. after a body that did not
    // parse: its framing is suspect, so what follows it is not read).
    if (beast::iequals(response[bhttp::field::connection], "close")) keep_alive_ = false;
    response.keep_alive(keep_alive_);
    // A HEAD answer keeps the Content-Length its handler set for the body it
    // left out; everything else gets the length of its body.
    if (response.body().empty() && response.find(bhttp::field::content_length) != response.end()) {
      // as set by the handler
    } else {
      response.prepare_payload();
    }
    auto shared = std::make_shared<Response>(std::move(response));
    Tcp().expires_after(ToChrono(server_->options.read_timeout));
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
  const bool over_capacity_;
  std::vector<char> drain_buffer_;  // RefuseConnection: what the client sent, dropped
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
      // Accepts run one at a time (on the acceptor's strand); only closes
      // race with this check, and they only lower the count.
      const bool over_capacity = options.max_connections > 0 && connections.load() >= options.max_connections;
      if (over_capacity) handling.NoteShed("limit", "max_connections");
      if (tls.has_value()) {
        std::make_shared<Session<beast::ssl_stream<beast::tcp_stream>>>(std::move(socket), this, over_capacity)
            ->Start();
      } else {
        std::make_shared<Session<beast::tcp_stream>>(std::move(socket), this, over_capacity)->Start();
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

  auto impl = std::make_unique<Impl>(options);
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
    impl->threads.emplace_back([ioc = &impl->ioc, name = impl->options.thread_name] {
      NameThisThread(name);
      ioc->run();
    });
  }
  return std::unique_ptr<HttpServer>(new HttpServer(std::move(impl)));
}

int HttpServer::port() const { return impl_->port; }
int HttpServer::open_connections() const { return impl_->connections.load(); }
int HttpServer::inflight_requests() const { return impl_->handling.in_use(); }
int64_t HttpServer::shed_total() const { return impl_->handling.shed_total(); }

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
  if (const int left = impl_->in_flight.load(); left > 0) {
    log::Warning("http drain: grace period over, dropping requests in progress", {{"requests", std::to_string(left)}});
  }
  impl_->keep_running.reset();
  impl_->ioc.stop();
  for (auto& t : impl_->threads) t.join();
  impl_->threads.clear();
}

HttpServer::~HttpServer() { Shutdown(absl::ZeroDuration()); }

}  // namespace wmty::http
