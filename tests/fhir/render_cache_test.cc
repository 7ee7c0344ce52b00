#include "fhir/render_cache.h"

#include <gtest/gtest.h>

namespace wmty::fhir {
namespace {

storage::Record Version(const std::string& id, int64_t version) {
  storage::Record r;
  r.set_kind(storage::GOAL);
  r.set_patient_id("p1");
  r.set_id(id);
  r.set_version(version);
  return r;
}

std::shared_ptr<const std::string> Json(size_t bytes) { return std::make_shared<const std::string>(bytes, 'x'); }

TEST(RenderCacheTest, KeyedByVersion) {
  RenderCache cache(1 << 20);
  cache.Put(Version("a", 1), std::make_shared<const std::string>("v1"));
  EXPECT_EQ(*cache.Get(Version("a", 1)), "v1");
  EXPECT_EQ(cache.Get(Version("a", 2)), nullptr);
  EXPECT_EQ(cache.Get(Version("b", 1)), nullptr);
}

TEST(RenderCacheTest, EvictsLeastRecentlyUsedPastItsBudget) {
  RenderCache cache(4000);
  cache.Put(Version("a", 1), Json(900));
  cache.Put(Version("b", 1), Json(900));
  cache.Put(Version("c", 1), Json(900));
  ASSERT_NE(cache.Get(Version("a", 1)), nullptr);  // a is now the most recent
  cache.Put(Version("d", 1), Json(900));
  cache.Put(Version("e", 1), Json(900));  // over budget: b goes first
  EXPECT_EQ(cache.Get(Version("b", 1)), nullptr);
  EXPECT_NE(cache.Get(Version("a", 1)), nullptr);
  EXPECT_NE(cache.Get(Version("e", 1)), nullptr);
}

TEST(RenderCacheTest, DoesNotKeepEntriesTooLargeForIt) {
  RenderCache cache(4000);
  cache.Put(Version("big", 1), Json(2000));
  EXPECT_EQ(cache.Get(Version("big", 1)), nullptr);
}

}  // namespace
}  // namespace wmty::fhir
