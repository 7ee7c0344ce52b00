// HTTP clients for the tests that talk to wmtyd's HTTP listener:
//  - HttpClient: a small synchronous HTTP/1.1 client (Boost.Beast): one
//    kept-alive connection, reopened when the server closes it, and SendRaw
//    for one request no well-behaved client would send, answered by one
//    response it parses;
//  - RawConnection: a plain TCP socket for attacks and misbehaving clients
//    (bytes dripped, bodies never finished, smuggled requests): bytes go out
//    exactly as given and come back unparsed.
//
// Thread safety: one client or connection per thread.
#ifndef WMTY_TESTS_FHIR_HTTP_CLIENT_H_
#define WMTY_TESTS_FHIR_HTTP_CLIENT_H_

#include <initializer_list>
#include <map>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include <rapidjson/document.h>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/time/time.h"

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

// `more` with an `Authorization: Bearer <token>` header.
HeaderList Bearer(const std::string& token, HeaderList more = {});

// ---------------------------------------------------------------- reading FHIR JSON

// The value at `path` below `v`: member names, and array indices as decimal
// numbers ({"issue", "0", "code"}); nullptr if there is none.
const rapidjson::Value* JsonAt(const rapidjson::Value& v, std::initializer_list<absl::string_view> path);
// The string at `path` ("" if there is none or it is not a string).
std::string StringAt(const rapidjson::Value& v, std::initializer_list<absl::string_view> path);
// A Bundle's entries with search.mode `mode` ("" = all): their resources' ids.
std::vector<std::string> EntryIds(const rapidjson::Document& bundle, absl::string_view mode = "match");
// The url of a Bundle's link with `relation` ("" if none).
std::string LinkOf(const rapidjson::Document& bundle, absl::string_view relation);

// ---------------------------------------------------------------- raw sockets

// One TCP connection to 127.0.0.1:port, closed on destruction.
class RawConnection {
 public:
  explicit RawConnection(int port);
  ~RawConnection();
  RawConnection(const RawConnection&) = delete;
  RawConnection& operator=(const RawConnection&) = delete;

  // Connected.
  bool ok() const { return fd_ >= 0; }

  // Writes all of `bytes`; false once the server has closed or reset the
  // connection (the write then fails).
  bool Send(absl::string_view bytes);
  // Writes `bytes` in 64 KiB pieces, stopping early (false) as soon as the
  // server answers or closes: a server that refuses a large body does not
  // read it. False also after 10 s without progress.
  bool SendUntilAnswered(absl::string_view bytes);

  // What one Read got.
  struct Received {
    std::string bytes;
    bool closed = false;  // the server closed the connection
    // The statuses of the HTTP responses in `bytes`, in order; a response the
    // bytes end in the middle of counts, with its status.
    std::vector<int> statuses() const;
  };
  // Everything the server sends until it closes the connection, or `want`
  // complete responses have come and it then sent nothing for `quiet`, or
  // `limit` has passed.
  Received Read(size_t want = 1, absl::Duration quiet = absl::Milliseconds(300),
                absl::Duration limit = absl::Seconds(20));

  // Without waiting: has the server closed this connection (EOF or reset)?
  bool ClosedByPeer() { return WaitClosed(absl::ZeroDuration()); }
  // Waits up to `limit` for the server to close the connection.
  bool WaitClosed(absl::Duration limit);

  // Every byte the server sent so far (to Read, ClosedByPeer and WaitClosed).
  const std::string& received() const { return received_; }

 private:
  int fd_ = -1;
  std::string received_;
};

// "http://127.0.0.1:1234/fhir/Goal?x" -> "/fhir/Goal?x".
std::string PathOf(absl::string_view url);

}  // namespace wmty::testing

#endif  // WMTY_TESTS_FHIR_HTTP_CLIENT_H_
