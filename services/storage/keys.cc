// Key encoding of the store's column families (keys.h).
#include "storage/keys.h"

#include "absl/strings/str_cat.h"

namespace wmty::storage {

void AppendBigEndian64(std::string* out, uint64_t value) {
  for (int shift = 56; shift >= 0; shift -= 8) out->push_back(static_cast<char>((value >> shift) & 0xFF));
}

std::optional<uint64_t> DecodeBigEndian64(absl::string_view bytes) {
  if (bytes.size() != 8) return std::nullopt;
  uint64_t value = 0;
  for (unsigned char c : bytes) value = (value << 8) | c;
  return value;
}

std::string PatientKindPrefix(absl::string_view patient_id, Kind kind) {
  std::string key(patient_id);
  key.push_back('\0');
  key.push_back(static_cast<char>(kind));
  return key;
}

std::string CurrentKey(absl::string_view patient_id, Kind kind, absl::string_view id) {
  std::string key = PatientKindPrefix(patient_id, kind);
  key.append(id.data(), id.size());
  return key;
}

std::string VersionPrefix(absl::string_view patient_id, Kind kind, absl::string_view id) {
  std::string key = CurrentKey(patient_id, kind, id);
  key.push_back('\0');
  return key;
}

std::string VersionKey(absl::string_view patient_id, Kind kind, absl::string_view id, int64_t version) {
  std::string key = VersionPrefix(patient_id, kind, id);
  AppendBigEndian64(&key, static_cast<uint64_t>(version));
  return key;
}

std::string IdKey(Kind kind, absl::string_view id) {
  std::string key(1, static_cast<char>(kind));
  key.append(id.data(), id.size());
  return key;
}

std::string RequestKey(absl::string_view patient_id, absl::string_view request_id) {
  return absl::StrCat(patient_id, absl::string_view("\0", 1), request_id);
}

std::string ChangeKey(uint64_t sequence) {
  std::string key;
  AppendBigEndian64(&key, sequence);
  return key;
}

}  // namespace wmty::storage
