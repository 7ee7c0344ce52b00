#include "fhir/render_cache.h"

#include "absl/strings/str_cat.h"

namespace wmty::fhir {

std::string RenderCache::KeyOf(const storage::Record& record) {
  return absl::StrCat(static_cast<int>(record.kind()), "/", record.patient_id(), "/", record.id(), "/",
                      record.version());
}

std::shared_ptr<const std::string> RenderCache::Get(const storage::Record& record) {
  const std::string key = KeyOf(record);
  absl::MutexLock lock(&mu_);
  auto it = index_.find(key);
  if (it == index_.end()) return nullptr;
  lru_.splice(lru_.begin(), lru_, it->second);
  return it->second->second;
}

void RenderCache::Put(const storage::Record& record, std::shared_ptr<const std::string> json) {
  if (json == nullptr || json->size() > max_bytes_ / 4) return;
  std::string key = KeyOf(record);
  absl::MutexLock lock(&mu_);
  if (index_.contains(key)) return;
  bytes_ += json->size() + key.size();
  lru_.emplace_front(key, std::move(json));
  index_.emplace(std::move(key), lru_.begin());
  while (bytes_ > max_bytes_ && !lru_.empty()) {
    auto& last = lru_.back();
    bytes_ -= last.second->size() + last.first.size();
    index_.erase(last.first);
    lru_.pop_back();
  }
}

}  // namespace wmty::fhir
