// History: instance history (create, update, delete of one Goal) and type
// history (every version of every Goal and Observation this server holds:
// the server is this file's own, so the exact set is known).
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';

import { assertBundle, assertStatus } from '../lib/fhir.js';
import { goal, newPatientId, whatMatters, writeHeaders } from '../lib/fixtures.js';
import { createAll, serverPerFile } from '../lib/harness.js';

const ctx = serverPerFile();

// "Goal/<id>/_history/<n>" -> [id, n] from an entry (resource or request/response).
function versionOf(entry) {
  if (entry.resource?.meta?.versionId) return [entry.resource.id, entry.resource.meta.versionId];
  const m = /([^/]+)\/_history\/([^/]+)$/.exec(entry.response?.location ?? '');
  if (m) return [m[1], m[2]];
  const etag = /W\/"(\d+)"/.exec(entry.response?.etag ?? '');
  const id = /\/([^/]+)$/.exec(entry.request?.url ?? '')?.[1];
  return [id, etag?.[1]];
}

describe('history', () => {
  const patient = newPatientId();
  let g;
  const expectedGoalVersions = [];
  const expectedObservationVersions = [];

  it('instance history of a created, updated, deleted Goal: three entries, newest first', async () => {
    [g] = await createAll(ctx.fhir, [goal(patient)]);
    expectedGoalVersions.push(`${g.id}@1`);
    const body = { ...g, lifecycleStatus: 'on-hold' };
    delete body.meta;
    const u = await ctx.fhir.update(body, writeHeaders({ 'If-Match': 'W/"1"' }));
    assertStatus(u, 200);
    expectedGoalVersions.push(`${g.id}@2`);
    const d = await ctx.fhir.delete('Goal', g.id);
    assert.ok([200, 204].includes(d.status), `DELETE answered ${d.status}`);
    expectedGoalVersions.push(`${g.id}@3`);

    const r = await ctx.fhir.history('Goal', g.id);
    assertStatus(r, 200);
    assertBundle(r.body, 'history');
    const entries = r.body.entry ?? [];
    assert.equal(entries.length, 3, `entries: ${JSON.stringify(entries).slice(0, 1500)}`);
    assert.deepEqual(
      entries.map((e) => versionOf(e)[1]),
      ['3', '2', '1'],
      'newest first',
    );
    assert.deepEqual(
      entries.map((e) => e.request?.method),
      ['DELETE', 'PUT', 'POST'],
      'request.method says what made each version',
    );
    for (const e of entries) {
      assert.ok(e.response?.status, 'entry.response.status');
      if (e.resource) {
        assert.equal(e.resource.id, g.id);
        assert.ok(e.fullUrl?.endsWith(`/Goal/${g.id}`), `fullUrl ${e.fullUrl}`);
      }
    }
    assert.equal(entries[2].resource?.lifecycleStatus, 'active');
    assert.equal(entries[1].resource?.lifecycleStatus, 'on-hold');
    if (r.body.total !== undefined) assert.equal(r.body.total, 3);
  });

  it('type history of Goal: every version of every Goal, and only Goals', async () => {
    const more = await createAll(ctx.fhir, [goal(patient), goal(newPatientId())]);
    for (const m of more) expectedGoalVersions.push(`${m.id}@1`);
    const [o] = await createAll(ctx.fhir, [whatMatters(patient)]);
    expectedObservationVersions.push(`${o.id}@1`);

    const r = await ctx.fhir.history('Goal');
    assertStatus(r, 200);
    assertBundle(r.body, 'history');
    const pages = await ctx.fhir.allPages(r);
    const entries = pages.flatMap((p) => p.body.entry ?? []);
    for (const e of entries) {
      if (e.resource) assert.equal(e.resource.resourceType, 'Goal');
    }
    const got = entries.map((e) => versionOf(e).join('@'));
    assert.deepEqual([...got].sort(), [...expectedGoalVersions].sort());
  });

  it('type history pages with _count=2, following next links to the end, newest first', async () => {
    const first = await ctx.fhir.request('GET', 'Goal/_history?_count=2');
    assertStatus(first, 200);
    assertBundle(first.body, 'history');
    const pages = await ctx.fhir.allPages(first);
    assert.ok(pages.length >= 3, `${pages.length} pages`);
    for (const p of pages.slice(0, -1)) assert.equal((p.body.entry ?? []).length, 2);
    const entries = pages.flatMap((p) => p.body.entry ?? []);
    const got = entries.map((e) => versionOf(e).join('@'));
    assert.deepEqual([...got].sort(), [...expectedGoalVersions].sort());
    const times = entries.map((e) => Date.parse(e.response?.lastModified ?? e.resource?.meta?.lastUpdated));
    for (let i = 1; i < times.length; i++) assert.ok(times[i - 1] >= times[i], 'newest first');
  });

  it('type history of Observation holds only Observations', async () => {
    const r = await ctx.fhir.history('Observation');
    assertStatus(r, 200);
    assertBundle(r.body, 'history');
    const got = (r.body.entry ?? []).map((e) => versionOf(e).join('@'));
    assert.deepEqual(got, expectedObservationVersions);
  });
});
