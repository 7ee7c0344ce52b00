// Who the patient is: the FHIR Patient records the hospital's systems send to
// wmty (docs/integration.md), found by name, date of birth, MRN or id, and
// shown the same way everywhere (picker, recent list, identity header).
// The nurse never types a name or a date of birth: they only come from here.
// Nothing here touches the page.
import { PATIENT_ID, request } from './fhir.js';

const IDENTIFIER_TYPE = 'http://terminology.hl7.org/CodeSystem/v2-0203';
const FHIR_DATE = /^(\d{4})(?:-(\d{2})(?:-(\d{2}))?)?$/;

// The name to show: official, else usual, else the first one.
export function nameOf(patient) {
  const names = patient?.name || [];
  const n = names.find((x) => x.use === 'official') || names.find((x) => x.use === 'usual') || names[0];
  if (!n) return '';
  if (n.text) return n.text;
  return [...(n.given || []), n.family].filter(Boolean).join(' ');
}

// The medical record number: the identifier typed MR, else the first one.
export function mrnOf(patient) {
  const ids = patient?.identifier || [];
  const mr = ids.find((i) => (i.type?.coding || []).some((c) => c.system === IDENTIFIER_TYPE && c.code === 'MR'));
  return (mr || ids[0])?.value || '';
}

// Age on `today` from a FHIR date: "76 years", "5 months", or "about 76
// years" when only the year (or month) is known. "" without a birth date.
export function ageText(birthDate, today = new Date()) {
  const m = FHIR_DATE.exec(birthDate || '');
  if (!m) return '';
  const y = Number(m[1]);
  const mo = m[2] ? Number(m[2]) : null;
  const d = m[3] ? Number(m[3]) : null;
  const ty = today.getFullYear();
  const tm = today.getMonth() + 1;
  const td = today.getDate();
  if (mo === null || d === null) {
    const years = ty - y - (mo !== null && tm < mo ? 1 : 0);
    return years >= 0 ? `about ${years} year${years === 1 ? '' : 's'}` : '';
  }
  const beforeBirthday = tm < mo || (tm === mo && td < d);
  const years = ty - y - (beforeBirthday ? 1 : 0);
  if (years < 0) return '';
  if (years < 2) {
    const months = (ty - y) * 12 + (tm - mo) - (td < d ? 1 : 0);
    return `${months} month${months === 1 ? '' : 's'}`;
  }
  return `${years} years`;
}

// One Patient as the app shows it.
export function identityOf(patient) {
  return {
    id: patient.id,
    name: nameOf(patient),
    birthDate: patient.birthDate || '',
    age: ageText(patient.birthDate),
    mrn: mrnOf(patient),
  };
}

// The Patient with this id: { status, patient } (status 404 when wmty has
// no record of it). Throws like request() (AuthError, network errors).
export async function fetchPatient(token, id) {
  const res = await request(token, 'GET', `/Patient/${encodeURIComponent(id)}`);
  return { status: res.status, patient: res.status === 200 ? res.body : null, body: res.body };
}

// What a search text asks: a date of birth (YYYY, YYYY-MM or YYYY-MM-DD)
// searches birthdate; anything else searches names and identifiers (the
// MRN), and the id too when it could be one.
export function searchQueries(text) {
  const q = text.trim();
  if (!q) return [];
  const enc = encodeURIComponent;
  if (FHIR_DATE.test(q)) return [`birthdate=${enc(q)}`];
  const out = [`name=${enc(q)}`, `identifier=${enc(q)}`];
  if (PATIENT_ID.test(q)) out.push(`_id=${enc(q)}`);
  return out;
}

// Patients matching the text, each once, in the order found: { status,
// patients } where status is the first non-200 answer, if any.
export async function searchPatients(token, text, count = 20) {
  const answers = await Promise.all(searchQueries(text).map((q) =>
    request(token, 'GET', `/Patient?${q}&_count=${count}`)));
  const seen = new Map();
  let status = 200;
  for (const res of answers) {
    if (res.status !== 200) {
      if (status === 200) status = res.status;
      continue;
    }
    for (const e of res.body?.entry || []) {
      if (e.resource?.resourceType === 'Patient' && !seen.has(e.resource.id)) seen.set(e.resource.id, e.resource);
    }
  }
  return { status, patients: [...seen.values()] };
}

// The Patients of these ids (one search), by id; unknown ids are absent.
export async function patientsById(token, ids) {
  const valid = ids.filter((id) => PATIENT_ID.test(id));
  if (!valid.length) return new Map();
  const res = await request(token, 'GET', `/Patient?_id=${valid.map(encodeURIComponent).join(',')}&_count=${valid.length}`);
  const out = new Map();
  if (res.status !== 200) return out;
  for (const e of res.body?.entry || []) if (e.resource?.resourceType === 'Patient') out.set(e.resource.id, e.resource);
  return out;
}
