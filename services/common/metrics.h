// Metrics in the Prometheus text exposition format (version 0.0.4), for
// /metrics (wmtyd --metrics_listen). No Debian 12 package offers a C++
// Prometheus client, so this is the small subset wmtyd needs: counters and
// histograms with labels, updated on request paths, and gauges computed when
// scraped (collectors).
//
// Labels must have a bounded set of values (method names, status codes,
// interaction kinds): never ids or anything from a patient record.
//
// Thread safety: everything may be used from any thread. Counter and
// Histogram updates are lock-free; Family::Get takes a lock (cache the
// returned reference where a path is hot). References returned by Get stay
// valid for the Registry's lifetime.
#ifndef WMTY_COMMON_METRICS_H_
#define WMTY_COMMON_METRICS_H_

#include <atomic>
#include <cstdint>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/functional/any_invocable.h"
#include "absl/strings/string_view.h"
#include "absl/synchronization/mutex.h"
#include "absl/types/span.h"

namespace wmty::metrics {

class Counter {
 public:
  void Increment(uint64_t n = 1) { value_.fetch_add(n, std::memory_order_relaxed); }
  uint64_t value() const { return value_.load(std::memory_order_relaxed); }

 private:
  std::atomic<uint64_t> value_{0};
};

// Cumulative histogram over fixed upper bounds (plus +Inf), with sum and count.
class Histogram {
 public:
  explicit Histogram(std::vector<double> upper_bounds);
  void Observe(double value);

  struct Snapshot {
    std::vector<double> upper_bounds;
    std::vector<uint64_t> cumulative_counts;  // one per bound, then +Inf (== count)
    double sum = 0;
    uint64_t count = 0;
  };
  Snapshot Read() const;

 private:
  const std::vector<double> bounds_;
  std::unique_ptr<std::atomic<uint64_t>[]> counts_;  // per bucket, not cumulative; last is +Inf
  std::atomic<uint64_t> sum_micros_{0};              // sum in millionths (lock-free)
};

// Latency buckets in seconds, 100 µs to 10 s.
std::vector<double> LatencyBuckets();

// What a collector writes at scrape time.
class Writer {
 public:
  using Labels = std::vector<std::pair<std::string, std::string>>;
  void Gauge(absl::string_view name, absl::string_view help, double value, const Labels& labels = {});
  // A counter whose value lives elsewhere (e.g. RocksDB's statistics).
  void CounterValue(absl::string_view name, absl::string_view help, double value, const Labels& labels = {});
  void HistogramValue(absl::string_view name, absl::string_view help, const Histogram& histogram,
                      const Labels& labels = {});

 private:
  friend class Registry;
  void Header(absl::string_view name, absl::string_view help, absl::string_view type);
  std::string out_;
  std::vector<std::string> declared_;
};

template <typename T>
class Family {
 public:
  // The metric with these label values (one per label name), created on first use.
  T& Get(absl::Span<const std::string> label_values);

 private:
  friend class Registry;
  Family(std::string name, std::string help, std::vector<std::string> label_names, std::vector<double> bounds = {})
      : name_(std::move(name)),
        help_(std::move(help)),
        label_names_(std::move(label_names)),
        bounds_(std::move(bounds)) {}
  const std::string name_;
  const std::string help_;
  const std::vector<std::string> label_names_;
  const std::vector<double> bounds_;  // histograms only
  mutable absl::Mutex mu_;
  std::map<std::vector<std::string>, std::unique_ptr<T>> metrics_ ABSL_GUARDED_BY(mu_);
};

class Registry {
 public:
  Registry() = default;
  Registry(const Registry&) = delete;
  Registry& operator=(const Registry&) = delete;

  Family<Counter>& AddCounter(std::string name, std::string help, std::vector<std::string> label_names);
  Family<Histogram>& AddHistogram(std::string name, std::string help, std::vector<std::string> label_names,
                                  std::vector<double> upper_bounds = LatencyBuckets());
  // Called on every scrape, in the order added.
  void AddCollector(absl::AnyInvocable<void(Writer&)> collect);

  // Everything in the text exposition format.
  std::string Render();

 private:
  absl::Mutex mu_;
  std::vector<std::unique_ptr<Family<Counter>>> counters_ ABSL_GUARDED_BY(mu_);
  std::vector<std::unique_ptr<Family<Histogram>>> histograms_ ABSL_GUARDED_BY(mu_);
  std::vector<absl::AnyInvocable<void(Writer&)>> collectors_ ABSL_GUARDED_BY(mu_);
};

// A label value escaped for the text format (\\, \", \n).
std::string EscapeLabelValue(absl::string_view value);

}  // namespace wmty::metrics

#endif  // WMTY_COMMON_METRICS_H_
