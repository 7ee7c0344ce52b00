// AuditEvent (with --auth_disabled every caller may read the trail): a write
// leaves an AuditEvent about its patient; search and read return valid R4.
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';

import { assertBundle, assertStatus, matches } from '../lib/fhir.js';
import { goal, newPatientId } from '../lib/fixtures.js';
import { createAll, serverPerFile } from '../lib/harness.js';

const ctx = serverPerFile();

describe('AuditEvent', () => {
  it('a create is audited; search and read return valid R4 AuditEvents', async () => {
    const patient = newPatientId();
    const [g] = await createAll(ctx.fhir, [goal(patient)]);
    let events = [];
    for (let i = 0; i < 100 && events.length === 0; i++) {
      const r = await ctx.fhir.search('AuditEvent', { patient, action: 'C' });
      assertStatus(r, 200);
      assertBundle(r.body, 'searchset');
      events = matches(r.body);
      if (events.length === 0) await new Promise((res) => setTimeout(res, 50));
    }
    assert.ok(events.length >= 1, 'no AuditEvent for the create');
    const e = events[0];
    assert.equal(e.type.code, 'rest');
    assert.equal(e.outcome, '0');
    assert.ok(e.entity.some((x) => x.what?.reference === `Goal/${g.id}`));
    const read = await ctx.fhir.read('AuditEvent', e.id);
    assertStatus(read, 200);
    assert.equal(read.body.id, e.id);
  });
});
