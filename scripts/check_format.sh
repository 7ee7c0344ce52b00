#!/usr/bin/env bash
# Checks that every tracked C++ file is formatted as .clang-format says, and prints the diff of
# each one that is not. scripts/test.sh runs it before the build; it takes a few seconds.
#
#   scripts/check_format.sh          check; exit 1 with the diffs when a file is not formatted
#   scripts/check_format.sh --fix    format those files in place (clang-format -i)
#   scripts/check_format.sh FILE...  check (or with --fix, format) only these files
#
# Only C++ (*.cc, *.h) is checked: the JavaScript of clients/bedside and tests/ has no formatter
# in this repository. Generated code lives in build*/ and is not tracked, so it is never checked.
# The formatter is Debian 12's clang-format 14; another version may format differently, so the
# script refuses to run with one.
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$root"

fix=0
files=()
for arg in "$@"; do
  case "$arg" in
    --fix) fix=1 ;;
    -h | --help) sed -n '2,12p' "${BASH_SOURCE[0]}"; exit 0 ;;
    *) files+=("$arg") ;;
  esac
done

clang_format="${CLANG_FORMAT:-clang-format}"
if ! command -v "$clang_format" >/dev/null; then
  echo "check_format: $clang_format not found (apt-get install clang-format)" >&2
  exit 2
fi
if ! "$clang_format" --version | grep -q 'version 14\.'; then
  echo "check_format: needs clang-format 14 (Debian 12), found: $("$clang_format" --version)" >&2
  exit 2
fi

if [ ${#files[@]} -eq 0 ]; then
  mapfile -t files < <(git ls-files -- '*.cc' '*.h')
fi

if [ "$fix" = 1 ]; then
  "$clang_format" -i -- "${files[@]}"
  exit 0
fi

# One clang-format process lists the files that differ (fast); each of those then gets a diff,
# which is what a developer needs to see (--dry-run names only the lines).
mapfile -t bad < <("$clang_format" --dry-run --Werror -- "${files[@]}" 2>&1 |
  sed -n 's/^\(.*\):[0-9]*:[0-9]*: error: code should be clang-formatted.*/\1/p' | sort -u)
for file in "${bad[@]}"; do
  "$clang_format" -- "$file" | diff -u --label "$file" --label "$file (clang-format)" "$file" - || true
done
if [ ${#bad[@]} -ne 0 ]; then
  echo "check_format: ${#bad[@]} of ${#files[@]} C++ files are not formatted; run scripts/check_format.sh --fix" >&2
  exit 1
fi
echo "check_format: ${#files[@]} C++ files formatted"
