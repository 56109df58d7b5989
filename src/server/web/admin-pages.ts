/** Administration: the policy store (policies and where they apply) and the global block list with fleet alerts. */
import { api, message, query } from './api.js';
import type { Attachment, BlockEntry, FleetAlert, Me, StoredPolicy } from './api-types.js';
import { code, errorBox, h, pagedTable, replace, when } from './dom.js';

function field(label: string, control: HTMLElement): HTMLElement {
  return h('label', {}, label, control);
}

function checkbox(name: string, checked: boolean): HTMLInputElement {
  return h('input', { type: 'checkbox', name, checked });
}

export async function policiesPage(root: HTMLElement, me: Me): Promise<void> {
  const canManage = me.capabilities.includes('manage');
  const status = h('div');
  const [{ policies }, { attachments }] = await Promise.all([
    api<{ policies: StoredPolicy[] }>('GET', '/policies'),
    api<{ attachments: Attachment[] }>('GET', '/policy-attachments'),
  ]);
  const reload = () => void policiesPage(root, me).catch((error: unknown) => replace(root, errorBox(message(error))));

  const name = h('input', { name: 'name', placeholder: 'app-build', required: true });
  const mode = h('select', { name: 'egress-policy' }, h('option', { value: 'audit' }, 'audit'), h('option', { value: 'block' }, 'block'));
  const endpoints = h('textarea', { name: 'allowed-endpoints', placeholder: 'github.com:443\n*.npmjs.org:443' });
  const flags = {
    'disable-file-monitoring': checkbox('disable-file-monitoring', false),
    'disable-sudo': checkbox('disable-sudo', false),
    'disable-sudo-and-containers': checkbox('disable-sudo-and-containers', false),
    'disable-telemetry': checkbox('disable-telemetry', false),
  };
  const edit = (policy: StoredPolicy) => {
    name.value = policy.name;
    mode.value = policy.fields.egressPolicy;
    endpoints.value = policy.fields.allowedEndpoints.join('\n');
    flags['disable-file-monitoring'].checked = policy.fields.disableFileMonitoring;
    flags['disable-sudo'].checked = policy.fields.disableSudo;
    flags['disable-sudo-and-containers'].checked = policy.fields.disableSudoAndContainers;
    flags['disable-telemetry'].checked = policy.fields.disableTelemetry;
  };
  const save = async (event: Event) => {
    event.preventDefault();
    try {
      const body: Record<string, unknown> = { 'egress-policy': mode.value, 'allowed-endpoints': endpoints.value };
      for (const [key, box] of Object.entries(flags)) body[key] = box.checked;
      await api('PUT', `/policies/${encodeURIComponent(name.value.trim())}`, body);
      reload();
    } catch (error) {
      replace(status, errorBox(message(error)));
    }
  };
  const policyForm = h(
    'form',
    { className: 'card', id: 'policy-form', onsubmit: save },
    h('h3', {}, 'Create or update a policy'),
    h('div', { className: 'pager' }, field('Name', name), field('Egress policy', mode)),
    field('Allowed endpoints (one per line)', endpoints),
    h('div', { className: 'pager' }, Object.entries(flags).map(([key, box]) => h('label', {}, h('span', {}, box, ' ', key)))),
    h('button', { type: 'submit' }, 'Save policy'),
  );

  const attachPolicy = h('select', { name: 'policy' }, policies.map((p) => h('option', { value: p.name }, p.name)));
  const scopeInputs = {
    org: h('input', { name: 'org', placeholder: 'acme', required: true }),
    repo: h('input', { name: 'repo', placeholder: 'acme/app (optional)' }),
    workflow: h('input', { name: 'workflow', placeholder: 'ci.yml (optional)' }),
    job: h('input', { name: 'job', placeholder: 'build (optional)' }),
  };
  const attach = async (event: Event) => {
    event.preventDefault();
    try {
      const body: Record<string, string> = { policy: attachPolicy.value };
      for (const [key, input] of Object.entries(scopeInputs)) if (input.value.trim()) body[key] = input.value.trim();
      await api('PUT', '/policy-attachments', body);
      reload();
    } catch (error) {
      replace(status, errorBox(message(error)));
    }
  };
  const detach = async (a: Attachment) => {
    try {
      const body: Record<string, string> = { org: a.scope.org };
      if (a.scope.repo) body.repo = a.scope.repo;
      if (a.scope.workflow) body.workflow = a.scope.workflow;
      if (a.scope.job) body.job = a.scope.job;
      await api('DELETE', '/policy-attachments', body);
      reload();
    } catch (error) {
      replace(status, errorBox(message(error)));
    }
  };

  replace(
    root,
    h('h1', {}, 'Policy store'),
    h('p', { className: 'muted' }, "Named policies with the Action's fields. The Action and agent ask for the policy of (org, repo, workflow, job); the most specific attachment wins."),
    status,
    h('h2', {}, 'Policies'),
    pagedTable(
      ['Name', 'Mode', 'Allowed endpoints', 'Version', 'Updated', ''],
      policies.map((p) => [
        h('b', { 'data-policy': p.name }, p.name),
        document.createTextNode(p.fields.egressPolicy),
        h('div', {}, p.fields.allowedEndpoints.length ? p.fields.allowedEndpoints.map((e) => h('div', {}, code(e))) : h('span', { className: 'muted' }, 'none')),
        document.createTextNode(String(p.version)),
        document.createTextNode(`${when(p.updatedAt)} by ${p.updatedBy}`),
        canManage ? h('button', { className: 'secondary', onclick: () => edit(p) }, 'Edit') : document.createTextNode(''),
      ]),
      25,
      'No policies yet.',
    ),
    canManage ? policyForm : null,
    h('h2', {}, 'Where they apply'),
    pagedTable(
      ['Level', 'Scope', 'Policy', ''],
      attachments.map((a) => [
        document.createTextNode(a.scope.level),
        code([a.scope.org, a.scope.repo, a.scope.workflow, a.scope.job].filter(Boolean).join(' › ')),
        document.createTextNode(a.policy),
        canManage ? h('button', { className: 'secondary', onclick: () => void detach(a) }, 'Detach') : document.createTextNode(''),
      ]),
      25,
      'No policy is attached anywhere.',
    ),
    canManage && policies.length
      ? h('form', { className: 'card inline', id: 'attach-form', onsubmit: attach }, field('Policy', attachPolicy), Object.entries(scopeInputs).map(([key, input]) => field(key, input)), h('button', { type: 'submit' }, 'Attach'))
      : null,
  );
}

export async function blockListPage(root: HTMLElement, me: Me, params: URLSearchParams): Promise<void> {
  const operator = me.capabilities.includes('operate');
  const showRetired = params.get('retired') === '1';
  const status = h('div');
  const list = await api<{ version: number; entries: BlockEntry[] }>('GET', `/blocklist${query({ include: showRetired ? 'retired' : undefined })}`);
  const alerts = operator ? (await api<{ alerts: FleetAlert[] }>('GET', '/fleet-alerts')).alerts : [];
  const reload = () => void blockListPage(root, me, params).catch((error: unknown) => replace(root, errorBox(message(error))));

  const entry = h('input', { name: 'entry', placeholder: 'evil.example, *.evil.example, 203.0.113.7, 2001:db8::/32', required: true });
  const reason = h('input', { name: 'reason', placeholder: 'why it is blocked', required: true });
  const source = h('input', { name: 'source', placeholder: 'advisory or incident (optional)' });
  const add = async (event: Event) => {
    event.preventDefault();
    try {
      await api('POST', '/blocklist', { entry: entry.value.trim(), reason: reason.value.trim(), ...(source.value.trim() ? { source: source.value.trim() } : {}) });
      reload();
    } catch (error) {
      replace(status, errorBox(message(error)));
    }
  };
  const retire = async (id: number) => {
    try {
      await api('DELETE', `/blocklist/${id}`);
      reload();
    } catch (error) {
      replace(status, errorBox(message(error)));
    }
  };
  replace(
    root,
    h('h1', {}, 'Global block list'),
    h('p', { className: 'muted' }, `Version ${list.version}. Denied in every mode and every organisation; agents pick up changes during running jobs. Hits show as Attack Blocked.`),
    status,
    h('p', {}, h('a', { href: showRetired ? '#/admin/blocklist' : '#/admin/blocklist?retired=1' }, showRetired ? 'Hide retired entries' : 'Show retired entries')),
    pagedTable(
      ['Entry', 'Kind', 'Reason', 'Source', 'Added', showRetired ? 'Retired' : '', ''],
      list.entries.map((e) => [
        h('span', { 'data-entry': e.text }, code(e.text)),
        document.createTextNode(e.kind),
        document.createTextNode(e.reason),
        document.createTextNode(e.source ?? '—'),
        document.createTextNode(`${when(e.addedAt)} by ${e.addedBy}`),
        document.createTextNode(e.retiredAt ? `${when(e.retiredAt)} by ${e.retiredBy ?? '?'}` : ''),
        operator && !e.retiredAt ? h('button', { className: 'secondary', onclick: () => void retire(e.id) }, 'Retire') : document.createTextNode(''),
      ]),
      50,
      'The block list is empty.',
    ),
    operator
      ? h('form', { className: 'card inline', id: 'block-form', onsubmit: add }, h('label', {}, 'Entry', entry), h('label', {}, 'Reason', reason), h('label', {}, 'Source', source), h('button', { type: 'submit' }, 'Add to block list'))
      : h('p', { className: 'muted' }, 'Only operators change the global block list.'),
    operator ? h('h2', {}, 'Fleet alerts') : null,
    operator
      ? pagedTable(
          ['Destination', 'Organisations', 'First seen', 'Last seen'],
          alerts.map((a) => [code(a.destination), document.createTextNode(String(a.tenants)), document.createTextNode(when(a.firstSeenAt)), document.createTextNode(when(a.lastSeenAt))]),
          25,
          'No destination has newly appeared in several organisations at once.',
        )
      : null,
  );
}
