// Bundles the FHIR face answers with: a new Bundle's head (id, meta, type),
// its links, and a searchset serialized with already-rendered resources
// spliced in (no DOM copy). Internal to the FHIR face. Thread safety: pure
// functions.
#ifndef WMTY_FHIR_FACE_BUNDLE_H_
#define WMTY_FHIR_FACE_BUNDLE_H_

#include <memory>
#include <string>
#include <vector>

#include <rapidjson/document.h>

#include "absl/strings/string_view.h"

namespace wmty::fhir::face {

// One entry of a searchset Bundle whose resource is already rendered JSON.
struct RawEntry {
  std::string full_url;
  std::shared_ptr<const std::string> resource;
  const char* mode;  // search.mode: "match", "include", "outcome"
};

// `head` (a Bundle without entries) followed by `entries`, as JSON text.
std::string SerializeBundle(const rapidjson::Value& head, const std::vector<RawEntry>& entries, bool pretty);
// A new Bundle of `type` ("searchset", "history") in `d`.
void StartBundle(rapidjson::Document& d, absl::string_view type);
// Appends {relation, url} to the array `links`.
void AddLink(rapidjson::Value* links, absl::string_view relation, absl::string_view url,
             rapidjson::Document::AllocatorType& a);

}  // namespace wmty::fhir::face

#endif  // WMTY_FHIR_FACE_BUNDLE_H_
