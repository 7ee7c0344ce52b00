// HttpServer: HTTP/1.1 on Boost.Beast, for the FHIR face.
//
// Each connection reads one request at a time (keep-alive), within limits:
// header bytes (431), body bytes (413), and a time limit for reading a request
// (the connection is closed: slow clients cannot pin it). The handler answers
// through `respond`, from any thread (FHIR writes answer from another pool), and
// the response is written on the connection's strand.
//
// Load shedding: past max_connections a new connection gets a 503 with
// Retry-After and is closed; past max_inflight a request (read in full) gets a
// 503 with Retry-After without reaching the handler, and the connection stays
// usable. A request that arrives while shutting down gets a 503 and the
// connection is closed. These answers come from Handler::MakeError.
//
// TLS (optional, and mTLS with a client CA): with a certificate configured,
// each connection does the TLS handshake (within read_timeout) before its
// first read, and a TLS shutdown (briefly) when it closes.
//
// Thread safety: Start/Shutdown from one thread; the handler is called
// concurrently from the I/O threads.
#ifndef WMTY_HTTP_HTTP_SERVER_H_
#define WMTY_HTTP_HTTP_SERVER_H_

#include <memory>
#include <string>

#include <boost/beast/http.hpp>

#include "absl/functional/any_invocable.h"
#include "absl/status/statusor.h"
#include "absl/time/time.h"

namespace wmty::http {

using Request = boost::beast::http::request<boost::beast::http::string_body>;
using Response = boost::beast::http::response<boost::beast::http::string_body>;
using Status = boost::beast::http::status;

// The connection's peer address ("ip:port", IPv6 as "[ip]:port"), which the
// server sets on every request it hands to the Handler after removing any
// copy the client sent, so handlers can trust it (for the audit trail).
inline constexpr char kRemoteAddressHeader[] = "X-Wmty-Remote";
// Retry-After (seconds) of the server's own 503s (over a limit, shutting down).
inline constexpr int kRetryAfterSeconds = 1;
// Call exactly once, from any thread.
using Respond = absl::AnyInvocable<void(Response)>;

class Handler {
 public:
  virtual ~Handler() = default;
  virtual void Handle(Request request, Respond respond) = 0;
  // The response for a request refused before it reached Handle (malformed,
  // too large, over a limit, shutting down); `message` is safe to show.
  virtual Response MakeError(Status status, const std::string& message, unsigned version, bool keep_alive) = 0;
};

struct HttpServerOptions {
  // host:port; port 0 picks a free port.
  std::string listen = "127.0.0.1:8080";
  size_t max_header_bytes = 16 * 1024;
  size_t max_body_bytes = 1024 * 1024;
  // Waiting for and reading one whole request (headers and body) must finish
  // within this, else the connection is closed (idle keep-alive included).
  // One deadline per request: bytes trickling in do not extend it.
  absl::Duration read_timeout = absl::Seconds(30);
  // Most open connections (each may hold a request of up to max_header_bytes
  // + max_body_bytes while reading); past it new connections are refused
  // (503). 0: no limit.
  int max_connections = 512;
  // Most requests handed to the handler and not yet answered; past it
  // requests are refused (503) before the handler sees them. 0: no limit.
  int max_inflight = 256;
  int io_threads = 2;
  // What the I/O threads are called (NameThisThread).
  std::string thread_name = "wmty-http";
  // TLS (PEM contents, not paths). Empty cert: plaintext. A cert needs its
  // key. With a client CA, clients must present a certificate it signed
  // (mTLS); the CA needs a cert.
  std::string tls_cert_pem;
  std::string tls_key_pem;
  std::string tls_client_ca_pem;
};

class HttpServer {
 public:
  // Errors: INVALID_ARGUMENT for a bad address or bad/half TLS configuration,
  // UNAVAILABLE if it cannot bind.
  static absl::StatusOr<std::unique_ptr<HttpServer>> Start(const HttpServerOptions& options, Handler* handler);
  ~HttpServer();

  int port() const;
  // For /metrics: open connections, requests being handled, and requests or
  // connections refused with 503 over a limit since Start.
  int open_connections() const;
  int inflight_requests() const;
  int64_t shed_total() const;
  // Stops accepting, waits up to `grace` for requests in progress, then
  // closes every connection and joins the I/O threads. Idempotent.
  void Shutdown(absl::Duration grace);

 public:
  struct Impl;  // defined in the .cc (sessions need it)

 private:
  explicit HttpServer(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

}  // namespace wmty::http

#endif  // WMTY_HTTP_HTTP_SERVER_H_
