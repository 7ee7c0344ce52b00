// Observation search: patient, code, category, date, focus, identifier, _id.
import assert from 'node:assert/strict';
import { before, describe, it } from 'node:test';

import { assertBundle, assertStatus, matchIds } from '../lib/fhir.js';
import {
  careExperiencePreference,
  CODES,
  gasScore,
  goal,
  LOINC,
  newPatientId,
  treatmentPreference,
  US_CORE_CATEGORY,
  WHAT_MATTERS_CODE,
  whatMatters,
  WMTY_CS,
} from '../lib/fixtures.js';
import { createAll, serverPerFile } from '../lib/harness.js';

const ctx = serverPerFile();

describe('Observation search', () => {
  const a = newPatientId('a');
  const b = newPatientId('b');
  let wm;
  let cep;
  let tip;
  let gas1;
  let gas2;
  let wmB;
  let g1;
  let g2;

  before(async () => {
    [g1, g2] = await createAll(ctx.fhir, [goal(a), goal(a)]);
    [wm, cep, tip, gas1, gas2, wmB] = await createAll(ctx.fhir, [
      whatMatters(a, 'My garden', { effectiveDateTime: '2025-11-10T09:00:00Z' }),
      careExperiencePreference(a, 'Call me Bea', { effectiveDateTime: '2025-11-15T09:00:00Z' }),
      treatmentPreference(a, 'No feeding tube', { effectiveDateTime: '2025-11-20T09:00:00Z' }),
      gasScore(a, g1.id, 0, CODES.gasPatient, { effectiveDateTime: '2025-12-05T09:00:00Z' }),
      gasScore(a, g2.id, -1, CODES.gasPractitioner, { effectiveDateTime: '2026-01-10T09:00:00Z' }),
      whatMatters(b, 'Church on Sundays'),
    ]);
  });

  async function ids(params) {
    const r = await ctx.fhir.search('Observation', params);
    assertStatus(r, 200);
    assertBundle(r.body, 'searchset');
    return matchIds(r.body).sort();
  }
  const sorted = (...xs) => xs.map((x) => x.id).sort();

  it('patient', async () => {
    assert.deepEqual(await ids({ patient: a }), sorted(wm, cep, tip, gas1, gas2));
    assert.deepEqual(await ids({ patient: `Patient/${b}` }), sorted(wmB));
  });

  it('code (system|code, and code alone)', async () => {
    assert.deepEqual(await ids({ patient: a, code: `${LOINC}|${CODES.careExperience}` }), sorted(wm, cep));
    assert.deepEqual(await ids({ patient: a, code: `${WMTY_CS}|${WHAT_MATTERS_CODE}` }), sorted(wm));
    assert.deepEqual(await ids({ patient: a, code: `${LOINC}|${CODES.treatment}` }), sorted(tip));
    assert.deepEqual(await ids({ patient: a, code: CODES.gasPatient }), sorted(gas1));
    assert.deepEqual(
      await ids({ patient: a, code: `${LOINC}|${CODES.gasPatient},${LOINC}|${CODES.gasPractitioner}` }),
      sorted(gas1, gas2),
    );
    assert.deepEqual(await ids({ code: `${WMTY_CS}|${WHAT_MATTERS_CODE}` }), sorted(wm, wmB));
  });

  it('category', async () => {
    assert.deepEqual(
      await ids({ patient: a, category: `${US_CORE_CATEGORY}|care-experience-preference` }),
      sorted(wm, cep),
    );
    assert.deepEqual(await ids({ patient: a, category: 'treatment-intervention-preference' }), sorted(tip));
  });

  it('date (ge, le, both)', async () => {
    assert.deepEqual(await ids({ patient: a, date: 'ge2025-12-01' }), sorted(gas1, gas2));
    assert.deepEqual(await ids({ patient: a, date: 'le2025-11-15' }), sorted(wm, cep));
    assert.deepEqual(await ids({ patient: a, date: ['ge2025-11-12', 'le2025-12-31'] }), sorted(cep, tip, gas1));
    assert.deepEqual(await ids({ patient: a, date: '2025-11-20' }), sorted(tip));
  });

  it('patient + category + date (US Core SHOULD)', async () => {
    assert.deepEqual(
      await ids({ patient: a, category: 'care-experience-preference', date: 'ge2025-11-12' }),
      sorted(cep),
    );
  });

  it('focus', async () => {
    assert.deepEqual(await ids({ focus: `Goal/${g1.id}` }), sorted(gas1));
    assert.deepEqual(await ids({ patient: a, focus: `Goal/${g2.id}` }), sorted(gas2));
  });

  it('identifier', async () => {
    const ident = tip.identifier[0];
    assert.deepEqual(await ids({ identifier: `${ident.system}|${ident.value}` }), sorted(tip));
  });

  it('_id', async () => {
    assert.deepEqual(await ids({ _id: cep.id }), sorted(cep));
    assert.deepEqual(await ids({ patient: b, _id: cep.id }), []);
  });
});
