// Provenance: _revinclude=Provenance:target brings each matched version's
// US Core Provenance (author from the X-Provenance header, the patient as
// informant when the patient said it); each is readable at Provenance/[id].
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';

import { assertBundle, assertStatus, matches } from '../lib/fhir.js';
import { goal, newPatientId, PROFILES, RECORDER, whatMatters, writeHeaders } from '../lib/fixtures.js';
import { createAll, serverPerFile } from '../lib/harness.js';

const ctx = serverPerFile();

function includes(bundle) {
  return (bundle.entry ?? []).filter((e) => e.search?.mode === 'include').map((e) => e.resource);
}

// Does Provenance `p` target `type/id` (any version)?
function targets(p, type, id) {
  return (p.target ?? []).some((t) => t.reference === `${type}/${id}` || t.reference?.startsWith(`${type}/${id}/_history/`));
}

describe('Provenance', () => {
  const patient = newPatientId();
  let g;
  let g2;
  let provenance;

  it('Goal?_id=..&_revinclude=Provenance:target includes the Provenance of the goal', async () => {
    [g, g2] = await createAll(ctx.fhir, [goal(patient), goal(patient)]);
    const r = await ctx.fhir.search('Goal', { _id: g.id, _revinclude: 'Provenance:target' });
    assertStatus(r, 200);
    assertBundle(r.body, 'searchset');
    assert.deepEqual(
      matches(r.body).map((x) => x.id),
      [g.id],
    );
    const provs = includes(r.body);
    assert.ok(provs.length >= 1, `no Provenance included: ${JSON.stringify(r.body).slice(0, 1500)}`);
    for (const p of provs) {
      assert.equal(p.resourceType, 'Provenance');
      assert.ok(targets(p, 'Goal', g.id), `included Provenance targets ${JSON.stringify(p.target)}`);
    }
    provenance = provs[0];
    if (r.body.total !== undefined) assert.equal(r.body.total, 1, 'total counts matches only');
  });

  it('the Provenance names the recorder (author) and the patient who said it, and declares US Core Provenance', () => {
    assert.ok(provenance, 'no Provenance');
    assert.ok(provenance.recorded, 'recorded');
    assert.ok(provenance.meta?.profile?.includes(PROFILES.provenance), `meta.profile ${provenance.meta?.profile}`);
    const agentOf = (code) =>
      provenance.agent.find((a) => (a.type?.coding ?? []).some((c) => c.code === code));
    const author = agentOf('author');
    assert.ok(author, `no author agent: ${JSON.stringify(provenance.agent)}`);
    assert.equal(author.who.reference, `Practitioner/${RECORDER.id}`);
    // US Core: onBehalfOf is required when who is a Practitioner (provenance-1).
    assert.ok(author.onBehalfOf, 'author.onBehalfOf (US Core provenance-1)');
    const informant = agentOf('informant');
    assert.ok(informant, `no informant agent: ${JSON.stringify(provenance.agent)}`);
    assert.equal(informant.who.reference, `Patient/${patient}`);
  });

  it('Provenance/[id] reads the same resource', async () => {
    assert.ok(provenance, 'no Provenance');
    const r = await ctx.fhir.read('Provenance', provenance.id);
    assertStatus(r, 200);
    assert.deepEqual(r.body, provenance);
  });

  it('an update adds a Provenance for the new version', async () => {
    assert.ok(g, 'setup failed');
    const body = { ...g, lifecycleStatus: 'on-hold' };
    delete body.meta;
    const u = await ctx.fhir.update(body, writeHeaders({ 'If-Match': 'W/"1"' }));
    assertStatus(u, 200);
    const r = await ctx.fhir.search('Goal', { _id: g.id, _revinclude: 'Provenance:target' });
    assertStatus(r, 200);
    const provs = includes(r.body);
    assert.ok(
      provs.some((p) => p.target.some((t) => t.reference === `Goal/${g.id}/_history/2`)),
      `no Provenance for version 2: ${JSON.stringify(provs.map((p) => p.target))}`,
    );
  });

  it('patient search with _revinclude includes a Provenance for each matched resource', async () => {
    assert.ok(g2, 'setup failed');
    const [wm] = await createAll(ctx.fhir, [whatMatters(patient)]);
    const goals = await ctx.fhir.search('Goal', { patient, _revinclude: 'Provenance:target' });
    assertStatus(goals, 200);
    const provs = includes(goals.body);
    for (const x of [g, g2]) assert.ok(provs.some((p) => targets(p, 'Goal', x.id)), `no Provenance for Goal/${x.id}`);
    const obs = await ctx.fhir.search('Observation', { patient, _revinclude: 'Provenance:target' });
    assertStatus(obs, 200);
    assert.ok(includes(obs.body).some((p) => targets(p, 'Observation', wm.id)), 'no Provenance for the Observation');
  });

  it('a DELETE with an X-Provenance reason: the deletion\'s Provenance and history entry carry it (valid R4)', async () => {
    const [d] = await createAll(ctx.fhir, [goal(patient)]);
    const why = 'Recorded on the wrong patient';
    const del = await ctx.fhir.request('DELETE', `Goal/${d.id}`, {
      headers: { 'X-Provenance': JSON.stringify({ resourceType: 'Provenance', reason: [{ text: why }] }) },
    });
    assertStatus(del, 204);
    const s = await ctx.fhir.search('Provenance', { target: `Goal/${d.id}/_history/2` });
    assertStatus(s, 200);
    const deletion = matches(s.body)[0];
    assert.equal(deletion?.activity?.coding?.[0]?.code, 'DELETE', JSON.stringify(deletion));
    assert.equal(deletion.reason?.[0]?.text, why);
    const h = await ctx.fhir.history('Goal', d.id);
    assertStatus(h, 200);
    const entry = h.body.entry[0];
    assert.equal(entry.request.method, 'DELETE');
    assert.equal(entry.response.outcome?.resourceType, 'OperationOutcome');
    assert.equal(entry.response.outcome.issue[0].details.text, why);
  });

  it('a write without X-Provenance is still recorded (unattributed) and still has a Provenance', async () => {
    const r = await ctx.fhir.create(goal(patient));
    assertStatus(r, 201);
    const s = await ctx.fhir.search('Goal', { _id: r.body.id, _revinclude: 'Provenance:target' });
    assertStatus(s, 200);
    assert.equal(includes(s.body).length >= 1, true);
  });
});
