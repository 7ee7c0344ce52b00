// A tiny element builder. Text always goes in as text nodes (never HTML), so
// whatever a patient said is shown exactly and cannot inject markup.
const SVG_NS = 'http://www.w3.org/2000/svg';

function build(el, attrs, children) {
  for (const [k, v] of Object.entries(attrs || {})) {
    if (v === undefined || v === null || v === false) continue;
    if (k === 'class') el.setAttribute('class', Array.isArray(v) ? v.filter(Boolean).join(' ') : v);
    else if (k === 'dataset') Object.assign(el.dataset, v);
    else if (k.startsWith('on') && typeof v === 'function') el.addEventListener(k.slice(2), v);
    else if (k === 'text') el.textContent = v;
    else el.setAttribute(k, v === true ? '' : String(v));
  }
  for (const c of children.flat(Infinity)) {
    if (c === undefined || c === null || c === false) continue;
    el.append(c instanceof Node ? c : document.createTextNode(String(c)));
  }
  return el;
}

export function h(tag, attrs, ...children) {
  return build(document.createElement(tag), attrs, children);
}

export function s(tag, attrs, ...children) {
  return build(document.createElementNS(SVG_NS, tag), attrs, children);
}

export const $ = (sel, root = document) => root.querySelector(sel);

export function show(el, visible) {
  el.hidden = !visible;
}

const DATE_TIME = new Intl.DateTimeFormat(undefined, { day: 'numeric', month: 'short', year: 'numeric',
  hour: '2-digit', minute: '2-digit' });
const DATE = new Intl.DateTimeFormat(undefined, { day: 'numeric', month: 'short', year: 'numeric' });
const SHORT = new Intl.DateTimeFormat(undefined, { day: 'numeric', month: 'short' });

export function fmtDateTime(iso) {
  const d = new Date(iso);
  return Number.isNaN(d.getTime()) ? '' : DATE_TIME.format(d);
}

// A FHIR date (YYYY, YYYY-MM or YYYY-MM-DD) without shifting its day.
export function fmtDate(fhirDate) {
  if (!fhirDate) return '';
  const [y, m, d] = fhirDate.split('-').map(Number);
  if (!m) return String(y);
  if (!d) return new Intl.DateTimeFormat(undefined, { month: 'long', year: 'numeric' }).format(new Date(y, m - 1, 1));
  return DATE.format(new Date(y, m - 1, d));
}

export function fmtShort(iso) {
  const d = new Date(iso);
  return Number.isNaN(d.getTime()) ? '' : SHORT.format(d);
}

const TIME = new Intl.DateTimeFormat(undefined, { hour: '2-digit', minute: '2-digit' });

// "15:50" in the device's time zone.
export function fmtTime(iso) {
  const d = new Date(iso);
  return Number.isNaN(d.getTime()) ? '' : TIME.format(d);
}
