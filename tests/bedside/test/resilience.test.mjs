// Saving when things go wrong: someone else edited first (both versions shown,
// the nurse chooses, nothing overwritten silently); no connection (kept on the
// device, pending, sent later); the answer lost after the server wrote
// (retried with the same X-Request-Id: still exactly one resource).
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';

import { startWmtyd } from '../lib/server.js';
import { fhirClient, goalBody, launch, newPage, openPatient, outboxEntries, screenshot, waitAllSaved } from '../lib/browser.js';

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

async function countAnswers(fhir, pid, text) {
  const r = await fhir.get(`/Observation?patient=${pid}&_count=100`);
  return (r.body.entry || []).filter((e) => e.resource.valueString === text).length;
}

async function recordAnswer(page, text) {
  await page.getByRole('button', { name: 'Record', exact: true }).click();
  await page.getByLabel('Their answer, in their own words').fill(text);
  await page.getByRole('button', { name: 'Save', exact: true }).click();
}

test('edit conflict: both versions are shown and each choice does what it says', async () => {
  const pid = 'conflict-1';
  const fhir = fhirClient(server);
  const goal = await fhir.ok('POST', '/Goal', goalBody(pid, 'Sit in the garden'));
  const otherWriter = async (version, text) => {
    const r = await fhir.call('PUT', `/Goal/${goal.id}`, { ...goalBody(pid, text), id: goal.id }, { 'If-Match': `W/"${version}"` });
    assert.equal(r.status, 200);
  };
  const { context, page } = await newPage(browser);
  await openPatient(page, server, pid);
  const dialog = page.getByRole('dialog', { name: 'Someone else changed this' });

  // 1. Keep theirs.
  await page.getByRole('button', { name: 'Edit: Sit in the garden' }).click();
  await page.getByLabel('In their own words', { exact: true }).fill('Sit in the garden with my sister');
  await otherWriter(1, 'Sit in the garden every afternoon');
  await page.getByRole('button', { name: 'Save changes' }).click();
  await dialog.waitFor();
  assert.equal(await page.locator('#conflict-mine').textContent(), 'Sit in the garden with my sisterTarget: none · Status: active');
  assert.match(await page.locator('#conflict-theirs').textContent(), /^Sit in the garden every afternoon/);
  assert.match(await page.locator('#conflict-theirs-meta').textContent(), /^Version 2/);
  await screenshot(page, 'conflict');
  let now = (await fhir.get(`/Goal/${goal.id}`)).body;
  assert.equal(now.meta.versionId, '2', 'nothing written while the nurse decides');
  await page.getByRole('button', { name: 'Keep theirs (discard mine)' }).click();
  await dialog.waitFor({ state: 'hidden' });
  await page.locator('#priority-list').getByText('Sit in the garden every afternoon').waitFor();
  now = (await fhir.get(`/Goal/${goal.id}`)).body;
  assert.equal(now.meta.versionId, '2');
  assert.equal(now.description.text, 'Sit in the garden every afternoon');
  assert.deepEqual(await outboxEntries(page), []);

  // 2. Keep mine: saved over their newer version, on purpose.
  await page.getByRole('button', { name: 'Edit: Sit in the garden every afternoon' }).click();
  await page.getByLabel('In their own words', { exact: true }).fill('Sit in the garden with my sister, mornings');
  await page.getByLabel('Target date', { exact: true }).fill('2027-01-15');
  await otherWriter(2, 'Sit in the garden when it is warm');
  await page.getByRole('button', { name: 'Save changes' }).click();
  await dialog.waitFor();
  assert.match(await page.locator('#conflict-theirs').textContent(), /when it is warm/);
  await page.getByRole('button', { name: 'Keep mine' }).click();
  await dialog.waitFor({ state: 'hidden' });
  await waitAllSaved(page);
  await page.locator('#priority-list').getByText('version 4').waitFor();
  now = (await fhir.get(`/Goal/${goal.id}`)).body;
  assert.equal(now.meta.versionId, '4');
  assert.equal(now.description.text, 'Sit in the garden with my sister, mornings');
  assert.equal(now.target[0].dueDate, '2027-01-15');
  const history = (await fhir.get(`/Goal/${goal.id}/_history`)).body;
  assert.equal(history.total ?? history.entry.length, 4, 'every version kept, none lost');
  assert.deepEqual(page.errors, []);
  await context.close();
});

test('priority order conflict: another device saved an order first', async () => {
  const pid = 'conflict-2';
  const fhir = fhirClient(server);
  const a = await fhir.ok('POST', '/Goal', goalBody(pid, 'Alpha'));
  const b = await fhir.ok('POST', '/Goal', goalBody(pid, 'Bravo'));
  const { context, page } = await newPage(browser);
  await openPatient(page, server, pid);
  // Someone else creates the List while this page has none.
  await fhir.ok('PUT', `/List/${pid}`, { resourceType: 'List', id: pid, status: 'current', mode: 'working',
    code: { coding: [{ system: 'http://loinc.org', code: '81340-2' }] }, subject: { reference: `Patient/${pid}` },
    source: { reference: `Patient/${pid}` }, entry: [{ item: { reference: `Goal/${b.id}` } }, { item: { reference: `Goal/${a.id}` } }] });
  await page.getByRole('button', { name: 'Save priority order' }).click();
  const dialog = page.getByRole('dialog', { name: 'Someone else changed this' });
  await dialog.waitFor();
  assert.deepEqual(await page.locator('#conflict-mine li').allTextContents(), ['Alpha', 'Bravo']);
  assert.deepEqual(await page.locator('#conflict-theirs li').allTextContents(), ['Bravo', 'Alpha']);
  await page.getByRole('button', { name: 'Keep mine' }).click();
  await waitAllSaved(page);
  const list = (await fhir.get(`/List/${pid}`)).body;
  assert.equal(list.meta.versionId, '2');
  assert.deepEqual(list.entry.map((e) => e.item.reference), [`Goal/${a.id}`, `Goal/${b.id}`]);
  await context.close();
});

test('offline: the save is kept on the device, shown pending, then saved once', async () => {
  const pid = 'offline-1';
  const fhir = fhirClient(server);
  const { context, page } = await newPage(browser);
  await openPatient(page, server, pid);

  // A. The tablet has no network at all; it comes back.
  await context.setOffline(true);
  await recordAnswer(page, 'Offline: my wife visits at 6');
  await page.locator('#outbox-list [data-state=pending]').waitFor();
  await page.locator('#sync-status', { hasText: '1 waiting to send' }).waitFor();
  const [queued] = await outboxEntries(page);
  assert.equal(queued.state, 'pending');
  assert.match(queued.id, /^[0-9a-f-]{36}$/);
  assert.equal(await countAnswers(fhir, pid, 'Offline: my wife visits at 6'), 0);
  await screenshot(page, 'offline-pending');
  await context.setOffline(false); // the 'online' event sends it
  await waitAllSaved(page, 1);
  assert.equal(await countAnswers(fhir, pid, 'Offline: my wife visits at 6'), 1);

  // B. Failing requests, and the page reloaded meanwhile: the outbox survives.
  const block = (route) => route.abort('internetdisconnected');
  await page.route('**/fhir/Observation', block);
  await recordAnswer(page, 'Survives a reload');
  await page.locator('#outbox-list [data-state=pending]').waitFor();
  const before = await outboxEntries(page);
  await page.reload();
  await page.locator('#outbox-list [data-state=pending]').waitFor();
  assert.deepEqual((await outboxEntries(page)).map((e) => [e.id, e.body]), before.map((e) => [e.id, e.body]),
    'the same request id and body after a reload');
  await page.unroute('**/fhir/Observation', block);
  await page.getByRole('button', { name: 'Try sending now' }).click();
  await waitAllSaved(page, 1);
  assert.equal(await countAnswers(fhir, pid, 'Survives a reload'), 1);
  assert.deepEqual(page.errors, []);
  await context.close();
});

test('lost answer: the server wrote, the reply never came; the retry records nothing twice; the log says when, in words', async () => {
  const pid = 'offline-2';
  const fhir = fhirClient(server);
  const { context, page } = await newPage(browser);
  await openPatient(page, server, pid);
  const seen = [];
  await page.route('**/fhir/Observation', async (route) => {
    seen.push(route.request().headers()['x-request-id']);
    if (seen.length === 1) {
      const reply = await route.fetch(); // reaches wmtyd, which writes it...
      assert.equal(reply.status(), 201);
      await route.abort('connectionreset'); // ...but the page never hears back
    } else {
      await route.continue();
    }
  });
  // The page runs in UTC (newPage), so its local time is this.
  const hhmm = () => new Date().toLocaleTimeString('en-GB', { timeZone: 'UTC', hour: '2-digit', minute: '2-digit' });
  const before = hhmm();
  await recordAnswer(page, 'Lost reply: keep the window open');
  await waitAllSaved(page, 1);
  assert.ok(seen.length >= 2, 'it was retried');
  assert.ok(seen.every((id) => id === seen[0]), `the same X-Request-Id every time: ${seen.join(', ')}`);
  assert.equal(await countAnswers(fhir, pid, 'Lost reply: keep the window open'), 1, 'exactly one resource');
  // The save log says what was saved, in words, and when (local time): no database ids.
  const saved = page.locator('#outbox-list [data-state=saved]');
  const [stored] = (await fhir.get(`/Observation?patient=${pid}`)).body.entry.map((e) => e.resource);
  assert.equal(stored.meta.versionId, '1');
  const [, shownTime] = /^Saved (\d\d:\d\d)What matters: “Lost reply: keep the window open”$/.exec(await saved.textContent()) || [];
  assert.ok([before, hhmm()].includes(shownTime), `the local time of the save (${shownTime}, between ${before} and now)`);
  assert.ok(!(await page.locator('#outbox-panel').textContent()).includes(stored.id), 'no database id shown');
  assert.deepEqual(page.errors, []);
  await context.close();
});
