/** One run: Summary, Network, Processes, Files, Recommended policy, Token permissions. */
import type { AgentEvent, FileEvent, HttpEvent, RunEvent } from '../../protocol/index.js';
import { api, message, query } from './api.js';
import type { EventPage, NetworkTree, ProcessNode, ProcessTree, Recommendation, Replay, RunDetail, RunResponse, Timeline } from './api-types.js';
import { timelineChart } from './chart.js';
import { code, duration, errorBox, h, pagedTable, replace, severityBadge, verdictBadge, when } from './dom.js';

export const TABS = [
  ['summary', 'Summary'],
  ['network', 'Network'],
  ['processes', 'Processes'],
  ['files', 'Files'],
  ['recommended', 'Recommended policy'],
  ['permissions', 'Token permissions'],
] as const;
export type Tab = (typeof TABS)[number][0];

export function isTab(value: string): value is Tab {
  return TABS.some(([id]) => id === value);
}

const enc = encodeURIComponent;

export async function runPage(root: HTMLElement, runId: string, tab: Tab): Promise<void> {
  replace(root, h('p', { className: 'muted' }, 'Loading…'));
  let data: RunResponse;
  try {
    data = await api<RunResponse>('GET', `/runs/${enc(runId)}`);
  } catch (error) {
    replace(root, h('p', {}, h('a', { href: '#/runs' }, '← Runs')), errorBox(message(error)));
    return;
  }
  const run = data.run;
  const tabs = h(
    'nav',
    { className: 'tabs' },
    TABS.map(([id, label]) => h('a', { href: `#/runs/${enc(runId)}/${id}`, className: id === tab ? 'active' : '', 'data-tab': id }, label)),
  );
  const body = h('div', { id: 'tab-body' });
  replace(root, h('p', {}, h('a', { href: '#/runs' }, '← Runs')), header(run, data.check), tabs, body);
  try {
    switch (tab) {
      case 'summary':
        await summaryTab(body, run);
        break;
      case 'network':
        await networkTab(body, run);
        break;
      case 'processes':
        await processesTab(body, run);
        break;
      case 'files':
        filesTab(body, run);
        break;
      case 'recommended':
        await recommendedTab(body, run);
        break;
      case 'permissions':
        await permissionsTab(body, run);
        break;
    }
  } catch (error) {
    replace(body, errorBox(message(error)));
  }
}

function header(run: RunDetail, check: RunResponse['check']): HTMLElement {
  const job = [run.repo, run.workflow, run.job].filter(Boolean).join(' › ') || run.host || 'run';
  return h(
    'div',
    { className: 'card' },
    h('h1', {}, verdictBadge(run.verdict), ' ', job),
    h(
      'div',
      { className: 'muted' },
      `run ${run.runId} · ${run.mode ?? 'unknown'} mode · ${run.surface ?? '?'} on ${run.host ?? '?'} · started ${when(run.startedAt)} · ${duration(run.startedAt, run.endedAt)}`,
      run.exitCode === null ? '' : ` · exit ${run.exitCode}`,
      run.sha ? ` · commit ${run.sha.slice(0, 12)}` : '',
      check ? ` · GitHub check ${check.state}` : '',
    ),
    run.complete ? null : h('div', { className: 'notice' }, 'Partial run: event batches arrived, the final report has not (yet).'),
  );
}

function countCards(run: RunDetail): HTMLElement {
  const c = run.counts;
  const card = (label: string, value: number) => h('div', { className: 'count' }, h('b', {}, value), label);
  return h(
    'div',
    { className: 'counts' },
    card('events', c.events),
    card('allowed', c.allowed),
    card('audit (would block)', c.audit),
    card('blocked', c.blocked),
    card('attack blocked', c.attackBlocked),
    card('detections', c.detections),
  );
}

/** Every event of some kinds, following the API's pages (bounded). */
async function allEvents(runId: string, kind: string, max = 5000): Promise<RunEvent[]> {
  const out: RunEvent[] = [];
  let after = 0;
  for (let page = 0; page < Math.ceil(max / 1000); page++) {
    const data = await api<EventPage>('GET', `/runs/${enc(runId)}/events${query({ kind, after, limit: 1000 })}`);
    out.push(...data.events);
    if (data.nextAfter === null) break;
    after = data.nextAfter;
  }
  return out;
}

async function summaryTab(body: HTMLElement, run: RunDetail): Promise<void> {
  const [timeline, http, agent] = await Promise.all([
    api<Timeline>('GET', `/runs/${enc(run.runId)}/timeline${query({ buckets: 60 })}`),
    allEvents(run.runId, 'http'),
    allEvents(run.runId, 'agent'),
  ]);
  const destinations = run.report?.summary.destinations ?? [];
  const tamper = agent.filter((e): e is AgentEvent => e.kind === 'agent' && (e.action === 'tamper' || e.action === 'fail-closed' || e.action === 'error'));
  const problems = run.report?.enforcement.problems ?? [];
  replace(
    body,
    countCards(run),
    h('h2', {}, 'Events over time'),
    timelineChart(timeline),
    h('h2', {}, 'Detections'),
    pagedTable(
      ['Severity', 'Detection', 'Evidence', 'What to do'],
      run.detections.map((d) => [
        severityBadge(d.severity),
        h('div', {}, h('b', {}, d.title), h('div', { className: 'muted' }, `${d.id} · ${d.source === 'server' ? 'baseline' : 'agent'}`)),
        code(JSON.stringify(d.evidence)),
        document.createTextNode(d.remedy),
      ]),
      20,
      'No detections in this run.',
    ),
    run.report?.steps?.length
      ? h(
          'div',
          {},
          h('h2', {}, 'Steps'),
          pagedTable(
            ['Step', 'Outcome', 'Events', 'Started', 'Notes'],
            run.report.steps.map((step) => [
              h('b', {}, step.name),
              document.createTextNode(step.conclusion ?? step.outcome ?? 'running'),
              document.createTextNode(String(step.events)),
              document.createTextNode(when(step.startedAt ?? null)),
              document.createTextNode([step.reason, ...(step.notes ?? [])].filter(Boolean).join('; ')),
            ]),
            25,
          ),
        )
      : null,
    h('h2', {}, 'Outbound destinations'),
    run.report
      ? pagedTable(
          ['Verdict', 'Destination', 'Port', 'Protocol', 'Count', 'Processes'],
          destinations.map((d) => [
            verdictBadge(d.verdict),
            code(d.name),
            document.createTextNode(d.port === null ? '—' : String(d.port)),
            document.createTextNode(d.protocol),
            document.createTextNode(String(d.count)),
            document.createTextNode((d.chains?.length ? d.chains : d.processes).join(', ') || '—'),
          ]),
          25,
          'No outbound destinations.',
        )
      : h('p', { className: 'muted' }, 'The summary comes with the final report; the Network tab shows the events received so far.'),
    h('h2', {}, 'HTTPS requests'),
    pagedTable(
      ['Verdict', 'Host', 'Request', 'Status'],
      http
        .filter((e): e is HttpEvent => e.kind === 'http')
        .map((e) => [verdictBadge(e.verdict), code(`${e.host}:${e.port}`), code(e.method || e.path ? `${e.method ?? ''} ${e.path ?? ''}`.trim() : 'TLS (SNI only)'), document.createTextNode(e.status === undefined ? '—' : String(e.status))]),
      25,
      'No HTTPS requests recorded.',
    ),
    h('h2', {}, 'Tamper findings and enforcement'),
    run.report
      ? h(
          'p',
          {},
          run.report.enforcement.enforced ? 'Block mode held from start to end.' : 'Block mode was not enforced for the whole run.',
          run.report.enforcement.failClosed ? ' Something failed and the job was left blocked (fail closed).' : '',
        )
      : null,
    pagedTable(
      ['Time', 'What', 'Message'],
      [
        ...tamper.map((e) => [document.createTextNode(when(e.time)), document.createTextNode(e.action), document.createTextNode(e.message)]),
        ...problems.map((p) => [document.createTextNode(when(p.time)), document.createTextNode(p.code), document.createTextNode(p.message)]),
      ],
      20,
      'No tampering or enforcement problems recorded.',
    ),
  );
}

async function networkTab(body: HTMLElement, run: RunDetail): Promise<void> {
  const tree = await api<NetworkTree>('GET', `/runs/${enc(run.runId)}/network`);
  if (tree.steps.length === 0) {
    replace(body, h('p', { className: 'muted' }, 'No network events in this run.'));
    return;
  }
  const noSteps = tree.steps.every((s) => s.id === null);
  replace(
    body,
    h('p', { className: 'muted' }, `${tree.events} network events, by step → process chain → destination.`, noSteps ? ' This run recorded no steps.' : '', tree.truncated ? ' (Truncated: the run has more events than this view reads.)' : ''),
    h(
      'ul',
      { className: 'tree root', id: 'network-tree' },
      tree.steps.map((step) =>
        h(
          'li',
          { 'data-step': step.name },
          h('b', {}, step.name),
          h(
            'ul',
            { className: 'tree' },
            step.processes.map((p) =>
              h(
                'li',
                {},
                h('span', { className: 'chain' }, p.chain.join(' › ')),
                p.pid === null ? null : h('span', { className: 'muted' }, ` (pid ${p.pid})`),
                h(
                  'ul',
                  { className: 'tree' },
                  p.destinations.map((d) => h('li', { 'data-destination': d.destination }, verdictBadge(d.verdict), ' ', code(d.destination), h('span', { className: 'muted' }, ` ×${d.count} · ${d.kinds.join(', ')}`))),
                ),
              ),
            ),
          ),
        ),
      ),
    ),
  );
}

function processItem(node: ProcessNode, depth: number): HTMLElement {
  const net = node.network;
  const netText = [
    net.allowed ? `${net.allowed} allowed` : '',
    net.audit ? `${net.audit} audit` : '',
    net.blocked ? `${net.blocked} blocked` : '',
    net['attack-blocked'] ? `${net['attack-blocked']} attack blocked` : '',
  ].filter(Boolean);
  return h(
    'li',
    { 'data-pid': node.pid },
    h('span', { className: 'chain' }, node.exe ?? `pid ${node.pid}`),
    h('span', { className: 'muted' }, ` pid ${node.pid}`, node.argv ? ` · ${node.argv.join(' ').slice(0, 200)}` : '', node.exitCode === null ? '' : ` · exit ${node.exitCode}`, netText.length ? ` · network: ${netText.join(', ')}` : ''),
    node.children.length && depth < 60 ? h('ul', { className: 'tree' }, node.children.map((c) => processItem(c, depth + 1))) : null,
  );
}

async function processesTab(body: HTMLElement, run: RunDetail): Promise<void> {
  const tree = await api<ProcessTree>('GET', `/runs/${enc(run.runId)}/processes`);
  replace(
    body,
    tree.processes === 0
      ? h('p', { className: 'muted' }, 'No processes were recorded for this run.')
      : h('div', {}, h('p', { className: 'muted' }, `${tree.processes} processes`, tree.truncated ? ' (truncated)' : ''), h('ul', { className: 'tree root', id: 'process-tree' }, tree.roots.map((r) => processItem(r, 0)))),
  );
}

/** File events, paged by the API (one page of 100 at a time). */
function filesTab(body: HTMLElement, run: RunDetail): void {
  const afters: number[] = [0];
  let page = 0;
  const load = async () => {
    const data = await api<EventPage>('GET', `/runs/${enc(run.runId)}/events${query({ kind: 'file', after: afters[page], limit: 100 })}`);
    if (data.nextAfter !== null) afters[page + 1] = data.nextAfter;
    const files = data.events.filter((e): e is FileEvent => e.kind === 'file');
    const rows = files.map((f) =>
      h('tr', {}, h('td', {}, when(f.time)), h('td', {}, f.action), h('td', {}, code(f.to ? `${f.path} → ${f.to}` : f.path)), h('td', {}, f.source ? 'source file' : ''), h('td', {}, f.process?.exe ?? '—')),
    );
    replace(
      body,
      files.length === 0 && page === 0
        ? h('p', { className: 'muted' }, run.report?.policy.disableFileMonitoring ? 'File monitoring was disabled for this run.' : 'No file events were recorded for this run.')
        : h(
            'div',
            {},
            h('table', { id: 'files' }, h('thead', {}, h('tr', {}, ['Time', 'Action', 'Path', '', 'Process'].map((x) => h('th', {}, x)))), h('tbody', {}, rows)),
            h(
              'div',
              { className: 'pager' },
              h('button', { className: 'secondary', disabled: page === 0, onclick: () => { page--; void load(); } }, 'Previous'),
              h('button', { className: 'secondary', disabled: data.nextAfter === null, onclick: () => { page++; void load(); } }, 'Next'),
              h('span', { className: 'muted' }, `Page ${page + 1}`),
            ),
          ),
    );
  };
  load().catch((error: unknown) => replace(body, errorBox(message(error))));
}

async function recommendedTab(body: HTMLElement, run: RunDetail): Promise<void> {
  const rec = await api<Recommendation>('GET', `/runs/${enc(run.runId)}/recommendation${query({ runs: 10 })}`);
  const inForceText =
    rec.inForce.source === 'policy-store'
      ? `policy '${rec.inForce.policy}' from the policy store (${rec.inForce.mode} mode)`
      : rec.inForce.source === 'run'
        ? `the policy this run was enforced with (${rec.inForce.mode} mode)`
        : 'no policy';
  const diffList = h(
    'ul',
    { id: 'policy-diff' },
    rec.diff.added.map((e) => h('li', { className: 'diff-added' }, '+ ', code(e), ' (needed, not in force)')),
    rec.diff.kept.map((e) => h('li', {}, '  ', code(e))),
    rec.diff.unused.map((e) => h('li', { className: 'diff-unused' }, '− ', code(e), ' (in force, unused)')),
  );
  const candidate = h('textarea', { id: 'candidate', spellcheck: 'false' });
  candidate.value = rec.recommended.allowedEndpointsText;
  const runsInput = h('input', { id: 'replay-runs', type: 'number', min: 1, max: 50, value: 10 });
  const replayOut = h('div', { id: 'replay' });
  const replay = async () => {
    replace(replayOut, h('p', { className: 'muted' }, 'Replaying…'));
    try {
      const result = await api<Replay>('POST', `/runs/${enc(run.runId)}/replay`, { allowedEndpoints: candidate.value, runs: Number(runsInput.value) || 10 });
      replace(
        replayOut,
        h(
          'table',
          {},
          h('thead', {}, h('tr', {}, ['Run', 'Started', 'Verdict then', 'Would block with this policy'].map((x) => h('th', {}, x)))),
          h(
            'tbody',
            {},
            result.runs.map((r) =>
              h(
                'tr',
                { 'data-replay-run': r.runId },
                h('td', {}, h('a', { href: `#/runs/${enc(r.runId)}/summary` }, r.runId)),
                h('td', {}, when(r.startedAt)),
                h('td', {}, verdictBadge(r.verdict)),
                h(
                  'td',
                  {},
                  r.wouldBlock.length === 0
                    ? h('span', { className: 'diff-added' }, `nothing (${r.networkEvents} network events)`)
                    : h('ul', {}, r.wouldBlock.map((w) => h('li', {}, verdictBadge(w.verdict), ' ', code(w.destination), h('span', { className: 'muted' }, ` ×${w.count}`)))),
                ),
              ),
            ),
          ),
        ),
      );
    } catch (error) {
      replace(replayOut, errorBox(message(error)));
    }
  };
  replace(
    body,
    h('p', {}, `Aggregated over ${rec.basedOn.length} run(s) of this job (this one and the ones before it). In force: ${inForceText}.`),
    h('div', { className: 'grid2' },
      h('div', {}, h('h3', {}, 'Recommended allowed-endpoints'), h('pre', { id: 'recommended' }, rec.recommended.allowedEndpointsText || '(none needed)')),
      h('div', {}, h('h3', {}, 'Difference from the policy in force'), rec.diff.added.length + rec.diff.kept.length + rec.diff.unused.length === 0 ? h('p', { className: 'muted' }, 'Both are empty.') : diffList),
    ),
    rec.recommended.excluded.length
      ? h('div', {}, h('h3', {}, 'Left out'), h('ul', {}, rec.recommended.excluded.map((x) => h('li', {}, code(x.destination), ` — ${x.reason}`))))
      : null,
    h('h2', {}, 'Replay before switching to block mode'),
    h('p', { className: 'muted' }, 'What this candidate policy would have blocked in each of the last runs of this job. Edit it and replay.'),
    candidate,
    h('div', { className: 'pager' }, h('label', {}, 'Runs', runsInput), h('button', { id: 'replay-button', onclick: () => void replay() }, 'Replay')),
    replayOut,
  );
}

async function permissionsTab(body: HTMLElement, run: RunDetail): Promise<void> {
  const http = (await allEvents(run.runId, 'http')).filter((e): e is HttpEvent => e.kind === 'http' && /(^|\.)github\.com$|^api\.github\./.test(e.host) && e.method !== undefined);
  replace(
    body,
    h('h2', {}, 'GITHUB_TOKEN permissions'),
    h('p', { id: 'permissions-absent' }, 'Token permissions were not recorded for this run.'),
    http.length
      ? h('div', {}, h('h3', {}, 'GitHub API calls seen'), pagedTable(['Request', 'Status'], http.map((e) => [code(`${e.method ?? ''} ${e.host}${e.path ?? ''}`), document.createTextNode(e.status === undefined ? '—' : String(e.status))]), 25))
      : h('p', { className: 'muted' }, 'No GitHub API calls were inspected in this run.'),
  );
}
