#!/usr/bin/env bash
# One command: install what is missing, build, and run every test with ctest.
# Long soak/fuzz runs are not part of this; see docs (WMTY_CRASH_CYCLES etc.).
# WMTY_TEST_SANITIZERS=1 also runs scripts/sanitize.sh all and
# scripts/fuzz.sh --seconds=30 afterwards (about 35-40 more minutes from
# scratch on 2 cores: too close to CI's 45-minute budget to be the default;
# see docs/testing.md).
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
# shellcheck source=deps.sh
source "$root/scripts/deps.sh"
wmty_install_deps
wmty_install_conformance_deps
wmty_build "$root/build" Release
cd "$root/build"
ctest --output-on-failure --timeout 600 -j"$(nproc)" "$@"
if [ "${WMTY_TEST_SANITIZERS:-0}" = 1 ]; then
  "$root/scripts/sanitize.sh" all
  "$root/scripts/fuzz.sh" --seconds=30
fi
