// Key layout of the store (see docs/architecture.md, "Key layout").
//
//   current   <patient> 0x00 <kind:1> <id>                      -> Record (latest version)
//   versions  <patient> 0x00 <kind:1> <id> 0x00 <version:8 BE>  -> Record (every version)
//   ids       <kind:1> <id>                                     -> patient id
//   requests  <patient> 0x00 <request_id>                       -> RequestOutcome
//   changes   <sequence:8 BE>                                   -> Change
//   audit     <sequence:8 BE>                                   -> AuditRecord
//   state     <key> (a component's own, e.g. "push/...")       -> its value (Store::WriteState)
//   default   "meta/..."                                        -> server metadata, among it
//             "meta/change-log-trimmed-through"                 -> <sequence:8 BE> (retention)
//
// The change log holds the sequences after the trimmed-through sequence (0,
// or absent: none trimmed); trimming deletes a key range and moves that
// value in one atomic write.
//
// Patient ids and resource ids never contain 0x00 (validated above this
// layer), so every patient's records of one kind are one contiguous key range:
// listing them is a seek plus a scan of that patient's keys only.
#ifndef WMTY_STORAGE_KEYS_H_
#define WMTY_STORAGE_KEYS_H_

#include <cstdint>
#include <optional>
#include <string>

#include "absl/strings/string_view.h"
#include "wmty/storage/record.pb.h"

namespace wmty::storage {

std::string PatientKindPrefix(absl::string_view patient_id, Kind kind);
std::string CurrentKey(absl::string_view patient_id, Kind kind, absl::string_view id);
std::string VersionPrefix(absl::string_view patient_id, Kind kind, absl::string_view id);
std::string VersionKey(absl::string_view patient_id, Kind kind, absl::string_view id, int64_t version);
std::string IdKey(Kind kind, absl::string_view id);
std::string RequestKey(absl::string_view patient_id, absl::string_view request_id);
std::string ChangeKey(uint64_t sequence);
// The audit column family is keyed like the change log: big-endian sequence.
inline std::string AuditKey(uint64_t sequence) { return ChangeKey(sequence); }
// Where the last sequence removed from the change log is kept (meta).
inline constexpr absl::string_view kChangeLogTrimmedThroughKey = "meta/change-log-trimmed-through";

// Big-endian fixed-width integers keep numeric order equal to byte order.
void AppendBigEndian64(std::string* out, uint64_t value);
std::optional<uint64_t> DecodeBigEndian64(absl::string_view bytes);

}  // namespace wmty::storage

#endif  // WMTY_STORAGE_KEYS_H_
