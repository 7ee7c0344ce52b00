#!/usr/bin/env bash
# One command: install what is missing, build (Release), start wmtyd on the
# embedded RocksDB default (data in ./data, gRPC on 127.0.0.1:50051, FHIR R4 on
# http://127.0.0.1:8080/fhir, the bedside app at http://127.0.0.1:8080/bedside/, metrics at
# http://127.0.0.1:9464/metrics).
#
# Authentication is on: the first run makes a local development key
# (.wmty-dev/hs256.secret) and every run prints a ready-to-use token (8 h,
# user/*.cruds), and the bedside app offers its "Development sign-in".
# Production uses --auth_jwks_url and the --smart_* flags of your
# authorization server instead (docs/security.md). Extra arguments go to wmtyd.
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
# shellcheck source=deps.sh
source "$root/scripts/deps.sh"
wmty_install_deps
wmty_install_app_deps
wmty_build "$root/build-release" Release -DWMTY_BUILD_TESTS=OFF -DWMTY_BUILD_BENCH=OFF
cd "$root"

dev="$root/.wmty-dev"
secret="$dev/hs256.secret"
if [ ! -s "$secret" ]; then
  mkdir -p "$dev"
  chmod 700 "$dev"
  (umask 077 && head -c 48 /dev/urandom | base64 -w0 >"$secret")
  echo "Made a development signing key: $secret"
fi
token="$("$root/build-release/services/auth/wmty_devtoken" --secret_file="$secret" --issuer=wmty-dev \
  --audience=wmty --scope='user/*.cruds' --ttl=8h)"
cat <<MSG
Development token (8 h, user/*.cruds):
  export WMTY_TOKEN=$token
Bedside app (nurses; signs in with this token):
  http://127.0.0.1:8080/bedside/#token=$token
The app opens only patients the hospital's systems sent to wmty. A demo patient p1, sent as a feed would:
  curl -X PUT -H "Authorization: Bearer \$WMTY_TOKEN" -H 'Content-Type: application/fhir+json' \\
    http://127.0.0.1:8080/fhir/Patient/p1 -d '{"resourceType":"Patient","id":"p1","identifier":[{"system":
    "urn:oid:2.16.840.1.113883.19.5","value":"448812"}],"name":[{"family":"Santos","given":["Maria"]}],"birthDate":"1950-03-14"}'
Then:
  build-release/clients/cpp/wmtyctl get-patient-summary --parent=patients/p1
  curl -H "Authorization: Bearer \$WMTY_TOKEN" 'http://127.0.0.1:8080/fhir/Goal?patient=p1'
  curl http://127.0.0.1:9464/metrics        # Prometheus metrics
Starting wmtyd (Ctrl-C to stop).
MSG
exec "$root/build-release/services/server/wmtyd" --data_dir=./data --grpc_listen=127.0.0.1:50051 \
  --auth_hs256_secret_file="$secret" --auth_issuer=wmty-dev --auth_audience=wmty \
  --metrics_listen=127.0.0.1:9464 "$@"
