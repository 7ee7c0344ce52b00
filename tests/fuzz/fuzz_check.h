// Helpers shared by the fuzz targets (tests/fuzz, docs/testing.md).
#ifndef WMTY_TESTS_FUZZ_FUZZ_CHECK_H_
#define WMTY_TESTS_FUZZ_FUZZ_CHECK_H_

#include <cstdio>
#include <cstdlib>

// An invariant the code under test promises whatever the input (a round trip
// that must parse again, a tampered token that must be refused). A violation
// aborts, so libFuzzer (or the corpus replay test) reports it as a crash and
// keeps the input. The message names the invariant, never the input.
#define WMTY_FUZZ_CHECK(condition, what)                                                       \
  do {                                                                                         \
    if (!(condition)) {                                                                        \
      std::fprintf(stderr, "fuzz invariant violated: %s (%s:%d)\n", what, __FILE__, __LINE__); \
      std::abort();                                                                            \
    }                                                                                          \
  } while (0)

#endif  // WMTY_TESTS_FUZZ_FUZZ_CHECK_H_
