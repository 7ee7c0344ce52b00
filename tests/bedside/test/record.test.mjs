// Recording at the bedside, read back over FHIR: every kind of record for a
// new patient with a family member speaking, goal progress scores, priorities
// reordered by buttons and by drag, and the whole flow by keyboard alone.
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';

import { startWmtyd } from '../lib/server.js';
import { wmtyctl } from '../lib/grpc.js';
import {
  chooseFamilySpeaker, fhirClient, goalBody, hasCode, launch, newPage, openPatient, outboxEntries, putPatient, confirmPatient, screenshot, waitAllSaved,
  whatMattersBody,
} from '../lib/browser.js';

const LOINC = 'http://loinc.org';
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

const speakerOf = (r, ref) => {
  assert.equal(ref.reference, '#speaker');
  const p = r.contained.find((c) => c.id === 'speaker');
  return { name: p.name[0].text, relationship: p.relationship[0].text };
};

test('records every kind for a new patient and reads them back over FHIR', async () => {
  const { context, page } = await newPage(browser);
  const pid = 'new-patient-1';
  await page.goto(server.appUrl);
  await screenshot(page, 'signin');
  await page.getByLabel('Access token').fill(server.token());
  await page.getByRole('button', { name: 'Sign in' }).click();
  await putPatient(server, pid, { given: ['Rosa'], family: 'Lindqvist' });
  await page.getByLabel('Find the patient').fill('Lindq');
  await page.getByRole('button', { name: 'Search', exact: true }).click();
  await page.locator('.patient-choice', { hasText: 'Rosa Lindqvist' }).click();
  await confirmPatient(page, 'Rosa Lindqvist');
  await page.getByText('Nothing recorded yet').waitFor();

  await page.getByRole('button', { name: 'Record', exact: true }).click();
  await chooseFamilySpeaker(page, 'Maria Garcia', 'Daughter');
  await page.getByRole('radio', { name: 'What would make tomorrow a good day?' }).check();
  const answer = 'Being home in time for my granddaughter’s wedding — and my own bed. «Sí»';
  await page.getByLabel('Their answer, in their own words').fill(answer);
  await page.getByLabel('The goal, in their own words').fill('Walk her down the aisle in June');
  await page.getByLabel('Target date (optional)').fill('2027-06-12');
  // Preferences: chips, chips plus free text, free text only.
  const rows = page.locator('.pref-row');
  await rows.nth(0).getByLabel('Kind of preference').selectOption({ label: 'Language' });
  await rows.nth(0).getByRole('button', { name: 'Spanish' }).click();
  await rows.nth(0).getByLabel('Needs an interpreter').check();
  assert.equal(await rows.nth(0).getByLabel('Language', { exact: true }).inputValue(), 'Spanish (es)');
  await page.getByRole('button', { name: 'Add another preference' }).click();
  await rows.nth(1).getByLabel('Kind of preference').selectOption({ label: 'Likes and joys' });
  await rows.nth(1).getByRole('button', { name: 'Music' }).click();
  const likes = rows.nth(1).getByLabel(/The preference, in their words/);
  await likes.fill(`${await likes.inputValue()}, my grandson's drawings on the wall`);
  await page.getByRole('button', { name: 'Add another preference' }).click();
  await rows.nth(2).getByLabel('Kind of preference').selectOption({ label: 'Name to use' });
  await rows.nth(2).getByLabel(/The preference, in their words/).fill('Dolores, not Mrs Garcia');
  await screenshot(page, 'record', { fullPage: true });
  await page.getByRole('button', { name: 'Save', exact: true }).click();
  await waitAllSaved(page, 5).catch(async (err) => {
    throw new Error(`${err.message}\noutbox: ${JSON.stringify(await outboxEntries(page))}`);
  });
  // Language and name to use say who the patient is: pinned in About, not ranked.
  await page.locator('#priority-list > li').nth(2).waitFor();
  await page.locator('#about-list > li').nth(1).waitFor();
  assert.equal(await page.locator('#priority-list > li').count(), 3);
  assert.equal(await page.locator('#about-title').textContent(), 'About Dolores, not Mrs Garcia');
  await page.locator('#priority-list').getByText('Said by Maria Garcia (daughter)').first().waitFor();

  // Put the goal first and save the priorities.
  const goalItem = page.locator('#priority-list > li[data-kind=goal]');
  while (await goalItem.getByRole('button', { name: /^Move up/ }).isEnabled()) {
    await goalItem.getByRole('button', { name: /^Move up/ }).click();
  }
  const shown = await page.locator('#priority-list > li').evaluateAll((lis) => lis.map((li) => li.dataset.ref));
  assert.match(shown[0], /^Goal\//);
  await page.getByRole('button', { name: 'Save priority order' }).click();
  await page.getByText(/Priority list saved as version 1/).waitFor();

  // Read everything back with a separate client.
  const fhir = fhirClient(server);
  const all = await fhir.everything(pid);
  assert.equal(all.goals.length, 1);
  assert.equal(all.observations.length, 4);
  const [goal] = all.goals;
  assert.equal(goal.description.text, 'Walk her down the aisle in June');
  assert.equal(goal.target[0].dueDate, '2027-06-12');
  assert.equal(goal.lifecycleStatus, 'active');
  assert.deepEqual(speakerOf(goal, goal.expressedBy), { name: 'Maria Garcia', relationship: 'Daughter' });
  const wm = all.observations.filter((o) => hasCode(o, WMTY, 'what-matters'));
  assert.equal(wm.length, 1);
  assert.equal(wm[0].valueString, answer, 'the patient’s words byte for byte');
  assert.equal(wm[0].component.find((c) => c.code.coding[0].code === 'prompt').valueString,
    'What would make tomorrow a good day?');
  assert.deepEqual(speakerOf(wm[0], wm[0].performer[0]), { name: 'Maria Garcia', relationship: 'Daughter' });
  assert.ok(wm[0].effectiveDateTime, 'when it was said');
  const pref = (system, code) => {
    const found = all.observations.filter((o) => hasCode(o, system, code));
    assert.equal(found.length, 1, `one preference ${code}`);
    assert.deepEqual(speakerOf(found[0], found[0].performer[0]), { name: 'Maria Garcia', relationship: 'Daughter' });
    return found[0].valueString;
  };
  assert.equal(pref(LOINC, '54899-0'), 'Spanish (es), needs an interpreter');
  const language = all.observations.find((o) => hasCode(o, LOINC, '54899-0'));
  assert.deepEqual(language.component.map((c) => [c.code.coding[0].code, c.valueCodeableConcept?.coding[0].code ?? c.valueBoolean]),
    [['language', 'es'], ['interpreter-needed', true]]);
  assert.equal(pref(LOINC, '81360-0'), "Music, my grandson's drawings on the wall");
  assert.equal(pref(WMTY, 'name-to-use'), 'Dolores, not Mrs Garcia');
  // The priorities: the order shown, every record, version 1.
  assert.equal(all.list.meta.versionId, '1');
  assert.deepEqual(all.list.entry.map((e) => e.item.reference), shown);
  assert.equal(all.list.entry[0].item.reference, `Goal/${goal.id}`);
  assert.deepEqual(page.errors, []);
  await context.close();
});

test('goal progress: chart, and scores whose code and performer follow when and who scored (nothing preselected)', async () => {
  const pid = 'progress-1';
  const fhir = fhirClient(server);
  const goal = await fhir.ok('POST', '/Goal', goalBody(pid, 'Walk to the garden on my own'));
  const score = (code, answer, when) => fhir.ok('POST', '/Observation', {
    resourceType: 'Observation', status: 'final', code: { coding: [{ system: LOINC, code }] },
    subject: { reference: `Patient/${pid}` }, focus: [{ reference: `Goal/${goal.id}` }], effectiveDateTime: when,
    performer: [{ reference: `Patient/${pid}` }],
    valueCodeableConcept: { coding: [{ system: LOINC, code: answer }] } });
  await score('112296-9', 'LA34484-8', '2026-11-02T10:00:00Z'); // -2 baseline
  await score('107333-7', 'LA34483-0', '2026-11-09T10:00:00Z'); // -1
  await fhir.ok('POST', '/Observation', whatMattersBody(pid, 'Seeing my roses'));

  const { context, page } = await newPage(browser);
  await openPatient(page, server, pid);
  const item = page.locator(`#priority-list > li[data-ref="Goal/${goal.id}"]`);
  await item.locator('circle.dot').nth(1).waitFor();
  assert.equal(await item.locator('circle.dot').count(), 2);
  assert.match(await item.locator('svg').getAttribute('aria-label'), /2 scores, latest -1/);

  // Nothing preselected: when, who and the score are separate questions, all unanswered.
  await item.getByRole('button', { name: 'Record follow-up score' }).click();
  const form = item.locator('.score-form');
  assert.equal(await form.locator('input[type=radio]:checked').count(), 0, 'nothing preselected');
  await screenshot(page, 'summary', { fullPage: true });
  await form.getByRole('button', { name: 'Save score' }).click();
  await form.getByText('Is this the starting score or a follow-up?').waitFor();
  await form.getByLabel('Follow-up').check();
  await form.getByRole('button', { name: 'Save score' }).click();
  await form.getByText('Who scored it?', { exact: true }).last().waitFor();
  await form.getByLabel('Me (the nurse)').check();
  await form.getByRole('button', { name: 'Save score' }).click();
  await form.getByText('Choose the score.').waitFor();
  assert.equal((await fhir.get(`/Observation?focus=Goal/${goal.id}`)).body.entry.length, 2, 'nothing saved meanwhile');
  await form.getByRole('radio', { name: /\+1 Better than expected/ }).check();
  await form.getByRole('button', { name: 'Save score' }).click();
  await waitAllSaved(page, 1);
  await item.locator('circle.dot').nth(2).waitFor();
  assert.match(await item.locator('svg').getAttribute('aria-label'), /3 scores, latest \+1/);

  // A caregiver's follow-up, then the patient's own.
  const scoreAs = async (who, answer, caregiver) => {
    await item.getByRole('button', { name: 'Record follow-up score' }).click();
    await form.getByLabel('Follow-up').check();
    await form.getByLabel(who).check();
    if (caregiver) {
      await form.getByLabel('Caregiver’s name').fill(caregiver[0]);
      await form.getByLabel('How the caregiver is related').fill(caregiver[1]);
    }
    await form.getByRole('radio', { name: answer }).check();
    await form.getByRole('button', { name: 'Save score' }).click();
  };
  await scoreAs('A caregiver', /^0 As expected/, ['Maria Garcia', 'Daughter']);
  await item.locator('circle.dot').nth(3).waitFor();
  await scoreAs('The patient', /^-1 Less than expected/);
  await item.locator('circle.dot').nth(4).waitFor();
  await waitAllSaved(page);

  // Each stored score: the code follows when and who; the performer is who scored it.
  const scores = (await fhir.get(`/Observation?focus=Goal/${goal.id}`)).body.entry.map((e) => e.resource);
  assert.equal(scores.length, 5);
  const byCode = (code) => scores.filter((o) => hasCode(o, LOINC, code)).sort((a, b) => a.effectiveDateTime.localeCompare(b.effectiveDateTime)).at(-1);
  const nurse = byCode('107333-7');
  assert.equal(nurse.valueCodeableConcept.coding[0].code, 'LA34480-6');
  assert.deepEqual(nurse.performer.map((p) => p.reference), ['Practitioner/dev'], 'the nurse from the token’s fhirUser');
  const carer = byCode('107331-1');
  assert.equal(carer.valueCodeableConcept.coding[0].code, 'LA34481-4');
  assert.deepEqual(speakerOf(carer, carer.performer[0]), { name: 'Maria Garcia', relationship: 'Daughter' });
  const own = byCode('107334-5');
  assert.equal(own.valueCodeableConcept.coding[0].code, 'LA34483-0');
  assert.deepEqual(own.performer.map((p) => p.reference), [`Patient/${pid}`]);
  // The gRPC face has the same score types and scores.
  const grpc = (await wmtyctl(server, 'list-goal-scores', [`--parent=patients/${pid}`])).goal_scores;
  const grpcOf = (o) => grpc.find((g) => g.name.endsWith(`/${o.id}`));
  assert.deepEqual([nurse, carer, own].map((o) => [grpcOf(o).score_type, grpcOf(o).score ?? 0]),
    [['PRACTITIONER_FOLLOW_UP', 1], ['CAREGIVER_FOLLOW_UP', 0], ['PATIENT_FOLLOW_UP', -1]]);
  // ... and who scored each (the speaker model's PRACTITIONER, RELATED_PERSON, PATIENT).
  const saidBy = (o) => grpcOf(o).provenance.said_by;
  assert.deepEqual([saidBy(nurse).kind, saidBy(nurse).practitioner_id], ['PRACTITIONER', 'dev']);
  assert.deepEqual([saidBy(carer).kind, saidBy(carer).name, saidBy(carer).relationship],
    ['RELATED_PERSON', 'Maria Garcia', 'Daughter']);
  assert.equal(saidBy(own).kind, 'PATIENT');

  // A new goal's baseline scored by the nurse: the baseline code, the nurse as performer.
  const goal2 = await fhir.ok('POST', '/Goal', goalBody(pid, 'Sleep through the night'));
  await page.getByRole('button', { name: 'Refresh' }).click();
  const item2 = page.locator(`#priority-list > li[data-ref="Goal/${goal2.id}"]`);
  await item2.getByRole('button', { name: 'Record starting score' }).click();
  await item2.getByLabel('Starting score (baseline)').check();
  await item2.getByLabel('Me (the nurse)').check();
  await item2.getByRole('radio', { name: /^-2 Much less than expected/ }).check();
  await item2.getByRole('button', { name: 'Save score' }).click();
  await item2.locator('circle.dot').first().waitFor();
  await waitAllSaved(page);
  const [baseline] = (await fhir.get(`/Observation?focus=Goal/${goal2.id}`)).body.entry.map((e) => e.resource);
  assert.ok(hasCode(baseline, LOINC, '112296-9'), 'the baseline code');
  assert.deepEqual(baseline.performer.map((p) => p.reference), ['Practitioner/dev']);
  assert.deepEqual(page.errors, []);
  await context.close();
});

test('reorders priorities with the buttons and by drag; the List on the server follows', async () => {
  const pid = 'order-1';
  const fhir = fhirClient(server);
  const a = await fhir.ok('POST', '/Observation', whatMattersBody(pid, 'A: my dog Pepper'));
  const b = await fhir.ok('POST', '/Goal', goalBody(pid, 'B: go home by Friday'));
  const c = await fhir.ok('POST', '/Observation', whatMattersBody(pid, 'C: no pain at night'));
  const refs = { a: `Observation/${a.id}`, b: `Goal/${b.id}`, c: `Observation/${c.id}` };
  await fhir.ok('PUT', `/List/${pid}`, {
    resourceType: 'List', id: pid, status: 'current', mode: 'working', code: { coding: [{ system: LOINC, code: '81340-2' }] },
    subject: { reference: `Patient/${pid}` }, source: { reference: `Patient/${pid}` },
    entry: [refs.a, refs.b, refs.c].map((r) => ({ item: { reference: r } })) });

  // Tall enough that every item is on screen while dragging.
  const { context, page } = await newPage(browser, { viewport: { width: 1024, height: 1400 } });
  await openPatient(page, server, pid);
  const order = () => page.locator('#priority-list > li').evaluateAll((lis) => lis.map((li) => li.dataset.ref));
  assert.deepEqual(await order(), [refs.a, refs.b, refs.c]);
  assert.ok(await page.getByRole('button', { name: 'Save priority order' }).isHidden(), 'nothing to save yet');

  // Buttons: C to the top.
  await page.getByRole('button', { name: 'Move up: C: no pain at night' }).click();
  await page.getByRole('button', { name: 'Move up: C: no pain at night' }).click();
  assert.deepEqual(await order(), [refs.c, refs.a, refs.b]);
  assert.match(await page.locator('#order-live').textContent(), /position 1 of 3/);
  await page.getByRole('button', { name: 'Save priority order' }).click();
  await page.getByText(/Priority list saved as version 2/).waitFor();
  let list = (await fhir.get(`/List/${pid}`)).body;
  assert.equal(list.meta.versionId, '2');
  assert.deepEqual(list.entry.map((e) => e.item.reference), [refs.c, refs.a, refs.b]);

  // Drag: the handle of C (first) below B (last).
  const handle = page.locator(`#priority-list > li[data-ref="${refs.c}"] .handle`);
  const target = page.locator(`#priority-list > li[data-ref="${refs.b}"]`);
  const from = await handle.boundingBox();
  const to = await target.boundingBox();
  await page.mouse.move(from.x + from.width / 2, from.y + from.height / 2);
  await page.mouse.down();
  for (let i = 1; i <= 10; i++) {
    await page.mouse.move(from.x + from.width / 2, from.y + (to.y + to.height * 0.75 - from.y) * (i / 10));
  }
  await page.mouse.up();
  assert.deepEqual(await order(), [refs.a, refs.b, refs.c]);
  await page.getByRole('button', { name: 'Save priority order' }).click();
  await page.getByText(/Priority list saved as version 3/).waitFor();
  list = (await fhir.get(`/List/${pid}`)).body;
  assert.deepEqual(list.entry.map((e) => e.item.reference), [refs.a, refs.b, refs.c]);
  assert.deepEqual(page.errors, []);
  await context.close();
});

// Presses Tab until the focused element matches `selector`; every element on
// the way must show a visible focus indicator.
async function tabTo(page, selector, { shift = false, max = 60 } = {}) {
  for (let i = 0; i < max; i++) {
    await page.keyboard.press(shift ? 'Shift+Tab' : 'Tab');
    await page.waitForTimeout(30); // let focus styles settle (date inputs focus an inner field)
    const f = await page.evaluate((sel) => {
      const el = document.activeElement;
      if (!el || el === document.body) return { match: false, visible: true };
      const cs = getComputedStyle(el);
      const label = el.closest('label');
      const lcs = label ? getComputedStyle(label) : null;
      const visible = (cs.outlineStyle !== 'none' && parseFloat(cs.outlineWidth) >= 2) || cs.boxShadow !== 'none'
        || (lcs && lcs.outlineStyle !== 'none' && parseFloat(lcs.outlineWidth) >= 2);
      return { match: el.matches(sel), visible, what: `${el.tagName} ${el.id || el.name || el.textContent.slice(0, 30)} ${cs.outlineStyle} ${cs.outlineWidth} ${cs.boxShadow}` };
    }, selector);
    assert.ok(f.visible, `focus is visible on ${f.what}`);
    if (f.match) return;
  }
  throw new Error(`Tab never reached ${selector}`);
}

test('keyboard only: sign in, record, reorder and save without a pointer', async () => {
  const pid = 'keyboard-1';
  const fhir = fhirClient(server);
  const first = await fhir.ok('POST', '/Observation', whatMattersBody(pid, 'Already known: my cat'));
  await putPatient(server, pid, { given: ['Kit'], family: 'Marlowe' });
  const { context, page } = await newPage(browser);
  await page.goto(server.appUrl);
  // The sign-in screen appears once the app has asked the server how to sign in.
  await page.locator('#token').waitFor();
  await tabTo(page, '#token');
  await page.keyboard.type(server.token());
  await page.keyboard.press('Enter');
  await page.locator('#patient-query').waitFor();
  await tabTo(page, '#patient-query');
  await page.keyboard.type('marlowe');
  await page.keyboard.press('Enter');
  await page.locator('.patient-choice').waitFor();
  await tabTo(page, '.patient-choice');
  await page.keyboard.press('Enter');
  await page.getByRole('heading', { name: 'Kit Marlowe' }).waitFor();
  await tabTo(page, '#confirm-patient');
  await page.keyboard.press('Enter');
  await tabTo(page, '#tab-record');
  await page.keyboard.press('Enter');
  // Focus lands on the speaker; arrow keys pick "A family member".
  assert.equal(await page.evaluate(() => document.activeElement.value), 'patient');
  await page.keyboard.press('ArrowDown');
  await tabTo(page, '#family-name');
  await page.keyboard.type('Sam');
  await page.keyboard.press('Tab');
  await page.keyboard.type('Son');
  // The prompts are a radio group: Tab in, arrows to choose.
  await tabTo(page, 'input[name=prompt]');
  await page.keyboard.press('ArrowRight');
  await page.keyboard.press('ArrowRight');
  await tabTo(page, '#wm-answer');
  await page.keyboard.type('That Sam can stay the night');
  await tabTo(page, '.pref-kind');
  await page.keyboard.press('ArrowDown'); // Name to use -> Pronouns
  await tabTo(page, '.chip[data-value="they/them"]');
  await page.keyboard.press('Space');
  await tabTo(page, 'button[type=submit]');
  await page.keyboard.press('Enter');
  await waitAllSaved(page, 2);

  // Move the new answer above the one already known, by keyboard, and save.
  // (The pronouns are pinned in About, not ranked.)
  await page.locator('#priority-list > li').nth(1).waitFor();
  await page.locator('#about-list > li').waitFor();
  await tabTo(page, 'button[data-move=down]');
  await page.keyboard.press('Enter'); // the first item moves down; focus stays on its button
  await tabTo(page, '#save-order');
  await page.keyboard.press('Space');
  await page.getByText(/Priority list saved as version 1/).waitFor();

  const all = await fhir.everything(pid);
  const wm = all.observations.find((o) => o.valueString === 'That Sam can stay the night');
  assert.ok(wm, 'the answer was saved');
  assert.equal(wm.component[0].valueString, 'What worries you?');
  assert.deepEqual(speakerOf(wm, wm.performer[0]), { name: 'Sam', relationship: 'Son' });
  const pronouns = all.observations.find((o) => hasCode(o, LOINC, '90778-2'));
  assert.equal(pronouns.valueString, 'they/them');
  const order = all.list.entry.map((e) => e.item.reference);
  assert.equal(order.length, 2);
  assert.equal(order[1], `Observation/${first.id}`, 'the first item moved down one place');
  assert.deepEqual(page.errors, []);
  await context.close();
});

test('the speaker stays between saves for the same patient and is reset for another patient', async () => {
  const fhir = fhirClient(server);
  const { context, page } = await newPage(browser);
  await openPatient(page, server, 'speaker-1');
  await page.getByRole('button', { name: 'Record', exact: true }).click();
  await chooseFamilySpeaker(page, 'Maria Garcia', 'Daughter');
  await page.getByLabel('Their answer, in their own words').fill('First: her garden');
  await page.getByRole('button', { name: 'Save', exact: true }).click();
  await waitAllSaved(page, 1);
  await page.getByRole('button', { name: 'Record', exact: true }).click();
  assert.equal(await page.getByLabel('A family member').isChecked(), true, 'still the daughter speaking');
  assert.equal(await page.getByLabel('Their name').inputValue(), 'Maria Garcia');
  assert.equal(await page.getByLabel('Relationship to the patient').inputValue(), 'Daughter');
  assert.equal(await page.getByLabel('Their answer, in their own words').inputValue(), '', 'the words are cleared');
  await page.getByLabel('Their answer, in their own words').fill('Second: her grandchildren');
  await page.getByRole('button', { name: 'Save', exact: true }).click();
  await waitAllSaved(page, 2);
  const stored = (await fhir.everything('speaker-1')).observations;
  assert.equal(stored.length, 2);
  for (const o of stored) assert.deepEqual(speakerOf(o, o.performer[0]), { name: 'Maria Garcia', relationship: 'Daughter' });

  // Another patient: nobody carried over.
  await putPatient(server, 'speaker-2', { given: ['Lin'], family: 'Chen' });
  await page.getByRole('button', { name: 'Change patient' }).click();
  await page.getByLabel('Find the patient').fill('speaker-2');
  await page.getByRole('button', { name: 'Search', exact: true }).click();
  await page.locator('.patient-choice', { hasText: 'MRN-speaker-2' }).click();
  await confirmPatient(page, 'Lin Chen');
  await page.getByRole('button', { name: 'Record', exact: true }).click();
  assert.equal(await page.getByLabel('The patient', { exact: true }).isChecked(), true);
  assert.equal(await page.getByLabel('Their name').inputValue(), '');
  assert.deepEqual(page.errors, []);
  await context.close();
});

test('a record another system sent: who said it is shown as not stated, and who recorded it for whom', async () => {
  const pid = 'from-ehr-1';
  await putPatient(server, pid);
  // An EHR plugin's own token, recording for a named clinician (X-Provenance),
  // a US Core Goal without expressedBy (the speaker not stated).
  const plugin = fhirClient(server, server.token('user/*.cruds', '1h', 'Practitioner/ehr-plugin'));
  const forRita = JSON.stringify({ resourceType: 'Provenance', agent: [{
    type: { coding: [{ system: 'http://terminology.hl7.org/CodeSystem/provenance-participant-type', code: 'author' }] },
    who: { reference: 'Practitioner/rn-17', display: 'Rita Okafor' } }] });
  const { expressedBy, ...goal } = goalBody(pid, 'Be home for the harvest');
  await plugin.ok('POST', '/Goal', goal, { 'X-Provenance': forRita });
  const { context, page } = await newPage(browser);
  await openPatient(page, server, pid);
  const meta = await page.locator('.item-body', { hasText: 'Be home for the harvest' }).locator(':scope > .meta').textContent();
  assert.match(meta, /Said by: not stated/);
  assert.match(meta, /recorded by Rita Okafor \(entered by ehr-plugin\)/);
  assert.deepEqual(page.errors, []);
  await context.close();
});

test('a single item has nothing to rank: no arrows, no handle, no order to save', async () => {
  const pid = 'single-1';
  const fhir = fhirClient(server);
  const { context, page } = await newPage(browser);
  await openPatient(page, server, pid);
  await page.getByRole('button', { name: 'Record', exact: true }).click();
  await page.getByLabel('Their answer, in their own words').fill('Only this');
  await page.getByRole('button', { name: 'Save', exact: true }).click();
  await waitAllSaved(page, 1);
  const items = page.locator('#priority-list > li');
  await items.first().waitFor();
  assert.equal(await items.locator('[data-move], .handle').count(), 0, 'no arrows or handle for one item');
  assert.ok(await page.getByRole('button', { name: 'Save priority order' }).isHidden());
  assert.ok(await page.locator('#order-hint').isHidden());
  // A second item: now there is something to rank.
  await fhir.ok('POST', '/Goal', goalBody(pid, 'And this'));
  await page.getByRole('button', { name: 'Refresh' }).click();
  await items.nth(1).waitFor();
  assert.equal(await items.locator('[data-move]').count(), 4);
  assert.equal(await items.locator('.handle').count(), 2);
  assert.ok(await page.getByRole('button', { name: 'Save priority order' }).isVisible());
  assert.deepEqual(page.errors, []);
  await context.close();
});
