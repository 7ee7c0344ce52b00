#!/usr/bin/env bash
# Startup time with a large database: how long from starting wmtyd until it
# answers its first request (GetPatientSummary of a 50-record patient).
#
#   bench/startup.sh [--build_dir=build] [--records=10000000]
#                    [--data_dir=/tmp/wmty-startup-db] [--runs=3] [--cold] [--out=FILE]
#
# Loads the database once with `wmty_bench --load_only` (reused by later runs:
# the load of 10M records takes a few minutes and ~4 GB of disk), then starts
# wmtyd on it --runs times, each time polling with wmtyctl until the first
# summary comes back, and stops it with SIGTERM (timing the clean shutdown too).
# The first run after the load follows a clean close; RocksDB's own recovery
# work on open is replaying the WAL, so a run after `kill -9` is also measured.
# The page cache is warm, unless --cold: then the kernel's page cache is
# dropped before each start (needs root), as after a node reboot.
set -euo pipefail

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
build_dir="$root/build"
records=10000000
data_dir=/tmp/wmty-startup-db
runs=3
out=""
cold=0
for arg in "$@"; do
  case "$arg" in
    --build_dir=*) build_dir="${arg#*=}" ;;
    --records=*) records="${arg#*=}" ;;
    --data_dir=*) data_dir="${arg#*=}" ;;
    --runs=*) runs="${arg#*=}" ;;
    --out=*) out="${arg#*=}" ;;
    --cold) cold=1 ;;
    *) echo "unknown argument: $arg" >&2; exit 2 ;;
  esac
done
wmtyd="$build_dir/services/server/wmtyd"
wmtyctl="$build_dir/clients/cpp/wmtyctl"
bench="$build_dir/bench/wmty_bench"
for bin in "$wmtyd" "$wmtyctl" "$bench"; do
  [ -x "$bin" ] || { echo "missing $bin (build first)" >&2; exit 1; }
done

echo "loading (or reusing) $records records in $data_dir"
load_start=$(date +%s.%N)
"$bench" --data_dir="$data_dir" --records="$records" --load_only
load_secs=$(python3 -c "print(round($(date +%s.%N) - $load_start))")

free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
now_ms() { echo $(( $(date +%s%N) / 1000000 )); }

# Starts wmtyd and waits for the first summary. Sets $pid and $ms (time to
# the first answer); not called in a subshell, so both survive.
start_and_time() {
  local port=$1 t0 t1
  pid=0; ms=0
  rm -f /tmp/wmty-startup.port
  if [ "$cold" = 1 ]; then sync; echo 3 >/proc/sys/vm/drop_caches; fi
  t0=$(now_ms)
  "$wmtyd" --data_dir="$data_dir" --grpc_listen="127.0.0.1:$port" --http_listen=127.0.0.1:0 \
    --port_file=/tmp/wmty-startup.port --auth_disabled >/tmp/wmty-startup.log 2>&1 &
  pid=$!
  # wmtyd writes the port file once it is serving; polling a file is cheap,
  # so this does not add a client's connect backoff to the figure.
  until [ -s /tmp/wmty-startup.port ]; do
    kill -0 "$pid" 2>/dev/null || { echo "wmtyd exited; see /tmp/wmty-startup.log" >&2; exit 1; }
    sleep 0.005
  done
  "$wmtyctl" --target="127.0.0.1:$port" --timeout=10s get-patient-summary \
    --parent=patients/bench-hot >/dev/null
  t1=$(now_ms)
  ms=$((t1 - t0))
}

du_h=$(du -sh "$data_dir" | cut -f1)
results=()
for i in $(seq 1 "$runs"); do
  port=$(free_port)
  start_and_time "$port"
  t0=$(now_ms)
  kill -TERM "$pid"; wait "$pid" || true
  stop_ms=$(( $(now_ms) - t0 ))
  echo "run $i (after clean shutdown): first answer after ${ms} ms; SIGTERM to exit ${stop_ms} ms"
  results+=("| after clean shutdown, run $i | ${ms} ms | ${stop_ms} ms |")
done
# After a crash: write a little, kill -9, then time the restart (WAL replay).
port=$(free_port)
start_and_time "$port"
for j in $(seq 1 200); do
  "$wmtyctl" --target="127.0.0.1:$port" create-goal --parent=patients/startup-crash \
    --goal.description="startup bench $j" --goal.lifecycle_status=GOAL_ACTIVE \
    --goal.provenance.recorded_by.practitioner_id=bench --goal.provenance.said_by.kind=PATIENT >/dev/null
done
kill -KILL "$pid"; wait "$pid" 2>/dev/null || true
port=$(free_port)
start_and_time "$port"
t0=$(now_ms)
kill -TERM "$pid"; wait "$pid" || true
stop_ms=$(( $(now_ms) - t0 ))
echo "after kill -9: first answer after ${ms} ms"
results+=("| after kill -9 (WAL replay) | ${ms} ms | ${stop_ms} ms |")

table=$(printf '%s\n' \
  "" \
  "### Startup with $records records ($du_h on disk, $(nproc) cores, $([ "$cold" = 1 ] && echo cold || echo warm) page cache, $(date -u +%Y-%m-%d))" \
  "" \
  "Load (or reuse): ${load_secs} s." \
  "" \
  "| start | wmtyd exec to first GetPatientSummary answered | SIGTERM to exit |" \
  "|---|---|---|" \
  "${results[@]}")
echo "$table"
if [ -n "$out" ]; then echo "$table" >>"$out"; fi
