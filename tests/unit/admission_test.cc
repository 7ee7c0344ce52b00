// Admission control (services/common/admission.h): the one in-flight limit
// and shed count behind the gRPC face's --max_inflight_rpcs and the HTTP
// server's --http_max_inflight.
#include "common/admission.h"

#include <atomic>
#include <optional>
#include <thread>
#include <vector>

#include <gtest/gtest.h>

namespace wmty::common {
namespace {

TEST(AdmissionTest, AdmitsUpToTheLimitThenRefusesAndCounts) {
  Admission admission(2, "test overloaded");
  std::optional<Admission::Slot> a = admission.TryAdmit("limit", "test");
  std::optional<Admission::Slot> b = admission.TryAdmit("limit", "test");
  ASSERT_TRUE(a.has_value());
  ASSERT_TRUE(b.has_value());
  EXPECT_EQ(admission.in_use(), 2);
  EXPECT_FALSE(admission.TryAdmit("limit", "test").has_value());
  EXPECT_FALSE(admission.TryAdmit("limit", "test").has_value());
  EXPECT_EQ(admission.shed_total(), 2);
  EXPECT_EQ(admission.in_use(), 2);  // a refusal holds no place
}

TEST(AdmissionTest, AReleasedPlaceIsFreeAgain) {
  Admission admission(1, "test overloaded");
  std::optional<Admission::Slot> a = admission.TryAdmit("limit", "test");
  ASSERT_TRUE(a.has_value());
  a->Release();
  a->Release();  // once only
  EXPECT_EQ(admission.in_use(), 0);
  std::optional<Admission::Slot> b = admission.TryAdmit("limit", "test");
  EXPECT_TRUE(b.has_value());
  b.reset();  // destroying gives the place back too
  EXPECT_EQ(admission.in_use(), 0);
  EXPECT_EQ(admission.shed_total(), 0);
}

TEST(AdmissionTest, AMovedSlotGivesItsPlaceBackOnce) {
  Admission admission(1, "test overloaded");
  std::optional<Admission::Slot> a = admission.TryAdmit("limit", "test");
  ASSERT_TRUE(a.has_value());
  {
    Admission::Slot moved = std::move(*a);
    a.reset();  // the moved-from slot gives nothing back
    EXPECT_EQ(admission.in_use(), 1);
  }
  EXPECT_EQ(admission.in_use(), 0);
}

TEST(AdmissionTest, NoLimitAdmitsEverything) {
  Admission admission(0, "test overloaded");
  std::vector<Admission::Slot> slots;
  for (int i = 0; i < 1000; ++i) {
    std::optional<Admission::Slot> s = admission.TryAdmit("limit", "test");
    ASSERT_TRUE(s.has_value());
    slots.push_back(std::move(*s));
  }
  EXPECT_EQ(admission.in_use(), 1000);
  EXPECT_EQ(admission.shed_total(), 0);
}

TEST(AdmissionTest, RefusalsDecidedElsewhereAreCounted) {
  Admission admission(5, "test overloaded");
  admission.NoteShed("limit", "max_connections");
  EXPECT_EQ(admission.shed_total(), 1);
  EXPECT_EQ(admission.in_use(), 0);
}

// Concurrent callers never hold more places than the limit, and every call
// is either admitted or counted as shed.
TEST(AdmissionTest, ConcurrentCallersNeverExceedTheLimit) {
  constexpr int kLimit = 3, kThreads = 8, kCalls = 2000;
  Admission admission(kLimit, "test overloaded");
  // in_use() also counts a refused caller's place for the instant before it
  // gives it back, so the holders are counted here.
  std::atomic<int> admitted{0}, holding{0}, over_limit{0};
  std::vector<std::thread> threads;
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&] {
      for (int i = 0; i < kCalls; ++i) {
        std::optional<Admission::Slot> s = admission.TryAdmit("limit", "test");
        if (!s.has_value()) continue;
        admitted.fetch_add(1);
        if (holding.fetch_add(1) + 1 > kLimit) over_limit.fetch_add(1);
        holding.fetch_sub(1);
      }
    });
  }
  for (auto& t : threads) t.join();
  EXPECT_EQ(over_limit.load(), 0);
  EXPECT_EQ(admitted.load() + admission.shed_total(), int64_t{kThreads} * kCalls);
  EXPECT_EQ(admission.in_use(), 0);
}

}  // namespace
}  // namespace wmty::common
