#include "common/metrics.h"

#include <algorithm>
#include <cmath>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"

namespace wmty::metrics {
namespace {

std::string FormatValue(double value) {
  if (std::isnan(value)) return "NaN";
  if (std::isinf(value)) return value > 0 ? "+Inf" : "-Inf";
  if (value == std::floor(value) && std::fabs(value) < 1e15) return absl::StrFormat("%.0f", value);
  return absl::StrFormat("%.9g", value);
}

std::string LabelText(const Writer::Labels& labels, absl::string_view extra_name = "",
                      absl::string_view extra_value = "") {
  if (labels.empty() && extra_name.empty()) return "";
  std::string out = "{";
  bool first = true;
  for (const auto& [name, value] : labels) {
    absl::StrAppend(&out, first ? "" : ",", name, "=\"", EscapeLabelValue(value), "\"");
    first = false;
  }
  if (!extra_name.empty()) absl::StrAppend(&out, first ? "" : ",", extra_name, "=\"", extra_value, "\"");
  out += "}";
  return out;
}

Writer::Labels Zip(const std::vector<std::string>& names, const std::vector<std::string>& values) {
  Writer::Labels labels;
  for (size_t i = 0; i < names.size() && i < values.size(); ++i) labels.emplace_back(names[i], values[i]);
  return labels;
}

}  // namespace

std::string EscapeLabelValue(absl::string_view value) {
  std::string out;
  out.reserve(value.size());
  for (char c : value) {
    if (c == '\\') {
      out += "\\\\";
    } else if (c == '"') {
      out += "\\\"";
    } else if (c == '\n') {
      out += "\\n";
    } else {
      out += c;
    }
  }
  return out;
}

Histogram::Histogram(std::vector<double> upper_bounds)
    : bounds_([&] {
        std::sort(upper_bounds.begin(), upper_bounds.end());
        return upper_bounds;
      }()),
      counts_(new std::atomic<uint64_t>[bounds_.size() + 1]) {
  for (size_t i = 0; i <= bounds_.size(); ++i) counts_[i].store(0, std::memory_order_relaxed);
}

void Histogram::Observe(double value) {
  const size_t bucket = std::lower_bound(bounds_.begin(), bounds_.end(), value) - bounds_.begin();
  counts_[bucket].fetch_add(1, std::memory_order_relaxed);
  if (value > 0) sum_micros_.fetch_add(static_cast<uint64_t>(std::llround(value * 1e6)), std::memory_order_relaxed);
}

Histogram::Snapshot Histogram::Read() const {
  Snapshot s;
  s.upper_bounds = bounds_;
  uint64_t running = 0;
  for (size_t i = 0; i <= bounds_.size(); ++i) {
    running += counts_[i].load(std::memory_order_relaxed);
    s.cumulative_counts.push_back(running);
  }
  s.count = running;
  s.sum = static_cast<double>(sum_micros_.load(std::memory_order_relaxed)) / 1e6;
  return s;
}

std::vector<double> LatencyBuckets() {
  return {0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10};
}

void Writer::Header(absl::string_view name, absl::string_view help, absl::string_view type) {
  // One HELP/TYPE per metric name, however many label sets follow.
  if (std::find(declared_.begin(), declared_.end(), name) != declared_.end()) return;
  declared_.emplace_back(name);
  absl::StrAppend(&out_, "# HELP ", name, " ", help, "\n# TYPE ", name, " ", type, "\n");
}

void Writer::Gauge(absl::string_view name, absl::string_view help, double value, const Labels& labels) {
  Header(name, help, "gauge");
  absl::StrAppend(&out_, name, LabelText(labels), " ", FormatValue(value), "\n");
}

void Writer::CounterValue(absl::string_view name, absl::string_view help, double value, const Labels& labels) {
  Header(name, help, "counter");
  absl::StrAppend(&out_, name, LabelText(labels), " ", FormatValue(value), "\n");
}

void Writer::HistogramValue(absl::string_view name, absl::string_view help, const Histogram& histogram,
                            const Labels& labels) {
  Header(name, help, "histogram");
  const Histogram::Snapshot s = histogram.Read();
  for (size_t i = 0; i < s.cumulative_counts.size(); ++i) {
    const std::string le = i < s.upper_bounds.size() ? FormatValue(s.upper_bounds[i]) : "+Inf";
    absl::StrAppend(&out_, name, "_bucket", LabelText(labels, "le", le), " ", s.cumulative_counts[i], "\n");
  }
  absl::StrAppend(&out_, name, "_sum", LabelText(labels), " ", FormatValue(s.sum), "\n");
  absl::StrAppend(&out_, name, "_count", LabelText(labels), " ", s.count, "\n");
}

template <typename T>
T& Family<T>::Get(absl::Span<const std::string> label_values) {
  std::vector<std::string> key(label_values.begin(), label_values.end());
  absl::MutexLock lock(&mu_);
  auto it = metrics_.find(key);
  if (it != metrics_.end()) return *it->second;
  std::unique_ptr<T> metric;
  if constexpr (std::is_same_v<T, Histogram>) {
    metric = std::make_unique<Histogram>(bounds_);
  } else {
    metric = std::make_unique<T>();
  }
  T& ref = *metric;
  metrics_.emplace(std::move(key), std::move(metric));
  return ref;
}

template class Family<Counter>;
template class Family<Histogram>;

Family<Counter>& Registry::AddCounter(std::string name, std::string help, std::vector<std::string> label_names) {
  absl::MutexLock lock(&mu_);
  counters_.push_back(
      std::unique_ptr<Family<Counter>>(new Family<Counter>(std::move(name), std::move(help), std::move(label_names))));
  return *counters_.back();
}

Family<Histogram>& Registry::AddHistogram(std::string name, std::string help, std::vector<std::string> label_names,
                                          std::vector<double> upper_bounds) {
  absl::MutexLock lock(&mu_);
  histograms_.push_back(std::unique_ptr<Family<Histogram>>(
      new Family<Histogram>(std::move(name), std::move(help), std::move(label_names), std::move(upper_bounds))));
  return *histograms_.back();
}

void Registry::AddCollector(absl::AnyInvocable<void(Writer&)> collect) {
  absl::MutexLock lock(&mu_);
  collectors_.push_back(std::move(collect));
}

std::string Registry::Render() {
  Writer writer;
  absl::MutexLock lock(&mu_);
  for (const auto& family : counters_) {
    absl::MutexLock family_lock(&family->mu_);
    // A family with no samples yet still declares itself, so dashboards and
    // alerts see the name from the first scrape.
    writer.Header(family->name_, family->help_, "counter");
    for (const auto& [values, counter] : family->metrics_) {
      writer.CounterValue(family->name_, family->help_, static_cast<double>(counter->value()),
                          Zip(family->label_names_, values));
    }
  }
  for (const auto& family : histograms_) {
    absl::MutexLock family_lock(&family->mu_);
    writer.Header(family->name_, family->help_, "histogram");
    for (const auto& [values, histogram] : family->metrics_) {
      writer.HistogramValue(family->name_, family->help_, *histogram, Zip(family->label_names_, values));
    }
  }
  for (auto& collect : collectors_) collect(writer);
  return std::move(writer.out_);
}

}  // namespace wmty::metrics
