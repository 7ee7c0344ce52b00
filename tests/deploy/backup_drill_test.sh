#!/usr/bin/env bash
# The restore drill of k8s/base/backup-drill-cronjob.yaml, as the image runs it: a non-root user
# (uid 65534 here; 10001 in the image) restores the newest backup from a backup directory it can
# only read, into scratch space. Also the restore of k8s/ops/restore-job.yaml: its script, run
# against a data directory, puts the restored copy in place and keeps the old data aside.
# Usage: backup_drill_test.sh WMTYD WMTYCTL
set -euo pipefail
wmtyd="$1" wmtyctl="$2"
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
root="$(cd "$here/../.." && pwd)"
work="$(mktemp -d)"
pid=""
cleanup() { if [ -n "$pid" ]; then kill "$pid" 2>/dev/null || true; wait "$pid" 2>/dev/null || true; fi; rm -rf "$work"; }
trap cleanup EXIT
chmod 755 "$work"

"$wmtyd" --data_dir="$work/data" --grpc_listen=127.0.0.1:0 --http_listen= --auth_disabled \
  --backup_dir="$work/backups/wmty" --port_file="$work/port" >"$work/wmtyd.log" 2>&1 &
pid=$!
for _ in $(seq 100); do [ -s "$work/port" ] && break; sleep 0.1; done
[ -s "$work/port" ] || { cat "$work/wmtyd.log"; echo "FAIL: wmtyd did not start"; exit 1; }
export WMTY_TARGET="127.0.0.1:$(cat "$work/port")"
"$wmtyctl" create-goal --parent=patients/drill --goal.description="walk again" --goal.lifecycle_status=GOAL_ACTIVE \
  --goal.provenance.recorded_by.practitioner_id=rn-1 --goal.provenance.said_by.kind=PATIENT >/dev/null
"$wmtyctl" admin backup >/dev/null

# The drill: read-only backups, a different unprivileged user, the CronJob's arguments.
chmod -R a+rX,go-w "$work/backups"
mkdir "$work/scratch"
as_other=()
if [ "$(id -u)" = 0 ]; then  # as root: run the drill as another, unprivileged user
  chown 65534:65534 "$work/scratch"
  as_other=(setpriv --reuid=65534 --regid=65534 --clear-groups)
fi
args=$(node -e '
  const { readYamlFile } = await import(process.argv[1]);
  const cj = readYamlFile("k8s/base/backup-drill-cronjob.yaml")[0];
  const c = cj.spec.jobTemplate.spec.template.spec.containers[0];
  console.log(c.args.join("\n"));' --input-type=module "$here/lib/k8s.mjs")
mapfile -t drill <<<"${args//\/var\/lib\/wmty-backups/$work/backups}"
drill=("${drill[@]//\/scratch/$work/scratch}")
if ! "${as_other[@]}" "$wmtyctl" "${drill[@]}" >"$work/drill.out" 2>&1; then
  cat "$work/drill.out"; echo "FAIL: the restore drill failed"; exit 1
fi
grep -q "integrity: OK" "$work/drill.out" || { cat "$work/drill.out"; echo "FAIL: no integrity OK"; exit 1; }
echo "ok: restore drill (read-only backups, uid 65534)"

# The restore Job's script, with its paths pointed at this test's directories.
kill "$pid"; wait "$pid" || true; pid=""
script=$(node -e '
  const { readYamlFile } = await import(process.argv[1]);
  console.log(readYamlFile("k8s/ops/restore-job.yaml")[0].spec.template.spec.containers[0].args[0]);' \
  --input-type=module "$here/lib/k8s.mjs")
script="${script//\/usr\/local\/bin\/wmtyctl/$wmtyctl}"
script="${script//\/var\/lib\/wmty-backups/$work/backups}"
script="${script//\/var\/lib\/wmty/$work}"
BACKUP_ID="" bash -euo pipefail -c "$script" >"$work/restore.out" 2>&1 || { cat "$work/restore.out"; echo "FAIL: restore job script"; exit 1; }
ls -d "$work"/data.before-restore-* >/dev/null || { echo "FAIL: old data not kept aside"; exit 1; }
rm -f "$work/port"
"$wmtyd" --data_dir="$work/data" --grpc_listen=127.0.0.1:0 --http_listen= --auth_disabled --port_file="$work/port" \
  >"$work/wmtyd2.log" 2>&1 &
pid=$!
for _ in $(seq 100); do [ -s "$work/port" ] && break; sleep 0.1; done
export WMTY_TARGET="127.0.0.1:$(cat "$work/port")"
"$wmtyctl" get-patient-summary --parent=patients/drill | grep -q "walk again" || { echo "FAIL: restored data missing"; exit 1; }
echo "ok: restore job script (restored copy in place, old data kept aside, wmtyd serves it)"
echo "2 passed, 0 failed"
