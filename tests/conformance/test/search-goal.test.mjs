// Goal search: patient, lifecycle-status, achievement-status, category,
// target-date (ge/le), identifier, _id, _lastUpdated, and combinations.
import assert from 'node:assert/strict';
import { setTimeout as sleep } from 'node:timers/promises';
import { before, describe, it } from 'node:test';

import { assertBundle, assertStatus, matches, matchIds } from '../lib/fhir.js';
import { goal, IDENTIFIER_SYSTEM, LOINC, newPatientId } from '../lib/fixtures.js';
import { createAll, serverPerFile } from '../lib/harness.js';

const ctx = serverPerFile();

const ACH = 'http://terminology.hl7.org/CodeSystem/goal-achievement';
const GOAL_CATEGORY = 'http://terminology.hl7.org/CodeSystem/goal-category';

describe('Goal search', () => {
  const a = newPatientId('a');
  const b = newPatientId('b');
  let g1;
  let g2;
  let g3;
  let gb;

  before(async () => {
    [g1, g2] = await createAll(ctx.fhir, [
      goal(a, { target: [{ dueDate: '2027-06-12' }] }),
      goal(a, {
        lifecycleStatus: 'completed',
        achievementStatus: { coding: [{ system: ACH, code: 'achieved' }] },
        category: [{ coding: [{ system: GOAL_CATEGORY, code: 'behavioral' }] }],
        target: [{ dueDate: '2026-12-01' }],
        description: { text: 'Stop smoking before the grandchildren visit' },
      }),
    ]);
    await sleep(20); // g3 gets a later lastUpdated
    [g3, gb] = await createAll(ctx.fhir, [
      goal(a, {
        lifecycleStatus: 'on-hold',
        achievementStatus: { coding: [{ system: ACH, code: 'no-progress' }] },
        target: [{ dueDate: '2028-01-15' }],
        description: { text: 'Garden again in the spring' },
      }),
      goal(b),
    ]);
  });

  async function ids(params) {
    const r = await ctx.fhir.search('Goal', params);
    assertStatus(r, 200);
    assertBundle(r.body, 'searchset');
    for (const e of r.body.entry ?? []) {
      if (e.search?.mode === 'match') {
        assert.equal(e.resource.resourceType, 'Goal');
        assert.ok(e.fullUrl?.endsWith(`/Goal/${e.resource.id}`), `fullUrl ${e.fullUrl}`);
      }
    }
    assert.ok(r.body.link?.some((l) => l.relation === 'self'), 'self link');
    if (r.body.total !== undefined && !r.body.link?.some((l) => l.relation === 'next')) {
      assert.equal(r.body.total, matches(r.body).length, 'total');
    }
    return matchIds(r.body).sort();
  }
  const sorted = (...goals) => goals.map((g) => g.id).sort();

  it('patient (id and Patient/id)', async () => {
    assert.deepEqual(await ids({ patient: a }), sorted(g1, g2, g3));
    assert.deepEqual(await ids({ patient: `Patient/${a}` }), sorted(g1, g2, g3));
    assert.deepEqual(await ids({ patient: b }), sorted(gb));
    assert.deepEqual(await ids({ patient: newPatientId() }), []);
  });

  it('subject=Patient/id works as patient', async () => {
    assert.deepEqual(await ids({ subject: `Patient/${a}` }), sorted(g1, g2, g3));
  });

  it('lifecycle-status (one value, and a comma-separated OR)', async () => {
    assert.deepEqual(await ids({ patient: a, 'lifecycle-status': 'active' }), sorted(g1));
    assert.deepEqual(await ids({ patient: a, 'lifecycle-status': 'completed,on-hold' }), sorted(g2, g3));
    assert.deepEqual(await ids({ patient: a, 'lifecycle-status': 'cancelled' }), []);
  });

  it('achievement-status (code, and system|code)', async () => {
    assert.deepEqual(await ids({ patient: a, 'achievement-status': 'achieved' }), sorted(g2));
    assert.deepEqual(await ids({ patient: a, 'achievement-status': `${ACH}|no-progress` }), sorted(g3));
    assert.deepEqual(await ids({ patient: a, 'achievement-status': `${ACH}|in-progress` }), sorted(g1));
  });

  it('category (code, and system|code)', async () => {
    assert.deepEqual(await ids({ patient: a, category: `${LOINC}|87528-6` }), sorted(g1, g3));
    assert.deepEqual(await ids({ patient: a, category: 'behavioral' }), sorted(g2));
    assert.deepEqual(await ids({ patient: a, category: `${GOAL_CATEGORY}|behavioral` }), sorted(g2));
  });

  it('target-date with ge, le, and both', async () => {
    assert.deepEqual(await ids({ patient: a, 'target-date': 'ge2027-01-01' }), sorted(g1, g3));
    assert.deepEqual(await ids({ patient: a, 'target-date': 'le2027-01-01' }), sorted(g2));
    assert.deepEqual(await ids({ patient: a, 'target-date': ['ge2027-01-01', 'le2027-12-31'] }), sorted(g1));
    assert.deepEqual(await ids({ patient: a, 'target-date': '2027-06-12' }), sorted(g1));
    assert.deepEqual(await ids({ patient: a, 'target-date': 'ge2027-06-12' }), sorted(g1, g3), 'ge includes the day');
    assert.deepEqual(await ids({ patient: a, 'target-date': 'le2026-12-01' }), sorted(g2), 'le includes the day');
  });

  it('identifier (system|value), without patient', async () => {
    const ident = g2.identifier[0];
    assert.equal(ident.system, IDENTIFIER_SYSTEM);
    assert.deepEqual(await ids({ identifier: `${ident.system}|${ident.value}` }), sorted(g2));
    assert.deepEqual(await ids({ identifier: `${ident.system}|no-such-value` }), []);
  });

  it('_id (alone and with patient)', async () => {
    assert.deepEqual(await ids({ _id: g3.id }), sorted(g3));
    assert.deepEqual(await ids({ patient: a, _id: g3.id }), sorted(g3));
    assert.deepEqual(await ids({ patient: b, _id: g3.id }), []);
    assert.deepEqual(await ids({ _id: `${g1.id},${gb.id}` }), sorted(g1, gb));
  });

  it('_lastUpdated (gt, ge, lt)', async () => {
    assert.ok(Date.parse(g3.meta.lastUpdated) > Date.parse(g2.meta.lastUpdated), 'g3 written after g2');
    assert.deepEqual(await ids({ patient: a, _lastUpdated: `gt${g2.meta.lastUpdated}` }), sorted(g3));
    assert.deepEqual(await ids({ patient: a, _lastUpdated: `ge${g3.meta.lastUpdated}` }), sorted(g3));
    assert.deepEqual(await ids({ patient: a, _lastUpdated: `lt${g3.meta.lastUpdated}` }), sorted(g1, g2));
    assert.deepEqual(await ids({ patient: a, _lastUpdated: 'gt2000-01-01' }), sorted(g1, g2, g3));
  });

  it('parameters combine with AND', async () => {
    assert.deepEqual(
      await ids({ patient: a, 'lifecycle-status': 'active,completed', 'target-date': 'ge2026-12-31' }),
      sorted(g1),
    );
  });
});
