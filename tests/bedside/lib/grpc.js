// The gRPC face, read with the real client: the built wmtyctl (its --json
// output uses the proto field names) against the test's wmtyd. Used to check
// that what the bedside app shows is what both faces return.
import { execFile } from 'node:child_process';
import { existsSync } from 'node:fs';
import { dirname, resolve } from 'node:path';
import { promisify } from 'node:util';

import { wmtydPath } from '../../conformance/lib/server.js';

const run = promisify(execFile);

export function wmtyctlPath() {
  if (process.env.WMTYCTL) return process.env.WMTYCTL;
  const p = resolve(dirname(wmtydPath()), '../../clients/cpp/wmtyctl');
  if (existsSync(p)) return p;
  throw new Error('wmtyctl not found next to wmtyd: set WMTYCTL=/path/to/wmtyctl');
}

// Runs `wmtyctl --json <command> <flags>` as the token's user; resolves the parsed response.
export async function wmtyctl(server, command, flags = [], token = server.token()) {
  const { stdout } = await run(wmtyctlPath(), [`--target=${server.grpcTarget}`, '--timeout=30s', '--json', command,
    ...flags], { env: { ...process.env, WMTY_TOKEN: token }, encoding: 'utf8' });
  return JSON.parse(stdout);
}

// Every current preference of a patient, over gRPC.
export async function grpcPreferences(server, patientId) {
  const r = await wmtyctl(server, 'list-preferences', [`--parent=patients/${patientId}`, '--page_size=100']);
  return r.preferences || [];
}
