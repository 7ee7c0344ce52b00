// Observation: the four kinds wmty keeps as Observations, each created, read
// back and checked against its profile's key rules: what matters (US Core
// Care Experience Preference + our CodeSystem's code), a care-experience
// preference, a treatment-intervention preference, and a PCO GAS score whose
// focus is a Goal. Then update with If-Match and delete.
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';

import { assertEtag, assertLocation, assertOperationOutcome, assertStatus } from '../lib/fhir.js';
import {
  careExperiencePreference,
  CODES,
  gasScore,
  goal,
  LOINC,
  newPatientId,
  PROFILES,
  treatmentPreference,
  US_CORE_CATEGORY,
  WHAT_MATTERS_CODE,
  whatMatters,
  WMTY_CS,
  writeHeaders,
} from '../lib/fixtures.js';
import { createAll, serverPerFile } from '../lib/harness.js';

const ctx = serverPerFile();

function codings(cc) {
  return (cc?.coding ?? []).map((c) => `${c.system}|${c.code}`);
}
function categories(obs) {
  return (obs.category ?? []).flatMap(codings);
}

async function createAndRead(body) {
  const r = await ctx.fhir.create(body, writeHeaders());
  assertStatus(r, 201);
  assertLocation(r, ctx.server.baseUrl, 'Observation', r.body.id, 1);
  assertEtag(r, 1);
  const read = await ctx.fhir.read('Observation', r.body.id);
  assertStatus(read, 200);
  assert.deepEqual(read.body, r.body);
  return r.body;
}

describe('Observation kinds', () => {
  const patient = newPatientId();

  it('what matters: care-experience-preference with LOINC 95541-9 and our what-matters code, verbatim text', async () => {
    const sent = whatMatters(patient, 'Being at home with my dog, and my grandchildren on Sundays — ¡sí!');
    const o = await createAndRead(sent);
    assert.equal(o.status, 'final');
    assert.equal(o.valueString, sent.valueString, 'the patient\'s own words, byte for byte');
    assert.ok(codings(o.code).includes(`${LOINC}|${CODES.careExperience}`), `code ${codings(o.code)}`);
    assert.ok(codings(o.code).includes(`${WMTY_CS}|${WHAT_MATTERS_CODE}`), `code ${codings(o.code)}`);
    assert.ok(categories(o).includes(`${US_CORE_CATEGORY}|care-experience-preference`), `category ${categories(o)}`);
    assert.equal(o.subject.reference, `Patient/${patient}`);
    assert.ok(o.meta.profile.includes(PROFILES.careExperience), `meta.profile ${o.meta.profile}`);
    assert.deepEqual(
      o.performer?.map((p) => p.reference),
      [`Patient/${patient}`],
      'performer = who said it',
    );
  });

  it('care-experience preference', async () => {
    const sent = careExperiencePreference(patient);
    const o = await createAndRead(sent);
    assert.equal(o.valueString, sent.valueString);
    assert.ok(codings(o.code).includes(`${LOINC}|${CODES.careExperience}`));
    assert.ok(!codings(o.code).includes(`${WMTY_CS}|${WHAT_MATTERS_CODE}`), 'a preference is not a what-matters');
    assert.ok(categories(o).includes(`${US_CORE_CATEGORY}|care-experience-preference`));
    assert.ok(o.meta.profile.includes(PROFILES.careExperience), `meta.profile ${o.meta.profile}`);
  });

  it('treatment-intervention preference: LOINC 75773-2, category treatment-intervention-preference', async () => {
    const sent = treatmentPreference(patient);
    const o = await createAndRead(sent);
    assert.equal(o.valueString, sent.valueString);
    assert.ok(codings(o.code).includes(`${LOINC}|${CODES.treatment}`), `code ${codings(o.code)}`);
    assert.ok(categories(o).includes(`${US_CORE_CATEGORY}|treatment-intervention-preference`));
    assert.ok(o.meta.profile.includes(PROFILES.treatment), `meta.profile ${o.meta.profile}`);
  });

  it('PCO GAS score: LOINC 107334-5, focus the Goal, value from LL6900-6', async () => {
    const [g] = await createAll(ctx.fhir, [goal(patient)]);
    const sent = gasScore(patient, g.id, -1);
    const o = await createAndRead(sent);
    assert.ok(codings(o.code).includes(`${LOINC}|${CODES.gasPatient}`), `code ${codings(o.code)}`);
    assert.deepEqual(
      o.focus?.map((f) => f.reference),
      [`Goal/${g.id}`],
    );
    assert.ok(codings(o.valueCodeableConcept).includes(`${LOINC}|LA34483-0`), `value ${codings(o.valueCodeableConcept)}`);
    assert.equal(o.effectiveDateTime && Date.parse(o.effectiveDateTime), Date.parse(sent.effectiveDateTime));
    assert.ok(o.meta.profile.some((p) => p.includes('pco')), `meta.profile ${o.meta.profile}`);
  });

  it('a GAS score for a Goal that does not exist is refused (400 or 422) with an OperationOutcome', async () => {
    const r = await ctx.fhir.create(gasScore(patient, '01AAAAAAAAAAAAAAAAAAAAAAAA', 1), writeHeaders());
    assert.ok([400, 404, 409, 422].includes(r.status), `answered ${r.status}`);
    assertOperationOutcome(r, r.status);
  });

  it('update with If-Match and delete work on Observations too', async () => {
    const o = await createAndRead(careExperiencePreference(patient, 'No visits before 9 in the morning'));
    const body = { ...o, valueString: 'No visits before 10 in the morning' };
    delete body.meta;
    const u = await ctx.fhir.update(body, writeHeaders({ 'If-Match': 'W/"1"' }));
    assertStatus(u, 200);
    assertEtag(u, 2);
    assert.equal(u.body.valueString, 'No visits before 10 in the morning');
    const stale = await ctx.fhir.update(body, writeHeaders({ 'If-Match': 'W/"1"' }));
    assertOperationOutcome(stale, 412);
    const d = await ctx.fhir.delete('Observation', o.id);
    assert.ok([200, 204].includes(d.status), `DELETE answered ${d.status}`);
    assertOperationOutcome(await ctx.fhir.read('Observation', o.id), 410);
  });
});
