// RenderCache: compact FHIR JSON of stored versions, most recently used kept.
//
// A stored version (kind, id, version) never changes, and neither does its
// FHIR rendering (mapping.h ToFhir depends on the Record alone), so reads and
// searches reuse the rendered text instead of mapping again: the mapping
// (which re-checks kept FHIR elements against the model) is the dominant cost
// of a FHIR read. Bounded by bytes; evicts least recently used.
//
// Thread safety: all methods are safe to call concurrently.
#ifndef WMTY_FHIR_RENDER_CACHE_H_
#define WMTY_FHIR_RENDER_CACHE_H_

#include <memory>
#include <string>

#include "common/lru_cache.h"
#include "wmty/storage/record.pb.h"

namespace wmty::fhir {

class RenderCache {
 public:
  explicit RenderCache(size_t max_bytes) : cache_(max_bytes) {}

  // The cached rendering of this version, or null.
  std::shared_ptr<const std::string> Get(const storage::Record& record);
  void Put(const storage::Record& record, std::shared_ptr<const std::string> json);

 private:
  static std::string KeyOf(const storage::Record& record);

  common::LruCache<std::string> cache_;
};

}  // namespace wmty::fhir

#endif  // WMTY_FHIR_RENDER_CACHE_H_
