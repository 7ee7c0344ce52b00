// metadata: the CapabilityStatement is valid FHIR R4 and declares everything
// this suite tests (interactions, search parameters, _revinclude, conditional
// create, versioning, $everything, CodeSystem and Provenance reads).
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';

import { assertStatus } from '../lib/fhir.js';
import { serverPerFile } from '../lib/harness.js';

const ctx = serverPerFile();

// What the suite exercises, per resource type.
const TESTED = {
  Goal: {
    interactions: ['read', 'vread', 'update', 'delete', 'history-instance', 'history-type', 'create', 'search-type'],
    searchParams: [
      'patient',
      'lifecycle-status',
      'achievement-status',
      'category',
      'target-date',
      'identifier',
      '_id',
      '_lastUpdated',
    ],
    revinclude: ['Provenance:target'],
    conditionalCreate: true,
  },
  Observation: {
    interactions: ['read', 'vread', 'update', 'delete', 'history-instance', 'history-type', 'create', 'search-type'],
    searchParams: ['patient', 'code', 'category', 'date', 'focus', 'identifier', '_id'],
    conditionalCreate: true,
  },
  List: {
    interactions: ['read', 'vread', 'update', 'history-instance', 'search-type'],
    searchParams: ['patient', 'code'],
  },
  Provenance: { interactions: ['read'] },
  CodeSystem: { interactions: ['read'] },
};

describe('metadata', () => {
  let cs;
  let rest;

  it('GET [base]/metadata answers a valid CapabilityStatement', async () => {
    const r = await ctx.fhir.metadata();
    assertStatus(r, 200);
    assert.equal(r.body.resourceType, 'CapabilityStatement');
    assert.match(r.headers.get('content-type') ?? '', /^application\/fhir\+json/);
    cs = r.body;
    assert.equal(cs.fhirVersion, '4.0.1');
    assert.equal(cs.kind, 'instance');
    assert.ok(
      cs.format.some((f) => f === 'json' || f.startsWith('application/fhir+json')),
      `format ${cs.format} must include json`,
    );
    rest = cs.rest?.find((x) => x.mode === 'server');
    assert.ok(rest, 'rest[mode=server]');
  });

  for (const [type, want] of Object.entries(TESTED)) {
    it(`declares what is tested for ${type}`, () => {
      assert.ok(rest, 'CapabilityStatement not read');
      const res = rest.resource?.find((x) => x.type === type);
      assert.ok(res, `rest.resource[type=${type}] missing`);
      const interactions = new Set((res.interaction ?? []).map((i) => i.code));
      for (const code of want.interactions) {
        assert.ok(interactions.has(code), `${type}: interaction ${code} not declared (has ${[...interactions]})`);
      }
      const declared = new Set([
        ...(res.searchParam ?? []).map((p) => p.name),
        ...(rest.searchParam ?? []).map((p) => p.name),
      ]);
      for (const name of want.searchParams ?? []) {
        assert.ok(declared.has(name), `${type}: search parameter ${name} not declared (has ${[...declared]})`);
      }
      for (const rev of want.revinclude ?? []) {
        assert.ok((res.searchRevInclude ?? []).includes(rev), `${type}: searchRevInclude ${rev} not declared`);
      }
      if (want.conditionalCreate) assert.equal(res.conditionalCreate, true, `${type}: conditionalCreate`);
      if (want.interactions.includes('vread')) {
        assert.ok(['versioned', 'versioned-update'].includes(res.versioning), `${type}: versioning ${res.versioning}`);
        assert.equal(res.readHistory, true, `${type}: readHistory`);
      }
    });
  }

  it('declares Patient/[id]/$everything', () => {
    assert.ok(rest, 'CapabilityStatement not read');
    const patient = rest.resource?.find((x) => x.type === 'Patient');
    const ops = [...(patient?.operation ?? []), ...(rest.operation ?? [])];
    assert.ok(
      ops.some((o) => o.name === 'everything'),
      `operation everything not declared (Patient has ${JSON.stringify(patient?.operation)})`,
    );
  });

  it('declares the profiles it serves (US Core Goal among them)', () => {
    assert.ok(rest, 'CapabilityStatement not read');
    const goal = rest.resource.find((x) => x.type === 'Goal');
    const profiles = [goal.profile, ...(goal.supportedProfile ?? [])].filter(Boolean);
    assert.ok(
      profiles.some((p) => p.startsWith('http://hl7.org/fhir/us/core/StructureDefinition/us-core-goal')),
      `Goal profiles ${profiles}`,
    );
  });
});
