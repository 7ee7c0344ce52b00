// Disk full, end to end: an in-process WmtyServer (gRPC and FHIR on port 0)
// whose store runs on a fault-injecting file system. While the disk is
// "full", gRPC writes get UNAVAILABLE and FHIR writes 503 with an
// OperationOutcome and Retry-After, reads and health keep working; once space
// is freed, writes work again without a restart.
#include <memory>
#include <string>

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "fhir/http_client.h"
#include "integration/integration_util.h"
#include "server/server.h"
#include "support/fault_injection_fs.h"
#include "support/test_support.h"
#include "wmty/client/client.h"

namespace wmty {
namespace {

using ::testing::HasSubstr;
using ::testing::SizeIs;
using ::wmty::testing::FaultInjectionFs;
using ::wmty::testing::HttpClient;
using ::wmty::testing::HttpResponse;
using ::wmty::testing::StatusIs;
using ::wmty::testing::TempDir;

constexpr absl::string_view kXProvenance =
    R"({"resourceType":"Provenance","agent":[{"type":{"coding":[{"system":)"
    R"("http://terminology.hl7.org/CodeSystem/provenance-participant-type","code":"author"}]},)"
    R"("who":{"reference":"Practitioner/rn-17","display":"Ana Ruiz"},"role":[{"text":"RN"}]}]})";

std::string GoalJson(const std::string& patient, const std::string& description) {
  return absl::StrCat(R"({"resourceType":"Goal","lifecycleStatus":"active","description":{"text":")", description,
                      R"("},"subject":{"reference":"Patient/)", patient, R"("},"expressedBy":{"reference":"Patient/)",
                      patient, R"("}})");
}

class DiskFullTest : public ::testing::Test {
 protected:
  void SetUp() override {
    server::ServerOptions options;
    options.data_dir = dir_.path() + "/db";
    options.grpc_listen = "127.0.0.1:0";
    options.http_listen = "127.0.0.1:0";
    options.block_cache_bytes = size_t{8} << 20;
    options.customize_store = [this](storage::StoreOptions* store) { store->env = FaultInjectionFs::NewEnv(fs_); };
    auto server = server::WmtyServer::Start(options);
    ASSERT_TRUE(server.ok()) << server.status();
    server_ = std::move(*server);
    target_ = absl::StrCat("127.0.0.1:", server_->grpc_port());
    // One attempt: the test wants to see UNAVAILABLE, not the client's retries.
    client::ClientOptions client_options;
    client_options.target = target_;
    client_options.timeout = absl::Seconds(10);
    client_options.max_attempts = 1;
    client_ = client::Client::Connect(client_options);
    http_ = std::make_unique<HttpClient>(server_->http_port());
  }
  void TearDown() override {
    if (server_ != nullptr) server_->Shutdown(absl::Seconds(5));
  }

  v1::CreateGoalRequest GoalRequest(const std::string& description) {
    v1::CreateGoalRequest req;
    req.set_parent("patients/" + patient_);
    *req.mutable_goal() = testing::ValidGoal(description);
    return req;
  }
  HttpResponse PostGoal(const std::string& description) {
    return http_->Post("/fhir/Goal", GoalJson(patient_, description), {{"X-Provenance", std::string(kXProvenance)}});
  }
  // Goal ids of the patient, by FHIR search.
  std::vector<std::string> SearchGoalIds() {
    HttpResponse r = http_->Get("/fhir/Goal?patient=" + patient_ + "&_count=100");
    EXPECT_EQ(r.status, 200) << r.Describe();
    std::vector<std::string> ids;
    rapidjson::Document d = r.Json();
    if (d.IsObject() && d.HasMember("entry")) {
      for (const auto& e : d["entry"].GetArray()) ids.push_back(e["resource"]["id"].GetString());
    }
    return ids;
  }

  TempDir dir_;
  std::shared_ptr<FaultInjectionFs> fs_ = std::make_shared<FaultInjectionFs>();
  std::unique_ptr<server::WmtyServer> server_;
  std::string target_;
  std::unique_ptr<client::Client> client_;
  std::unique_ptr<HttpClient> http_;
  const std::string patient_ = "disk-full-patient";
};

TEST_F(DiskFullTest, WritesAreRefusedReadsWorkAndWritesResumeWhenSpaceIsFreed) {
  auto before = client_->CreateGoal(GoalRequest("Walk to the market before the disk filled"));
  ASSERT_TRUE(before.ok()) << before.status();
  const std::string before_id = before->name().substr(before->name().rfind('/') + 1);

  fs_->SetWriteFault(FaultInjectionFs::WriteFault::kNoSpace);

  // gRPC write: UNAVAILABLE (the first one fails at the disk, later ones fast).
  EXPECT_THAT(client_->CreateGoal(GoalRequest("Refused: the disk is full")), StatusIs(absl::StatusCode::kUnavailable));
  EXPECT_THAT(client_->CreateGoal(GoalRequest("Refused again")), StatusIs(absl::StatusCode::kUnavailable));
  EXPECT_GT(fs_->refused_writes(), 0u);

  // FHIR write: 503, an OperationOutcome, and Retry-After.
  HttpResponse refused = PostGoal("Refused over FHIR");
  EXPECT_EQ(refused.status, 503) << refused.Describe();
  EXPECT_FALSE(refused.Header("retry-after").empty()) << refused.Describe();
  rapidjson::Document outcome = refused.Json();
  ASSERT_TRUE(outcome.IsObject()) << refused.Describe();
  EXPECT_STREQ(outcome["resourceType"].GetString(), "OperationOutcome");
  EXPECT_STREQ(outcome["issue"][0]["code"].GetString(), "transient");

  // Reads keep working, and show nothing of the refused writes.
  v1::GetResourceRequest get;
  get.set_name(before->name());
  auto read = client_->GetGoal(get);
  ASSERT_TRUE(read.ok()) << read.status();
  EXPECT_EQ(read->description(), "Walk to the market before the disk filled");
  HttpResponse fhir_read = http_->Get("/fhir/Goal/" + before_id);
  EXPECT_EQ(fhir_read.status, 200) << fhir_read.Describe();
  EXPECT_THAT(SearchGoalIds(), ::testing::ElementsAre(before_id));
  // Still serving: the server answers reads; writes are a storage matter.
  auto health = testing::HealthCheck(target_);
  ASSERT_TRUE(health.ok()) << health.status();
  EXPECT_EQ(*health, 1);  // SERVING

  // Space is freed: writes work again, without a restart. The store retries
  // after a backoff, so the first attempts may still be refused.
  fs_->SetWriteFault(FaultInjectionFs::WriteFault::kNone);
  const absl::Time give_up = absl::Now() + absl::Seconds(30);
  absl::StatusOr<v1::Goal> after = absl::UnavailableError("not tried");
  while (!after.ok() && after.status().code() == absl::StatusCode::kUnavailable && absl::Now() < give_up) {
    after = client_->CreateGoal(GoalRequest("Written after space was freed"));
  }
  ASSERT_TRUE(after.ok()) << after.status();
  HttpResponse created = PostGoal("Written over FHIR after space was freed");
  EXPECT_EQ(created.status, 201) << created.Describe();
  EXPECT_THAT(SearchGoalIds(), SizeIs(3));
}

}  // namespace
}  // namespace wmty
