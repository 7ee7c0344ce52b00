// Preferences as the nurse sees them are what the server stored: for every
// kind the app offers, the card's words and coded part equal what the FHIR
// face returns and what the gRPC face returns (read with the real wmtyctl).
// Structured kinds (Language, How to contact, When to contact) keep the coded
// choice and the note apart, and editing changes the code with the words.
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';

import { startWmtyd } from '../lib/server.js';
import { fhirClient, hasCode, launch, newPage, openPatient, waitAllSaved } from '../lib/browser.js';
import { grpcPreferences, wmtyctl } from '../lib/grpc.js';

const WMTY = 'https://fhir.wmty.health/CodeSystem/wmty';
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

// The detail as FHIR components say it, in one shape for all three kinds.
function fhirDetail(obs) {
  const comps = (code) => (obs.component || []).filter((c) => hasCode(c, WMTY, code));
  const code = (c) => c.valueCodeableConcept.coding[0].code;
  if (comps('language').length) {
    return { language: code(comps('language')[0]), interpreter: comps('interpreter-needed')[0]?.valueBoolean };
  }
  if (comps('preferred-channel').length) return { channels: comps('preferred-channel').map(code) };
  if (comps('contact-start-time').length) {
    return { days: comps('contact-day').map(code), start: comps('contact-start-time')[0].valueTime,
      end: comps('contact-end-time')[0].valueTime };
  }
  return null;
}

// The same from the gRPC Preference message.
const GRPC_CHANNELS = { PHONE_CALL: 'phone-call', SMS: 'sms', EMAIL: 'email', PATIENT_PORTAL: 'patient-portal',
  POSTAL_MAIL: 'postal-mail', IN_PERSON: 'in-person', VIDEO_VISIT: 'video-visit' };
const GRPC_DAYS = { 1: 'mon', 2: 'tue', 3: 'wed', 4: 'thu', 5: 'fri', 6: 'sat', 7: 'sun' };
function grpcDetail(p) {
  if (p.language) return { language: p.language.language, interpreter: p.language.interpreter_needed ?? false };
  if (p.channel_ranking) return { channels: p.channel_ranking.channels.map((c) => GRPC_CHANNELS[c]) };
  if (p.contact_window) {
    return { days: (p.contact_window.days_of_week || []).map((d) => GRPC_DAYS[d]),
      start: `${p.contact_window.start_time}:00`, end: `${p.contact_window.end_time}:00` };
  }
  return null;
}

// What the card of a record shows: its words and its coded line.
async function card(page, id) {
  const li = page.locator(`li[data-ref="Observation/${id}"]`);
  const coded = li.locator('.item-coded');
  return { text: await li.locator('.item-text').textContent(),
    coded: (await coded.count()) ? await coded.textContent() : '', about: await li.evaluate((el) => Boolean(el.closest('#about'))) };
}

// Card == FHIR == gRPC, words and code, for one preference id; returns the three.
async function sameOnAllFaces(page, fhir, pid, id) {
  const shown = await card(page, id);
  const obs = (await fhir.get(`/Observation/${id}`)).body;
  const grpc = await wmtyctl(server, 'get-preference', [`--name=patients/${pid}/preferences/${id}`]);
  assert.equal(obs.valueString, shown.text, `FHIR words of ${id} are the card's`);
  assert.equal(grpc.value_text, shown.text, `gRPC words of ${id} are the card's`);
  assert.deepEqual(grpcDetail(grpc), fhirDetail(obs), `gRPC and FHIR code of ${id} agree`);
  return { shown, obs, grpc };
}

// How each kind the app offers is filled in, and what must come back.
const KINDS = {
  'Name to use': { kind: 'NAME_TO_USE', about: true, fill: (row) => row.getByLabel(/in their words/).fill('Dolores') },
  Pronouns: { kind: 'PRONOUNS', about: true, fill: (row) => row.getByRole('button', { name: 'she/her' }).click() },
  Language: { kind: 'LANGUAGE', about: true,
    async fill(row) {
      await row.getByLabel('Language', { exact: true }).fill('Tagalog');
      await row.getByLabel('Needs an interpreter').check();
    },
    text: 'Tagalog (tl), needs an interpreter', coded: 'Coded: Tagalog (tl), needs an interpreter',
    detail: { language: 'tl', interpreter: true } },
  'How to contact': { kind: 'COMMUNICATION_CHANNELS',
    async fill(row) {
      await row.getByRole('button', { name: 'Text message' }).click();
      await row.getByRole('button', { name: 'Phone call' }).click();
      await row.getByLabel(/Anything else/).fill('not before 9, her hearing aid');
    },
    text: 'Text message, then Phone call — not before 9, her hearing aid', coded: 'Coded: Text message, then Phone call',
    detail: { channels: ['sms', 'phone-call'] } },
  'When to contact': { kind: 'CONTACT_TIME_WINDOW',
    async fill(row) {
      await row.getByRole('button', { name: 'Mornings' }).click();
      await row.getByRole('button', { name: 'Afternoons' }).click();
      await row.getByRole('button', { name: 'Weekdays only' }).click();
    },
    text: 'Mornings and afternoons, 08:00–17:00, weekdays only',
    coded: 'Coded: Mornings and afternoons, 08:00–17:00, weekdays only',
    detail: { days: ['mon', 'tue', 'wed', 'thu', 'fri'], start: '08:00:00', end: '17:00:00' } },
  'Family involvement': { kind: 'FAMILY_INVOLVEMENT',
    fill: (row) => row.getByRole('button', { name: 'Keep family informed' }).click() },
  'Likes and joys': { kind: 'LIKES_AND_JOYS', fill: (row) => row.getByRole('button', { name: 'Music' }).click() },
  'Dislikes and fears': { kind: 'DISLIKES_AND_FEARS', about: true,
    fill: (row) => row.getByRole('button', { name: 'The dark' }).click() },
  'Faith and culture': { kind: 'SPIRITUAL_CULTURAL', fill: (row) => row.getByRole('button', { name: 'Time to pray' }).click() },
  'Treatment wishes': { kind: 'TREATMENT_INTERVENTION',
    fill: (row) => row.getByRole('button', { name: 'Pain relief first' }).click() },
  'How to care for me': { kind: 'CARE_EXPERIENCE_PREFERENCE',
    fill: (row) => row.getByRole('button', { name: 'Door open' }).click() },
  Other: { kind: 'OTHER_PREFERENCE', fill: (row) => row.getByLabel(/in their words/).fill('Window open a crack') },
};

test('every preference kind: the card shows what the FHIR and gRPC faces return, code and text', async () => {
  const pid = 'prefs-all';
  const fhir = fhirClient(server);
  const { context, page } = await newPage(browser, { viewport: { width: 1024, height: 1400 } });
  await openPatient(page, server, pid);
  await page.getByRole('button', { name: 'Record', exact: true }).click();
  const offered = await page.locator('.pref-kind').first().evaluate((s) => [...s.options].map((o) => o.textContent));
  assert.deepEqual(offered.filter((k) => !KINDS[k]), [], 'every kind offered has a case in this test');
  const rows = page.locator('.pref-row');
  for (const [i, label] of offered.entries()) {
    if (i > 0) await page.getByRole('button', { name: 'Add another preference' }).click();
    await rows.nth(i).getByLabel('Kind of preference').selectOption({ label });
    await KINDS[label].fill(rows.nth(i));
  }
  await page.getByRole('button', { name: 'Save', exact: true }).click();
  await waitAllSaved(page);
  await page.waitForFunction((n) => document.querySelectorAll('li.item[data-ref^="Observation/"]').length === n,
    offered.length);

  const stored = (await fhir.everything(pid)).observations;
  assert.equal(stored.length, offered.length);
  const grpcAll = await grpcPreferences(server, pid);
  assert.equal(grpcAll.length, offered.length, 'the gRPC face lists the same preferences');
  for (const obs of stored) {
    const { shown, grpc } = await sameOnAllFaces(page, fhir, pid, obs.id);
    const label = Object.keys(KINDS).find((k) => KINDS[k].kind === grpc.kind);
    assert.ok(label, `a kind the app offers: ${grpc.kind}`);
    const want = KINDS[label];
    assert.equal(shown.about, Boolean(want.about), `${label}: pinned in About, or ranked`);
    if (want.detail) {
      assert.equal(shown.text, want.text, `${label}: words`);
      assert.equal(shown.coded, want.coded, `${label}: coded part shown`);
      assert.deepEqual(fhirDetail(obs), want.detail, `${label}: code stored`);
    } else {
      assert.equal(shown.coded, '', `${label}: no coded part`);
    }
  }
  // Identity preferences are pinned in "About <name to use>", never in the priorities.
  assert.equal(await page.locator('#about-title').textContent(), 'About Dolores');
  await page.getByRole('button', { name: 'Save priority order' }).click();
  await page.getByText(/Priority list saved as version 1/).waitFor();
  const list = (await fhir.get(`/List/${pid}`)).body;
  const aboutIds = stored.filter((o) => ['NAME_TO_USE', 'PRONOUNS', 'LANGUAGE', 'DISLIKES_AND_FEARS']
    .includes(grpcAll.find((g) => g.name.endsWith(`/${o.id}`)).kind)).map((o) => `Observation/${o.id}`);
  assert.equal(aboutIds.length, 4);
  assert.equal(list.entry.length, offered.length - 4);
  assert.deepEqual(list.entry.filter((e) => aboutIds.includes(e.item.reference)), [], 'no identity item ranked');
  assert.deepEqual(page.errors, []);
  await context.close();
});

test('editing a Language changes the coded language and interpreter flag with the words', async () => {
  const pid = 'prefs-language';
  const fhir = fhirClient(server);
  const { context, page } = await newPage(browser);
  await openPatient(page, server, pid);
  await page.getByRole('button', { name: 'Record', exact: true }).click();
  await page.getByLabel('Kind of preference').selectOption({ label: 'Language' });
  await page.getByRole('button', { name: 'Spanish' }).click();
  await page.getByLabel('Needs an interpreter').check();
  await page.getByLabel(/Anything else/).fill('her niece can help');
  assert.equal(await page.locator('.structured .preview').textContent(),
    'Will be saved as: “Spanish (es), needs an interpreter — her niece can help”');
  await page.getByRole('button', { name: 'Save', exact: true }).click();
  await waitAllSaved(page, 1);
  const [obs] = (await fhir.everything(pid)).observations;
  await page.locator(`li[data-ref="Observation/${obs.id}"]`).waitFor();
  let faces = await sameOnAllFaces(page, fhir, pid, obs.id);
  assert.deepEqual(fhirDetail(faces.obs), { language: 'es', interpreter: true });

  // The edit dialog has the same picker and interpreter toggle, prefilled.
  await page.getByRole('button', { name: /^Edit: Spanish/ }).click();
  const dialog = page.getByRole('dialog');
  assert.equal(await dialog.getByLabel('Language', { exact: true }).inputValue(), 'Spanish (es)');
  assert.equal(await dialog.getByLabel('Needs an interpreter').isChecked(), true);
  assert.equal(await dialog.getByLabel(/Anything else/).inputValue(), 'her niece can help');
  await dialog.getByLabel('Language', { exact: true }).fill('Portuguese');
  await dialog.getByRole('button', { name: 'Save changes' }).click();
  await page.locator(`li[data-ref="Observation/${obs.id}"]`, { hasText: 'version 2' }).waitFor();
  faces = await sameOnAllFaces(page, fhir, pid, obs.id);
  assert.equal(faces.shown.text, 'Portuguese (pt), needs an interpreter — her niece can help');
  assert.equal(faces.shown.coded, 'Coded: Portuguese (pt), needs an interpreter');
  assert.deepEqual(fhirDetail(faces.obs), { language: 'pt', interpreter: true }, 'the code changed with the words');

  // The interpreter flag off, and an unknown language refused in the dialog (nothing saved).
  await page.getByRole('button', { name: /^Edit: Portuguese/ }).click();
  await dialog.getByLabel('Needs an interpreter').uncheck();
  await dialog.getByLabel('Language', { exact: true }).fill('Klingonese');
  await dialog.getByRole('button', { name: 'Save changes' }).click();
  await dialog.getByText('“Klingonese” is not a language we know').waitFor();
  assert.equal((await fhir.get(`/Observation/${obs.id}`)).body.meta.versionId, '2');
  await dialog.getByLabel('Language', { exact: true }).fill('pt-BR');
  await dialog.getByRole('button', { name: 'Save changes' }).click();
  await page.locator(`li[data-ref="Observation/${obs.id}"]`, { hasText: 'version 3' }).waitFor();
  faces = await sameOnAllFaces(page, fhir, pid, obs.id);
  assert.match(faces.shown.text, /^.+ \(pt-BR\) — her niece can help$/);
  assert.deepEqual(fhirDetail(faces.obs), { language: 'pt-BR', interpreter: false });
  assert.deepEqual(page.errors, []);
  await context.close();
});

test('How to contact and When to contact: chips and note never undo each other; edits change the code', async () => {
  const pid = 'prefs-contact';
  const fhir = fhirClient(server);
  const { context, page } = await newPage(browser);
  await openPatient(page, server, pid);
  await page.getByRole('button', { name: 'Record', exact: true }).click();
  const rows = page.locator('.pref-row');
  await rows.nth(0).getByLabel('Kind of preference').selectOption({ label: 'How to contact' });
  await rows.nth(0).getByRole('button', { name: 'Phone call' }).click();
  await rows.nth(0).getByRole('button', { name: 'Text message' }).click();
  await rows.nth(0).getByLabel(/Anything else/).fill('Text message first if she is asleep');
  for (const chip of ['Phone call', 'Text message']) {
    assert.equal(await rows.nth(0).getByRole('button', { name: chip }).getAttribute('aria-pressed'), 'true',
      `${chip} is still chosen after typing the note`);
  }
  await page.getByRole('button', { name: 'Add another preference' }).click();
  await rows.nth(1).getByLabel('Kind of preference').selectOption({ label: 'When to contact' });
  await rows.nth(1).getByRole('button', { name: 'Mornings' }).click();
  await rows.nth(1).getByRole('button', { name: 'Evenings' }).click();
  await page.getByRole('button', { name: 'Save', exact: true }).click();
  await page.getByText('When to contact: Those times are not one window').waitFor();
  await rows.nth(1).getByRole('button', { name: 'Evenings' }).click();
  await page.getByRole('button', { name: 'Save', exact: true }).click();
  await waitAllSaved(page, 2);
  const stored = (await fhir.everything(pid)).observations;
  const channels = stored.find((o) => hasCode(o, WMTY, 'communication-channels'));
  const window = stored.find((o) => hasCode(o, WMTY, 'contact-time-window'));
  await page.locator(`li[data-ref="Observation/${window.id}"]`).waitFor();
  let faces = await sameOnAllFaces(page, fhir, pid, channels.id);
  assert.equal(faces.shown.text, 'Phone call, then Text message — Text message first if she is asleep');
  assert.deepEqual(fhirDetail(faces.obs), { channels: ['phone-call', 'sms'] }, 'both chips stored, in order');
  faces = await sameOnAllFaces(page, fhir, pid, window.id);
  assert.equal(faces.shown.text, 'Mornings, 08:00–12:00');

  // Edit: drop the phone call, keep the note; the channels follow.
  await page.getByRole('button', { name: /^Edit: Phone call/ }).click();
  const dialog = page.getByRole('dialog');
  assert.equal(await dialog.getByRole('button', { name: 'Phone call' }).getAttribute('aria-pressed'), 'true');
  await dialog.getByRole('button', { name: 'Phone call' }).click();
  await dialog.getByRole('button', { name: 'Save changes' }).click();
  await page.locator(`li[data-ref="Observation/${channels.id}"]`, { hasText: 'version 2' }).waitFor();
  faces = await sameOnAllFaces(page, fhir, pid, channels.id);
  assert.equal(faces.shown.text, 'Text message — Text message first if she is asleep');
  assert.deepEqual(fhirDetail(faces.obs), { channels: ['sms'] });
  // Edit: the window becomes afternoons, weekdays only.
  await page.getByRole('button', { name: /^Edit: Mornings/ }).click();
  await dialog.getByRole('button', { name: 'Mornings' }).click();
  await dialog.getByRole('button', { name: 'Afternoons' }).click();
  await dialog.getByRole('button', { name: 'Weekdays only' }).click();
  await dialog.getByRole('button', { name: 'Save changes' }).click();
  await page.locator(`li[data-ref="Observation/${window.id}"]`, { hasText: 'version 2' }).waitFor();
  faces = await sameOnAllFaces(page, fhir, pid, window.id);
  assert.equal(faces.shown.text, 'Afternoons, 12:00–17:00, weekdays only');
  assert.deepEqual(fhirDetail(faces.obs), { days: ['mon', 'tue', 'wed', 'thu', 'fri'], start: '12:00:00', end: '17:00:00' });
  assert.deepEqual(page.errors, []);
  await context.close();
});
