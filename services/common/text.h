// Text checks shared by validation code.
#ifndef WMTY_COMMON_TEXT_H_
#define WMTY_COMMON_TEXT_H_

#include <optional>
#include <string>

#include "absl/strings/string_view.h"

namespace google::protobuf {
class Descriptor;
}

namespace wmty {

bool IsValidUtf8(absl::string_view s);
// True when `s` has no characters other than Unicode/ASCII white space.
bool IsBlank(absl::string_view s);
// True when `s` contains an ASCII control character other than tab, CR, LF.
bool HasControlCharacters(absl::string_view s);

// Protobuf refuses to parse a proto3 string field holding invalid UTF-8
// without saying which. Given bytes that failed to parse as `type`, returns
// the path of the first string field with invalid UTF-8 (e.g.
// "goal.notes[0].text"), or nullopt if that is not why it failed.
std::optional<std::string> FindInvalidUtf8Field(const google::protobuf::Descriptor& type, absl::string_view wire_bytes);

}  // namespace wmty

#endif  // WMTY_COMMON_TEXT_H_
