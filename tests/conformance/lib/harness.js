// Per test file: one fresh wmtyd, one client. Use as
//   const ctx = serverPerFile();   // then ctx.fhir, ctx.server in tests
import { after, before } from 'node:test';

import { Fhir } from './fhir.js';
import { writeHeaders } from './fixtures.js';
import { startServer } from './server.js';

export function serverPerFile() {
  const ctx = { server: null, fhir: null };
  before(async () => {
    ctx.server = await startServer();
    ctx.fhir = new Fhir(ctx.server.baseUrl);
  });
  after(async () => {
    if (!ctx.server) return;
    const exit = await ctx.server.stop();
    // A clean SIGTERM shutdown exits 0; anything else is a server bug.
    if (exit && exit.code !== 0) {
      throw new Error(`wmtyd did not shut down cleanly: ${JSON.stringify(exit)}\n${ctx.server.log().slice(-4000)}`);
    }
  });
  return ctx;
}

// Creates each body in order (each must answer 201) and returns the created
// resources.
export async function createAll(fhir, bodies) {
  const out = [];
  for (const body of bodies) {
    const r = await fhir.create(body, writeHeaders());
    if (r.status !== 201) {
      throw new Error(`setup: ${r.what} answered ${r.status}: ${JSON.stringify(r.body)?.slice(0, 1000)}`);
    }
    out.push(r.body);
  }
  return out;
}

export function sameSet(actual, expected) {
  return [...actual].sort().join(',') === [...expected].sort().join(',');
}
