#include "common/lru_cache.h"

#include <memory>
#include <string>
#include <thread>
#include <vector>

#include <gtest/gtest.h>

#include "absl/strings/str_cat.h"

namespace wmty::common {
namespace {

std::shared_ptr<const std::string> Value(size_t bytes, char c = 'x') {
  return std::make_shared<const std::string>(bytes, c);
}

TEST(LruCacheTest, PutReplacesAndRechargesTheEntry) {
  LruCache<std::string> cache(1000);
  cache.Put("k", Value(100, 'a'), 100);
  EXPECT_EQ(cache.charge(), 101u);
  cache.Put("k", Value(200, 'b'), 200);
  EXPECT_EQ(*cache.Get("k"), std::string(200, 'b'));
  EXPECT_EQ(cache.charge(), 201u);
  EXPECT_EQ(cache.Get("other"), nullptr);
}

TEST(LruCacheTest, EvictsTheLeastRecentlyUsedPastItsCapacity) {
  LruCache<std::string> cache(1000);
  for (const char* k : {"a", "b", "c"}) cache.Put(k, Value(240), 240);
  ASSERT_NE(cache.Get("a"), nullptr);  // a is now the most recent
  cache.Put("d", Value(240), 240);     // 4 x 241 = 964: all fit
  cache.Put("e", Value(240), 240);     // over: b goes
  EXPECT_EQ(cache.Get("b"), nullptr);
  EXPECT_NE(cache.Get("a"), nullptr);
  EXPECT_NE(cache.Get("c"), nullptr);
  EXPECT_NE(cache.Get("e"), nullptr);
  EXPECT_LE(cache.charge(), 1000u);
}

TEST(LruCacheTest, AValueOutlivesItsEviction) {
  LruCache<std::string> cache(1000);
  cache.Put("a", Value(200, 'a'), 200);
  std::shared_ptr<const std::string> held = cache.Get("a");
  for (int i = 0; i < 10; ++i) cache.Put(absl::StrCat("k", i), Value(200), 200);
  EXPECT_EQ(cache.Get("a"), nullptr);
  EXPECT_EQ(*held, std::string(200, 'a'));
}

TEST(LruCacheTest, KeepsNothingLargerThanAQuarterAndNothingAtZeroCapacity) {
  LruCache<std::string> cache(1000);
  cache.Put("big", Value(300), 300);
  EXPECT_EQ(cache.Get("big"), nullptr);
  // A key's value grown too large replaces the older one by nothing.
  cache.Put("k", Value(10), 10);
  ASSERT_NE(cache.Get("k"), nullptr);
  cache.Put("k", Value(300), 300);
  EXPECT_EQ(cache.Get("k"), nullptr);
  EXPECT_EQ(cache.charge(), 0u);
  LruCache<std::string> none(0);
  none.Put("a", Value(1), 1);
  EXPECT_EQ(none.Get("a"), nullptr);
  EXPECT_EQ(none.charge(), 0u);
}

TEST(LruCacheTest, ConcurrentUseStaysWithinCapacity) {
  LruCache<std::string> cache(10000);
  std::vector<std::thread> threads;
  for (int t = 0; t < 4; ++t) {
    threads.emplace_back([&cache, t] {
      for (int i = 0; i < 2000; ++i) {
        const std::string key = absl::StrCat((i * 7 + t) % 64);
        if (auto v = cache.Get(key); v != nullptr) {
          EXPECT_EQ(v->size(), 100u);
        }
        cache.Put(key, Value(100), 100);
      }
    });
  }
  for (auto& t : threads) t.join();
  EXPECT_LE(cache.charge(), 10000u);
}

}  // namespace
}  // namespace wmty::common
