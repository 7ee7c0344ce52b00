// Names the calling thread, as `top -H`, `perf` and /proc/<pid>/task/*/comm
// show it, so an operator or a profile can tell wmty's threads apart
// ("wmty-commit", "wmty-http", ...). Linux keeps at most 15 bytes; longer
// names are cut. Best effort: a failure changes nothing else.
#ifndef WMTY_COMMON_THREAD_NAME_H_
#define WMTY_COMMON_THREAD_NAME_H_

#include "absl/strings/string_view.h"

namespace wmty {

void NameThisThread(absl::string_view name);

}  // namespace wmty

#endif  // WMTY_COMMON_THREAD_NAME_H_
