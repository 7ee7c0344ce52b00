#!/usr/bin/env bash
# Installs the Debian 12 packages wmty needs, only those that are missing.
# Sourced by run.sh and test.sh; safe to run again (idempotent).
set -euo pipefail

WMTY_PACKAGES=(
  build-essential cmake ninja-build pkg-config
  libgrpc++-dev protobuf-compiler-grpc libprotobuf-dev protobuf-compiler
  libabsl-dev librocksdb-dev libcpprest-dev libboost-dev libssl-dev
  libgtest-dev libgmock-dev libbenchmark-dev libjwt-dev
  # wmtyd's allocator (cmake/WmtyAllocator.cmake)
  libjemalloc-dev
  rapidjson-dev
  # bench/json_choice_bench (the JSON library measurement) and bench/fhir_bench.sh
  nlohmann-json3-dev libsimdjson-dev wrk curl
  # tests/docs: the documentation's curl examples read ids from answers with jq
  jq
  # bench/run.sh: the latency-vs-load plot (PNG)
  gnuplot-nox
  # scripts/fuzz.sh: libFuzzer comes with clang 14 (libclang_rt.fuzzer in
  # libclang-rt-14-dev); the sanitizer runtimes of g++ come with build-essential
  clang libclang-rt-14-dev
  # scripts/check_format.sh and scripts/tidy.sh (clang-format and clang-tidy 14)
  clang-format clang-tidy
  # tests/bedside: the bedside app's end-to-end tests drive Debian's chromium
  # with playwright-core (no browser is downloaded)
  chromium
)

# Node.js for the FHIR conformance suite (tests/conformance). Installed from
# Debian only when `node` or `npm` is missing: where Node comes from another
# package (e.g. NodeSource's nodejs, which bundles npm), Debian's npm
# conflicts with it.
WMTY_NODE_PACKAGES=(nodejs npm)

wmty_install_deps() {
  local missing=()
  local pkg
  for pkg in "${WMTY_PACKAGES[@]}"; do
    if ! dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q "install ok installed"; then
      missing+=("$pkg")
    fi
  done
  if [ ${#missing[@]} -eq 0 ]; then
    return 0
  fi
  echo "Installing missing packages: ${missing[*]}"
  local sudo=""
  if [ "$(id -u)" -ne 0 ]; then sudo="sudo"; fi
  export DEBIAN_FRONTEND=noninteractive
  $sudo apt-get update -qq
  $sudo apt-get install -y -qq --no-install-recommends "${missing[@]}"
}

# Configures (once) and builds the tree in $1 with build type $2.
wmty_build() {
  local build_dir="$1" build_type="$2"
  shift 2
  local root
  root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
  if [ ! -f "$build_dir/build.ninja" ]; then
    cmake -S "$root" -B "$build_dir" -G Ninja -DCMAKE_BUILD_TYPE="$build_type" "$@"
  fi
  cmake --build "$build_dir" -j"$(nproc)"
}

# `npm ci` in $1 when its node_modules is missing or older than its lock file.
wmty_npm_ci() {
  local dir="$1" root
  root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
  if [ ! -f "$dir/node_modules/.package-lock.json" ] ||
     [ "$dir/package-lock.json" -nt "$dir/node_modules/.package-lock.json" ]; then
    echo "Installing npm packages (npm ci in ${dir#"$root"/})"
    (cd "$dir" && npm ci --no-audit --no-fund)
  fi
}

# Node.js (Debian's, when node or npm is missing) and the bedside app's npm
# package (clients/bedside: fhirclient, whose browser build the wmtyd build
# embeds), so building wmtyd works on a fresh machine.
wmty_install_app_deps() {
  local root
  root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
  wmty_install_node
  wmty_npm_ci "$root/clients/bedside"
}

wmty_install_node() {
  if ! command -v node >/dev/null || ! command -v npm >/dev/null; then
    echo "Installing Node.js: ${WMTY_NODE_PACKAGES[*]}"
    local sudo=""
    if [ "$(id -u)" -ne 0 ]; then sudo="sudo"; fi
    export DEBIAN_FRONTEND=noninteractive
    $sudo apt-get update -qq
    $sudo apt-get install -y -qq --no-install-recommends "${WMTY_NODE_PACKAGES[@]}"
  fi
}

# Node.js and the npm packages of the app and the test suites, from each
# package-lock.json with `npm ci`, when node_modules is missing or older than
# the lock file.
wmty_install_conformance_deps() {
  local root
  root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
  wmty_install_node
  local dir
  # clients/bedside: fhirclient, embedded into wmtyd by the build.
  # tests/deploy: the Dockerfile and k8s/ checks (kubernetes-models, dockerfile-utils, yaml).
  # tests/bedside: the bedside app's browser tests (playwright-core, axe-core, oidc-provider).
  for dir in "$root/clients/bedside" "$root/tests/conformance" "$root/tests/deploy" "$root/tests/bedside"; do
    wmty_npm_ci "$dir"
  done
}
