// The right patient: the picker finds patients in the Patient records the
// hospital's systems sent (never typed by the nurse), opening one shows who
// it is and nothing can be recorded until the nurse confirms, and an id
// without a record is blocked with an explanation. Real wmtyd, real Chromium.
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';

import { startWmtyd } from '../lib/server.js';
import { axe, fhirClient, launch, newPage, putPatient, screenshot, waitAllSaved } from '../lib/browser.js';

let server;
let browser;

before(async () => {
  server = await startWmtyd();
  browser = await launch();
});

after(async () => {
  await browser?.close();
  await server?.stop();
});

async function signIn(page) {
  await page.goto(`${server.appUrl}#token=${server.token()}`);
  await page.getByLabel('Find the patient').waitFor();
}

async function search(page, text) {
  await page.getByLabel('Find the patient').fill(text);
  await page.getByRole('button', { name: 'Search', exact: true }).click();
  await page.locator('#results-status', { hasText: /found/ }).waitFor();
  return page.locator('.patient-choice').allTextContents();
}

// Age in whole years today of someone born on y-m-d (as the app counts it).
function ageOf(y, m, d) {
  const now = new Date();
  return now.getFullYear() - y - (now.getMonth() + 1 < m || (now.getMonth() + 1 === m && now.getDate() < d) ? 1 : 0);
}

test('the picker finds patients by name, date of birth and MRN, showing who each is', async () => {
  await putPatient(server, 'find-1', { given: ['Ines'], family: 'Carvalho', birthDate: '1948-07-02', mrn: 'M-70001' });
  await putPatient(server, 'find-2', { given: ['Joao'], family: 'Carvalho', birthDate: '1981-11-30', mrn: 'M-70002' });
  await putPatient(server, 'find-3', { given: ['Ines'], family: 'Moreau', birthDate: '1948-07-02', mrn: 'M-70003' });
  const { context, page } = await newPage(browser);
  await signIn(page);

  const byName = await search(page, 'carv');
  assert.equal(byName.length, 2, byName.join(' | '));
  assert.ok(byName.some((t) => t.includes('Ines Carvalho') && t.includes('Born 2 Jul 1948')
    && t.includes(`(${ageOf(1948, 7, 2)} years)`) && t.includes('MRN M-70001')), byName.join(' | '));
  assert.ok(byName.some((t) => t.includes('Joao Carvalho') && t.includes('MRN M-70002')), byName.join(' | '));

  const byBirth = await search(page, '1948-07-02');
  assert.deepEqual(byBirth.map((t) => t.match(/MRN (\S+)/)[1]).sort(), ['M-70001', 'M-70003']);

  const byMrn = await search(page, 'M-70003');
  assert.equal(byMrn.length, 1);
  assert.match(byMrn[0], /Ines Moreau/);

  const none = await search(page, 'Nobody-by-this-name');
  assert.deepEqual(none, []);
  assert.match(await page.locator('#results-status').textContent(), /No patient found/);
  assert.deepEqual(page.errors, []);
  await context.close();
});

test('opening a patient shows who it is, and nothing can be recorded until the nurse confirms', async () => {
  const pid = 'confirm-1';
  await putPatient(server, pid, { given: ['Maria', 'José'], family: 'Santos', birthDate: '1950-03-14', mrn: 'M-448812' });
  const { context, page } = await newPage(browser);
  await signIn(page);
  await search(page, 'santos');
  await page.locator('.patient-choice', { hasText: 'Maria José Santos' }).click();

  // The identity header: name as the heading, date of birth with age, MRN.
  await page.getByRole('heading', { name: 'Maria José Santos' }).waitFor();
  const facts = await page.locator('#patient-facts').textContent();
  assert.match(facts, /Date of birth14 Mar 1950 \(\d+ years\)/);
  assert.ok(facts.includes(`(${ageOf(1950, 3, 14)} years)`), facts);
  assert.match(facts, /MRNM-448812/);
  assert.match(facts, /Patient IDconfirm-1/);
  // Asked, and the record is out of reach until answered.
  await page.getByRole('heading', { name: 'Is this the patient in front of you?' }).waitFor();
  assert.equal(await page.getByRole('button', { name: 'Record', exact: true }).isVisible(), false);
  assert.equal(await page.locator('#record-form').isVisible(), false);
  assert.equal(await page.locator('#view-summary').isVisible(), false);
  await axe(page, 'identity check');
  await screenshot(page, 'identity-check');

  await page.getByRole('button', { name: 'Yes, this is the patient' }).click();
  await page.getByRole('button', { name: 'Record', exact: true }).click();
  await page.getByLabel('Their answer, in their own words').fill('Seeing the sea again');
  await page.getByRole('button', { name: 'Save', exact: true }).click();
  await waitAllSaved(page, 1);
  const stored = await fhirClient(server).get(`/Observation?patient=${pid}`);
  assert.equal((stored.body.entry || []).length, 1);
  assert.equal(stored.body.entry[0].resource.valueString, 'Seeing the sea again');

  // A reload keeps the confirmation of this tab; another patient, or this one
  // chosen again, is asked again.
  await page.reload();
  await page.getByRole('heading', { name: 'Maria José Santos' }).waitFor();
  await page.getByRole('button', { name: 'Record', exact: true }).waitFor();
  await page.getByRole('button', { name: 'Change patient' }).click();
  await search(page, 'M-448812');
  await page.locator('.patient-choice', { hasText: 'Maria José Santos' }).click();
  await page.getByRole('button', { name: 'Yes, this is the patient' }).waitFor();
  assert.equal(await page.getByRole('button', { name: 'Record', exact: true }).isVisible(), false);
  // The recent list names the patient from the record.
  await page.getByRole('button', { name: 'Choose another patient' }).click();
  await page.locator('#recent-patients button', { hasText: 'Maria José Santos' }).waitFor();
  assert.deepEqual(page.errors, []);
  await context.close();
});

test('an id with no Patient record is blocked and the nurse is told what to do', async () => {
  const pid = 'ghost-1';
  const fhir = fhirClient(server);
  const { context, page } = await newPage(browser);
  await signIn(page);
  // The id comes from elsewhere (a launch, a recent list): no record for it.
  await page.evaluate((id) => sessionStorage.setItem('wmty.patient', id), pid);
  await page.reload();
  await page.getByRole('heading', { name: 'No patient record for this ID' }).waitFor();
  assert.match(await page.locator('#identity-check-text').textContent(), /Recording is blocked/);
  assert.match(await page.locator('#identity-check-text').textContent(), /search by name, date of birth or MRN/);
  assert.equal(await page.getByRole('button', { name: 'Yes, this is the patient' }).isVisible(), false);
  assert.equal(await page.getByRole('button', { name: 'Record', exact: true }).isVisible(), false);
  assert.equal(await page.locator('#record-form').isVisible(), false);
  await axe(page, 'unknown patient');
  await screenshot(page, 'identity-unknown');
  // Nothing was, or can be, written for it.
  assert.deepEqual((await fhir.get(`/Observation?patient=${pid}`)).body.entry || [], []);

  // Once the hospital's feed sends the record, the same id opens and asks.
  await putPatient(server, pid, { given: ['Lee'], family: 'Chan' });
  await page.getByRole('button', { name: 'Choose another patient' }).click();
  await search(page, pid);
  await page.locator('.patient-choice', { hasText: 'Lee Chan' }).click();
  await page.getByRole('button', { name: 'Yes, this is the patient' }).waitFor();
  assert.deepEqual(page.errors, []);
  await context.close();
});
