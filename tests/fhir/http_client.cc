#include "fhir/http_client.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <optional>

#include <boost/asio/connect.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <rapidjson/stringbuffer.h>
#include <rapidjson/writer.h>

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"

namespace wmty::testing {
namespace {

namespace beast = boost::beast;
namespace bhttp = boost::beast::http;
namespace net = boost::asio;
using tcp = net::ip::tcp;

HttpResponse Convert(bhttp::response<bhttp::string_body>&& res) {
  HttpResponse out;
  out.status = static_cast<int>(res.result_int());
  for (const auto& field : res) {
    out.headers[absl::AsciiStrToLower(std::string(field.name_string()))] = std::string(field.value());
  }
  out.keep_alive = res.keep_alive();
  out.body = std::move(res.body());
  return out;
}

HttpResponse Failed(const absl::Status& s) {
  HttpResponse r;
  r.status = -1;
  r.body = s.ToString();
  return r;
}

// The Content-Length of a response head (lower case), 0 if none.
size_t ContentLength(absl::string_view head) {
  size_t length = 0;
  const size_t cl = head.find("\r\ncontent-length:");
  if (cl != absl::string_view::npos) {
    const size_t eol = head.find("\r\n", cl + 2);
    (void)absl::SimpleAtoi(absl::StripAsciiWhitespace(head.substr(cl + 17, eol - cl - 17)), &length);
  }
  return length;
}

// Does `bytes` end at the end of a response?
bool EndsAtResponseEnd(absl::string_view bytes) {
  size_t pos = 0;
  while (pos < bytes.size()) {
    const size_t end = bytes.find("\r\n\r\n", pos);
    if (end == absl::string_view::npos) return false;
    pos = end + 4 + ContentLength(absl::AsciiStrToLower(bytes.substr(pos, end - pos)));
  }
  return pos == bytes.size();
}

}  // namespace

std::string HttpResponse::Header(absl::string_view name) const {
  auto it = headers.find(absl::AsciiStrToLower(name));
  return it == headers.end() ? "" : it->second;
}

rapidjson::Document HttpResponse::Json() const {
  rapidjson::Document d;
  d.Parse(body.data(), body.size());
  if (d.HasParseError()) d.SetNull();
  return d;
}

std::string HttpResponse::Describe() const { return absl::StrCat("HTTP ", status, "\n", body.substr(0, 4000)); }

struct HttpClient::Impl {
  net::io_context ioc;
  std::optional<beast::tcp_stream> stream;
  beast::flat_buffer buffer;
};

HttpClient::HttpClient(int port) : impl_(std::make_unique<Impl>()), port_(port) {}
HttpClient::~HttpClient() = default;

absl::StatusOr<HttpResponse> HttpClient::Send(absl::string_view method, absl::string_view target,
                                              absl::string_view body, const HeaderList& headers) {
  for (int attempt = 0; attempt < 2; ++attempt) {
    beast::error_code ec;
    const bool fresh = !impl_->stream.has_value();
    if (fresh) {
      impl_->stream.emplace(impl_->ioc);
      impl_->stream->expires_after(std::chrono::seconds(30));
      impl_->stream->connect(tcp::endpoint(net::ip::make_address("127.0.0.1"), static_cast<unsigned short>(port_)), ec);
      if (ec) {
        impl_->stream.reset();
        return absl::UnavailableError(absl::StrCat("connect: ", ec.message()));
      }
      ++connections_opened_;
      impl_->buffer.clear();
    }
    bhttp::request<bhttp::string_body> req;
    req.method_string(beast::string_view(method.data(), method.size()));
    req.target(beast::string_view(target.data(), target.size()));
    req.version(11);
    req.set(bhttp::field::host, absl::StrCat("127.0.0.1:", port_));
    for (const auto& [name, value] : headers) req.set(name, value);
    if (!body.empty() || method == "POST" || method == "PUT") {
      req.body() = std::string(body);
      req.prepare_payload();
    }
    impl_->stream->expires_after(std::chrono::seconds(60));
    bhttp::write(*impl_->stream, req, ec);
    bhttp::response_parser<bhttp::string_body> parser;
    parser.body_limit(256 * 1024 * 1024);
    // The answer to HEAD has the headers of a GET (Content-Length included) and no body.
    if (method == "HEAD") parser.skip(true);
    if (!ec) bhttp::read(*impl_->stream, impl_->buffer, parser, ec);
    if (ec) {
      impl_->stream.reset();
      // A kept-alive connection the server closed meanwhile: retry once.
      if (!fresh) continue;
      return absl::UnavailableError(absl::StrCat("http: ", ec.message()));
    }
    HttpResponse out = Convert(parser.release());
    if (!out.keep_alive) impl_->stream.reset();
    return out;
  }
  return absl::UnavailableError("http: connection closed");
}

HttpResponse HttpClient::Get(absl::string_view target, const HeaderList& headers) {
  auto r = Send("GET", target, "", headers);
  return r.ok() ? std::move(*r) : Failed(r.status());
}

HttpResponse HttpClient::Post(absl::string_view target, absl::string_view json, const HeaderList& headers) {
  HeaderList h = {{"Content-Type", "application/fhir+json"}};
  h.insert(h.end(), headers.begin(), headers.end());
  auto r = Send("POST", target, json, h);
  return r.ok() ? std::move(*r) : Failed(r.status());
}

HttpResponse HttpClient::Put(absl::string_view target, absl::string_view json, const HeaderList& headers) {
  HeaderList h = {{"Content-Type", "application/fhir+json"}};
  h.insert(h.end(), headers.begin(), headers.end());
  auto r = Send("PUT", target, json, h);
  return r.ok() ? std::move(*r) : Failed(r.status());
}

HttpResponse HttpClient::Delete(absl::string_view target, const HeaderList& headers) {
  auto r = Send("DELETE", target, "", headers);
  return r.ok() ? std::move(*r) : Failed(r.status());
}

absl::StatusOr<HttpResponse> HttpClient::SendRaw(absl::string_view bytes) {
  net::io_context ioc;
  beast::tcp_stream stream(ioc);
  beast::error_code ec;
  stream.expires_after(std::chrono::seconds(30));
  stream.connect(tcp::endpoint(net::ip::make_address("127.0.0.1"), static_cast<unsigned short>(port_)), ec);
  if (ec) return absl::UnavailableError(absl::StrCat("connect: ", ec.message()));
  ++connections_opened_;
  net::write(stream, net::buffer(bytes.data(), bytes.size()), ec);
  // The server may answer (and close) before reading everything we sent.
  beast::flat_buffer buffer;
  bhttp::response_parser<bhttp::string_body> parser;
  parser.body_limit(64 * 1024 * 1024);
  beast::error_code read_ec;
  bhttp::read(stream, buffer, parser, read_ec);
  if (read_ec) {
    return absl::UnavailableError(
        absl::StrCat("read: ", read_ec.message(), ec ? " (write: " + ec.message() + ")" : ""));
  }
  return Convert(parser.release());
}

HeaderList Bearer(const std::string& token, HeaderList more) {
  more.emplace_back("Authorization", "Bearer " + token);
  return more;
}

const rapidjson::Value* JsonAt(const rapidjson::Value& v, std::initializer_list<absl::string_view> path) {
  const rapidjson::Value* cur = &v;
  for (absl::string_view p : path) {
    if (!p.empty() && p[0] >= '0' && p[0] <= '9') {
      const size_t i = static_cast<size_t>(std::stoi(std::string(p)));
      if (!cur->IsArray() || cur->Size() <= i) return nullptr;
      cur = &(*cur)[static_cast<rapidjson::SizeType>(i)];
    } else {
      if (!cur->IsObject()) return nullptr;
      auto m = cur->FindMember(rapidjson::Value(p.data(), static_cast<rapidjson::SizeType>(p.size())));
      if (m == cur->MemberEnd()) return nullptr;
      cur = &m->value;
    }
  }
  return cur;
}

std::string StringAt(const rapidjson::Value& v, std::initializer_list<absl::string_view> path) {
  const rapidjson::Value* x = JsonAt(v, path);
  return x != nullptr && x->IsString() ? x->GetString() : "";
}

std::vector<std::string> EntryIds(const rapidjson::Document& bundle, absl::string_view mode) {
  std::vector<std::string> out;
  if (!bundle.IsObject() || !bundle.HasMember("entry")) return out;
  for (const auto& e : bundle["entry"].GetArray()) {
    if (!mode.empty() && StringAt(e, {"search", "mode"}) != mode) continue;
    out.push_back(StringAt(e, {"resource", "id"}));
  }
  return out;
}

std::string LinkOf(const rapidjson::Document& bundle, absl::string_view relation) {
  if (!bundle.IsObject() || !bundle.HasMember("link")) return "";
  for (const auto& l : bundle["link"].GetArray()) {
    if (StringAt(l, {"relation"}) == relation) return StringAt(l, {"url"});
  }
  return "";
}

RawConnection::RawConnection(int port) {
  fd_ = socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_port = htons(static_cast<uint16_t>(port));
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  if (fd_ >= 0 && connect(fd_, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) != 0) {
    close(fd_);
    fd_ = -1;
  }
}

RawConnection::~RawConnection() {
  if (fd_ >= 0) close(fd_);
}

bool RawConnection::Send(absl::string_view bytes) {
  while (!bytes.empty()) {
    const ssize_t n = send(fd_, bytes.data(), bytes.size(), MSG_NOSIGNAL);
    if (n <= 0) return false;
    bytes.remove_prefix(static_cast<size_t>(n));
  }
  return true;
}

bool RawConnection::SendUntilAnswered(absl::string_view bytes) {
  while (!bytes.empty()) {
    pollfd p{fd_, POLLIN | POLLOUT, 0};
    if (poll(&p, 1, 10000) <= 0) return false;
    if (p.revents & (POLLIN | POLLERR | POLLHUP)) return false;
    const ssize_t n = send(fd_, bytes.data(), std::min<size_t>(bytes.size(), 64 * 1024), MSG_NOSIGNAL);
    if (n <= 0) return false;
    bytes.remove_prefix(static_cast<size_t>(n));
  }
  return true;
}

std::vector<int> RawConnection::Received::statuses() const {
  std::vector<int> out;
  size_t pos = 0;
  while (pos < bytes.size()) {
    const absl::string_view rest = absl::string_view(bytes).substr(pos);
    if (!absl::StartsWith(rest, "HTTP/1.")) break;
    int status = 0;
    if (bytes.size() < pos + 12 || !absl::SimpleAtoi(rest.substr(9, 3), &status)) break;
    out.push_back(status);
    const size_t end = bytes.find("\r\n\r\n", pos);
    if (end == std::string::npos) break;
    pos = end + 4 + ContentLength(absl::AsciiStrToLower(rest.substr(0, end - pos)));
  }
  return out;
}

RawConnection::Received RawConnection::Read(size_t want, absl::Duration quiet, absl::Duration limit) {
  Received r;
  const absl::Time give_up = absl::Now() + limit;
  while (absl::Now() < give_up) {
    // Until `want` complete responses arrived, wait as long as `limit`
    // allows; after that only `quiet` (anything more is a surprise).
    const bool have_all = r.statuses().size() >= want && EndsAtResponseEnd(r.bytes);
    const absl::Duration wait = have_all ? quiet : give_up - absl::Now();
    pollfd p{fd_, POLLIN, 0};
    const int ready = poll(&p, 1, static_cast<int>(std::max<int64_t>(1, absl::ToInt64Milliseconds(wait))));
    if (ready <= 0) {
      if (have_all) break;
      continue;
    }
    char buf[65536];
    const ssize_t n = recv(fd_, buf, sizeof(buf), 0);
    if (n <= 0) {
      r.closed = true;
      break;
    }
    r.bytes.append(buf, static_cast<size_t>(n));
    received_.append(buf, static_cast<size_t>(n));
  }
  return r;
}

bool RawConnection::WaitClosed(absl::Duration limit) {
  const absl::Time give_up = absl::Now() + limit;
  for (;;) {
    pollfd p{fd_, POLLIN, 0};
    const int64_t left = std::max<int64_t>(0, absl::ToInt64Milliseconds(give_up - absl::Now()));
    if (poll(&p, 1, static_cast<int>(left)) <= 0) return false;
    char buf[4096];
    const ssize_t n = recv(fd_, buf, sizeof(buf), MSG_DONTWAIT);
    if (n == 0) return true;
    if (n < 0) return errno != EAGAIN && errno != EWOULDBLOCK;
    received_.append(buf, static_cast<size_t>(n));
  }
}

std::string PathOf(absl::string_view url) {
  const size_t scheme = url.find("://");
  if (scheme == absl::string_view::npos) return std::string(url);
  const size_t slash = url.find('/', scheme + 3);
  return slash == absl::string_view::npos ? "/" : std::string(url.substr(slash));
}

}  // namespace wmty::testing
