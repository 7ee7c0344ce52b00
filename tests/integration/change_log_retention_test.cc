// Change-log retention on the real wmtyd (issue 19): with a small
// --change_log_retention_changes the retention thread trims the log, /metrics
// shows the log's extent and the trims, and the trimmed extent survives a
// restart (with retention then turned off: nothing more is trimmed).
#include <fstream>
#include <map>
#include <string>

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "absl/time/clock.h"
#include "fhir/http_client.h"
#include "integration/integration_util.h"
#include "support/test_support.h"
#include "wmty/v1/service.grpc.pb.h"

namespace wmty::testing {
namespace {

// Unlabelled samples of a Prometheus text page: name -> value.
std::map<std::string, double> Samples(const std::string& text) {
  std::map<std::string, double> samples;
  for (absl::string_view line : absl::StrSplit(text, '\n', absl::SkipEmpty())) {
    if (absl::StartsWith(line, "#")) continue;
    const size_t space = line.rfind(' ');
    double value = 0;
    if (space != absl::string_view::npos && absl::SimpleAtod(line.substr(space + 1), &value)) {
      samples[std::string(line.substr(0, space))] = value;
    }
  }
  return samples;
}

class ChangeLogRetentionServerTest : public ::testing::Test {
 protected:
  void Start(std::vector<std::string> flags) {
    const std::string port_file = dir_.path() + "/metrics.port";
    flags.push_back("--metrics_listen=127.0.0.1:0");
    flags.push_back("--metrics_port_file=" + port_file);
    auto server = ServerProcess::Start(dir_.path() + "/db", flags);
    ASSERT_TRUE(server.ok()) << server.status();
    server_ = std::move(*server);
    std::ifstream in(port_file);
    in >> metrics_port_;
    ASSERT_GT(metrics_port_, 0);
  }

  std::map<std::string, double> Scrape() {
    HttpClient http(metrics_port_);
    HttpResponse r = http.Get("/metrics");
    EXPECT_EQ(r.status, 200) << r.Describe();
    return Samples(r.body);
  }

  void CreateGoals(int n) {
    auto client = server_->NewClient();
    for (int i = 0; i < n; ++i) {
      v1::CreateGoalRequest req;
      req.set_parent("patients/retention-1");
      *req.mutable_goal() = ValidGoal(absl::StrCat("Goal ", i));
      ASSERT_TRUE(client->CreateGoal(req).ok());
    }
  }

  TempDir dir_;
  std::unique_ptr<ServerProcess> server_;
  int metrics_port_ = 0;
};

TEST_F(ChangeLogRetentionServerTest, SmallRetentionTrimsAndMetricsShowIt) {
  Start({"--change_log_retention_changes=5", "--change_log_trim_interval=20ms"});
  CreateGoals(12);
  // Waits for the outcome (the retention thread runs every 20 ms), not a time.
  std::map<std::string, double> samples;
  const absl::Time give_up = absl::Now() + absl::Seconds(60);
  do {
    samples = Scrape();
    if (samples["wmty_change_log_entries"] == 5) break;
    absl::SleepFor(absl::Milliseconds(20));
  } while (absl::Now() < give_up);
  const double head = samples["wmty_change_log_head_sequence"];
  EXPECT_GE(head, 12);
  EXPECT_EQ(samples["wmty_change_log_entries"], 5);
  EXPECT_EQ(samples["wmty_change_log_oldest_sequence"], head - 4);
  EXPECT_GE(samples["wmty_change_log_trims_total"], 1);
  EXPECT_EQ(samples["wmty_change_log_trim_failures_total"], 0);
  EXPECT_GT(samples["wmty_change_log_last_trim_timestamp_seconds"], 0);
  EXPECT_GT(samples["wmty_change_log_oldest_entry_timestamp_seconds"], 0);
  EXPECT_EQ(samples["wmty_change_log_held_by_floor_entries"], 0);

  // The trimmed extent is durable; with retention off nothing more goes.
  ASSERT_EQ(server_->Terminate(), 0);
  Start({"--change_log_retention_changes=0", "--change_log_retention_days=0"});
  samples = Scrape();
  EXPECT_EQ(samples["wmty_change_log_head_sequence"], head);
  EXPECT_EQ(samples["wmty_change_log_oldest_sequence"], head - 4);
  CreateGoals(3);
  samples = Scrape();
  EXPECT_EQ(samples["wmty_change_log_entries"], 8);
  EXPECT_EQ(samples["wmty_change_log_trims_total"], 0);
}

TEST_F(ChangeLogRetentionServerTest, NegativeLimitsAreRefusedAtStartup) {
  auto server = ServerProcess::Start(dir_.path() + "/db", {"--change_log_retention_changes=-1"});
  EXPECT_FALSE(server.ok());
}

}  // namespace
}  // namespace wmty::testing
