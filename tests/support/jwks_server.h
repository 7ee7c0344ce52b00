// A stand-in for an authorization server's JWKS endpoint, for the tests of
// --auth_jwks_url (auth::RemoteJwks): a real HTTP/1.1 server (Boost.Beast,
// synchronous, one connection at a time) on 127.0.0.1 port 0, serving
// whatever document the test sets (rotate keys by setting another), or an
// error status, and counting the requests it answered. Plus RSA key pairs
// (OpenSSL) with their public JWK, to sign tokens the JWKS verifies.
//
// Header-only: link Boost::headers, Threads::Threads, OpenSSL::Crypto.
//
// Thread safety: the setters and counters may be called from any thread while
// the server thread serves.
#ifndef WMTY_TESTS_SUPPORT_JWKS_SERVER_H_
#define WMTY_TESTS_SUPPORT_JWKS_SERVER_H_

#include <atomic>
#include <mutex>
#include <string>
#include <thread>

#include <boost/asio.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <openssl/bn.h>
#include <openssl/core_names.h>
#include <openssl/evp.h>
#include <openssl/pem.h>

#include "absl/strings/escaping.h"
#include "absl/strings/str_cat.h"

namespace wmty::testing {

struct RsaKeyPair {
  std::string kid;
  std::string private_pem;
  std::string public_jwk;  // {"kty":"RSA","kid":...,"n":...,"e":...}
};

inline RsaKeyPair NewRsaKeyPair(const std::string& kid) {
  EVP_PKEY* key = EVP_RSA_gen(2048);
  BIO* bio = BIO_new(BIO_s_mem());
  PEM_write_bio_PrivateKey(bio, key, nullptr, nullptr, 0, nullptr, nullptr);
  char* data = nullptr;
  const long len = BIO_get_mem_data(bio, &data);
  std::string private_pem(data, static_cast<size_t>(len));
  BIO_free(bio);
  auto member = [&](const char* param) {
    BIGNUM* bn = nullptr;
    EVP_PKEY_get_bn_param(key, param, &bn);
    std::string bytes(BN_num_bytes(bn), '\0');
    BN_bn2bin(bn, reinterpret_cast<unsigned char*>(bytes.data()));
    BN_free(bn);
    std::string out;
    absl::WebSafeBase64Escape(bytes, &out);
    return out;
  };
  RsaKeyPair pair{kid, std::move(private_pem),
                  absl::StrCat(R"({"kty":"RSA","use":"sig","alg":"RS256","kid":")", kid, R"(","n":")",
                               member(OSSL_PKEY_PARAM_RSA_N), R"(","e":")", member(OSSL_PKEY_PARAM_RSA_E), R"("})")};
  EVP_PKEY_free(key);
  return pair;
}

// {"keys":[<each key's public JWK>]}
inline std::string JwksOf(std::initializer_list<const RsaKeyPair*> keys) {
  std::string out = R"({"keys":[)";
  bool first = true;
  for (const RsaKeyPair* k : keys) {
    absl::StrAppend(&out, first ? "" : ",", k->public_jwk);
    first = false;
  }
  return out + "]}";
}

class JwksServer {
 public:
  explicit JwksServer(std::string document, int status = 200)
      : document_(std::move(document)),
        status_(status),
        acceptor_(io_, boost::asio::ip::tcp::endpoint(boost::asio::ip::make_address("127.0.0.1"), 0)) {
    thread_ = std::thread([this] { Loop(); });
  }
  ~JwksServer() {
    stopping_ = true;
    boost::system::error_code ec;
    // Wake the blocking accept with one last connection.
    boost::asio::ip::tcp::socket poke(io_);
    poke.connect(acceptor_.local_endpoint(), ec);
    thread_.join();
  }

  int port() const { return acceptor_.local_endpoint().port(); }
  std::string url() const { return absl::StrCat("http://127.0.0.1:", port(), "/jwks"); }

  // What the next requests get: 200 with `document`, or `status` with a
  // short plain-text body (status != 200).
  void Serve(std::string document, int status = 200) {
    std::lock_guard<std::mutex> lock(mu_);
    document_ = std::move(document);
    status_ = status;
  }
  int requests() const { return requests_.load(); }

 private:
  void Loop() {
    namespace http = boost::beast::http;
    while (!stopping_) {
      boost::asio::ip::tcp::socket socket(io_);
      boost::system::error_code ec;
      acceptor_.accept(socket, ec);
      if (ec || stopping_) continue;
      boost::beast::flat_buffer buffer;
      http::request<http::string_body> request;
      http::read(socket, buffer, request, ec);
      if (ec) continue;
      http::response<http::string_body> response;
      {
        std::lock_guard<std::mutex> lock(mu_);
        response.result(status_);
        response.set(http::field::content_type, status_ == 200 ? "application/json" : "text/plain");
        response.body() = status_ == 200 ? document_ : "unavailable";
      }
      response.keep_alive(false);
      response.prepare_payload();
      ++requests_;
      http::write(socket, response, ec);
      socket.shutdown(boost::asio::ip::tcp::socket::shutdown_both, ec);
    }
  }

  std::mutex mu_;
  std::string document_;
  int status_;
  std::atomic<int> requests_{0};
  std::atomic<bool> stopping_{false};
  boost::asio::io_context io_;
  boost::asio::ip::tcp::acceptor acceptor_;
  std::thread thread_;
};

}  // namespace wmty::testing

#endif  // WMTY_TESTS_SUPPORT_JWKS_SERVER_H_
