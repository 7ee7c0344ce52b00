// common/metrics.h: counters, histograms and collectors rendered in the
// Prometheus text format, concurrent updates, label escaping.
#include "common/metrics.h"

#include <thread>
#include <vector>

#include <gmock/gmock.h>
#include <gtest/gtest.h>

namespace wmty::metrics {
namespace {

using ::testing::HasSubstr;

TEST(Metrics, CountersAndHistogramsRenderInTheTextFormat) {
  Registry registry;
  auto& calls = registry.AddCounter("x_calls_total", "Calls.", {"method", "code"});
  auto& latency = registry.AddHistogram("x_seconds", "Latency.", {"method"}, {0.1, 1});
  calls.Get({"Get", "OK"}).Increment();
  calls.Get({"Get", "OK"}).Increment(2);
  calls.Get({"Put", "INTERNAL"}).Increment();
  latency.Get({"Get"}).Observe(0.05);
  latency.Get({"Get"}).Observe(0.1);  // on the bound: counted in le="0.1"
  latency.Get({"Get"}).Observe(3);
  registry.AddCollector([](Writer& w) { w.Gauge("x_depth", "Depth.", 7); });
  const std::string text = registry.Render();
  EXPECT_THAT(text, HasSubstr("# HELP x_calls_total Calls.\n# TYPE x_calls_total counter\n"));
  EXPECT_THAT(text, HasSubstr("x_calls_total{method=\"Get\",code=\"OK\"} 3\n"));
  EXPECT_THAT(text, HasSubstr("x_calls_total{method=\"Put\",code=\"INTERNAL\"} 1\n"));
  EXPECT_THAT(text, HasSubstr("# TYPE x_seconds histogram\n"));
  EXPECT_THAT(text, HasSubstr("x_seconds_bucket{method=\"Get\",le=\"0.1\"} 2\n"));
  EXPECT_THAT(text, HasSubstr("x_seconds_bucket{method=\"Get\",le=\"1\"} 2\n"));
  EXPECT_THAT(text, HasSubstr("x_seconds_bucket{method=\"Get\",le=\"+Inf\"} 3\n"));
  EXPECT_THAT(text, HasSubstr("x_seconds_sum{method=\"Get\"} 3.15\n"));
  EXPECT_THAT(text, HasSubstr("x_seconds_count{method=\"Get\"} 3\n"));
  EXPECT_THAT(text, HasSubstr("# TYPE x_depth gauge\nx_depth 7\n"));
  // One HELP/TYPE per name, however many label sets.
  EXPECT_EQ(text.find("# TYPE x_calls_total"), text.rfind("# TYPE x_calls_total"));
}

TEST(Metrics, LabelValuesAreEscaped) {
  EXPECT_EQ(EscapeLabelValue("a\"b\\c\nd"), "a\\\"b\\\\c\\nd");
  Registry registry;
  registry.AddCounter("y_total", "Y.", {"v"}).Get({"q\"uote"}).Increment();
  EXPECT_THAT(registry.Render(), HasSubstr("y_total{v=\"q\\\"uote\"} 1\n"));
}

TEST(Metrics, ConcurrentUpdatesAreAllCounted) {
  Registry registry;
  auto& family = registry.AddCounter("z_total", "Z.", {"t"});
  auto& histogram = registry.AddHistogram("z_seconds", "Z.", {});
  std::vector<std::thread> threads;
  for (int t = 0; t < 8; ++t) {
    threads.emplace_back([&] {
      for (int i = 0; i < 10000; ++i) {
        family.Get({"a"}).Increment();
        histogram.Get({}).Observe(0.001);
      }
    });
  }
  for (auto& t : threads) t.join();
  EXPECT_EQ(family.Get({"a"}).value(), 80000u);
  EXPECT_EQ(histogram.Get({}).Read().count, 80000u);
  EXPECT_NEAR(histogram.Get({}).Read().sum, 80.0, 1e-6);
}

}  // namespace
}  // namespace wmty::metrics
