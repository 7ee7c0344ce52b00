// StaticSite: the bedside app's files (clients/bedside/), served by wmtyd at
// /bedside/ on the FHIR listener.
//
// Two sources: the files embedded into the binary at build time (the default:
// one self-contained binary, nothing to deploy next to it, fine with a
// read-only root file system), or a directory read on every request (for
// developing the app without rebuilding wmtyd; --bedside_dir).
//
// StaticSiteHandler answers GET and HEAD under the prefix itself and hands
// every other request to the next handler (the FHIR face). Files carry no
// PHI, so no token is needed; the app then calls /fhir with the nurse's
// token. Every response carries a strict Content-Security-Policy (scripts,
// styles and connections only from this origin, no framing), nosniff and
// no-referrer, and an ETag (304 on If-None-Match) with Cache-Control:
// no-cache so a deployed update is picked up on the next load.
//
// Thread safety: a StaticSite is immutable after construction; the handler
// may be called from any number of I/O threads.
#ifndef WMTY_WEB_STATIC_SITE_H_
#define WMTY_WEB_STATIC_SITE_H_

#include <map>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "http/http_server.h"

namespace wmty::web {

// The policy the bedside app is written for (no inline script or style).
inline constexpr char kContentSecurityPolicy[] =
    "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; connect-src 'self'; "
    "frame-ancestors 'none'; base-uri 'none'; form-action 'self'";

struct StaticFile {
  std::string content;
  std::string content_type;
  // Strong validator: a hash of the content, quoted.
  std::string etag;
};

class StaticSite {
 public:
  // The files compiled into the binary (clients/bedside at build time).
  static std::unique_ptr<StaticSite> Embedded();
  // Files read from `dir` on every request. Errors: NOT_FOUND if `dir` is not
  // a directory.
  static absl::StatusOr<std::unique_ptr<StaticSite>> FromDirectory(const std::string& dir);

  // The file at `relative_path` ("index.html", "js/app.js"), or nullopt when
  // there is none or the path is not a plain relative path (no "..", ".",
  // empty segments, backslashes or bytes outside [A-Za-z0-9._-/]).
  std::optional<StaticFile> Find(absl::string_view relative_path) const;

  size_t embedded_file_count() const { return files_.size(); }

 private:
  StaticSite() = default;
  std::map<std::string, StaticFile, std::less<>> files_;  // embedded
  std::string dir_;                                       // or read from here
};

// "text/html; charset=utf-8" etc. by extension; application/octet-stream otherwise.
std::string ContentTypeFor(absl::string_view path);
// Whether `path` is a plain relative path (see StaticSite::Find).
bool IsPlainRelativePath(absl::string_view path);

// kContentSecurityPolicy, also letting the app connect to the origins of
// `urls` (the authorization server's token endpoint: the SMART sign-in
// exchanges its code and refreshes tokens there from the browser). URLs that
// are not http(s) are ignored.
std::string ContentSecurityPolicyConnectingTo(const std::vector<std::string>& urls);

// Serves `site` under `prefix` ("/bedside": "/bedside" redirects to
// "/bedside/", "/bedside/" is index.html) and redirects "/" there, with
// `content_security_policy` on every answer; anything else goes to `next`,
// which must outlive this handler.
class StaticSiteHandler : public http::Handler {
 public:
  StaticSiteHandler(std::unique_ptr<StaticSite> site, std::string prefix, http::Handler* next,
                    std::string content_security_policy = kContentSecurityPolicy);

  void Handle(http::Request request, http::Respond respond) override;
  http::Response MakeError(http::Status status, const std::string& message, unsigned version, bool keep_alive) override;

 private:
  std::unique_ptr<StaticSite> site_;
  std::string prefix_;
  http::Handler* next_;
  std::string csp_;
};

}  // namespace wmty::web

#endif  // WMTY_WEB_STATIC_SITE_H_
