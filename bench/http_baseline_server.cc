// http_baseline_server: the yardstick for the FHIR face's HTTP numbers.
//
//   http_baseline_server --port=0 --port_file=/tmp/p [--threads=2] [--body_bytes=1200]
//
// A minimal HTTP/1.1 server on Boost.Beast that answers every request with
// the same fixed JSON body (1.2 KB by default). Its threading is that of
// services/http (wmty_http): one io_context run by `threads` threads, each
// connection on its own strand, keep-alive, TCP_NODELAY, one request read at
// a time. It does no routing, no parsing of the body and no work, so
// bench/fhir_bench.sh can report the FHIR interactions as a fraction of what
// the same I/O model serves when the handler costs nothing.
//
// Listens on 127.0.0.1 only. SIGTERM/SIGINT stop it.
#include <signal.h>

#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include <boost/asio/dispatch.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/signal_set.hpp>
#include <boost/asio/strand.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>

namespace {

namespace beast = boost::beast;
namespace http = boost::beast::http;
namespace net = boost::asio;
using tcp = boost::asio::ip::tcp;

// A JSON body of exactly `bytes` bytes (a FHIR-looking object padded with a
// string), so the response is the size of a small FHIR resource.
std::string MakeBody(size_t bytes) {
  const std::string head = R"({"resourceType":"Goal","id":"01JBASELINE0000000000000000","meta":{"versionId":"1"},)"
                           R"("lifecycleStatus":"active","subject":{"reference":"Patient/p1"},"description":{"text":")";
  const std::string tail = R"("}})";
  std::string body = head;
  const size_t fixed = head.size() + tail.size();
  body.append(bytes > fixed ? bytes - fixed : 0, 'x');
  body += tail;
  return body;
}

class Session : public std::enable_shared_from_this<Session> {
 public:
  Session(tcp::socket&& socket, const std::string* body) : stream_(std::move(socket)), body_(body) {}

  void Start() {
    net::dispatch(stream_.get_executor(), [self = shared_from_this()] { self->Read(); });
  }

 private:
  void Read() {
    request_ = {};
    stream_.expires_after(std::chrono::seconds(30));
    http::async_read(stream_, buffer_, request_,
                     [self = shared_from_this()](beast::error_code ec, std::size_t) { self->OnRead(ec); });
  }

  void OnRead(beast::error_code ec) {
    if (ec) return Close();
    auto response = std::make_shared<http::response<http::string_body>>(http::status::ok, request_.version());
    response->set(http::field::server, "http_baseline_server");
    response->set(http::field::content_type, "application/fhir+json");
    response->keep_alive(request_.keep_alive());
    response->body() = *body_;
    response->prepare_payload();
    http::async_write(stream_, *response, [self = shared_from_this(), response](beast::error_code ec, std::size_t) {
      if (ec || !response->keep_alive()) return self->Close();
      self->Read();
    });
  }

  void Close() {
    beast::error_code ignored;
    stream_.socket().shutdown(tcp::socket::shutdown_both, ignored);
    stream_.close();
  }

  beast::tcp_stream stream_;
  beast::flat_buffer buffer_;
  http::request<http::string_body> request_;
  const std::string* body_;
};

class Listener {
 public:
  Listener(net::io_context& ioc, const std::string* body) : ioc_(ioc), acceptor_(net::make_strand(ioc)), body_(body) {}

  bool Listen(unsigned short port) {
    beast::error_code ec;
    const tcp::endpoint endpoint(net::ip::make_address("127.0.0.1"), port);
    acceptor_.open(endpoint.protocol(), ec);
    if (!ec) acceptor_.set_option(net::socket_base::reuse_address(true), ec);
    if (!ec) acceptor_.bind(endpoint, ec);
    if (!ec) acceptor_.listen(net::socket_base::max_listen_connections, ec);
    if (ec) {
      std::fprintf(stderr, "cannot listen on 127.0.0.1:%u: %s\n", port, ec.message().c_str());
      return false;
    }
    return true;
  }
  int port() const { return acceptor_.local_endpoint().port(); }

  void Accept() {
    acceptor_.async_accept(net::make_strand(ioc_), [this](beast::error_code ec, tcp::socket socket) {
      if (ec == net::error::operation_aborted) return;
      if (!ec) {
        beast::error_code ignored;
        socket.set_option(tcp::no_delay(true), ignored);
        std::make_shared<Session>(std::move(socket), body_)->Start();
      }
      Accept();
    });
  }

 private:
  net::io_context& ioc_;
  tcp::acceptor acceptor_;
  const std::string* body_;
};

bool FlagValue(const char* arg, const char* name, std::string* out) {
  const size_t n = std::strlen(name);
  if (std::strncmp(arg, name, n) != 0 || arg[n] != '=') return false;
  *out = arg + n + 1;
  return true;
}

void Usage() {
  std::fprintf(stderr, "usage: http_baseline_server [--port=0] [--port_file=PATH] [--threads=2] [--body_bytes=1200]\n");
}

}  // namespace

int main(int argc, char** argv) {
  int port = 0;
  int threads = 2;
  size_t body_bytes = 1200;
  std::string port_file;
  for (int i = 1; i < argc; ++i) {
    std::string v;
    if (FlagValue(argv[i], "--port", &v)) {
      port = std::atoi(v.c_str());
    } else if (FlagValue(argv[i], "--port_file", &v)) {
      port_file = v;
    } else if (FlagValue(argv[i], "--threads", &v)) {
      threads = std::max(1, std::atoi(v.c_str()));
    } else if (FlagValue(argv[i], "--body_bytes", &v)) {
      body_bytes = static_cast<size_t>(std::atol(v.c_str()));
    } else {
      Usage();
      return 2;
    }
  }
  if (port < 0 || port > 65535) {
    Usage();
    return 2;
  }

  const std::string body = MakeBody(body_bytes);
  net::io_context ioc(threads);
  Listener listener(ioc, &body);
  if (!listener.Listen(static_cast<unsigned short>(port))) return 1;
  listener.Accept();

  net::signal_set signals(ioc, SIGINT, SIGTERM);
  signals.async_wait([&ioc](beast::error_code, int) { ioc.stop(); });

  if (!port_file.empty()) {
    const std::string tmp = port_file + ".tmp";
    {
      std::ofstream out(tmp, std::ios::trunc);
      out << listener.port() << "\n";
    }
    std::error_code ec;
    std::filesystem::rename(tmp, port_file, ec);
    if (ec) {
      std::fprintf(stderr, "cannot write %s\n", port_file.c_str());
      return 1;
    }
  }
  std::printf("http_baseline_server listening on 127.0.0.1:%d (%d threads, %zu-byte body)\n", listener.port(), threads,
              body.size());
  std::fflush(stdout);

  std::vector<std::thread> pool;
  for (int i = 1; i < threads; ++i) pool.emplace_back([&ioc] { ioc.run(); });
  ioc.run();
  for (auto& t : pool) t.join();
  return 0;
}
