#!/usr/bin/env bash
# Installs the client library into a temp prefix, builds an outside project
# against it with find_package(wmtyClient), and runs it against a real wmtyd.
set -euo pipefail
build_dir="$1" source_dir="$2" wmtyd="$3"
work="$(mktemp -d)"
server_pid=""
cleanup() {
  if [ -n "$server_pid" ]; then kill -9 "$server_pid" 2>/dev/null || true; fi
  rm -rf "$work"
}
trap cleanup EXIT

cmake --install "$build_dir" --prefix "$work/prefix" >/dev/null
# A sanitizer build (WMTY_SANITIZE) installs instrumented libraries: the
# consumer needs the same flags (WMTY_CONSUMER_CXX_FLAGS, set by ctest there).
cmake -S "$source_dir/tests/install/consumer" -B "$work/consumer" -G Ninja \
  -DCMAKE_PREFIX_PATH="$work/prefix" -DCMAKE_BUILD_TYPE=Release \
  -DCMAKE_CXX_FLAGS="${WMTY_CONSUMER_CXX_FLAGS:-}" -DCMAKE_EXE_LINKER_FLAGS="${WMTY_CONSUMER_CXX_FLAGS:-}" >/dev/null
cmake --build "$work/consumer" >/dev/null

"$wmtyd" --data_dir="$work/data" --grpc_listen=127.0.0.1:0 --http_listen=127.0.0.1:0 --auth_disabled --port_file="$work/port" \
  2>"$work/log" &
server_pid=$!
for _ in $(seq 1 300); do [ -s "$work/port" ] && break; sleep 0.05; done
port="$(cat "$work/port")"

out="$("$work/consumer/consumer" "127.0.0.1:$port")"
echo "$out"
[[ "$out" == "goals=1 first=patients/install-check/goals/"* ]] || { echo "unexpected output"; exit 1; }
[[ "$out" == *"violation=goal.description"* ]] || { echo "missing violation"; exit 1; }
goal="${out#*first=}" goal="${goal%% *}"
[[ "$out" == *" watched=$goal" ]] || { echo "the watch did not bring the goal's creation"; exit 1; }
echo "install test passed"
