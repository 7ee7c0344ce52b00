// Search result control: _count with next links followed until done,
// _sort=_lastUpdated (both directions, across pages), _summary=count, and
// Prefer: handling=strict|lenient with an unknown parameter.
import assert from 'node:assert/strict';
import { setTimeout as sleep } from 'node:timers/promises';
import { before, describe, it } from 'node:test';

import { assertBundle, assertOperationOutcome, assertStatus, matches, matchIds } from '../lib/fhir.js';
import { goal, newPatientId, writeHeaders } from '../lib/fixtures.js';
import { serverPerFile } from '../lib/harness.js';

const ctx = serverPerFile();

describe('paging, sorting, _summary, Prefer handling', () => {
  const patient = newPatientId();
  const N = 7;
  const created = [];

  before(async () => {
    for (let i = 0; i < N; i++) {
      const r = await ctx.fhir.create(goal(patient, { description: { text: `goal number ${i}` } }), writeHeaders());
      assertStatus(r, 201);
      created.push(r.body);
      await sleep(3); // distinct lastUpdated
    }
    // Touch the first goal last, so lastUpdated order differs from id order.
    const body = { ...created[0], lifecycleStatus: 'on-hold' };
    delete body.meta;
    const u = await ctx.fhir.update(body, writeHeaders({ 'If-Match': 'W/"1"' }));
    assertStatus(u, 200);
    created[0] = u.body;
  });

  it('_count=3 pages 3+3+1; following next until there is none returns every match once', async () => {
    const first = await ctx.fhir.search('Goal', { patient, _count: 3 });
    assertStatus(first, 200);
    assertBundle(first.body, 'searchset');
    const pages = await ctx.fhir.allPages(first);
    assert.deepEqual(
      pages.map((p) => matches(p.body).length),
      [3, 3, 1],
    );
    const ids = pages.flatMap((p) => matchIds(p.body));
    assert.equal(new Set(ids).size, ids.length, `duplicates across pages: ${ids}`);
    assert.deepEqual([...ids].sort(), created.map((g) => g.id).sort());
    for (const p of pages) {
      assert.ok(p.body.link?.some((l) => l.relation === 'self'), 'every page has a self link');
      if (p.body.total !== undefined) assert.equal(p.body.total, N, 'total counts all matches');
    }
    assert.ok(!pages.at(-1).body.link?.some((l) => l.relation === 'next'), 'last page has no next link');
  });

  it('_sort=_lastUpdated orders oldest first, also across pages', async () => {
    const first = await ctx.fhir.search('Goal', { patient, _sort: '_lastUpdated', _count: 4 });
    assertStatus(first, 200);
    const pages = await ctx.fhir.allPages(first);
    const got = pages.flatMap((p) => matches(p.body));
    assert.equal(got.length, N);
    const expected = [...created].sort((x, y) => Date.parse(x.meta.lastUpdated) - Date.parse(y.meta.lastUpdated));
    assert.deepEqual(
      got.map((g) => g.id),
      expected.map((g) => g.id),
    );
    assert.equal(got.at(-1).id, created[0].id, 'the updated goal is the most recent');
  });

  it('_sort=-_lastUpdated orders newest first', async () => {
    const r = await ctx.fhir.search('Goal', { patient, _sort: '-_lastUpdated' });
    assertStatus(r, 200);
    const expected = [...created].sort((x, y) => Date.parse(y.meta.lastUpdated) - Date.parse(x.meta.lastUpdated));
    assert.deepEqual(
      matchIds(r.body),
      expected.map((g) => g.id),
    );
  });

  it('_summary=count answers the total and no entries', async () => {
    const r = await ctx.fhir.search('Goal', { patient, _summary: 'count' });
    assertStatus(r, 200);
    assertBundle(r.body, 'searchset');
    assert.equal(r.body.total, N);
    assert.equal((r.body.entry ?? []).length, 0);
  });

  it('Prefer: handling=strict with an unknown parameter answers 400 with an OperationOutcome', async () => {
    const r = await ctx.fhir.search('Goal', { patient, 'not-a-param': 'x' }, { Prefer: 'handling=strict' });
    assertOperationOutcome(r, 400);
  });

  it('Prefer: handling=lenient ignores an unknown parameter (and the self link leaves it out)', async () => {
    const r = await ctx.fhir.search('Goal', { patient, 'not-a-param': 'x' }, { Prefer: 'handling=lenient' });
    assertStatus(r, 200);
    assert.equal(matches(r.body).length, N);
    const self = r.body.link?.find((l) => l.relation === 'self')?.url ?? '';
    assert.ok(!self.includes('not-a-param'), `self link ${self} should show only the parameters used`);
  });

  it('a malformed parameter value answers 400 (e.g. _count=abc)', async () => {
    const r = await ctx.fhir.search('Goal', { patient, _count: 'abc' }, { Prefer: 'handling=strict' });
    assertOperationOutcome(r, 400);
  });
});
