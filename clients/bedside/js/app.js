// The bedside app: sign in → patient → what we know (in the patient's
// priority order) → record → save through the outbox. docs/bedside.md.
import {
  AuthError, GAS, PATIENT_ID, PREFERENCE_KINDS, PROMPTS, SCORE_TYPES, forUpdate, goalResource, issueText,
  listResource, parseEverything, preferenceDetails, preferenceKindOf, preferenceResource, promptOf, request, scoreOf, scoreResource,
  speakerOf, textOf, whatMattersResource,
} from './fhir.js';
import { Outbox } from './outbox.js';
import { $, fmtDate, fmtDateTime, h, show } from './dom.js';
import { scoreChart } from './chart.js';
import * as smart from './smart.js';

const TOKEN_KEY = 'wmty.token';
const PATIENT_KEY = 'wmty.patient';
const RECENT_KEY = 'wmty.recentPatients';

const state = {
  token: sessionStorage.getItem(TOKEN_KEY) || '',
  patientId: '',
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
  for (const k of [TOKEN_KEY, PATIENT_KEY, RECENT_KEY]) sessionStorage.removeItem(k);
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
    h('button', { type: 'button', class: 'btn btn-secondary', onclick: () => openPatient(id) }, `Patient ${id}`))));
  show($('#recent-patients'), recent.length > 0);
  $('#patient-id').value = '';
  showScreen('patient');
}

function openPatient(id) {
  state.patientId = id;
  state.data = null;
  state.order = [];
  state.scoreOpen.clear();
  sessionStorage.setItem(PATIENT_KEY, id);
  const recent = [id, ...recentPatients().filter((x) => x !== id)].slice(0, 5);
  sessionStorage.setItem(RECENT_KEY, JSON.stringify(recent));
  $('#patient-label').textContent = id;
  banner('');
  showScreen('record');
  setView('summary', false);
  render();
  load();
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

function allItems() {
  const d = state.data;
  return d ? [...d.whatMatters, ...d.goals, ...d.preferences] : [];
}

function itemByRef(ref) {
  return allItems().find((r) => refOf(r) === ref);
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
  return 'Speaker not recorded';
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

function renderSummary() {
  const list = $('#priority-list');
  const d = state.data;
  if (!d) {
    list.replaceChildren();
    show($('#summary-empty'), false);
    show($('#order-actions'), false);
    $('#list-version').textContent = '';
    return;
  }
  const ranked = new Set(serverOrder());
  const n = state.order.length;
  list.replaceChildren(...state.order.map((ref, i) => {
    const r = itemByRef(ref);
    if (!r) return null;
    const text = textOf(r);
    const prompt = r.resourceType === 'Observation' ? promptOf(r) : '';
    const recorder = d.recorder.get(`${ref}/_history/${r.meta?.versionId}`);
    const metaParts = [speakerText(r), fmtDateTime(whenOf(r))];
    if (recorder) metaParts.push(`recorded by ${recorder}`);
    metaParts.push(`version ${r.meta?.versionId}`);
    const li = h('li', { class: 'item', dataset: { ref, kind: r.resourceType === 'Goal' ? 'goal' : 'observation' } },
      h('span', { class: 'handle', 'aria-hidden': 'true', title: 'Drag to reorder' }, '⋮⋮'),
      h('span', { class: 'rank', 'aria-hidden': 'true' }, String(i + 1)),
      h('div', { class: 'item-body' },
        h('p', { class: 'item-kind' }, kindText(r), ranked.has(ref) ? null : h('span', { class: 'badge' }, 'new, not ranked yet')),
        prompt ? h('p', { class: 'item-prompt' }, `Asked: “${prompt}”`) : null,
        h('blockquote', { class: 'item-text', lang: '' }, text),
        h('p', { class: 'meta' }, metaParts.join(' · ')),
        r.resourceType === 'Goal' ? goalProgress(r) : null),
      h('div', { class: 'item-actions' },
        h('button', { type: 'button', class: 'btn btn-icon', 'aria-label': `Move up: ${short(text)}`,
          disabled: i === 0, dataset: { move: 'up' }, onclick: () => move(i, -1, 'up') }, '▲'),
        h('button', { type: 'button', class: 'btn btn-icon', 'aria-label': `Move down: ${short(text)}`,
          disabled: i === n - 1, dataset: { move: 'down' }, onclick: () => move(i, 1, 'down') }, '▼'),
        h('button', { type: 'button', class: 'btn btn-secondary', 'aria-label': `Edit: ${short(text)}`,
          onclick: () => openEdit(r) }, 'Edit')));
    return li;
  }));
  show($('#summary-empty'), n === 0);
  const dirty = !sameOrder(state.order, serverOrder()) || (n > 0 && !d.list);
  show($('#order-actions'), dirty);
  show($('#order-hint'), n > 1);
  $('#list-version').textContent = d.list
    ? `Priority list saved as version ${d.list.meta?.versionId}, ${fmtDateTime(d.list.meta?.lastUpdated)}.`
    : n ? 'No priority order saved yet.' : '';
}

function goalProgress(goal) {
  const scores = state.data.scores.filter((o) => (o.focus || []).some((f) => f.reference === `Goal/${goal.id}`))
    .map((o) => ({ time: o.effectiveDateTime || o.meta?.lastUpdated, score: scoreOf(o) }));
  const wrap = h('div', { class: 'progress' },
    h('p', { class: 'progress-title' }, 'Progress'),
    scoreChart(scores, `Progress on “${short(textOf(goal))}”`));
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
  if (open) wrap.append(scoreForm(goal, scores.length));
  return wrap;
}

function scoreForm(goal, count) {
  const name = `score-${goal.id}`;
  const typeId = `score-type-${goal.id}`;
  const form = h('form', { class: 'score-form', novalidate: true },
    h('fieldset', null,
      h('legend', null, 'How is it going, compared with what was expected?'),
      h('div', { class: 'score-options' }, GAS.map((g) => h('label', { class: 'choice' },
        h('input', { type: 'radio', name, value: String(g.score), checked: g.score === 0 }),
        h('span', { class: 'score-num' }, g.score > 0 ? `+${g.score}` : String(g.score)), ` ${g.label}`)))),
    h('label', { for: typeId }, 'Who scored it'),
    h('select', { id: typeId }, SCORE_TYPES.map((t, i) => h('option', {
      value: t.code, selected: count === 0 ? i === 0 : t.code === '107333-7' }, t.label))),
    h('div', { class: 'form-actions' },
      h('button', { type: 'submit', class: 'btn btn-primary' }, 'Save score')));
  form.addEventListener('submit', (ev) => {
    ev.preventDefault();
    const score = Number(form.querySelector(`input[name="${name}"]:checked`).value);
    const type = form.querySelector('select').value;
    const body = scoreResource(state.patientId, goal.id, score, type, new Date().toISOString());
    state.scoreOpen.delete(goal.id);
    queue({ kind: 'create', type: 'Observation', method: 'POST', path: '/Observation', body,
      label: `Score ${score > 0 ? '+' : ''}${score} for “${short(textOf(goal), 30)}”` });
    renderSummary();
    $(`li[data-ref="Goal/${goal.id}"] [aria-expanded]`)?.focus();
  });
  return form;
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
    ...saved.map((s) => h('li', { class: 'outbox-item', dataset: { state: 'saved', requestId: s.id } },
      h('span', { class: 'state state-saved' }, STATE_TEXT.saved),
      h('span', { class: 'outbox-label' }, s.label),
      h('span', { class: 'meta' }, `${s.type}${s.resourceId ? ` ${s.resourceId}` : ''}, version ${s.version}`))));
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
function preferenceRow() {
  const n = ++prefSeq;
  const kindId = `pref-kind-${n}`;
  const textId = `pref-text-${n}`;
  const chips = h('div', { class: 'chips', role: 'group', 'aria-label': 'Common choices' });
  const text = h('input', { id: textId, type: 'text', class: 'pref-text', autocomplete: 'off' });
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
  select.addEventListener('change', fillChips);
  text.addEventListener('input', syncChips);
  const row = h('div', { class: 'pref-row' },
    h('div', { class: 'pref-head' },
      h('div', null, h('label', { for: kindId }, 'Kind of preference'), select),
      h('button', { type: 'button', class: 'btn btn-quiet', onclick: () => {
        row.remove();
        if (!$('#pref-rows').children.length) $('#pref-rows').append(preferenceRow());
        $('#add-pref').focus();
      } }, 'Remove')),
    chips,
    h('label', { for: textId }, 'The preference, in their words (tap choices or type)'),
    text);
  fillChips();
  return row;
}

function resetPreferences() {
  $('#pref-rows').replaceChildren(preferenceRow());
}

function localToday() {
  const d = new Date();
  return `${d.getFullYear()}-${String(d.getMonth() + 1).padStart(2, '0')}-${String(d.getDate()).padStart(2, '0')}`;
}

function submitRecord(ev) {
  ev.preventDefault();
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
    const text = row.querySelector('.pref-text').value.trim();
    if (!text) continue;
    const kind = row.querySelector('.pref-kind').value;
    const k = PREFERENCE_KINDS.find((x) => x.id === kind);
    const detail = preferenceDetails(kind, text);
    if (detail.error) return fail(`${k.label}: ${detail.error}`, row.querySelector('.chip') || row.querySelector('.pref-text'));
    out.push({ kind: 'create', type: 'Observation', method: 'POST', path: '/Observation',
      body: preferenceResource(pid, speaker, kind, text, now), label: `${k.label}: “${short(text)}”` });
  }
  if (!out.length) return fail('Nothing to save yet: write an answer, a goal or a preference.', f.answer);
  show(err, false);
  for (const e of out) queue(e);
  f.reset();
  show($('#family-fields'), false);
  resetPreferences();
  setView('summary');
  banner(`${out.length} record${out.length === 1 ? '' : 's'} saved to this device and being sent.`, 'info');
}

// --- Editing and conflicts -------------------------------------------------------

function openEdit(r) {
  state.editing = r;
  const isGoal = r.resourceType === 'Goal';
  $('#edit-title').textContent = `Edit: ${kindText(r)}`;
  $('#edit-meta').textContent = `${speakerText(r)} · version ${r.meta?.versionId}`;
  $('#edit-text').value = textOf(r);
  show($('#edit-goal-fields'), isGoal);
  if (isGoal) {
    $('#edit-date').value = /^\d{4}-\d{2}-\d{2}$/.test(r.target?.[0]?.dueDate || '') ? r.target[0].dueDate : '';
    $('#edit-status').value = ['active', 'on-hold', 'completed', 'cancelled'].includes(r.lifecycleStatus)
      ? r.lifecycleStatus : 'active';
  }
  $('#edit-dialog').showModal();
  $('#edit-text').focus();
}

// Applies an edit ({ text, date, status }) to a resource as read.
function applyEdit(resource, edit) {
  const r = forUpdate(resource);
  if (r.resourceType === 'Goal') {
    r.description = { ...(r.description || {}), text: edit.text };
    if (edit.date) r.target = [{ ...(r.target?.[0] || {}), dueDate: edit.date }, ...(r.target || []).slice(1)];
    else if (r.target) r.target = r.target.map((t) => { const c = { ...t }; delete c.dueDate; return c; })
      .filter((t) => Object.keys(t).length);
    if (r.target && !r.target.length) delete r.target;
    r.lifecycleStatus = edit.status;
  } else if (r.valueCodeableConcept && typeof r.valueString !== 'string') {
    r.valueCodeableConcept = { ...r.valueCodeableConcept, text: edit.text };
  } else {
    r.valueString = edit.text;
  }
  return r;
}

function submitEdit(ev) {
  ev.preventDefault();
  const r = state.editing;
  const text = $('#edit-text').value.trim();
  if (!text) {
    $('#edit-text').focus();
    return;
  }
  const edit = { text };
  if (r.resourceType === 'Goal') {
    edit.date = $('#edit-date').value;
    edit.status = $('#edit-status').value;
  }
  $('#edit-dialog').close();
  queue({ kind: 'update', type: r.resourceType, method: 'PUT', path: `/${r.resourceType}/${r.id}`,
    body: applyEdit(r, edit), ifMatch: `W/"${r.meta.versionId}"`, edit, resourceId: r.id,
    label: `Edit: “${short(text)}”` });
  state.editing = null;
  $(`#priority-list li[data-ref="${refOf(r)}"] button:last-child`)?.focus();
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
    const id = $('#patient-id').value.trim();
    if (!PATIENT_ID.test(id)) {
      showPatientPicker('A patient ID has 1 to 64 letters, digits, dots or dashes.');
      $('#patient-id').value = id;
      $('#patient-id').focus();
      return;
    }
    openPatient(id);
  });
  $('#change-patient').addEventListener('click', () => {
    state.patientId = '';
    sessionStorage.removeItem(PATIENT_KEY);
    showPatientPicker();
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
  $('#clear-form').addEventListener('click', () => {
    $('#record-form').reset();
    show($('#family-fields'), false);
    resetPreferences();
    show($('#record-error'), false);
  });
  $('#add-pref').addEventListener('click', () => {
    const row = preferenceRow();
    $('#pref-rows').append(row);
    row.querySelector('select').focus();
  });
  $('#edit-form').addEventListener('submit', submitEdit);
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
    if (c && state.token && !$('#conflict-dialog').open && !$('#screen-record').hidden) openConflict(c);
  });
  outbox.addEventListener('saved', (ev) => {
    if (ev.detail.entry.patientId !== state.patientId) return;
    const { saved } = ev.detail;
    banner(`Saved: ${saved.label} (version ${saved.version}).`, 'ok');
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
