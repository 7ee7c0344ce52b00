// Fuzz target: the page-token codec (services/domain/page_token.h), which
// both faces use: the gRPC page_token and the FHIR _page_token of search,
// history and AuditEvent next links (FHIR's cursor is the same
// PageCursor; what the FHIR face reads from a verified cursor is covered by
// fhir_service_tests).
//
// Input: one byte, then bytes.
//   even first byte: the bytes are a token from a client. Decode must refuse
//     it or return a cursor of the query it was checked against.
//   odd first byte: the bytes are a PageCursor (when they parse as one). Its
//     token must decode to the same cursor for its query and be refused for
//     another query; a token changed in one character, or cut short, must be
//     refused or decode to the very same cursor (a base64 character can differ
//     only in bits the decoder ignores): nobody can forge a position.
// The key is fixed, so the seed corpus can hold real tokens
// (tests/fuzz/corpus/page_token_fuzz, made with this key).
#include <cstddef>
#include <cstdint>
#include <string>

#include "absl/strings/string_view.h"
#include "domain/page_token.h"
#include "fuzz/fuzz_check.h"
#include "wmty/storage/record.pb.h"

namespace {

using wmty::domain::PageTokenCodec;
using wmty::storage::PageCursor;

// 32 bytes, like the key PatientRecords keeps in the store.
const PageTokenCodec& Codec() {
  static const PageTokenCodec* codec = new PageTokenCodec("wmty-fuzz-page-token-key-32bytes");
  return *codec;
}

constexpr absl::string_view kBase64Url = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";

void CheckTampered(const std::string& token, const PageCursor& original) {
  const std::string original_bytes = original.SerializeAsString();
  auto same_or_refused = [&](const std::string& changed) {
    auto decoded = Codec().Decode(changed, original.query_hash(), "page_token");
    return !decoded.ok() || decoded->SerializeAsString() == original_bytes;
  };
  // Every position, one other character each (which one varies with the position).
  for (size_t i = 0; i < token.size(); ++i) {
    std::string changed = token;
    const size_t at = kBase64Url.find(changed[i]);
    changed[i] = kBase64Url[(at == absl::string_view::npos ? 0 : at + 1 + i % 63) % kBase64Url.size()];
    if (changed == token) continue;
    WMTY_FUZZ_CHECK(same_or_refused(changed), "a token changed in one character decoded to another cursor");
  }
  for (size_t cut = 1; cut <= token.size() && cut <= 24; ++cut) {
    WMTY_FUZZ_CHECK(same_or_refused(token.substr(0, token.size() - cut)),
                    "a truncated token decoded to another cursor");
  }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size == 0) return 0;
  const absl::string_view rest(reinterpret_cast<const char*>(data + 1), size - 1);
  const std::string query_hash = wmty::domain::Sha256("ListGoals patients/p1");

  if (data[0] % 2 == 0) {
    auto cursor = Codec().Decode(rest, query_hash, "page_token");
    if (cursor.ok()) WMTY_FUZZ_CHECK(cursor->query_hash() == query_hash, "a token of another query was accepted");
    return 0;
  }

  PageCursor cursor;
  if (!cursor.ParseFromArray(rest.data(), static_cast<int>(rest.size()))) return 0;
  const std::string token = Codec().Encode(cursor);
  // Decode refuses tokens over 4 KiB; the services issue ones of ~100 bytes
  // (an id of at most 64 characters, or a patient/id pair, and a 32-byte hash).
  if (token.size() > 4096) return 0;
  auto decoded = Codec().Decode(token, cursor.query_hash(), "page_token");
  WMTY_FUZZ_CHECK(decoded.ok(), "a token we issued was refused");
  WMTY_FUZZ_CHECK(decoded->SerializeAsString() == cursor.SerializeAsString(), "a token decoded to another cursor");
  const std::string other_hash = wmty::domain::Sha256(cursor.query_hash());
  WMTY_FUZZ_CHECK(!Codec().Decode(token, other_hash, "page_token").ok(), "a token was accepted for another query");
  CheckTampered(token, cursor);
  return 0;
}
