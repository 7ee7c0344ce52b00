// FHIR resources as a client following the profiles would send them
// (shared/reference/fhir-profiles.md): US Core Goal; US Core Care Experience
// Preference (what matters, care-experience preference); US Core Treatment
// Intervention Preference; PCO GAS score; PACIO ADI PersonalPrioritiesOrganizer.
import { randomUUID } from 'node:crypto';

export const LOINC = 'http://loinc.org';
export const WMTY_CS = 'https://fhir.wmty.health/CodeSystem/wmty';
export const US_CORE_CATEGORY = 'http://hl7.org/fhir/us/core/CodeSystem/us-core-category';
export const IDENTIFIER_SYSTEM = 'urn:wmty:conformance';

export const PROFILES = {
  goal: 'http://hl7.org/fhir/us/core/StructureDefinition/us-core-goal',
  careExperience: 'http://hl7.org/fhir/us/core/StructureDefinition/us-core-care-experience-preference',
  treatment: 'http://hl7.org/fhir/us/core/StructureDefinition/us-core-treatment-intervention-preference',
  gas: 'http://hl7.org/fhir/us/pco/StructureDefinition/pco-gas-score-observation',
  priorities: 'http://hl7.org/fhir/us/pacio-adi/StructureDefinition/ADI-PersonalPrioritiesOrganizer',
  provenance: 'http://hl7.org/fhir/us/core/StructureDefinition/us-core-provenance',
};

export const CODES = {
  careExperience: '95541-9',
  treatment: '75773-2',
  personalHealthGoal: '87528-6',
  priorities: '81340-2',
  gasInitial: '107332-9',
  gasPatient: '107334-5',
  gasPractitioner: '107333-7',
  gasCaregiver: '107331-1',
};

// LOINC answer list LL6900-6, by score.
export const GAS_ANSWERS = {
  2: ['LA34479-8', 'Much better than expected'],
  1: ['LA34480-6', 'Better than expected'],
  0: ['LA34481-4', 'Expected outcome'],
  '-1': ['LA34483-0', 'Less than expected'],
  '-2': ['LA34484-8', 'Much less than expected'],
};

// Our CodeSystem's code for "what matters to me" (see the CodeSystem the
// server serves; settled once per run by codesystem.test.mjs's expectations).
export const WHAT_MATTERS_CODE = 'what-matters';

// A fresh patient id for each test, so tests never see each other's data.
export function newPatientId(prefix = 'p') {
  return `${prefix}-${randomUUID().slice(0, 13)}`;
}

export function newIdentifier() {
  return { system: IDENTIFIER_SYSTEM, value: randomUUID() };
}

function cc(system, code, display) {
  return { coding: [{ system, code, ...(display ? { display } : {}) }] };
}

export function goal(patient, overrides = {}) {
  return {
    resourceType: 'Goal',
    meta: { profile: [PROFILES.goal] },
    identifier: [newIdentifier()],
    lifecycleStatus: 'active',
    achievementStatus: cc('http://terminology.hl7.org/CodeSystem/goal-achievement', 'in-progress', 'In Progress'),
    category: [cc(LOINC, CODES.personalHealthGoal, 'Personal health goal')],
    priority: cc('http://terminology.hl7.org/CodeSystem/goal-priority', 'high-priority', 'High Priority'),
    description: { text: 'Walk my granddaughter down the aisle at her wedding in June, without the walker' },
    subject: { reference: `Patient/${patient}` },
    startDate: '2026-11-01',
    target: [{ dueDate: '2027-06-12' }],
    expressedBy: { reference: `Patient/${patient}` },
    ...overrides,
  };
}

function preferenceObservation(patient, { profile, category, coding, value, overrides = {} }) {
  return {
    resourceType: 'Observation',
    meta: { profile: [profile] },
    identifier: [newIdentifier()],
    status: 'final',
    category: [cc(US_CORE_CATEGORY, category)],
    code: { coding },
    subject: { reference: `Patient/${patient}` },
    effectiveDateTime: '2025-11-20T10:15:00Z',
    performer: [{ reference: `Patient/${patient}` }],
    valueString: value,
    ...overrides,
  };
}

// The verbatim answer to "what matters to you?".
export function whatMatters(patient, text = "Being home in time for my granddaughter's wedding", overrides = {}) {
  return preferenceObservation(patient, {
    profile: PROFILES.careExperience,
    category: 'care-experience-preference',
    coding: [
      { system: LOINC, code: CODES.careExperience, display: 'Care experience preference' },
      { system: WMTY_CS, code: WHAT_MATTERS_CODE },
    ],
    value: text,
    overrides,
  });
}

export function careExperiencePreference(patient, text = 'Please call me Bea and knock before entering', overrides = {}) {
  return preferenceObservation(patient, {
    profile: PROFILES.careExperience,
    category: 'care-experience-preference',
    coding: [{ system: LOINC, code: CODES.careExperience, display: 'Care experience preference' }],
    value: text,
    overrides,
  });
}

export function treatmentPreference(patient, text = 'No feeding tube, even if I cannot eat', overrides = {}) {
  return preferenceObservation(patient, {
    profile: PROFILES.treatment,
    category: 'treatment-intervention-preference',
    coding: [
      {
        system: LOINC,
        code: CODES.treatment,
        display: 'Goals, preferences, and priorities for medical treatment [Reported]',
      },
    ],
    value: text,
    overrides,
  });
}

// A PCO goal-attainment scaling score for `goalId` (-2..+2).
export function gasScore(patient, goalId, score = 0, code = CODES.gasPatient, overrides = {}) {
  const [answer, display] = GAS_ANSWERS[score];
  return {
    resourceType: 'Observation',
    meta: { profile: [PROFILES.gas] },
    identifier: [newIdentifier()],
    status: 'final',
    category: [cc('http://terminology.hl7.org/CodeSystem/observation-category', 'survey', 'Survey')],
    code: cc(LOINC, code),
    subject: { reference: `Patient/${patient}` },
    focus: [{ reference: `Goal/${goalId}` }],
    effectiveDateTime: '2025-12-01T10:15:00Z',
    performer: [{ reference: `Patient/${patient}` }],
    valueCodeableConcept: cc(LOINC, answer, display),
    ...overrides,
  };
}

// The patient's ranked priorities (one List per patient; its id is the
// patient id). `items` are references such as "Goal/<id>".
export function priorities(patient, items, overrides = {}) {
  return {
    resourceType: 'List',
    id: patient,
    meta: { profile: [PROFILES.priorities] },
    status: 'current',
    mode: 'working',
    title: 'What matters most to me',
    code: cc(LOINC, CODES.priorities, 'Goals AndOr preferences in order of priority [Reported]'),
    subject: { reference: `Patient/${patient}` },
    source: { reference: `Patient/${patient}` },
    orderedBy: cc('http://terminology.hl7.org/CodeSystem/list-order', 'priority', 'Sorted by Priority'),
    entry: items.map((reference) => ({ item: { reference } })),
    ...overrides,
  };
}

// Who recorded a write: FHIR's X-Provenance header (http.html#provenance), a
// Provenance whose author agent is the practitioner, target left empty for
// the server to fill in (http.html#provenance).
export const RECORDER = { id: 'rn-17', display: 'Rita Okafor', role: 'RN' };

export function xProvenance(recorder = RECORDER) {
  return JSON.stringify({
    resourceType: 'Provenance',
    recorded: new Date().toISOString(),
    agent: [
      {
        type: cc('http://terminology.hl7.org/CodeSystem/provenance-participant-type', 'author', 'Author'),
        who: { reference: `Practitioner/${recorder.id}`, display: recorder.display },
        role: [{ text: recorder.role }],
      },
    ],
  });
}

// Headers a write carries.
export function writeHeaders(extra = {}, recorder = RECORDER) {
  return { 'X-Provenance': xProvenance(recorder), ...extra };
}
