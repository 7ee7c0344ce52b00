// The bedside app served by the real wmtyd (services/web/static_site.h): the
// compiled-in files byte for byte at /bedside/, security headers, 304s, HEAD,
// redirects, refusals of anything that is not a plain file path (traversal,
// symlinks out of --bedside_dir), and the FHIR face still behind it. Plus the
// path and content-type helpers on their own.
#include <filesystem>
#include <fstream>
#include <sstream>

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "absl/strings/match.h"
#include "fhir/http_client.h"
#include "support/test_support.h"
#include "web/static_site.h"

namespace wmty::testing {
namespace {

using ::testing::HasSubstr;
using ::testing::StartsWith;

namespace fs = std::filesystem;

std::string ReadFile(const fs::path& path) {
  std::ifstream in(path, std::ios::binary);
  std::ostringstream out;
  out << in.rdbuf();
  return std::move(out).str();
}

void WriteFile(const fs::path& path, const std::string& content) {
  fs::create_directories(path.parent_path());
  std::ofstream(path, std::ios::binary) << content;
}

void ExpectSecurityHeaders(const HttpResponse& r) {
  EXPECT_EQ(r.Header("content-security-policy"), web::kContentSecurityPolicy) << r.Describe();
  EXPECT_EQ(r.Header("x-content-type-options"), "nosniff");
  EXPECT_EQ(r.Header("referrer-policy"), "no-referrer");
  EXPECT_EQ(r.Header("x-frame-options"), "DENY");
  EXPECT_EQ(r.Header("cache-control"), "no-cache");
}

TEST(StaticSitePaths, OnlyPlainRelativePathsAreFiles) {
  EXPECT_TRUE(web::IsPlainRelativePath("index.html"));
  EXPECT_TRUE(web::IsPlainRelativePath("js/app.js"));
  EXPECT_TRUE(web::IsPlainRelativePath("img/icon-192_x.png"));
  for (const char* bad : {"", "/index.html", "../secret", "js/../../x", "./index.html", "js//app.js", "js/", ".hidden",
                          "js/.env", "a\\b", "a%2e%2e", "a b", "a?b"}) {
    EXPECT_FALSE(web::IsPlainRelativePath(bad)) << bad;
  }
  EXPECT_FALSE(web::IsPlainRelativePath(std::string(300, 'a')));
}

TEST(StaticSitePaths, ContentTypes) {
  EXPECT_EQ(web::ContentTypeFor("index.html"), "text/html; charset=utf-8");
  EXPECT_EQ(web::ContentTypeFor("js/app.js"), "text/javascript; charset=utf-8");
  EXPECT_EQ(web::ContentTypeFor("app.css"), "text/css; charset=utf-8");
  EXPECT_EQ(web::ContentTypeFor("icon.svg"), "image/svg+xml");
  EXPECT_EQ(web::ContentTypeFor("manifest.webmanifest"), "application/manifest+json");
  EXPECT_EQ(web::ContentTypeFor("notes.bin"), "application/octet-stream");
}

// Every file of clients/bedside (as the build embedded it) is served byte for
// byte with the right type, and nothing else is.
// The SMART sign-in exchanges codes and refreshes tokens at the token
// endpoint from the browser: connect-src gains exactly those origins.
TEST(StaticSitePaths, ContentSecurityPolicyConnectsToTheTokenEndpointOnly) {
  EXPECT_EQ(web::ContentSecurityPolicyConnectingTo({}), web::kContentSecurityPolicy);
  EXPECT_EQ(web::ContentSecurityPolicyConnectingTo({"", "not a url", "javascript:alert(1)"}),
            web::kContentSecurityPolicy);
  const std::string csp = web::ContentSecurityPolicyConnectingTo({"https://idp.example.org:8443/oauth2/token?x=1",
                                                                  "https://idp.example.org:8443/oauth2/revoke",
                                                                  "https://other.example/revoke"});
  EXPECT_THAT(csp, HasSubstr("connect-src 'self' https://idp.example.org:8443 https://other.example;"));
  EXPECT_THAT(csp, HasSubstr("script-src 'self';"));
  // Nothing that could end the directive or add another one.
  EXPECT_EQ(web::ContentSecurityPolicyConnectingTo({"https://a.example; script-src *"}), web::kContentSecurityPolicy);
}

TEST(BedsideServing, ServesEveryCompiledInFileByteForByte) {
  TempDir dir;
  auto server = ServerProcess::Start(dir.path() + "/db");
  ASSERT_TRUE(server.ok()) << server.status();
  HttpClient http((*server)->http_port());

  const fs::path source(WMTY_BEDSIDE_SOURCE_DIR);
  ASSERT_TRUE(fs::exists(source / "index.html")) << "the bedside app has an index.html";
  int served = 0;
  for (auto it = fs::recursive_directory_iterator(source); it != fs::recursive_directory_iterator(); ++it) {
    const std::string relative = fs::relative(it->path(), source).generic_string();
    if (relative == "node_modules") {  // npm's tree: only the one browser build (below) is the app's
      it.disable_recursion_pending();
      continue;
    }
    if (!it->is_regular_file()) continue;
    if (relative == "README.md" || relative == "package.json" || relative == "package-lock.json" ||
        it->path().filename().string().front() == '.') {
      continue;
    }
    const auto& entry = *it;
    HttpResponse r = http.Get("/bedside/" + relative);
    ASSERT_EQ(r.status, 200) << relative << " " << r.Describe();
    EXPECT_EQ(r.body, ReadFile(entry.path())) << relative << ": the build embeds the current file";
    EXPECT_EQ(r.Header("content-type"), web::ContentTypeFor(relative)) << relative;
    ExpectSecurityHeaders(r);
    ++served;
  }
  EXPECT_GE(served, 2);
  // fhirclient's browser build, from npm (clients/bedside/package-lock.json).
  const std::string fhirclient = "node_modules/fhirclient/build/fhir-client.pure.min.js";
  HttpResponse lib = http.Get("/bedside/" + fhirclient);
  ASSERT_EQ(lib.status, 200) << lib.Describe();
  EXPECT_EQ(lib.body, ReadFile(source / fhirclient));
  EXPECT_EQ(lib.Header("content-type"), web::ContentTypeFor(fhirclient));
  // The rest of node_modules and the npm manifests are not part of the app.
  EXPECT_EQ(http.Get("/bedside/package.json").status, 404);
  EXPECT_EQ(http.Get("/bedside/node_modules/fhirclient/package.json").status, 404);

  HttpResponse index = http.Get("/bedside/");
  ASSERT_EQ(index.status, 200) << index.Describe();
  EXPECT_EQ(index.body, ReadFile(source / "index.html"));
  EXPECT_EQ(index.Header("content-type"), "text/html; charset=utf-8");
  // Files of the source tree that are not part of the app are not served.
  EXPECT_EQ(http.Get("/bedside/README.md").status, 404);
}

TEST(BedsideServing, RedirectsConditionalGetHeadAndMethods) {
  TempDir dir;
  auto server = ServerProcess::Start(dir.path() + "/db");
  ASSERT_TRUE(server.ok()) << server.status();
  HttpClient http((*server)->http_port());

  HttpResponse bare = http.Get("/bedside");
  EXPECT_EQ(bare.status, 301);
  EXPECT_EQ(bare.Header("location"), "/bedside/");
  HttpResponse root = http.Get("/");
  EXPECT_EQ(root.status, 301);
  EXPECT_EQ(root.Header("location"), "/bedside/");

  HttpResponse first = http.Get("/bedside/index.html?v=1");  // the query is ignored
  ASSERT_EQ(first.status, 200);
  const std::string etag = first.Header("etag");
  ASSERT_THAT(etag, StartsWith("\""));
  HttpResponse again = http.Get("/bedside/index.html", {{"If-None-Match", etag}});
  EXPECT_EQ(again.status, 304) << again.Describe();
  EXPECT_TRUE(again.body.empty());
  EXPECT_EQ(again.Header("etag"), etag);
  EXPECT_EQ(http.Get("/bedside/index.html", {{"If-None-Match", "\"other\""}}).status, 200);

  auto head = http.Send("HEAD", "/bedside/index.html");
  ASSERT_TRUE(head.ok()) << head.status();
  EXPECT_EQ(head->status, 200);
  EXPECT_TRUE(head->body.empty());
  EXPECT_EQ(head->Header("content-length"), std::to_string(first.body.size()));

  HttpResponse post = http.Post("/bedside/index.html", "{}");
  EXPECT_EQ(post.status, 405);
  EXPECT_EQ(post.Header("allow"), "GET, HEAD");
  EXPECT_EQ(http.Delete("/bedside/").status, 405);

  // The FHIR face is untouched behind it, and needs no change of path.
  HttpResponse metadata = http.Get("/fhir/metadata");
  EXPECT_EQ(metadata.status, 200);
  EXPECT_THAT(metadata.body, HasSubstr("CapabilityStatement"));
  // Prefixes that merely start like ours are not ours.
  EXPECT_EQ(http.Get("/bedsideX/index.html").status, 404);
  EXPECT_THAT(http.Get("/bedsideX/index.html").Header("content-type"), HasSubstr("fhir+json"));
}

TEST(BedsideServing, RefusesTraversalAndUnknownPaths) {
  TempDir dir;
  auto server = ServerProcess::Start(dir.path() + "/db");
  ASSERT_TRUE(server.ok()) << server.status();
  HttpClient http((*server)->http_port());
  for (const char* target : {"/bedside/../fhir/metadata", "/bedside/%2e%2e/fhir/metadata", "/bedside/js/../index.html",
                             "/bedside//index.html", "/bedside/.git/config", "/bedside/no-such-file.js",
                             "/bedside/index.html%00.js", "/bedside/..%2f..%2fetc%2fpasswd"}) {
    HttpResponse r = http.Get(target);
    EXPECT_EQ(r.status, 404) << target << " " << r.Describe();
    EXPECT_EQ(r.Header("content-type"), "text/plain; charset=utf-8") << target;
    ExpectSecurityHeaders(r);
  }
  // Raw bytes a URL parser would normalize are not normalized here either.
  auto raw = http.SendRaw("GET /bedside/../../etc/passwd HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n");
  ASSERT_TRUE(raw.ok()) << raw.status();
  EXPECT_EQ(raw->status, 404);
  EXPECT_THAT(raw->body, ::testing::Not(HasSubstr("root:")));
}

TEST(BedsideServing, DirectoryModeReadsFilesOnEveryRequestAndStaysInside) {
  TempDir dir;
  const fs::path app = fs::path(dir.path()) / "app";
  WriteFile(app / "index.html", "<!doctype html><title>one</title>");
  WriteFile(app / "js" / "app.js", "export const x = 1;\n");
  WriteFile(fs::path(dir.path()) / "outside.txt", "secret outside the app");
  fs::create_symlink(fs::path(dir.path()) / "outside.txt", app / "escape.txt");
  auto server = ServerProcess::Start(dir.path() + "/db", {"--bedside_dir=" + app.string()});
  ASSERT_TRUE(server.ok()) << server.status();
  HttpClient http((*server)->http_port());

  HttpResponse one = http.Get("/bedside/");
  ASSERT_EQ(one.status, 200) << one.Describe();
  EXPECT_EQ(one.body, "<!doctype html><title>one</title>");
  EXPECT_EQ(http.Get("/bedside/js/app.js").body, "export const x = 1;\n");
  WriteFile(app / "index.html", "<!doctype html><title>two</title>");
  HttpResponse two = http.Get("/bedside/", {{"If-None-Match", one.Header("etag")}});
  EXPECT_EQ(two.status, 200) << "a changed file is a new version";
  EXPECT_EQ(two.body, "<!doctype html><title>two</title>");
  EXPECT_NE(two.Header("etag"), one.Header("etag"));

  HttpResponse escape = http.Get("/bedside/escape.txt");
  EXPECT_EQ(escape.status, 404) << "a symlink out of --bedside_dir is not followed";
  EXPECT_THAT(escape.body, ::testing::Not(HasSubstr("secret")));
}

TEST(BedsideServing, CanBeTurnedOffAndABadDirectoryStopsStartup) {
  TempDir dir;
  auto server = ServerProcess::Start(dir.path() + "/db", {"--bedside=false"});
  ASSERT_TRUE(server.ok()) << server.status();
  HttpClient http((*server)->http_port());
  HttpResponse r = http.Get("/bedside/");
  EXPECT_EQ(r.status, 404);
  EXPECT_THAT(r.body, HasSubstr("OperationOutcome")) << "the FHIR face answers every path then";
  (*server)->Terminate();

  TempDir other;
  auto refused = ServerProcess::Start(other.path() + "/db", {"--bedside_dir=" + other.path() + "/missing"});
  EXPECT_FALSE(refused.ok()) << "wmtyd must not start with a --bedside_dir that does not exist";
}

}  // namespace
}  // namespace wmty::testing
