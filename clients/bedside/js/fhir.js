// The FHIR API (same origin, /fhir) and the FHIR shapes the bedside app reads
// and writes. Mapping: docs/fhir.md. Nothing here touches the page.

// The app is served at <prefix>/bedside/ and the API at <prefix>/fhir.
export const BASE = `${location.pathname.replace(/\/bedside(\/.*)?$/, '')}/fhir`;

export const LOINC = 'http://loinc.org';
export const WMTY = 'https://fhir.wmty.health/CodeSystem/wmty';
const US_CORE_CATEGORY = 'http://hl7.org/fhir/us/core/CodeSystem/us-core-category';
const OBS_CATEGORY = 'http://terminology.hl7.org/CodeSystem/observation-category';
const LIST_ORDER = 'http://terminology.hl7.org/CodeSystem/list-order';

// Goal attainment scale answers (LOINC LL6900-6), by score.
export const GAS = [
  { score: 2, code: 'LA34479-8', label: 'Much better than expected' },
  { score: 1, code: 'LA34480-6', label: 'Better than expected' },
  { score: 0, code: 'LA34481-4', label: 'As expected' },
  { score: -1, code: 'LA34483-0', label: 'Less than expected' },
  { score: -2, code: 'LA34484-8', label: 'Much less than expected' },
];
// GAS score types: LOINC code by who scored.
export const SCORE_TYPES = [
  { code: '112296-9', label: 'Baseline' },
  { code: '107334-5', label: 'Patient follow-up' },
  { code: '107333-7', label: 'Nurse / practitioner follow-up' },
  { code: '107331-1', label: 'Caregiver follow-up' },
];
const GAS_CODES = new Set(['112296-9', '107332-9', '107334-5', '107333-7', '107331-1']);

// Preference kinds: the specific coding (docs/fhir.md), what to call it, and
// chips of common choices (free text is always allowed too).
export const PREFERENCE_KINDS = [
  { id: 'name-to-use', system: WMTY, code: 'name-to-use', label: 'Name to use', chips: [] },
  { id: 'pronouns', system: LOINC, code: '90778-2', label: 'Pronouns', chips: ['she/her', 'he/him', 'they/them'] },
  { id: 'language', system: LOINC, code: '54899-0', label: 'Language',
    chips: ['English', 'Spanish', 'Polish', 'Arabic', 'French', 'Portuguese', 'Mandarin', 'Vietnamese',
      'Needs an interpreter'] },
  { id: 'communication-channels', system: WMTY, code: 'communication-channels', label: 'How to contact',
    chips: ['Phone call', 'Text message', 'Email', 'Patient portal', 'Letter', 'In person', 'Video visit'] },
  { id: 'contact-time-window', system: WMTY, code: 'contact-time-window', label: 'When to contact',
    chips: ['Mornings', 'Afternoons', 'Evenings', 'Weekdays only'] },
  { id: 'family-involvement', system: WMTY, code: 'family-involvement', label: 'Family involvement',
    chips: ['Involve family in decisions', 'Keep family informed', 'Ask me first', 'Only me'] },
  { id: 'likes', system: LOINC, code: '81360-0', label: 'Likes and joys',
    chips: ['Music', 'Time outdoors', 'Visits from pets', 'Reading', 'A cup of tea'] },
  { id: 'dislikes', system: LOINC, code: '81362-6', label: 'Dislikes and fears',
    chips: ['Being rushed', 'Loud noise', 'Needles', 'Being alone at night', 'The dark'] },
  { id: 'spiritual', system: LOINC, code: '81364-2', label: 'Faith and culture',
    chips: ['Chaplain visit', 'Time to pray', 'Dietary rules', 'Same-gender carers'] },
  { id: 'treatment', system: LOINC, code: '75773-2', label: 'Treatment wishes',
    chips: ['No feeding tube', 'Wants full information', 'Avoid sedation if possible', 'Pain relief first'] },
  { id: 'care-experience', system: LOINC, code: '95541-9', label: 'How to care for me',
    chips: ['Door open', 'Lights low at night', 'Explain before touching me', 'Glasses within reach'] },
  { id: 'other', system: WMTY, code: 'other-preference', label: 'Other', chips: [] },
];

export const PROMPTS = ['What matters most to you today?', 'What would make tomorrow a good day?', 'What worries you?'];

export class AuthError extends Error {}

// One HTTP request to the FHIR API. Resolves { status, body, etag, version }
// for every HTTP answer; throws AuthError on 401 and TypeError (or
// AbortError) when the network failed, so the caller can tell "the server
// said no" from "we do not know what happened".
export async function request(token, method, path, { body, headers = {}, timeoutMs = 20000 } = {}) {
  const h = { Accept: 'application/fhir+json', Authorization: `Bearer ${token}`, ...headers };
  if (body !== undefined) h['Content-Type'] = 'application/fhir+json';
  const ctl = new AbortController();
  const timer = setTimeout(() => ctl.abort(), timeoutMs);
  let res;
  try {
    res = await fetch(BASE + path, { method, headers: h, body, cache: 'no-store', credentials: 'omit',
      signal: ctl.signal });
  } finally {
    clearTimeout(timer);
  }
  let json = null;
  const text = await res.text();
  if (text) {
    try { json = JSON.parse(text); } catch { json = null; }
  }
  if (res.status === 401) throw new AuthError(issueText(json) || 'The token was not accepted.');
  const etag = res.headers.get('ETag');
  const version = versionOf(etag) || json?.meta?.versionId || null;
  return { status: res.status, body: json, etag, version };
}

export function versionOf(etag) {
  const m = /^W\/"([^"]+)"$/.exec(etag || '');
  return m ? m[1] : null;
}

export function issueText(outcome) {
  if (!outcome || outcome.resourceType !== 'OperationOutcome') return '';
  return (outcome.issue || []).map((i) => i.diagnostics || i.details?.text || i.code).filter(Boolean).join('; ');
}

export const PATIENT_ID = /^[A-Za-z0-9.-]{1,64}$/;

// --- Reading -------------------------------------------------------------

function hasCoding(concept, system, code) {
  return (concept?.coding || []).some((c) => (!system || c.system === system) && c.code === code);
}

// 'what-matters' | 'score' | 'preference'
export function observationKind(obs) {
  if (hasCoding(obs.code, WMTY, 'what-matters')) return 'what-matters';
  if ((obs.code?.coding || []).some((c) => c.system === LOINC && GAS_CODES.has(c.code))) return 'score';
  return 'preference';
}

export function preferenceKindOf(obs) {
  for (const k of PREFERENCE_KINDS) {
    if (k.id === 'care-experience' || k.id === 'treatment') continue;
    if (hasCoding(obs.code, k.system, k.code)) return k;
  }
  if (hasCoding(obs.code, LOINC, '75773-2')) return PREFERENCE_KINDS.find((k) => k.id === 'treatment');
  return PREFERENCE_KINDS.find((k) => k.id === 'care-experience');
}

export function scoreOf(obs) {
  if (Number.isInteger(obs.valueInteger)) return obs.valueInteger;
  const code = obs.valueCodeableConcept?.coding?.find((c) => c.system === LOINC)?.code;
  const a = GAS.find((g) => g.code === code);
  return a ? a.score : null;
}

// The words of a record (what the patient said).
export function textOf(r) {
  if (r.resourceType === 'Goal') return r.description?.text || '';
  if (typeof r.valueString === 'string') return r.valueString;
  if (r.valueCodeableConcept) return r.valueCodeableConcept.text || r.valueCodeableConcept.coding?.[0]?.display || '';
  return '';
}

export function promptOf(obs) {
  const c = (obs.component || []).find((x) => hasCoding(x.code, WMTY, 'prompt'));
  return c?.valueString || '';
}

// Who said it: { kind: 'patient' | 'family' | 'unknown', name, relationship }.
export function speakerOf(r) {
  const ref = r.resourceType === 'Goal' ? r.expressedBy
    : r.resourceType === 'List' ? r.source : (r.performer || [])[0];
  if (!ref?.reference) return { kind: 'unknown' };
  if (ref.reference.startsWith('Patient/')) return { kind: 'patient' };
  if (ref.reference.startsWith('#')) {
    const p = (r.contained || []).find((c) => `#${c.id}` === ref.reference);
    const name = p?.name?.[0]?.text || [p?.name?.[0]?.given?.join(' '), p?.name?.[0]?.family].filter(Boolean).join(' ')
      || ref.display || '';
    const rel = p?.relationship?.[0]?.text || p?.relationship?.[0]?.coding?.[0]?.display || '';
    return { kind: 'family', name, relationship: rel };
  }
  return { kind: 'family', name: ref.display || ref.reference, relationship: '' };
}

// Everything about one patient, from Patient/<id>/$everything.
export function parseEverything(bundle) {
  const out = { list: null, goals: [], whatMatters: [], preferences: [], scores: [], recorder: new Map() };
  for (const e of bundle?.entry || []) {
    const r = e.resource;
    if (!r) continue;
    if (r.resourceType === 'List') out.list = r;
    else if (r.resourceType === 'Goal') out.goals.push(r);
    else if (r.resourceType === 'Observation') {
      const k = observationKind(r);
      if (k === 'what-matters') out.whatMatters.push(r);
      else if (k === 'score') out.scores.push(r);
      else out.preferences.push(r);
    } else if (r.resourceType === 'Provenance') {
      const author = (r.agent || []).find((a) => (a.type?.coding || []).some((c) => c.code === 'author')) || r.agent?.[0];
      const who = author?.who?.display || author?.who?.reference?.replace(/^Practitioner\//, '') || '';
      for (const t of r.target || []) {
        if (t.reference) out.recorder.set(t.reference, who);
      }
    }
  }
  return out;
}

// --- Writing -------------------------------------------------------------

// speaker: { kind: 'patient' } | { kind: 'family', name, relationship }
function speakerParts(patientId, speaker) {
  if (speaker.kind !== 'family') return { ref: { reference: `Patient/${patientId}` }, contained: undefined };
  return {
    ref: { reference: '#speaker', display: speaker.name },
    contained: [{ resourceType: 'RelatedPerson', id: 'speaker', patient: { reference: `Patient/${patientId}` },
      name: [{ text: speaker.name }], relationship: [{ text: speaker.relationship }] }],
  };
}

export function whatMattersResource(patientId, speaker, answer, prompt, when) {
  const s = speakerParts(patientId, speaker);
  const r = {
    resourceType: 'Observation',
    ...(s.contained ? { contained: s.contained } : {}),
    status: 'final',
    category: [{ coding: [{ system: US_CORE_CATEGORY, code: 'care-experience-preference' }] }],
    code: { coding: [{ system: LOINC, code: '95541-9' }, { system: WMTY, code: 'what-matters' }] },
    subject: { reference: `Patient/${patientId}` },
    effectiveDateTime: when,
    performer: [s.ref],
    valueString: answer,
  };
  if (prompt) r.component = [{ code: { coding: [{ system: WMTY, code: 'prompt' }] }, valueString: prompt }];
  return r;
}

export function goalResource(patientId, speaker, text, targetDate, startDate) {
  const s = speakerParts(patientId, speaker);
  const r = {
    resourceType: 'Goal',
    ...(s.contained ? { contained: s.contained } : {}),
    lifecycleStatus: 'active',
    category: [{ coding: [{ system: LOINC, code: '87528-6' }] }],
    description: { text },
    subject: { reference: `Patient/${patientId}` },
    startDate,
    expressedBy: s.ref,
  };
  if (targetDate) r.target = [{ dueDate: targetDate }];
  return r;
}

// Three kinds carry a structured detail the server requires (docs/fhir.md,
// "Preference details"); it is read from the chips in the text. Returns
// { components } or { error } (what the nurse should add).
const LANGUAGES = { english: 'en', spanish: 'es', polish: 'pl', arabic: 'ar', french: 'fr', portuguese: 'pt',
  mandarin: 'zh', vietnamese: 'vi' };
const CHANNELS = { 'phone call': 'phone-call', 'text message': 'sms', email: 'email', 'patient portal': 'patient-portal',
  letter: 'postal-mail', 'in person': 'in-person', 'video visit': 'video-visit' };
const WINDOWS = { mornings: ['08:00', '12:00'], afternoons: ['12:00', '17:00'], evenings: ['17:00', '20:00'] };
const ours = (code) => ({ coding: [{ system: WMTY, code }] });

export function preferenceDetails(kindId, text) {
  const words = text.split(',').map((x) => x.trim().toLowerCase());
  if (kindId === 'language') {
    const lang = words.find((w) => LANGUAGES[w]);
    if (!lang) return { error: 'Choose the language (one of the choices), or record it as an Other preference.' };
    const c = [{ code: ours('language'), valueCodeableConcept: { coding: [{ system: 'urn:ietf:bcp:47', code: LANGUAGES[lang] }] } }];
    c.push({ code: ours('interpreter-needed'), valueBoolean: words.includes('needs an interpreter') });
    return { components: c };
  }
  if (kindId === 'communication-channels') {
    const channels = words.filter((w) => CHANNELS[w]);
    if (!channels.length) return { error: 'Choose at least one way to contact them (most preferred first).' };
    return { components: channels.map((w) => ({ code: ours('preferred-channel'), valueCodeableConcept: ours(CHANNELS[w]) })) };
  }
  if (kindId === 'contact-time-window') {
    const wins = words.filter((w) => WINDOWS[w]).map((w) => WINDOWS[w]);
    if (!wins.length) return { error: 'Choose mornings, afternoons or evenings.' };
    const start = wins.map((x) => x[0]).sort()[0];
    const end = wins.map((x) => x[1]).sort().at(-1);
    const c = [];
    if (words.includes('weekdays only')) {
      for (const d of ['mon', 'tue', 'wed', 'thu', 'fri']) {
        c.push({ code: ours('contact-day'), valueCodeableConcept: { coding: [{ system: 'http://hl7.org/fhir/days-of-week', code: d }] } });
      }
    }
    c.push({ code: ours('contact-start-time'), valueTime: `${start}:00` });
    c.push({ code: ours('contact-end-time'), valueTime: `${end}:00` });
    return { components: c };
  }
  return { components: [] };
}

export function preferenceResource(patientId, speaker, kindId, text, when) {
  const k = PREFERENCE_KINDS.find((x) => x.id === kindId);
  const s = speakerParts(patientId, speaker);
  const coding = k.id === 'treatment' ? [{ system: LOINC, code: '75773-2' }]
    : k.id === 'care-experience' ? [{ system: LOINC, code: '95541-9' }]
      : [{ system: LOINC, code: '95541-9' }, { system: k.system, code: k.code }];
  const details = preferenceDetails(kindId, text).components || [];
  const category = k.id === 'treatment' ? 'treatment-intervention-preference' : 'care-experience-preference';
  return {
    resourceType: 'Observation',
    ...(s.contained ? { contained: s.contained } : {}),
    status: 'final',
    category: [{ coding: [{ system: US_CORE_CATEGORY, code: category }] }],
    code: { coding },
    subject: { reference: `Patient/${patientId}` },
    effectiveDateTime: when,
    performer: [s.ref],
    valueString: text,
    ...(details.length ? { component: details } : {}),
  };
}

export function scoreResource(patientId, goalId, score, typeCode, when, note) {
  const a = GAS.find((g) => g.score === score);
  const r = {
    resourceType: 'Observation',
    status: 'final',
    category: [{ coding: [{ system: OBS_CATEGORY, code: 'survey' }] }],
    code: { coding: [{ system: LOINC, code: typeCode }] },
    subject: { reference: `Patient/${patientId}` },
    focus: [{ reference: `Goal/${goalId}` }],
    effectiveDateTime: when,
    // The patient whose goal it is (the score type says who scored it).
    performer: [{ reference: `Patient/${patientId}` }],
    valueCodeableConcept: { coding: [{ system: LOINC, code: a.code }] },
  };
  if (note) r.note = [{ text: note }];
  return r;
}

export function listResource(patientId, refs, existing) {
  const r = {
    resourceType: 'List',
    id: patientId,
    status: 'current',
    mode: 'working',
    title: 'What matters most to me',
    code: { coding: [{ system: LOINC, code: '81340-2' }] },
    subject: { reference: `Patient/${patientId}` },
    orderedBy: { coding: [{ system: LIST_ORDER, code: 'priority' }] },
    entry: refs.map((ref) => ({ item: { reference: ref } })),
  };
  // Keep who the priorities are from (only a Patient can be List.source).
  r.source = existing?.source || { reference: `Patient/${patientId}` };
  return r;
}

// A resource as read, made ready to PUT back (the server owns meta and text).
export function forUpdate(resource) {
  const r = structuredClone(resource);
  delete r.meta;
  delete r.text;
  return r;
}
