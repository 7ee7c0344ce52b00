// A small synchronous HTTP/1.1 client for the FHIR tests (Boost.Beast): one
// kept-alive connection, reopened when the server closes it, and a raw mode
// for requests no well-behaved client would send.
//
// Thread safety: one client per thread.
#ifndef WMTY_TESTS_FHIR_HTTP_CLIENT_H_
#define WMTY_TESTS_FHIR_HTTP_CLIENT_H_

#include <map>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include <rapidjson/document.h>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"

namespace wmty::testing {

struct HttpResponse {
  int status = 0;
  // Header names in lower case.
  std::map<std::string, std::string> headers;
  std::string body;
  bool keep_alive = false;

  std::string Header(absl::string_view name) const;
  // The body as JSON (a null document if it does not parse).
  rapidjson::Document Json() const;
  // For failure messages.
  std::string Describe() const;
};

using HeaderList = std::vector<std::pair<std::string, std::string>>;

class HttpClient {
 public:
  explicit HttpClient(int port);
  ~HttpClient();

  // One request; `target` is the path and query ("/fhir/Goal?patient=p").
  // Errors only for transport failures (the status is in the response).
  absl::StatusOr<HttpResponse> Send(absl::string_view method, absl::string_view target, absl::string_view body = "",
                                    const HeaderList& headers = {});
  // Convenience wrappers: on a transport failure the response has status -1
  // and the error in body.
  HttpResponse Get(absl::string_view target, const HeaderList& headers = {});
  HttpResponse Post(absl::string_view target, absl::string_view json, const HeaderList& headers = {});
  HttpResponse Put(absl::string_view target, absl::string_view json, const HeaderList& headers = {});
  HttpResponse Delete(absl::string_view target, const HeaderList& headers = {});

  // Writes `bytes` as they are on a fresh connection and reads one response.
  absl::StatusOr<HttpResponse> SendRaw(absl::string_view bytes);

  // How many connections this client has opened so far.
  int connections_opened() const { return connections_opened_; }

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
  int port_;
  int connections_opened_ = 0;
};

// "http://127.0.0.1:1234/fhir/Goal?x" -> "/fhir/Goal?x".
std::string PathOf(absl::string_view url);

}  // namespace wmty::testing

#endif  // WMTY_TESTS_FHIR_HTTP_CLIENT_H_
