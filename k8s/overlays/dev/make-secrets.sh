#!/usr/bin/env bash
# Makes the development secrets k8s/overlays/dev needs (git-ignored, never for production):
#   secrets/tls.crt, secrets/tls.key   self-signed, for the Services' DNS names
#   secrets/hs256.secret               HS256 key for wmty_devtoken
# Safe to run again: existing files are kept (delete them to rotate, then kubectl apply -k).
set -euo pipefail
dir="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)/secrets"
ns="${1:-wmty-dev}"
mkdir -p "$dir"
chmod 700 "$dir"
if [ ! -s "$dir/hs256.secret" ]; then
  (umask 077 && head -c 48 /dev/urandom | base64 -w0 >"$dir/hs256.secret")
fi
if [ ! -s "$dir/tls.key" ] || [ ! -s "$dir/tls.crt" ]; then
  (umask 077 && openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -days 90 \
    -subj "/CN=wmty-grpc.$ns.svc" \
    -addext "subjectAltName=DNS:wmty-grpc.$ns.svc,DNS:wmty-http.$ns.svc,DNS:wmty-0.wmty-headless.$ns.svc,DNS:localhost,IP:127.0.0.1" \
    -keyout "$dir/tls.key" -out "$dir/tls.crt" 2>/dev/null)
fi
echo "development secrets in $dir"
