#include "web/static_site.h"

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <utility>

#include <openssl/sha.h>

#include "absl/strings/ascii.h"
#include "absl/strings/escaping.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"
#include "web/embedded_assets.h"

namespace wmty::web {
namespace {

namespace beast_http = boost::beast::http;

// Largest file served from --bedside_dir (the app is a few hundred KB).
constexpr std::uintmax_t kMaxDirectoryFileBytes = 8 << 20;

std::string EtagOf(absl::string_view content) {
  unsigned char digest[SHA256_DIGEST_LENGTH];
  SHA256(reinterpret_cast<const unsigned char*>(content.data()), content.size(), digest);
  return absl::StrCat("\"", absl::BytesToHexString(absl::string_view(reinterpret_cast<const char*>(digest), 16)), "\"");
}

StaticFile MakeFile(std::string path, std::string content) {
  StaticFile file;
  file.content_type = ContentTypeFor(path);
  file.etag = EtagOf(content);
  file.content = std::move(content);
  return file;
}

void SetCommonHeaders(http::Response& response, absl::string_view csp) {
  response.set("Content-Security-Policy", boost::beast::string_view(csp.data(), csp.size()));
  response.set("X-Content-Type-Options", "nosniff");
  response.set("Referrer-Policy", "no-referrer");
  response.set("X-Frame-Options", "DENY");
  response.set(beast_http::field::cache_control, "no-cache");
}

http::Response PlainResponse(const http::Request& request, http::Status status, absl::string_view text,
                             absl::string_view csp) {
  http::Response response(status, request.version());
  SetCommonHeaders(response, csp);
  response.set(beast_http::field::content_type, "text/plain; charset=utf-8");
  response.keep_alive(request.keep_alive());
  if (request.method() != beast_http::verb::head) response.body() = std::string(text);
  response.prepare_payload();
  return response;
}

http::Response Redirect(const http::Request& request, const std::string& location, absl::string_view csp) {
  http::Response response = PlainResponse(request, http::Status::moved_permanently, "", csp);
  response.set(beast_http::field::location, location);
  return response;
}

// Whether an If-None-Match header value names `etag` (a list, or *).
bool IfNoneMatchHits(absl::string_view header, absl::string_view etag) {
  for (absl::string_view candidate : absl::StrSplit(header, ',')) {
    candidate = absl::StripAsciiWhitespace(candidate);
    if (absl::StartsWith(candidate, "W/")) candidate.remove_prefix(2);
    if (candidate == "*" || candidate == etag) return true;
  }
  return false;
}

}  // namespace

std::string ContentTypeFor(absl::string_view path) {
  static constexpr std::pair<absl::string_view, absl::string_view> kTypes[] = {
      {".html", "text/html; charset=utf-8"},
      {".css", "text/css; charset=utf-8"},
      {".js", "text/javascript; charset=utf-8"},
      {".mjs", "text/javascript; charset=utf-8"},
      {".json", "application/json"},
      {".webmanifest", "application/manifest+json"},
      {".svg", "image/svg+xml"},
      {".png", "image/png"},
      {".ico", "image/x-icon"},
      {".txt", "text/plain; charset=utf-8"},
      {".woff2", "font/woff2"},
  };
  for (const auto& [extension, type] : kTypes) {
    if (absl::EndsWith(path, extension)) return std::string(type);
  }
  return "application/octet-stream";
}

bool IsPlainRelativePath(absl::string_view path) {
  if (path.empty() || path.size() > 256) return false;
  for (char c : path) {
    if (!absl::ascii_isalnum(static_cast<unsigned char>(c)) && c != '.' && c != '_' && c != '-' && c != '/') {
      return false;
    }
  }
  for (absl::string_view segment : absl::StrSplit(path, '/')) {
    if (segment.empty() || segment == "." || segment == ".." || segment.front() == '.') return false;
  }
  return true;
}

std::unique_ptr<StaticSite> StaticSite::Embedded() {
  std::unique_ptr<StaticSite> site(new StaticSite());
  for (size_t i = 0; i < internal::kBedsideAssetCount; ++i) {
    const internal::EmbeddedAsset& asset = internal::kBedsideAssets[i];
    site->files_.emplace(asset.path,
                         MakeFile(asset.path, std::string(reinterpret_cast<const char*>(asset.data), asset.size)));
  }
  return site;
}

absl::StatusOr<std::unique_ptr<StaticSite>> StaticSite::FromDirectory(const std::string& dir) {
  std::error_code error;
  if (!std::filesystem::is_directory(dir, error)) {
    return absl::NotFoundError(absl::StrCat("not a directory: ", dir));
  }
  std::unique_ptr<StaticSite> site(new StaticSite());
  site->dir_ = std::filesystem::canonical(dir, error).string();
  if (error) return absl::NotFoundError(absl::StrCat("cannot resolve ", dir, ": ", error.message()));
  return site;
}

std::optional<StaticFile> StaticSite::Find(absl::string_view relative_path) const {
  if (!IsPlainRelativePath(relative_path)) return std::nullopt;
  if (dir_.empty()) {
    auto it = files_.find(relative_path);
    if (it == files_.end()) return std::nullopt;
    return it->second;
  }
  // Development mode. The path check above already rules out "..", and a
  // symlink leading out of the directory is refused as well.
  std::error_code error;
  const std::filesystem::path file =
      std::filesystem::canonical(std::filesystem::path(dir_) / std::string(relative_path), error);
  if (error || !absl::StartsWith(file.string(), dir_ + "/") || !std::filesystem::is_regular_file(file, error) ||
      std::filesystem::file_size(file, error) > kMaxDirectoryFileBytes) {
    return std::nullopt;
  }
  std::ifstream in(file, std::ios::binary);
  std::ostringstream content;
  content << in.rdbuf();
  if (!in.good() && !in.eof()) return std::nullopt;
  return MakeFile(std::string(relative_path), std::move(content).str());
}

StaticSiteHandler::StaticSiteHandler(std::unique_ptr<StaticSite> site, std::string prefix, http::Handler* next,
                                     std::string content_security_policy)
    : site_(std::move(site)), prefix_(std::move(prefix)), next_(next), csp_(std::move(content_security_policy)) {}

std::string ContentSecurityPolicyConnectingTo(const std::vector<std::string>& urls) {
  std::vector<std::string> origins;
  for (const std::string& url : urls) {
    // scheme://authority, up to the path; anything else is not an origin.
    const size_t scheme_end = url.find("://");
    if (scheme_end == std::string::npos) continue;
    const std::string scheme = url.substr(0, scheme_end);
    if (scheme != "https" && scheme != "http") continue;
    const size_t path = url.find_first_of("/?#", scheme_end + 3);
    std::string origin = url.substr(0, path);
    if (origin.size() == scheme_end + 3 || origin.find_first_of(" ;,'\"") != std::string::npos) continue;
    if (std::find(origins.begin(), origins.end(), origin) == origins.end()) origins.push_back(std::move(origin));
  }
  if (origins.empty()) return kContentSecurityPolicy;
  std::string policy = kContentSecurityPolicy;
  const std::string connect = "connect-src 'self'";
  policy.insert(policy.find(connect) + connect.size(), absl::StrCat(" ", absl::StrJoin(origins, " ")));
  return policy;
}

void StaticSiteHandler::Handle(http::Request request, http::Respond respond) {
  const absl::string_view target(request.target().data(), request.target().size());
  const absl::string_view path = target.substr(0, target.find('?'));
  const bool ours = path == "/" || path == prefix_ || absl::StartsWith(path, prefix_ + "/");
  if (!ours) {
    next_->Handle(std::move(request), std::move(respond));
    return;
  }
  if (request.method() != beast_http::verb::get && request.method() != beast_http::verb::head) {
    http::Response response = PlainResponse(request, http::Status::method_not_allowed, "Method not allowed\n", csp_);
    response.set(beast_http::field::allow, "GET, HEAD");
    respond(std::move(response));
    return;
  }
  if (path == "/" || path == prefix_) {
    respond(Redirect(request, prefix_ + "/", csp_));
    return;
  }
  absl::string_view relative = path.substr(prefix_.size() + 1);
  if (relative.empty()) relative = "index.html";
  std::optional<StaticFile> file = site_->Find(relative);
  if (!file.has_value()) {
    respond(PlainResponse(request, http::Status::not_found, "Not found\n", csp_));
    return;
  }
  const auto if_none_match = request.find(beast_http::field::if_none_match);
  if (if_none_match != request.end() &&
      IfNoneMatchHits(absl::string_view(if_none_match->value().data(), if_none_match->value().size()), file->etag)) {
    http::Response response(http::Status::not_modified, request.version());
    SetCommonHeaders(response, csp_);
    response.set(beast_http::field::etag, file->etag);
    response.keep_alive(request.keep_alive());
    respond(std::move(response));
    return;
  }
  http::Response response(http::Status::ok, request.version());
  SetCommonHeaders(response, csp_);
  response.set(beast_http::field::content_type, file->content_type);
  response.set(beast_http::field::etag, file->etag);
  response.keep_alive(request.keep_alive());
  if (request.method() == beast_http::verb::head) {
    response.content_length(file->content.size());
  } else {
    response.body() = std::move(file->content);
    response.prepare_payload();
  }
  respond(std::move(response));
}

http::Response StaticSiteHandler::MakeError(http::Status status, const std::string& message, unsigned version,
                                            bool keep_alive) {
  return next_->MakeError(status, message, version, keep_alive);
}

}  // namespace wmty::web
