// axe-core on every main screen (no serious or critical violations), and a
// phone-size viewport where nothing overflows sideways. axe is injected by
// page.evaluate of its source: the app's CSP (script-src 'self') stays on.
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';

import { startWmtyd } from '../lib/server.js';
import {
  PHONE, assertNoHorizontalOverflow, axe, chooseFamilySpeaker, fhirClient, goalBody, launch, newPage, openPatient, putPatient,
  screenshot, whatMattersBody,
} from '../lib/browser.js';

const LOINC = 'http://loinc.org';
let server;
let browser;

before(async () => {
  server = await startWmtyd();
  browser = await launch();
});
after(async () => {
  await browser?.close();
  const exit = await server?.stop();
  if (exit && exit.code !== 0) throw new Error(`wmtyd did not shut down cleanly: ${JSON.stringify(exit)}`);
});

// A patient with a bit of everything: answers, a goal with scores, a List.
async function seed(pid) {
  const fhir = fhirClient(server);
  await putPatient(server, pid);
  const wm = await fhir.ok('POST', '/Observation', whatMattersBody(pid, 'Getting back to my allotment before the frost'));
  const goal = await fhir.ok('POST', '/Goal', goalBody(pid, 'Climb the stairs at home without stopping',
    { target: [{ dueDate: '2027-03-01' }] }));
  for (const [code, answer, when] of [['112296-9', 'LA34484-8', '2026-11-01T09:00:00Z'],
    ['107333-7', 'LA34483-0', '2026-11-15T09:00:00Z'], ['107334-5', 'LA34481-4', '2026-11-29T09:00:00Z']]) {
    await fhir.ok('POST', '/Observation', { resourceType: 'Observation', status: 'final',
      code: { coding: [{ system: LOINC, code }] }, subject: { reference: `Patient/${pid}` },
      performer: [{ reference: `Patient/${pid}` }], focus: [{ reference: `Goal/${goal.id}` }], effectiveDateTime: when,
      valueCodeableConcept: { coding: [{ system: LOINC, code: answer }] } });
  }
  await fhir.ok('PUT', `/List/${pid}`, { resourceType: 'List', id: pid, status: 'current', mode: 'working',
    code: { coding: [{ system: LOINC, code: '81340-2' }] }, subject: { reference: `Patient/${pid}` },
    source: { reference: `Patient/${pid}` },
    entry: [{ item: { reference: `Goal/${goal.id}` } }, { item: { reference: `Observation/${wm.id}` } }] });
  return { fhir, goal, wm };
}

test('axe finds no serious or critical violations on any main screen', async () => {
  const pid = 'a11y-1';
  const { fhir, goal } = await seed(pid);
  const { context, page } = await newPage(browser);
  await page.goto(server.appUrl);
  await axe(page, 'sign-in');
  await page.getByLabel('Access token').fill('not-a-token');
  await page.getByRole('button', { name: 'Sign in' }).click();
  await page.getByText('That token was not accepted').waitFor();
  await axe(page, 'sign-in with an error');
  await page.getByLabel('Access token').fill(server.token());
  await page.getByRole('button', { name: 'Sign in' }).click();
  await page.getByLabel('Find the patient').waitFor();
  await axe(page, 'patient picker');
  await page.getByLabel('Find the patient').fill('okafor');
  await page.getByRole('button', { name: 'Search', exact: true }).click();
  await page.locator('.patient-choice', { hasText: `MRN-${pid}` }).waitFor();
  await axe(page, 'patient picker with results');
  await page.locator('.patient-choice', { hasText: `MRN-${pid}` }).click();
  await page.getByRole('button', { name: 'Yes, this is the patient' }).waitFor();
  await axe(page, 'identity check');
  await page.getByRole('button', { name: 'Yes, this is the patient' }).click();
  await page.locator('circle.dot').nth(2).waitFor();
  await axe(page, 'summary with priorities and progress chart');
  await page.getByRole('button', { name: 'Record follow-up score' }).click();
  await axe(page, 'follow-up score form');
  await page.getByRole('button', { name: 'Move up: Getting back to my allotment' }).click();
  await axe(page, 'summary with an unsaved order');
  await page.getByRole('button', { name: 'Record', exact: true }).click();
  await chooseFamilySpeaker(page, 'Ann', 'Wife');
  await page.getByLabel('Kind of preference').selectOption({ label: 'Dislikes and fears' });
  await page.getByRole('button', { name: 'Loud noise' }).click();
  await axe(page, 'record form');
  await page.getByRole('button', { name: 'Add another preference' }).click();
  await page.locator('.pref-row').nth(1).getByLabel('Kind of preference').selectOption({ label: 'Language' });
  await page.getByLabel('Language', { exact: true }).fill('Tagalog');
  await page.getByLabel('Needs an interpreter').check();
  await page.getByRole('button', { name: 'Add another preference' }).click();
  await page.locator('.pref-row').nth(2).getByLabel('Kind of preference').selectOption({ label: 'How to contact' });
  await page.locator('.pref-row').nth(2).getByRole('button', { name: 'Text message' }).click();
  await axe(page, 'record form with the language picker and contact channels');
  await page.getByRole('button', { name: 'Clear' }).click();
  await page.getByLabel('A family member').check();
  await page.getByRole('button', { name: 'Save', exact: true }).click();
  await page.getByText('Please write the family member’s name.').waitFor();
  await axe(page, 'record form with an error');
  await page.getByRole('button', { name: 'What we know' }).click();
  await page.getByRole('button', { name: /^Edit: Climb the stairs/ }).click();
  await axe(page, 'edit dialog');
  // A conflict, for the comparison dialog.
  await fhir.ok('PUT', `/Goal/${goal.id}`, { ...goalBody(pid, 'Climb the stairs, with a rest halfway'), id: goal.id });
  await page.getByLabel('In their own words', { exact: true }).fill('Climb the stairs at home, slowly');
  await page.getByRole('button', { name: 'Save changes' }).click();
  await page.getByRole('dialog', { name: 'Someone else changed this' }).waitFor();
  await axe(page, 'conflict dialog');
  await page.getByRole('button', { name: 'Decide later' }).click();
  await page.locator('#outbox-list [data-state=conflict]').waitFor();
  await axe(page, 'summary with a save that needs attention');
  assert.deepEqual(page.errors, []);
  await context.close();
});


// Touch targets: every visible button, chip and field at least 44 px tall
// (WCAG 2.5.5 / platform guidance); radio and chip labels carry the target.
function smallTouchTargets(page) {
  return page.evaluate(() => [...document.querySelectorAll('button, .chip, .choice, input, select, textarea')]
    .filter((el) => el.getClientRects().length && !el.closest('.choice, .chip-radio') && el.getBoundingClientRect().height < 44)
    .map((el) => `${el.tagName} ${el.id || el.textContent.trim().slice(0, 20)}`));
}

test('phone size: every screen fits the width and passes axe', async () => {
  const pid = 'phone-1';
  await seed(pid);
  const { context, page } = await newPage(browser, { viewport: PHONE, isMobile: true, hasTouch: true });
  await page.goto(server.appUrl);
  await assertNoHorizontalOverflow(page, 'sign-in');
  await putPatient(server, pid);
  await page.goto(`${server.appUrl}#token=${server.token()}`);
  await page.getByLabel('Find the patient').fill(pid);
  await page.getByRole('button', { name: 'Search', exact: true }).click();
  await page.locator('.patient-choice', { hasText: `MRN-${pid}` }).waitFor();
  await assertNoHorizontalOverflow(page, 'patient picker with results');
  assert.deepEqual(await smallTouchTargets(page), [], 'touch targets under 44 px on the patient picker');
  await page.locator('.patient-choice', { hasText: `MRN-${pid}` }).click();
  await page.getByRole('button', { name: 'Yes, this is the patient' }).waitFor();
  await assertNoHorizontalOverflow(page, 'identity check');
  await axe(page, 'phone identity check');
  await screenshot(page, 'phone-identity');
  await page.getByRole('button', { name: 'Yes, this is the patient' }).click();
  await page.locator('circle.dot').nth(2).waitFor();
  await assertNoHorizontalOverflow(page, 'summary');
  await axe(page, 'phone summary');
  await screenshot(page, 'phone-summary');
  await page.getByRole('button', { name: 'Record', exact: true }).click();
  await chooseFamilySpeaker(page, 'Ann', 'Wife');
  await page.getByLabel('Kind of preference').selectOption({ label: 'How to contact' });
  await assertNoHorizontalOverflow(page, 'record form');
  await axe(page, 'phone record form');
  await screenshot(page, 'phone-record');
  assert.deepEqual(await smallTouchTargets(page), [], 'touch targets under 44 px on the record form');
  await context.close();
});
