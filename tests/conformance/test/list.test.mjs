// List: a patient's ranked priorities (PACIO ADI PersonalPrioritiesOrganizer,
// LOINC 81340-2). One per patient, id = the patient id, written with PUT.
// Read, vread, update with If-Match, history, search by patient and code.
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';

import { assertBundle, assertEtag, assertOperationOutcome, assertStatus, matchIds } from '../lib/fhir.js';
import {
  careExperiencePreference,
  CODES,
  goal,
  LOINC,
  newPatientId,
  priorities,
  PROFILES,
  whatMatters,
  writeHeaders,
} from '../lib/fixtures.js';
import { createAll, serverPerFile } from '../lib/harness.js';

const ctx = serverPerFile();

function refs(list) {
  return (list.entry ?? []).map((e) => e.item.reference);
}

describe('List (priorities)', () => {
  const patient = newPatientId();
  const other = newPatientId();
  let items;
  let v1;
  let v2;

  it('PUT List/[patient] sets the ranked priorities (version 1)', async () => {
    const [g, wm, pref] = await createAll(ctx.fhir, [goal(patient), whatMatters(patient), careExperiencePreference(patient)]);
    items = [`Observation/${wm.id}`, `Goal/${g.id}`, `Observation/${pref.id}`];
    const r = await ctx.fhir.update(priorities(patient, items), writeHeaders());
    assert.ok([200, 201].includes(r.status), `PUT answered ${r.status}: ${JSON.stringify(r.body)}`);
    assertEtag(r, 1);
    v1 = r.body;
    assert.equal(v1.id, patient);
    assert.equal(v1.meta.versionId, '1');
    assert.deepEqual(refs(v1), items, 'order is the ranking');
    assert.ok((v1.code?.coding ?? []).some((c) => c.system === LOINC && c.code === CODES.priorities));
    assert.equal(v1.subject.reference, `Patient/${patient}`);
    assert.equal(v1.status, 'current');
    assert.ok(v1.title, 'title (required by the ADI profile)');
    assert.ok(
      (v1.orderedBy?.coding ?? []).some(
        (c) => c.system === 'http://terminology.hl7.org/CodeSystem/list-order' && c.code === 'priority',
      ),
      'orderedBy list-order#priority',
    );
    assert.ok(v1.meta.profile.includes(PROFILES.priorities), `meta.profile ${v1.meta.profile}`);
  });

  it('read answers it with ETag W/"1"', async () => {
    assert.ok(v1, 'PUT failed');
    const r = await ctx.fhir.read('List', patient);
    assertStatus(r, 200);
    assertEtag(r, 1);
    assert.deepEqual(r.body, v1);
  });

  it('PUT with If-Match W/"1" re-ranks (version 2); a stale If-Match answers 412', async () => {
    assert.ok(v1, 'PUT failed');
    const reranked = [items[1], items[0]];
    const r = await ctx.fhir.update(priorities(patient, reranked), writeHeaders({ 'If-Match': 'W/"1"' }));
    assertStatus(r, 200);
    assertEtag(r, 2);
    v2 = r.body;
    assert.deepEqual(refs(v2), reranked);
    const stale = await ctx.fhir.update(priorities(patient, items), writeHeaders({ 'If-Match': 'W/"1"' }));
    assertOperationOutcome(stale, 412);
  });

  it('vread _history/1 answers the first ranking', async () => {
    assert.ok(v2, 'update failed');
    const r = await ctx.fhir.vread('List', patient, 1);
    assertStatus(r, 200);
    assert.deepEqual(r.body, v1);
  });

  it('history answers both versions, newest first', async () => {
    assert.ok(v2, 'update failed');
    const r = await ctx.fhir.history('List', patient);
    assertStatus(r, 200);
    assertBundle(r.body, 'history');
    const versions = (r.body.entry ?? []).map((e) => e.resource?.meta?.versionId);
    assert.deepEqual(versions, ['2', '1']);
  });

  it('an item that is not one of the patient\'s resources is refused', async () => {
    const [theirs] = await createAll(ctx.fhir, [goal(other)]);
    const r = await ctx.fhir.update(priorities(patient, [`Goal/${theirs.id}`]), writeHeaders({ 'If-Match': 'W/"2"' }));
    assert.ok([400, 422].includes(r.status), `answered ${r.status}`);
    assertOperationOutcome(r, r.status);
  });

  it('search by patient and by code', async () => {
    assert.ok(v2, 'update failed');
    const byPatient = await ctx.fhir.search('List', { patient });
    assertStatus(byPatient, 200);
    assert.deepEqual(matchIds(byPatient.body), [patient]);
    const byCode = await ctx.fhir.search('List', { patient, code: `${LOINC}|${CODES.priorities}` });
    assertStatus(byCode, 200);
    assert.deepEqual(matchIds(byCode.body), [patient]);
    const codeOnly = await ctx.fhir.search('List', { code: CODES.priorities });
    assertStatus(codeOnly, 200);
    assert.ok(matchIds(codeOnly.body).includes(patient));
    const otherCode = await ctx.fhir.search('List', { patient, code: `${LOINC}|81380-8` });
    assertStatus(otherCode, 200);
    assert.deepEqual(matchIds(otherCode.body), []);
    const otherPatient = await ctx.fhir.search('List', { patient: newPatientId() });
    assertStatus(otherPatient, 200);
    assert.deepEqual(matchIds(otherPatient.body), []);
  });
});
