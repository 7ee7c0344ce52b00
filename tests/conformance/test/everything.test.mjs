// Patient/[id]/$everything: every Goal, Observation and List of the patient
// (current versions), none of another patient's, in one searchset Bundle.
// CodeSystem/wmty: our own concepts, served where their canonical URL says.
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';

import { assertBundle, assertOperationOutcome, assertStatus } from '../lib/fhir.js';
import {
  gasScore,
  goal,
  newPatientId,
  priorities,
  treatmentPreference,
  WHAT_MATTERS_CODE,
  whatMatters,
  WMTY_CS,
  writeHeaders,
} from '../lib/fixtures.js';
import { createAll, serverPerFile } from '../lib/harness.js';

const ctx = serverPerFile();

describe('Patient/[id]/$everything', () => {
  const a = newPatientId('a');
  const b = newPatientId('b');

  it('answers all of the patient\'s resources and nothing of anyone else', async () => {
    const [g1, g2, wm, tip] = await createAll(ctx.fhir, [goal(a), goal(a), whatMatters(a), treatmentPreference(a)]);
    const [gas] = await createAll(ctx.fhir, [gasScore(a, g1.id, 1)]);
    const list = await ctx.fhir.update(priorities(a, [`Goal/${g1.id}`, `Observation/${wm.id}`]), writeHeaders());
    assert.ok([200, 201].includes(list.status), `PUT List answered ${list.status}`);
    // Deleted resources are not part of "everything" now.
    const [deleted] = await createAll(ctx.fhir, [goal(a)]);
    const d = await ctx.fhir.delete('Goal', deleted.id);
    assert.ok([200, 204].includes(d.status));
    await createAll(ctx.fhir, [goal(b), whatMatters(b)]);

    const r = await ctx.fhir.everything(a);
    assertStatus(r, 200);
    assertBundle(r.body, 'searchset');
    const pages = await ctx.fhir.allPages(r);
    const got = pages
      .flatMap((p) => p.body.entry ?? [])
      .map((e) => e.resource)
      .filter((x) => ['Goal', 'Observation', 'List'].includes(x.resourceType));
    const keys = got.map((x) => `${x.resourceType}/${x.id}`).sort();
    const expected = [
      `Goal/${g1.id}`,
      `Goal/${g2.id}`,
      `Observation/${wm.id}`,
      `Observation/${tip.id}`,
      `Observation/${gas.id}`,
      `List/${a}`,
    ].sort();
    assert.deepEqual(keys, expected);
    for (const x of got) assert.equal(x.subject.reference, `Patient/${a}`);
  });

  it('for a patient with nothing recorded answers an empty Bundle', async () => {
    const r = await ctx.fhir.everything(newPatientId());
    assertStatus(r, 200);
    assertBundle(r.body, 'searchset');
    assert.equal((r.body.entry ?? []).filter((e) => e.resource?.resourceType !== 'Patient').length, 0);
  });
});

describe('CodeSystem/wmty', () => {
  it('is served, complete, with a definition for every concept', async () => {
    const r = await ctx.fhir.read('CodeSystem', 'wmty');
    assertStatus(r, 200);
    const cs = r.body;
    assert.equal(cs.resourceType, 'CodeSystem');
    assert.equal(cs.id, 'wmty');
    assert.equal(cs.url, WMTY_CS);
    assert.equal(cs.content, 'complete');
    assert.ok(['active', 'draft'].includes(cs.status));
    const all = [];
    const walk = (concepts) => {
      for (const c of concepts ?? []) {
        all.push(c);
        walk(c.concept);
      }
    };
    walk(cs.concept);
    const codes = all.map((c) => c.code);
    assert.ok(codes.includes(WHAT_MATTERS_CODE), `concepts ${codes}`);
    assert.equal(new Set(codes).size, codes.length, 'codes are unique (hierarchy included)');
    for (const c of all) assert.ok(c.display && c.definition, `concept ${c.code} lacks display or definition`);
    if (cs.count !== undefined) assert.equal(cs.count, codes.length, 'count = every concept, nested ones included');
  });

  it('covers the concepts no standard code has (contact channel, contact time, family involvement)', async () => {
    const r = await ctx.fhir.read('CodeSystem', 'wmty');
    assertStatus(r, 200);
    const text = JSON.stringify(r.body.concept).toLowerCase();
    for (const word of ['channel', 'time', 'family']) assert.ok(text.includes(word), `no concept about ${word}`);
  });

  it('is found by its canonical URL (CodeSystem?url=)', async () => {
    const r = await ctx.fhir.search('CodeSystem', { url: WMTY_CS });
    assertStatus(r, 200);
    assertBundle(r.body, 'searchset');
    assert.equal(r.body.total, 1);
    assert.equal(r.body.entry[0].resource.url, WMTY_CS);
    assert.equal(r.body.entry[0].resource.id, 'wmty');
    const other = await ctx.fhir.search('CodeSystem', { url: 'http://example.org/CodeSystem/other' });
    assertStatus(other, 200);
    assert.equal(other.body.total, 0);
    assert.equal((other.body.entry ?? []).length, 0);
  });

  it('CodeSystem/[other] answers 404', async () => {
    assertOperationOutcome(await ctx.fhir.read('CodeSystem', 'not-ours'), 404);
  });
});
