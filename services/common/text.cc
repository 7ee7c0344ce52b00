#include "common/text.h"

#include <google/protobuf/descriptor.h>
#include <google/protobuf/stubs/common.h>
#include <google/protobuf/unknown_field_set.h>

#include <map>

#include "absl/strings/str_cat.h"

namespace wmty {

bool IsValidUtf8(absl::string_view s) {
  return google::protobuf::internal::IsStructurallyValidUTF8(s.data(), static_cast<int>(s.size()));
}

bool IsBlank(absl::string_view s) {
  size_t i = 0;
  while (i < s.size()) {
    unsigned char c = s[i];
    if (c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\v' || c == '\f') {
      ++i;
      continue;
    }
    // U+00A0 no-break space, U+3000 ideographic space, U+2000..U+200B, U+FEFF.
    if (c == 0xC2 && i + 1 < s.size() && static_cast<unsigned char>(s[i + 1]) == 0xA0) {
      i += 2;
      continue;
    }
    if (c == 0xE2 && i + 2 < s.size() && static_cast<unsigned char>(s[i + 1]) == 0x80 &&
        static_cast<unsigned char>(s[i + 2]) <= 0x8B) {
      i += 3;
      continue;
    }
    if (c == 0xE3 && i + 2 < s.size() && static_cast<unsigned char>(s[i + 1]) == 0x80 &&
        static_cast<unsigned char>(s[i + 2]) == 0x80) {
      i += 3;
      continue;
    }
    if (c == 0xEF && i + 2 < s.size() && static_cast<unsigned char>(s[i + 1]) == 0xBB &&
        static_cast<unsigned char>(s[i + 2]) == 0xBF) {
      i += 3;
      continue;
    }
    return false;
  }
  return true;
}

bool HasControlCharacters(absl::string_view s) {
  for (unsigned char c : s) {
    if ((c < 0x20 && c != '\t' && c != '\n' && c != '\r') || c == 0x7F) return true;
  }
  return false;
}

namespace {

using google::protobuf::FieldDescriptor;
using google::protobuf::UnknownField;
using google::protobuf::UnknownFieldSet;

std::optional<std::string> Search(const google::protobuf::Descriptor& type, absl::string_view bytes,
                                  const std::string& prefix, int depth) {
  if (depth > 32) return std::nullopt;
  UnknownFieldSet fields;
  if (!fields.ParseFromArray(bytes.data(), static_cast<int>(bytes.size()))) return std::nullopt;
  std::map<int, int> seen;  // field number -> occurrences so far (repeated index)
  for (int i = 0; i < fields.field_count(); ++i) {
    const UnknownField& f = fields.field(i);
    const FieldDescriptor* fd = type.FindFieldByNumber(f.number());
    int index = seen[f.number()]++;
    if (fd == nullptr || f.type() != UnknownField::TYPE_LENGTH_DELIMITED) continue;
    std::string path = prefix.empty() ? fd->name() : absl::StrCat(prefix, ".", fd->name());
    if (fd->is_repeated()) absl::StrAppend(&path, "[", index, "]");
    if (fd->type() == FieldDescriptor::TYPE_STRING) {
      if (!IsValidUtf8(f.length_delimited())) return path;
    } else if (fd->type() == FieldDescriptor::TYPE_MESSAGE) {
      if (fd->is_map()) continue;
      auto found = Search(*fd->message_type(), f.length_delimited(), path, depth + 1);
      if (found.has_value()) return found;
    }
  }
  return std::nullopt;
}

}  // namespace

std::optional<std::string> FindInvalidUtf8Field(const google::protobuf::Descriptor& type,
                                                absl::string_view wire_bytes) {
  return Search(type, wire_bytes, "", 0);
}

}  // namespace wmty
