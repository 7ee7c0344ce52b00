// Real sign-in: the bedside app as a SMART App Launch 2 app (fhirclient)
// against a real OAuth 2 / OpenID Connect authorization server (oidc-provider,
// lib/authserver.js) and wmtyd verifying its JWT access tokens through
// --auth_jwks_url. The nurse logs in on the authorization server's own pages.
//  - EHR launch: launch.html?iss&launch -> log in -> the launch patient opens
//    -> record -> wmtyd stored it with the recorder = the token's fhirUser;
//  - standalone launch: "Sign in with your organization" -> no patient in the
//    launch context -> the app's patient picker; or the authorization server
//    picks one (launch/patient) -> it opens directly;
//  - an access token that expires mid-session is refreshed (refresh token)
//    and the save lands; without a refresh token the nurse is sent back to
//    sign in, the save waits in the outbox and is sent after signing in;
//  - sign-out forgets every token; tokens never reach localStorage;
//  - launch.html refuses another server's iss.
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';

import { AUDIENCE, startSmartStack } from '../lib/authserver.js';
import { axe, confirmPatient, launch, newPage, outboxEntries, waitAllSaved } from '../lib/browser.js';

let browser;
const stacks = [];

before(async () => {
  browser = await launch();
});
after(async () => {
  await browser?.close();
  for (const s of stacks) {
    const exit = await s.stop();
    if (exit && exit.code !== 0) throw new Error(`wmtyd did not shut down cleanly: ${JSON.stringify(exit)}`);
  }
});

async function stack(options) {
  const s = await startSmartStack(options);
  stacks.push(s);
  return s;
}

// Logs in on oidc-provider's interaction pages (any login; then consent).
async function logInAtAuthorizationServer(page, login) {
  await page.locator('input[name=login]').waitFor();
  await page.locator('input[name=login]').fill(login);
  await page.locator('input[name=password]').fill('correct horse battery staple');
  await page.getByRole('button', { name: 'Sign-in' }).click();
  const consent = page.getByRole('button', { name: 'Continue' });
  await consent.waitFor();
  await consent.click();
}

// The access token fhirclient holds for this tab, and every storage key.
const tokens = (page) => page.evaluate(() => {
  const key = sessionStorage.getItem('SMART_KEY');
  const state = key ? JSON.parse(sessionStorage.getItem(JSON.parse(key)) || 'null') : null;
  return {
    access: state?.tokenResponse?.access_token || null,
    refresh: state?.tokenResponse?.refresh_token || null,
    session: Object.keys(sessionStorage).map((k) => sessionStorage.getItem(k)).join('\n'),
    local: Object.keys(localStorage).map((k) => localStorage.getItem(k)).join('\n'),
  };
});

const claimsOf = (jwt) => JSON.parse(Buffer.from(jwt.split('.')[1], 'base64url').toString());

async function fhir(s, token, path) {
  const res = await fetch(`${s.wmtyd.baseUrl}${path}`, {
    headers: { Authorization: `Bearer ${token}`, Accept: 'application/fhir+json' },
  });
  return { status: res.status, body: await res.json() };
}

async function recordAnswer(page, text) {
  await page.getByRole('button', { name: 'Record', exact: true }).click();
  await page.getByRole('radio', { name: 'What matters most to you today?' }).check();
  await page.getByLabel('Their answer, in their own words').fill(text);
  await page.getByRole('button', { name: 'Save', exact: true }).click();
}

// The stored answer `text` of `pid` and the Provenance of its version.
async function storedAnswer(s, token, pid, text) {
  const r = await fhir(s, token, `/Patient/${pid}/$everything`);
  assert.equal(r.status, 200, JSON.stringify(r.body));
  const resources = (r.body.entry || []).map((e) => e.resource);
  const obs = resources.find((x) => x.resourceType === 'Observation' && x.valueString === text);
  if (!obs) return null;
  const provenance = resources.find((x) => x.resourceType === 'Provenance'
    && x.target.some((t) => t.reference.startsWith(`Observation/${obs.id}`)));
  return { obs, provenance };
}

async function openEhrLaunch(page, s, patient, login) {
  await s.putPatient(patient);
  const launchId = s.auth.newLaunch(patient);
  await page.goto(`${s.wmtyd.appUrl}launch.html?iss=${encodeURIComponent(s.wmtyd.baseUrl)}&launch=${launchId}`);
  await logInAtAuthorizationServer(page, login);
  // The launch names the patient; the nurse still confirms who it is.
  await confirmPatient(page);
}

test('EHR launch: the launch patient opens, and the save is stored with the nurse as recorder', async () => {
  const s = await stack();
  const { context, page } = await newPage(browser);
  await openEhrLaunch(page, s, 'ehr-patient-1', 'rn-42');
  assert.equal(new URL(page.url()).search, '', 'code and state are taken out of the address');

  const t = await tokens(page);
  const claims = claimsOf(t.access);
  assert.equal(claims.patient, 'ehr-patient-1');
  assert.equal(claims.fhirUser, 'Practitioner/rn-42');
  assert.equal(claims.aud, AUDIENCE);
  assert.match(claims.scope, /patient\/\*\.cruds/);
  assert.ok(t.refresh, 'offline_access gave a refresh token');
  assert.ok(!t.local.includes(t.access) && !t.local.includes(t.refresh), 'no token in localStorage');

  const text = 'Getting back to my allotment before the frost';
  await recordAnswer(page, text);
  await waitAllSaved(page, 1);
  const saved = await storedAnswer(s, t.access, 'ehr-patient-1', text);
  assert.ok(saved, 'wmtyd stored the answer');
  assert.ok(saved.provenance.agent.some((a) => a.who?.reference === 'Practitioner/rn-42'),
    `recorder is the fhirUser: ${JSON.stringify(saved.provenance.agent)}`);
  // The launch token reaches only its patient.
  assert.equal((await fhir(s, t.access, '/Observation?patient=someone-else')).status, 403);
  assert.deepEqual(page.errors, []);
  await context.close();
});

test('standalone launch: sign in with the organization, then pick the patient', async () => {
  const s = await stack();
  await s.putPatient('standalone-1');
  const { context, page } = await newPage(browser);
  await page.goto(s.wmtyd.appUrl);
  // A server with an authorization server offers only the real sign-in.
  await page.getByRole('button', { name: 'Sign in with your organization' }).waitFor();
  assert.equal(await page.getByLabel('Access token').isVisible(), false);
  assert.equal(await page.getByText('Development sign-in').isVisible(), false);
  await axe(page, 'SMART sign-in');
  // The page may reach the token endpoint (code exchange, refresh), nothing else off-origin.
  const csp = (await page.request.get(s.wmtyd.appUrl)).headers()['content-security-policy'];
  assert.match(csp, new RegExp(`connect-src 'self' ${s.auth.issuer.replace(/[.]/g, '\\.')};`));
  assert.match(csp, /script-src 'self';/);
  await page.getByRole('button', { name: 'Sign in with your organization' }).click();
  await logInAtAuthorizationServer(page, 'rn-7');
  // No patient in the launch context: the app's picker.
  await page.getByLabel('Find the patient').fill('standalone-1');
  await page.getByRole('button', { name: 'Search', exact: true }).click();
  await page.locator('.patient-choice', { hasText: 'MRN-standalone-1' }).click();
  await confirmPatient(page);
  const text = 'Seeing the sea once more';
  await recordAnswer(page, text);
  await waitAllSaved(page, 1);
  const t = await tokens(page);
  assert.equal(claimsOf(t.access).patient, undefined);
  const saved = await storedAnswer(s, t.access, 'standalone-1', text);
  assert.ok(saved?.provenance.agent.some((a) => a.who?.reference === 'Practitioner/rn-7'));
  assert.deepEqual(page.errors, []);
  await context.close();
});

test('standalone launch where the authorization server picks the patient: it opens directly', async () => {
  const s = await stack({ standalonePatient: 'picked-by-idp' });
  await s.putPatient('picked-by-idp');
  const { context, page } = await newPage(browser);
  await page.goto(`${s.wmtyd.appUrl}launch.html`);
  await logInAtAuthorizationServer(page, 'rn-8');
  await confirmPatient(page);
  assert.match(await page.locator('#patient-facts').textContent(), /MRN-picked-by-idp/);
  assert.equal(claimsOf((await tokens(page)).access).patient, 'picked-by-idp');
  assert.deepEqual(page.errors, []);
  await context.close();
});

// Resolves once the wall clock is past the token's exp (wmtyd runs with no
// clock skew allowance here).
async function untilExpired(jwt) {
  const exp = claimsOf(jwt).exp;
  while (Date.now() / 1000 <= exp + 1) await new Promise((r) => setTimeout(r, 250));
}

test('an access token that expires mid-session is refreshed and the save lands', async () => {
  const s = await stack({ accessTokenTTL: 6 });
  const { context, page } = await newPage(browser);
  await openEhrLaunch(page, s, 'refresh-1', 'rn-42');
  const first = (await tokens(page)).access;
  await untilExpired(first);
  assert.equal((await fhir(s, first, '/Observation?patient=refresh-1')).status, 401, 'the first token expired');

  const text = 'Going to my sister’s for Christmas';
  await recordAnswer(page, text);
  await waitAllSaved(page, 1);
  const now = (await tokens(page)).access;
  assert.notEqual(now, first);
  assert.ok(s.auth.tokenRequests.refresh_token >= 1, 'the app used its refresh token');
  assert.ok(await storedAnswer(s, now, 'refresh-1', text), 'wmtyd stored the answer');
  assert.deepEqual(page.errors, []);
  await context.close();
});

test('without a refresh token an expired session goes back to sign-in and keeps the save', async () => {
  const s = await stack({ accessTokenTTL: 6, refreshTokens: false });
  const { context, page } = await newPage(browser);
  await openEhrLaunch(page, s, 'norefresh-1', 'rn-42');
  const first = await tokens(page);
  assert.equal(first.refresh, null);
  await untilExpired(first.access);

  const text = 'Not being alone at night';
  await recordAnswer(page, text);
  const message = page.locator('#signin-message');
  await message.waitFor();
  assert.match(await message.textContent(), /Please sign in again.*1 unsent save is kept on this device/);
  const waiting = await outboxEntries(page);
  assert.equal(waiting.length, 1, 'the save waits in the outbox');
  assert.equal((await tokens(page)).access, null, 'the expired token is forgotten');

  // Signing in again sends it. The authorization server remembers the nurse
  // (no login) and asks only to consent to the standalone launch's scopes.
  await page.getByRole('button', { name: 'Sign in with your organization' }).click();
  await page.getByRole('button', { name: 'Continue' }).click();
  await page.getByRole('heading', { name: 'Ada Okafor' }).waitFor();
  await waitAllSaved(page);
  const now = (await tokens(page)).access;
  assert.ok(await storedAnswer(s, now, 'norefresh-1', text), 'wmtyd stored the answer');
  assert.deepEqual(page.errors.filter((e) => !/401/.test(e)), []);
  await context.close();
});

test('sign-out forgets the tokens and revokes the refresh token; a reload stays signed out', async () => {
  const s = await stack();
  const { context, page } = await newPage(browser);
  await openEhrLaunch(page, s, 'signout-1', 'rn-42');
  const before = await tokens(page);
  assert.ok(before.access);
  assert.equal(await s.auth.refreshTokenActive(before.refresh), true, 'signing in made a live refresh token');
  await page.getByRole('button', { name: 'Sign out' }).click();
  await page.getByRole('button', { name: 'Sign in with your organization' }).waitFor();
  const afterSignOut = await tokens(page);
  assert.equal(afterSignOut.access, null);
  assert.ok(!afterSignOut.session.includes(before.access) && !afterSignOut.session.includes(before.refresh),
    'no token left in sessionStorage');
  assert.ok(!afterSignOut.local.includes(before.access));
  // The refresh token was revoked at the authorization server (the app does
  // not wait for it: poll without using the token).
  const deadline = Date.now() + 30000;
  while (await s.auth.refreshTokenActive(before.refresh) && Date.now() < deadline) {
    await new Promise((r) => setTimeout(r, 100));
  }
  assert.equal(await s.auth.refreshTokenActive(before.refresh), false, 'the refresh token was revoked');
  await page.reload();
  await page.getByRole('button', { name: 'Sign in with your organization' }).waitFor();
  assert.equal(await page.locator('#screen-record').isVisible(), false);
  assert.deepEqual(page.errors, []);
  await context.close();
});

test('launch.html refuses a launch naming another server', async () => {
  const s = await stack();
  const { context, page } = await newPage(browser);
  await page.goto(`${s.wmtyd.appUrl}launch.html?iss=${encodeURIComponent('https://evil.example/fhir')}&launch=x`);
  await page.getByRole('heading', { name: 'Could not start' }).waitFor();
  assert.match(await page.locator('#launch-message').textContent(), /works with .* only/);
  await axe(page, 'launch error');
  assert.equal(new URL(page.url()).origin, s.wmtyd.origin, 'no redirect anywhere');
  await context.close();
});
