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

#include <list>
#include <memory>
#include <string>

#include "absl/base/thread_annotations.h"
#include "absl/container/flat_hash_map.h"
#include "absl/synchronization/mutex.h"
#include "wmty/storage/record.pb.h"

namespace wmty::fhir {

class RenderCache {
 public:
  explicit RenderCache(size_t max_bytes) : max_bytes_(max_bytes) {}

  // The cached rendering of this version, or null.
  std::shared_ptr<const std::string> Get(const storage::Record& record);
  void Put(const storage::Record& record, std::shared_ptr<const std::string> json);

 private:
  using Lru = std::list<std::pair<std::string, std::shared_ptr<const std::string>>>;
  static std::string KeyOf(const storage::Record& record);

  const size_t max_bytes_;
  absl::Mutex mu_;
  Lru lru_ ABSL_GUARDED_BY(mu_);  // front: most recent
  absl::flat_hash_map<std::string, Lru::iterator> index_ ABSL_GUARDED_BY(mu_);
  size_t bytes_ ABSL_GUARDED_BY(mu_) = 0;
};

}  // namespace wmty::fhir

#endif  // WMTY_FHIR_RENDER_CACHE_H_
