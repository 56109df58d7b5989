/**
 * The policy store: named policies written with the Action's input names,
 * attached to an organisation, repository, workflow or job; the most
 * specific attachment wins. `resolve` is what the Action and agent call at start.
 */
import { Type } from '@sinclair/typebox';
import type { FastifyInstance } from 'fastify';
import { RunwallError } from '../../protocol/index.js';
import { parsePolicyFile } from '../../policy/index.js';
import type { PolicyFields, PolicyScope, ResolveQuery, StoredPolicy } from '../store/types.js';
import type { ApiContext } from './context.js';
import { principalOf } from './context.js';
import { bodyChecker, checkQuery } from './params.js';

/** Keys of a policy-store policy: the Action's inputs that describe a policy. */
export const POLICY_STORE_KEYS = [
  'egress-policy',
  'allowed-endpoints',
  'disable-file-monitoring',
  'disable-sudo',
  'disable-sudo-and-containers',
  'disable-telemetry',
] as const;

const NAME = /^[A-Za-z0-9][A-Za-z0-9._-]{0,99}$/;

function checkName(name: string): string {
  if (!NAME.test(name)) {
    throw new RunwallError('RW_PAYLOAD_INVALID', `policy name '${name.slice(0, 100)}' must be 1-100 letters, digits, '.', '_' or '-', starting with a letter or digit`);
  }
  return name;
}

/** A policy body (the Action's inputs as JSON) to stored fields; errors are RW_POLICY_INVALID / RW_ENDPOINT_INVALID / RW_MODE_INVALID. */
export function parsePolicyBody(body: unknown, name: string): PolicyFields {
  const where = `policy '${name}'`;
  if (body === null || typeof body !== 'object' || Array.isArray(body)) {
    throw new RunwallError('RW_POLICY_INVALID', `${where}: the body must be a JSON object with keys ${POLICY_STORE_KEYS.join(', ')}`);
  }
  for (const key of Object.keys(body)) {
    if (!(POLICY_STORE_KEYS as readonly string[]).includes(key)) {
      throw new RunwallError('RW_POLICY_INVALID', `${where}: unknown key '${key}' (known: ${POLICY_STORE_KEYS.join(', ')})`, { key });
    }
  }
  if (!('egress-policy' in body)) throw new RunwallError('RW_POLICY_INVALID', `${where}: 'egress-policy' is required (audit or block)`, { key: 'egress-policy' });
  // JSON is YAML: the policy part's own policy-file parser validates every field the same way a file is validated.
  const settings = parsePolicyFile(JSON.stringify(body), where);
  return {
    egressPolicy: settings.egressPolicy ?? 'block',
    allowedEndpoints: (settings.allowedEndpoints ?? []).map((e) => e.text),
    disableFileMonitoring: settings.disableFileMonitoring ?? false,
    disableSudo: settings.disableSudo ?? false,
    disableSudoAndContainers: settings.disableSudoAndContainers ?? false,
    disableTelemetry: settings.disableTelemetry ?? false,
  };
}

/** The stored fields as the Action's inputs (all strings, as workflow inputs are). */
export function actionInputs(fields: PolicyFields): Record<(typeof POLICY_STORE_KEYS)[number], string> {
  return {
    'egress-policy': fields.egressPolicy,
    'allowed-endpoints': fields.allowedEndpoints.join('\n'),
    'disable-file-monitoring': String(fields.disableFileMonitoring),
    'disable-sudo': String(fields.disableSudo),
    'disable-sudo-and-containers': String(fields.disableSudoAndContainers),
    'disable-telemetry': String(fields.disableTelemetry),
  };
}

function policyView(policy: StoredPolicy) {
  return { ...policy, inputs: actionInputs(policy.fields) };
}

const ScopeBody = Type.Object(
  {
    org: Type.String({ minLength: 1, maxLength: 100 }),
    repo: Type.Optional(Type.String({ minLength: 1, maxLength: 200 })),
    workflow: Type.Optional(Type.String({ minLength: 1, maxLength: 200 })),
    job: Type.Optional(Type.String({ minLength: 1, maxLength: 200 })),
  },
  { additionalProperties: false },
);

const AttachBody = Type.Object(
  {
    policy: Type.String({ minLength: 1, maxLength: 100 }),
    org: Type.String({ minLength: 1, maxLength: 100 }),
    repo: Type.Optional(Type.String({ minLength: 1, maxLength: 200 })),
    workflow: Type.Optional(Type.String({ minLength: 1, maxLength: 200 })),
    job: Type.Optional(Type.String({ minLength: 1, maxLength: 200 })),
  },
  { additionalProperties: false },
);

/** A scope from its parts: each level needs the ones above it, and a repo belongs to its org. */
export function scopeOf(input: { org: string; repo?: string | undefined; workflow?: string | undefined; job?: string | undefined }, code: 'RW_PAYLOAD_INVALID' | 'RW_QUERY_INVALID'): PolicyScope {
  const { org, repo, workflow, job } = input;
  if (job !== undefined && workflow === undefined) throw new RunwallError(code, 'a job scope needs its workflow (and repo)');
  if (workflow !== undefined && repo === undefined) throw new RunwallError(code, 'a workflow scope needs its repo');
  if (repo !== undefined) {
    const [owner, name, extra] = repo.split('/');
    if (!owner || !name || extra !== undefined) throw new RunwallError(code, `repo must be 'owner/name', not '${repo}'`);
    if (owner.toLowerCase() !== org.toLowerCase()) throw new RunwallError(code, `repo '${repo}' does not belong to org '${org}'`);
  }
  const level = job !== undefined ? 'job' : workflow !== undefined ? 'workflow' : repo !== undefined ? 'repo' : 'org';
  return { level, org, repo: repo ?? null, workflow: workflow ?? null, job: job ?? null };
}

export function registerPolicyRoutes(app: FastifyInstance, ctx: ApiContext): void {
  const checkAttach = bodyChecker(AttachBody, 'not a policy attachment');
  const checkScope = bodyChecker(ScopeBody, 'not a policy scope');

  app.get('/api/v1/policies', { config: { access: 'read' } }, async (request) => {
    const principal = principalOf(request);
    checkQuery(request.query as Record<string, string>, []);
    return { policies: (await ctx.store.listPolicies(principal.tenantId)).map(policyView) };
  });

  app.get<{ Params: { name: string } }>('/api/v1/policies/:name', { config: { access: 'read' } }, async (request) => {
    const principal = principalOf(request);
    checkQuery(request.query as Record<string, string>, []);
    const policy = await ctx.store.getPolicy(principal.tenantId, request.params.name);
    if (!policy) throw new RunwallError('RW_NOT_FOUND', `no policy named '${request.params.name}'`);
    return policyView(policy);
  });

  app.put<{ Params: { name: string } }>('/api/v1/policies/:name', { config: { access: 'manage' } }, async (request, reply) => {
    const principal = principalOf(request);
    const name = checkName(request.params.name);
    const fields = parsePolicyBody(request.body, name);
    // If-Match: "<version>" makes the write conditional (optimistic concurrency between two editors).
    const ifMatch = request.headers['if-match'];
    let expected: number | undefined;
    if (ifMatch !== undefined) {
      const match = /^"?(\d+)"?$/.exec(String(ifMatch));
      if (!match) throw new RunwallError('RW_PAYLOAD_INVALID', `If-Match must be a policy version such as "3", not ${String(ifMatch)}`);
      expected = Number(match[1]);
    }
    const existed = (await ctx.store.getPolicy(principal.tenantId, name)) !== null;
    const stored = await ctx.store.putPolicy(principal.tenantId, name, fields, principal.name, ctx.now(), expected);
    reply.header('etag', `"${stored.version}"`);
    return reply.code(existed ? 200 : 201).send(policyView(stored));
  });

  app.delete<{ Params: { name: string } }>('/api/v1/policies/:name', { config: { access: 'manage' } }, async (request, reply) => {
    const principal = principalOf(request);
    if (!(await ctx.store.deletePolicy(principal.tenantId, request.params.name))) {
      throw new RunwallError('RW_NOT_FOUND', `no policy named '${request.params.name}'`);
    }
    return reply.code(204).send();
  });

  app.get('/api/v1/policy-attachments', { config: { access: 'read' } }, async (request) => {
    const principal = principalOf(request);
    checkQuery(request.query as Record<string, string>, []);
    return { attachments: await ctx.store.listAttachments(principal.tenantId) };
  });

  app.put('/api/v1/policy-attachments', { config: { access: 'manage' } }, async (request) => {
    const principal = principalOf(request);
    const body = checkAttach(request.body);
    const scope = scopeOf(body, 'RW_PAYLOAD_INVALID');
    return ctx.store.attachPolicy(principal.tenantId, scope, body.policy, ctx.now());
  });

  app.delete('/api/v1/policy-attachments', { config: { access: 'manage' } }, async (request, reply) => {
    const principal = principalOf(request);
    const scope = scopeOf(checkScope(request.body), 'RW_PAYLOAD_INVALID');
    if (!(await ctx.store.detachPolicy(principal.tenantId, scope))) throw new RunwallError('RW_NOT_FOUND', 'no policy is attached at that scope');
    return reply.code(204).send();
  });

  app.get('/api/v1/policy/resolve', { config: { access: 'config' } }, async (request) => {
    const principal = principalOf(request);
    const q = checkQuery(request.query as Record<string, string>, ['org', 'repo', 'workflow', 'job']);
    if (q.org === undefined || q.org === '') throw new RunwallError('RW_QUERY_INVALID', "org is required (the repository's owner)", { parameter: 'org' });
    const scope = scopeOf({ org: q.org, repo: q.repo, workflow: q.workflow, job: q.job }, 'RW_QUERY_INVALID');
    const query: ResolveQuery = {
      org: scope.org,
      ...(scope.repo ? { repo: scope.repo } : {}),
      ...(scope.workflow ? { workflow: scope.workflow } : {}),
      ...(scope.job ? { job: scope.job } : {}),
    };
    const resolved = await ctx.store.resolvePolicy(principal.tenantId, query);
    if (!resolved) {
      throw new RunwallError('RW_NOT_FOUND', `no policy is attached for ${[q.org, q.repo, q.workflow, q.job].filter(Boolean).join(' › ')} or any scope above it`);
    }
    return { policy: policyView(resolved.policy), attachment: resolved.attachment };
  });

}
