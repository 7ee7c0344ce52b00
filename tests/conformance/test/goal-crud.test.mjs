// Goal (US Core Goal): create, read, vread, update with If-Match (stale ->
// 412), conditional create (If-None-Exist), delete then read -> 410.
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';

import {
  assertEtag,
  assertLocation,
  assertOperationOutcome,
  assertStatus,
  matchIds,
} from '../lib/fhir.js';
import { CODES, goal, LOINC, newIdentifier, newPatientId, PROFILES, writeHeaders } from '../lib/fixtures.js';
import { serverPerFile } from '../lib/harness.js';

const ctx = serverPerFile();

function codes(cc) {
  return (cc?.coding ?? []).map((c) => `${c.system}|${c.code}`);
}

describe('Goal create / read / vread / update / delete', () => {
  const patient = newPatientId();
  const sent = goal(patient);
  let created;

  it('create answers 201 with Location [base]/Goal/[id]/_history/1, ETag W/"1" and the resource', async () => {
    const r = await ctx.fhir.create(sent, writeHeaders());
    assertStatus(r, 201);
    created = r.body;
    assert.equal(created.resourceType, 'Goal');
    assert.match(created.id, /^[A-Za-z0-9\-.]{1,64}$/);
    assertLocation(r, ctx.server.baseUrl, 'Goal', created.id, 1);
    assertEtag(r, 1);
    assert.equal(created.meta.versionId, '1');
    assert.ok(created.meta.lastUpdated, 'meta.lastUpdated');
    assert.ok(created.meta.profile.includes(PROFILES.goal), `meta.profile ${created.meta.profile}`);
  });

  it('create keeps what was sent (US Core Goal elements, identifier, the patient\'s words)', () => {
    assert.ok(created, 'create failed');
    assert.equal(created.lifecycleStatus, 'active');
    assert.equal(created.description.text, sent.description.text);
    assert.equal(created.subject.reference, `Patient/${patient}`);
    assert.equal(created.startDate, '2026-11-01');
    assert.equal(created.target?.[0]?.dueDate, '2027-06-12');
    assert.deepEqual(codes(created.achievementStatus), codes(sent.achievementStatus));
    assert.ok(codes(created.category?.[0]).includes(`${LOINC}|${CODES.personalHealthGoal}`));
    assert.deepEqual(codes(created.priority), codes(sent.priority));
    assert.equal(created.expressedBy?.reference, `Patient/${patient}`);
    assert.deepEqual(created.identifier, sent.identifier);
  });

  it('read answers 200, ETag W/"1" and the same resource', async () => {
    assert.ok(created, 'create failed');
    const r = await ctx.fhir.read('Goal', created.id);
    assertStatus(r, 200);
    assertEtag(r, 1);
    assert.match(r.headers.get('content-type') ?? '', /^application\/fhir\+json/);
    assert.deepEqual(r.body, created);
  });

  it('read answers Last-Modified matching meta.lastUpdated (SHOULD)', async () => {
    assert.ok(created, 'create failed');
    const r = await ctx.fhir.read('Goal', created.id);
    const lm = r.headers.get('last-modified');
    assert.ok(lm, 'no Last-Modified header');
    const delta = Math.abs(Date.parse(lm) - Date.parse(created.meta.lastUpdated));
    assert.ok(delta < 1000, `Last-Modified ${lm} vs meta.lastUpdated ${created.meta.lastUpdated}`);
  });

  it('vread of _history/1 answers version 1', async () => {
    assert.ok(created, 'create failed');
    const r = await ctx.fhir.vread('Goal', created.id, 1);
    assertStatus(r, 200);
    assertEtag(r, 1);
    assert.deepEqual(r.body, created);
  });

  let v2;
  it('update with If-Match W/"1" answers 200, ETag W/"2", versionId 2', async () => {
    assert.ok(created, 'create failed');
    const body = {
      ...created,
      lifecycleStatus: 'completed',
      achievementStatus: {
        coding: [{ system: 'http://terminology.hl7.org/CodeSystem/goal-achievement', code: 'achieved' }],
      },
    };
    delete body.meta;
    const r = await ctx.fhir.update(body, writeHeaders({ 'If-Match': 'W/"1"' }));
    assertStatus(r, 200);
    assertEtag(r, 2);
    v2 = r.body;
    assert.equal(v2.id, created.id);
    assert.equal(v2.meta.versionId, '2');
    assert.equal(v2.lifecycleStatus, 'completed');
    assert.deepEqual(codes(v2.achievementStatus), ['http://terminology.hl7.org/CodeSystem/goal-achievement|achieved']);
    assert.equal(v2.description.text, sent.description.text);
    assert.ok(Date.parse(v2.meta.lastUpdated) >= Date.parse(created.meta.lastUpdated));
  });

  it('read answers version 2; vread of _history/1 still answers version 1', async () => {
    assert.ok(v2, 'update failed');
    const r = await ctx.fhir.read('Goal', created.id);
    assertStatus(r, 200);
    assertEtag(r, 2);
    assert.deepEqual(r.body, v2);
    const old = await ctx.fhir.vread('Goal', created.id, 1);
    assertStatus(old, 200);
    assert.deepEqual(old.body, created);
    const v2read = await ctx.fhir.vread('Goal', created.id, 2);
    assertStatus(v2read, 200);
    assert.deepEqual(v2read.body, v2);
  });

  it('update with a stale If-Match answers 412 with an OperationOutcome and changes nothing', async () => {
    assert.ok(v2, 'update failed');
    const body = { ...created, lifecycleStatus: 'cancelled' };
    delete body.meta;
    const r = await ctx.fhir.update(body, writeHeaders({ 'If-Match': 'W/"1"' }));
    assertOperationOutcome(r, 412);
    const now = await ctx.fhir.read('Goal', created.id);
    assertEtag(now, 2);
    assert.equal(now.body.lifecycleStatus, 'completed');
  });

  it('vread of a version that does not exist answers 404', async () => {
    assert.ok(created, 'create failed');
    const r = await ctx.fhir.vread('Goal', created.id, 99);
    assertOperationOutcome(r, 404);
  });

  it('delete answers 200 or 204; read then answers 410 Gone; the old versions stay readable', async () => {
    assert.ok(v2, 'update failed');
    const r = await ctx.fhir.delete('Goal', created.id);
    assert.ok([200, 204].includes(r.status), `DELETE answered ${r.status}: ${JSON.stringify(r.body)}`);
    const gone = await ctx.fhir.read('Goal', created.id);
    assertOperationOutcome(gone, 410);
    const old = await ctx.fhir.vread('Goal', created.id, 2);
    assertStatus(old, 200);
    assert.deepEqual(old.body, v2);
  });

  it('vread of the version the delete made answers 410', async () => {
    assert.ok(v2, 'update failed');
    assertOperationOutcome(await ctx.fhir.vread('Goal', created.id, 3), 410);
  });

  it('a deleted Goal is no longer found by search', async () => {
    assert.ok(created, 'create failed');
    const r = await ctx.fhir.search('Goal', { patient });
    assertStatus(r, 200);
    assert.ok(!matchIds(r.body).includes(created.id), 'deleted goal still matches');
  });

  it('deleting it again has no effect and answers 200 or 204', async () => {
    assert.ok(created, 'create failed');
    const r = await ctx.fhir.delete('Goal', created.id);
    assert.ok([200, 204].includes(r.status), `second DELETE answered ${r.status}: ${JSON.stringify(r.body)}`);
  });
});

describe('Prefer: return=minimal', () => {
  it('create answers 201 with Location and ETag and no body', async () => {
    const r = await ctx.fhir.create(goal(newPatientId()), writeHeaders({ Prefer: 'return=minimal' }));
    assertStatus(r, 201);
    assert.equal(r.body, null, `body: ${JSON.stringify(r.body)}`);
    assertEtag(r, 1);
    assert.match(r.headers.get('location') ?? '', /\/fhir\/Goal\/[^/]+\/_history\/1$/);
  });
});

describe('X-Request-Id (wmty: safe retries)', () => {
  it('a create retried with the same X-Request-Id answers the first result and stores one Goal', async () => {
    const patient = newPatientId();
    const body = goal(patient);
    const headers = writeHeaders({ 'X-Request-Id': `conformance-${patient}` });
    const first = await ctx.fhir.create(body, headers);
    assertStatus(first, 201);
    const again = await ctx.fhir.create(body, headers);
    assert.ok([200, 201].includes(again.status), `retry answered ${again.status}`);
    assert.equal(again.body.id, first.body.id);
    assert.deepEqual(matchIds((await ctx.fhir.search('Goal', { patient })).body), [first.body.id]);
  });
});

describe('Goal conditional create (If-None-Exist)', () => {
  const patient = newPatientId();
  const identifier = newIdentifier();
  const ifNoneExist = `identifier=${identifier.system}|${identifier.value}`;
  let first;

  it('with no match: creates (201)', async () => {
    const r = await ctx.fhir.create(goal(patient, { identifier: [identifier] }), writeHeaders({ 'If-None-Exist': ifNoneExist }));
    assertStatus(r, 201);
    first = r.body;
    assertLocation(r, ctx.server.baseUrl, 'Goal', first.id, 1);
  });

  it('with one match: answers 200 and creates no duplicate', async () => {
    assert.ok(first, 'first create failed');
    const r = await ctx.fhir.create(
      goal(patient, { identifier: [identifier], description: { text: 'a second copy that must not be stored' } }),
      writeHeaders({ 'If-None-Exist': ifNoneExist }),
    );
    assertStatus(r, 200);
    if (r.body) {
      assert.equal(r.body.id, first.id, 'answers the existing resource');
      assert.equal(r.body.description.text, first.description.text);
    }
    const found = await ctx.fhir.search('Goal', { identifier: `${identifier.system}|${identifier.value}` });
    assertStatus(found, 200);
    assert.deepEqual(matchIds(found.body), [first.id]);
    const all = await ctx.fhir.search('Goal', { patient });
    assert.deepEqual(matchIds(all.body), [first.id]);
  });

  it('with more than one match: answers 412 and creates nothing', async () => {
    const shared = newIdentifier();
    for (let i = 0; i < 2; i++) {
      assertStatus(await ctx.fhir.create(goal(patient, { identifier: [shared] }), writeHeaders()), 201);
    }
    const r = await ctx.fhir.create(
      goal(patient, { identifier: [shared] }),
      writeHeaders({ 'If-None-Exist': `identifier=${shared.system}|${shared.value}` }),
    );
    assertOperationOutcome(r, 412);
    const found = await ctx.fhir.search('Goal', { identifier: `${shared.system}|${shared.value}` });
    assert.equal(matchIds(found.body).length, 2);
  });
});
