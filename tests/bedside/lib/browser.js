// Debian's chromium (never a downloaded browser) driven by playwright-core,
// plus the helpers the bedside tests share: sign in, open a patient, talk to
// the FHIR API directly (a second writer / reader), screenshots.
import { mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { createRequire } from 'node:module';
import assert from 'node:assert/strict';

import { chromium } from 'playwright-core';

const require = createRequire(import.meta.url);

export const CHROMIUM = process.env.WMTY_CHROMIUM || '/usr/bin/chromium';
export const TABLET = { width: 1024, height: 768 };
export const PHONE = { width: 390, height: 844 };

export async function launch() {
  return chromium.launch({
    executablePath: CHROMIUM,
    // Root in a container: no sandbox. No background traffic in a closed network.
    args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run',
      '--disable-background-networking', '--disable-component-update', '--disable-sync'],
  });
}

// A new context (own sessionStorage/localStorage) and page; page errors fail the test.
export async function newPage(browser, { viewport = TABLET, ...opts } = {}) {
  const context = await browser.newContext({ viewport, locale: 'en-GB', timezoneId: 'UTC', ...opts });
  const page = await context.newPage();
  page.errors = [];
  page.on('pageerror', (e) => page.errors.push(e.message));
  page.on('console', (m) => {
    // A refused fetch while offline is logged by the browser; anything else is ours.
    if (m.type() === 'error' && !/Failed to load resource|ERR_INTERNET_DISCONNECTED|ERR_FAILED/.test(m.text())) {
      page.errors.push(m.text());
    }
  });
  return { context, page };
}

// A Patient as the hospital's systems send it (US Core: MRN, official name,
// birth date). The app shows only what such a record says.
export const MR_TYPE = { coding: [{ system: 'http://terminology.hl7.org/CodeSystem/v2-0203', code: 'MR' }] };
export function patientBody(patientId, { given = ['Ada'], family = 'Okafor', birthDate = '1950-03-14',
  mrn = `MRN-${patientId}` } = {}) {
  return {
    resourceType: 'Patient', id: patientId,
    identifier: [{ type: MR_TYPE, system: 'urn:oid:2.16.840.1.113883.19.5', value: mrn }],
    name: [{ use: 'official', family, given }], gender: 'female', birthDate,
  };
}

// Creates (or replaces) the patient's record over FHIR, as a feed does.
export async function putPatient(server, patientId, opts) {
  return fhirClient(server).ok('PUT', `/Patient/${patientId}`, patientBody(patientId, opts));
}

// Answers the identity check (the patient's name is the heading by then).
export async function confirmPatient(page, name = 'Ada Okafor') {
  await page.getByRole('heading', { name }).waitFor();
  await page.getByRole('button', { name: 'Yes, this is the patient' }).click();
  await page.locator('#summary-loading').waitFor({ state: 'hidden' });
}

// Creates the patient's record, opens the app the way scripts/run.sh's link
// does (#token=...), finds the patient by id and confirms who it is.
export async function openPatient(page, server, patientId, token = server.token(), opts = {}) {
  await putPatient(server, patientId, opts);
  await page.goto(`${server.appUrl}#token=${token}`);
  await page.getByLabel('Find the patient').fill(patientId);
  await page.getByRole('button', { name: 'Search', exact: true }).click();
  await page.locator('.patient-choice', { hasText: opts.mrn || `MRN-${patientId}` }).click();
  await confirmPatient(page, [...(opts.given || ['Ada']), opts.family || 'Okafor'].join(' '));
}

// Fills in the record form's speaker.
export async function chooseFamilySpeaker(page, name, relationship) {
  await page.getByLabel('A family member').check();
  await page.getByLabel('Their name').fill(name);
  await page.getByLabel('Relationship to the patient').fill(relationship);
}

// Waits until nothing is left in the outbox and returns the saved entries shown.
export async function waitAllSaved(page, count) {
  await page.locator('#sync-status', { hasText: 'All saved' }).waitFor();
  if (count !== undefined) {
    await page.waitForFunction((n) => document.querySelectorAll('#outbox-list [data-state=saved]').length >= n, count);
  }
  assert.equal(await page.evaluate(() => localStorage.getItem('wmty.outbox.v1')), null, 'outbox empty');
}

export function outboxEntries(page) {
  return page.evaluate(() => JSON.parse(localStorage.getItem('wmty.outbox.v1') || '[]'));
}

// The FHIR API straight from Node: the test's own reader and "another writer".
export function fhirClient(server, token = server.token()) {
  const call = async (method, path, body, headers = {}) => {
    const res = await fetch(`${server.baseUrl}${path}`, {
      method,
      headers: { Authorization: `Bearer ${token}`, Accept: 'application/fhir+json',
        ...(body ? { 'Content-Type': 'application/fhir+json' } : {}), ...headers },
      body: body ? JSON.stringify(body) : undefined,
    });
    const text = await res.text();
    return { status: res.status, etag: res.headers.get('etag'), body: text ? JSON.parse(text) : null };
  };
  return {
    call,
    get: (path) => call('GET', path),
    async ok(method, path, body, headers) {
      const r = await call(method, path, body, headers);
      assert.ok(r.status === 200 || r.status === 201, `${method} ${path}: ${r.status} ${JSON.stringify(r.body)}`);
      return r.body;
    },
    async everything(patientId) {
      const r = await call('GET', `/Patient/${patientId}/$everything`);
      assert.equal(r.status, 200);
      const out = { list: null, goals: [], observations: [] };
      for (const e of r.body.entry || []) {
        const x = e.resource;
        if (x.resourceType === 'List') out.list = x;
        else if (x.resourceType === 'Goal') out.goals.push(x);
        else if (x.resourceType === 'Observation') out.observations.push(x);
      }
      return out;
    },
  };
}

export const goalBody = (patientId, text, extra = {}) => ({
  resourceType: 'Goal', lifecycleStatus: 'active', description: { text },
  subject: { reference: `Patient/${patientId}` }, expressedBy: { reference: `Patient/${patientId}` }, ...extra,
});

export const whatMattersBody = (patientId, text) => ({
  resourceType: 'Observation', status: 'final',
  category: [{ coding: [{ system: 'http://hl7.org/fhir/us/core/CodeSystem/us-core-category', code: 'care-experience-preference' }] }],
  code: { coding: [{ system: 'http://loinc.org', code: '95541-9' }, { system: 'https://fhir.wmty.health/CodeSystem/wmty', code: 'what-matters' }] },
  subject: { reference: `Patient/${patientId}` }, performer: [{ reference: `Patient/${patientId}` }], valueString: text,
});

export const hasCode = (r, system, code) => (r.code?.coding || []).some((c) => c.system === system && c.code === code);

// Screenshots of the main screens when WMTY_BEDSIDE_SCREENSHOTS=<dir> is set.
export async function screenshot(page, name, { fullPage = false } = {}) {
  const dir = process.env.WMTY_BEDSIDE_SCREENSHOTS;
  if (!dir) return;
  mkdirSync(dir, { recursive: true });
  await page.screenshot({ path: join(dir, `bedside-${name}.png`), fullPage });
}

// axe-core, injected by evaluating its source (the app's CSP forbids added
// script elements; page.evaluate runs through the DevTools protocol).
export async function axe(page, what) {
  const source = require('fs').readFileSync(require.resolve('axe-core/axe.min.js'), 'utf8');
  if (!(await page.evaluate(() => typeof window.axe !== 'undefined'))) await page.evaluate(source);
  const result = await page.evaluate(() => window.axe.run(document, {
    runOnly: { type: 'tag', values: ['wcag2a', 'wcag2aa', 'wcag21a', 'wcag21aa', 'wcag22aa', 'best-practice'] },
  }));
  assert.ok(result.passes.length > 10, `${what}: axe ran its rules`);
  const bad = result.violations.filter((v) => v.impact === 'serious' || v.impact === 'critical');
  assert.deepEqual(bad.map((v) => `${v.id} (${v.impact}): ${v.help} at ${v.nodes.map((n) => n.target.join(' ')).join(', ')}`),
    [], `${what}: serious or critical accessibility violations`);
  return result;
}

// Nothing wider than the viewport (no sideways scrolling on a phone).
export async function assertNoHorizontalOverflow(page, what) {
  const r = await page.evaluate(() => {
    const vw = document.documentElement.clientWidth;
    const wide = [...document.querySelectorAll('body *')].filter((el) => {
      if (!el.getClientRects().length) return false;
      const b = el.getBoundingClientRect();
      return b.right > vw + 1 && getComputedStyle(el).position !== 'absolute';
    }).slice(0, 5).map((el) => `${el.tagName.toLowerCase()}#${el.id}.${el.className}`);
    return { scroll: document.documentElement.scrollWidth, vw, wide };
  });
  assert.ok(r.scroll <= r.vw, `${what}: page is ${r.scroll}px wide in a ${r.vw}px viewport (${r.wide.join(', ')})`);
}
