// TLS and mutual TLS on the gRPC and HTTP (FHIR) listeners, with certificates
// made by the openssl command for each test, against the real wmtyd, the real
// client and curl.
#include <fstream>

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "absl/strings/str_cat.h"
#include "support/test_support.h"

namespace wmty::testing {
namespace {

std::string ReadAll(const std::string& path) {
  std::ifstream in(path);
  return std::string((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
}

class TlsTest : public ::testing::Test {
 protected:
  void SetUp() override {
    const std::string d = dir_.path();
    std::ofstream(d + "/san.ext") << "subjectAltName=IP:127.0.0.1,DNS:localhost\n";
    Openssl({"req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", d + "/ca.key", "-out", d + "/ca.pem", "-days",
             "1", "-subj", "/CN=wmty-test-ca"});
    for (const char* who : {"server", "client"}) {
      const std::string base = absl::StrCat(d, "/", who);
      Openssl({"req", "-newkey", "rsa:2048", "-nodes", "-keyout", base + ".key", "-out", base + ".csr", "-subj",
               absl::StrCat("/CN=", who)});
      Openssl({"x509", "-req", "-in", base + ".csr", "-CA", d + "/ca.pem", "-CAkey", d + "/ca.key", "-CAcreateserial",
               "-out", base + ".pem", "-days", "1", "-extfile", d + "/san.ext"});
    }
  }

  void Openssl(std::vector<std::string> args) {
    args.insert(args.begin(), "/usr/bin/openssl");
    std::string out;
    ASSERT_EQ(RunCommand(args, &out), 0) << out;
  }

  std::unique_ptr<client::Client> Client(const ServerProcess& server, bool tls, bool client_cert) {
    client::ClientOptions options;
    options.target = server.target();
    options.timeout = absl::Seconds(5);
    options.max_attempts = 1;
    if (tls) {
      grpc::SslCredentialsOptions ssl;
      ssl.pem_root_certs = ReadAll(dir_.path() + "/ca.pem");
      if (client_cert) {
        ssl.pem_private_key = ReadAll(dir_.path() + "/client.key");
        ssl.pem_cert_chain = ReadAll(dir_.path() + "/client.pem");
      }
      options.credentials = grpc::SslCredentials(ssl);
    } else {
      options.credentials = grpc::InsecureChannelCredentials();
    }
    return client::Client::Connect(options);
  }

  static absl::Status Probe(client::Client& client) {
    v1::GetResourceRequest req;
    req.set_name("patients/p1/priorities");
    return client.GetPriorities(req).status();
  }

  std::vector<std::string> TlsFlags(bool mtls) {
    std::vector<std::string> flags = {absl::StrCat("--tls_cert_file=", dir_.path(), "/server.pem"),
                                      absl::StrCat("--tls_key_file=", dir_.path(), "/server.key")};
    if (mtls) flags.push_back(absl::StrCat("--tls_client_ca_file=", dir_.path(), "/ca.pem"));
    return flags;
  }

  // curl's HTTP status for GET /fhir/metadata ("000" when no response), and
  // its exit code in *rc.
  std::string CurlMetadata(const ServerProcess& server, const std::string& scheme, bool client_cert, int* rc) {
    std::vector<std::string> args = {"/usr/bin/curl", "-s",         "-o", "/dev/null", "-w",
                                     "%{http_code}",  "--max-time", "10", "--cacert",  dir_.path() + "/ca.pem"};
    if (client_cert) {
      args.insert(args.end(), {"--cert", dir_.path() + "/client.pem", "--key", dir_.path() + "/client.key"});
    }
    args.push_back(absl::StrCat(scheme, "://127.0.0.1:", server.http_port(), "/fhir/metadata"));
    std::string out;
    *rc = RunCommand(args, &out);
    return out;
  }

  TempDir dir_;
};

TEST_F(TlsTest, TlsClientConnectsAndPlaintextClientIsRefused) {
  auto server = ServerProcess::Start(dir_.path() + "/data", TlsFlags(false));
  ASSERT_TRUE(server.ok()) << server.status();
  EXPECT_TRUE(Probe(*Client(**server, /*tls=*/true, /*client_cert=*/false)).ok());
  EXPECT_FALSE(Probe(*Client(**server, /*tls=*/false, false)).ok());
}

TEST_F(TlsTest, MutualTlsRequiresAClientCertificateFromTheCa) {
  auto server = ServerProcess::Start(dir_.path() + "/data", TlsFlags(true));
  ASSERT_TRUE(server.ok()) << server.status();
  EXPECT_TRUE(Probe(*Client(**server, true, /*client_cert=*/true)).ok());
  EXPECT_FALSE(Probe(*Client(**server, true, /*client_cert=*/false)).ok());
}

TEST_F(TlsTest, HttpsServesFhirAndPlainHttpIsRefused) {
  auto server = ServerProcess::Start(dir_.path() + "/data", TlsFlags(false));
  ASSERT_TRUE(server.ok()) << server.status();
  int rc = -1;
  EXPECT_EQ(CurlMetadata(**server, "https", /*client_cert=*/false, &rc), "200");
  EXPECT_EQ(rc, 0);
  EXPECT_EQ(CurlMetadata(**server, "http", false, &rc), "000");
  EXPECT_NE(rc, 0);
  // Still serving after the plaintext attempt.
  EXPECT_EQ(CurlMetadata(**server, "https", false, &rc), "200");
}

TEST_F(TlsTest, HttpsWithMutualTlsRequiresAClientCertificateFromTheCa) {
  auto server = ServerProcess::Start(dir_.path() + "/data", TlsFlags(true));
  ASSERT_TRUE(server.ok()) << server.status();
  int rc = -1;
  EXPECT_EQ(CurlMetadata(**server, "https", /*client_cert=*/true, &rc), "200");
  EXPECT_EQ(rc, 0);
  EXPECT_NE(CurlMetadata(**server, "https", /*client_cert=*/false, &rc), "200");
  EXPECT_NE(rc, 0);
}

TEST_F(TlsTest, WithTlsBothListenersMayLeaveLoopback) {
  const std::string secret = dir_.path() + "/hs256.secret";
  std::ofstream(secret) << std::string(40, 's');
  std::vector<std::string> flags = TlsFlags(false);
  flags.insert(flags.end(), {"--grpc_listen=0.0.0.0:0", "--http_listen=0.0.0.0:0", "--auth_hs256_secret_file=" + secret,
                             "--auth_issuer=i", "--auth_audience=a"});
  auto server = ServerProcess::Start(dir_.path() + "/data", flags);
  ASSERT_TRUE(server.ok()) << server.status();
  int rc = -1;
  EXPECT_EQ(CurlMetadata(**server, "https", false, &rc), "200");
}

TEST_F(TlsTest, PlaintextOffLoopbackAndHalfConfiguredTlsAreRefusedAtStartup) {
  std::string out;
  const std::string data = dir_.path() + "/refused";
  // Refused before binding anything: no traffic leaves the machine.
  const std::string secret = dir_.path() + "/hs256.secret";
  std::ofstream(secret) << std::string(40, 's');
  EXPECT_EQ(RunCommand({WMTYD_PATH, "--data_dir=" + data, "--grpc_listen=0.0.0.0:0",
                        "--http_listen=", "--auth_hs256_secret_file=" + secret, "--auth_issuer=i", "--auth_audience=a"},
                       &out),
            1);
  EXPECT_THAT(out, ::testing::HasSubstr("plaintext listeners are only allowed on loopback"));
  EXPECT_EQ(RunCommand({WMTYD_PATH, "--data_dir=" + data, "--grpc_listen=127.0.0.1:0", "--http_listen=127.0.0.1:0",
                        "--auth_disabled", absl::StrCat("--tls_cert_file=", dir_.path(), "/server.pem")},
                       &out),
            1);
  EXPECT_THAT(out, ::testing::HasSubstr("private key"));
}

// wmtyctl (both the API commands and admin) over TLS and mutual TLS: what an
// operator runs inside the cluster against the TLS port.
TEST_F(TlsTest, WmtyctlSpeaksTlsAndMutualTls) {
  auto server = ServerProcess::Start(dir_.path() + "/data", [&] {
    auto flags = TlsFlags(/*mtls=*/true);
    flags.push_back(absl::StrCat("--backup_dir=", dir_.path(), "/backups"));
    return flags;
  }());
  ASSERT_TRUE(server.ok()) << server.status();
  const std::string d = dir_.path();
  auto wmtyctl = [&](std::vector<std::string> args, std::string* out) {
    args.insert(args.begin(), {WMTYCTL_PATH, "--target=" + (*server)->target(), "--timeout=5s"});
    return RunCommand(args, out);
  };
  const std::vector<std::string> mtls = {"--tls_ca_file=" + d + "/ca.pem", "--tls_cert_file=" + d + "/client.pem",
                                         "--tls_key_file=" + d + "/client.key"};
  std::string out;
  std::vector<std::string> args = mtls;
  args.insert(args.end(), {"get-priorities", "--name=patients/p1/priorities"});
  EXPECT_EQ(wmtyctl(args, &out), 0) << out;

  args = mtls;
  args.insert(args.end(), {"admin", "backup"});
  EXPECT_EQ(wmtyctl(args, &out), 0) << out;
  args = {"admin", "list-backups"};
  args.insert(args.end(), mtls.begin(), mtls.end());  // the flags may also follow "admin"
  args.push_back("--json");
  ASSERT_EQ(wmtyctl(args, &out), 0) << out;
  EXPECT_THAT(out, ::testing::HasSubstr("\"id\": 1,")) << "the backup taken over mTLS is listed";

  // Without the client certificate, or without TLS at all: refused.
  EXPECT_NE(wmtyctl({"--tls_ca_file=" + d + "/ca.pem", "get-priorities", "--name=patients/p1/priorities"}, &out), 0);
  EXPECT_NE(wmtyctl({"get-priorities", "--name=patients/p1/priorities"}, &out), 0);
  EXPECT_NE(wmtyctl({"--tls_ca_file=" + d + "/ca.pem", "admin", "list-backups"}, &out), 0);
  // Half a client identity is a usage error (2), named, before any call.
  EXPECT_EQ(wmtyctl({"--tls_ca_file=" + d + "/ca.pem", "--tls_cert_file=" + d + "/client.pem", "get-priorities",
                     "--name=patients/p1/priorities"},
                    &out),
            2);
  EXPECT_THAT(out, ::testing::HasSubstr("--tls_cert_file and --tls_key_file go together"));
  EXPECT_EQ(wmtyctl({"--tls_ca_file=" + d + "/missing.pem", "get-priorities", "--name=patients/p1/priorities"}, &out),
            2);
  EXPECT_THAT(out, ::testing::HasSubstr("cannot read"));
}

}  // namespace
}  // namespace wmty::testing
