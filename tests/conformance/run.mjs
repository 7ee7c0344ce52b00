#!/usr/bin/env node
// Runs the FHIR conformance suite against a wmtyd binary:
//   node run.mjs [path/to/wmtyd] [more `node --test` options, e.g. --test-name-pattern=List]
// Without a path, $WMTYD is used, else build/, build-release/ or build-conf/.
// Each test file starts its own wmtyd (temp data dir, ports picked by the
// OS) and stops it at the end.
import { spawnSync } from 'node:child_process';
import { existsSync, readdirSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

const here = dirname(fileURLToPath(import.meta.url));
const args = process.argv.slice(2);
const env = { ...process.env };
if (args.length > 0 && !args[0].startsWith('-')) env.WMTYD = resolve(args.shift());
if (!existsSync(join(here, 'node_modules', 'fhir-kit-client'))) {
  console.error(`node_modules missing: run \`npm ci\` in ${here} (scripts/test.sh does)`);
  process.exit(2);
}
const files = readdirSync(join(here, 'test'))
  .filter((f) => f.endsWith('.test.mjs'))
  .sort()
  .map((f) => join('test', f));
const r = spawnSync(
  process.execPath,
  ['--test', '--test-concurrency=1', '--test-timeout=120000', ...args, ...files],
  { cwd: here, env, stdio: 'inherit' },
);
process.exit(r.status ?? 1);
