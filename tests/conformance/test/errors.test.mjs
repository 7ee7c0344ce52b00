// Errors: each is the right HTTP status with a valid OperationOutcome.
//   malformed JSON 400, wrong resourceType 400, body id != URL id 400,
//   PUT without id 400, a resource breaking a required rule 400/422,
//   unknown type 404, unknown id 404, unsupported media type 415, XML-only
//   Accept 406.
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';

import { assertOperationOutcome } from '../lib/fhir.js';
import { goal, newPatientId, whatMatters, writeHeaders } from '../lib/fixtures.js';
import { createAll, serverPerFile } from '../lib/harness.js';

const ctx = serverPerFile();
const FHIR_JSON = 'application/fhir+json';

function expressions(oo) {
  return (oo.issue ?? []).flatMap((i) => [...(i.expression ?? []), ...(i.location ?? [])]);
}

describe('errors answer an OperationOutcome', () => {
  const patient = newPatientId();

  it('malformed JSON: 400', async () => {
    const r = await ctx.fhir.request('POST', 'Goal', {
      body: '{"resourceType": "Goal", "lifecycleStatus": ',
      headers: { 'content-type': FHIR_JSON, ...writeHeaders() },
    });
    assertOperationOutcome(r, 400);
  });

  it('a JSON body that is not an object: 400', async () => {
    const r = await ctx.fhir.request('POST', 'Goal', {
      body: '["Goal"]',
      headers: { 'content-type': FHIR_JSON, ...writeHeaders() },
    });
    assertOperationOutcome(r, 400);
  });

  it('wrong resourceType (an Observation POSTed to Goal): 400', async () => {
    const r = await ctx.fhir.request('POST', 'Goal', {
      body: JSON.stringify(whatMatters(patient)),
      headers: { 'content-type': FHIR_JSON, ...writeHeaders() },
    });
    assertOperationOutcome(r, 400);
  });

  it('PUT whose body id differs from the URL id: 400', async () => {
    const [g] = await createAll(ctx.fhir, [goal(patient)]);
    const body = { ...g, id: `${g.id}X` };
    delete body.meta;
    const r = await ctx.fhir.update(body, writeHeaders({ 'If-Match': 'W/"1"' }), g.id);
    assertOperationOutcome(r, 400);
  });

  it('PUT whose body has no id: 400', async () => {
    const [g] = await createAll(ctx.fhir, [goal(patient)]);
    const body = { ...g };
    delete body.id;
    delete body.meta;
    const r = await ctx.fhir.update(body, writeHeaders({ 'If-Match': 'W/"1"' }), g.id);
    assertOperationOutcome(r, 400);
  });

  it('a Goal without lifecycleStatus: 400 or 422, naming Goal.lifecycleStatus', async () => {
    const body = goal(patient);
    delete body.lifecycleStatus;
    const r = await ctx.fhir.create(body, writeHeaders());
    assert.ok([400, 422].includes(r.status), `answered ${r.status}`);
    assertOperationOutcome(r, r.status);
    assert.ok(
      expressions(r.body).some((e) => e.includes('lifecycleStatus')),
      `issue.expression ${expressions(r.body)}`,
    );
  });

  it('a Goal whose subject is not a Patient: 400 or 422', async () => {
    const r = await ctx.fhir.create(goal(patient, { subject: { reference: 'Group/g1' } }), writeHeaders());
    assert.ok([400, 422].includes(r.status), `answered ${r.status}`);
    assertOperationOutcome(r, r.status);
  });

  it('unknown resource type: 404', async () => {
    assertOperationOutcome(await ctx.fhir.request('GET', 'Foo/123'), 404);
    assertOperationOutcome(await ctx.fhir.request('GET', 'Foo?patient=x'), 404);
  });

  it('unknown id: 404', async () => {
    assertOperationOutcome(await ctx.fhir.read('Goal', '01AAAAAAAAAAAAAAAAAAAAAAAA'), 404);
    assertOperationOutcome(await ctx.fhir.read('Observation', 'no-such-id'), 404);
    assertOperationOutcome(await ctx.fhir.read('Provenance', 's999999'), 404);
  });

  it('update of an unknown id: 404 (or 405/422 where update-as-create is not allowed)', async () => {
    const body = goal(patient, { id: '01AAAAAAAAAAAAAAAAAAAAAAAB' });
    const r = await ctx.fhir.update(body, writeHeaders());
    assert.ok([404, 405, 422].includes(r.status), `answered ${r.status}`);
    assertOperationOutcome(r, r.status);
  });

  it('unsupported media type: 415', async () => {
    const r = await ctx.fhir.request('POST', 'Goal', {
      body: JSON.stringify(goal(patient)),
      headers: { 'content-type': 'text/plain', ...writeHeaders() },
    });
    assertOperationOutcome(r, 415);
    const xml = await ctx.fhir.request('POST', 'Goal', {
      body: '<Goal xmlns="http://hl7.org/fhir"/>',
      headers: { 'content-type': 'application/fhir+xml', ...writeHeaders() },
    });
    assertOperationOutcome(xml, 415);
  });

  it('an Accept header asking for XML only: 406', async () => {
    assertOperationOutcome(await ctx.fhir.request('GET', 'metadata', { headers: { accept: 'application/fhir+xml' } }), 406);
  });

  it('a malformed If-Match: 400', async () => {
    const [g] = await createAll(ctx.fhir, [goal(patient)]);
    const body = { ...g };
    delete body.meta;
    const r = await ctx.fhir.update(body, writeHeaders({ 'If-Match': 'not-an-etag' }));
    assertOperationOutcome(r, 400);
  });

  it('an X-Provenance header that is not a Provenance: 400', async () => {
    const r = await ctx.fhir.create(goal(patient), { 'X-Provenance': '{"resourceType":"Patient"}' });
    assertOperationOutcome(r, 400);
  });
});
