/** Small DOM helpers. Text always goes in through textContent: nothing from the API is parsed as HTML. */
import type { Severity, Verdict } from '../../protocol/index.js';

type Child = Node | string | number | null | undefined | false;
type Props = Record<string, string | number | boolean | ((event: Event) => void) | undefined>;

export function h<K extends keyof HTMLElementTagNameMap>(tag: K, props: Props = {}, ...children: (Child | Child[])[]): HTMLElementTagNameMap[K] {
  const element = document.createElement(tag);
  for (const [name, value] of Object.entries(props)) {
    if (value === undefined || value === false) continue;
    if (typeof value === 'function') element.addEventListener(name.replace(/^on/, '').toLowerCase(), value);
    else if (name === 'className') element.className = String(value);
    else if (name === 'value' && 'value' in element) (element as HTMLInputElement).value = String(value);
    else if (value === true) element.setAttribute(name, '');
    else element.setAttribute(name, String(value));
  }
  append(element, children);
  return element;
}

export function append(parent: Node, children: (Child | Child[])[]): void {
  for (const child of children.flat()) {
    if (child === null || child === undefined || child === false) continue;
    parent.appendChild(typeof child === 'string' || typeof child === 'number' ? document.createTextNode(String(child)) : child);
  }
}

export function replace(parent: Element, ...children: (Child | Child[])[]): void {
  parent.replaceChildren();
  append(parent, children);
}

export const VERDICT_LABEL: Readonly<Record<Verdict, string>> = {
  allowed: 'Allowed',
  audit: 'Audit',
  blocked: 'Blocked',
  'attack-blocked': 'Attack Blocked',
};

export function verdictBadge(verdict: Verdict): HTMLElement {
  return h('span', { className: `badge ${verdict}`, 'data-verdict': verdict }, VERDICT_LABEL[verdict]);
}

export function severityBadge(severity: Severity): HTMLElement {
  return h('span', { className: `badge sev-${severity}` }, severity);
}

export function when(iso: string | null): string {
  if (!iso) return '—';
  const date = new Date(iso);
  return Number.isNaN(date.getTime()) ? iso : date.toISOString().replace('T', ' ').replace(/\.\d+Z$/, 'Z');
}

export function duration(startIso: string, endIso: string | null): string {
  if (!endIso) return '—';
  const ms = Date.parse(endIso) - Date.parse(startIso);
  if (!Number.isFinite(ms) || ms < 0) return '—';
  if (ms < 1000) return `${ms} ms`;
  if (ms < 120_000) return `${(ms / 1000).toFixed(1)} s`;
  return `${Math.round(ms / 60_000)} min`;
}

export function errorBox(message: string): HTMLElement {
  return h('div', { className: 'error', role: 'alert' }, message);
}

/** A table whose rows are paged on the client, `size` at a time. */
export function pagedTable(headers: string[], rows: Node[][], size = 50, empty = 'Nothing recorded.'): HTMLElement {
  const wrap = h('div');
  if (rows.length === 0) {
    wrap.appendChild(h('p', { className: 'muted' }, empty));
    return wrap;
  }
  let page = 0;
  const pages = Math.ceil(rows.length / size);
  const body = h('tbody');
  const info = h('span', { className: 'muted' });
  const prev = h('button', { className: 'secondary', onclick: () => show(page - 1) }, 'Previous');
  const next = h('button', { className: 'secondary', onclick: () => show(page + 1) }, 'Next');
  const show = (p: number) => {
    page = Math.max(0, Math.min(pages - 1, p));
    replace(body, rows.slice(page * size, page * size + size).map((cells) => h('tr', {}, cells.map((c) => h('td', {}, c)))));
    info.textContent = `${page * size + 1}–${Math.min(rows.length, page * size + size)} of ${rows.length}`;
    prev.disabled = page === 0;
    next.disabled = page >= pages - 1;
  };
  wrap.appendChild(h('table', {}, h('thead', {}, h('tr', {}, headers.map((x) => h('th', {}, x)))), body));
  if (pages > 1) wrap.appendChild(h('div', { className: 'pager' }, prev, next, info));
  show(0);
  return wrap;
}

export function code(text: string): HTMLElement {
  return h('code', {}, text);
}
