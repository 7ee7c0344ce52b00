# syntax=docker/dockerfile:1
# wmtyd container image (issue 8). Two stages:
#   build   - Debian 12 with the build packages of scripts/deps.sh; Release build of wmtyd and wmtyctl.
#   runtime - Debian 12 slim with only the shared libraries the two binaries load (ldd), a non-root user,
#             nothing writable: the root filesystem is mounted read-only in Kubernetes (k8s/), the
#             database and the backups live on volumes.
#
#   docker build -t wmty:0.1.0 .
#   docker run --read-only --user 10001:10001 -v wmty-data:/var/lib/wmty -v wmty-backups:/var/lib/wmty-backups \
#     -v $PWD/keys:/etc/wmty/auth:ro -p 50051:50051 wmty:0.1.0 --flagfile=/etc/wmty/wmtyd.flags
#
# Checked without a Docker engine by tests/deploy (ctest -L deploy): lint rules (docs/operations.md,
# "Container image"), and the runtime package list below must equal exactly the Debian packages that
# own the libraries `ldd wmtyd` and `ldd wmtyctl` resolve on Debian 12, minus those debian:12-slim
# already has (tests/deploy/debian-12-slim.packages).
#
# Base images: the Debian point release CI builds and tests on (/etc/debian_version 12.11). Pin a
# digest in your registry mirror for reproducible builds: --build-arg DEBIAN=debian:12.11-slim@sha256:...
ARG DEBIAN=debian:12.11-slim

FROM ${DEBIAN} AS build
SHELL ["/bin/bash", "-o", "pipefail", "-c"]
# The packages of scripts/deps.sh (WMTY_PACKAGES; Node.js from WMTY_NODE_PACKAGES for the app's npm
# package) that building wmtyd and wmtyctl needs; the test tools, benchmarks and fuzzing toolchain stay out (-DWMTY_BUILD_TESTS=OFF -DWMTY_BUILD_BENCH=OFF).
# Versions are not pinned: Debian stable only takes security and point-release fixes, and the
# runtime stage must get the same library versions as the build (both come from the same archive).
RUN apt-get update \
 && apt-get install -y --no-install-recommends \
      build-essential cmake ninja-build pkg-config \
      libgrpc++-dev protobuf-compiler-grpc libprotobuf-dev protobuf-compiler \
      libabsl-dev librocksdb-dev libcpprest-dev libboost-dev libssl-dev libjwt-dev \
      libjemalloc-dev rapidjson-dev nodejs npm \
 && rm -rf /var/lib/apt/lists/*
WORKDIR /src
COPY CMakeLists.txt ./
COPY cmake/ cmake/
COPY proto/ proto/
COPY services/ services/
COPY clients/ clients/
# The bedside app's fhirclient (clients/bedside/package-lock.json), whose browser build wmtyd embeds.
RUN npm ci --prefix clients/bedside --no-audit --no-fund \
 && cmake -S . -B /build -G Ninja -DCMAKE_BUILD_TYPE=Release -DWMTY_BUILD_TESTS=OFF -DWMTY_BUILD_BENCH=OFF \
 && cmake --build /build -j"$(nproc)" --target wmtyd wmtyctl \
 && install -D -m 0755 /build/services/server/wmtyd /out/usr/local/bin/wmtyd \
 && install -D -m 0755 /build/clients/cpp/wmtyctl /out/usr/local/bin/wmtyctl

FROM ${DEBIAN} AS runtime
SHELL ["/bin/bash", "-o", "pipefail", "-c"]
# Exactly the packages ldd asks for that debian:12-slim lacks (tests/deploy checks it both ways).
# libc6, libgcc-s1, libstdc++6, zlib1g, libzstd1, liblz4-1 and libbz2-1.0 are needed too and are
# already in debian:12-slim (apt depends on them). Plus ca-certificates, which no library asks for:
# the system trust store that --auth_jwks_url's https fetches check the authorization server against.
RUN apt-get update \
 && apt-get install -y --no-install-recommends \
      ca-certificates \
      libabsl20220623 \
      libbrotli1 \
      libc-ares2 \
      libcpprest2.10 \
      libgflags2.2 \
      libgrpc++1.51 \
      libgrpc29 \
      libjemalloc2 \
      libprotobuf32 \
      libre2-9 \
      librocksdb7.8 \
      libsnappy1v5 \
      libssl3 \
 && rm -rf /var/lib/apt/lists/* \
 && groupadd --system --gid 10001 wmty \
 && useradd --system --uid 10001 --gid 10001 --home-dir /nonexistent --no-create-home \
      --shell /usr/sbin/nologin wmty \
 && install -d -o 10001 -g 10001 -m 0750 /var/lib/wmty /var/lib/wmty-backups
COPY --from=build /out/ /
# Data and backups are volumes (k8s/: a PersistentVolumeClaim each); nothing else is written.
VOLUME ["/var/lib/wmty", "/var/lib/wmty-backups"]
WORKDIR /var/lib/wmty
# Numeric, so Kubernetes' runAsNonRoot can verify it without reading /etc/passwd.
USER 10001:10001
# gRPC, FHIR (HTTP), Prometheus metrics, gRPC health for the kubelet (plaintext, health only).
EXPOSE 50051 8080 9464 8086
ENTRYPOINT ["/usr/local/bin/wmtyd"]
CMD ["--data_dir=/var/lib/wmty/data", "--grpc_listen=0.0.0.0:50051", "--http_listen=0.0.0.0:8080"]
