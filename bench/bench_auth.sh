#!/usr/bin/env bash
# The credentials of a benchmark run with authentication on, as production has
# them: an RS256 signing key, its public half as a JWKS file (wmtyd
# --auth_jwks_file) and one access token signed with it, as an organization's
# authorization server issues to an EHR backend (client credentials).
# wmty_devtoken mints only HS256 tokens (development), so this uses openssl:
# wmtyd then checks RS256 signatures, as it does in production.
#
#   bench/bench_auth.sh DIR
#
# Writes DIR/key.pem (private, 0600), DIR/jwks.json and DIR/token (the JWT,
# one line). The token: iss wmty-bench, aud wmty (start wmtyd with
# --auth_issuer=wmty-bench --auth_audience=wmty), scope system/*.cruds,
# sub and fhirUser Practitioner/rn-bench (the recorder the bench writes
# name), kid bench-1, valid for 12 hours. Exit 0, or 1 when openssl fails.
set -euo pipefail

dir="${1:?usage: bench_auth.sh DIR}"
mkdir -p "$dir"
b64url() { base64 -w0 | tr '+/' '-_' | tr -d '='; }

(umask 077 && openssl genpkey -algorithm RSA -pkeyopt rsa_keygen_bits:2048 -out "$dir/key.pem" 2>/dev/null)
n="$(openssl rsa -in "$dir/key.pem" -noout -modulus | sed 's/^Modulus=//' | xxd -r -p | b64url)"
printf '{"keys":[{"kty":"RSA","kid":"bench-1","use":"sig","alg":"RS256","n":"%s","e":"AQAB"}]}\n' "$n" \
  >"$dir/jwks.json"

now="$(date +%s)"
header="$(printf '{"alg":"RS256","typ":"JWT","kid":"bench-1"}' | b64url)"
payload="$(printf '{"iss":"wmty-bench","aud":"wmty","sub":"Practitioner/rn-bench","fhirUser":"Practitioner/rn-bench","client_id":"wmty-bench","scope":"system/*.cruds","iat":%d,"exp":%d}' \
  "$now" $((now + 12 * 3600)) | b64url)"
signature="$(printf '%s.%s' "$header" "$payload" | openssl dgst -sha256 -sign "$dir/key.pem" -binary | b64url)"
echo "$header.$payload.$signature" >"$dir/token"
