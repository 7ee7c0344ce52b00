#!/usr/bin/env bash
# Overload: what callers see, and how much memory wmtyd takes, when far more
# work arrives than it can do. Builds nothing: give it a build directory that
# has wmtyd and grpc_flood.
#
#   bench/overload.sh [--build_dir=build] [--seconds=20] [--http_connections=2000]
#                     [--grpc_concurrency=4000] [--out=FILE] [--quick]
#
# Runs twice on a fresh data dir each: wmtyd with its default limits
# (--max_inflight_rpcs=1024, --http_max_connections=512, --http_max_inflight=256,
# --max_queued_changes=10000), then with every limit off (0). Each run, for
# `seconds`, at the same time:
#   wrk with `http_connections` connections doing durable POST [base]/Goal
#     (bench/fhir_create.lua), and
#   grpc_flood keeping `grpc_concurrency` CreateGoal calls outstanding.
# wmtyd's peak RSS is VmHWM from /proc at the end of the run (before SIGTERM,
# which must then exit 0). Prints a markdown table; appends it to --out
# (default bench/results/overload-<date>.md; --quick writes nowhere unless
# --out is given).
# --quick: 3 s, 600 connections, 1500 calls: keeps the script from rotting.
# Exit: 0 ok; 1 a failure (server, tools, a SIGTERM that did not exit 0, or
# with the limits on: a gRPC call that ended other than OK / RESOURCE_EXHAUSTED,
# e.g. one that hung to its deadline); 2 usage. wrk cannot tell 503 from other
# non-2xx answers: the table shows its counts (overload_test checks the codes).
set -euo pipefail

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
build_dir="$root/build"
out=""
seconds=20
http_connections=2000
grpc_concurrency=4000
quick=0
for arg in "$@"; do
  case "$arg" in
    --build_dir=*) build_dir="${arg#*=}" ;;
    --out=*) out="${arg#*=}" ;;
    --seconds=*) seconds="${arg#*=}" ;;
    --http_connections=*) http_connections="${arg#*=}" ;;
    --grpc_concurrency=*) grpc_concurrency="${arg#*=}" ;;
    --quick) quick=1 ;;
    -h|--help) sed -n '2,25p' "$0"; exit 0 ;;
    *) echo "unknown argument: $arg (see --help)" >&2; exit 2 ;;
  esac
done
if [ "$quick" -eq 1 ]; then
  seconds=3
  http_connections=600
  grpc_concurrency=1500
fi
build_dir="$(cd "$build_dir" && pwd)"
die() { echo "overload: $*" >&2; exit 1; }

wmtyd="$build_dir/services/server/wmtyd"
flood="$build_dir/bench/grpc_flood"
for bin in "$wmtyd" "$flood"; do
  [ -x "$bin" ] || die "$bin not built (cmake --build $build_dir --target wmtyd grpc_flood)"
done
command -v wrk >/dev/null || die "wrk is not installed (scripts/deps.sh, or apt-get install wrk)"
# wrk needs a descriptor per connection.
[ "$(ulimit -n)" -gt $((http_connections + 100)) ] || ulimit -n $((http_connections + 200)) ||
  die "ulimit -n $(ulimit -n) is too low for $http_connections connections"

tmp="$(mktemp -d "${TMPDIR:-/tmp}/wmty-overload.XXXXXX")"
wmtyd_pid=""
cleanup() {
  if [ -n "$wmtyd_pid" ] && kill -0 "$wmtyd_pid" 2>/dev/null; then
    kill -TERM "$wmtyd_pid" 2>/dev/null || true
    wait "$wmtyd_pid" 2>/dev/null || true
  fi
  rm -rf "$tmp"
}
trap cleanup EXIT

wait_port_file() {
  local file="$1" _
  for _ in $(seq 1 300); do
    if [ -s "$file" ]; then cat "$file"; return 0; fi
    kill -0 "$wmtyd_pid" 2>/dev/null || die "wmtyd exited before serving: $(tail -5 "$tmp/wmtyd.log")"
    sleep 0.1
  done
  die "wmtyd did not write $file within 30 s"
}

rows=()
# run NAME FLAGS...: one run; appends a table row.
run() {
  local name="$1"
  shift
  rm -rf "$tmp/db" "$tmp"/*.port
  "$wmtyd" --data_dir="$tmp/db" --grpc_listen=127.0.0.1:0 --http_listen=127.0.0.1:0 --auth_disabled \
    --port_file="$tmp/grpc.port" --http_port_file="$tmp/http.port" --block_cache_mb=64 "$@" \
    >"$tmp/wmtyd-$name.log" 2>&1 &
  wmtyd_pid=$!
  local grpc_port http_port
  http_port="$(wait_port_file "$tmp/http.port")"
  grpc_port="$(wait_port_file "$tmp/grpc.port")"
  local rss_idle
  rss_idle=$(awk '/^VmRSS/ { print $2 }' "/proc/$wmtyd_pid/status")

  echo "run $name: wrk -c$http_connections and grpc_flood --concurrency=$grpc_concurrency for ${seconds}s" >&2
  wrk -t2 -c"$http_connections" -d"${seconds}s" --timeout 30s -s "$root/bench/fhir_create.lua" \
    "http://127.0.0.1:$http_port/fhir/Goal" >"$tmp/wrk-$name.txt" 2>&1 &
  local wrk_pid=$!
  local flood_rc=0
  "$flood" --target="127.0.0.1:$grpc_port" --concurrency="$grpc_concurrency" --channels=8 \
    --seconds="$seconds" >"$tmp/flood-$name.txt" 2>&1 || flood_rc=$?
  wait "$wrk_pid" || die "wrk failed: $(cat "$tmp/wrk-$name.txt")"

  local hwm
  hwm=$(awk '/^VmHWM/ { print $2 }' "/proc/$wmtyd_pid/status")
  kill -TERM "$wmtyd_pid"
  local rc=0
  wait "$wmtyd_pid" || rc=$?
  wmtyd_pid=""
  [ "$rc" -eq 0 ] || die "wmtyd ($name) exited $rc after SIGTERM: $(tail -5 "$tmp/wmtyd-$name.log")"

  local f="$tmp/wrk-$name.txt" requests non2xx errors
  requests=$(sed -nE 's/^ *([0-9]+) requests in .*/\1/p' "$f")
  non2xx=$(sed -nE 's/.*Non-2xx or 3xx responses: ([0-9]+).*/\1/p' "$f")
  errors=$(sed -nE 's/.*Socket errors: (.*)/\1/p' "$f")
  local grpc_ok grpc_refused grpc_other
  grpc_ok=$(sed -nE 's/^code=OK calls=([0-9]+).*/\1/p' "$tmp/flood-$name.txt")
  grpc_refused=$(sed -nE 's/^code=RESOURCE_EXHAUSTED calls=([0-9]+) .*p99_ms=([0-9.]+).*/\1 (p99 \2 ms)/p' "$tmp/flood-$name.txt")
  grpc_other=$(grep -vE '^code=(OK|RESOURCE_EXHAUSTED) ' "$tmp/flood-$name.txt" | tr '\n' ' ' || true)
  local ok_p99
  ok_p99=$(sed -nE 's/^code=OK .*p99_ms=([0-9.]+).*/\1/p' "$tmp/flood-$name.txt")
  if [ "$name" = limits ]; then
    [ "$flood_rc" -eq 0 ] || die "grpc_flood with limits: $(cat "$tmp/flood-$name.txt")"
    [ -z "$grpc_other" ] || die "gRPC calls ended other than OK / RESOURCE_EXHAUSTED: $grpc_other"
  fi
  rows+=("| $name | $(( rss_idle / 1024 )) MiB | **$(( hwm / 1024 )) MiB** | ${requests:-0} | ${non2xx:-0} | ${errors:-none} | ${grpc_ok:-0} (p99 ${ok_p99:-?} ms) | ${grpc_refused:-0} | ${grpc_other:-none} |")
  echo "${rows[-1]}" >&2
}

run limits
run unlimited --max_inflight_rpcs=0 --http_max_connections=0 --http_max_inflight=0 --max_queued_changes=0

table="$(
  echo "### Overload, $(date -u +%Y-%m-%d) ($(nproc) cores, ${seconds}s per run)"
  echo
  echo "wrk: $http_connections connections, durable POST Goal. grpc_flood: $grpc_concurrency CreateGoal calls outstanding over 8 connections. Both at once."
  echo
  echo "| limits | RSS idle | peak RSS (VmHWM) | HTTP answers | HTTP non-2xx (503) | HTTP socket errors | gRPC OK | gRPC RESOURCE_EXHAUSTED | gRPC other |"
  echo "|---|---|---|---|---|---|---|---|---|"
  printf '%s\n' "${rows[@]}"
)"
echo
echo "$table"
if [ "$quick" -eq 0 ] && [ -z "$out" ]; then out="$root/bench/results/overload-$(date -u +%Y-%m-%d).md"; fi
if [ -n "$out" ]; then
  { echo; echo "$table"; } >>"$out"
  echo "appended to $out" >&2
fi
