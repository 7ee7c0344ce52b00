// Goal progress: goal-attainment scores (-2..+2) over time as a small inline
// SVG line chart, with a text equivalent for screen readers.
import { GAS } from './fhir.js';
import { fmtShort, h, s } from './dom.js';

const W = 320;
const H = 132;
const LEFT = 34;
const RIGHT = 12;
const TOP = 10;
const BOTTOM = 24;

function label(score) {
  return GAS.find((g) => g.score === score)?.label || '';
}

function signed(n) {
  return n > 0 ? `+${n}` : String(n);
}

// points: [{ time: ISO string, score: -2..2 }] (any order)
export function scoreChart(points, title) {
  const pts = points.filter((p) => p.score !== null && p.time).sort((a, b) => a.time.localeCompare(b.time));
  const fig = h('figure', { class: 'chart' });
  if (pts.length === 0) {
    fig.append(h('figcaption', { class: 'meta' }, 'No progress scores yet.'));
    return fig;
  }
  const t0 = Date.parse(pts[0].time);
  const t1 = Date.parse(pts[pts.length - 1].time);
  const span = t1 - t0;
  const x = (p, i) => {
    if (pts.length === 1) return LEFT + (W - LEFT - RIGHT) / 2;
    const f = span > 0 ? (Date.parse(p.time) - t0) / span : i / (pts.length - 1);
    return LEFT + f * (W - LEFT - RIGHT);
  };
  const y = (score) => TOP + ((2 - score) / 4) * (H - TOP - BOTTOM);
  const last = pts[pts.length - 1];
  const summary = `${title}: ${pts.length} score${pts.length === 1 ? '' : 's'}, latest ${signed(last.score)} `
    + `(${label(last.score)}) on ${fmtShort(last.time)}.`;

  const svg = s('svg', { viewBox: `0 0 ${W} ${H}`, role: 'img', 'aria-label': summary, class: 'chart-svg',
    focusable: 'false' });
  for (const g of [2, 1, 0, -1, -2]) {
    svg.append(s('line', { x1: LEFT, x2: W - RIGHT, y1: y(g), y2: y(g), class: g === 0 ? 'grid grid-zero' : 'grid' }));
    svg.append(s('text', { x: LEFT - 8, y: y(g) + 5, 'text-anchor': 'end', class: 'axis' }, signed(g)));
  }
  if (pts.length > 1) {
    svg.append(s('polyline', { points: pts.map((p, i) => `${x(p, i).toFixed(1)},${y(p.score).toFixed(1)}`).join(' '),
      class: 'line', fill: 'none' }));
  }
  pts.forEach((p, i) => {
    svg.append(s('circle', { cx: x(p, i).toFixed(1), cy: y(p.score).toFixed(1), r: 6, class: 'dot' }));
  });
  svg.append(s('text', { x: LEFT, y: H - 6, class: 'axis' }, fmtShort(pts[0].time)));
  if (pts.length > 1) {
    svg.append(s('text', { x: W - RIGHT, y: H - 6, 'text-anchor': 'end', class: 'axis' }, fmtShort(last.time)));
  }
  fig.append(svg);
  // The same numbers as text (hidden visually; the image has a summary).
  fig.append(h('figcaption', { class: 'visually-hidden' },
    h('ul', null, pts.map((p) => h('li', null, `${fmtShort(p.time)}: ${signed(p.score)} ${label(p.score)}`)))));
  return fig;
}
