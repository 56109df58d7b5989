/**
 * Posts a GitHub check run with a run's verdict, as a GitHub App, through the
 * real Octokit client. The API base URL is configurable (GitHub Enterprise,
 * or a local fake in tests).
 */
import { createSign } from 'node:crypto';
import { Octokit } from '@octokit/rest';
import { RunwallError, type Verdict } from '../protocol/index.js';
import type { RunDetail } from './store/types.js';

export interface GitHubAppConfig {
  readonly appId: string;
  /** PEM private key of the App. */
  readonly privateKey: string;
  /** Default https://api.github.com. */
  readonly baseUrl: string;
  /** Name of the check in the pull request (default `runwall`). */
  readonly checkName: string;
  /** Where the web app is reachable, for the check's details link. */
  readonly publicUrl: string | null;
}

export type CheckConclusion = 'success' | 'neutral' | 'failure';

export function conclusionOf(verdict: Verdict): CheckConclusion {
  switch (verdict) {
    case 'allowed':
      return 'success';
    case 'audit':
      return 'neutral';
    case 'blocked':
    case 'attack-blocked':
      return 'failure';
  }
}

export const VERDICT_LABEL: Readonly<Record<Verdict, string>> = {
  allowed: 'Allowed',
  audit: 'Audit',
  blocked: 'Blocked',
  'attack-blocked': 'Attack Blocked',
};

/** The check's title and Markdown summary: pure, so it is tested without a network. */
export function checkOutput(run: RunDetail): { title: string; summary: string } {
  const c = run.counts;
  const title =
    run.verdict === 'attack-blocked'
      ? `Attack Blocked: ${c.attackBlocked} event(s) hit the global block list`
      : run.verdict === 'blocked'
        ? `Blocked: ${c.blocked} event(s) denied by the egress policy`
        : run.verdict === 'audit'
          ? `Audit: ${c.audit} event(s) would be blocked in block mode`
          : `Allowed: ${c.events} event(s), nothing blocked`;
  const lines = [
    `**runwall** ${run.mode ?? 'unknown'} mode · verdict **${VERDICT_LABEL[run.verdict]}**`,
    '',
    '| events | allowed | audit | blocked | attack blocked | detections |',
    '| --- | --- | --- | --- | --- | --- |',
    `| ${c.events} | ${c.allowed} | ${c.audit} | ${c.blocked} | ${c.attackBlocked} | ${c.detections} |`,
  ];
  const destinations = (run.report?.summary.destinations ?? []).filter((d) => d.verdict !== 'allowed').slice(0, 20);
  if (destinations.length > 0) {
    lines.push('', '**Destinations not allowed**', '');
    for (const d of destinations) lines.push(`- \`${d.name}${d.port === null ? '' : `:${d.port}`}\` — ${VERDICT_LABEL[d.verdict]}`);
  }
  if (run.detections.length > 0) {
    lines.push('', '**Detections**', '');
    for (const d of run.detections.slice(0, 20)) lines.push(`- ${d.severity}: ${d.title}`);
  }
  return { title, summary: lines.join('\n') };
}

function base64url(value: string | Buffer): string {
  return Buffer.from(value).toString('base64url');
}

/** The App's JWT (RS256), valid for 9 minutes, backdated 60 s for clock drift as GitHub advises. */
export function appJwt(appId: string, privateKey: string, nowMs: number): string {
  const iat = Math.floor(nowMs / 1000) - 60;
  const header = base64url(JSON.stringify({ alg: 'RS256', typ: 'JWT' }));
  const payload = base64url(JSON.stringify({ iat, exp: iat + 600, iss: appId }));
  const signer = createSign('RSA-SHA256');
  signer.update(`${header}.${payload}`);
  return `${header}.${payload}.${signer.sign(privateKey).toString('base64url')}`;
}

function githubError(what: string, error: unknown): RunwallError {
  const status = typeof error === 'object' && error !== null && 'status' in error ? Number((error as { status: unknown }).status) : null;
  const message = error instanceof Error ? error.message : String(error);
  return new RunwallError('RW_GITHUB_FAILED', `GitHub ${what} failed${status ? ` (HTTP ${status})` : ''}: ${message}`, status ? { status } : {}, { cause: error });
}

export class CheckRunPoster {
  constructor(private readonly config: GitHubAppConfig) {}

  private octokit(auth: string): Octokit {
    // Octokit's own request log would print every failed call; failures are recorded on the run instead.
    const quiet = () => undefined;
    return new Octokit({ baseUrl: this.config.baseUrl.replace(/\/$/, ''), auth, userAgent: 'runwall-server', log: { debug: quiet, info: quiet, warn: quiet, error: quiet } });
  }

  /** Creates a completed check run on `run`'s commit; resolves to the check's id. */
  async post(run: RunDetail, nowMs: number): Promise<string> {
    if (!run.repo || !run.sha) throw new RunwallError('RW_GITHUB_FAILED', `run ${run.runId} has no repository and commit to attach a check to`);
    const [owner, repo] = run.repo.split('/');
    if (!owner || !repo) throw new RunwallError('RW_GITHUB_FAILED', `run ${run.runId}: repository '${run.repo}' is not owner/name`);
    // The JWT is checked against GitHub's real clock, whatever clock the caller runs on.
    const app = this.octokit(appJwt(this.config.appId, this.config.privateKey, Date.now()));
    let installationId: number;
    try {
      installationId = (await app.rest.apps.getRepoInstallation({ owner, repo })).data.id;
    } catch (error) {
      throw githubError(`finding the App's installation on ${run.repo}`, error);
    }
    let token: string;
    try {
      token = (await app.rest.apps.createInstallationAccessToken({ installation_id: installationId })).data.token;
    } catch (error) {
      throw githubError('creating an installation token', error);
    }
    const output = checkOutput(run);
    try {
      const created = await this.octokit(token).rest.checks.create({
        owner,
        repo,
        name: this.config.checkName,
        head_sha: run.sha,
        status: 'completed',
        conclusion: conclusionOf(run.verdict),
        completed_at: new Date(nowMs).toISOString(),
        external_id: run.runId,
        ...(this.config.publicUrl ? { details_url: `${this.config.publicUrl.replace(/\/$/, '')}/#/runs/${encodeURIComponent(run.runId)}` } : {}),
        output,
      });
      return String(created.data.id);
    } catch (error) {
      throw githubError(`creating the check run on ${run.repo}@${run.sha.slice(0, 12)}`, error);
    }
  }
}
