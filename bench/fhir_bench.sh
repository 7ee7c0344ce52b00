#!/usr/bin/env bash
# FHIR face throughput (issue 3). Builds nothing: give it a build directory
# that has wmtyd, http_baseline_server and wmty_bench.
#
#   bench/fhir_bench.sh [--build_dir=build] [--out=FILE] [--seconds=10]
#                       [--connections=32] [--threads=2] [--quick]
#
# 1. Starts http_baseline_server (minimal Beast server, fixed 1.2 KB body, the
#    threading of services/http) and the real wmtyd (fresh data dir, loopback,
#    ports picked by the OS).
# 2. Loads through the real FHIR API: one patient with 20 goals, and 1000
#    goals of 50 other patients (20 each).
# 3. wrk, `connections` connections on `threads` threads, `seconds` each:
#      the baseline's fixed body; GET [base]/Goal/[id]; GET [base]/Goal?patient=X
#      (20 matches); durable POST [base]/Goal (bench/fhir_create.lua: every
#      request creates a goal).
# 4. Stops wmtyd and runs wmty_bench for raw RocksDB synced WriteBatch
#    throughput at the same concurrency (and gRPC CreateGoal beside it).
# Prints a markdown table with the ratios; appends it to --out (default
# bench/results/fhir-<date>.md; --quick writes nowhere unless --out is given).
# Targets (full runs only; exit 3 if one is missed): GET Goal/[id] >= 40% of
# the baseline's requests/s, Goal?patient=X >= 20%.
#
# --quick: 1 s per measurement and a smaller load, to keep the harness from
# rotting (ctest fhir_bench_smoke); its numbers mean nothing.
# Needs wrk and curl: installed through scripts/deps.sh when missing.
# Exit: 0 ok; 1 a failure (server, load, any non-2xx answer); 2 usage; 3 a
# target missed.
# run_wrk sets rps_*, p50_*, p99_* and requests_* through printf -v.
# shellcheck disable=SC2154
set -euo pipefail

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
build_dir="$root/build"
out=""
seconds=10
connections=32
threads=2
quick=0
for arg in "$@"; do
  case "$arg" in
    --build_dir=*) build_dir="${arg#*=}" ;;
    --out=*) out="${arg#*=}" ;;
    --seconds=*) seconds="${arg#*=}" ;;
    --connections=*) connections="${arg#*=}" ;;
    --threads=*) threads="${arg#*=}" ;;
    --quick) quick=1 ;;
    -h|--help) sed -n '2,28p' "$0"; exit 0 ;;
    *) echo "unknown argument: $arg (see --help)" >&2; exit 2 ;;
  esac
done
hot_goals=20
other_patients=50
if [ "$quick" -eq 1 ]; then
  seconds=1
  other_patients=5
fi
build_dir="$(cd "$build_dir" && pwd)"

die() { echo "fhir_bench: $*" >&2; exit 1; }

wmtyd="$build_dir/services/server/wmtyd"
baseline="$build_dir/bench/http_baseline_server"
wmty_bench="$build_dir/bench/wmty_bench"
for bin in "$wmtyd" "$baseline" "$wmty_bench"; do
  [ -x "$bin" ] || die "$bin not built (cmake --build $build_dir --target wmtyd http_baseline_server wmty_bench)"
done

if ! command -v wrk >/dev/null || ! command -v curl >/dev/null; then
  echo "fhir_bench: wrk or curl missing; installing through scripts/deps.sh"
  # shellcheck source=scripts/deps.sh disable=SC1091
  source "$root/scripts/deps.sh"
  wmty_install_deps
fi
command -v wrk >/dev/null || die "wrk is not installed (apt-get install wrk)"
command -v curl >/dev/null || die "curl is not installed (apt-get install curl)"

tmp="$(mktemp -d "${TMPDIR:-/tmp}/wmty-fhir-bench.XXXXXX")"
pids=()
cleanup() {
  local pid
  for pid in "${pids[@]}"; do
    if kill -0 "$pid" 2>/dev/null; then
      kill -TERM "$pid" 2>/dev/null || true
      wait "$pid" 2>/dev/null || true
    fi
  done
  rm -rf "$tmp"
}
trap cleanup EXIT

wait_port_file() {
  local file="$1" pid="$2" what="$3" i
  for i in $(seq 1 300); do
    if [ -s "$file" ]; then cat "$file"; return 0; fi
    kill -0 "$pid" 2>/dev/null || die "$what exited before serving (log: $(tail -5 "$tmp"/*.log 2>/dev/null))"
    sleep 0.1
  done
  die "$what did not write $file within 30 s"
}

"$baseline" --port=0 --port_file="$tmp/baseline.port" --threads=2 --body_bytes=1200 >"$tmp/baseline.log" 2>&1 &
pids+=($!)
baseline_port="$(wait_port_file "$tmp/baseline.port" "${pids[-1]}" http_baseline_server)"

"$wmtyd" --data_dir="$tmp/db" --grpc_listen=127.0.0.1:0 --http_listen=127.0.0.1:0 --auth_disabled \
  --http_port_file="$tmp/http.port" >"$tmp/wmtyd.log" 2>&1 &
wmtyd_pid=$!
pids+=("$wmtyd_pid")
http_port="$(wait_port_file "$tmp/http.port" "$wmtyd_pid" wmtyd)"
base="http://127.0.0.1:$http_port/fhir"

# shellcheck disable=SC2089,SC2090  # JSON, passed verbatim as a header value
provenance='{"resourceType":"Provenance","agent":[{"type":{"coding":[{"system":"http://terminology.hl7.org/CodeSystem/provenance-participant-type","code":"author"}]},"who":{"reference":"Practitioner/rn-bench"},"role":[{"text":"RN"}]}]}'
# shellcheck disable=SC2090
export base provenance

# POSTs one goal for patient $1 (number $2); prints the HTTP status and Location.
post_goal() {
  local body
  body="{\"resourceType\":\"Goal\",\"lifecycleStatus\":\"active\",\"achievementStatus\":{\"coding\":[{\"system\":\"http://terminology.hl7.org/CodeSystem/goal-achievement\",\"code\":\"in-progress\"}]},\"category\":[{\"coding\":[{\"system\":\"http://loinc.org\",\"code\":\"87528-6\",\"display\":\"Personal health goal\"}]}],\"priority\":{\"coding\":[{\"system\":\"http://terminology.hl7.org/CodeSystem/goal-priority\",\"code\":\"high-priority\"}]},\"description\":{\"text\":\"Walk to the end of the garden without resting, goal number $2\"},\"subject\":{\"reference\":\"Patient/$1\"},\"startDate\":\"2026-11-01\",\"target\":[{\"dueDate\":\"2027-03-01\"}],\"expressedBy\":{\"reference\":\"Patient/$1\"}}"
  curl -s -o /dev/null -w '%{http_code} %header{location}\n' -X POST "$base/Goal" \
    -H 'Content-Type: application/fhir+json' -H "X-Provenance: $provenance" --data-binary "$body"
}
export -f post_goal

echo "loading: $hot_goals goals of patient bench-hot, $((other_patients * 20)) goals of $other_patients other patients"
load_start=$(date +%s%N)
for i in $(seq 1 "$hot_goals"); do post_goal bench-hot "$i"; done >"$tmp/hot.txt"
for p in $(seq 0 $((other_patients - 1))); do
  for i in $(seq 1 20); do echo "bench-other-$p $i"; done
done | xargs -P 8 -n 2 bash -c 'post_goal "$0" "$1"' >"$tmp/others.txt"
load_secs=$(awk -v a="$load_start" -v b="$(date +%s%N)" 'BEGIN { printf "%.1f", (b - a) / 1e9 }')
loaded_ok=$(cat "$tmp/hot.txt" "$tmp/others.txt" | grep -c '^201 ' || true)
expected=$((hot_goals + other_patients * 20))
[ "$loaded_ok" -eq "$expected" ] ||
  die "load: $loaded_ok of $expected creates answered 201 (first answers: $(sort "$tmp/hot.txt" "$tmp/others.txt" | uniq -c | head -3))"
hot_location="$(head -1 "$tmp/hot.txt" | cut -d' ' -f2 | tr -d '\r')"
goal_id="$(echo "$hot_location" | sed -E 's#.*/Goal/([^/]+)/_history/.*#\1#')"
[ -n "$goal_id" ] || die "no Location on create"

# The reads answer what they should, and how big the answers are.
goal_bytes=$(curl -sf -o /dev/null -w '%{size_download}' "$base/Goal/$goal_id") || die "GET Goal/$goal_id failed"
search_body="$(curl -sf "$base/Goal?patient=bench-hot")" || die "GET Goal?patient=bench-hot failed"
search_matches=$(grep -o '"mode": *"match"' <<<"$search_body" | wc -l)
[ "$search_matches" -eq "$hot_goals" ] || die "Goal?patient=bench-hot matched $search_matches, expected $hot_goals"
search_bytes=${#search_body}
baseline_bytes=$(curl -sf -o /dev/null -w '%{size_download}' "http://127.0.0.1:$baseline_port/") || die "baseline GET failed"

# run_wrk NAME URL [LUA]: runs wrk; sets rps_NAME, p50_NAME, p99_NAME, requests_NAME.
run_wrk() {
  local name="$1" url="$2" lua="${3:-}" f="$tmp/wrk-$1.txt"
  local args=(-t"$threads" -c"$connections" -d"${seconds}s" --latency --timeout 10s)
  [ -n "$lua" ] && args+=(-s "$lua")
  echo "wrk $name: $url" >&2
  wrk "${args[@]}" "$url" >"$f" 2>&1 || die "wrk $name failed: $(cat "$f")"
  local non2xx errors requests
  non2xx=$(sed -nE 's/.*Non-2xx or 3xx responses: ([0-9]+).*/\1/p' "$f")
  errors=$(sed -nE 's/.*Socket errors: connect ([0-9]+), read ([0-9]+), write ([0-9]+), timeout ([0-9]+).*/\1 \2 \3 \4/p' "$f")
  requests=$(sed -nE 's/^ *([0-9]+) requests in .*/\1/p' "$f")
  [ -n "$requests" ] && [ "$requests" -gt 0 ] || die "wrk $name made no requests: $(cat "$f")"
  [ -z "$non2xx" ] || die "wrk $name: $non2xx answers were not 2xx/3xx: $(cat "$f")"
  if [ -n "$errors" ]; then
    local sum=0 e
    for e in $errors; do sum=$((sum + e)); done
    # A few read errors as wrk stops are noise; more than 1% is a failure.
    [ $((sum * 100)) -le "$requests" ] || die "wrk $name: socket errors ($errors) on $requests requests: $(cat "$f")"
  fi
  printf -v "rps_$name" '%s' "$(sed -nE 's/^Requests\/sec: *([0-9.]+).*/\1/p' "$f")"
  printf -v "p50_$name" '%s' "$(sed -nE 's/^ +50% +([0-9.]+[a-z]+).*/\1/p' "$f")"
  printf -v "p99_$name" '%s' "$(sed -nE 's/^ +99% +([0-9.]+[a-z]+).*/\1/p' "$f")"
  printf -v "requests_$name" '%s' "$requests"
  sed -n '1,12p' "$f" >&2
}

run_wrk baseline "http://127.0.0.1:$baseline_port/"
run_wrk read "$base/Goal/$goal_id"
run_wrk search "$base/Goal?patient=bench-hot"
run_wrk create "$base/Goal" "$root/bench/fhir_create.lua"

# Every create really landed: the 32 load patients hold what wrk counted.
created_total=0
for i in $(seq 0 31); do
  n=$(curl -sf "$base/Goal?patient=bench-load-$i&_summary=count" | sed -nE 's/.*"total": *([0-9]+).*/\1/p')
  created_total=$((created_total + ${n:-0}))
done
[ "$created_total" -ge "$requests_create" ] ||
  die "wrk counted $requests_create creates, the server holds $created_total"

kill -TERM "$wmtyd_pid"
wait "$wmtyd_pid" || die "wmtyd did not shut down cleanly: $(tail -5 "$tmp/wmtyd.log")"

echo "wmty_bench: raw RocksDB synced WriteBatch, $connections writers" >&2
"$wmty_bench" --records=3000 --clients="$connections" --seconds="$seconds" --summary_calls=200 \
  --data_dir="$tmp/wmty-bench" --fresh >"$tmp/wmty_bench.txt" 2>&1 || die "wmty_bench failed: $(tail -20 "$tmp/wmty_bench.txt")"
rps_raw=$(sed -nE 's/^\| raw RocksDB synced WriteBatch[^|]*\| ([0-9.]+)\/s.*/\1/p' "$tmp/wmty_bench.txt")
rps_grpc=$(sed -nE 's/^\| durable CreateGoal[^|]*\| ([0-9.]+)\/s.*/\1/p' "$tmp/wmty_bench.txt")
[ -n "$rps_raw" ] || die "no raw RocksDB number in wmty_bench output: $(cat "$tmp/wmty_bench.txt")"

pct() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.1f", (b > 0 ? 100 * a / b : 0) }'; }
read_pct=$(pct "$rps_read" "$rps_baseline")
search_pct=$(pct "$rps_search" "$rps_baseline")
create_pct=$(pct "$rps_create" "$rps_raw")
grpc_pct=$(pct "${rps_grpc:-0}" "$rps_raw")
ge() { awk -v a="$1" -v b="$2" 'BEGIN { exit !(a >= b) }'; }
meets() { if ge "$1" "$2"; then echo "yes (>= $2%)"; else echo "**NO** (< $2%)"; fi; }

rev="$(git -C "$root" rev-parse --short HEAD 2>/dev/null || echo unknown)"
if [ -n "$(git -C "$root" status --porcelain 2>/dev/null | head -1)" ]; then rev="$rev+local changes"; fi
built="$(date -u -r "$wmtyd" +%Y-%m-%dT%H:%M:%SZ)"
mode="full"
[ "$quick" -eq 1 ] && mode="quick smoke run: numbers mean nothing"
table="
## $(date -u +%Y-%m-%dT%H:%M:%SZ) ($mode)

wrk $connections connections, $threads threads, ${seconds} s each, loopback; $(nproc) cores; commit $rev; wmtyd built $built.
Database: $expected goals loaded through the FHIR API (one patient with $hot_goals, $other_patients with 20 each) in ${load_secs} s.

| measurement | requests/s | p50 | p99 | ratio | target |
|---|---:|---:|---:|---:|---|
| baseline: minimal Beast server, fixed ${baseline_bytes}-byte body | $rps_baseline | $p50_baseline | $p99_baseline | 100% | |
| GET /fhir/Goal/[id] (${goal_bytes} bytes) | $rps_read | $p50_read | $p99_read | ${read_pct}% of baseline | $(meets "$read_pct" 40) |
| GET /fhir/Goal?patient=X, $hot_goals matches (${search_bytes} bytes) | $rps_search | $p50_search | $p99_search | ${search_pct}% of baseline | $(meets "$search_pct" 20) |
| POST /fhir/Goal, durable create | $rps_create | $p50_create | $p99_create | ${create_pct}% of raw RocksDB | |
| raw RocksDB synced WriteBatch, $connections writers (wmty_bench) | $rps_raw | | | 100% | |
| gRPC CreateGoal, $connections clients (wmty_bench) | ${rps_grpc:-n/a} | | | ${grpc_pct}% of raw RocksDB | |
"
echo "$table"
if [ -z "$out" ] && [ "$quick" -eq 0 ]; then
  mkdir -p "$root/bench/results"
  out="$root/bench/results/fhir-$(date -u +%Y-%m-%d).md"
fi
if [ -n "$out" ]; then
  echo "$table" >>"$out"
  echo "appended to $out"
fi

if [ "$quick" -eq 0 ]; then
  if ! ge "$read_pct" 40 || ! ge "$search_pct" 20; then
    echo "fhir_bench: a target was missed" >&2
    exit 3
  fi
fi
