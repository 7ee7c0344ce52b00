#!/usr/bin/env bash
# One command: install what is missing, build, and run every test with ctest.
# Long soak/fuzz runs are not part of this; see docs (WMTY_CRASH_CYCLES etc.).
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
# shellcheck source=deps.sh
source "$root/scripts/deps.sh"
wmty_install_deps
wmty_install_conformance_deps
wmty_build "$root/build" Release
cd "$root/build"
ctest --output-on-failure --timeout 600 -j"$(nproc)" "$@"
