// Editors for the structured preferences (Language, How to contact, When to
// contact), used by the record form and the edit dialog alike. The coded
// choice and the nurse's note are separate fields that never change each
// other, and a preview shows the words that will be stored (the summary of
// the code, then the note), so the words and the code cannot disagree.
import { CHANNELS, PREFERENCE_KINDS, WINDOWS, preferenceText } from './fhir.js';
import { LANGUAGES, languageLabel, parseLanguage } from './languages.js';
import { $, h } from './dom.js';

const LANGUAGE_LIST_ID = 'language-options';
let seq = 0;

// One <datalist> of every language for all pickers on the page.
function ensureLanguageList() {
  if ($(`#${LANGUAGE_LIST_ID}`)) return;
  document.body.append(h('datalist', { id: LANGUAGE_LIST_ID },
    LANGUAGES.map((l) => h('option', { value: languageLabel(l.tag) }))));
}

// A toggle chip (aria-pressed); `onToggle(pressed)` after each press.
function toggleChip(label, pressed, onToggle, value) {
  const b = h('button', { type: 'button', class: 'chip', 'aria-pressed': String(pressed), dataset: { value } },
    h('span', { class: 'chip-rank', 'aria-hidden': 'true' }), label);
  b.addEventListener('click', () => {
    const now = b.getAttribute('aria-pressed') !== 'true';
    b.setAttribute('aria-pressed', String(now));
    onToggle(now);
  });
  return b;
}

// Language: a searchable list (type a name or a BCP-47 tag), quick picks, and
// the interpreter flag, which nothing else can clear.
function languageParts(n, detail, changed) {
  const input = h('input', { id: `lang-${n}`, type: 'text', class: 'lang-input', list: LANGUAGE_LIST_ID,
    autocomplete: 'off', spellcheck: 'false', 'aria-describedby': `lang-hint-${n}`,
    value: detail ? languageLabel(detail.tag) : '' });
  const interpreter = h('input', { type: 'checkbox', class: 'interpreter', checked: Boolean(detail?.interpreter) });
  const quick = PREFERENCE_KINDS.find((k) => k.id === 'language').quick;
  const picks = h('div', { class: 'chips', role: 'group', 'aria-label': 'Common languages' },
    quick.map((tag) => h('button', { type: 'button', class: 'chip', dataset: { value: tag }, onclick: () => {
      input.value = languageLabel(tag);
      changed();
    } }, languageLabel(tag).replace(/ \(.*\)$/, ''))));
  input.addEventListener('input', changed);
  interpreter.addEventListener('change', changed);
  return {
    nodes: [h('label', { for: input.id }, 'Language'),
      h('p', { class: 'hint', id: `lang-hint-${n}` }, 'Type to search any language (e.g. Tagalog), or its code (e.g. pt-BR).'),
      input, picks,
      h('label', { class: 'choice choice-inline' }, interpreter, 'Needs an interpreter')],
    isEmpty: () => !input.value.trim() && !interpreter.checked,
    read() {
      const lang = parseLanguage(input.value);
      return lang.error ? { error: lang.error, focus: input } : { detail: { tag: lang.tag, interpreter: interpreter.checked } };
    },
  };
}

// How to contact: channels in the order tapped (the first is the most preferred).
function channelParts(n, detail, changed) {
  let chosen = [...(detail?.channels || [])];
  const chips = h('div', { class: 'chips', role: 'group', 'aria-label': 'Ways to contact, most preferred first' });
  const ranks = () => {
    for (const b of chips.children) {
      const at = chosen.indexOf(b.dataset.value);
      b.querySelector('.chip-rank').textContent = at >= 0 ? String(at + 1) : '';
    }
  };
  chips.append(...CHANNELS.map((c) => toggleChip(c.label, chosen.includes(c.code), (on) => {
    chosen = on ? [...chosen, c.code] : chosen.filter((x) => x !== c.code);
    ranks();
    changed();
  }, c.code)));
  ranks();
  return {
    nodes: [h('p', { class: 'hint' }, 'Tap the ways to contact them, the most preferred first.'), chips],
    isEmpty: () => chosen.length === 0,
    read: () => (chosen.length ? { detail: { channels: [...chosen] } }
      : { error: 'Choose at least one way to contact them (most preferred first).', focus: chips.firstChild }),
  };
}

// When to contact: one window made of adjacent parts of the day, and
// optionally weekdays only.
function windowParts(n, detail, changed) {
  const on = new Set(WINDOWS.filter((w) => detail && w.start >= detail.start && w.end <= detail.end).map((w) => w.id));
  let weekdaysOnly = Boolean(detail?.weekdaysOnly);
  const chips = h('div', { class: 'chips', role: 'group', 'aria-label': 'Times of day' },
    WINDOWS.map((w) => toggleChip(w.label, on.has(w.id), (pressed) => {
      if (pressed) on.add(w.id);
      else on.delete(w.id);
      changed();
    }, w.id)),
    toggleChip('Weekdays only', weekdaysOnly, (pressed) => {
      weekdaysOnly = pressed;
      changed();
    }, 'weekdays-only'));
  return {
    nodes: [h('p', { class: 'hint' }, 'One window: choose adjacent times of day.'), chips],
    isEmpty: () => on.size === 0 && !weekdaysOnly,
    read() {
      const idx = WINDOWS.map((w, i) => (on.has(w.id) ? i : -1)).filter((i) => i >= 0);
      if (!idx.length) return { error: 'Choose mornings, afternoons or evenings.', focus: chips.firstChild };
      if (idx.at(-1) - idx[0] + 1 !== idx.length) {
        return { error: 'Those times are not one window: choose adjacent times, or add a second preference.',
          focus: chips.firstChild };
      }
      return { detail: { start: WINDOWS[idx[0]].start, end: WINDOWS[idx.at(-1)].end, weekdaysOnly } };
    },
  };
}

const PARTS = { language: languageParts, 'communication-channels': channelParts, 'contact-time-window': windowParts };

// An editor for a structured kind. `detail` and `note` prefill it (editing).
// Returns { el, isEmpty(), read() }; read() gives { detail, note, text } or
// { error, focus } (what to fix, and where).
export function structuredEditor(kindId, { detail = null, note = '' } = {}) {
  ensureLanguageList();
  const n = ++seq;
  const preview = h('p', { class: 'preview meta', 'aria-live': 'polite' });
  const noteInput = h('input', { id: `pref-note-${n}`, type: 'text', class: 'pref-note', autocomplete: 'off', value: note });
  const update = () => {
    const r = parts.read();
    preview.textContent = r.error ? '' : `Will be saved as: “${preferenceText(kindId, r.detail, noteInput.value.trim())}”`;
  };
  const parts = PARTS[kindId](n, detail, update);
  noteInput.addEventListener('input', update);
  const el = h('div', { class: 'structured', dataset: { kind: kindId } }, ...parts.nodes,
    h('label', { for: noteInput.id }, 'Anything else, in their words (optional)'), noteInput, preview);
  update();
  return {
    el,
    isEmpty: () => parts.isEmpty() && !noteInput.value.trim(),
    read() {
      const r = parts.read();
      if (r.error) return r;
      const text = noteInput.value.trim();
      return { detail: r.detail, note: text, text: preferenceText(kindId, r.detail, text) };
    },
  };
}
