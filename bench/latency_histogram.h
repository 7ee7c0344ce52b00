// LatencyHistogram: a small HdrHistogram-like recorder for the bench tools.
//
// Values (nanoseconds) go into log-linear buckets: 64 linear sub-buckets per
// power of two above 128 ns, so any recorded value is reported within 1/64
// (~1.6%) of what was measured, from 1 ns to hours, in a fixed 4096-slot
// array. Record() is lock-free (relaxed atomics) and may be called from any
// thread; percentiles are read once the recording threads are done.
#ifndef WMTY_BENCH_LATENCY_HISTOGRAM_H_
#define WMTY_BENCH_LATENCY_HISTOGRAM_H_

#include <atomic>
#include <bit>
#include <cstdint>

namespace wmty::bench {

class LatencyHistogram {
 public:
  static constexpr int kSubBuckets = 64;
  static constexpr int kSlots = 64 * kSubBuckets;

  void Record(int64_t nanos) {
    const uint64_t v = nanos < 0 ? 0 : static_cast<uint64_t>(nanos);
    counts_[Index(v)].fetch_add(1, std::memory_order_relaxed);
    count_.fetch_add(1, std::memory_order_relaxed);
    uint64_t seen = max_.load(std::memory_order_relaxed);
    while (v > seen && !max_.compare_exchange_weak(seen, v, std::memory_order_relaxed)) {
    }
  }

  void Merge(const LatencyHistogram& other) {
    for (int i = 0; i < kSlots; ++i) counts_[i].fetch_add(other.counts_[i].load(), std::memory_order_relaxed);
    count_.fetch_add(other.count_.load(), std::memory_order_relaxed);
    uint64_t seen = max_.load();
    const uint64_t m = other.max_.load();
    if (m > seen) max_.store(m);
  }

  uint64_t count() const { return count_.load(); }
  uint64_t max_nanos() const { return max_.load(); }

  // The value at quantile q (0..1): the upper edge of the bucket holding it,
  // capped at the largest value recorded. 0 when empty.
  uint64_t ValueAt(double q) const {
    const uint64_t n = count();
    if (n == 0) return 0;
    uint64_t rank = static_cast<uint64_t>(q * static_cast<double>(n));
    if (rank >= n) rank = n - 1;
    uint64_t seen = 0;
    for (int i = 0; i < kSlots; ++i) {
      seen += counts_[i].load(std::memory_order_relaxed);
      if (seen > rank) {
        const uint64_t upper = UpperEdge(i);
        return upper < max_nanos() ? upper : max_nanos();
      }
    }
    return max_nanos();
  }

 private:
  // Below 128: one slot per value. Above: slot = (shift + 1) * 64 + (v >> shift) - 64,
  // where shift = msb(v) - 6 keeps the top 7 bits of v.
  static int Index(uint64_t v) {
    if (v < 2 * kSubBuckets) return static_cast<int>(v);
    const int msb = 63 - std::countl_zero(v);
    const int shift = msb - 6;
    const int index = (shift + 1) * kSubBuckets + static_cast<int>(v >> shift) - kSubBuckets;
    return index < kSlots ? index : kSlots - 1;
  }
  static uint64_t UpperEdge(int index) {
    if (index < 2 * kSubBuckets) return static_cast<uint64_t>(index);
    const int shift = index / kSubBuckets - 1;
    const uint64_t lower = static_cast<uint64_t>(index - shift * kSubBuckets) << shift;
    return lower + ((uint64_t{1} << shift) - 1);
  }

  std::atomic<uint64_t> counts_[kSlots] = {};
  std::atomic<uint64_t> count_{0};
  std::atomic<uint64_t> max_{0};
};

}  // namespace wmty::bench

#endif  // WMTY_BENCH_LATENCY_HISTOGRAM_H_
