/** Events over time as stacked bars in inline SVG (no chart library). */
import type { Timeline } from './api-types.js';
import { h } from './dom.js';

const SVG = 'http://www.w3.org/2000/svg';
const SERIES = [
  ['allowed', 'Allowed', '#1f7a3a'],
  ['audit', 'Audit', '#9a6700'],
  ['blocked', 'Blocked', '#b42318'],
  ['attackBlocked', 'Attack Blocked', '#7a0b9a'],
  ['other', 'Other events', '#98a2b3'],
] as const;

function svg<K extends keyof SVGElementTagNameMap>(tag: K, attributes: Record<string, string | number>): SVGElementTagNameMap[K] {
  const element = document.createElementNS(SVG, tag);
  for (const [name, value] of Object.entries(attributes)) element.setAttribute(name, String(value));
  return element;
}

export function timelineChart(timeline: Timeline, width = 900, height = 160): HTMLElement {
  const pad = { left: 40, right: 10, top: 10, bottom: 22 };
  const innerW = width - pad.left - pad.right;
  const innerH = height - pad.top - pad.bottom;
  const totals = timeline.buckets.map((b) => b.allowed + b.audit + b.blocked + b.attackBlocked + b.other);
  const max = Math.max(1, ...totals);
  const root = svg('svg', { class: 'chart', width, height, viewBox: `0 0 ${width} ${height}`, role: 'img', 'aria-label': 'Events over time' });
  root.appendChild(svg('line', { x1: pad.left, y1: pad.top + innerH, x2: pad.left + innerW, y2: pad.top + innerH, stroke: '#cfd5df' }));
  const maxLabel = svg('text', { x: pad.left - 6, y: pad.top + 10, 'text-anchor': 'end', 'font-size': 11, fill: '#667085' });
  maxLabel.textContent = String(max);
  root.appendChild(maxLabel);
  const slot = innerW / Math.max(1, timeline.buckets.length);
  timeline.buckets.forEach((bucket, i) => {
    let y = pad.top + innerH;
    for (const [key, label, colour] of SERIES) {
      const value = bucket[key];
      if (value <= 0) continue;
      const barH = (value / max) * innerH;
      y -= barH;
      const rect = svg('rect', { x: pad.left + i * slot + 1, y, width: Math.max(1, slot - 2), height: barH, fill: colour, 'data-series': key });
      const title = svg('title', {});
      title.textContent = `${label}: ${value} (${new Date(timeline.startMs + i * timeline.bucketMs).toISOString()})`;
      rect.appendChild(title);
      root.appendChild(rect);
    }
  });
  const seconds = (timeline.bucketMs * timeline.buckets.length) / 1000;
  for (const [x, text, anchor] of [
    [pad.left, '0 s', 'start'],
    [pad.left + innerW, `${seconds < 10 ? seconds.toFixed(1) : Math.round(seconds)} s`, 'end'],
  ] as const) {
    const label = svg('text', { x, y: height - 6, 'text-anchor': anchor, 'font-size': 11, fill: '#667085' });
    label.textContent = text;
    root.appendChild(label);
  }
  const legend = h('div', { className: 'legend' }, SERIES.map(([, label, colour]) => h('span', {}, swatch(colour), label)));
  const wrap = h('div');
  wrap.appendChild(root as unknown as Node);
  wrap.appendChild(legend);
  return wrap;
}

function swatch(colour: string): HTMLElement {
  const element = h('i');
  element.style.background = colour;
  return element;
}
