// The FHIR API (same origin, /fhir) and the FHIR shapes the bedside app reads
// and writes. Mapping: docs/fhir.md. Nothing here touches the page.
import { languageLabel } from './languages.js';

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
// GAS score type (LOINC): the baseline, or a follow-up by who scored it
// (mapping.cc section 2; PCO 1.0.0 binds 112296-9 to the baseline).
export const BASELINE_CODE = '112296-9';
const FOLLOW_UP_CODES = { patient: '107334-5', nurse: '107333-7', caregiver: '107331-1' };

export function scoreTypeCode(when, scorer) {
  return when === 'baseline' ? BASELINE_CODE : FOLLOW_UP_CODES[scorer];
}
const GAS_CODES = new Set(['112296-9', '107332-9', '107334-5', '107333-7', '107331-1']);

// Preference kinds: the specific coding (docs/fhir.md), what to call it, and
// chips of common choices (free text is always allowed too). The structured
// kinds (STRUCTURED_KINDS) have their own editor instead of chips; language
// offers `quick` picks. `identity` kinds say who the patient is (pinned in
// "About", never ranked among goals).
export const PREFERENCE_KINDS = [
  { id: 'name-to-use', system: WMTY, code: 'name-to-use', label: 'Name to use', chips: [], identity: true },
  { id: 'pronouns', system: LOINC, code: '90778-2', label: 'Pronouns', chips: ['she/her', 'he/him', 'they/them'],
    identity: true },
  { id: 'language', system: LOINC, code: '54899-0', label: 'Language', chips: [], identity: true,
    quick: ['en', 'es', 'pl', 'ar', 'fr', 'pt', 'zh', 'vi'] },
  { id: 'communication-channels', system: WMTY, code: 'communication-channels', label: 'How to contact', chips: [] },
  { id: 'contact-time-window', system: WMTY, code: 'contact-time-window', label: 'When to contact', chips: [] },
  { id: 'family-involvement', system: WMTY, code: 'family-involvement', label: 'Family involvement',
    chips: ['Involve family in decisions', 'Keep family informed', 'Ask me first', 'Only me'] },
  { id: 'likes', system: LOINC, code: '81360-0', label: 'Likes and joys',
    chips: ['Music', 'Time outdoors', 'Visits from pets', 'Reading', 'A cup of tea'] },
  { id: 'dislikes', system: LOINC, code: '81362-6', label: 'Dislikes and fears',
    chips: ['Being rushed', 'Loud noise', 'Needles', 'Being alone at night', 'The dark'], identity: true },
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

// The signed-in user as a FHIR reference ("Practitioner/rn-17"), from the
// token's fhirUser claim; '' when the token names no Practitioner. Only read
// for display and to say who scored: the server checks the token.
export function practitionerOf(token) {
  try {
    const part = token.split('.')[1].replace(/-/g, '+').replace(/_/g, '/');
    const claims = JSON.parse(atob(part + '='.repeat((4 - (part.length % 4)) % 4)));
    // fhirUser may be relative or absolute (SMART: a URL ending in Practitioner/<id>).
    const m = /(?:^|\/)(Practitioner\/[A-Za-z0-9.-]{1,64})$/.exec(claims.fhirUser || claims.sub || '');
    return m ? m[1] : '';
  } catch {
    return '';
  }
}

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

// Who said it: { kind: 'patient' | 'family' | 'practitioner' | 'unknown', name, relationship }.
export function speakerOf(r) {
  const ref = r.resourceType === 'Goal' ? r.expressedBy
    : r.resourceType === 'List' ? r.source : (r.performer || [])[0];
  if (!ref?.reference) return { kind: 'unknown' };
  if (ref.reference.startsWith('Patient/')) return { kind: 'patient' };
  if (ref.reference.startsWith('Practitioner/')) {
    return { kind: 'practitioner', name: ref.display || ref.reference.slice('Practitioner/'.length) };
  }
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
// Who recorded a version, from its Provenance: the author, and the enterer
// when a system recorded it on the author's behalf ("Rita Okafor (entered by
// ehr-plugin)"); docs/security.md "Who recorded a write".
function recorderOf(provenance) {
  const agentOf = (code) => (provenance.agent || []).find((a) => (a.type?.coding || []).some((c) => c.code === code));
  const name = (a) => a?.who?.display || a?.who?.reference?.replace(/^Practitioner\//, '') || '';
  const author = name(agentOf('author') || provenance.agent?.[0]);
  const enterer = name(agentOf('enterer'));
  return enterer && enterer !== author ? `${author} (entered by ${enterer})` : author;
}

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
      const who = recorderOf(r);
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
// "Preference details"). The app keeps the detail apart from the words:
//   language:               { tag, interpreter }
//   communication-channels: { channels: ['phone-call', 'sms', ...] } (most preferred first)
//   contact-time-window:    { start: 'HH:MM', end: 'HH:MM', weekdaysOnly }
// The stored words (valueString) are always the detail's summary, then the
// nurse's note after " — ", so text and code cannot disagree.
export const STRUCTURED_KINDS = new Set(['language', 'communication-channels', 'contact-time-window']);
export const CHANNELS = [
  { code: 'phone-call', label: 'Phone call' }, { code: 'sms', label: 'Text message' },
  { code: 'email', label: 'Email' }, { code: 'patient-portal', label: 'Patient portal' },
  { code: 'postal-mail', label: 'Letter' }, { code: 'in-person', label: 'In person' },
  { code: 'video-visit', label: 'Video visit' },
];
export const WINDOWS = [
  { id: 'mornings', label: 'Mornings', start: '08:00', end: '12:00' },
  { id: 'afternoons', label: 'Afternoons', start: '12:00', end: '17:00' },
  { id: 'evenings', label: 'Evenings', start: '17:00', end: '20:00' },
];
const WEEKDAYS = ['mon', 'tue', 'wed', 'thu', 'fri'];
const DAYS_SYSTEM = 'http://hl7.org/fhir/days-of-week';
const BCP47 = 'urn:ietf:bcp:47';
const ours = (code) => ({ coding: [{ system: WMTY, code }] });
const NOTE_SEPARATOR = ' — ';

export function channelLabel(code) {
  return CHANNELS.find((c) => c.code === code)?.label || code;
}

// The readable summary of a detail: what the card shows as coded, and how the
// stored words begin.
export function detailSummary(kindId, d) {
  if (!d) return '';
  if (kindId === 'language') return `${languageLabel(d.tag)}${d.interpreter ? ', needs an interpreter' : ''}`;
  if (kindId === 'communication-channels') return d.channels.map(channelLabel).join(', then ');
  if (kindId === 'contact-time-window') {
    const named = WINDOWS.filter((w) => w.start >= d.start && w.end <= d.end).map((w) => w.label.toLowerCase());
    const covers = named.length && WINDOWS.some((w) => w.start === d.start) && WINDOWS.some((w) => w.end === d.end);
    const words = covers ? `${named.join(' and ').replace(/^./, (c) => c.toUpperCase())}, ` : '';
    return `${words}${d.start}–${d.end}${d.weekdaysOnly ? ', weekdays only' : ''}`;
  }
  return '';
}

// The words stored for a structured preference.
export function preferenceText(kindId, detail, note) {
  const summary = detailSummary(kindId, detail);
  return note ? `${summary}${NOTE_SEPARATOR}${note}` : summary;
}

// The nurse's note inside stored words (the part after the summary). Words
// written elsewhere that do not start with the summary are all note.
export function noteOf(kindId, detail, text) {
  const summary = detailSummary(kindId, detail);
  if (text === summary) return '';
  if (text.startsWith(summary + NOTE_SEPARATOR)) return text.slice(summary.length + NOTE_SEPARATOR.length);
  return text;
}

// The detail as the components the server maps (docs/fhir.md).
export function detailComponents(kindId, d) {
  if (kindId === 'language') {
    return [{ code: ours('language'), valueCodeableConcept: { coding: [{ system: BCP47, code: d.tag }] } },
      { code: ours('interpreter-needed'), valueBoolean: Boolean(d.interpreter) }];
  }
  if (kindId === 'communication-channels') {
    return d.channels.map((c) => ({ code: ours('preferred-channel'), valueCodeableConcept: ours(c) }));
  }
  if (kindId === 'contact-time-window') {
    const days = d.weekdaysOnly ? WEEKDAYS.map((day) => ({ code: ours('contact-day'),
      valueCodeableConcept: { coding: [{ system: DAYS_SYSTEM, code: day }] } })) : [];
    return [...days, { code: ours('contact-start-time'), valueTime: `${d.start}:00` },
      { code: ours('contact-end-time'), valueTime: `${d.end}:00` }];
  }
  return [];
}

// The detail of a stored preference, read from its components (null when it
// has none).
export function detailOf(obs) {
  const kindId = preferenceKindOf(obs).id;
  const comps = (c) => (obs.component || []).filter((x) => hasCoding(x.code, WMTY, c));
  const code = (x) => x?.valueCodeableConcept?.coding?.[0]?.code;
  if (kindId === 'language') {
    const lang = code(comps('language')[0]);
    return lang ? { tag: lang, interpreter: comps('interpreter-needed')[0]?.valueBoolean === true } : null;
  }
  if (kindId === 'communication-channels') {
    const channels = comps('preferred-channel').map(code).filter(Boolean);
    return channels.length ? { channels } : null;
  }
  if (kindId === 'contact-time-window') {
    const time = (c) => comps(c)[0]?.valueTime?.slice(0, 5);
    const days = comps('contact-day').map(code);
    if (!time('contact-start-time') || !time('contact-end-time')) return null;
    return { start: time('contact-start-time'), end: time('contact-end-time'),
      weekdaysOnly: days.length === 5 && WEEKDAYS.every((d) => days.includes(d)) };
  }
  return null;
}

// A new preference. `detail` is required for the structured kinds, and then
// `text` is the nurse's note (the stored words are the summary + the note).
export function preferenceResource(patientId, speaker, kindId, text, when, detail) {
  const k = PREFERENCE_KINDS.find((x) => x.id === kindId);
  const s = speakerParts(patientId, speaker);
  const coding = k.id === 'treatment' ? [{ system: LOINC, code: '75773-2' }]
    : k.id === 'care-experience' ? [{ system: LOINC, code: '95541-9' }]
      : [{ system: LOINC, code: '95541-9' }, { system: k.system, code: k.code }];
  const structured = STRUCTURED_KINDS.has(kindId);
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
    valueString: structured ? preferenceText(kindId, detail, text) : text,
    ...(structured ? { component: detailComponents(kindId, detail) } : {}),
  };
}

// A goal-attainment score. `scorer` is who actually scored it:
// { kind: 'patient' } | { kind: 'nurse', reference: 'Practitioner/<id>' } |
// { kind: 'caregiver', name, relationship } (a contained RelatedPerson).
export function scoreResource(patientId, goalId, score, typeCode, when, scorer, note) {
  const a = GAS.find((g) => g.score === score);
  const s = scorer.kind === 'nurse' ? { ref: { reference: scorer.reference } }
    : speakerParts(patientId, scorer.kind === 'caregiver' ? { ...scorer, kind: 'family' } : { kind: 'patient' });
  const r = {
    resourceType: 'Observation',
    ...(s.contained ? { contained: s.contained } : {}),
    status: 'final',
    category: [{ coding: [{ system: OBS_CATEGORY, code: 'survey' }] }],
    code: { coding: [{ system: LOINC, code: typeCode }] },
    subject: { reference: `Patient/${patientId}` },
    focus: [{ reference: `Goal/${goalId}` }],
    effectiveDateTime: when,
    performer: [s.ref],
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

// The X-Provenance header of a retraction: the reason in the nurse's words,
// and her as author when the token names her Practitioner (else the server
// takes the recorder from the token). JSON with every non-ASCII character
// escaped (\uXXXX): header values are bytes, the reason may be in any language.
export function retractionProvenance(practitioner, reason) {
  const p = {
    resourceType: 'Provenance',
    ...(practitioner ? { agent: [{ type: { coding: [{
      system: 'http://terminology.hl7.org/CodeSystem/provenance-participant-type', code: 'author' }] },
    who: { reference: practitioner } }] } : {}),
    reason: [{ text: reason }],
  };
  return JSON.stringify(p).replace(/[\u007f-\uffff]/g, (c) => `\\u${c.charCodeAt(0).toString(16).padStart(4, '0')}`);
}

function authorOf(prov) {
  const a = (prov.agent || []).find((x) => (x.type?.coding || []).some((c) => c.code === 'author')) || prov.agent?.[0];
  return a?.who?.display || a?.who?.reference?.replace(/^Practitioner\//, '') || '';
}

// What a version said: the words, or for a goal score the score.
function wordsOf(r) {
  if (r.resourceType !== 'Observation' || observationKind(r) !== 'score') return textOf(r);
  const n = scoreOf(r);
  return `${n > 0 ? '+' : ''}${n} ${GAS.find((g) => g.score === n)?.label || ''}`.trim();
}

// One record's versions, newest first, from its _history Bundle and its
// Provenance search: [{ version, action: 'recorded' | 'changed' |
// 'retracted', when, who, reason, text }].
export function parseHistory(history, provenances) {
  const byVersion = new Map();
  for (const e of provenances?.entry || []) {
    const p = e.resource;
    if (p?.resourceType !== 'Provenance') continue;
    for (const t of p.target || []) {
      const m = /\/_history\/([^/]+)$/.exec(t.reference || '');
      if (m) byVersion.set(m[1], p);
    }
  }
  return (history?.entry || []).map((e) => {
    const method = e.request?.method;
    const version = e.resource?.meta?.versionId || /\/_history\/([^/]+)$/.exec(e.response?.location || e.fullUrl || '')?.[1]
      || versionOf(e.response?.etag) || '';
    const prov = byVersion.get(version);
    return {
      version,
      action: method === 'DELETE' ? 'retracted' : method === 'POST' ? 'recorded' : 'changed',
      when: e.resource?.meta?.lastUpdated || e.response?.lastModified || prov?.recorded || '',
      who: prov ? authorOf(prov) : '',
      // The deletion's Provenance has the reason; so does its history entry's outcome.
      reason: prov?.reason?.[0]?.text || e.response?.outcome?.issue?.[0]?.details?.text || '',
      text: e.resource ? wordsOf(e.resource) : '',
    };
  });
}

