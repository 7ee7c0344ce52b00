// The documentation's examples, run against the real wmtyd so they cannot
// drift from what the server does (issue 17).
//
// What runs: every fenced ```sh / ```bash block in README.md, docs/*.md and
// clients/**/README.md that calls curl, wmtyctl (also as $ctl), wmty_devtoken
// or ehr-plugin-example (also as $ex). A block that cannot run here (it needs
// Kubernetes, Docker, or starts its own server) says so in its info string:
// ```sh no-run: <reason>. The reason is required and the list of such blocks
// is printed, so nothing is left out silently. Output shown to the reader goes
// in ```text. An example in an INDENTED code block (4 spaces) would never be
// run, so a line of one that starts with one of those commands fails the test
// "no example hides in an indented code block": fence it.
//
// How: one fresh wmtyd per document (authentication on, the HS256 key that
// scripts/run.sh uses, in .wmty-dev/hs256.secret of the working directory,
// issuer wmty-dev, audience wmty; --backup_dir set, for the admin examples),
// and the document's blocks run in order in one bash (`set -eo pipefail`), so
// a variable set in one block is seen by the next, as it is for a reader.
// Before running, the text is rewritten only where a reader's machine differs
// from the test's:
//   127.0.0.1:8080 / :50051 / :9464   -> the test server's HTTP / gRPC / metrics ports
//   build-release/, build/            -> the build tree under test
//   `export NAME=...` (a placeholder)  -> removed; the test supplies NAME
//                                        (WMTY_TOKEN, WMTY_TARGET) and fails on any other
// Every curl's HTTP status is checked: 2xx, or the status written as a
// trailing comment on the curl's first line (`curl ... # 404`). wmtyctl and
// the other commands must exit 0 (a `... || true` in the doc shows an
// expected failure).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync, spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, symlinkSync, writeFileSync }
  from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join, relative, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { randomBytes } from 'node:crypto';
import { setTimeout as sleep } from 'node:timers/promises';

import { startServer, wmtydPath } from '../conformance/lib/server.js';

const here = dirname(fileURLToPath(import.meta.url));
const repoRoot = resolve(here, '../..');
const EXAMPLE = /(^|[\s;&|(`])(curl|wmtyctl|\$ctl|wmty_devtoken|ehr-plugin-example|\$ex)\s/m;
// A line that starts an example command (after an optional `$ ` prompt).
const COMMAND = /^(\$\s+)?(curl|wmtyctl|\$ctl|wmty_devtoken|ehr-plugin-example|\$ex)(\s|$)/;
const SUPPLIED = new Set(['WMTY_TOKEN', 'WMTY_TARGET']);

// The build tree wmtyd comes from (build/services/server/wmtyd -> build).
const buildDir = resolve(dirname(wmtydPath()), '../..');

function docFiles() {
  const files = ['README.md'];
  for (const f of readdirSync(join(repoRoot, 'docs'))) if (f.endsWith('.md')) files.push(`docs/${f}`);
  for (const c of readdirSync(join(repoRoot, 'clients'))) {
    if (existsSync(join(repoRoot, 'clients', c, 'README.md'))) files.push(`clients/${c}/README.md`);
  }
  return files;
}

// Fenced blocks of a Markdown file: { info, body, line }.
export function fencedBlocks(text) {
  const blocks = [];
  const lines = text.split('\n');
  for (let i = 0; i < lines.length; i++) {
    const open = /^\s*```(.*)$/.exec(lines[i]);
    if (!open) continue;
    const start = i;
    const body = [];
    for (i++; i < lines.length && !/^\s*```\s*$/.test(lines[i]); i++) body.push(lines[i]);
    blocks.push({ info: open[1].trim(), body: body.join('\n'), line: start + 1 });
  }
  return blocks;
}

// Lines of indented code blocks (4 or more spaces, begun after a blank line,
// outside fenced blocks) that start an example command: { line, text }. Such
// an example is invisible to the runner above.
export function indentedExamples(text) {
  const found = [];
  const lines = text.split('\n');
  let fenced = false;
  let inBlock = false;
  for (let i = 0; i < lines.length; i++) {
    const line = lines[i];
    if (fenced) {
      if (/^\s*```\s*$/.test(line)) fenced = false;
      continue;
    }
    if (/^\s*```/.test(line)) {
      fenced = true;
      inBlock = false;
      continue;
    }
    if (/^\s*$/.test(line)) continue; // a blank line neither begins nor ends an indented block
    if (/^ {4,}\S/.test(line) && (inBlock || i === 0 || /^\s*$/.test(lines[i - 1]))) {
      inBlock = true;
      if (COMMAND.test(line.trim())) found.push({ line: i + 1, text: line.trim() });
    } else {
      inBlock = false;
    }
  }
  return found;
}

function isShell(info) {
  return /^(sh|bash|shell)\b/.test(info);
}

// The expected status of each curl call, in the order they appear.
export function expectedStatuses(script) {
  const out = [];
  for (const line of script.split('\n')) {
    if (/^\s*#/.test(line)) continue;
    const calls = line.match(/(^|[\s;&|(`])curl\s/g) || [];
    const status = /#\s*([1-5]\d\d)\b[^#]*$/.exec(line);
    for (let k = 0; k < calls.length; k++) out.push(status && k === calls.length - 1 ? status[1] : '2xx');
  }
  return out;
}

function rewrite(body, ports) {
  let text = body
    .replaceAll('127.0.0.1:8080', `127.0.0.1:${ports.http}`)
    .replaceAll('127.0.0.1:50051', `127.0.0.1:${ports.grpc}`)
    .replaceAll('127.0.0.1:9464', `127.0.0.1:${ports.metrics}`);
  const lines = [];
  for (const line of text.split('\n')) {
    const placeholder = /^\s*export\s+([A-Z_][A-Z0-9_]*)=\.\.\.(\s|$)/.exec(line);
    if (placeholder) {
      assert.ok(SUPPLIED.has(placeholder[1]), `placeholder ${placeholder[1]}=... is not one the test supplies`);
      continue;
    }
    lines.push(line);
  }
  return lines.join('\n');
}

const PRELUDE = String.raw`
set -eo pipefail
curl() {
  command curl --max-time 30 -w '%{stderr}@@doc-curl %{http_code}\n' "$@"
}
trap 'echo "@@doc-failed line $LINENO: $BASH_COMMAND" >&2' ERR
`;

async function startDocServer(workDir) {
  const dev = join(workDir, '.wmty-dev');
  mkdirSync(dev, { mode: 0o700 });
  const secret = join(dev, 'hs256.secret');
  writeFileSync(secret, randomBytes(48).toString('base64'), { mode: 0o600 });
  const grpcPortFile = join(workDir, 'grpc.port');
  const server = await startServer({
    extraArgs: ['--auth_disabled=false', `--auth_hs256_secret_file=${secret}`, '--auth_issuer=wmty-dev',
      '--auth_audience=wmty', `--port_file=${grpcPortFile}`, '--metrics_listen=127.0.0.1:0',
      `--metrics_port_file=${join(workDir, 'metrics.port')}`, `--backup_dir=${join(workDir, 'backups')}`],
  });
  // The HTTP port file comes first; the others follow once each listener serves.
  const readPort = async (f) => {
    for (let i = 0; i < 600; i++) {
      const p = join(workDir, f);
      const port = existsSync(p) ? parseInt(readFileSync(p, 'utf8').trim(), 10) : 0;
      if (port > 0) return port;
      await sleep(50);
    }
    throw new Error(`wmtyd wrote no ${f}`);
  };
  try {
    const ports = { http: server.port, grpc: await readPort('grpc.port'), metrics: await readPort('metrics.port') };
    return { server, secret, ports };
  } catch (err) {
    await server.stop();
    throw err;
  }
}

function devtoken(secret, scope) {
  return execFileSync(join(buildDir, 'services/auth/wmty_devtoken'), [`--secret_file=${secret}`, '--issuer=wmty-dev',
    '--audience=wmty', `--scope=${scope}`, '--subject=Practitioner/rn-17', '--ttl=1h'], { encoding: 'utf8' }).trim();
}

const documents = [];
const notRun = [];
for (const file of docFiles()) {
  const blocks = fencedBlocks(readFileSync(join(repoRoot, file), 'utf8'))
    .filter((b) => isShell(b.info) && EXAMPLE.test(b.body));
  const run = [];
  for (const b of blocks) {
    const skip = /\bno-run\b:?\s*(.*)$/.exec(b.info);
    if (skip) notRun.push({ file, line: b.line, reason: skip[1].trim() });
    else run.push(b);
  }
  if (run.length) documents.push({ file, blocks: run });
}

test('every example block that is not run says why', () => {
  for (const n of notRun) {
    assert.ok(n.reason.length > 0, `${n.file}:${n.line}: "no-run" needs a reason`);
    console.log(`not run: ${n.file}:${n.line} (${n.reason})`);
  }
  assert.ok(documents.length > 0, 'no runnable examples found');
});

test('no example hides in an indented code block', () => {
  const hidden = [];
  for (const file of docFiles()) {
    for (const h of indentedExamples(readFileSync(join(repoRoot, file), 'utf8'))) {
      hidden.push(`${file}:${h.line}: ${h.text}`);
    }
  }
  assert.deepEqual(hidden, [], 'these examples are in indented code blocks, which this test does not run: ' +
    'fence each as ```sh (runnable as written), ```sh no-run: <reason>, or ```text (output)');
});

for (const doc of documents) {
  test(`the examples in ${doc.file} run as written`, async () => {
    const workDir = mkdtempSync(join(tmpdir(), 'wmty-doc-'));
    const { server, secret, ports } = await startDocServer(workDir);
    try {
      for (const name of ['build', 'build-release']) symlinkSync(buildDir, join(workDir, name));
      const parts = [PRELUDE];
      const expected = [];
      for (const b of doc.blocks) {
        const script = rewrite(b.body, ports);
        expected.push(...expectedStatuses(script));
        parts.push(`echo "@@doc-block ${doc.file}:${b.line}" >&2`, script);
      }
      const env = {
        ...process.env,
        WMTY_TOKEN: devtoken(secret, 'user/*.cruds'),
        WMTY_TARGET: `127.0.0.1:${ports.grpc}`,
        PATH: [join(buildDir, 'clients/cpp'), join(buildDir, 'services/auth'), join(buildDir, 'services/server'),
          join(buildDir, 'clients/ehr-plugin-example'), process.env.PATH].join(':'),
      };
      const res = spawnSync('bash', ['-c', parts.join('\n')], { cwd: workDir, env, encoding: 'utf8',
        timeout: 240_000, maxBuffer: 64 * 1024 * 1024 });
      const where = (res.stderr.match(/@@doc-block (\S+)/g) || []).pop() || doc.file;
      const context = `${where.replace('@@doc-block ', '')}\n--- stderr ---\n${res.stderr.slice(-4000)}` +
        `\n--- stdout ---\n${res.stdout.slice(-2000)}`;
      assert.equal(res.status, 0, `a command failed in ${context}`);
      const got = [...res.stderr.matchAll(/@@doc-curl (\d{3})/g)].map((m) => m[1]);
      assert.equal(got.length, expected.length, `curl calls made vs written in ${doc.file}\n${context}`);
      got.forEach((status, i) => {
        const ok = expected[i] === '2xx' ? /^2\d\d$/.test(status) : status === expected[i];
        assert.ok(ok, `curl #${i + 1} in ${doc.file}: HTTP ${status}, the doc says ${expected[i]}\n${context}`);
      });
    } finally {
      await server.stop();
      rmSync(workDir, { recursive: true, force: true });
    }
  });
}

test('the log line format in docs/operations.md is what wmtyd writes', async () => {
  const doc = readFileSync(join(repoRoot, 'docs/operations.md'), 'utf8');
  const documented = /Logs are JSON lines on stderr \(`\{(.*?)<fields>\}`\)/.exec(doc);
  assert.ok(documented, 'operations.md documents the log line format');
  const keys = [...documented[1].matchAll(/"(\w+)":/g)].map((m) => m[1]);
  const workDir = mkdtempSync(join(tmpdir(), 'wmty-doc-'));
  const { server } = await startDocServer(workDir);
  try {
    const line = server.log().split('\n').find((l) => l.startsWith('{'));
    assert.ok(line, 'wmtyd logged a JSON line');
    assert.deepEqual(Object.keys(JSON.parse(line)).slice(0, keys.length), keys);
  } finally {
    await server.stop();
    rmSync(workDir, { recursive: true, force: true });
  }
});
