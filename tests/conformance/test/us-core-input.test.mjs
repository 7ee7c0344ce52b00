// What other systems send: US Core payloads that leave out who said it
// (Goal.expressedBy, Observation.performer, List.source) or code a goal
// without text are accepted, and what the server then returns is valid FHIR
// that does not invent the patient as the speaker; a practitioner speaker is
// kept; elements FHIR R4 does not define are refused naming their path, and
// nothing is stored. Every returned resource is validated (lib/fhir.js).
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';

import { assertOperationOutcome, matchIds } from '../lib/fhir.js';
import {
  careExperiencePreference,
  gasScore,
  goal,
  newPatientId,
  priorities,
  writeHeaders,
  CODES,
} from '../lib/fixtures.js';
import { createAll, serverPerFile } from '../lib/harness.js';

const ctx = serverPerFile();

function without(resource, ...names) {
  const copy = structuredClone(resource);
  for (const n of names) delete copy[n];
  return copy;
}

function expressions(oo) {
  return (oo.issue ?? []).flatMap((i) => i.expression ?? []);
}

describe('US Core payloads from other systems', () => {
  it('a Goal without expressedBy is accepted and comes back without one ("not stated")', async () => {
    const patient = newPatientId();
    const [g] = await createAll(ctx.fhir, [without(goal(patient), 'expressedBy')]);
    assert.equal(g.expressedBy, undefined);
    assert.match(g.text.div, /not stated/);
    // Not the patient: no ADI PersonalGoal profile (it requires expressedBy = subject).
    assert.ok(!g.meta.profile.some((p) => p.includes('ADI-PersonalGoal')), g.meta.profile.join());
    const prov = await ctx.fhir.search('Provenance', { target: `Goal/${g.id}` });
    assert.equal(prov.status, 200);
    const agents = prov.body.entry[0].resource.agent;
    assert.deepEqual(
      agents.map((a) => a.type.coding[0].code),
      ['author'],
      'no informant is invented',
    );
  });

  it('a Goal coded only (description.coding, no text) is accepted and returned as it came', async () => {
    const patient = newPatientId();
    const description = {
      coding: [{ system: 'http://snomed.info/sct', code: '289169006', display: 'Able to walk' }],
    };
    const [g] = await createAll(ctx.fhir, [without(goal(patient, { description }), 'expressedBy')]);
    assert.deepEqual(g.description, description);
    const read = await ctx.fhir.read('Goal', g.id);
    assert.deepEqual(read.body.description, description);
  });

  it('an Observation without performer is accepted and comes back without one', async () => {
    const patient = newPatientId();
    const [o] = await createAll(ctx.fhir, [without(careExperiencePreference(patient), 'performer')]);
    assert.equal(o.performer, undefined);
  });

  it('a priorities List without source is accepted and comes back without one', async () => {
    const patient = newPatientId();
    const [g] = await createAll(ctx.fhir, [goal(patient)]);
    const r = await ctx.fhir.update(without(priorities(patient, [`Goal/${g.id}`]), 'source'), writeHeaders());
    assert.equal(r.status, 201, JSON.stringify(r.body));
    assert.equal(r.body.source, undefined);
  });

  it('a practitioner who scored a goal is its performer, and the Provenance informant', async () => {
    const patient = newPatientId();
    const [g] = await createAll(ctx.fhir, [goal(patient)]);
    const [s] = await createAll(ctx.fhir, [
      gasScore(patient, g.id, 1, CODES.gasPractitioner, {
        performer: [{ reference: 'Practitioner/md-4', display: 'Dr. Lee' }],
      }),
    ]);
    assert.deepEqual(s.performer, [{ reference: 'Practitioner/md-4', display: 'Dr. Lee' }]);
    const prov = await ctx.fhir.search('Provenance', { target: `Observation/${s.id}` });
    const informant = prov.body.entry[0].resource.agent.find((a) => a.type.coding[0].code === 'informant');
    assert.equal(informant.who.reference, 'Practitioner/md-4');
    assert.ok(informant.onBehalfOf, 'US Core provenance-1: onBehalfOf for a Practitioner');
  });
});

describe('elements FHIR R4 does not define', () => {
  it('are refused with 400, an issue naming each path, and nothing stored', async () => {
    const patient = newPatientId();
    const body = goal(patient, {
      foo: 1,
      subject: { reference: `Patient/${patient}`, foo: true },
      target: [{ dueDate: '2027-06-12', bar: 'x' }],
    });
    const r = await ctx.fhir.create(body, writeHeaders());
    assertOperationOutcome(r, 400);
    assert.deepEqual(expressions(r.body).sort(), ['Goal.foo', 'Goal.subject.foo', 'Goal.target[0].bar']);
    const search = await ctx.fhir.search('Goal', { patient });
    assert.deepEqual(matchIds(search.body), []);
  });

  it('inside an Observation component too', async () => {
    const patient = newPatientId();
    const body = careExperiencePreference(patient, 'Quiet at night', {
      component: [
        {
          code: { coding: [{ system: 'http://loinc.org', code: '75281-6' }] },
          valueString: 'faith matters',
          bar: 1,
        },
      ],
    });
    const r = await ctx.fhir.create(body, writeHeaders());
    assertOperationOutcome(r, 400);
    assert.deepEqual(expressions(r.body), ['Observation.component[0].bar']);
  });
});
