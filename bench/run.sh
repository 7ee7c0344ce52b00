#!/usr/bin/env bash
# The performance harness of issue 7: one command, every target, one report.
# Builds nothing: it needs a build tree with these targets (one command:
#   cmake --build build --target wmty_perf_harness
# = wmtyd http_baseline_server wmty_datagen wmty_grpc_load grpc_echo_server wmty_rawdb
#   wmty_push_bench).
#
#   bench/run.sh [--quick] [--records=1000000] [--build_dir=build] [--out=bench/results/<date>-perf]
#                [--seconds=10] [--concurrency=32] [--write_clients=32] [--http_connections=32]
#                [--db_dir=DIR] [--block_cache_mb=256] [--memtable_mb=128] [--wmtyd_args="..."]
#                [--growth [--growth_small=100000] [--growth_large=10000000]] [--repeat=3]
#                [--auth=on|off] [--cpu_first]
#
# 1. Data: wmty_datagen loads ~records/10 synthetic patients (+ 1000 "bench"
#    patients with exactly 50 records and 20 goals) into --db_dir through the
#    domain core (bulk, in-process: wmty has no import endpoint), reporting
#    records/s; a db_dir already holding the same generation is reused.
# 2. Baselines, same machine, same concurrency, same run:
#    raw RocksDB point gets on that database (wmty_rawdb --mode=get, before
#    wmtyd opens it) and synced WriteBatch puts in the store's key layout
#    (--mode=put, write_clients writers); grpc_echo_server answering the very
#    bytes of a real 50-entry summary; http_baseline_server answering a fixed
#    body the size of a FHIR Goal.
# 3. wmtyd on the database (loopback, ports picked by the OS) with
#    authentication on, as production runs it: bench/bench_auth.sh makes an
#    RS256 key, wmtyd reads its public half (--auth_jwks_file) and every
#    client sends one token signed with it (scope system/*.cruds, as an EHR
#    backend has) on every request: gRPC `authorization` metadata, wrk and
#    curl an `Authorization: Bearer` header (the baselines get it too, so the
#    client does the same work against both). --auth=off: --auth_disabled,
#    no tokens.
#    gRPC GetPatientSummary of random bench patients, closed loop at
#    `concurrency` (max) and open loop at half of that (the p99 target); a
#    sweep of open-loop rates (10%..100% of max) for summary, echo and
#    CreateGoal; durable CreateGoal with write_clients clients; wrk (random ids
#    and patients) on GET Goal/[id], Goal?patient=X (20 matches) and durable
#    POST Goal with http_connections connections, plus a connection sweep of
#    GET Goal/[id] and the bare server. wmtyd's peak RSS (VmHWM, reset
#    through /proc/<pid>/clear_refs) is taken per phase.
#    CreateGoal also reports wmtyd's and the client's CPU per call, next to
#    an echo server answering as many calls of the create's size (what gRPC
#    alone costs at that rate) and the raw puts' CPU per op. Each database is
#    measured only once RocksDB reports no compaction pending (wmtyd's
#    /metrics; at most 15 min): a database just loaded is still compacting.
#    Every measurement a target is judged on runs --repeat times (3; 1 with
#    --quick), each wmtyd run next to its baseline's, and the median run is
#    reported; the report lists every repetition, so the spread is visible.
# 4. --growth: the same summary (open loop, one fixed rate) and search (wrk,
#    fixed connections) p99 at growth_small and growth_large records, and
#    peak RSS serving the large one under that load (the Memory target).
#    Loading 10M records takes ~4 min at 50k records/s (databases are kept
#    in db_dir and reused).
# 5. Push (issue 19), on a fresh database (wmty_push_bench): 1,000
#    WatchChanges streams, one write per round, the time until every watcher
#    has it; writes/s (closed loop) with no subscription and with 100
#    rest-hook Subscriptions active (ratio, one wmtyd run); commit-to-delivery
#    latency of those 100 at 1,000 writes/s (open loop; the receiver runs in
#    wmty_push_bench). --quick: 100 watchers, 10 subscriptions, 200 writes/s.
# Writes <out>.md (targets with measured value, ratio and PASS/FAIL; every
# absolute number with p50/p99/p99.9 and peak RSS; the machine), <out>.png
# (latency against load, gnuplot) and <out>-sweep.tsv (the plot's data).
#
# --cpu_first: on a machine shared with other work (builds at nice 19), run
# in a session of its own whose autogroup has nice -19. With
# kernel.sched_autogroup_enabled=1 (Debian's default) the scheduler first
# shares the CPU equally between sessions and only then by nice inside one,
# so other sessions' `nice -n 19` builds take as much CPU as the benchmark
# and its tail becomes theirs (docs/performance.md, "Tail latency"). Needs
# root (CAP_SYS_NICE); the report says whether it took effect.
#
# --quick: ~2k patients, 1 s per measurement, 3 sweep points; < 2 minutes;
# keeps the harness from rotting (ctest bench_run_quick). Its numbers mean
# nothing (the report says so); without --out it writes under $TMPDIR.
# Needs wrk, curl and gnuplot (Debian: wrk, curl, gnuplot-nox); with
# authentication on, openssl and xxd.
# Exit: 0 ok; 1 a failure (tool, server, errors, missing output); 2 usage;
# 3 (full runs only) a target was missed.
# note_rss and eval set rss_* and growth_* variables.
# shellcheck disable=SC2154
set -euo pipefail

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
build_dir="$root/build"
records=1000000
out=""
seconds=10
concurrency=32
write_clients=32
http_connections=32
http_threads=2
db_dir=""
block_cache_mb=256
memtable_mb=128
wmtyd_args=""
quick=0
growth=0
growth_small=100000
growth_large=10000000
repeat=""
auth=on
cpu_first=0
for arg in "$@"; do
  case "$arg" in
    --quick) quick=1 ;;
    --records=*) records="${arg#*=}" ;;
    --build_dir=*) build_dir="${arg#*=}" ;;
    --out=*) out="${arg#*=}" ;;
    --seconds=*) seconds="${arg#*=}" ;;
    --concurrency=*) concurrency="${arg#*=}" ;;
    --write_clients=*) write_clients="${arg#*=}" ;;
    --http_connections=*) http_connections="${arg#*=}" ;;
    --db_dir=*) db_dir="${arg#*=}" ;;
    --block_cache_mb=*) block_cache_mb="${arg#*=}" ;;
    --memtable_mb=*) memtable_mb="${arg#*=}" ;;
    --wmtyd_args=*) wmtyd_args="${arg#*=}" ;;
    --growth) growth=1 ;;
    --growth_small=*) growth_small="${arg#*=}" ;;
    --growth_large=*) growth_large="${arg#*=}" ;;
    --repeat=*) repeat="${arg#*=}" ;;
    --auth=on|--auth=off) auth="${arg#*=}" ;;
    --cpu_first) cpu_first=1 ;;
    -h|--help) sed -n '2,70p' "$0"; exit 0 ;;
    *) echo "unknown argument: $arg (see --help)" >&2; exit 2 ;;
  esac
done

die() { echo "run.sh: $*" >&2; exit 1; }
log() { echo "== $*" >&2; }

# --cpu_first: run again as the leader of a new session (a new autogroup),
# then lower that autogroup's nice (see the header).
if [ "$cpu_first" -eq 1 ] && [ -z "${WMTY_BENCH_OWN_SESSION:-}" ]; then
  WMTY_BENCH_OWN_SESSION=1 exec setsid -w "$0" "$@"
fi
if [ "$cpu_first" -eq 1 ]; then
  echo -19 >/proc/self/autogroup 2>/dev/null || log "--cpu_first: could not set this session's autogroup nice"
fi

bench_patients=1000
warmup=1
settle_max=900
settle_small=""
settle_large=""
sweep_fractions="0.1 0.25 0.5 0.75 0.9 1.0"
conn_sweep="1 2 4 8 16 32 64"
if [ "$quick" -eq 1 ]; then
  records=20000
  seconds=1
  warmup=0.5
  bench_patients=20
  settle_max=30
  sweep_fractions="0.25 0.5 1.0"
  conn_sweep="2 32"
  growth_small=10000
  growth_large=20000
  push_watchers=100
  push_subscriptions=10
  push_rate=200
  push_rounds=10
  : "${repeat:=1}"
fi
: "${push_watchers:=1000}" "${push_subscriptions:=100}" "${push_rate:=1000}" "${push_rounds:=100}"
: "${repeat:=3}"
[[ "$repeat" =~ ^[1-9][0-9]*$ ]] || { echo "--repeat must be a positive integer" >&2; exit 2; }
sweep_seconds=$(awk -v s="$seconds" 'BEGIN { v = s / 2; if (v < 1) v = 1; print v }')
[ -d "$build_dir" ] || die "no build directory $build_dir"
build_dir="$(cd "$build_dir" && pwd)"

wmtyd="$build_dir/services/server/wmtyd"
datagen="$build_dir/bench/wmty_datagen"
grpc_load="$build_dir/bench/wmty_grpc_load"
echo_server="$build_dir/bench/grpc_echo_server"
rawdb="$build_dir/bench/wmty_rawdb"
http_baseline="$build_dir/bench/http_baseline_server"
push_bench="$build_dir/bench/wmty_push_bench"
for bin in "$wmtyd" "$datagen" "$grpc_load" "$echo_server" "$rawdb" "$http_baseline" "$push_bench"; do
  [ -x "$bin" ] || die "$bin is not built (cmake --build $build_dir --target wmty_perf_harness)"
done
tools="wrk curl gnuplot"
[ "$auth" = on ] && tools="$tools openssl xxd"
for tool in $tools; do
  command -v "$tool" >/dev/null || die "$tool is not installed (Debian: apt-get install $([ "$tool" = gnuplot ] && echo gnuplot-nox || echo "$tool"))"
done

stamp="$(date -u +%Y-%m-%d)"
if [ -z "$out" ]; then
  if [ "$quick" -eq 1 ]; then
    out="${TMPDIR:-/tmp}/wmty-perf-quick/$stamp-perf-quick"
  else
    out="$root/bench/results/$stamp-perf"
  fi
fi
out="${out%.md}"
mkdir -p "$(dirname "$out")"

tmp="$(mktemp -d "${TMPDIR:-/tmp}/wmty-perf.XXXXXX")"
if [ -z "$db_dir" ]; then
  if [ "$quick" -eq 1 ]; then db_dir="$tmp/db"; else db_dir="${TMPDIR:-/tmp}/wmty-perf"; fi
fi
mkdir -p "$db_dir"
# Authentication (see 3. above): the flags wmtyd gets, and the token every
# client sends (the gRPC client reads it from a file; wrk and curl take the
# header).
if [ "$auth" = on ]; then
  "$root/bench/bench_auth.sh" "$tmp/auth" || die "bench/bench_auth.sh failed"
  auth_flags=(--auth_jwks_file="$tmp/auth/jwks.json" --auth_issuer=wmty-bench --auth_audience=wmty)
  token_args=(--token_file="$tmp/auth/token")
  auth_header=(-H "Authorization: Bearer $(cat "$tmp/auth/token")")
  auth_text="authentication on (RS256 token from a JWKS file, scope system/*.cruds, sent on every request)"
else
  auth_flags=(--auth_disabled)
  token_args=()
  auth_header=()
  auth_text="authentication off (--auth=off: --auth_disabled, no tokens)"
fi
pids=()
wmtyd_pid=""
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

# kv FILE PREFIX KEY: KEY's value on the last line of FILE starting with PREFIX.
kv() { grep "^$2 " "$1" | tail -1 | tr ' ' '\n' | sed -n "s/^$3=//p"; }
calc() { awk "BEGIN { printf \"%.${2:-1}f\", $1 }"; }
ge() { awk -v a="$1" -v b="$2" 'BEGIN { exit !(a >= b) }'; }
ms() { calc "$1 / 1000" 3; }

wait_port_file() {
  local file="$1" pid="$2" what="$3" _
  for _ in $(seq 1 600); do
    if [ -s "$file" ]; then cat "$file"; return 0; fi
    kill -0 "$pid" 2>/dev/null || die "$what exited before serving: $(tail -5 "$tmp/$what.log" 2>/dev/null)"
    sleep 0.1
  done
  die "$what did not write $file within 60 s"
}

# ---------------------------------------------------------------- wmtyd
start_wmtyd() {  # DB_DIR
  rm -f "$tmp/grpc.port" "$tmp/http.port" "$tmp/metrics.port"
  # shellcheck disable=SC2086  # wmtyd_args: extra flags, split on purpose
  "$wmtyd" --data_dir="$1" --grpc_listen=127.0.0.1:0 --http_listen=127.0.0.1:0 "${auth_flags[@]}" \
    --block_cache_mb="$block_cache_mb" --memtable_mb="$memtable_mb" \
    --metrics_listen=127.0.0.1:0 --metrics_port_file="$tmp/metrics.port" \
    --port_file="$tmp/grpc.port" --http_port_file="$tmp/http.port" $wmtyd_args >"$tmp/wmtyd.log" 2>&1 &
  wmtyd_pid=$!
  pids+=("$wmtyd_pid")
  grpc_port="$(wait_port_file "$tmp/grpc.port" "$wmtyd_pid" wmtyd)"
  http_port="$(cat "$tmp/http.port")"
  metrics_port="$(wait_port_file "$tmp/metrics.port" "$wmtyd_pid" wmtyd)"
  fhir="http://127.0.0.1:$http_port"
}
# metric NAME: one sample of wmtyd's /metrics.
metric() {
  curl -sf "http://127.0.0.1:$metrics_port/metrics" | awk -v n="$1" '$1 == n { print $2 }'
}
# settle VAR: waits until RocksDB has no compaction pending (a database just
# loaded is still compacting: measuring then would measure the compaction),
# at most settle_max seconds; sets VAR to the seconds waited ("N+" when it
# gave up), which the report shows.
settle() {
  local waited=0 pending
  while :; do
    pending="$(metric wmty_rocksdb_compaction_pending)"
    [ -n "$pending" ] || die "no metrics from wmtyd"
    [ "$pending" = 0 ] && break
    if [ "$waited" -ge "$settle_max" ]; then waited="$waited+"; break; fi
    sleep 5; waited=$((waited + 5))
  done
  [ "$waited" = 0 ] || log "waited ${waited} s for RocksDB's compactions to finish"
  printf -v "$1" '%s' "$waited"
}
stop_wmtyd() {
  kill -TERM "$wmtyd_pid"
  wait "$wmtyd_pid" || die "wmtyd did not shut down cleanly: $(tail -5 "$tmp/wmtyd.log")"
  wmtyd_pid=""
}
# Peak RSS per phase: writing 5 to clear_refs resets VmHWM (Linux >= 4.0).
hwm_reset() { echo 5 >"/proc/$wmtyd_pid/clear_refs" 2>/dev/null || hwm_cumulative=1; }
hwm_mib() { awk '/^VmHWM:/ { printf "%.0f", $2 / 1024 }' "/proc/$wmtyd_pid/status"; }
hwm_cumulative=0
peak_rss_max=0
note_rss() {  # VAR: sets VAR to this phase's peak RSS (MiB)
  local v
  v="$(hwm_mib)"
  if [ "$v" -gt "$peak_rss_max" ]; then peak_rss_max="$v"; fi
  printf -v "$1" '%s' "$v"
}

# ---------------------------------------------------------------- load
# grpc NAME ARGS...: runs wmty_grpc_load; its GRPCLOAD line goes to $tmp/NAME.out.
grpc() {
  local name="$1"; shift
  "$grpc_load" --warmup="${warmup}s" "${token_args[@]}" "$@" >"$tmp/$name.out" 2>"$tmp/$name.err" || true
  grep -q '^GRPCLOAD ' "$tmp/$name.out" || die "wmty_grpc_load $name failed: $(tail -5 "$tmp/$name.err")"
  sed -n '1,3p' "$tmp/$name.err" | grep -v '^call failed' >&2 || true
  # The first failed calls with their codes (the report counts them all).
  grep '^call failed' "$tmp/$name.err" | sed "s/^/$name: /" >&2 || true
}
g() { kv "$tmp/$1.out" GRPCLOAD "$2"; }

cat "$root/bench/fhir_pick.lua" "$root/bench/wrk_report.lua" >"$tmp/pick.lua"
cat "$root/bench/fhir_create.lua" "$root/bench/wrk_report.lua" >"$tmp/create.lua"
# wrkrun NAME CONNECTIONS SECONDS URL SCRIPT [SCRIPT ARGS...]: WRKSTATS line in $tmp/NAME.out.
wrkrun() {
  local name="$1" conns="$2" secs="$3" url="$4" script="$5"; shift 5
  local threads=$http_threads
  [ "$conns" -lt "$threads" ] && threads=$conns
  wrk -t"$threads" -c"$conns" -d"${secs}s" --timeout 10s "${auth_header[@]}" -s "$script" "$url" -- "$@" >"$tmp/$name.out" 2>&1 ||
    die "wrk $name failed: $(cat "$tmp/$name.out")"
  grep -q '^WRKSTATS ' "$tmp/$name.out" || die "wrk $name: no statistics: $(cat "$tmp/$name.out")"
  local requests non2xx errors
  requests="$(w "$name" requests)"; non2xx="$(w "$name" non2xx)"; errors="$(w "$name" socket_errors)"
  [ "$requests" -gt 0 ] || die "wrk $name made no requests"
  [ "$non2xx" -eq 0 ] || die "wrk $name: $non2xx answers were not 2xx/3xx"
  # A few read errors as wrk stops are noise; more than 1% is a failure.
  [ $((errors * 100)) -le "$requests" ] || die "wrk $name: $errors socket errors on $requests requests"
  echo "wrk $name x$conns: $(wrps "$name")/s, p99 $(ms "$(w "$name" p99_us)") ms" >&2
}
w() { kv "$tmp/$1.out" WRKSTATS "$2"; }
wrps() { calc "$(w "$1" requests) * 1000000 / $(w "$1" duration_us)" 1; }

stats_lines='\(GRPCLOAD\|WRKSTATS\|RAWDB\)'
# median NAME KEY LABEL: NAME.1 .. NAME.$repeat are repetitions of one
# measurement (wmty_grpc_load, wrk or wmty_rawdb output); copies the median
# one by KEY (qps, p99_us, or rps for wrk's requests/s; the lower middle one
# of an even count) to NAME.out and notes every repetition's value, with its
# p99 and p99.9, for the report.
median() {
  local name="$1" key="$2" label="$3" r v chosen values=""
  local -a by_rep=()
  for r in $(seq 1 "$repeat"); do
    if [ "$key" = rps ]; then by_rep[r]="$(wrps "$name.$r")"
    else by_rep[r]="$(kv "$tmp/$name.$r.out" "$stats_lines" "$key")"; fi
  done
  chosen="$(for r in $(seq 1 "$repeat"); do echo "${by_rep[r]} $r"; done |
    sort -g | awk -v m=$(( (repeat + 1) / 2 )) 'NR == m { print $2 }')"
  cp "$tmp/$name.$chosen.out" "$tmp/$name.out"
  for r in $(seq 1 "$repeat"); do
    v="${by_rep[r]}"
    [ "$key" = p99_us ] && v="$(ms "$v") ms"
    [ "$r" = "$chosen" ] && v="**$v**"
    v="$v (p99 $(ms "$(kv "$tmp/$name.$r.out" "$stats_lines" p99_us)"), p99.9 $(ms "$(kv "$tmp/$name.$r.out" "$stats_lines" p999_us)") ms)"
    values="${values:+$values, }$v"
  done
  case "$key" in qps) key="per second" ;; rps) key="requests/s" ;; p99_us) key="p99" ;; esac
  printf '| %s | %s | %s |\n' "$label" "$key" "$values" >>"$tmp/repetitions.md"
}

# ---------------------------------------------------------------- machine
load_start="$(cut -d' ' -f1-3 /proc/loadavg)"
if [ "$(cat /proc/sys/kernel/sched_autogroup_enabled 2>/dev/null)" = 1 ]; then
  autogroup_text="autogroup on (CPU shared between sessions first); this run's: $(cat /proc/self/autogroup 2>/dev/null)"
  [ "$cpu_first" -eq 1 ] && autogroup_text="$autogroup_text (--cpu_first)"
else
  autogroup_text="autogroup off (nice alone decides)"
fi
cpu_model="$(lscpu 2>/dev/null | sed -nE 's/^Model name: *//p' | head -1)"
mem_total="$(awk '/^MemTotal:/ { printf "%.1f GiB", $2 / 1048576 }' /proc/meminfo)"
# shellcheck disable=SC1091
os_name="$(. /etc/os-release 2>/dev/null && echo "${PRETTY_NAME:-unknown}")"
cxx="$(sed -nE 's/^CMAKE_CXX_COMPILER:[A-Z]*=//p' "$build_dir/CMakeCache.txt" | head -1)"
cxx_version="$([ -n "$cxx" ] && "$cxx" --version 2>/dev/null | head -1 || echo unknown)"
build_type="$(sed -nE 's/^CMAKE_BUILD_TYPE:[A-Z]*=//p' "$build_dir/CMakeCache.txt" | head -1)"
packages="$(dpkg-query -W -f='${Package} ${Version}\n' librocksdb-dev libgrpc++-dev libprotobuf-dev libboost-dev \
  wrk gnuplot-nox 2>/dev/null | sed 's/^/  /' || true)"
rev="$(git -C "$root" rev-parse --short HEAD 2>/dev/null || echo unknown)"
[ -n "$(git -C "$root" status --porcelain 2>/dev/null | head -1)" ] && rev="$rev+local changes"
db_fs="$(df -T "$db_dir" 2>/dev/null | awk 'NR == 2 { print $2 " on " $1 }')"

# ---------------------------------------------------------------- 1. data
# gen RECORDS: loads (or reuses) a database of ~RECORDS records; sets gen_dir, gen_manifest.
gen() {
  local recs="$1" patients
  # ~10 records per patient on average (9.5-9.8 measured) plus 50 per bench
  # patient: at least `recs` records.
  patients=$(( recs / 10 ))
  if [ $(( patients * 95 / 10 + bench_patients * 50 )) -lt "$recs" ]; then
    patients=$(( (recs - bench_patients * 50) * 10 / 95 + 1 ))
  fi
  [ "$patients" -ge 1 ] || patients=1
  gen_dir="$db_dir/db-$patients-$bench_patients"
  gen_manifest="$gen_dir.manifest"
  log "data: $patients patients + $bench_patients bench patients (~$recs records) in $gen_dir"
  "$datagen" --data_dir="$gen_dir" --patients="$patients" --bench_patients="$bench_patients" \
    >"$tmp/datagen.out" || die "wmty_datagen failed"
  cat "$tmp/datagen.out" >&2
}
gen "$records"
main_db="$gen_dir"
main_manifest="$gen_manifest"
db_records="$(kv "$tmp/datagen.out" DATAGEN records)"
import_rate="$(kv "$tmp/datagen.out" DATAGEN records_per_second)"
import_secs="$(kv "$tmp/datagen.out" DATAGEN seconds)"
import_reused="$(kv "$tmp/datagen.out" DATAGEN reused)"
db_size="$(du -sh "$main_db" | cut -f1)"

# ---------------------------------------------------------------- 2. raw gets
log "raw RocksDB gets, $concurrency threads"
"$rawdb" --mode=get --db="$main_db" --concurrency="$concurrency" --duration="${seconds}s" --warmup="${warmup}s" \
  --block_cache_mb="$block_cache_mb" --memtable_mb="$memtable_mb" >"$tmp/rawget.out" 2>"$tmp/rawget.err" ||
  die "wmty_rawdb get failed: $(cat "$tmp/rawget.err")"
record_bytes="$(kv "$tmp/rawget.out" RAWDB value_bytes)"

# ---------------------------------------------------------------- 3. wmtyd
log "wmtyd on $main_db"
start_wmtyd "$main_db"
# Each run's write phases add ~tens of thousands of versions to the reused
# database: say how far it has grown past what was generated.
start_changes="$(sed -n 's/.*"msg":"serving".*"last_sequence":"\([0-9]*\)".*/\1/p' "$tmp/wmtyd.log" | head -1)"
[ -n "$start_changes" ] || die "wmtyd did not log its last_sequence"
if [ "$start_changes" -gt $(( db_records * 3 / 2 )) ]; then
  log "WARNING: $main_db holds $start_changes changes, generated with $db_records: earlier runs' writes" \
    "grew it; delete it to measure at --records=$records"
fi
settle settle_main
"$grpc_load" "${token_args[@]}" --target="127.0.0.1:$grpc_port" --method=summary --probe --patients_file="$main_manifest/bench_patients.txt" \
  --dump_response="$tmp/summary.bin" >"$tmp/probe.out" 2>&1 || die "summary probe failed: $(cat "$tmp/probe.out")"
summary_bytes="$(kv "$tmp/probe.out" PROBE response_bytes)"
"$echo_server" --port=0 --port_file="$tmp/echo.port" --response_file="$tmp/summary.bin" >"$tmp/echo.log" 2>&1 &
pids+=($!)
echo_port="$(wait_port_file "$tmp/echo.port" "${pids[-1]}" echo)"
patients_file="$main_manifest/bench_patients.txt"
ids_file="$main_manifest/bench_goal_ids.txt"

log "gRPC: echo and summary, closed loop x$concurrency ($repeat times each, alternating)"
hwm_reset
summary_hits_before="$(metric wmty_summary_cache_hits_total)"
summary_misses_before="$(metric wmty_summary_cache_misses_total)"
for r in $(seq 1 "$repeat"); do
  grpc "echo_max.$r" --target="127.0.0.1:$echo_port" --method=echo --mode=closed --concurrency="$concurrency" \
    --duration="${seconds}s" --patients_file="$patients_file"
  grpc "summary_max.$r" --target="127.0.0.1:$grpc_port" --method=summary --mode=closed --concurrency="$concurrency" \
    --duration="${seconds}s" --patients_file="$patients_file"
done
note_rss rss_summary
median echo_max qps "gRPC echo baseline, closed loop"
median summary_max qps "gRPC GetPatientSummary, closed loop"
summary_max="$(g summary_max qps)"
echo_max="$(g echo_max qps)"
half_rate="$(calc "$summary_max / 2" 0)"
[ "$half_rate" -ge 1 ] || half_rate=1
log "gRPC: summary, open loop at half of max ($half_rate/s, $repeat times)"
for r in $(seq 1 "$repeat"); do
  grpc "summary_half.$r" --target="127.0.0.1:$grpc_port" --method=summary --mode=open --rate="$half_rate" \
    --duration="${seconds}s" --patients_file="$patients_file"
done
median summary_half p99_us "gRPC GetPatientSummary at half of max, open loop"
summary_hits="$(calc "$(metric wmty_summary_cache_hits_total) - $summary_hits_before" 0)"
summary_misses="$(calc "$(metric wmty_summary_cache_misses_total) - $summary_misses_before" 0)"

sweep="$out-sweep.tsv"
printf 'series\toffered_per_s\tachieved_per_s\tp50_ms\tp99_ms\tp999_ms\terrors\n' >"$sweep"
sweep_row() {  # SERIES NAME (a grpc or wrk result)
  if grep -q '^GRPCLOAD ' "$tmp/$2.out" 2>/dev/null; then
    printf '%s\t%s\t%s\t%s\t%s\t%s\t%s\n' "$1" "$(g "$2" offered)" "$(g "$2" qps)" "$(ms "$(g "$2" p50_us)")" \
      "$(ms "$(g "$2" p99_us)")" "$(ms "$(g "$2" p999_us)")" "$(g "$2" errors)" >>"$sweep"
  else
    printf '%s\t%s\t%s\t%s\t%s\t%s\t%s\n' "$1" "$3" "$(wrps "$2")" "$(ms "$(w "$2" p50_us)")" \
      "$(ms "$(w "$2" p99_us)")" "$(ms "$(w "$2" p999_us)")" "$(w "$2" socket_errors)" >>"$sweep"
  fi
}
log "gRPC: open-loop sweep ($sweep_fractions of max), ${sweep_seconds} s a point"
for f in $sweep_fractions; do
  r="$(calc "$summary_max * $f" 0)"; [ "$r" -ge 1 ] || r=1
  grpc "sweep_summary_$f" --target="127.0.0.1:$grpc_port" --method=summary --mode=open --rate="$r" \
    --duration="${sweep_seconds}s" --patients_file="$patients_file"
  sweep_row "gRPC GetPatientSummary" "sweep_summary_$f"
  r="$(calc "$echo_max * $f" 0)"; [ "$r" -ge 1 ] || r=1
  grpc "sweep_echo_$f" --target="127.0.0.1:$echo_port" --method=echo --mode=open --rate="$r" \
    --duration="${sweep_seconds}s" --patients_file="$patients_file"
  sweep_row "gRPC echo baseline" "sweep_echo_$f"
done

# ---------------------------------------------------------------- FHIR reads
goal_id="$(head -1 "$ids_file")"
goal_bytes="$(curl -sf "${auth_header[@]}" -o /dev/null -w '%{size_download}' "$fhir/fhir/Goal/$goal_id")" || die "GET Goal/$goal_id failed"
search_body="$(curl -sf "${auth_header[@]}" "$fhir/fhir/Goal?patient=$(head -1 "$patients_file")")" || die "Goal?patient= failed"
search_matches="$(grep -o '"mode": *"match"' <<<"$search_body" | wc -l)"
[ "$search_matches" -eq 20 ] || die "Goal?patient=$(head -1 "$patients_file") matched $search_matches, expected 20"
search_bytes=${#search_body}
"$http_baseline" --port=0 --port_file="$tmp/baseline.port" --threads=2 --body_bytes="$goal_bytes" \
  >"$tmp/baseline.log" 2>&1 &
pids+=($!)
baseline_port="$(wait_port_file "$tmp/baseline.port" "${pids[-1]}" baseline)"
baseline="http://127.0.0.1:$baseline_port"

log "FHIR reads: wrk x$http_connections ($repeat times each, alternating)"
rss_fhir_get=0
rss_fhir_search=0
for r in $(seq 1 "$repeat"); do
  wrkrun "http_baseline.$r" "$http_connections" "$seconds" "$baseline" "$tmp/pick.lua" - /
  hwm_reset
  wrkrun "fhir_get.$r" "$http_connections" "$seconds" "$fhir" "$tmp/pick.lua" "$ids_file" /fhir/Goal/
  note_rss rss_now; [ "$rss_now" -gt "$rss_fhir_get" ] && rss_fhir_get=$rss_now
  hwm_reset
  wrkrun "fhir_search.$r" "$http_connections" "$seconds" "$fhir" "$tmp/pick.lua" "$patients_file" "/fhir/Goal?patient="
  note_rss rss_now; [ "$rss_now" -gt "$rss_fhir_search" ] && rss_fhir_search=$rss_now
done
median http_baseline rps "bare Beast baseline, wrk"
median fhir_get rps "FHIR GET Goal/[id], wrk"
median fhir_search rps "FHIR Goal?patient=X, wrk"
log "FHIR: connection sweep ($conn_sweep), ${sweep_seconds} s a point"
for c in $conn_sweep; do
  wrkrun "csweep_base_$c" "$c" "$sweep_seconds" "$baseline" "$tmp/pick.lua" - /
  sweep_row "HTTP bare Beast baseline" "csweep_base_$c" "$c"
  wrkrun "csweep_get_$c" "$c" "$sweep_seconds" "$fhir" "$tmp/pick.lua" "$ids_file" /fhir/Goal/
  sweep_row "FHIR GET Goal/[id]" "csweep_get_$c" "$c"
done

# ---------------------------------------------------------------- writes
log "gRPC CreateGoal, durable, closed loop x$write_clients ($repeat times)"
hwm_reset
stall_before="$(metric wmty_rocksdb_write_stall_seconds_total)"
for r in $(seq 1 "$repeat"); do
  grpc "create_max.$r" --target="127.0.0.1:$grpc_port" --method=create_goal --mode=closed \
    --concurrency="$write_clients" --duration="${seconds}s" --server_pid="$wmtyd_pid"
done
note_rss rss_create
stall_create="$(calc "$(metric wmty_rocksdb_write_stall_seconds_total) - $stall_before" 2)"
median create_max qps "gRPC CreateGoal, durable, closed loop"
create_max="$(g create_max qps)"
create_bytes="$(g create_max response_bytes)"
# What gRPC alone costs at that rate: an echo server answering as many calls
# of the same size, open loop (not a target; it says where the cores went).
"$echo_server" --port=0 --port_file="$tmp/echo_small.port" --response_bytes="$create_bytes" >"$tmp/echo_small.log" 2>&1 &
pids+=($!)
echo_small_pid="${pids[-1]}"
echo_small_port="$(wait_port_file "$tmp/echo_small.port" "$echo_small_pid" echo)"
log "gRPC echo of ${create_bytes} bytes at the CreateGoal rate ($create_max/s, open loop)"
grpc echo_at_create_rate --target="127.0.0.1:$echo_small_port" --method=echo --mode=open --rate="$create_max" \
  --duration="${seconds}s" --patients_file="$patients_file" --server_pid="$echo_small_pid"
kill -TERM "$echo_small_pid" 2>/dev/null || true
log "gRPC CreateGoal: open-loop sweep"
for f in $sweep_fractions; do
  r="$(calc "$create_max * $f" 0)"; [ "$r" -ge 1 ] || r=1
  grpc "sweep_create_$f" --target="127.0.0.1:$grpc_port" --method=create_goal --mode=open --rate="$r" \
    --duration="${sweep_seconds}s"
  sweep_row "gRPC CreateGoal (durable)" "sweep_create_$f"
done
log "FHIR create, durable, wrk x$write_clients ($repeat times)"
hwm_reset
stall_before="$(metric wmty_rocksdb_write_stall_seconds_total)"
for r in $(seq 1 "$repeat"); do
  wrkrun "fhir_create.$r" "$write_clients" "$seconds" "$fhir/fhir/Goal" "$tmp/create.lua"
done
note_rss rss_fhir_create
stall_fhir_create="$(calc "$(metric wmty_rocksdb_write_stall_seconds_total) - $stall_before" 2)"
median fhir_create rps "FHIR POST Goal, durable, wrk"
[ "$hwm_cumulative" -eq 1 ] && rss_note="(could not reset VmHWM: each figure is the peak since start)" || rss_note=""
stop_wmtyd

log "raw RocksDB synced WriteBatch, $write_clients writers ($repeat times)"
for r in $(seq 1 "$repeat"); do
  "$rawdb" --mode=put --db="$tmp/raw-put-$r" --concurrency="$write_clients" --duration="${seconds}s" \
    --warmup="${warmup}s" --value_bytes="$record_bytes" --block_cache_mb="$block_cache_mb" \
    --memtable_mb="$memtable_mb" >"$tmp/rawput.$r.out" 2>"$tmp/rawput.err" ||
    die "wmty_rawdb put failed: $(cat "$tmp/rawput.err")"
  rm -rf "$tmp/raw-put-$r"
done
median rawput qps "raw RocksDB synced WriteBatch"
raw_put="$(kv "$tmp/rawput.out" RAWDB qps)"

# ---------------------------------------------------------------- 4. growth
if [ "$growth" -eq 1 ]; then
  # One fixed load at both sizes: half of the summary max measured above.
  for size in small large; do
    recs=$growth_small; [ "$size" = large ] && recs=$growth_large
    gen "$recs"
    eval "growth_records_$size=\"$(kv "$tmp/datagen.out" DATAGEN records)\""
    log "growth ($size, ~$recs records): summary open loop at $half_rate/s, search wrk x$http_connections"
    start_wmtyd "$gen_dir"
    settle "settle_$size"
    hwm_reset
    for r in $(seq 1 "$repeat"); do
      grpc "growth_summary_$size.$r" --target="127.0.0.1:$grpc_port" --method=summary --mode=open \
        --rate="$half_rate" --duration="${seconds}s" --patients_file="$gen_manifest/bench_patients.txt"
      wrkrun "growth_search_$size.$r" "$http_connections" "$seconds" "$fhir" "$tmp/pick.lua" \
        "$gen_manifest/bench_patients.txt" "/fhir/Goal?patient="
    done
    note_rss "growth_rss_$size"
    median "growth_summary_$size" p99_us "growth ($size): summary at $half_rate/s, open loop"
    median "growth_search_$size" p99_us "growth ($size): Goal?patient=X, wrk"
    stop_wmtyd
  done
fi

# ---------------------------------------------------------------- 5. push (issue 19)
# A fresh database: WatchChanges fan-out (push_watchers streams, one write per
# round), then rest-hook Subscriptions (receiver in wmty_push_bench, on
# loopback: hence --subscription_allow_private_endpoints): writes/s without
# and with push_subscriptions active, and commit-to-delivery latency at
# push_rate writes/s. One wmtyd for all, so the writes/s ratio is of one run.
log "push: $push_watchers watchers; $push_subscriptions subscriptions at $push_rate writes/s"
saved_wmtyd_args="$wmtyd_args"
wmtyd_args="$wmtyd_args --subscription_allow_private_endpoints"
start_wmtyd "$tmp/push-db"
wmtyd_args="$saved_wmtyd_args"
"$push_bench" --mode=watch --grpc="127.0.0.1:$grpc_port" "${token_args[@]}" --watchers="$push_watchers" \
  --rounds="$push_rounds" >"$tmp/push_watch.out" 2>"$tmp/push_watch.err" ||
  log "push watch reported errors: $(tail -3 "$tmp/push_watch.err")"
"$push_bench" --mode=subscriptions --grpc="127.0.0.1:$grpc_port" --fhir_port="$http_port" "${token_args[@]}" \
  --subscriptions="$push_subscriptions" --rate="$push_rate" --seconds="$seconds" --clients="$write_clients" \
  >"$tmp/push_subs.out" 2>"$tmp/push_subs.err" ||
  log "push subscriptions reported errors: $(tail -3 "$tmp/push_subs.err")"
stop_wmtyd
# pk FILE PHASE KEY: KEY of the PUSHBENCH line of PHASE.
pk() { grep "^PUSHBENCH phase=$2 " "$tmp/$1.out" | tail -1 | tr ' ' '\n' | sed -n "s/^$3=//p"; }

# ---------------------------------------------------------------- report
load_end="$(cut -d' ' -f1-3 /proc/loadavg)"
pct() { calc "100 * $1 / $2" 1; }
quick_note=""
[ "$quick" -eq 1 ] && quick_note=" (quick run: meaningless)"
verdict() {  # 0 (met) or not
  if [ "$1" -eq 0 ]; then echo "PASS$quick_note"; else echo "**FAIL**$quick_note"; fi
}
check() { if "$@"; then echo 0; else echo 1; fi; }

summary_half_p99="$(g summary_half p99_us)"
r_summary="$(pct "$summary_max" "$echo_max")"
v_summary="$(verdict "$(( $(check ge "$r_summary" 50) | $(check ge 2000 "$summary_half_p99") ))")"
r_create="$(pct "$create_max" "$raw_put")"
v_create="$(verdict "$(check ge "$r_create" 60)")"
rps_base="$(wrps http_baseline)"
rps_get="$(wrps fhir_get)"; r_get="$(pct "$rps_get" "$rps_base")"
v_get="$(verdict "$(check ge "$r_get" 40)")"
rps_search="$(wrps fhir_search)"; r_search="$(pct "$rps_search" "$rps_base")"
v_search="$(verdict "$(check ge "$r_search" 20)")"
rps_fcreate="$(wrps fhir_create)"; r_fcreate="$(pct "$rps_fcreate" "$raw_put")"
v_fcreate="$(verdict "$(check ge "$r_fcreate" 50)")"
import_note=""
[ "$import_reused" = 1 ] && import_note=" (database reused: rate of the run that loaded it)"
v_import="$(verdict "$(check ge "$import_rate" 50000)")"
if [ "$growth" -eq 1 ]; then
  gs_s="$(g growth_summary_small p99_us)"; gs_l="$(g growth_summary_large p99_us)"
  gq_s="$(w growth_search_small p99_us)"; gq_l="$(w growth_search_large p99_us)"
  x_sum="$(calc "$gs_l / $gs_s" 2)"; x_search="$(calc "$gq_l / $gq_s" 2)"
  growth_value="summary p99 $(ms "$gs_s") → $(ms "$gs_l") ms (×$x_sum); search p99 $(ms "$gq_s") → $(ms "$gq_l") ms (×$x_search); $growth_records_small → $growth_records_large records"
  v_growth="$(verdict "$(( $(check ge 1.5 "$x_sum") | $(check ge 1.5 "$x_search") ))")"
  mem_value="$growth_rss_large MiB (VmHWM of wmtyd serving $growth_records_large records under the growth load; block cache $block_cache_mb MiB, memtables $memtable_mb MiB)"
  if [ "$growth_records_large" -ge 10000000 ] || [ "$quick" -eq 1 ]; then
    v_mem="$(verdict "$(check ge 1024 "$growth_rss_large")")"
  else
    v_mem="NOT RUN (largest database < 10M records)"
  fi
else
  growth_value="not measured: needs --growth (100k and 10M records)"
  v_growth="NOT RUN"
  mem_value="$peak_rss_max MiB peak at $db_records records (the target is for 10M: --growth)"
  if [ "$db_records" -ge 10000000 ]; then v_mem="$(verdict "$(check ge 1024 "$peak_rss_max")")"; else v_mem="NOT RUN"; fi
fi

num_or() { [ -n "$1" ] && echo "$1" || echo "$2"; }
v_delivery="$(verdict "$(( $(check ge 50 "$(num_or "$(pk push_subs delivery_latency p99_ms)" 1e9)") | $(check ge 0 "$(num_or "$(pk push_subs delivery_latency missing)" 1)") ))")"
v_push_writes="$(verdict "$(check ge "$(num_or "$(pk push_subs writes_with_subscriptions ratio)" 0)" 0.9)")"
v_watch="$(verdict "$(( $(check ge 50 "$(num_or "$(pk push_watch watch all_notified_p99_ms)" 1e9)") | $(check ge 0 "$(num_or "$(pk push_watch watch missing)" 1)") ))")"
mode_text="full run"
[ "$quick" -eq 1 ] && mode_text="QUICK SMOKE RUN — tiny database, 1 s per point: the numbers mean nothing"
{
  echo "# Performance, $(date -u +%Y-%m-%dT%H:%M:%SZ) ($mode_text)"
  echo
  echo "\`bench/run.sh $*\` — commit $rev, wmtyd built $(date -u -r "$wmtyd" +%Y-%m-%dT%H:%M:%SZ)."
  echo "Database: $db_records records ($((records / 10)) patients with a realistic mix + $bench_patients bench"
  echo "patients with 50 records; $start_changes changes in its log at the start, with earlier runs' writes), $db_size on disk. Loopback, $auth_text, \`--block_cache_mb=$block_cache_mb"
  echo "--memtable_mb=$memtable_mb\`${wmtyd_args:+ $wmtyd_args}. Method: [docs/performance.md](../../docs/performance.md)."
  echo "Each database was measured once RocksDB had no compaction pending (waited: ${settle_main} s$([ "$growth" -eq 1 ] &&
    echo "; growth ${settle_small} s and ${settle_large} s"); \"+\" means it gave up after ${settle_max} s)."
  echo
  echo "## Targets"
  echo
  # tail_of TOOL NAME: "p99 / p99.9 A / B ms" of a grpc (g) or wrk (w) result.
  tail_of() { echo "p99 / p99.9 $(ms "$("$1" "$2" p99_us)") / $(ms "$("$1" "$2" p999_us)") ms"; }
  echo "| target | goal | measured | status |"
  echo "|---|---|---|---|"
  echo "| gRPC GetPatientSummary (50-record patient) | ≥ 50% of echo-server QPS; p99 ≤ 2 ms at half of max load | ${summary_max}/s = **${r_summary}%** of echo (${echo_max}/s), x$concurrency; p99 **$(ms "$summary_half_p99") ms** (p99.9 $(ms "$(g summary_half p999_us)") ms) at $half_rate/s | $v_summary |"
  echo "| gRPC RecordGoal, durable, $write_clients clients | ≥ 60% of raw RocksDB synced-WriteBatch throughput | ${create_max}/s = **${r_create}%** of raw (${raw_put}/s); $(tail_of g create_max) | $v_create |"
  echo "| FHIR GET Goal/[id] | ≥ 40% of the bare Beast server's requests/s | ${rps_get}/s = **${r_get}%** of bare (${rps_base}/s), x$http_connections; $(tail_of w fhir_get) (bare server: $(tail_of w http_baseline)) | $v_get |"
  echo "| FHIR Goal?patient=X (20 results) | ≥ 20% of the bare Beast server's requests/s | ${rps_search}/s = **${r_search}%** of bare; $(tail_of w fhir_search) | $v_search |"
  echo "| FHIR create, durable, $write_clients connections | ≥ 50% of raw RocksDB synced-WriteBatch throughput | ${rps_fcreate}/s = **${r_fcreate}%** of raw; $(tail_of w fhir_create) | $v_fcreate |"
  echo "| Growth | p99 of summary and search at 10M records ≤ 1.5 × p99 at 100k | $growth_value | $v_growth |"
  echo "| Bulk import | ≥ 50k records/s | **${import_rate} records/s** ($db_records in ${import_secs} s)$import_note | $v_import |"
  echo "| Memory | peak RSS ≤ 1 GiB serving the 10M-record DB under load | $mem_value | $v_mem |"
  echo "| Subscription delivery, $push_subscriptions rest-hook subscriptions, $push_rate writes/s | commit-to-delivery p99 ≤ 50 ms | p50 $(pk push_subs delivery_latency p50_ms) ms, p99 **$(pk push_subs delivery_latency p99_ms) ms** (p99.9 $(pk push_subs delivery_latency p999_ms) ms) over $(pk push_subs delivery_latency notifications) notifications, $(pk push_subs delivery_latency missing) missing | $v_delivery |"
  echo "| Writes with $push_subscriptions subscriptions | ≥ 90% of writes/s with none | $(pk push_subs writes_with_subscriptions writes_per_s)/s = **$(calc "100 * $(pk push_subs writes_with_subscriptions ratio)" 1)%** of $(pk push_subs writes_no_subscriptions writes_per_s)/s, x$write_clients | $v_push_writes |"
  echo "| gRPC watch fan-out | $push_watchers watchers, one write → all notified, p99 ≤ 50 ms | all notified p99 **$(pk push_watch watch all_notified_p99_ms) ms** (p50 $(pk push_watch watch all_notified_p50_ms) ms); per watcher p99 $(pk push_watch watch p99_ms) ms; $(pk push_watch watch missing) missing, $(pk push_watch watch rounds) writes | $v_watch |"
  echo
  echo "## Every measurement"
  echo
  echo "Latency of open-loop runs is measured from each call's scheduled send time (no coordinated omission)."
  echo "Rows that ran $repeat times show the median run (see Repetitions)."
  echo "Peak RSS: wmtyd's VmHWM during that phase${rss_note:+ $rss_note}."
  echo
  echo "| measurement | load | per second | p50 ms | p99 ms | p99.9 ms | errors | wmtyd peak RSS MiB |"
  echo "|---|---|---:|---:|---:|---:|---:|---:|"
  grow() { echo "| $1 | $2 | $(g "$3" qps) | $(ms "$(g "$3" p50_us)") | $(ms "$(g "$3" p99_us)") | $(ms "$(g "$3" p999_us)") | $(g "$3" errors) | ${4:-} |"; }
  wrow() { echo "| $1 | $2 | $(wrps "$3") | $(ms "$(w "$3" p50_us)") | $(ms "$(w "$3" p99_us)") | $(ms "$(w "$3" p999_us)") | $(w "$3" socket_errors) | ${4:-} |"; }
  rrow() { echo "| $1 | $2 | $(kv "$tmp/$3.out" RAWDB qps) | $(ms "$(kv "$tmp/$3.out" RAWDB p50_us)") | $(ms "$(kv "$tmp/$3.out" RAWDB p99_us)") | $(ms "$(kv "$tmp/$3.out" RAWDB p999_us)") | $(kv "$tmp/$3.out" RAWDB errors) | |"; }
  grow "baseline: gRPC echo server, fixed ${summary_bytes}-byte summary" "closed x$concurrency" echo_max
  grow "gRPC GetPatientSummary, 50 entries (~${summary_bytes} bytes)" "closed x$concurrency" summary_max "$rss_summary"
  grow "gRPC GetPatientSummary" "open $half_rate/s (half of max)" summary_half
  grow "gRPC CreateGoal, durable" "closed x$write_clients" create_max "$rss_create"
  rrow "baseline: raw RocksDB synced WriteBatch (5 puts, store key layout, ${record_bytes}-byte record)" "x$write_clients" rawput
  rrow "baseline: raw RocksDB Get, \`current\` column family" "x$concurrency" rawget
  wrow "baseline: bare Beast server, fixed ${goal_bytes}-byte body" "wrk x$http_connections" http_baseline
  wrow "FHIR GET Goal/[id] (${goal_bytes} bytes)" "wrk x$http_connections" fhir_get "$rss_fhir_get"
  wrow "FHIR GET Goal?patient=X, 20 matches (${search_bytes} bytes)" "wrk x$http_connections" fhir_search "$rss_fhir_search"
  wrow "FHIR POST Goal, durable" "wrk x$write_clients" fhir_create "$rss_fhir_create"
  if [ "$growth" -eq 1 ]; then
    grow "growth: summary at $growth_records_small records" "open $half_rate/s" growth_summary_small
    wrow "growth: Goal?patient=X at $growth_records_small records" "wrk x$http_connections" growth_search_small "$growth_rss_small"
    grow "growth: summary at $growth_records_large records" "open $half_rate/s" growth_summary_large
    wrow "growth: Goal?patient=X at $growth_records_large records" "wrk x$http_connections" growth_search_large "$growth_rss_large"
  fi
  echo
  echo "Bulk import: $db_records records in ${import_secs} s through the domain core, WAL unsynced, verified after (wmty_datagen)$import_note."
  echo
  echo "Summaries answered from wmtyd's summary cache during the summary phases above (\`wmty_summary_cache_*\`,"
  echo "\`--summary_cache_mb\`): ${summary_hits} from memory, ${summary_misses} assembled from the store. Nothing"
  echo "writes to the bench patients, so after a patient's first read the cache answers; to measure the"
  echo "assembly from the store, run with \`--wmtyd_args=--summary_cache_mb=0\`."
  echo
  echo "Writes held back by RocksDB (flushes or compactions behind: \`wmty_rocksdb_write_stall_seconds_total\`):"
  echo "${stall_create} s during the $repeat × ${seconds} s of gRPC CreateGoal, ${stall_fhir_create} s during FHIR create."
  echo
  echo "## CPU per durable create"
  echo
  echo "Both processes share the machine's $(nproc) cores (the raw baseline has no client and no network)."
  echo "CPU used while recording, over the calls completed in that time (the median run of each):"
  echo
  echo "| | server µs/call | load client µs/call | together |"
  echo "|---|---:|---:|---:|"
  cpu_row() {
    local sv cl
    sv="$(g "$2" server_cpu_us)"; cl="$(g "$2" client_cpu_us)"
    echo "| $1 | $sv | $cl | $(calc "$sv + $cl" 1) |"
  }
  cpu_row "gRPC CreateGoal, durable, closed x$write_clients (${create_max}/s)" create_max
  cpu_row "gRPC echo of ${create_bytes} bytes, open loop at the same rate" echo_at_create_rate
  echo "| raw RocksDB synced WriteBatch x$write_clients (${raw_put}/s), one process | $(kv "$tmp/rawput.out" RAWDB cpu_us) | | |"
  echo
  echo "At ${create_max}/s the two processes use $(calc "$create_max * ($(g create_max server_cpu_us) + $(g create_max client_cpu_us)) / 1000000" 2) cores."
  echo "The echo row is what gRPC alone costs at that rate; [docs/performance.md](../../docs/performance.md)"
  echo "(\"CreateGoal: where the ceiling is\") explains what these figures mean for the 60% target."
  echo
  echo "## Repetitions"
  echo
  echo "Each of these ran $repeat time(s) (wmtyd's runs alternating with their baseline's where both run"
  echo "together); the median, in bold, is the figure used above."
  echo
  echo "| measurement | by | every repetition (with its p99 and p99.9) |"
  echo "|---|---|---|"
  cat "$tmp/repetitions.md"
  echo
  echo "## Latency against load"
  echo
  echo "![latency against load]($(basename "$out").png)"
  echo
  echo "gRPC: open loop at fractions of the closed-loop max; FHIR: wrk closed loop at $conn_sweep connections."
  echo "Data: [$(basename "$sweep")]($(basename "$sweep"))."
  echo
  echo "| series | offered | achieved/s | p50 ms | p99 ms | p99.9 ms | errors |"
  echo "|---|---:|---:|---:|---:|---:|---:|"
  tail -n +2 "$sweep" | awk -F'\t' '{ printf "| %s | %s | %s | %s | %s | %s | %s |\n", $1, $2, $3, $4, $5, $6, $7 }'
  echo
  echo "## Machine"
  echo
  echo "- CPU: ${cpu_model:-unknown}, $(nproc) cores online; RAM $mem_total"
  echo "- OS: $os_name, kernel $(uname -r); database on ${db_fs:-unknown}"
  echo "- Compiler: $cxx_version; build type ${build_type:-unknown}"
  echo "- Load average (1/5/15 min): $load_start at the start, $load_end at the end"
  echo "- Scheduler: $autogroup_text"
  echo "- Packages:"
  echo "$packages"
  echo
  echo "## Where the time goes"
  echo
  echo "Not profiled by run.sh: [docs/performance.md](../../docs/performance.md) has the profiles, what was"
  echo "changed because of them and how to profile a run (\"Profiling\")."
} >"$out.md"

# ---------------------------------------------------------------- plot
# One data file per series (gnuplot joins the points of a file with lines).
series_file() { awk -F'\t' -v s="$1" 'NR > 1 && $1 == s' "$sweep" >"$tmp/series-$2.tsv"; echo "$tmp/series-$2.tsv"; }
s_sum="$(series_file "gRPC GetPatientSummary" sum)"
s_echo="$(series_file "gRPC echo baseline" echo)"
s_create="$(series_file "gRPC CreateGoal (durable)" create)"
s_get="$(series_file "FHIR GET Goal/[id]" get)"
s_base="$(series_file "HTTP bare Beast baseline" base)"
cat >"$tmp/plot.gp" <<EOF
set terminal pngcairo size 1400,560 font ",10" noenhanced
set output "$out.png"
set datafile separator "\t"
set multiplot layout 1,2 title "wmty: latency against load ($mode_text, $(date -u +%Y-%m-%d), $(nproc) cores)"
set logscale y
set grid
set key top left
set xlabel "achieved requests/s"
set ylabel "latency (ms)"
set title "gRPC, open loop (wmty_grpc_load; latency from the scheduled send time)"
plot "$s_sum" using 3:5 with linespoints lw 2 lc 1 title "GetPatientSummary p99", \\
     "$s_sum" using 3:4 with linespoints dt 2 lc 1 title "GetPatientSummary p50", \\
     "$s_echo" using 3:5 with linespoints lw 2 lc 2 title "echo baseline p99", \\
     "$s_echo" using 3:4 with linespoints dt 2 lc 2 title "echo baseline p50", \\
     "$s_create" using 3:5 with linespoints lw 2 lc 3 title "CreateGoal (durable) p99", \\
     "$s_create" using 3:4 with linespoints dt 2 lc 3 title "CreateGoal (durable) p50"
set title "FHIR, wrk closed loop ($conn_sweep connections)"
plot "$s_get" using 3:5 with linespoints lw 2 lc 1 title "GET Goal/[id] p99", \\
     "$s_get" using 3:4 with linespoints dt 2 lc 1 title "GET Goal/[id] p50", \\
     "$s_base" using 3:5 with linespoints lw 2 lc 2 title "bare Beast p99", \\
     "$s_base" using 3:4 with linespoints dt 2 lc 2 title "bare Beast p50"
unset multiplot
EOF
if ! gnuplot "$tmp/plot.gp" >"$tmp/gnuplot.log" 2>&1; then
  # gnuplot without cairo: the libgd terminal.
  sed -i 's/^set terminal pngcairo size 1400,560 font ",10" noenhanced/set terminal png size 1400,560 noenhanced/' "$tmp/plot.gp"
  gnuplot "$tmp/plot.gp" >"$tmp/gnuplot.log" 2>&1 || die "gnuplot failed: $(cat "$tmp/gnuplot.log")"
fi

# ---------------------------------------------------------------- check
[ -s "$out.md" ] || die "$out.md was not written"
[ "$(head -c 4 "$out.png" | od -An -c | tr -d ' ')" = "211PNG" ] || die "$out.png is not a PNG"
for row in "gRPC GetPatientSummary (50-record patient)" "gRPC RecordGoal, durable" "FHIR GET Goal/\[id\]" \
  "FHIR Goal?patient=X (20 results)" "FHIR create, durable" "Growth" "Bulk import" "Memory"; do
  grep -q "^| $row" "$out.md" || die "$out.md has no row for target: $row"
done
expected_reps=$(( 9 + growth * 4 ))
[ "$(grep -c '^| .*\*\*[0-9.]* *[a-z]*\*\*' "$tmp/repetitions.md")" -eq "$expected_reps" ] ||
  die "$out.md: expected $expected_reps repeated measurements, each with its median marked"
sed -n '/^## Targets/,/^## Every/p' "$out.md" | sed '$d'
echo "wrote $out.md, $out.png, $sweep"
if [ "$quick" -eq 0 ] && sed -n '/^## Targets/,/^## Every/p' "$out.md" | grep -q 'FAIL'; then
  echo "run.sh: a target was missed" >&2
  exit 3
fi
