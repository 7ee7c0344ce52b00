#!/usr/bin/env bash
# Runs clang-tidy (.clang-tidy: checks that find bugs) on this repository's C++ files and fails
# on any finding. scripts/test.sh runs it after the build, on the changed files.
#
#   scripts/tidy.sh                 files changed against the base (below), and their includers
#   scripts/tidy.sh --all           every C++ file of the build (35+ CPU-minutes; docs/testing.md)
#   scripts/tidy.sh --base=REF      files changed against REF (committed, staged or not)
#   scripts/tidy.sh FILE...         these files
#   --build=DIR                     build dir with compile_commands.json (default build/, built if missing)
#   --jobs=N                        clang-tidy processes (default: nproc)
#   --list                          print the files it would check, and stop
#
# The default base is the merge-base with main (origin/main, else main); on main itself (CI after a
# merge) it is the previous commit. A changed header brings in every .cc that includes it, directly
# or through other headers. Only files in the compile database are checked: generated code
# (build*/, *.pb.cc) never is, and neither are files no build compiles.
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$root"

mode=changed base="" build="$root/build" jobs="$(nproc)" list=0
files=()
for arg in "$@"; do
  case "$arg" in
    --all) mode=all ;;
    --base=*) base="${arg#--base=}" ;;
    --build=*) build="$(realpath "${arg#--build=}")" ;;
    --jobs=*) jobs="${arg#--jobs=}" ;;
    --list) list=1 ;;
    -h | --help) sed -n '2,16p' "${BASH_SOURCE[0]}"; exit 0 ;;
    -*) echo "tidy: unknown option $arg" >&2; exit 2 ;;
    *) mode=files; files+=("$(realpath --relative-to="$root" "$arg")") ;;
  esac
done

if ! command -v clang-tidy >/dev/null; then
  echo "tidy: clang-tidy not found (apt-get install clang-tidy)" >&2
  exit 2
fi
if [ ! -f "$build/compile_commands.json" ]; then
  # shellcheck source=deps.sh
  source "$root/scripts/deps.sh"
  wmty_build "$build" Release
fi

# The repository's C++ sources that the build compiles (relative paths).
compiled_sources() {
  sed -n 's|^ *"file": *"\(.*\)",\{0,1\}$|\1|p' "$build/compile_commands.json" |
    sed "s|^$root/||" | grep -v '^/' | grep -v '^build' | sort -u
}

default_base() {
  local main
  for main in origin/main main; do
    if git rev-parse -q --verify "$main^{commit}" >/dev/null; then
      local mb
      mb="$(git merge-base HEAD "$main")"
      if [ "$mb" != "$(git rev-parse HEAD)" ]; then
        echo "$mb"
        return
      fi
      break
    fi
  done
  # No parent (a shallow clone of one commit): empty, and every file is checked.
  git rev-parse -q --verify HEAD~1 || true
}

# Headers whose change can affect a .cc: the changed headers and, repeatedly, the headers that
# include one of them. Includes are written relative to services/, tests/ or the file's own dir,
# so matching on the path's last two components (or the bare name) finds every includer.
includers_of() {
  local -a headers=("$@") found=()
  local seen=" ${headers[*]} " h pattern f
  while [ ${#headers[@]} -gt 0 ]; do
    h="${headers[0]}"
    headers=("${headers[@]:1}")
    pattern="^#include \"([^\"]*/)?$(basename "$(dirname "$h")")/$(basename "$h")\"|^#include \"$(basename "$h")\""
    while IFS= read -r f; do
      case "$seen" in *" $f "*) continue ;; esac
      seen+="$f "
      found+=("$f")
      if [[ "$f" == *.h ]]; then headers+=("$f"); fi
    done < <(git grep -lE "$pattern" -- '*.cc' '*.h' || true)
  done
  printf '%s\n' "${found[@]}"
}

mapfile -t compiled < <(compiled_sources)
case "$mode" in
  all) targets=("${compiled[@]}") ;;
  files) targets=("${files[@]}") ;;
  changed)
    base="${base:-$(default_base)}"
    if [ -z "$base" ]; then
      echo "tidy: no base commit to compare with; checking every file"
      targets=("${compiled[@]}")
    else
      mapfile -t changed < <({ git diff --name-only "$base" -- '*.cc' '*.h'
                               git ls-files --others --exclude-standard -- '*.cc' '*.h'; } | sort -u)
      mapfile -t headers < <(printf '%s\n' "${changed[@]}" | grep '\.h$' || true)
      targets=("${changed[@]}")
      if [ ${#headers[@]} -gt 0 ]; then mapfile -t -O ${#targets[@]} targets < <(includers_of "${headers[@]}"); fi
      echo "tidy: files changed against $(git rev-parse --short "$base"): ${#changed[@]}"
    fi
    ;;
esac
# Keep what the build compiles (headers are checked through their .cc, see HeaderFilterRegex).
mapfile -t targets < <(comm -12 <(printf '%s\n' "${targets[@]}" | sort -u) <(printf '%s\n' "${compiled[@]}"))
if [ ${#targets[@]} -eq 0 ]; then
  echo "tidy: nothing to check"
  exit 0
fi
if [ "$list" = 1 ]; then
  printf '%s\n' "${targets[@]}"
  exit 0
fi
echo "tidy: clang-tidy on ${#targets[@]} files, $jobs at a time"

# One file's diagnostics together (not interleaved with another's); the per-file "N warnings
# generated" count is about system headers, whose warnings clang-tidy does not show.
tidy_one() {
  local out rc=0
  out="$(clang-tidy -p "$1" --quiet "$2" 2>&1)" || rc=$?
  printf '%s\n' "$out" | grep -vE '^[0-9]+ warnings? (and [0-9]+ errors? )?generated\.$' || true
  return "$rc"
}
export -f tidy_one
if printf '%s\n' "${targets[@]}" | xargs -P "$jobs" -I{} bash -c 'tidy_one "$0" "$1"' "$build" {}; then
  echo "tidy: no findings in ${#targets[@]} files"
else
  echo "tidy: findings above (fix them, or justify a NOLINT(check) on the line)" >&2
  exit 1
fi
