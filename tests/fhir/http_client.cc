#include "fhir/http_client.h"

#include <rapidjson/stringbuffer.h>
#include <rapidjson/writer.h>

#include <boost/asio/connect.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <optional>

#include "absl/strings/ascii.h"
#include "absl/strings/str_cat.h"

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

std::string HttpResponse::Describe() const {
  return absl::StrCat("HTTP ", status, "\n", body.substr(0, 4000));
}

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
      impl_->stream->connect(tcp::endpoint(net::ip::make_address("127.0.0.1"), static_cast<unsigned short>(port_)),
                             ec);
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
    return absl::UnavailableError(absl::StrCat("read: ", read_ec.message(), ec ? " (write: " + ec.message() + ")" : ""));
  }
  return Convert(parser.release());
}

std::string PathOf(absl::string_view url) {
  const size_t scheme = url.find("://");
  if (scheme == absl::string_view::npos) return std::string(url);
  const size_t slash = url.find('/', scheme + 3);
  return slash == absl::string_view::npos ? "/" : std::string(url.substr(slash));
}

}  // namespace wmty::testing
