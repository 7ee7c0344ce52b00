// What operators see (issue 8): /metrics on the real wmtyd after real gRPC
// and FHIR traffic (exact counts per method / interaction and code, histogram
// counts, store and listener gauges, backup age), the format Prometheus
// parses, the metrics listener refusing other paths, and the liveness /
// readiness health services.
#include "server/observability.h"

#include <unistd.h>

#include <cmath>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <map>
#include <regex>
#include <set>
#include <sstream>

#include <gmock/gmock.h>
#include <grpcpp/grpcpp.h>
#include <gtest/gtest.h>

#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"
#include "fhir/http_client.h"
#include "integration/integration_util.h"
#include "support/test_support.h"
#include "wmty/admin/v1/admin.grpc.pb.h"
#include "wmty/v1/service.grpc.pb.h"

namespace wmty::testing {
namespace {

using ::testing::HasSubstr;

// Sample lines by their full text up to the value ("name{labels}") -> value.
std::map<std::string, double> ParseSamples(const std::string& text) {
  std::map<std::string, double> samples;
  for (absl::string_view line : absl::StrSplit(text, '\n', absl::SkipEmpty())) {
    if (absl::StartsWith(line, "#")) continue;
    const size_t space = line.rfind(' ');
    double value = 0;
    if (space == absl::string_view::npos || !absl::SimpleAtod(line.substr(space + 1), &value)) {
      ADD_FAILURE() << "not a sample line: " << line;
      continue;
    }
    samples[std::string(line.substr(0, space))] = value;
  }
  return samples;
}

// Every line is a comment (HELP/TYPE) or `name{label="value",...} number`,
// and every sample's metric was declared with # TYPE before it.
void ExpectValidExposition(const std::string& text) {
  static const std::regex kSample(
      R"(^([a-zA-Z_:][a-zA-Z0-9_:]*)(\{[a-zA-Z_][a-zA-Z0-9_]*="([^"\\]|\\.)*"(,[a-zA-Z_][a-zA-Z0-9_]*="([^"\\]|\\.)*")*\})? (-?[0-9.e+-]+|\+Inf|NaN)$)");
  static const std::regex kType(R"(^# TYPE ([a-zA-Z_:][a-zA-Z0-9_:]*) (counter|gauge|histogram)$)");
  std::map<std::string, std::string> types;
  for (absl::string_view line_view : absl::StrSplit(text, '\n', absl::SkipEmpty())) {
    const std::string line(line_view);
    std::smatch m;
    if (absl::StartsWith(line, "# HELP ")) continue;
    if (std::regex_match(line, m, kType)) {
      EXPECT_EQ(types.count(m[1]), 0u) << "declared twice: " << line;
      types[m[1]] = m[2];
      continue;
    }
    ASSERT_TRUE(std::regex_match(line, m, kSample)) << "bad line: " << line;
    std::string name = m[1];
    for (const char* suffix : {"_bucket", "_sum", "_count"}) {
      if (types.count(name) == 0 && absl::EndsWith(name, suffix)) name = name.substr(0, name.size() - strlen(suffix));
    }
    EXPECT_EQ(types.count(name), 1u) << "sample before its # TYPE: " << line;
  }
}

class ObservabilityTest : public ::testing::Test {
 protected:
  void SetUp() override {
    port_file_ = dir_.path() + "/metrics.port";
    auto server =
        ServerProcess::Start(dir_.path() + "/db", {"--metrics_listen=127.0.0.1:0", "--metrics_port_file=" + port_file_,
                                                   "--backup_dir=" + dir_.path() + "/backups"});
    ASSERT_TRUE(server.ok()) << server.status();
    server_ = std::move(*server);
    std::ifstream in(port_file_);
    in >> metrics_port_;
    ASSERT_GT(metrics_port_, 0);
  }

  std::string Scrape() {
    HttpClient http(metrics_port_);
    HttpResponse r = http.Get("/metrics");
    EXPECT_EQ(r.status, 200) << r.Describe();
    EXPECT_EQ(r.Header("content-type"), "text/plain; version=0.0.4; charset=utf-8");
    return r.body;
  }

  TempDir dir_;
  std::string port_file_;
  std::unique_ptr<ServerProcess> server_;
  int metrics_port_ = 0;
};

TEST_F(ObservabilityTest, CountsEveryGrpcCallByMethodAndCode) {
  auto client = server_->NewClient();
  v1::GetPatientSummaryRequest summary;
  summary.set_parent("patients/p1");
  ASSERT_TRUE(client->GetPatientSummary(summary).ok());
  ASSERT_TRUE(client->GetPatientSummary(summary).ok());
  v1::GetResourceRequest get;
  get.set_name("patients/p1/goals/01HZZZZZZZZZZZZZZZZZZZZZZZ");
  EXPECT_THAT(client->GetGoal(get), StatusIs(absl::StatusCode::kNotFound));
  v1::CreateGoalRequest bad;
  bad.set_parent("patients/p1");  // no goal: INVALID_ARGUMENT
  EXPECT_THAT(client->CreateGoal(bad), StatusIs(absl::StatusCode::kInvalidArgument));
  // A method nobody serves must not become a label of its own.
  RawResult unknown = RawUnaryCall(server_->target(), "/x.Evil/Whatever", "", absl::Seconds(5));
  EXPECT_EQ(unknown.status.code(), absl::StatusCode::kUnimplemented);

  const std::string text = Scrape();
  ExpectValidExposition(text);
  auto samples = ParseSamples(text);
  EXPECT_EQ(samples[R"(wmty_grpc_requests_total{method="GetPatientSummary",code="OK"})"], 2) << text;
  EXPECT_EQ(samples[R"(wmty_grpc_requests_total{method="GetGoal",code="NOT_FOUND"})"], 1);
  EXPECT_EQ(samples[R"(wmty_grpc_requests_total{method="CreateGoal",code="INVALID_ARGUMENT"})"], 1);
  EXPECT_EQ(samples[R"(wmty_grpc_request_duration_seconds_count{method="GetPatientSummary"})"], 2);
  EXPECT_EQ(samples[R"(wmty_grpc_request_duration_seconds_bucket{method="GetPatientSummary",le="+Inf"})"], 2);
  EXPECT_THAT(text, ::testing::Not(HasSubstr("Evil")));
  EXPECT_THAT(text, ::testing::Not(HasSubstr("Whatever")));
  EXPECT_EQ(samples["wmty_grpc_inflight_rpcs"], 0);
  // The first summary was assembled from the store, the second (no write
  // between) answered from memory.
  EXPECT_EQ(samples["wmty_summary_cache_misses_total"], 1);
  EXPECT_EQ(samples["wmty_summary_cache_hits_total"], 1);
  EXPECT_GT(samples["wmty_summary_cache_bytes"], 0);
  // Nothing of a request's content: the patient id never appears.
  EXPECT_THAT(text, ::testing::Not(HasSubstr("p1")));
}

TEST_F(ObservabilityTest, CountsFhirInteractionsAndStoreGauges) {
  HttpClient http(server_->http_port());
  const std::string goal = R"({"resourceType":"Goal","lifecycleStatus":"active",)"
                           R"("description":{"text":"Dance at the wedding"},"subject":{"reference":"Patient/p9"},)"
                           R"("expressedBy":{"reference":"Patient/p9"}})";
  HttpResponse created = http.Post("/fhir/Goal", goal, {{"Content-Type", "application/fhir+json"}});
  ASSERT_EQ(created.status, 201) << created.Describe();
  const std::string id = created.Json()["id"].GetString();
  EXPECT_EQ(http.Get("/fhir/Goal/" + id).status, 200);
  EXPECT_EQ(http.Get("/fhir/Goal/" + id + "/_history/1").status, 200);
  EXPECT_EQ(http.Get("/fhir/Goal?patient=p9").status, 200);
  EXPECT_EQ(http.Get("/fhir/Goal/nope").status, 404);
  EXPECT_EQ(http.Get("/fhir/metadata").status, 200);
  EXPECT_EQ(http.Get("/fhir/Secret/1").status, 404);

  const std::string text = Scrape();
  ExpectValidExposition(text);
  auto samples = ParseSamples(text);
  EXPECT_EQ(samples[R"(wmty_http_requests_total{interaction="create",resource="Goal",code="201"})"], 1) << text;
  EXPECT_EQ(samples[R"(wmty_http_requests_total{interaction="read",resource="Goal",code="200"})"], 1);
  EXPECT_EQ(samples[R"(wmty_http_requests_total{interaction="read",resource="Goal",code="404"})"], 1);
  EXPECT_EQ(samples[R"(wmty_http_requests_total{interaction="vread",resource="Goal",code="200"})"], 1);
  EXPECT_EQ(samples[R"(wmty_http_requests_total{interaction="search",resource="Goal",code="200"})"], 1);
  EXPECT_EQ(samples[R"(wmty_http_requests_total{interaction="metadata",resource="",code="200"})"], 1);
  EXPECT_EQ(samples[R"(wmty_http_requests_total{interaction="read",resource="other",code="404"})"], 1);
  EXPECT_EQ(samples[R"(wmty_http_request_duration_seconds_count{interaction="read")"
                    R"(})"],
            3);
  EXPECT_THAT(text, ::testing::Not(HasSubstr("Secret")));
  EXPECT_THAT(text, ::testing::Not(HasSubstr(id)));

  EXPECT_GE(samples["wmty_wal_sync_duration_seconds_count"], 1) << "the create was a synced write";
  EXPECT_EQ(samples["wmty_store_healthy"], 1);
  EXPECT_EQ(samples["wmty_commit_queue_depth"], 0);
  EXPECT_GT(samples["wmty_data_dir_available_bytes"], 0);
  EXPECT_EQ(samples["wmty_http_inflight_requests"], 0);
  EXPECT_EQ(samples["wmty_http_shed_total"], 0);
  EXPECT_EQ(samples.count("wmty_rocksdb_block_cache_hits_total"), 1u);
  EXPECT_EQ(samples.count("wmty_rocksdb_block_cache_bytes"), 1u);
  EXPECT_EQ(samples.count("wmty_rocksdb_block_cache_pinned_bytes"), 1u);
  EXPECT_EQ(samples.count("wmty_rocksdb_compaction_pending"), 1u);
  EXPECT_EQ(samples["wmty_rocksdb_write_stall_seconds_total"], 0) << "a few writes do not stall";
  EXPECT_EQ(samples["wmty_rocksdb_writes_delayed"], 0);
  EXPECT_EQ(samples.count("wmty_rocksdb_l0_files"), 1u);
  EXPECT_EQ(samples.count(R"(wmty_build_info{version="0.1.0"})"), 1u);
}

// wmtyd's own /proc/<pid>/stat fields as proc(5) numbers them (n >= 3).
std::vector<std::string> StatFieldsOf(pid_t pid) {
  std::ifstream in("/proc/" + std::to_string(pid) + "/stat");
  std::string stat((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  std::vector<std::string> fields = absl::StrSplit(stat.substr(stat.rfind(')') + 2), ' ', absl::SkipEmpty());
  fields.insert(fields.begin(), 3, "");  // fields[n] is field n
  return fields;
}

double StatField(const std::vector<std::string>& fields, size_t n) {
  double v = -1;
  EXPECT_TRUE(n < fields.size() && absl::SimpleAtod(fields[n], &v)) << "proc(5) field " << n;
  return v;
}

// The soft "Max open files" limit of /proc/<pid>/limits.
double MaxOpenFilesOf(pid_t pid) {
  std::ifstream in("/proc/" + std::to_string(pid) + "/limits");
  std::string line;
  while (std::getline(in, line)) {
    if (!absl::StartsWith(line, "Max open files")) continue;
    std::vector<std::string> parts = absl::StrSplit(line.substr(14), ' ', absl::SkipEmpty());
    double v = -1;
    if (!parts.empty() && absl::SimpleAtod(parts[0], &v)) return v;
  }
  return -1;
}

// The standard process_* metrics every Prometheus client exports, checked
// against what the kernel says about the wmtyd process itself.
TEST_F(ObservabilityTest, StandardProcessMetricsDescribeTheServerProcess) {
  const pid_t pid = server_->pid();
  const double ticks = static_cast<double>(sysconf(_SC_CLK_TCK));
  const double page = static_cast<double>(sysconf(_SC_PAGESIZE));
  const std::vector<std::string> before = StatFieldsOf(pid);
  const std::string text = Scrape();
  ExpectValidExposition(text);
  for (const char* type : {"# TYPE process_cpu_seconds_total counter", "# TYPE process_resident_memory_bytes gauge",
                           "# TYPE process_virtual_memory_bytes gauge", "# TYPE process_open_fds gauge",
                           "# TYPE process_max_fds gauge", "# TYPE process_start_time_seconds gauge"}) {
    EXPECT_THAT(text, HasSubstr(type));
  }
  auto samples = ParseSamples(text);
  const std::vector<std::string> stat = StatFieldsOf(pid);  // read after the scrape

  // CPU: between what the kernel had counted before the scrape and after it.
  EXPECT_GE(samples["process_cpu_seconds_total"], (StatField(before, 14) + StatField(before, 15)) / ticks);
  EXPECT_LE(samples["process_cpu_seconds_total"], (StatField(stat, 14) + StatField(stat, 15)) / ticks);

  // Start time: boot time + starttime ticks, the same computation as ps(1).
  std::ifstream proc_stat("/proc/stat");
  std::string line;
  double boot = 0;
  while (std::getline(proc_stat, line)) {
    if (absl::StartsWith(line, "btime ")) {
      ASSERT_TRUE(absl::SimpleAtod(line.substr(6), &boot));
    }
  }
  EXPECT_EQ(samples["process_start_time_seconds"], std::floor(boot + StatField(stat, 22) / ticks));
  EXPECT_LE(samples["process_start_time_seconds"], static_cast<double>(absl::ToUnixSeconds(absl::Now())) + 1);

  // Memory: the same sources; RSS moves a little between two reads.
  const double rss_after = StatField(stat, 24) * page;
  EXPECT_GT(samples["process_resident_memory_bytes"], 1 << 20);
  EXPECT_GT(samples["process_resident_memory_bytes"], rss_after / 2);
  EXPECT_LT(samples["process_resident_memory_bytes"], rss_after * 2);
  EXPECT_GE(samples["process_virtual_memory_bytes"], samples["process_resident_memory_bytes"]);

  // Descriptors: RocksDB files, listeners and this scrape's connection are open.
  size_t fds_after = 0;
  for ([[maybe_unused]] const auto& fd : std::filesystem::directory_iterator("/proc/" + std::to_string(pid) + "/fd")) {
    ++fds_after;
  }
  EXPECT_GT(samples["process_open_fds"], 5);
  EXPECT_NEAR(samples["process_open_fds"], static_cast<double>(fds_after), 3);
  EXPECT_EQ(samples["process_max_fds"], MaxOpenFilesOf(pid));

  // A counter: later scrapes never go back.
  EXPECT_GE(ParseSamples(Scrape())["process_cpu_seconds_total"], samples["process_cpu_seconds_total"]);
}

// top -H, perf and /proc show which of wmtyd's threads does what.
TEST_F(ObservabilityTest, ThreadsAreNamedForOperatorsAndProfiles) {
  HttpClient http(server_->http_port());
  const std::string goal = R"({"resourceType":"Goal","lifecycleStatus":"active",)"
                           R"("description":{"text":"Read to my grandson"},"subject":{"reference":"Patient/p3"},)"
                           R"("expressedBy":{"reference":"Patient/p3"}})";
  // A FHIR write is answered on the answer pool, which names its threads on first use.
  ASSERT_EQ(http.Post("/fhir/Goal", goal, {{"Content-Type", "application/fhir+json"}}).status, 201);
  std::multiset<std::string> names;
  const std::string tasks = "/proc/" + std::to_string(server_->pid()) + "/task";
  for (const auto& task : std::filesystem::directory_iterator(tasks)) {
    std::ifstream comm(task.path() / "comm");
    std::string name;
    std::getline(comm, name);
    names.insert(name);
  }
  const std::string all = absl::StrJoin(names, ", ");
  EXPECT_EQ(names.count("wmty-commit"), 1u) << all;
  EXPECT_EQ(names.count("wmty-complete"), 1u) << all;
  EXPECT_EQ(names.count("wmty-http"), 2u) << all;
  EXPECT_EQ(names.count("wmty-metrics"), 1u) << all;
  EXPECT_EQ(names.count("wmty-backup"), 1u) << all;
  EXPECT_GE(names.count("wmty-answer"), 1u) << all;
}

TEST_F(ObservabilityTest, BackupAgeAppearsOnceABackupExists) {
  auto before = ParseSamples(Scrape());
  EXPECT_EQ(before.count("wmty_backup_last_success_timestamp_seconds"), 0u) << "no backup yet: no age to show";
  EXPECT_EQ(before["wmty_backup_failures_total"], 0);

  auto stub = wmty::admin::v1::AdminService::NewStub(
      grpc::CreateChannel(server_->target(), grpc::InsecureChannelCredentials()));
  grpc::ClientContext ctx;
  ctx.set_deadline(absl::ToChronoTime(absl::Now() + absl::Seconds(60)));
  wmty::admin::v1::Backup backup;
  const absl::Time asked = absl::Now();
  grpc::Status s = stub->CreateBackup(&ctx, wmty::admin::v1::CreateBackupRequest(), &backup);
  ASSERT_TRUE(s.ok()) << s.error_message();

  auto after = ParseSamples(Scrape());
  ASSERT_EQ(after.count("wmty_backup_last_success_timestamp_seconds"), 1u);
  EXPECT_NEAR(after["wmty_backup_last_success_timestamp_seconds"], absl::ToUnixSeconds(asked), 5);
  EXPECT_EQ(after[R"(wmty_grpc_requests_total{method="CreateBackup",code="OK"})"], 1);

  // A restart reads the age back from the backup directory.
  ASSERT_EQ(server_->Terminate(), 0);
  auto again =
      ServerProcess::Start(dir_.path() + "/db", {"--metrics_listen=127.0.0.1:0", "--metrics_port_file=" + port_file_,
                                                 "--backup_dir=" + dir_.path() + "/backups"});
  ASSERT_TRUE(again.ok()) << again.status();
  server_ = std::move(*again);
  std::ifstream in(port_file_);
  in >> metrics_port_;
  auto restarted = ParseSamples(Scrape());
  EXPECT_EQ(restarted["wmty_backup_last_success_timestamp_seconds"],
            after["wmty_backup_last_success_timestamp_seconds"]);
}

TEST_F(ObservabilityTest, MetricsListenerServesOnlyMetrics) {
  HttpClient http(metrics_port_);
  EXPECT_EQ(http.Get("/").status, 404);
  EXPECT_EQ(http.Get("/fhir/metadata").status, 404) << "no FHIR (or PHI) on the metrics port";
  EXPECT_EQ(http.Post("/metrics", "{}").status, 405);
  auto head = http.Send("HEAD", "/metrics");
  ASSERT_TRUE(head.ok());
  EXPECT_EQ(head->status, 200);
  EXPECT_TRUE(head->body.empty());
}

TEST_F(ObservabilityTest, ReadinessAndLivenessHealthServices) {
  auto ready = HealthCheck(server_->target(), "");
  ASSERT_TRUE(ready.ok()) << ready.status();
  EXPECT_EQ(*ready, 1);  // SERVING
  auto live = HealthCheck(server_->target(), "wmty.liveness");
  ASSERT_TRUE(live.ok()) << live.status();
  EXPECT_EQ(*live, 1);
  EXPECT_EQ(HealthCheck(server_->target(), "no.such.service").status().code(), absl::StatusCode::kNotFound);
}

TEST(HealthListener, PlaintextHealthOnlyPortMirrorsTheMainOne) {
  TempDir dir;
  const std::string port_file = dir.path() + "/health.port";
  auto server =
      ServerProcess::Start(dir.path() + "/db", {"--health_listen=127.0.0.1:0", "--health_port_file=" + port_file});
  ASSERT_TRUE(server.ok()) << server.status();
  int port = 0;
  std::ifstream(port_file) >> port;
  ASSERT_GT(port, 0);
  const std::string target = "127.0.0.1:" + std::to_string(port);
  auto ready = HealthCheck(target, "");
  ASSERT_TRUE(ready.ok()) << ready.status();
  EXPECT_EQ(*ready, 1);
  auto live = HealthCheck(target, "wmty.liveness");
  ASSERT_TRUE(live.ok()) << live.status();
  EXPECT_EQ(*live, 1);
  // Nothing else is served there: no API, no reflection.
  RawResult api = RawUnaryCall(target, "/wmty.v1.WhatMattersService/GetPatientSummary", "", absl::Seconds(5));
  EXPECT_EQ(api.status.code(), absl::StatusCode::kUnimplemented);
  EXPECT_FALSE(ReflectionListServices(target).ok());
  EXPECT_EQ((*server)->Terminate(), 0);
}

TEST(CorrelationIds, TraceparentIsHonouredAndAnythingElseGetsAFreshId) {
  EXPECT_EQ(server::CorrelationId("00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"),
            "4bf92f3577b34da6a3ce929d0e0e4736");
  for (const char* bad : {"", "garbage", "00-00000000000000000000000000000000-00f067aa0ba902b7-01",
                          "00-4BF92F3577B34DA6A3CE929D0E0E4736-00f067aa0ba902b7-01",
                          "ff-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
                          "00-4bf92f3577b34da6a3ce929d0e0e473-600f067aa0ba902b7-01"}) {
    const std::string id = server::CorrelationId(bad);
    EXPECT_EQ(id.size(), 32u) << bad;
    EXPECT_NE(id, "4bf92f3577b34da6a3ce929d0e0e4736") << bad;
    EXPECT_EQ(id.find_first_not_of("0123456789abcdef"), std::string::npos) << id;
  }
  EXPECT_NE(server::CorrelationId(""), server::CorrelationId(""));
}

TEST(AccessLog, OneLinePerRequestWithTheCorrelationIdAndNoContent) {
  TempDir dir;
  auto server = ServerProcess::Start(dir.path() + "/db", {"--access_log"});
  ASSERT_TRUE(server.ok()) << server.status();
  HttpClient http((*server)->http_port());
  const std::string goal =
      R"({"resourceType":"Goal","lifecycleStatus":"active",)"
      R"("description":{"text":"Secret-words-of-the-patient"},)"
      R"("subject":{"reference":"Patient/pat-logged"},"expressedBy":{"reference":"Patient/pat-logged"}})";
  HttpResponse created = http.Post("/fhir/Goal", goal,
                                   {{"Content-Type", "application/fhir+json"},
                                    {"traceparent", "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"}});
  ASSERT_EQ(created.status, 201) << created.Describe();
  EXPECT_EQ(created.Header("x-correlation-id"), "4bf92f3577b34da6a3ce929d0e0e4736");
  HttpResponse searched = http.Get("/fhir/Goal?patient=pat-logged");
  const std::string generated = searched.Header("x-correlation-id");
  EXPECT_EQ(generated.size(), 32u);

  grpc::ClientContext ctx;
  ctx.AddMetadata("traceparent", "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01");
  auto channel = grpc::CreateChannel((*server)->target(), grpc::InsecureChannelCredentials());
  auto stub = v1::WhatMattersService::NewStub(channel);
  v1::GetPatientSummaryRequest summary;
  summary.set_parent("patients/pat-logged");
  v1::PatientSummary out;
  ASSERT_TRUE(stub->GetPatientSummary(&ctx, summary, &out).ok());
  auto sent = ctx.GetServerInitialMetadata().find("x-correlation-id");
  ASSERT_NE(sent, ctx.GetServerInitialMetadata().end());
  EXPECT_EQ(std::string(sent->second.data(), sent->second.size()), "0af7651916cd43dd8448eb211c80319c");

  ASSERT_EQ((*server)->Terminate(), 0);
  const std::string log = ReadFile((*server)->log_path());
  EXPECT_THAT(log, HasSubstr(R"("request_id":"4bf92f3577b34da6a3ce929d0e0e4736")"));
  EXPECT_THAT(log, HasSubstr(R"("interaction":"create")"));
  EXPECT_THAT(log, HasSubstr(absl::StrCat(R"("request_id":")", generated, R"(")")));
  EXPECT_THAT(log, HasSubstr(R"("request_id":"0af7651916cd43dd8448eb211c80319c")"));
  EXPECT_THAT(log, HasSubstr(R"("method":"GetPatientSummary")"));
  // Neither the patient's words nor the patient id.
  EXPECT_THAT(log, ::testing::Not(HasSubstr("Secret-words")));
  EXPECT_THAT(log, ::testing::Not(HasSubstr("pat-logged")));
}

TEST(AccessLog, OffByDefault) {
  TempDir dir;
  auto server = ServerProcess::Start(dir.path() + "/db");
  ASSERT_TRUE(server.ok()) << server.status();
  HttpClient http((*server)->http_port());
  EXPECT_EQ(http.Get("/fhir/metadata").status, 200);
  ASSERT_EQ((*server)->Terminate(), 0);
  EXPECT_THAT(ReadFile((*server)->log_path()), ::testing::Not(HasSubstr("\"http request\"")));
}

TEST(HttpClassification, InteractionsAndResources) {
  using server::ClassifyHttp;
  auto is = [](absl::string_view method, absl::string_view target, const std::string& interaction,
               const std::string& resource) {
    server::HttpInteraction got = ClassifyHttp(method, target);
    EXPECT_EQ(got.interaction, interaction) << method << " " << target;
    EXPECT_EQ(got.resource, resource) << method << " " << target;
  };
  is("GET", "/fhir/Goal/abc", "read", "Goal");
  is("GET", "/fhir/Goal/abc/_history/2", "vread", "Goal");
  is("GET", "/fhir/Goal/abc/_history", "history", "Goal");
  is("GET", "/fhir/Goal/_history", "history", "Goal");
  is("GET", "/fhir/Observation?patient=p&code=x", "search", "Observation");
  is("POST", "/fhir/Observation/_search", "search", "Observation");
  is("POST", "/fhir/List", "create", "List");
  is("PUT", "/fhir/List/p1", "update", "List");
  is("DELETE", "/fhir/Goal/abc", "delete", "Goal");
  is("GET", "/fhir/Patient/p1/$everything", "everything", "Patient");
  is("GET", "/fhir/metadata", "metadata", "");
  is("GET", "/fhir/Made-Up/1", "read", "other");
  is("PATCH", "/fhir/Goal/1", "other", "Goal");
  is("GET", "/bedside/js/app.js", "static", "");
  is("GET", "/", "static", "");
  is("GET", "/etc/passwd", "other", "");
  EXPECT_EQ(server::GrpcMethodLabel("/wmty.v1.WhatMattersService/GetPatientSummary"), "GetPatientSummary");
  EXPECT_EQ(server::GrpcMethodLabel("/wmty.admin.v1.AdminService/CreateBackup"), "CreateBackup");
  EXPECT_EQ(server::GrpcMethodLabel("/grpc.health.v1.Health/Check"), "Check");
  EXPECT_EQ(server::GrpcMethodLabel("/wmty.v1.WhatMattersService/Nope"), "other");
  EXPECT_EQ(server::GrpcMethodLabel(""), "other");
}

}  // namespace
}  // namespace wmty::testing
