// The bedside app: sign in → patient → what we know (in the patient's
// priority order) → record → save through the outbox. docs/bedside.md.
import {
  AuthError, BASELINE_CODE, GAS, PATIENT_ID, PREFERENCE_KINDS, PROMPTS, STRUCTURED_KINDS, detailComponents, detailOf, detailSummary,
  forUpdate, goalResource, issueText, listResource, noteOf, parseEverything, parseHistory, practitionerOf,
  preferenceKindOf, preferenceResource, promptOf, request, retractionProvenance, scoreOf, scoreResource, scoreTypeCode,
  speakerOf, textOf, whatMattersResource,
} from './fhir.js';
import { Outbox } from './outbox.js';
import { fetchPatient, identityOf, patientsById, searchPatients } from './patient.js';
import { $, fmtDate, fmtDateTime, fmtTime, h, show } from './dom.js';
import { scoreChart } from './chart.js';
import { structuredEditor } from './prefs.js';
import * as smart from './smart.js';

const TOKEN_KEY = 'wmty.token';
const PATIENT_KEY = 'wmty.patient';
const RECENT_KEY = 'wmty.recentPatients';
// The patient id the nurse confirmed in this tab (asked again for any other).
const CONFIRMED_KEY = 'wmty.confirmedPatient';

const state = {
  token: sessionStorage.getItem(TOKEN_KEY) || '',
  patientId: '',
  // Who the patient is: 'loading' | 'ask' | 'confirmed' | 'unknown' |
  // 'forbidden' | 'error'. Nothing can be recorded until 'confirmed'.
  identity: 'loading',
  data: null, // parseEverything()
  order: [], // refs ("Goal/x", "Observation/y") as shown
  view: 'summary',
  conflict: null, // { entry, theirs, version }
  editing: null, // the resource in the edit dialog
  scoreOpen: new Set(), // goal ids whose score form is open
  smart: null, // the authorization server (smart-configuration), or null: development sign-in
};

const outbox = new Outbox(() => state.token);

// --- Screens ---------------------------------------------------------------

function showScreen(name) {
  for (const id of ['signin', 'patient', 'record']) show($(`#screen-${id}`), id === name);
  const signedIn = name !== 'signin';
  show($('#sign-out'), signedIn);
  const heading = $(`#screen-${name} h1`);
  heading.tabIndex = -1;
  heading.focus();
}

function banner(text, kind = 'info') {
  const b = $('#banner');
  b.textContent = text;
  b.className = `notice notice-${kind}`;
  show(b, Boolean(text));
}

function showSignin(message, kind = 'error') {
  const m = $('#signin-message');
  m.textContent = message || '';
  m.className = `notice notice-${kind}`;
  show(m, Boolean(message));
  $('#token').value = '';
  show($('#smart-signin'), Boolean(state.smart));
  show($('#signin-form'), !state.smart);
  showScreen('signin');
  renderSync();
}

// A refused token: a SMART session gets a new one with its refresh token and
// carries on; otherwise back to sign-in, and unsent saves stay on the device.
async function tokenRefused(reason) {
  const refused = state.token;
  const fresh = await smart.refreshNow();
  if (fresh && fresh !== refused) {
    state.token = fresh;
    outbox.retryNow();
    if (state.patientId && !state.data) load();
    return;
  }
  smart.signOut();
  state.token = '';
  sessionStorage.removeItem(TOKEN_KEY);
  outbox.pause();
  const unsent = outbox.entries.length;
  showSignin(`Please sign in again: ${reason || 'the token was not accepted'}.`
    + (unsent ? ` ${unsent} unsent save${unsent === 1 ? ' is' : 's are'} kept on this device and will be sent after you sign in.` : ''));
}

async function signIn(token) {
  try {
    // Any answer but 401 means the token is good (403 only says what it may do).
    await request(token, 'GET', '/List?_id=signin-check&_summary=count');
  } catch (err) {
    if (err instanceof AuthError) {
      showSignin(`That token was not accepted: ${err.message}`);
      return;
    }
    // Offline: let the nurse in; saves wait in the outbox.
  }
  state.token = token;
  sessionStorage.setItem(TOKEN_KEY, token);
  outbox.retryNow();
  const last = sessionStorage.getItem(PATIENT_KEY);
  if (last) openPatient(last);
  else showPatientPicker();
}

function signOut() {
  smart.signOut();
  outbox.clear();
  for (const k of [TOKEN_KEY, PATIENT_KEY, RECENT_KEY, CONFIRMED_KEY]) sessionStorage.removeItem(k);
  Object.assign(state, { token: '', patientId: '', data: null, order: [], conflict: null, editing: null });
  state.scoreOpen.clear();
  $('#priority-list').replaceChildren();
  $('#record-form').reset();
  resetPreferences();
  showSignin('You are signed out. Nothing about patients is kept on this device.', 'info');
}

function recentPatients() {
  try { return JSON.parse(sessionStorage.getItem(RECENT_KEY) || '[]'); } catch { return []; }
}

function showPatientPicker(message) {
  const m = $('#patient-message');
  m.textContent = message || '';
  show(m, Boolean(message));
  const recent = recentPatients();
  const ul = $('#recent-patients ul');
  ul.replaceChildren(...recent.map((id) => h('li', null,
    h('button', { type: 'button', class: 'btn btn-secondary', dataset: { patient: id }, onclick: () => openPatient(id) },
      `Patient ID ${id}`))));
  show($('#recent-patients'), recent.length > 0);
  show($('#patient-results'), false);
  $('#patient-query').value = '';
  showScreen('patient');
  if (recent.length) labelRecent(recent);
}

// Names the recent patients' buttons from their Patient records.
async function labelRecent(ids) {
  let found;
  try { found = await patientsById(state.token, ids); } catch { return; }
  for (const button of document.querySelectorAll('#recent-patients button[data-patient]')) {
    const p = found.get(button.dataset.patient);
    if (p) button.replaceChildren(...patientCard(identityOf(p)));
  }
}

// Name, then date of birth, age and MRN: how a patient is told apart.
function patientCard(who) {
  const facts = [who.birthDate && `Born ${fmtDate(who.birthDate)}${who.age ? ` (${who.age})` : ''}`,
    who.mrn && `MRN ${who.mrn}`].filter(Boolean).join(' · ');
  return [h('span', { class: 'pc-name' }, who.name || `Patient ID ${who.id}`), h('span', { class: 'pc-facts' }, facts)];
}

let searchSeq = 0;
async function findPatients(text) {
  const seq = ++searchSeq;  // only the latest search may show its answer
  const status = $('#results-status');
  const ul = $('#patient-results ul');
  ul.replaceChildren();
  status.textContent = 'Searching…';
  show($('#patient-results'), true);
  let res;
  try {
    res = await searchPatients(state.token, text);
  } catch (err) {
    if (seq !== searchSeq) return;
    if (err instanceof AuthError) return tokenRefused(err.message);
    status.textContent = 'No connection: cannot search now. Try again when the connection is back.';
    return;
  }
  if (seq !== searchSeq) return;
  if (res.status === 403 && !res.patients.length) {
    status.textContent = 'Your sign-in does not allow looking up patients.';
    return;
  }
  ul.replaceChildren(...res.patients.map((p) => h('li', null,
    h('button', { type: 'button', class: 'btn btn-secondary patient-choice', onclick: () => openPatient(p.id) },
      ...patientCard(identityOf(p))))));
  status.textContent = res.patients.length
    ? `${res.patients.length} patient${res.patients.length === 1 ? '' : 's'} found. Choose one to open.`
    : `No patient found for “${text}”. Check the spelling, or search by date of birth or MRN. A patient appears `
      + 'here once the hospital’s systems have sent their record.';
}

function openPatient(id) {
  state.patientId = id;
  state.data = null;
  state.order = [];
  state.scoreOpen.clear();
  sessionStorage.setItem(PATIENT_KEY, id);
  const recent = [id, ...recentPatients().filter((x) => x !== id)].slice(0, 5);
  sessionStorage.setItem(RECENT_KEY, JSON.stringify(recent));
  $('#patient-label').textContent = `Patient ID ${id}`;
  $('#patient-facts').replaceChildren();
  const confirmed = sessionStorage.getItem(CONFIRMED_KEY) === id;
  setIdentity(confirmed ? 'confirmed' : 'loading');
  if (id !== state.formPatientId) clearRecordForm();
  state.formPatientId = id;
  banner('');
  showScreen('record');
  setView('summary', false);
  render();
  loadIdentity(id, confirmed);
  load();
}

// --- Who the patient is ------------------------------------------------------

const IDENTITY_TEXT = {
  loading: ['Checking who this is…', 'Loading the patient’s record from the hospital’s systems.'],
  ask: ['Is this the patient in front of you?', 'Check the name and date of birth with the patient or on their '
    + 'wristband before you record anything.'],
  unknown: ['No patient record for this ID', 'wmty has no record from the hospital’s systems for this ID, so it '
    + 'cannot show who the patient is. Recording is blocked. Check the ID on the wristband, or search by name, date '
    + 'of birth or MRN. If the patient was admitted recently, their record may not have arrived yet: ask the ward '
    + 'clerk or IT to check the admission feed.'],
  forbidden: ['Cannot show who this is', 'Your sign-in does not allow reading this patient’s record, so recording '
    + 'is blocked. Ask for access, or choose another patient.'],
  error: ['Cannot check who this is', 'The patient’s record could not be loaded, so recording is blocked for now.'],
};

function setIdentity(st, detail = '') {
  state.identity = st;
  $('#screen-record').dataset.identity = st;
  const check = $('#identity-check');
  show(check, st !== 'confirmed');
  if (st === 'confirmed') return;
  const [title, text] = IDENTITY_TEXT[st];
  $('#identity-check-title').textContent = title;
  $('#identity-check-text').textContent = detail ? `${text} ${detail}` : text;
  check.className = `card identity-check${st === 'ask' || st === 'loading' ? '' : ' identity-blocked'}`;
  show($('#confirm-patient'), st === 'ask');
  show($('#retry-identity'), st === 'error');
}

function renderIdentity(who) {
  $('#patient-label').textContent = who.name || `Patient ID ${who.id}`;
  const fact = (term, value) => h('div', null, h('dt', null, term), h('dd', null, value));
  $('#patient-facts').replaceChildren(
    fact('Date of birth', who.birthDate ? `${fmtDate(who.birthDate)}${who.age ? ` (${who.age})` : ''}` : 'not recorded'),
    fact('MRN', who.mrn || 'not recorded'),
    fact('Patient ID', who.id));
}

async function loadIdentity(id, confirmed) {
  let res;
  try {
    res = await fetchPatient(state.token, id);
  } catch (err) {
    if (id !== state.patientId) return;
    if (err instanceof AuthError) return tokenRefused(err.message);
    // Offline: a patient confirmed earlier in this tab stays usable (saves wait in the outbox).
    if (!confirmed) setIdentity('error', 'There is no connection.');
    return;
  }
  if (id !== state.patientId) return;
  if (res.status === 200) {
    renderIdentity(identityOf(res.patient));
    if (!confirmed) setIdentity('ask');
    return;
  }
  sessionStorage.removeItem(CONFIRMED_KEY);
  if (res.status === 404 || res.status === 410) setIdentity('unknown');
  else if (res.status === 403) setIdentity('forbidden');
  else setIdentity('error', `(${res.status}) ${issueText(res.body)}`);
}

function confirmPatient() {
  if (state.identity !== 'ask') return;
  sessionStorage.setItem(CONFIRMED_KEY, state.patientId);
  setIdentity('confirmed');
  setView('summary');
}

function setView(view, focus = true) {
  state.view = view;
  for (const v of ['summary', 'record']) {
    show($(`#view-${v}`), v === view);
    const tab = $(`#tab-${v}`);
    if (v === view) tab.setAttribute('aria-current', 'page');
    else tab.removeAttribute('aria-current');
  }
  if (focus) {
    const heading = view === 'summary' ? $('#summary-title') : $('#record-form legend');
    if (view === 'record') $('#record-form input[name=speaker]:checked').focus();
    else {
      heading.tabIndex = -1;
      heading.focus();
    }
  }
}

// --- Loading -----------------------------------------------------------------

let loadSeq = 0;
async function load() {
  const pid = state.patientId;
  if (!pid || !state.token) return;
  const seq = ++loadSeq;
  show($('#summary-loading'), state.data === null);
  let res;
  try {
    res = await request(state.token, 'GET', `/Patient/${encodeURIComponent(pid)}/$everything`);
  } catch (err) {
    if (seq !== loadSeq) return;
    show($('#summary-loading'), false);
    if (err instanceof AuthError) return tokenRefused(err.message);
    banner('No connection. Saves are kept on this device and sent when the connection is back.', 'warn');
    return;
  }
  if (seq !== loadSeq || pid !== state.patientId) return;
  show($('#summary-loading'), false);
  if (res.status !== 200) {
    banner(res.status === 403 ? 'Your sign-in does not allow seeing this patient.'
      : `Could not load this patient (${res.status}): ${issueText(res.body)}`, 'error');
    return;
  }
  if ($('#banner').classList.contains('notice-warn') || $('#banner').classList.contains('notice-error')) banner('');
  const prevServer = serverOrder();
  const wasDirty = state.data && !sameOrder(state.order, prevServer);
  state.data = parseEverything(res.body);
  const items = new Set(allItems().map(refOf));
  if (wasDirty) {
    // Keep the nurse's unsaved order; drop what is gone, add what is new.
    state.order = state.order.filter((r) => items.has(r));
    for (const r of defaultOrder()) if (!state.order.includes(r)) state.order.push(r);
  } else {
    state.order = defaultOrder();
  }
  render();
}

const refOf = (r) => `${r.resourceType}/${r.id}`;

const isIdentity = (r) => r.resourceType === 'Observation' && Boolean(preferenceKindOf(r).identity);

// What can be ranked: everything but the identity preferences, which say who
// the patient is and are pinned in "About" instead.
function allItems() {
  const d = state.data;
  return d ? [...d.whatMatters, ...d.goals, ...d.preferences.filter((r) => !isIdentity(r))] : [];
}

function identityItems() {
  const d = state.data;
  if (!d) return [];
  const rank = (r) => PREFERENCE_KINDS.findIndex((k) => k.id === preferenceKindOf(r).id);
  return d.preferences.filter(isIdentity).sort((a, b) => rank(a) - rank(b) || whenOf(a).localeCompare(whenOf(b)));
}

function itemByRef(ref) {
  return [...allItems(), ...identityItems()].find((r) => refOf(r) === ref);
}

function whenOf(r) {
  return r.effectiveDateTime || r.meta?.lastUpdated || '';
}

// The List's order, as far as the items still exist.
function serverOrder() {
  const d = state.data;
  if (!d?.list) return [];
  const items = new Set(allItems().map(refOf));
  return (d.list.entry || []).map((e) => e.item?.reference).filter((r) => items.has(r));
}

// The List's order, then what is not ranked yet, oldest first.
function defaultOrder() {
  const ranked = serverOrder();
  const rest = allItems().filter((r) => !ranked.includes(refOf(r)))
    .sort((a, b) => whenOf(a).localeCompare(whenOf(b))).map(refOf);
  return [...ranked, ...rest];
}

function sameOrder(a, b) {
  return a.length === b.length && a.every((x, i) => x === b[i]);
}

// --- Rendering ---------------------------------------------------------------

function render() {
  renderSummary();
  renderOutbox();
  renderSync();
}

function speakerText(r) {
  const sp = speakerOf(r);
  if (sp.kind === 'patient') return 'Said by the patient';
  if (sp.kind === 'family') return `Said by ${sp.name}${sp.relationship ? ` (${sp.relationship.toLowerCase()})` : ''}`;
  if (sp.kind === 'practitioner') return `Said by ${sp.name} (clinician)`;
  return 'Said by: not stated';
}

function kindText(r) {
  if (r.resourceType === 'Goal') {
    const due = r.target?.[0]?.dueDate;
    const status = r.lifecycleStatus && r.lifecycleStatus !== 'active' ? ` · ${r.lifecycleStatus}` : '';
    return `Goal${due ? ` · by ${fmtDate(due)}` : ''}${status}`;
  }
  const sp = state.data.whatMatters.includes(r);
  if (sp) return 'What matters';
  return `Preference · ${preferenceKindOf(r).label}`;
}

function short(text, n = 40) {
  return text.length > n ? `${text.slice(0, n - 1)}…` : text;
}

// The coded part of a structured preference, as read back from the server.
function codedText(r) {
  if (r.resourceType !== 'Observation' || !STRUCTURED_KINDS.has(preferenceKindOf(r).id)) return '';
  const d = detailOf(r);
  return d ? `Coded: ${detailSummary(preferenceKindOf(r).id, d)}` : '';
}

// What a card says about one record: kind, the words, the coded part, who
// said it and who recorded which version.
function itemBody(r, badge) {
  const ref = refOf(r);
  const prompt = r.resourceType === 'Observation' ? promptOf(r) : '';
  const recorder = state.data.recorder.get(`${ref}/_history/${r.meta?.versionId}`);
  const metaParts = [speakerText(r), fmtDateTime(whenOf(r))];
  if (recorder) metaParts.push(`recorded by ${recorder}`);
  metaParts.push(`version ${r.meta?.versionId}`);
  const coded = codedText(r);
  return h('div', { class: 'item-body' },
    h('p', { class: 'item-kind' }, kindText(r), badge ? h('span', { class: 'badge' }, badge) : null),
    prompt ? h('p', { class: 'item-prompt' }, `Asked: “${prompt}”`) : null,
    h('blockquote', { class: 'item-text', lang: '' }, textOf(r)),
    coded ? h('p', { class: 'item-coded' }, coded) : null,
    h('p', { class: 'meta' }, metaParts.join(' · ')),
    r.resourceType === 'Goal' ? goalProgress(r) : null);
}

function itemActions(r) {
  const text = short(textOf(r));
  return [h('button', { type: 'button', class: 'btn btn-secondary', dataset: { action: 'edit' },
    'aria-label': `Edit: ${text}`, onclick: () => openEdit(r) }, 'Edit'),
  h('button', { type: 'button', class: 'btn btn-quiet', dataset: { action: 'history' },
    'aria-label': `History: ${text}`, onclick: () => openHistory(refOf(r), textOf(r)) }, 'History'),
  h('button', { type: 'button', class: 'btn btn-quiet', dataset: { action: 'retract' },
    'aria-label': `Entered in error: ${text}`, onclick: () => openRetract(r) }, 'Entered in error')];
}

// "About <name>": who the patient is (name to use, pronouns, language, fears),
// pinned above the priorities and never ranked.
function renderAbout() {
  const items = identityItems();
  const nameToUse = items.find((r) => preferenceKindOf(r).id === 'name-to-use');
  $('#about-title').textContent = `About ${nameToUse ? textOf(nameToUse) : 'the patient'}`;
  $('#about-list').replaceChildren(...items.map((r) => h('li', { class: 'item item-about', dataset: { ref: refOf(r) } },
    itemBody(r), h('div', { class: 'item-actions' }, itemActions(r)))));
  show($('#about'), items.length > 0);
}

function renderSummary() {
  const list = $('#priority-list');
  const d = state.data;
  if (!d) {
    list.replaceChildren();
    show($('#about'), false);
    show($('#summary-empty'), false);
    show($('#order-actions'), false);
    $('#list-version').textContent = '';
    return;
  }
  renderAbout();
  const ranked = new Set(serverOrder());
  const n = state.order.length;
  // One item has nothing to be ranked against: no handle, no arrows, no order to save.
  const rankable = n > 1;
  list.replaceChildren(...state.order.map((ref, i) => {
    const r = itemByRef(ref);
    if (!r) return null;
    const text = textOf(r);
    return h('li', { class: 'item', dataset: { ref, kind: r.resourceType === 'Goal' ? 'goal' : 'observation' } },
      rankable ? h('span', { class: 'handle', 'aria-hidden': 'true', title: 'Drag to reorder' }, '⋮⋮')
        : h('span', { class: 'handle-space' }),
      h('span', { class: 'rank', 'aria-hidden': 'true' }, String(i + 1)),
      itemBody(r, ranked.has(ref) || !rankable ? '' : 'new, not ranked yet'),
      h('div', { class: 'item-actions' },
        rankable ? h('button', { type: 'button', class: 'btn btn-icon', 'aria-label': `Move up: ${short(text)}`,
          disabled: i === 0, dataset: { move: 'up' }, onclick: () => move(i, -1, 'up') }, '▲') : null,
        rankable ? h('button', { type: 'button', class: 'btn btn-icon', 'aria-label': `Move down: ${short(text)}`,
          disabled: i === n - 1, dataset: { move: 'down' }, onclick: () => move(i, 1, 'down') }, '▼') : null,
        itemActions(r)));
  }));
  show($('#summary-empty'), n === 0 && identityItems().length === 0);
  const dirty = !sameOrder(state.order, serverOrder()) || (rankable && !d.list);
  show($('#order-actions'), rankable && dirty);
  show($('#order-hint'), rankable);
  $('#list-version').textContent = d.list
    ? `Priority list saved as version ${d.list.meta?.versionId}, ${fmtDateTime(d.list.meta?.lastUpdated)}.`
    : rankable ? 'No priority order saved yet.' : '';
}

function goalProgress(goal) {
  const scores = state.data.scores.filter((o) => (o.focus || []).some((f) => f.reference === `Goal/${goal.id}`))
    .map((o) => ({ time: o.effectiveDateTime || o.meta?.lastUpdated, score: scoreOf(o) }));
  const wrap = h('div', { class: 'progress' },
    h('p', { class: 'progress-title' }, 'Progress'),
    scoreChart(scores, `Progress on “${short(textOf(goal))}”`),
    scoreList(goal));
  const open = state.scoreOpen.has(goal.id);
  const btn = h('button', { type: 'button', class: 'btn btn-secondary', 'aria-expanded': String(open),
    onclick: () => {
      if (state.scoreOpen.has(goal.id)) state.scoreOpen.delete(goal.id);
      else state.scoreOpen.add(goal.id);
      renderSummary();
      const li = $(`li[data-ref="Goal/${goal.id}"]`);
      (li.querySelector('.score-form input') || li.querySelector('[aria-expanded]')).focus();
    } }, scores.length ? 'Record follow-up score' : 'Record starting score');
  wrap.append(btn);
  if (open) wrap.append(scoreForm(goal));
  return wrap;
}

// A score in words: "+1 Better than expected · follow-up · scored by Maria Garcia (daughter)".
function scoreText(o) {
  const n = scoreOf(o);
  const answer = GAS.find((g) => g.score === n);
  const baseline = (o.code?.coding || []).some((c) => c.code === BASELINE_CODE || c.code === '107332-9');
  const by = speakerText(o).replace(/^Said by/, 'scored by');
  return [`${n > 0 ? '+' : ''}${n} ${answer ? answer.label : ''}`.trim(), baseline ? 'starting score' : 'follow-up', by]
    .join(' · ');
}

// Each score of a goal, folded away, with its history and "entered in error"
// (a wrong score is fixed where it was made, like any other record).
function scoreList(goal) {
  const mine = state.data.scores.filter((o) => (o.focus || []).some((f) => f.reference === `Goal/${goal.id}`))
    .sort((a, b) => whenOf(b).localeCompare(whenOf(a)));
  if (!mine.length) return null;
  return h('details', { class: 'score-list', dataset: { goal: goal.id } },
    h('summary', null, `Each score (${mine.length})`),
    h('ul', null, mine.map((o) => h('li', { class: 'score-item', dataset: { ref: refOf(o) } },
      h('p', null, scoreText(o)),
      h('p', { class: 'meta' }, `${fmtDateTime(whenOf(o))} · version ${o.meta?.versionId}`),
      h('div', { class: 'score-actions' },
        h('button', { type: 'button', class: 'btn btn-quiet', 'aria-label': `History: score ${scoreText(o)}`,
          onclick: () => openHistory(refOf(o), `score ${scoreText(o)}`) }, 'History'),
        h('button', { type: 'button', class: 'btn btn-quiet', 'aria-label': `Entered in error: score ${scoreText(o)}`,
          onclick: () => openRetract(o) }, 'Entered in error'))))));
}

// A radio group as a fieldset: [{ value, label }], nothing chosen.
function radioGroup(legend, name, options) {
  return h('fieldset', { class: 'score-question' }, h('legend', null, legend),
    h('div', { class: 'choice-row' }, options.map((o) => h('label', { class: 'choice' },
      h('input', { type: 'radio', name, value: o.value }), o.label))));
}

// Scoring a goal asks three separate questions and preselects nothing (0 is
// "as expected", i.e. the goal is met, so a default would be an answer):
// when (baseline or follow-up), who scored it, and the score. The code
// follows when and who; the performer is who actually scored it.
function scoreForm(goal) {
  const id = goal.id;
  const name = (q) => `${q}-${id}`;
  const caregiver = h('div', { class: 'grid-2', hidden: true },
    h('div', null, h('label', { for: `cg-name-${id}` }, 'Caregiver’s name'),
      h('input', { id: `cg-name-${id}`, type: 'text', autocomplete: 'off' })),
    h('div', null, h('label', { for: `cg-rel-${id}` }, 'How the caregiver is related'),
      h('input', { id: `cg-rel-${id}`, type: 'text', autocomplete: 'off', list: 'relationships' })));
  const error = h('p', { class: 'notice notice-error', role: 'alert', hidden: true });
  const form = h('form', { class: 'score-form', novalidate: true },
    radioGroup('When is this score?', name('when'), [{ value: 'baseline', label: 'Starting score (baseline)' },
      { value: 'follow-up', label: 'Follow-up' }]),
    radioGroup('Who scored it?', name('who'), [{ value: 'patient', label: 'The patient' },
      { value: 'nurse', label: 'Me (the nurse)' }, { value: 'caregiver', label: 'A caregiver' }]),
    caregiver,
    h('fieldset', null,
      h('legend', null, 'How is it going, compared with what was expected?'),
      h('div', { class: 'score-options' }, GAS.map((g) => h('label', { class: 'choice' },
        h('input', { type: 'radio', name: name('score'), value: String(g.score) }),
        h('span', { class: 'score-num' }, g.score > 0 ? `+${g.score}` : String(g.score)), ` ${g.label}`)))),
    error,
    h('div', { class: 'form-actions' },
      h('button', { type: 'submit', class: 'btn btn-primary' }, 'Save score')));
  const chosen = (q) => form.querySelector(`input[name="${name(q)}"]:checked`)?.value;
  form.addEventListener('change', () => show(caregiver, chosen('who') === 'caregiver'));
  form.addEventListener('submit', (ev) => {
    ev.preventDefault();
    const got = readScoreForm(form, chosen, id);
    if (got.error) {
      error.textContent = got.error;
      show(error, true);
      (got.focus || form.querySelector(`input[name="${name(got.question)}"]`))?.focus();
      return;
    }
    const body = scoreResource(state.patientId, id, got.score, scoreTypeCode(got.when, got.scorer.kind),
      new Date().toISOString(), got.scorer);
    state.scoreOpen.delete(id);
    queue({ kind: 'create', type: 'Observation', method: 'POST', path: '/Observation', body,
      label: `Score ${got.score > 0 ? '+' : ''}${got.score} for “${short(textOf(goal), 30)}”` });
    renderSummary();
    $(`li[data-ref="Goal/${id}"] [aria-expanded]`)?.focus();
  });
  return form;
}

// The score form's answers: { when, scorer, score } or { error, question | focus }.
function readScoreForm(form, chosen, id) {
  const when = chosen('when');
  if (!when) return { error: 'Is this the starting score or a follow-up?', question: 'when' };
  const who = chosen('who');
  if (!who) return { error: 'Who scored it?', question: 'who' };
  let scorer = { kind: who };
  if (who === 'nurse') {
    const reference = practitionerOf(state.token);
    if (!reference) return { error: 'Your sign-in does not name you as a practitioner, so the score cannot be saved as yours.', question: 'who' };
    scorer = { kind: 'nurse', reference };
  } else if (who === 'caregiver') {
    const nameEl = form.querySelector(`#cg-name-${id}`);
    const relEl = form.querySelector(`#cg-rel-${id}`);
    scorer = { kind: 'caregiver', name: nameEl.value.trim(), relationship: relEl.value.trim() };
    if (!scorer.name) return { error: 'Please write the caregiver’s name.', focus: nameEl };
    if (!scorer.relationship) return { error: 'Please write how the caregiver is related to the patient.', focus: relEl };
  }
  const score = chosen('score');
  if (score === undefined) return { error: 'Choose the score.', question: 'score' };
  return { when, scorer, score: Number(score) };
}

const STATE_TEXT = {
  pending: 'Waiting to send',
  sending: 'Sending…',
  conflict: 'Needs attention',
  attention: 'Needs attention',
  saved: 'Saved',
};

function renderOutbox() {
  const pid = state.patientId;
  const entries = outbox.forPatient(pid);
  const saved = outbox.recent.filter((s) => s.patientId === pid).slice(0, 5);
  const ul = $('#outbox-list');
  ul.replaceChildren(
    ...entries.map((e) => h('li', { class: 'outbox-item', dataset: { state: e.state, requestId: e.id } },
      h('span', { class: `state state-${e.state}` }, STATE_TEXT[e.state]),
      h('span', { class: 'outbox-label' }, e.label),
      e.error && e.state !== 'sending' ? h('span', { class: 'meta' }, e.state === 'pending'
        ? `${e.error}. Kept on this device; trying again automatically.` : e.error) : null,
      e.state === 'conflict' ? h('button', { type: 'button', class: 'btn btn-primary', onclick: () => openConflict(e) },
        'Compare and choose') : null,
      e.state === 'attention' ? h('button', { type: 'button', class: 'btn btn-secondary',
        onclick: () => { outbox.remove(e.id); load(); } }, 'Discard') : null)),
    // What was saved, in words, and when (local time): no database ids.
    ...saved.map((s) => h('li', { class: 'outbox-item', dataset: { state: 'saved', requestId: s.id } },
      h('span', { class: 'state state-saved' }, `${STATE_TEXT.saved} ${fmtTime(s.savedAt)}`),
      h('span', { class: 'outbox-label' }, s.label),
      // A retracted record is gone from the views; its history stays reachable here.
      s.kind === 'retract' ? h('button', { type: 'button', class: 'btn btn-quiet', 'aria-label': `History: ${s.label}`,
        onclick: () => openHistory(s.ref, s.label) }, 'History') : null)));
  show($('#outbox-panel'), entries.length + saved.length > 0);
  show($('#retry-now'), entries.some((e) => e.state === 'pending'));
}

function renderSync() {
  const pill = $('#sync-status');
  if (!state.token) {
    show(pill, false);
    return;
  }
  const pending = outbox.entries.filter((e) => e.state === 'pending' || e.state === 'sending').length;
  const attention = outbox.entries.length - pending;
  let text = '';
  let cls = 'ok';
  if (attention) {
    text = `${attention} need${attention === 1 ? 's' : ''} attention`;
    cls = 'bad';
  } else if (pending) {
    text = `${pending} waiting to send`;
    cls = 'wait';
  } else if (outbox.recent.length) {
    text = 'All saved';
  }
  pill.textContent = text;
  pill.className = `sync-pill sync-${cls}`;
  show(pill, Boolean(text));
}

// --- Priorities ----------------------------------------------------------------

function move(i, delta, which) {
  const j = i + delta;
  if (j < 0 || j >= state.order.length) return;
  const [ref] = state.order.splice(i, 1);
  state.order.splice(j, 0, ref);
  renderSummary();
  announceMove(ref, j);
  const li = $(`#priority-list li[data-ref="${ref}"]`);
  const btn = li.querySelector(`[data-move="${which}"]`);
  (btn.disabled ? li.querySelector(`[data-move="${which === 'up' ? 'down' : 'up'}"]`) : btn).focus();
}

function announceMove(ref, j) {
  $('#order-live').textContent = `Moved “${short(textOf(itemByRef(ref)))}” to position ${j + 1} of ${state.order.length}.`;
}

// Drag by the handle (pointer events: mouse, pen and touch alike).
function setupDrag() {
  const list = $('#priority-list');
  let dragging = null;
  list.addEventListener('pointerdown', (ev) => {
    const handle = ev.target.closest('.handle');
    if (!handle) return;
    ev.preventDefault();
    dragging = handle.closest('li');
    dragging.classList.add('dragging');
    handle.setPointerCapture(ev.pointerId);
  });
  list.addEventListener('pointermove', (ev) => {
    if (!dragging) return;
    const over = document.elementFromPoint(ev.clientX, ev.clientY)?.closest('#priority-list > li');
    if (!over || over === dragging) return;
    const items = [...list.children];
    if (items.indexOf(over) < items.indexOf(dragging)) list.insertBefore(dragging, over);
    else list.insertBefore(dragging, over.nextSibling);
  });
  const end = () => {
    if (!dragging) return;
    const ref = dragging.dataset.ref;
    dragging.classList.remove('dragging');
    dragging = null;
    state.order = [...list.children].map((li) => li.dataset.ref);
    renderSummary();
    announceMove(ref, state.order.indexOf(ref));
  };
  list.addEventListener('pointerup', end);
  list.addEventListener('pointercancel', end);
}

function saveOrder() {
  const d = state.data;
  const pid = state.patientId;
  const body = listResource(pid, state.order, d.list);
  // First time: POST, which the server refuses (409) if someone else made the
  // List meanwhile; after that PUT against the version we saw.
  queue(d.list
    ? { kind: 'order', type: 'List', method: 'PUT', path: `/List/${encodeURIComponent(pid)}`, body,
      ifMatch: `W/"${d.list.meta.versionId}"`, label: 'Priority order' }
    : { kind: 'order', type: 'List', method: 'POST', path: '/List', body, label: 'Priority order' });
}

// --- Recording -------------------------------------------------------------------

function queue(entry) {
  outbox.add({ patientId: state.patientId, ...entry });
}

function setupPrompts() {
  const wrap = $('#prompt-chips');
  const options = [...PROMPTS, ''];
  wrap.replaceChildren(...options.map((p, i) => h('label', { class: 'chip chip-radio' },
    h('input', { type: 'radio', name: 'prompt', value: p, checked: i === 0 }),
    h('span', null, p || 'Another question / none'))));
}

let prefSeq = 0;
// One preference in the record form. Structured kinds get their editor
// (prefs.js); the others get chips that add their words to the text.
function preferenceRow() {
  const n = ++prefSeq;
  const kindId = `pref-kind-${n}`;
  const textId = `pref-text-${n}`;
  const chips = h('div', { class: 'chips', role: 'group', 'aria-label': 'Common choices' });
  const text = h('input', { id: textId, type: 'text', class: 'pref-text', autocomplete: 'off' });
  const words = h('div', { class: 'pref-words' },
    chips, h('label', { for: textId }, 'The preference, in their words (tap choices or type)'), text);
  const structured = h('div', { class: 'pref-structured' });
  const select = h('select', { id: kindId, class: 'pref-kind' },
    PREFERENCE_KINDS.map((k) => h('option', { value: k.id }, k.label)));
  const syncChips = () => {
    const have = text.value.split(',').map((x) => x.trim().toLowerCase());
    for (const b of chips.children) b.setAttribute('aria-pressed', String(have.includes(b.dataset.value.toLowerCase())));
  };
  const fillChips = () => {
    const k = PREFERENCE_KINDS.find((x) => x.id === select.value);
    chips.replaceChildren(...k.chips.map((c) => h('button', { type: 'button', class: 'chip', 'aria-pressed': 'false',
      dataset: { value: c }, onclick: (ev) => {
        const parts = text.value.split(',').map((x) => x.trim()).filter(Boolean);
        const at = parts.findIndex((x) => x.toLowerCase() === c.toLowerCase());
        if (at >= 0) parts.splice(at, 1);
        else parts.push(c);
        text.value = parts.join(', ');
        syncChips();
        ev.currentTarget.focus();
      } }, c)));
    show(chips, k.chips.length > 0);
    syncChips();
  };
  const fillKind = () => {
    const isStructured = STRUCTURED_KINDS.has(select.value);
    row.editor = isStructured ? structuredEditor(select.value) : null;
    structured.replaceChildren(...(isStructured ? [row.editor.el] : []));
    show(structured, isStructured);
    show(words, !isStructured);
    if (!isStructured) fillChips();
  };
  select.addEventListener('change', fillKind);
  text.addEventListener('input', syncChips);
  const row = h('div', { class: 'pref-row' },
    h('div', { class: 'pref-head' },
      h('div', null, h('label', { for: kindId }, 'Kind of preference'), select),
      h('button', { type: 'button', class: 'btn btn-quiet', onclick: () => {
        row.remove();
        if (!$('#pref-rows').children.length) $('#pref-rows').append(preferenceRow());
        $('#add-pref').focus();
      } }, 'Remove')),
    words, structured);
  fillKind();
  return row;
}

// A preference row as a record to queue: { entry }, { error, focus } or {} (empty row).
function preferenceEntry(row, pid, speaker, now) {
  const kind = row.querySelector('.pref-kind').value;
  const k = PREFERENCE_KINDS.find((x) => x.id === kind);
  if (row.editor) {
    if (row.editor.isEmpty()) return {};
    const r = row.editor.read();
    if (r.error) return { error: `${k.label}: ${r.error}`, focus: r.focus };
    return { entry: { kind: 'create', type: 'Observation', method: 'POST', path: '/Observation',
      body: preferenceResource(pid, speaker, kind, r.note, now, r.detail), label: `${k.label}: “${short(r.text)}”` } };
  }
  const text = row.querySelector('.pref-text').value.trim();
  if (!text) return {};
  return { entry: { kind: 'create', type: 'Observation', method: 'POST', path: '/Observation',
    body: preferenceResource(pid, speaker, kind, text, now), label: `${k.label}: “${short(text)}”` } };
}

function resetPreferences() {
  $('#pref-rows').replaceChildren(preferenceRow());
}

// Empties the record form. The speaker stays between saves for the same
// patient (a daughter usually says several things); it is cleared on Clear
// and when another patient is opened.
function clearRecordForm({ keepSpeaker = false } = {}) {
  const f = $('#record-form');
  const speaker = [f.speaker.value, f.familyName.value, f.familyRelationship.value];
  f.reset();
  if (keepSpeaker) [f.speaker.value, f.familyName.value, f.familyRelationship.value] = speaker;
  show($('#family-fields'), f.speaker.value === 'family');
  resetPreferences();
  show($('#record-error'), false);
}

function localToday() {
  const d = new Date();
  return `${d.getFullYear()}-${String(d.getMonth() + 1).padStart(2, '0')}-${String(d.getDate()).padStart(2, '0')}`;
}

function submitRecord(ev) {
  ev.preventDefault();
  if (state.identity !== 'confirmed') return;  // hidden until confirmed; never saved for an unconfirmed patient
  const f = $('#record-form');
  const err = $('#record-error');
  const fail = (msg, el) => {
    err.textContent = msg;
    show(err, true);
    el?.focus();
  };
  const family = f.speaker.value === 'family';
  const speaker = family
    ? { kind: 'family', name: f.familyName.value.trim(), relationship: f.familyRelationship.value.trim() }
    : { kind: 'patient' };
  if (family && !speaker.name) return fail('Please write the family member’s name.', f.familyName);
  if (family && !speaker.relationship) return fail('Please write how they are related to the patient.', f.familyRelationship);
  const pid = state.patientId;
  const now = new Date().toISOString();
  const out = [];
  const answer = f.answer.value.trim();
  if (answer) {
    out.push({ kind: 'create', type: 'Observation', method: 'POST', path: '/Observation',
      body: whatMattersResource(pid, speaker, answer, f.prompt.value, now), label: `What matters: “${short(answer)}”` });
  }
  const goal = f.goal.value.trim();
  if (goal) {
    out.push({ kind: 'create', type: 'Goal', method: 'POST', path: '/Goal',
      body: goalResource(pid, speaker, goal, f.goalDate.value, localToday()), label: `Goal: “${short(goal)}”` });
  } else if (f.goalDate.value) {
    return fail('A target date needs a goal. Please write the goal.', f.goal);
  }
  for (const row of $('#pref-rows').children) {
    const p = preferenceEntry(row, pid, speaker, now);
    if (p.error) return fail(p.error, p.focus);
    if (p.entry) out.push(p.entry);
  }
  if (!out.length) return fail('Nothing to save yet: write an answer, a goal or a preference.', f.answer);
  show(err, false);
  for (const e of out) queue(e);
  clearRecordForm({ keepSpeaker: true });
  setView('summary');
  banner(`${out.length} record${out.length === 1 ? '' : 's'} saved to this device and being sent.`, 'info');
}

// --- Editing and conflicts -------------------------------------------------------

function structuredKindOf(r) {
  const kind = r.resourceType === 'Observation' && state.data.preferences.includes(r) ? preferenceKindOf(r).id : '';
  return STRUCTURED_KINDS.has(kind) && detailOf(r) ? kind : '';
}

function openEdit(r) {
  state.editing = r;
  const isGoal = r.resourceType === 'Goal';
  const kind = structuredKindOf(r);
  $('#edit-title').textContent = `Edit: ${kindText(r)}`;
  $('#edit-meta').textContent = `${speakerText(r)} · version ${r.meta?.versionId}`;
  $('#edit-text').value = textOf(r);
  show($('#edit-goal-fields'), isGoal);
  show($('#edit-error'), false);
  // A structured preference is edited with the same editor as when recorded:
  // the code changes with the words.
  state.editor = kind ? structuredEditor(kind, { detail: detailOf(r), note: noteOf(kind, detailOf(r), textOf(r)) }) : null;
  $('#edit-structured').replaceChildren(...(kind ? [state.editor.el] : []));
  show($('#edit-structured'), Boolean(kind));
  show($('#edit-words'), !kind);
  if (isGoal) {
    $('#edit-date').value = /^\d{4}-\d{2}-\d{2}$/.test(r.target?.[0]?.dueDate || '') ? r.target[0].dueDate : '';
    $('#edit-status').value = ['active', 'on-hold', 'completed', 'cancelled'].includes(r.lifecycleStatus)
      ? r.lifecycleStatus : 'active';
  }
  $('#edit-dialog').showModal();
  (kind ? $('#edit-structured input') : $('#edit-text')).focus();
}

// Applies an edit ({ text, date, status } or, for a structured preference,
// { text, kind, detail }) to a resource as read.
function applyEdit(resource, edit) {
  const r = forUpdate(resource);
  if (r.resourceType === 'Goal') {
    r.description = { ...(r.description || {}), text: edit.text };
    if (edit.date) r.target = [{ ...(r.target?.[0] || {}), dueDate: edit.date }, ...(r.target || []).slice(1)];
    else if (r.target) r.target = r.target.map((t) => { const c = { ...t }; delete c.dueDate; return c; })
      .filter((t) => Object.keys(t).length);
    if (r.target && !r.target.length) delete r.target;
    r.lifecycleStatus = edit.status;
    return r;
  }
  if (r.valueCodeableConcept && typeof r.valueString !== 'string') {
    r.valueCodeableConcept = { ...r.valueCodeableConcept, text: edit.text };
  } else {
    r.valueString = edit.text;
  }
  if (edit.detail) r.component = detailComponents(edit.kind, edit.detail);
  return r;
}

function editFromDialog(r) {
  if (state.editor) {
    const got = state.editor.read();
    if (got.error) return { error: got.error, focus: got.focus };
    return { edit: { text: got.text, kind: structuredKindOf(r), detail: got.detail } };
  }
  const text = $('#edit-text').value.trim();
  if (!text) return { error: 'Please write it in their words.', focus: $('#edit-text') };
  const edit = { text };
  if (r.resourceType === 'Goal') {
    edit.date = $('#edit-date').value;
    edit.status = $('#edit-status').value;
  }
  return { edit };
}

function submitEdit(ev) {
  ev.preventDefault();
  const r = state.editing;
  const { edit, error, focus } = editFromDialog(r);
  if (error) {
    $('#edit-error').textContent = error;
    show($('#edit-error'), true);
    focus?.focus();
    return;
  }
  $('#edit-dialog').close();
  queue({ kind: 'update', type: r.resourceType, method: 'PUT', path: `/${r.resourceType}/${r.id}`,
    body: applyEdit(r, edit), ifMatch: `W/"${r.meta.versionId}"`, edit, resourceId: r.id,
    label: `Edit: “${short(edit.text)}”` });
  state.editing = null;
  state.editor = null;
  $(`li[data-ref="${refOf(r)}"] [data-action=edit]`)?.focus();
}

// --- Entered in error and history ------------------------------------------------

const isScore = (r) => state.data.scores.includes(r);

function openRetract(r) {
  state.retracting = r;
  $('#retract-text').textContent = isScore(r) ? `Score ${scoreText(r)}` : textOf(r);
  $('#retract-meta').textContent = isScore(r) ? `version ${r.meta?.versionId}`
    : `${kindText(r)} · ${speakerText(r)} · version ${r.meta?.versionId}`;
  $('#retract-reason').value = '';
  show($('#retract-error'), false);
  $('#retract-dialog').showModal();
  $('#retract-reason').focus();
}

// DELETE with If-Match of the version the nurse saw, and the reason (and her
// as author) in X-Provenance: the server keeps both in the deletion's Provenance.
function submitRetract(ev) {
  ev.preventDefault();
  const r = state.retracting;
  const reason = $('#retract-reason').value.trim();
  const fail = (msg) => {
    $('#retract-error').textContent = msg;
    show($('#retract-error'), true);
    $('#retract-reason').focus();
  };
  if (!reason) return fail('Please say why it is wrong: the reason is kept in its history.');
  const practitioner = practitionerOf(state.token);
  $('#retract-dialog').close();
  state.retracting = null;
  queue({ kind: 'retract', type: r.resourceType, method: 'DELETE', path: `/${r.resourceType}/${r.id}`,
    ifMatch: `W/"${r.meta.versionId}"`, headers: { 'X-Provenance': retractionProvenance(practitioner, reason) },
    ref: refOf(r), label: `Entered in error: “${short(isScore(r) ? `score ${scoreText(r)}` : textOf(r))}”` });
  $('#summary-title').focus();
}

const ACTION_TEXT = { recorded: 'Recorded', changed: 'Changed', retracted: 'Marked entered in error' };

// Every version of one record with who and when, and a retraction with its reason.
async function openHistory(ref, text) {
  $('#history-title').textContent = `History: ${short(text, 60)}`;
  $('#history-list').replaceChildren();
  $('#history-status').textContent = 'Loading…';
  if (!$('#history-dialog').open) $('#history-dialog').showModal();
  $('#history-close').focus();
  let hist;
  let prov;
  try {
    [hist, prov] = await Promise.all([request(state.token, 'GET', `/${ref}/_history`),
      request(state.token, 'GET', `/Provenance?target=${encodeURIComponent(ref)}&_count=100`)]);
  } catch (err) {
    if (err instanceof AuthError) return tokenRefused(err.message);
    $('#history-status').textContent = 'No connection: the history cannot be loaded now.';
    return;
  }
  if (hist.status !== 200) {
    $('#history-status').textContent = `Could not load the history (${hist.status}): ${issueText(hist.body)}`;
    return;
  }
  const versions = parseHistory(hist.body, prov.status === 200 ? prov.body : null);
  $('#history-status').textContent = `${versions.length} version${versions.length === 1 ? '' : 's'}, newest first.`;
  $('#history-list').replaceChildren(...versions.map((v) => h('li', { class: 'history-item', dataset: { action: v.action } },
    h('p', { class: 'item-kind' }, `Version ${v.version} · ${ACTION_TEXT[v.action]}`),
    v.text ? h('blockquote', { class: 'item-text' }, v.text) : null,
    v.reason ? h('p', { class: 'history-reason' }, `Reason: “${v.reason}”`) : null,
    h('p', { class: 'meta' }, [fmtDateTime(v.when), v.who ? `by ${v.who}` : ''].filter(Boolean).join(' · ')))));
}

function describeOrder(refs, texts) {
  return h('ol', { class: 'compare-order' }, refs.map((ref) => h('li', null, texts.get(ref) || ref)));
}

function describeResource(r) {
  const parts = [h('blockquote', { class: 'item-text' }, textOf(r))];
  if (r.resourceType === 'Goal') {
    parts.push(h('p', { class: 'meta' }, `Target: ${fmtDate(r.target?.[0]?.dueDate) || 'none'} · Status: ${r.lifecycleStatus}`));
  }
  return parts;
}

async function openConflict(entry) {
  if ($('#conflict-dialog').open) return;
  const path = entry.kind === 'order' ? `/List/${encodeURIComponent(entry.patientId)}` : entry.path;
  let res;
  try {
    res = await request(state.token, 'GET', path);
  } catch (err) {
    if (err instanceof AuthError) return tokenRefused(err.message);
    banner('No connection: cannot fetch the other version yet. Try again when connected.', 'warn');
    return;
  }
  if (res.status === 404 || res.status === 410) {
    entry.error = 'It was deleted by someone else, so your change cannot be saved';
    banner('That record was deleted by someone else. Your change is kept in the list below until you discard it.', 'warn');
    return;
  }
  if (res.status !== 200) {
    banner(`Could not fetch the other version (${res.status}).`, 'error');
    return;
  }
  state.conflict = { entry, theirs: res.body, version: res.version };
  const mine = JSON.parse(entry.body);
  const texts = new Map(allItems().map((r) => [refOf(r), textOf(r)]));
  if (entry.kind === 'order') {
    const theirsRefs = (res.body.entry || []).map((e) => e.item?.reference);
    $('#conflict-mine').replaceChildren(describeOrder(mine.entry.map((e) => e.item.reference), texts));
    $('#conflict-theirs').replaceChildren(describeOrder(theirsRefs, texts));
  } else {
    $('#conflict-mine').replaceChildren(...describeResource(mine));
    $('#conflict-theirs').replaceChildren(...describeResource(res.body));
  }
  $('#conflict-theirs-meta').textContent = `Version ${res.version}, saved ${fmtDateTime(res.body.meta?.lastUpdated)}`;
  $('#conflict-dialog').showModal();
  $('#keep-mine').focus();
}

function resolveConflict(keepMine) {
  const c = state.conflict;
  if (!c) return;
  const e = c.entry;
  $('#conflict-dialog').close();
  state.conflict = null;
  outbox.remove(e.id);
  if (keepMine) {
    // A new decision, so a new request (id): mine, over the version now saved.
    const body = e.kind === 'order'
      ? listResource(e.patientId, JSON.parse(e.body).entry.map((x) => x.item.reference), c.theirs)
      : applyEdit(c.theirs, e.edit);
    outbox.add({ patientId: e.patientId, kind: e.kind, type: e.type, method: 'PUT',
      path: e.kind === 'order' ? `/List/${encodeURIComponent(e.patientId)}` : e.path, body,
      ifMatch: `W/"${c.version}"`, edit: e.edit, resourceId: e.resourceId, label: e.label });
    banner('Saving your version.', 'info');
  } else {
    banner('Kept their version; yours was discarded.', 'info');
  }
  if (e.kind === 'order' && state.data) state.order = serverOrder();
  load();
}

// --- Wiring --------------------------------------------------------------------

// Signed in through the authorization server (SMART): the launch context's
// patient opens directly; without one, the last patient or the picker.
function smartSignedIn(session) {
  state.token = session.token;
  outbox.retryNow();
  if (session.patient && PATIENT_ID.test(session.patient)) return openPatient(session.patient);
  const last = sessionStorage.getItem(PATIENT_KEY);
  if (last && PATIENT_ID.test(last)) return openPatient(last);
  return showPatientPicker();
}

function wire() {
  // Standalone launch, on a page of its own (launch.html).
  $('#smart-signin-button').addEventListener('click', () => location.assign('launch.html'));
  smart.onToken((token) => { state.token = token; });
  $('#signin-form').addEventListener('submit', (ev) => {
    ev.preventDefault();
    const token = $('#token').value.trim();
    if (!token) {
      showSignin('Please paste your access token.');
      $('#token').focus();
      return;
    }
    signIn(token);
  });
  $('#patient-form').addEventListener('submit', (ev) => {
    ev.preventDefault();
    const text = $('#patient-query').value.trim();
    if (!text) {
      showPatientPicker('Type a name, a date of birth, an MRN or a patient ID.');
      $('#patient-query').focus();
      return;
    }
    findPatients(text);
  });
  const choosePatient = () => {
    state.patientId = '';
    sessionStorage.removeItem(PATIENT_KEY);
    sessionStorage.removeItem(CONFIRMED_KEY);
    showPatientPicker();
  };
  $('#change-patient').addEventListener('click', choosePatient);
  $('#wrong-patient').addEventListener('click', choosePatient);
  $('#confirm-patient').addEventListener('click', confirmPatient);
  $('#retry-identity').addEventListener('click', () => {
    setIdentity('loading');
    loadIdentity(state.patientId, false);
  });
  $('#sign-out').addEventListener('click', () => {
    const n = outbox.entries.length;
    if (!n) return signOut();
    $('#signout-text').textContent = `${n} save${n === 1 ? ' has' : 's have'} not reached the server yet. `
      + 'Signing out deletes them from this device.';
    $('#signout-dialog').showModal();
    $('#signout-cancel').focus();
  });
  $('#signout-confirm').addEventListener('click', () => {
    $('#signout-dialog').close();
    signOut();
  });
  $('#signout-cancel').addEventListener('click', () => $('#signout-dialog').close());
  $('#tab-summary').addEventListener('click', () => setView('summary'));
  $('#tab-record').addEventListener('click', () => setView('record'));
  $('#refresh').addEventListener('click', () => load());
  $('#retry-now').addEventListener('click', () => outbox.retryNow());
  $('#save-order').addEventListener('click', saveOrder);
  $('#reset-order').addEventListener('click', () => {
    state.order = defaultOrder();
    renderSummary();
    $('#order-live').textContent = 'Order reset to the saved one.';
    $('#summary-title').focus();
  });
  for (const r of document.querySelectorAll('input[name=speaker]')) {
    r.addEventListener('change', () => show($('#family-fields'), $('#record-form').speaker.value === 'family'));
  }
  $('#record-form').addEventListener('submit', submitRecord);
  $('#clear-form').addEventListener('click', () => clearRecordForm());
  $('#add-pref').addEventListener('click', () => {
    const row = preferenceRow();
    $('#pref-rows').append(row);
    row.querySelector('select').focus();
  });
  $('#edit-form').addEventListener('submit', submitEdit);
  $('#retract-form').addEventListener('submit', submitRetract);
  $('#retract-cancel').addEventListener('click', () => $('#retract-dialog').close());
  $('#history-close').addEventListener('click', () => $('#history-dialog').close());
  $('#edit-cancel').addEventListener('click', () => $('#edit-dialog').close());
  $('#keep-mine').addEventListener('click', () => resolveConflict(true));
  $('#keep-theirs').addEventListener('click', () => resolveConflict(false));
  $('#conflict-later').addEventListener('click', () => {
    $('#conflict-dialog').close();
    state.conflict = null;
  });
  setupPrompts();
  resetPreferences();
  setupDrag();

  outbox.addEventListener('change', () => {
    renderOutbox();
    renderSync();
    const c = outbox.forPatient(state.patientId).find((e) => e.state === 'conflict');
    if (c && state.token && !$('#conflict-dialog').open && !$('#screen-record').hidden
      && state.identity === 'confirmed') openConflict(c);
  });
  outbox.addEventListener('saved', (ev) => {
    if (ev.detail.entry.patientId !== state.patientId) return;
    const { saved } = ev.detail;
    banner(`Saved ${fmtTime(saved.savedAt)}: ${saved.label}.`, 'ok');
    load();
  });
  outbox.addEventListener('auth', (ev) => tokenRefused(ev.detail));
  globalThis.addEventListener('offline', () => {
    if (state.patientId) banner('No connection. Saves are kept on this device and sent when the connection is back.', 'warn');
  });
  globalThis.addEventListener('online', () => {
    if (state.patientId) {
      banner('');
      load();
    }
  });
}

// scripts/run.sh prints …/bedside/#token=<token>: take it, then drop it from
// the address bar and history at once. It is checked like a pasted token.
function takeTokenFromHash() {
  const token = new URLSearchParams(location.hash.slice(1)).get('token') || '';
  if (location.hash) history.replaceState(null, '', location.pathname + location.search);
  return token;
}

async function start() {
  wire();
  // The link opened in a tab that already shows the app.
  globalThis.addEventListener('hashchange', () => {
    const token = takeTokenFromHash();
    if (token) signIn(token);
  });
  const fromLink = takeTokenFromHash();
  if (fromLink) return signIn(fromLink);
  state.smart = await smart.discover();
  if (!state.token && smart.pending()) {
    try {
      return smartSignedIn(await smart.finish());
    } catch (err) {
      smart.signOut();
      return showSignin(`Sign-in did not complete: ${err.message}`);
    }
  }
  if (!state.token) return showSignin();
  outbox.process();
  const last = sessionStorage.getItem(PATIENT_KEY);
  if (last && PATIENT_ID.test(last)) openPatient(last);
  else showPatientPicker();
}

start();
