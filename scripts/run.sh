#!/usr/bin/env bash
# One command: install what is missing, build (Release), start wmtyd on the
# embedded RocksDB default (data in ./data, gRPC on 127.0.0.1:50051).
# Extra arguments go to wmtyd, e.g. scripts/run.sh --grpc_listen=0.0.0.0:50051
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
# shellcheck source=deps.sh
source "$root/scripts/deps.sh"
wmty_install_deps
wmty_build "$root/build-release" Release -DWMTY_BUILD_TESTS=OFF -DWMTY_BUILD_BENCH=OFF
cd "$root"
echo "Starting wmtyd (Ctrl-C to stop). Try: build-release/clients/cpp/wmtyctl help"
exec "$root/build-release/services/server/wmtyd" --data_dir=./data --grpc_listen=127.0.0.1:50051 "$@"
