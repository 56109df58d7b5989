/**
 * Names and addresses of one `runwall exec` sandbox, derived from its slot.
 * Pure. Slots keep concurrent runs apart: each has its own /30 and /64.
 *
 * The sandbox ranges are 100.64.0.0/16 (shared address space, RFC 6598: never
 * routed on the internet, rarely used inside companies) and
 * fd52:756e:7761::/48 (a ULA prefix spelling "Runwa"). The job's traffic leaves
 * the host masqueraded, so these addresses never appear outside the machine.
 */
export const MAX_SLOTS = 16_384;

export interface SandboxPlan {
  readonly runId: string;
  readonly slot: number;
  /** nftables table in the host's namespace. */
  readonly table: string;
  /** The job's network namespace (/run/netns/NAME). */
  readonly netns: string;
  readonly hostInterface: string;
  readonly jobInterface: string;
  readonly host4: string;
  readonly job4: string;
  readonly net4: string;
  readonly host6: string;
  readonly job6: string;
  readonly net6: string;
  readonly nflogGroup: number;
  /** cgroup v2 path, relative to the cgroup2 root. */
  readonly cgroup: string;
}

export function sandboxPlan(runId: string, slot: number): SandboxPlan {
  if (!Number.isInteger(slot) || slot < 0 || slot >= MAX_SLOTS) throw new RangeError(`slot ${slot} out of range`);
  if (!/^[0-9a-f]{8}$/.test(runId)) throw new RangeError(`run id '${runId}' is not 8 hex digits`);
  const base = slot * 4; // a /30 per slot inside 100.64.0.0/16
  const third = Math.floor(base / 256);
  const fourth = base % 256;
  const hex = slot.toString(16);
  return Object.freeze({
    runId,
    slot,
    table: `runwall_${runId}`,
    netns: `runwall-${runId}`,
    hostInterface: `rwh-${runId}`,
    jobInterface: `rwj-${runId}`,
    host4: `100.64.${third}.${fourth + 1}`,
    job4: `100.64.${third}.${fourth + 2}`,
    net4: `100.64.${third}.${fourth}/30`,
    host6: `fd52:756e:7761:${hex}::1`,
    job6: `fd52:756e:7761:${hex}::2`,
    net6: `fd52:756e:7761:${hex}::/64`,
    nflogGroup: 20_000 + slot,
    cgroup: `runwall/${runId}`,
  });
}

/** The init the job's PID namespace runs as PID 1: mounts the job's resolv.conf, drops capabilities,
 * runs the command as its child (PID 1 ignores default-action signals, a child does not), forwards
 * signals to it and exits with its status (128 + N when a signal ended it, as a shell reports). */
export const JOB_INIT_SCRIPT = `
resolv="$1"; caps="$2"; shift 2
mount --bind "$resolv" /etc/resolv.conf || { echo "runwall: RW_SETUP_FAILED: cannot mount the job's resolv.conf" >&2; exit 250; }
# An asynchronous command's stdin is /dev/null unless redirected from a descriptor saved before.
exec 3<&0
setpriv --bounding-set "$caps" --inh-caps "$caps" -- "$@" <&3 3<&- &
exec 3<&-
child=$!
for s in TERM INT HUP QUIT USR1 USR2; do trap "kill -$s $child 2>/dev/null" $s; done
while :; do
  wait $child; status=$?
  kill -0 $child 2>/dev/null || break
done
exit $status
`;

/** Capabilities a build does not need and that would let it leave the sandbox or blind the monitor. */
export const DROPPED_CAPABILITIES = Object.freeze([
  'sys_admin',
  'net_admin',
  'sys_ptrace',
  'sys_module',
  'sys_rawio',
  'sys_boot',
  'sys_time',
  'bpf',
  'perfmon',
  'mac_admin',
  'mac_override',
  'syslog',
  'audit_control',
  'audit_write',
]);

export function capabilityArgument(dropped: readonly string[]): string {
  return dropped.map((cap) => `-${cap}`).join(',');
}
