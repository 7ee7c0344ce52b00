#!/usr/bin/env bash
# One command: install what is missing, check formatting, build, run clang-tidy on the changed
# files, and run every test with ctest.
# Long soak/fuzz runs are not part of this; see docs (WMTY_CRASH_CYCLES etc.).
# Then every libFuzzer target runs for a bounded time (scripts/fuzz.sh;
# WMTY_FUZZ_SECONDS, default 20; 0 skips it). WMTY_TEST_SANITIZERS=1 also
# runs scripts/sanitize.sh all (about 25 more minutes from scratch on 2
# cores, mostly the ASan build: too close to CI's 45-minute budget to be the
# default; see docs/testing.md).
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
# shellcheck source=deps.sh
source "$root/scripts/deps.sh"
wmty_install_deps
wmty_install_conformance_deps
# Seconds, before the build: a formatting diff fails here (fix: scripts/check_format.sh --fix).
"$root/scripts/check_format.sh"
wmty_build "$root/build" Release
# clang-tidy (.clang-tidy) on the files changed against main, or against the previous commit on
# main: the whole tree takes 17-30 minutes on 2 idle cores (docs/testing.md). WMTY_TIDY=all checks
# every file.
if [ "${WMTY_TIDY:-changed}" = all ]; then
  "$root/scripts/tidy.sh" --all --build="$root/build"
else
  "$root/scripts/tidy.sh" --build="$root/build"
fi
cd "$root/build"
ctest --output-on-failure --timeout 600 -j"$(nproc)" "$@"
fuzz_seconds="${WMTY_FUZZ_SECONDS:-20}"
if [ "$fuzz_seconds" != 0 ]; then
  "$root/scripts/fuzz.sh" --seconds="$fuzz_seconds"
fi
if [ "${WMTY_TEST_SANITIZERS:-0}" = 1 ]; then
  "$root/scripts/sanitize.sh" all
fi
