// Starts the real wmtyd for one test file: a fresh data directory, gRPC and
// HTTP on loopback port 0, the HTTP port learned from --http_port_file.
// The binary is $WMTYD (set by ctest and by run.mjs), else the usual build
// directories are tried.
import { spawn } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { setTimeout as sleep } from 'node:timers/promises';

const here = dirname(fileURLToPath(import.meta.url));
const repoRoot = resolve(here, '../../..');

export function wmtydPath() {
  if (process.env.WMTYD) return process.env.WMTYD;
  for (const dir of ['build', 'build-release', 'build-conf']) {
    const p = join(repoRoot, dir, 'services/server/wmtyd');
    if (existsSync(p)) return p;
  }
  throw new Error('wmtyd not found: set WMTYD=/path/to/wmtyd (ctest sets it)');
}

// Returns { baseUrl, port, dataDir, stop(), kill(), log() }. stop() sends
// SIGTERM, waits for exit (SIGKILL after 10 s) and removes the data
// directory; kill() sends SIGKILL and waits (a crash), keeping it. With
// `dataDir` the server runs on that directory (e.g. again after a kill) and
// stop() leaves it for the caller to remove.
export async function startServer({ extraArgs = [], dataDir: reuse } = {}) {
  const bin = wmtydPath();
  const dataDir = reuse ?? mkdtempSync(join(tmpdir(), 'wmty-conformance-'));
  const removeData = () => {
    if (!reuse) rmSync(dataDir, { recursive: true, force: true });
  };
  const portFile = join(dataDir, 'http.port');
  rmSync(portFile, { force: true });
  const args = [
    `--data_dir=${join(dataDir, 'db')}`,
    '--grpc_listen=127.0.0.1:0',
    '--auth_disabled', // the suite tests FHIR behaviour; authentication has its own tests
    '--http_listen=127.0.0.1:0',
    `--http_port_file=${portFile}`,
    ...extraArgs,
  ];
  const child = spawn(bin, args, { stdio: ['ignore', 'pipe', 'pipe'] });
  let output = '';
  const keep = (chunk) => {
    output += chunk.toString();
    if (output.length > 200_000) output = output.slice(-100_000);
  };
  child.stdout.on('data', keep);
  child.stderr.on('data', keep);
  let exited = null;
  const exitPromise = new Promise((res) => {
    child.on('exit', (code, signal) => {
      exited = { code, signal };
      res(exited);
    });
  });

  const deadline = Date.now() + 30_000;
  let port = 0;
  while (Date.now() < deadline) {
    if (exited) {
      removeData();
      throw new Error(`wmtyd exited before serving (${JSON.stringify(exited)}): ${bin} ${args.join(' ')}\n${output}`);
    }
    if (existsSync(portFile)) {
      port = parseInt(readFileSync(portFile, 'utf8').trim(), 10);
      if (port > 0) break;
    }
    await sleep(50);
  }
  if (!port) {
    child.kill('SIGKILL');
    removeData();
    throw new Error(`wmtyd did not write ${portFile} within 30 s\n${output}`);
  }

  const baseUrl = `http://127.0.0.1:${port}/fhir`;
  return {
    baseUrl,
    port,
    dataDir,
    log: () => output,
    async stop() {
      if (!exited) {
        child.kill('SIGTERM');
        const timer = setTimeout(() => child.kill('SIGKILL'), 10_000);
        await exitPromise;
        clearTimeout(timer);
      }
      removeData();
      return exited;
    },
    async kill() {
      if (!exited) {
        child.kill('SIGKILL');
        await exitPromise;
      }
      return exited;
    },
  };
}
