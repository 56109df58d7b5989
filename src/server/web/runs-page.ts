/** The runs list: filters, newest first, keyset pages (the API's `next` cursor). */
import type { Verdict } from '../../protocol/index.js';
import { api, message, query } from './api.js';
import type { RunPage } from './api-types.js';
import { duration, errorBox, h, replace, verdictBadge, when } from './dom.js';

const VERDICTS: Verdict[] = ['allowed', 'audit', 'blocked', 'attack-blocked'];
const FILTERS = ['repo', 'workflow', 'job', 'verdict', 'from', 'to'] as const;

export function runsPage(root: HTMLElement, params: URLSearchParams): void {
  const filters: Record<string, string> = {};
  for (const name of FILTERS) {
    const value = params.get(name);
    if (value) filters[name] = value;
  }
  const input = (name: string, label: string, placeholder: string) =>
    h('label', {}, label, h('input', { name, placeholder, value: filters[name] ?? '', 'data-filter': name }));
  const verdictSelect = h(
    'select',
    { name: 'verdict', 'data-filter': 'verdict' },
    h('option', { value: '' }, 'any'),
    VERDICTS.map((v) => h('option', { value: v, selected: filters.verdict === v }, v === 'attack-blocked' ? 'Attack Blocked' : v)),
  );
  const form = h(
    'form',
    { className: 'filters' },
    input('repo', 'Repository', 'owner/name'),
    input('workflow', 'Workflow', 'ci.yml'),
    input('job', 'Job', 'build'),
    h('label', {}, 'Verdict', verdictSelect),
    input('from', 'From', '2026-11-01'),
    input('to', 'To', '2026-12-01'),
    h('button', { type: 'submit' }, 'Filter'),
    h('button', { type: 'button', className: 'secondary', onclick: () => (location.hash = '#/runs') }, 'Clear'),
  );
  form.addEventListener('submit', (event) => {
    event.preventDefault();
    const next = new URLSearchParams();
    for (const element of Array.from(form.querySelectorAll<HTMLInputElement | HTMLSelectElement>('[data-filter]'))) {
      if (element.value.trim()) next.set(element.name, element.value.trim());
    }
    location.hash = `#/runs${next.toString() ? `?${next}` : ''}`;
  });

  const results = h('div');
  replace(root, h('h1', {}, 'Runs'), h('p', { className: 'muted' }, 'Every run across repositories, newest first.'), form, results);

  // Cursors of the pages seen so far, so Previous goes back without an offset query.
  const cursors: (string | null)[] = [null];
  let page = 0;
  const load = async () => {
    replace(results, h('p', { className: 'muted' }, 'Loading…'));
    try {
      const data = await api<RunPage>('GET', `/runs${query({ ...filters, limit: 50, cursor: cursors[page] })}`);
      if (data.next) cursors[page + 1] = data.next;
      const rows = data.runs.map((run) =>
        h(
          'tr',
          { className: 'clickable', 'data-run': run.runId, onclick: () => (location.hash = `#/runs/${encodeURIComponent(run.runId)}/summary`) },
          h('td', {}, verdictBadge(run.verdict)),
          h('td', {}, h('a', { href: `#/runs/${encodeURIComponent(run.runId)}/summary` }, run.runId), run.complete ? null : h('div', { className: 'muted' }, 'partial: report not received yet')),
          h('td', {}, run.repo ?? '—'),
          h('td', {}, run.workflow ?? '—'),
          h('td', {}, run.job ?? '—'),
          h('td', {}, run.mode ?? '—'),
          h('td', {}, when(run.startedAt)),
          h('td', {}, duration(run.startedAt, run.endedAt)),
          h('td', {}, `${run.counts.events}`),
          h('td', {}, `${run.counts.blocked + run.counts.attackBlocked}`),
          h('td', {}, `${run.counts.detections}`),
        ),
      );
      const headers = ['Verdict', 'Run', 'Repository', 'Workflow', 'Job', 'Mode', 'Started', 'Duration', 'Events', 'Blocked', 'Detections'];
      const prev = h('button', { className: 'secondary', disabled: page === 0, onclick: () => { page--; void load(); } }, 'Previous');
      const next = h('button', { className: 'secondary', disabled: !data.next, onclick: () => { page++; void load(); } }, 'Next page');
      replace(
        results,
        data.runs.length === 0
          ? h('p', { className: 'muted' }, 'No runs match these filters.')
          : h('table', { id: 'runs' }, h('thead', {}, h('tr', {}, headers.map((x) => h('th', {}, x)))), h('tbody', {}, rows)),
        h('div', { className: 'pager' }, prev, next, h('span', { className: 'muted' }, `Page ${page + 1}`)),
      );
    } catch (error) {
      replace(results, errorBox(message(error)));
    }
  };
  void load();
}
