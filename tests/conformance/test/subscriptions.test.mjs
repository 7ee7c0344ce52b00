// Subscriptions (R5 Backport IG 1.1.0 on R4), end to end: topics listed in
// the CapabilityStatement; a Subscription created here is handshaken at a
// rest-hook receiver run by this test (lib/receiver.js), goes active, gets
// heartbeats and gap-free numbered event notifications in each payload mode;
// $status and $events; a receiver that is away for a while gets everything
// once it returns; bad bodies are refused and store nothing. Every
// notification Bundle the receiver gets must be valid FHIR R4.
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';

import { Fhir, assertOperationOutcome, assertStatus } from '../lib/fhir.js';
import { goal, newPatientId, whatMatters, writeHeaders } from '../lib/fixtures.js';
import { startReceiver } from '../lib/receiver.js';
import { startServer } from '../lib/server.js';
import { subscription, topicsOf } from '../lib/subscriptions.js';
import { assertValidResource } from '../lib/validate.js';

const ctx = { server: null, fhir: null, receiver: null, topics: [] };

before(async () => {
  // The receiver is on loopback: allowed only with this flag (SSRF guard).
  ctx.server = await startServer({ extraArgs: ['--subscription_allow_private_endpoints'] });
  ctx.fhir = new Fhir(ctx.server.baseUrl);
  ctx.receiver = await startReceiver();
});
after(async () => {
  await ctx.receiver?.close();
  if (ctx.server) {
    const exit = await ctx.server.stop();
    if (exit && exit.code !== 0) throw new Error(`wmtyd did not shut down cleanly: ${JSON.stringify(exit)}`);
  }
});

function topic(suffix) {
  const url = ctx.topics.find((t) => t.endsWith(suffix));
  assert.ok(url, `no topic ending in ${suffix} among ${ctx.topics.join(', ')}`);
  return url;
}

async function createSubscription(options) {
  const r = await ctx.fhir.create(subscription(options));
  assertStatus(r, 201);
  return r.body;
}

async function createGoal(patient) {
  const r = await ctx.fhir.create(goal(patient), writeHeaders());
  assertStatus(r, 201);
  return r.body;
}

// Event notifications of subscription `id`, their events flattened in order.
function eventsOf(id) {
  return ctx.receiver.of(id, 'event-notification').flatMap((n) => n.events);
}

async function awaitActive(id) {
  await ctx.receiver.waitFor(() => ctx.receiver.of(id, 'handshake').length > 0, `handshake of ${id}`);
  for (let i = 0; i < 200; i++) {
    const r = await ctx.fhir.read('Subscription', id);
    if (r.body?.status === 'active') return r.body;
    await new Promise((res) => setTimeout(res, 25));
  }
  assert.fail(`Subscription/${id} did not become active`);
}

describe('topics', () => {
  it('the CapabilityStatement lists the topics (backport extension) and the Subscription resource', async () => {
    const r = await ctx.fhir.metadata();
    assertStatus(r, 200);
    ctx.topics = topicsOf(r.body);
    for (const suffix of ['what-matters-changed', 'goal-changed', 'goal-score-recorded']) topic(suffix);
    const types = r.body.rest[0].resource.map((x) => x.type);
    assert.ok(types.includes('Subscription'), 'Subscription in rest.resource');
  });
});

describe('a rest-hook subscription, id-only', () => {
  const patient = newPatientId();
  let sub;
  let goals = [];

  it('is created requested, handshaken at the endpoint, then active', async () => {
    sub = await createSubscription({
      topic: topic('goal-changed'),
      endpoint: ctx.receiver.url('/id-only'),
      filters: [`Goal?patient=Patient/${patient}`],
      headers: ['Authorization: Bearer receiver-secret'],
    });
    assert.ok(['requested', 'active'].includes(sub.status), `status ${sub.status}`);
    const active = await awaitActive(sub.id);
    assert.equal(active.status, 'active');
    const hs = ctx.receiver.of(sub.id, 'handshake')[0];
    assert.equal(hs.headers.authorization, 'Bearer receiver-secret', 'channel.header is sent');
    assert.equal(hs.headers['content-type']?.split(';')[0], 'application/fhir+json');
  });

  it('each write of the patient is one event, numbered 1, 2, 3 with the focus', async () => {
    for (let i = 0; i < 3; i++) goals.push(await createGoal(patient));
    await createGoal(newPatientId()); // another patient: filtered out
    await ctx.receiver.waitFor(() => eventsOf(sub.id).length >= 3, '3 events');
    const events = eventsOf(sub.id);
    assert.deepEqual(
      events.map((e) => e.number),
      [1, 2, 3],
    );
    assert.deepEqual(
      events.map((e) => e.focus?.replace(/^.*\/(Goal\/)/, '$1')),
      goals.map((g) => `Goal/${g.id}`),
    );
    const last = ctx.receiver.of(sub.id, 'event-notification').at(-1);
    assert.equal(last.eventsSinceSubscriptionStart, 3);
    // id-only: the focus entry has a fullUrl and no resource.
    const entries = last.bundle.entry.slice(1);
    assert.ok(entries.length >= 1 && entries.every((e) => e.fullUrl && !e.resource), JSON.stringify(entries));
  });

  it('$status reports active and the events since start', async () => {
    const r = await ctx.fhir.request('GET', `Subscription/${sub.id}/$status`);
    assertStatus(r, 200);
    const status = r.body.resourceType === 'Bundle' ? r.body.entry[0].resource : r.body;
    assert.equal(status.resourceType, 'Parameters');
    const p = (n) => status.parameter.find((x) => x.name === n);
    assert.equal(p('status').valueCode, 'active');
    assert.equal(Number(p('events-since-subscription-start').valueString), 3);
  });

  it('$events replays events 2..3 with their numbers', async () => {
    const r = await ctx.fhir.request(
      'GET',
      `Subscription/${sub.id}/$events?eventsSinceNumber=2&eventsUntilNumber=3`,
    );
    assertStatus(r, 200);
    assert.equal(r.body.resourceType, 'Bundle');
    const status = r.body.entry[0].resource;
    const events = status.parameter.filter((x) => x.name === 'notification-event');
    const numbers = events.map((e) => Number(e.part.find((x) => x.name === 'event-number').valueString));
    assert.deepEqual(numbers, [2, 3]);
  });

  it('a retract (delete) of a goal is an update event too', async () => {
    const r = await ctx.fhir.delete('Goal', goals[0].id);
    assert.ok([200, 204].includes(r.status), `delete answered ${r.status}`);
    await ctx.receiver.waitFor(() => eventsOf(sub.id).length >= 4, '4th event');
    assert.equal(eventsOf(sub.id)[3].number, 4);
  });

  it('deleting the subscription turns it off: no more notifications', async () => {
    const r = await ctx.fhir.delete('Subscription', sub.id);
    assert.ok([200, 204].includes(r.status), `delete answered ${r.status}`);
    const before = ctx.receiver.of(sub.id).length;
    await createGoal(patient);
    await new Promise((res) => setTimeout(res, 1500));
    assert.equal(ctx.receiver.of(sub.id).length, before, 'nothing after off');
  });
});

describe('payloads and heartbeats', () => {
  it('full-resource carries the written resource; empty carries none', async () => {
    const patient = newPatientId();
    const full = await createSubscription({
      topic: topic('what-matters-changed'),
      endpoint: ctx.receiver.url('/full'),
      payload: 'full-resource',
      filters: [`Observation?patient=Patient/${patient}`],
    });
    const empty = await createSubscription({
      topic: topic('what-matters-changed'),
      endpoint: ctx.receiver.url('/empty'),
      payload: 'empty',
      filters: [`Observation?patient=Patient/${patient}`],
    });
    await awaitActive(full.id);
    await awaitActive(empty.id);
    const r = await ctx.fhir.create(whatMatters(patient), writeHeaders());
    assertStatus(r, 201);
    await ctx.receiver.waitFor(() => eventsOf(full.id).length >= 1 && eventsOf(empty.id).length >= 1, 'both events');
    const f = ctx.receiver.of(full.id, 'event-notification')[0].bundle;
    const resource = f.entry.slice(1).find((e) => e.resource)?.resource;
    assert.equal(resource?.resourceType, 'Observation');
    assert.equal(resource.id, r.body.id);
    assert.equal(resource.valueString ?? resource.valueCodeableConcept?.text, r.body.valueString ?? r.body.valueCodeableConcept?.text);
    const e = ctx.receiver.of(empty.id, 'event-notification')[0].bundle;
    assert.equal(e.entry.length, 1, 'empty: the status entry only');
  });

  it('heartbeats come while nothing happens', async () => {
    const sub = await createSubscription({
      topic: topic('goal-score-recorded'),
      endpoint: ctx.receiver.url('/heartbeat'),
      heartbeat: 1,
    });
    await awaitActive(sub.id);
    await ctx.receiver.waitFor(() => ctx.receiver.of(sub.id, 'heartbeat').length >= 2, '2 heartbeats', 15_000);
  });
});

describe('a receiver that is away', () => {
  it('gets every event, in order, once it is back', async () => {
    const patient = newPatientId();
    const sub = await createSubscription({
      topic: topic('goal-changed'),
      endpoint: ctx.receiver.url('/away'),
      filters: [`Goal?patient=Patient/${patient}`],
    });
    await awaitActive(sub.id);
    ctx.receiver.mode = 'fail';
    const ids = [];
    for (let i = 0; i < 5; i++) ids.push((await createGoal(patient)).id);
    await ctx.receiver.waitFor(() => ctx.receiver.failures > 0, 'a failed delivery');
    ctx.receiver.mode = 'ok';
    await ctx.receiver.waitFor(() => new Set(eventsOf(sub.id).map((e) => e.number)).size >= 5, 'all 5 events', 60_000);
    const byNumber = new Map();
    for (const e of eventsOf(sub.id)) {
      if (byNumber.has(e.number)) assert.equal(byNumber.get(e.number), e.focus, 'a repeat carries the same event');
      byNumber.set(e.number, e.focus);
    }
    assert.deepEqual([...byNumber.keys()].sort((a, b) => a - b), [1, 2, 3, 4, 5]);
    assert.deepEqual(
      [1, 2, 3, 4, 5].map((n) => byNumber.get(n).replace(/^.*\/(Goal\/)/, '$1')),
      ids.map((id) => `Goal/${id}`),
    );
  });
});

describe('bad Subscription bodies are refused and store nothing', () => {
  const good = () =>
    subscription({ topic: topic('goal-changed'), endpoint: ctx.receiver.url('/bad'), filters: ['Goal?patient=Patient/x'] });
  const cases = {
    'unknown topic': (b) => (b.criteria = 'https://example.org/SubscriptionTopic/nope'),
    'unknown filter': (b) => (b._criteria.extension[0].valueString = 'Goal?color=blue'),
    'filter on a type the topic lacks': (b) => (b._criteria.extension[0].valueString = 'Encounter?patient=Patient/x'),
    'unsupported channel': (b) => (b.channel.type = 'websocket'),
    'unsupported payload': (b) => (b.channel._payload.extension[0].valueCode = 'everything'),
    'relative endpoint': (b) => (b.channel.endpoint = '/hook'),
    'not http(s)': (b) => (b.channel.endpoint = 'ftp://127.0.0.1/hook'),
  };
  for (const [name, spoil] of Object.entries(cases)) {
    it(name, async () => {
      const body = good();
      spoil(body);
      const before = await ctx.fhir.search('Subscription', { _summary: 'count' });
      const r = await ctx.fhir.create(body);
      assert.ok([400, 422].includes(r.status), `${name}: answered ${r.status}`);
      assertOperationOutcome(r, r.status);
      const afterCount = await ctx.fhir.search('Subscription', { _summary: 'count' });
      assert.equal(afterCount.body.total, before.body.total, 'nothing stored');
    });
  }
});

describe('every notification', () => {
  it('is a valid FHIR R4 history Bundle whose first entry is the SubscriptionStatus Parameters', () => {
    assert.ok(ctx.receiver.notifications.length > 0);
    for (const n of ctx.receiver.notifications) {
      assertValidResource(n.bundle, `notification to ${n.path}`);
      assert.equal(n.bundle.type, 'history');
      assert.equal(n.bundle.entry[0].resource.resourceType, 'Parameters');
      assert.ok(n.type, 'type parameter');
    }
  });
});
