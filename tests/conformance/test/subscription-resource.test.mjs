// Subscription (Subscriptions Backport IG 1.1.0, issue 19): what the server
// answers for the resource itself is valid R4 (create, read, search, history,
// delete) and a bad Subscription is an OperationOutcome that stores nothing.
// Notifications and their receiver are tested elsewhere (delivery).
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';

import { Fhir, assertBundle, assertOperationOutcome, assertStatus, matchIds } from '../lib/fhir.js';
import { startServer } from '../lib/server.js';

const BACKPORT = 'http://hl7.org/fhir/uv/subscriptions-backport/StructureDefinition';
const WHAT_MATTERS = 'https://wmty.dev/fhir/SubscriptionTopic/what-matters-changed';

function subscription(overrides = {}) {
  return {
    resourceType: 'Subscription',
    status: 'requested',
    reason: 'conformance',
    criteria: WHAT_MATTERS,
    _criteria: { extension: [{ url: `${BACKPORT}/backport-filter-criteria`, valueString: 'Goal?patient=Patient/p1' }] },
    channel: {
      extension: [{ url: `${BACKPORT}/backport-heartbeat-period`, valueUnsignedInt: 60 }],
      type: 'rest-hook',
      endpoint: 'http://127.0.0.1:9/conformance-hook',
      payload: 'application/fhir+json',
      _payload: { extension: [{ url: `${BACKPORT}/backport-payload-content`, valueCode: 'full-resource' }] },
      header: ['Authorization: Bearer conformance-receiver'],
    },
    ...overrides,
  };
}

describe('Subscription resource', () => {
  const ctx = { server: null, fhir: null };
  before(async () => {
    ctx.server = await startServer({ extraArgs: ['--subscription_allow_private_endpoints'] });
    ctx.fhir = new Fhir(ctx.server.baseUrl);
  });
  after(async () => {
    if (ctx.server) await ctx.server.stop();
  });

  it('create, read, search, history and delete answer valid R4', async () => {
    const created = await ctx.fhir.create(subscription());
    assertStatus(created, 201);
    const id = created.body.id;
    assert.equal(created.body.criteria, WHAT_MATTERS);
    assert.deepEqual(created.body.channel.header, ['Authorization: (hidden)']);
    const read = await ctx.fhir.read('Subscription', id);
    assertStatus(read, 200);
    assert.equal(read.body.meta.profile[0], `${BACKPORT}/backport-subscription`);
    const found = await ctx.fhir.search('Subscription', { criteria: WHAT_MATTERS });
    assertStatus(found, 200);
    assertBundle(found.body, 'searchset');
    assert.ok(matchIds(found.body).includes(id));
    assertStatus(await ctx.fhir.delete('Subscription', id), 204);
    const history = await ctx.fhir.history('Subscription', id);
    assertStatus(history, 200);
    assertBundle(history.body, 'history');
    // The create and the delete, and any status the server set in between (its handshake to an
    // endpoint nobody listens on fails: error), each a version.
    assert.ok(history.body.entry.length >= 2, `history has ${history.body.entry.length} entries`);
  });

  it('a bad Subscription is an OperationOutcome and stores nothing', async () => {
    const before = matchIds((await ctx.fhir.search('Subscription', {})).body);
    for (const bad of [
      subscription({ criteria: 'https://wmty.dev/fhir/SubscriptionTopic/unknown' }),
      subscription({ channel: { ...subscription().channel, type: 'websocket' } }),
      subscription({ channel: { ...subscription().channel, endpoint: 'not a url' } }),
    ]) {
      assertOperationOutcome(await ctx.fhir.create(bad), 400);
    }
    assert.deepEqual(matchIds((await ctx.fhir.search('Subscription', {})).body), before);
  });
});
