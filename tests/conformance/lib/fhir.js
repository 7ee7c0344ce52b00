// The suite talks to wmtyd only through fhir-kit-client (a FHIR client
// library nobody here wrote). Every call goes through `call`, which turns the
// library's result or error into { status, headers, body } and validates the
// body, when it is a resource, against the FHIR R4 StructureDefinitions: a
// server response that is not valid FHIR fails the test that asked for it.
import assert from 'node:assert/strict';
import { Client } from 'fhir-kit-client';

import { assertValidResource } from './validate.js';

export class Fhir {
  constructor(baseUrl) {
    this.baseUrl = baseUrl;
    this.client = new Client({ baseUrl });
    this.validated = 0;
  }

  // Runs one fhir-kit-client call. `what` names it in failure messages.
  async call(what, fn) {
    let status;
    let headers;
    let body;
    try {
      const result = await fn(this.client);
      const { response } = Client.httpFor(result ?? {});
      status = response?.status;
      headers = response?.headers;
      body = result && Object.keys(result).length > 0 ? result : null;
    } catch (e) {
      if (!e.response) throw e;
      status = e.response.status;
      headers = e.config?.headers;
      body = e.response.data;
      if (body && typeof body === 'object' && Object.keys(body).length === 0) body = null;
    }
    if (body !== null && body !== undefined) {
      assertValidResource(body, `${what} -> HTTP ${status}`);
      this.validated++;
    }
    return { status, headers: headers ?? new Headers(), body, what };
  }

  metadata() {
    return this.call('GET metadata', (c) => c.capabilityStatement());
  }
  read(resourceType, id, headers) {
    return this.call(`GET ${resourceType}/${id}`, (c) => c.read({ resourceType, id, options: { headers } }));
  }
  vread(resourceType, id, version) {
    return this.call(`GET ${resourceType}/${id}/_history/${version}`, (c) => c.vread({ resourceType, id, version }));
  }
  create(body, headers) {
    return this.call(`POST ${body.resourceType}`, (c) =>
      c.create({ resourceType: body.resourceType, body, options: { headers } }),
    );
  }
  update(body, headers, id = body.id) {
    return this.call(`PUT ${body.resourceType}/${id}`, (c) =>
      c.update({ resourceType: body.resourceType, id, body, options: { headers } }),
    );
  }
  delete(resourceType, id) {
    return this.call(`DELETE ${resourceType}/${id}`, (c) => c.delete({ resourceType, id }));
  }
  search(resourceType, searchParams, headers) {
    const q = new URLSearchParams(searchParams).toString();
    return this.call(`GET ${resourceType}?${q}`, (c) =>
      c.search({ resourceType, searchParams, options: { headers } }),
    );
  }
  history(resourceType, id) {
    return this.call(`GET ${resourceType}${id ? '/' + id : ''}/_history`, (c) => c.history({ resourceType, id }));
  }
  nextPage(bundle) {
    const next = bundle.link?.find((l) => l.relation === 'next')?.url;
    return this.call(`GET next ${next}`, (c) => c.nextPage({ bundle }));
  }
  everything(patientId) {
    return this.call(`GET Patient/${patientId}/$everything`, (c) =>
      c.operation({ name: 'everything', resourceType: 'Patient', id: patientId, method: 'GET' }),
    );
  }
  // A raw request through the library (for malformed bodies, odd media types
  // and unknown types, which its typed methods refuse to build).
  request(method, path, { body, headers } = {}) {
    return this.call(`${method} ${path}`, (c) => c.request(path, { method, body, options: { headers } }));
  }

  // Follows `next` links from `first` until there are none; returns every
  // page. Fails on a loop or more than `maxPages` pages.
  async allPages(first, maxPages = 100) {
    const pages = [first];
    const seen = new Set();
    let page = first;
    for (;;) {
      const next = page.body.link?.find((l) => l.relation === 'next')?.url;
      if (!next) return pages;
      assert.ok(!seen.has(next), `next link repeats: ${next}`);
      seen.add(next);
      assert.ok(pages.length < maxPages, `more than ${maxPages} pages`);
      const r = await this.nextPage(page.body);
      assert.equal(r.status, 200, `following next link ${next}: ${JSON.stringify(r.body)}`);
      assertBundle(r.body, first.body.type);
      pages.push(r);
      page = r;
    }
  }
}

// ---- Assertions shared by the test files.

export function assertStatus(r, expected) {
  assert.equal(
    r.status,
    expected,
    `${r.what}: expected HTTP ${expected}, got ${r.status}: ${JSON.stringify(r.body)?.slice(0, 1000)}`,
  );
}

export function assertBundle(bundle, type) {
  assert.equal(bundle?.resourceType, 'Bundle', `expected a Bundle, got ${JSON.stringify(bundle)?.slice(0, 300)}`);
  assert.equal(bundle.type, type, `Bundle.type`);
}

// Entries of a searchset that matched (search.mode "match").
export function matches(bundle) {
  return (bundle.entry ?? []).filter((e) => e.search?.mode === 'match').map((e) => e.resource);
}
export function matchIds(bundle) {
  return matches(bundle).map((r) => r.id);
}

// An error answer: the status, and an OperationOutcome with at least one
// error or fatal issue.
export function assertOperationOutcome(r, status) {
  assertStatus(r, status);
  assert.equal(
    r.body?.resourceType,
    'OperationOutcome',
    `${r.what}: an error must carry an OperationOutcome, got ${JSON.stringify(r.body)?.slice(0, 300)}`,
  );
  assert.ok(
    r.body.issue.some((i) => i.severity === 'error' || i.severity === 'fatal'),
    `${r.what}: OperationOutcome has no error issue: ${JSON.stringify(r.body)}`,
  );
}

// ETag W/"<version>" (RFC 7232 weak validator, as FHIR requires).
export function assertEtag(r, version) {
  assert.equal(r.headers.get('etag'), `W/"${version}"`, `${r.what}: ETag`);
}

export function assertLocation(r, baseUrl, resourceType, id, version) {
  const location = r.headers.get('location');
  assert.ok(location, `${r.what}: no Location header`);
  const expected = `${resourceType}/${id}/_history/${version}`;
  assert.ok(
    location === `${baseUrl}/${expected}` || location.endsWith(`/fhir/${expected}`),
    `${r.what}: Location ${location}, expected [base]/${expected}`,
  );
}
