// Patient: who the patient is, as the hospital's systems send it (US Core
// Patient, id = the EHR's patient id), written with PUT. Every response is
// validated against the R4 StructureDefinitions (lib/fhir.js), so what wmty
// returns, kept elements included, is valid FHIR.
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';

import { assertBundle, assertEtag, assertOperationOutcome, assertStatus, matchIds } from '../lib/fhir.js';
import { goal, newPatientId } from '../lib/fixtures.js';
import { createAll, serverPerFile } from '../lib/harness.js';

const ctx = serverPerFile();
const US_CORE_PATIENT = 'http://hl7.org/fhir/us/core/StructureDefinition/us-core-patient';

function patient(id, { family = 'Santos', birthDate = '1950-03-14', mrn = `MRN-${id}` } = {}) {
  return {
    resourceType: 'Patient',
    id,
    extension: [{ url: 'http://hl7.org/fhir/us/core/StructureDefinition/us-core-birthsex', valueCode: 'F' }],
    identifier: [{
      type: { coding: [{ system: 'http://terminology.hl7.org/CodeSystem/v2-0203', code: 'MR' }] },
      system: 'urn:oid:2.16.840.1.113883.19.5', value: mrn,
    }],
    active: true,
    name: [{ use: 'official', family, given: ['Maria', 'José'] }],
    telecom: [{ system: 'phone', value: '555-0100', use: 'home' }],
    gender: 'female',
    birthDate,
    address: [{ line: ['1 Harbour Road'], city: 'Porto', postalCode: '4000', country: 'PT' }],
    communication: [{ language: { coding: [{ system: 'urn:ietf:bcp:47', code: 'pt' }] }, preferred: true }],
  };
}

describe('Patient', () => {
  const id = newPatientId('pt');

  it('PUT creates it (201, version 1) and answers valid US Core Patient JSON with what was sent', async () => {
    const r = await ctx.fhir.update(patient(id));
    assertStatus(r, 201);
    assertEtag(r, 1);
    assert.equal(r.body.id, id);
    assert.ok(r.body.meta.profile.includes(US_CORE_PATIENT));
    assert.deepEqual(r.body.name, patient(id).name);
    assert.deepEqual(r.body.identifier, patient(id).identifier);
    assert.deepEqual(r.body.address, patient(id).address);
    assert.deepEqual(r.body.communication, patient(id).communication);
    assert.equal(r.body.birthDate, '1950-03-14');
  });

  it('PUT again is an update (200, version 2); read, vread and history follow', async () => {
    const r = await ctx.fhir.update(patient(id, { family: 'Santos-Lima' }));
    assertStatus(r, 200);
    assertEtag(r, 2);
    const read = await ctx.fhir.read('Patient', id);
    assertStatus(read, 200);
    assert.equal(read.body.name[0].family, 'Santos-Lima');
    const v1 = await ctx.fhir.vread('Patient', id, 1);
    assertStatus(v1, 200);
    assert.equal(v1.body.name[0].family, 'Santos');
    const h = await ctx.fhir.history('Patient', id);
    assertStatus(h, 200);
    assertBundle(h.body, 'history');
    assert.deepEqual(h.body.entry.map((e) => e.resource.meta.versionId), ['2', '1']);
  });

  it('search by name, birthdate, identifier and _id', async () => {
    const other = newPatientId('pt');
    await ctx.fhir.update(patient(other, { family: 'Oyelaran', birthDate: '1981-11-30', mrn: 'OY-1' }));
    const byName = await ctx.fhir.search('Patient', { name: 'oyel' });
    assertStatus(byName, 200);
    assert.deepEqual(matchIds(byName.body), [other]);
    const byBirth = await ctx.fhir.search('Patient', { birthdate: '1981-11-30', name: 'oyel' });
    assert.deepEqual(matchIds(byBirth.body), [other]);
    const byMrn = await ctx.fhir.search('Patient', { identifier: 'urn:oid:2.16.840.1.113883.19.5|OY-1' });
    assert.deepEqual(matchIds(byMrn.body), [other]);
    const byId = await ctx.fhir.search('Patient', { _id: id });
    assert.deepEqual(matchIds(byId.body), [id]);
  });

  it('$everything starts with the Patient', async () => {
    await createAll(ctx.fhir, [goal(id)]);
    const r = await ctx.fhir.everything(id);
    assertStatus(r, 200);
    assert.equal(r.body.entry[0].resource.resourceType, 'Patient');
    assert.equal(r.body.entry[0].resource.id, id);
  });

  it('refuses an element R4 Patient does not define, and writes nothing', async () => {
    const fresh = newPatientId('pt');
    const r = await ctx.fhir.update({ ...patient(fresh), favouriteColour: 'blue' });
    assertOperationOutcome(r, 400);
    assert.ok(r.body.issue.some((i) => (i.expression ?? []).includes('Patient.favouriteColour')));
    assertOperationOutcome(await ctx.fhir.read('Patient', fresh), 404);
  });
});
