// Structured logging: one JSON object per line on stderr.
//
// PHI rule: callers pass only identifiers, codes, counts and durations as
// fields, never free text from a request (patient words, names). Messages are
// fixed strings chosen by the code, not built from input.
//
// Thread safety: safe to call from any thread (lines are written atomically).
#ifndef WMTY_COMMON_LOG_H_
#define WMTY_COMMON_LOG_H_

#include <initializer_list>
#include <string>
#include <utility>

#include "absl/strings/string_view.h"

namespace wmty::log {

enum class Level { kDebug, kInfo, kWarning, kError };

using Field = std::pair<absl::string_view, std::string>;

// Lines below this level are dropped (default kInfo).
void SetMinLevel(Level level);

void Write(Level level, absl::string_view message, std::initializer_list<Field> fields = {});
inline void Info(absl::string_view m, std::initializer_list<Field> f = {}) { Write(Level::kInfo, m, f); }
inline void Warning(absl::string_view m, std::initializer_list<Field> f = {}) { Write(Level::kWarning, m, f); }
inline void Error(absl::string_view m, std::initializer_list<Field> f = {}) { Write(Level::kError, m, f); }

}  // namespace wmty::log

#endif  // WMTY_COMMON_LOG_H_
