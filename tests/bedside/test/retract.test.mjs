// "Entered in error" from the app: a reason is required, the record leaves
// the current views, the server keeps it as retracted (FHIR 410 and the
// deletion's Provenance with the reason; gRPC state and reason), and the
// record's history in the app shows every version with who and when, and the
// retraction with its reason. A retraction never overrides a newer version.
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';

import { startWmtyd } from '../lib/server.js';
import { axe, fhirClient, goalBody, launch, newPage, openPatient, waitAllSaved, whatMattersBody } from '../lib/browser.js';
import { wmtyctl } from '../lib/grpc.js';

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

test('entered in error: reason required, gone from the views, kept with its reason in the history', async () => {
  const pid = 'retract-1';
  const fhir = fhirClient(server);
  const goal = await fhir.ok('POST', '/Goal', goalBody(pid, 'Walk to the shop'));
  await fhir.ok('PUT', `/Goal/${goal.id}`, { ...goalBody(pid, 'Walk to the corner shop'), id: goal.id });
  const wm = await fhir.ok('POST', '/Observation', whatMattersBody(pid, 'My cat Mimi is fed'));
  const { context, page } = await newPage(browser);
  await openPatient(page, server, pid);
  const goalCard = page.locator(`li[data-ref="Goal/${goal.id}"]`);
  await goalCard.waitFor();

  await page.getByRole('button', { name: 'Entered in error: Walk to the corner shop' }).click();
  const dialog = page.getByRole('dialog', { name: 'Mark as entered in error?' });
  await dialog.waitFor();
  assert.equal(await dialog.locator('#retract-text').textContent(), 'Walk to the corner shop');
  await axe(page, 'entered-in-error dialog');
  await dialog.getByRole('button', { name: 'Mark as entered in error' }).click();
  await dialog.getByText('Please say why it is wrong').waitFor();
  assert.equal((await fhir.get(`/Goal/${goal.id}`)).status, 200, 'nothing retracted without a reason');
  const reason = 'Recorded for the wrong patient (Zimmer 12 — Müller)';
  await dialog.getByLabel('Why is it wrong? (required)').fill(reason);
  await dialog.getByRole('button', { name: 'Mark as entered in error' }).click();
  await waitAllSaved(page, 1);
  await goalCard.waitFor({ state: 'detached' });
  assert.equal(await page.locator(`li[data-ref="Observation/${wm.id}"]`).count(), 1, 'the other record stays');

  // The server: gone (410), the deletion's Provenance has the nurse and the reason; gRPC agrees.
  assert.equal((await fhir.get(`/Goal/${goal.id}`)).status, 410);
  const provs = (await fhir.get(`/Provenance?target=Goal/${goal.id}`)).body.entry.map((e) => e.resource);
  const deletion = provs.find((p) => p.target.some((t) => t.reference === `Goal/${goal.id}/_history/3`));
  assert.ok(deletion, 'a Provenance for the deletion (version 3)');
  assert.equal(deletion.reason?.[0]?.text, reason);
  const grpc = await wmtyctl(server, 'get-goal', [`--name=patients/${pid}/goals/${goal.id}`]);
  assert.equal(grpc.state, 'RETRACTED');
  assert.equal(grpc.retract_reason, reason);

  // The history, from the save log: three versions, the retraction with who and why.
  await page.locator('#outbox-list').getByRole('button', { name: /^History: Entered in error/ }).click();
  const history = page.getByRole('dialog', { name: /^History/ });
  await history.getByText('3 versions, newest first.').waitFor();
  const items = history.locator('.history-item');
  assert.deepEqual(await items.locator('.item-kind').allTextContents(),
    ['Version 3 · Marked entered in error', 'Version 2 · Changed', 'Version 1 · Recorded']);
  assert.equal(await items.nth(0).locator('.history-reason').textContent(), `Reason: “${reason}”`);
  assert.match(await items.nth(0).locator('.meta').textContent(), /\d{4}.*· by dev$/);
  assert.equal(await items.nth(1).locator('.item-text').textContent(), 'Walk to the corner shop');
  assert.equal(await items.nth(2).locator('.item-text').textContent(), 'Walk to the shop');
  await axe(page, 'history dialog');
  await history.getByRole('button', { name: 'Close' }).click();

  // A current record's history, from its card.
  await page.getByRole('button', { name: 'History: My cat Mimi is fed' }).click();
  await history.getByText('1 version, newest first.').waitFor();
  assert.deepEqual(await history.locator('.history-item .item-kind').allTextContents(), ['Version 1 · Recorded']);
  await history.getByRole('button', { name: 'Close' }).click();
  assert.deepEqual(page.errors, []);
  await context.close();
});

test('entered in error never overrides a newer version someone else saved', async () => {
  const pid = 'retract-2';
  const fhir = fhirClient(server);
  const wm = await fhir.ok('POST', '/Observation', whatMattersBody(pid, 'Music at night'));
  const { context, page } = await newPage(browser);
  await openPatient(page, server, pid);
  await page.locator(`li[data-ref="Observation/${wm.id}"]`).waitFor();
  await fhir.ok('PUT', `/Observation/${wm.id}`, { ...whatMattersBody(pid, 'Quiet music at night'), id: wm.id });
  await page.getByRole('button', { name: 'Entered in error: Music at night' }).click();
  await page.getByLabel('Why is it wrong? (required)').fill('Said by the neighbour, not the patient');
  await page.getByRole('button', { name: 'Mark as entered in error' }).click();
  await page.locator('#outbox-list [data-state=attention]', { hasText: 'Someone else changed it after you looked' }).waitFor();
  const now = await fhir.get(`/Observation/${wm.id}`);
  assert.equal(now.status, 200, 'still there');
  assert.equal(now.body.meta.versionId, '2');
  assert.deepEqual(page.errors, []);
  await context.close();
});

test('a wrong goal score is marked entered in error from its goal: the chart loses the point', async () => {
  const pid = 'retract-3';
  const fhir = fhirClient(server);
  const goal = await fhir.ok('POST', '/Goal', goalBody(pid, 'Eat breakfast sitting up'));
  const score = (code, answer, when) => fhir.ok('POST', '/Observation', {
    resourceType: 'Observation', status: 'final', code: { coding: [{ system: 'http://loinc.org', code }] },
    subject: { reference: `Patient/${pid}` }, focus: [{ reference: `Goal/${goal.id}` }], effectiveDateTime: when,
    performer: [{ reference: `Patient/${pid}` }],
    valueCodeableConcept: { coding: [{ system: 'http://loinc.org', code: answer }] } });
  await score('112296-9', 'LA34484-8', '2026-11-02T10:00:00Z'); // -2 baseline
  const wrong = await score('107334-5', 'LA34479-8', '2026-11-09T10:00:00Z'); // +2, meant for another goal
  const { context, page } = await newPage(browser);
  await openPatient(page, server, pid);
  const item = page.locator(`li[data-ref="Goal/${goal.id}"]`);
  await item.locator('circle.dot').nth(1).waitFor();
  await item.getByText('Each score (2)').click();
  await axe(page, 'a goal’s scores listed');
  await item.getByRole('button', { name: 'Entered in error: score +2 Much better than expected · follow-up · scored by the patient' }).click();
  const dialog = page.getByRole('dialog', { name: 'Mark as entered in error?' });
  assert.equal(await dialog.locator('#retract-text').textContent(),
    'Score +2 Much better than expected · follow-up · scored by the patient');
  await dialog.getByLabel('Why is it wrong? (required)').fill('Scored on the wrong goal');
  await dialog.getByRole('button', { name: 'Mark as entered in error' }).click();
  await waitAllSaved(page, 1);
  await page.waitForFunction((ref) => document.querySelectorAll(`li[data-ref="${ref}"] circle.dot`).length === 1,
    `Goal/${goal.id}`);
  assert.equal((await fhir.get(`/Observation/${wrong.id}`)).status, 410);
  const grpc = await wmtyctl(server, 'get-goal-score', [`--name=patients/${pid}/goalScores/${wrong.id}`]);
  assert.deepEqual([grpc.state, grpc.retract_reason], ['RETRACTED', 'Scored on the wrong goal']);
  await page.locator('#outbox-list').getByRole('button', { name: /^History: Entered in error/ }).click();
  const history = page.getByRole('dialog', { name: /^History/ });
  await history.getByText('2 versions, newest first.').waitFor();
  assert.equal(await history.locator('.history-item').nth(0).locator('.history-reason').textContent(),
    'Reason: “Scored on the wrong goal”');
  assert.equal(await history.locator('.history-item').nth(1).locator('.item-text').textContent(), '+2 Much better than expected');
  assert.deepEqual(page.errors, []);
  await context.close();
});

test('a sign-in that names no Practitioner still retracts with its reason (the server records the token’s user)', async () => {
  const pid = 'retract-4';
  const fhir = fhirClient(server);
  const wm = await fhir.ok('POST', '/Observation', whatMattersBody(pid, 'Tea at four'));
  const { context, page } = await newPage(browser);
  await openPatient(page, server, pid, server.token('user/*.cruds', '1h', 'nurse-9'));
  await page.getByRole('button', { name: 'Entered in error: Tea at four' }).click();
  await page.getByLabel('Why is it wrong? (required)').fill('Duplicate of yesterday’s entry');
  await page.getByRole('button', { name: 'Mark as entered in error' }).click();
  await waitAllSaved(page, 1);
  assert.equal((await fhir.get(`/Observation/${wm.id}`)).status, 410);
  const provs = (await fhir.get(`/Provenance?target=Observation/${wm.id}`)).body.entry.map((e) => e.resource);
  const deletion = provs.find((p) => p.target.some((t) => t.reference.endsWith('/_history/2')));
  assert.equal(deletion.reason?.[0]?.text, 'Duplicate of yesterday’s entry');
  assert.deepEqual(page.errors, []);
  await context.close();
});
