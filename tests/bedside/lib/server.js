// The real wmtyd for the bedside tests, with authentication on (HS256 dev
// key, like scripts/run.sh), serving the bedside app. Reuses the
// conformance suite's launcher (tests/conformance/lib/server.js: temp data
// dir, port 0, --http_port_file, SIGTERM stop) unchanged: its --auth_disabled
// is overridden by a later --auth_disabled=false (the last flag wins).
//
// The app is the copy compiled into wmtyd (what ships), unless
// WMTY_BEDSIDE_DIR is set (serve clients/bedside from disk while developing).
import { execFileSync } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { randomBytes } from 'node:crypto';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

import { startServer, wmtydPath } from '../../conformance/lib/server.js';

const here = dirname(fileURLToPath(import.meta.url));
const repoRoot = resolve(here, '../../..');
const ISSUER = 'wmty-bedside-test';
const AUDIENCE = 'wmty';

export function devtokenPath() {
  if (process.env.WMTY_DEVTOKEN) return process.env.WMTY_DEVTOKEN;
  const wmtyd = wmtydPath();
  const sibling = resolve(dirname(wmtyd), '../auth/wmty_devtoken');
  if (existsSync(sibling)) return sibling;
  for (const dir of ['build', 'build-release', 'build-bedside']) {
    const p = join(repoRoot, dir, 'services/auth/wmty_devtoken');
    if (existsSync(p)) return p;
  }
  throw new Error('wmty_devtoken not found: set WMTY_DEVTOKEN=/path/to/wmty_devtoken (ctest sets it)');
}

// wmtyd writes the gRPC port file last (after the HTTP one the launcher waits for).
async function grpcPort(file, server) {
  for (let i = 0; i < 600; i++) {
    if (existsSync(file)) return readFileSync(file, 'utf8').trim();
    await new Promise((res) => { setTimeout(res, 50); });
  }
  throw new Error(`wmtyd wrote no gRPC port file\n${server.log()}`);
}

// Returns { origin, appUrl, baseUrl, grpcTarget, token(scope?, ttl?, subject?), stop() }.
export async function startWmtyd() {
  const keyDir = mkdtempSync(join(tmpdir(), 'wmty-bedside-key-'));
  const secret = join(keyDir, 'hs256.secret');
  writeFileSync(secret, randomBytes(48).toString('base64'), { mode: 0o600 });
  const extraArgs = ['--auth_disabled=false', `--auth_hs256_secret_file=${secret}`, `--auth_issuer=${ISSUER}`,
    `--auth_audience=${AUDIENCE}`, `--port_file=${join(keyDir, 'grpc.port')}`];
  if (process.env.WMTY_BEDSIDE_DIR) extraArgs.push(`--bedside_dir=${resolve(process.env.WMTY_BEDSIDE_DIR)}`);
  let server;
  try {
    server = await startServer({ extraArgs });
  } catch (err) {
    rmSync(keyDir, { recursive: true, force: true });
    throw err;
  }
  let grpcTarget;
  try {
    grpcTarget = `127.0.0.1:${await grpcPort(join(keyDir, 'grpc.port'), server)}`;
  } catch (err) {
    await server.stop();
    rmSync(keyDir, { recursive: true, force: true });
    throw err;
  }
  const origin = `http://127.0.0.1:${server.port}`;
  // subject: sub and fhirUser (wmty_devtoken's default is Practitioner/dev).
  const token = (scope = 'user/*.cruds', ttl = '1h', subject = undefined) => execFileSync(devtokenPath(), [
    `--secret_file=${secret}`, `--issuer=${ISSUER}`, `--audience=${AUDIENCE}`, `--scope=${scope}`, `--ttl=${ttl}`,
    ...(subject ? [`--subject=${subject}`] : []),
  ], { encoding: 'utf8' }).trim();
  return {
    origin,
    appUrl: `${origin}/bedside/`,
    baseUrl: server.baseUrl,
    // The gRPC face of the same server (wmtyctl --target).
    grpcTarget,
    token,
    log: server.log,
    async stop() {
      const exit = await server.stop();
      rmSync(keyDir, { recursive: true, force: true });
      return exit;
    },
  };
}
