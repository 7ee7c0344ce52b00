#include "fhir/render_cache.h"

#include "absl/strings/str_cat.h"

namespace wmty::fhir {

std::string RenderCache::KeyOf(const storage::Record& record) {
  return absl::StrCat(static_cast<int>(record.kind()), "/", record.patient_id(), "/", record.id(), "/",
                      record.version());
}

std::shared_ptr<const std::string> RenderCache::Get(const storage::Record& record) { return cache_.Get(KeyOf(record)); }

void RenderCache::Put(const storage::Record& record, std::shared_ptr<const std::string> json) {
  if (json == nullptr) return;
  const size_t charge = json->size();
  cache_.Put(KeyOf(record), std::move(json), charge);
}

}  // namespace wmty::fhir
