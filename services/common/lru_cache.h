// LruCache: values by key, bounded by a total charge (in bytes, including the
// keys), the least recently used evicted first.
//
// Values are immutable and shared: what Get returns stays valid after the
// entry is replaced or evicted. A value charged more than a quarter of the
// capacity is not kept (and the key's older value goes), so one large value
// cannot empty the cache. A capacity of 0 keeps nothing.
//
// Thread safety: all methods are safe to call concurrently. One mutex, held
// for a hash lookup and a list splice; the values are built and used outside it.
#ifndef WMTY_COMMON_LRU_CACHE_H_
#define WMTY_COMMON_LRU_CACHE_H_

#include <cstddef>
#include <list>
#include <memory>
#include <string>
#include <utility>

#include "absl/base/thread_annotations.h"
#include "absl/container/flat_hash_map.h"
#include "absl/strings/string_view.h"
#include "absl/synchronization/mutex.h"

namespace wmty::common {

template <class V>
class LruCache {
 public:
  explicit LruCache(size_t max_charge) : max_charge_(max_charge) {}
  LruCache(const LruCache&) = delete;
  LruCache& operator=(const LruCache&) = delete;

  // The value under `key` (now the most recently used), or null.
  std::shared_ptr<const V> Get(absl::string_view key) {
    absl::MutexLock lock(&mu_);
    auto it = index_.find(key);
    if (it == index_.end()) return nullptr;
    lru_.splice(lru_.begin(), lru_, it->second);
    return it->second->value;
  }

  // Keeps `value` under `key`, replacing what was there; `charge` is its size
  // in bytes (the key's is added).
  void Put(std::string key, std::shared_ptr<const V> value, size_t charge) {
    if (value == nullptr) return;
    charge += key.size();
    absl::MutexLock lock(&mu_);
    if (auto it = index_.find(key); it != index_.end()) Remove(it);
    if (charge > max_charge_ / 4) return;  // what the key held is replaced by nothing
    charge_ += charge;
    lru_.push_front(Entry{key, std::move(value), charge});
    index_.emplace(std::move(key), lru_.begin());
    while (charge_ > max_charge_ && !lru_.empty()) Remove(index_.find(lru_.back().key));
  }

  // Total charge kept now.
  size_t charge() const {
    absl::MutexLock lock(&mu_);
    return charge_;
  }

 private:
  struct Entry {
    std::string key;
    std::shared_ptr<const V> value;
    size_t charge;
  };
  using Lru = std::list<Entry>;
  using Index = absl::flat_hash_map<std::string, typename Lru::iterator>;

  void Remove(typename Index::iterator it) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
    charge_ -= it->second->charge;
    lru_.erase(it->second);
    index_.erase(it);
  }

  const size_t max_charge_;
  mutable absl::Mutex mu_;
  Lru lru_ ABSL_GUARDED_BY(mu_);  // front: most recently used
  Index index_ ABSL_GUARDED_BY(mu_);
  size_t charge_ ABSL_GUARDED_BY(mu_) = 0;
};

}  // namespace wmty::common

#endif  // WMTY_COMMON_LRU_CACHE_H_
