// Crash safety of Subscription delivery: goals are written without pause
// while wmtyd is killed with SIGKILL several times (and restarted on the same
// data directory). Once it settles, every acknowledged write has produced its
// notification at the receiver; event numbers run 1..N without a gap; a
// number seen twice (a redelivery after a crash) names the same focus both
// times, and no focus has two numbers. Writes that were in flight at a kill
// may have been committed without an answer: their events may appear too.
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { after, describe, it } from 'node:test';

import { Fhir, assertStatus } from '../lib/fhir.js';
import { goal, newPatientId, writeHeaders } from '../lib/fixtures.js';
import { startReceiver } from '../lib/receiver.js';
import { startServer } from '../lib/server.js';
import { subscription, topicsOf } from '../lib/subscriptions.js';

const KILLS = Number(process.env.WMTY_SUBSCRIPTION_KILLS ?? 4);
const dataDir = mkdtempSync(join(tmpdir(), 'wmty-subscription-crash-'));
const args = ['--subscription_allow_private_endpoints'];
let server = null;
let receiver = null;

after(async () => {
  await receiver?.close();
  await server?.stop();
  rmSync(dataDir, { recursive: true, force: true });
});

// Writes goals one after another until stop() is called; keeps the ids of
// the acknowledged ones. A write to a dead server fails and is not counted.
function writer(patient) {
  const w = { acked: [], failed: 0, baseUrl: null, running: true };
  w.done = (async () => {
    while (w.running) {
      try {
        const res = await fetch(`${w.baseUrl}/Goal`, {
          method: 'POST',
          headers: { 'Content-Type': 'application/fhir+json', ...writeHeaders() },
          body: JSON.stringify(goal(patient)),
          signal: AbortSignal.timeout(5000),
        });
        if (res.status === 201) w.acked.push((await res.json()).id);
        else w.failed++;
      } catch {
        w.failed++;
        await sleep(20);
      }
    }
  })();
  return w;
}

describe('subscription delivery survives SIGKILL', () => {
  it(`every acknowledged write is notified across ${KILLS} kills, numbered without gaps`, async () => {
    receiver = await startReceiver();
    server = await startServer({ extraArgs: args, dataDir });
    const fhir = new Fhir(server.baseUrl);
    const topic = topicsOf((await fhir.metadata()).body).find((t) => t.endsWith('goal-changed'));
    assert.ok(topic, 'goal-changed topic');
    const patient = newPatientId('crash');
    const created = await fhir.create(
      subscription({ topic, endpoint: receiver.url('/crash'), filters: [`Goal?patient=Patient/${patient}`] }),
    );
    assertStatus(created, 201);
    const id = created.body.id;
    await receiver.waitFor(() => receiver.of(id, 'handshake').length > 0, 'handshake');

    const w = writer(patient);
    w.baseUrl = server.baseUrl;
    for (let k = 0; k < KILLS; k++) {
      await sleep(1200 + Math.random() * 800);
      await server.kill();
      server = await startServer({ extraArgs: args, dataDir });
      w.baseUrl = server.baseUrl;
    }
    await sleep(1000);
    w.running = false;
    await w.done;
    assert.ok(w.acked.length > 20, `only ${w.acked.length} writes were acknowledged`);

    // Focus references are absolute URLs of the server that sent them (its port changes with
    // every restart): compare Type/id.
    const focusesOf = () =>
      receiver
        .of(id, 'event-notification')
        .flatMap((n) => n.events)
        .map((e) => ({ ...e, focus: e.focus?.split('/').slice(-2).join('/') }));
    const ids = (events) => new Set(events.map((e) => e.focus?.split('/').at(-1)));
    await receiver.waitFor(
      () => w.acked.every((g) => ids(focusesOf()).has(g)),
      `notifications of all ${w.acked.length} acknowledged writes`,
      90_000,
    );

    const byNumber = new Map();
    const byFocus = new Map();
    for (const e of focusesOf()) {
      if (byNumber.has(e.number)) assert.equal(byNumber.get(e.number), e.focus, `event ${e.number} repeated`);
      if (byFocus.has(e.focus)) assert.equal(byFocus.get(e.focus), e.number, `${e.focus} under two numbers`);
      byNumber.set(e.number, e.focus);
      byFocus.set(e.focus, e.number);
    }
    const numbers = [...byNumber.keys()].sort((a, b) => a - b);
    assert.equal(numbers[0], 1);
    assert.equal(numbers.at(-1), numbers.length, `event numbers have a gap: ${numbers.length} numbers up to ${numbers.at(-1)}`);
    assert.ok(numbers.length >= w.acked.length);
    // One writer, one write at a time: acknowledged writes are numbered in the order they were made.
    const numberOf = new Map([...byFocus].map(([focus, n]) => [focus.split('/').at(-1), n]));
    const ackedNumbers = w.acked.map((g) => numberOf.get(g));
    assert.deepEqual(ackedNumbers, [...ackedNumbers].sort((a, b) => a - b), 'in write order');
  });
});
