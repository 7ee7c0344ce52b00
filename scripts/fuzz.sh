#!/usr/bin/env bash
# One command: build the libFuzzer targets of tests/fuzz (clang, ASan+UBSan)
# in build-fuzz, replay their committed corpus and regressions, then fuzz
# each target for N seconds. Fails if any target crashes, leaks, trips UBSan
# or times out, and prints the input that did it. See docs/testing.md.
#
#   scripts/fuzz.sh                          every target, 60 s each
#   scripts/fuzz.sh --seconds=30 page_token_fuzz fhir_search_fuzz
#
# Fuzzing runs on a copy of the corpus in a temporary directory: the
# committed corpus (tests/fuzz/corpus) never grows by itself. One target at a
# time, one process each (the machine is shared).
# Environment: WMTY_FUZZ_BUILD_DIR (default build-fuzz), TMPDIR.
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"

all_targets=(fhir_resource_fuzz fhir_search_fuzz page_token_fuzz grpc_request_fuzz)
seconds=60
targets=()
usage() { sed -n '2,13p' "${BASH_SOURCE[0]}" | sed 's/^# \{0,1\}//'; }
for arg in "$@"; do
  case "$arg" in
    --seconds=*) seconds="${arg#--seconds=}" ;;
    -h|--help) usage; exit 0 ;;
    -*) echo "unknown option: $arg" >&2; usage >&2; exit 2 ;;
    *) targets+=("$arg") ;;
  esac
done
if ! [[ "$seconds" =~ ^[0-9]+$ ]] || [ "$seconds" -lt 1 ]; then
  echo "--seconds must be a positive number of seconds" >&2
  exit 2
fi
[ ${#targets[@]} -gt 0 ] || targets=("${all_targets[@]}")
for t in "${targets[@]}"; do
  [[ " ${all_targets[*]} " == *" $t "* ]] || { echo "unknown target: $t (have: ${all_targets[*]})" >&2; exit 2; }
done

# Largest input each target is given: a bit above the largest real one.
max_len_of() {
  case "$1" in
    fhir_resource_fuzz) echo 16384 ;;  # FHIR bodies (the seeds are 0.2-2 KB)
    fhir_search_fuzz) echo 2048 ;;     # query strings
    page_token_fuzz) echo 1024 ;;      # tokens are ~100 characters
    grpc_request_fuzz) echo 4096 ;;    # serialized requests
  esac
}
dict_of() {
  case "$1" in
    fhir_resource_fuzz) echo "$root/tests/fuzz/dict/fhir_resource.dict" ;;
    fhir_search_fuzz) echo "$root/tests/fuzz/dict/fhir_search.dict" ;;
    *) echo "" ;;
  esac
}

# shellcheck source=deps.sh
source "$root/scripts/deps.sh"
wmty_install_deps  # includes clang and libclang-rt-14-dev (libFuzzer)
wmty_install_app_deps  # the bedside app's fhirclient, embedded by the build

build="${WMTY_FUZZ_BUILD_DIR:-$root/build-fuzz}"
if [ ! -f "$build/build.ninja" ]; then
  cmake -S "$root" -B "$build" -G Ninja -DCMAKE_BUILD_TYPE=Release -DCMAKE_CXX_COMPILER=clang++ \
    -DWMTY_FUZZ=ON -DWMTY_BUILD_TESTS=OFF -DWMTY_BUILD_BENCH=OFF
fi
cmake --build "$build" -j"$(nproc)" --target "${targets[@]}"

# The committed inputs first: a crash found earlier must stay fixed.
replay_regex="$(printf '|fuzz_replay\\.%s$' "${targets[@]}")"
(cd "$build" && ctest --output-on-failure -R "${replay_regex:1}")

work="$(mktemp -d "${TMPDIR:-/tmp}/wmty-fuzz.XXXXXX")"
failed=()
export ASAN_OPTIONS="${ASAN_OPTIONS:-detect_leaks=1}"
export UBSAN_OPTIONS="${UBSAN_OPTIONS:-print_stacktrace=1}"
for t in "${targets[@]}"; do
  dir="$work/$t"
  mkdir -p "$dir/corpus" "$dir/artifacts"
  cp "$root/tests/fuzz/corpus/$t/"* "$dir/corpus/"
  if compgen -G "$root/tests/fuzz/regressions/$t/*" >/dev/null; then
    find "$root/tests/fuzz/regressions/$t" -maxdepth 1 -type f ! -name 'README*' -exec cp {} "$dir/corpus/" \;
  fi
  args=(-max_total_time="$seconds" -max_len="$(max_len_of "$t")" -timeout=10 -rss_limit_mb=2048
        -print_final_stats=1 -artifact_prefix="$dir/artifacts/")
  dict="$(dict_of "$t")"
  [ -z "$dict" ] || args+=(-dict="$dict")
  echo "== $t: fuzzing for ${seconds}s (log: $dir/log)"
  if "$build/tests/fuzz/$t" "${args[@]}" "$dir/corpus" >"$dir/log" 2>&1; then
    grep -E '^(Done|stat::number_of_executed_units|stat::new_units_added)' "$dir/log" | sed 's/^/   /' || true
    echo "   corpus: $(ls "$root/tests/fuzz/corpus/$t" | wc -l) seeds -> $(ls "$dir/corpus" | wc -l) inputs (the committed corpus is unchanged)"
  else
    failed+=("$t")
    echo "!! $t FAILED. The end of its log:"
    tail -n 60 "$dir/log" | sed 's/^/   /'
    for crash in "$dir/artifacts/"*; do
      [ -e "$crash" ] || continue
      echo "   input: $crash ($(stat -c %s "$crash") bytes)"
      echo "   reproduce: $build/tests/fuzz/$t $crash"
      echo "   after the fix, keep it: cp $crash $root/tests/fuzz/regressions/$t/<what-it-broke>"
    done
  fi
done

if [ ${#failed[@]} -gt 0 ]; then
  echo "fuzzing failed: ${failed[*]} (inputs and logs kept in $work)"
  exit 1
fi
rm -rf "$work"
echo "fuzzing passed: ${targets[*]} (${seconds}s each)"
