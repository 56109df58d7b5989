/**
 * What a detection is, before the pipeline sequences it: the catalogue of
 * detection ids (severity, title, what to do) as data, the plain process facts
 * the rules read, and the one helper that turns a rule's finding into a draft
 * `detection` event. Pure.
 */
import type { DetectionEvent, ProcessRef, Severity } from '../protocol/index.js';

export type DetectionId =
  | 'process-memory-read'
  | 'reverse-shell'
  | 'privileged-container'
  | 'host-escape'
  | 'guard-tamper'
  | 'recon-ip-echo'
  | 'recon-metadata'
  | 'sudo-used'
  | 'exec-from-temp'
  | 'remote-script-piped'
  | 'dns-tunnelling';

export interface DetectionRule {
  readonly id: DetectionId;
  /** Default severity; a rule may raise it for a worse case (e.g. the runner worker's memory). */
  readonly severity: Severity;
  readonly title: string;
  readonly remedy: string;
}

export const DETECTION_RULES: Readonly<Record<DetectionId, DetectionRule>> = Object.freeze({
  'process-memory-read': {
    id: 'process-memory-read',
    severity: 'high',
    title: "A process read another process's memory",
    remedy:
      'Treat every secret the job could see as leaked and rotate it. Find the step and the tool that did it (a compromised action or dependency, as with tj-actions/changed-files), pin or remove it, and do not give jobs sudo.',
  },
  'reverse-shell': {
    id: 'reverse-shell',
    severity: 'critical',
    title: 'Reverse shell: a shell is driven over a network connection',
    remedy:
      'Someone outside may be running commands in this job. Stop the runner, rotate the secrets the job had, find which step started the shell and what it connected to, and block that destination.',
  },
  'privileged-container': {
    id: 'privileged-container',
    severity: 'high',
    title: 'A privileged or host-mounting container was started',
    remedy:
      'A container with --privileged, the host root mounted, or the host network/PID namespace can take over the runner. Drop the flag, or mount only the directories the build needs.',
  },
  'host-escape': {
    id: 'host-escape',
    severity: 'high',
    title: "A tool was used to reach the host's namespaces",
    remedy:
      "Entering PID 1's namespaces (nsenter -t 1, a host-PID container running nsenter) leaves every sandbox. Remove the step, or run it in a job of its own without secrets.",
  },
  'guard-tamper': {
    id: 'guard-tamper',
    severity: 'high',
    title: 'The job touched the runner\'s network guard',
    remedy:
      "Builds do not need the firewall, the resolver configuration, /etc/hosts or the agent. Find the step that did it; if a tool really needs it, run that step in a job of its own, and don't give jobs sudo.",
  },
  'recon-ip-echo': {
    id: 'recon-ip-echo',
    severity: 'medium',
    title: "The job asked an IP-echo service for the runner's public address",
    remedy:
      'Builds rarely need their public address; malware asks it to report where it runs. Find the tool that asked and why; keep the service out of the allowed endpoints.',
  },
  'recon-metadata': {
    id: 'recon-metadata',
    severity: 'high',
    title: 'The job tried to reach the cloud metadata service',
    remedy:
      'The metadata service hands out the machine\'s cloud credentials. Unless a step is meant to use the instance role, find the tool that asked, remove it, and block the metadata address for jobs (IMDSv2 with hop limit 1 on AWS).',
  },
  'sudo-used': {
    id: 'sudo-used',
    severity: 'medium',
    title: 'The job used sudo',
    remedy:
      'With sudo a step can turn off any guard on the runner. Install what it needs in the image instead, or use disable-sudo-and-containers.',
  },
  'exec-from-temp': {
    id: 'exec-from-temp',
    severity: 'medium',
    title: 'A binary was executed from a temporary or download directory',
    remedy:
      'Droppers put payloads in /tmp, /dev/shm or Downloads and run them. Check where the file came from; build outputs belong in the workspace.',
  },
  'remote-script-piped': {
    id: 'remote-script-piped',
    severity: 'high',
    title: 'A script downloaded from the network was piped into a shell',
    remedy:
      'Whatever the server sends is run unchecked (curl … | sh). Download the script, pin it by checksum or commit, review it, and run the local copy.',
  },
  'dns-tunnelling': {
    id: 'dns-tunnelling',
    severity: 'high',
    title: 'DNS queries look like data tunnelled out through DNS',
    remedy:
      'Long, random-looking labels under one zone carry data out in the names themselves. Switch the job to block mode (names outside the policy are then answered locally and never forwarded) and find the tool that sent them.',
  },
});

/** One ancestor of a process, nearest first. */
export interface AncestorFacts {
  readonly pid: number;
  readonly exe: string | null;
  readonly argv?: readonly string[];
}

/** What the rules know about a process: plain values, gathered by the caller. */
export interface ProcessFacts {
  readonly pid: number;
  readonly ppid: number | null;
  readonly exe: string | null;
  readonly argv: readonly string[];
  readonly cwd?: string | null;
  readonly uid?: number | null;
  /** Nearest first, up to the job's root. */
  readonly ancestry: readonly AncestorFacts[];
  /** The step the process belongs to, when known. */
  readonly step?: string;
}

export type DetectionDraft = Omit<DetectionEvent, 'seq'>;

export function processRef(facts: ProcessFacts): ProcessRef {
  return {
    pid: facts.pid,
    ...(facts.ppid !== null ? { ppid: facts.ppid } : {}),
    ...(facts.exe !== null ? { exe: facts.exe } : {}),
    argv: [...facts.argv],
    ancestry: facts.ancestry.map((a) => ({ pid: a.pid, ...(a.exe !== null ? { exe: a.exe } : {}) })),
  };
}

export interface Finding {
  readonly id: DetectionId;
  readonly time: string;
  readonly evidence: Readonly<Record<string, unknown>>;
  readonly process?: ProcessFacts | undefined;
  /** Overrides the rule's default severity. */
  readonly severity?: Severity;
  /** Replaces the rule's title when the case is more specific (e.g. names the target). */
  readonly title?: string;
  /** The step when it is known without a process (e.g. from the event that triggered it). */
  readonly step?: string | undefined;
}

export function draftOf(finding: Finding): DetectionDraft {
  const rule = DETECTION_RULES[finding.id];
  const step = finding.step ?? finding.process?.step;
  return {
    kind: 'detection',
    time: finding.time,
    id: rule.id,
    severity: finding.severity ?? rule.severity,
    title: finding.title ?? rule.title,
    evidence: { ...finding.evidence },
    remedy: rule.remedy,
    ...(finding.process ? { process: processRef(finding.process) } : {}),
    ...(step !== undefined ? { step } : {}),
  };
}

const SEVERITY_ORDER: readonly Severity[] = ['info', 'low', 'medium', 'high', 'critical'];

export function worseSeverity(a: Severity, b: Severity): Severity {
  return SEVERITY_ORDER.indexOf(a) >= SEVERITY_ORDER.indexOf(b) ? a : b;
}
