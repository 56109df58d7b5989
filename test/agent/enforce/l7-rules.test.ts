// The iptables rules that feed the L7 check: what they queue, how a verdict sticks to a flow,
// fail-closed in block mode, and removal that mirrors installation.
import { describe, expect, it } from 'vitest';
import { L7_MARK, l7RemovalCommands, l7RemovalRestoreText, l7RestoreText, l7RulesIntact, l7VerdictMark, type L7Scope } from '../../../src/agent/enforce/l7-rules.js';

const EXEC: L7Scope = { kind: 'exec', runId: '0a1b2c3d', jobInterface: 'rwh-0a1b2c3d' };
const AGENT: L7Scope = { kind: 'agent', agentCgroup: 'runwall-agent' };

function lines(text: string): string[] {
  return text.split('\n').filter((line) => line !== '');
}

describe('l7RestoreText', () => {
  it("exec: the job's forwarded TCP jumps first into the run's chain, which queues client packets 1-32 of unjudged flows", () => {
    const rules = lines(l7RestoreText({ scope: EXEC, queue: 20_003, mode: 'block' }));
    expect(rules[0]).toBe('*filter');
    expect(rules).toContain('-I FORWARD 1 -i rwh-0a1b2c3d -p tcp -j RWL7-0a1b2c3d');
    expect(rules).toContain(
      '-A RWL7-0a1b2c3d -p tcp -m conntrack --ctstate ESTABLISHED --ctdir ORIGINAL -m connbytes --connbytes 0:32 --connbytes-dir original --connbytes-mode packets -j NFQUEUE --queue-num 20003',
    );
    expect(rules.at(-1)).toBe('COMMIT');
    expect(rules.some((line) => line.includes('OUTPUT'))).toBe(false);
  });

  it('a verdict sticks: a SEEN packet saves PASS/DENY into the connection mark, is cleaned and, if DENY, reset', () => {
    const rules = lines(l7RestoreText({ scope: EXEC, queue: 1, mode: 'block' }));
    const chain = rules.filter((line) => line.startsWith('-A RWL7-0a1b2c3d'));
    expect(chain.slice(0, 4)).toEqual([
      '-A RWL7-0a1b2c3d -m mark --mark 0x1000000/0x1000000 -g RWL7S-0a1b2c3d',
      '-A RWL7-0a1b2c3d -p tcp ! --syn -m connmark --mark 0x2000000/0x6000000 -j RETURN',
      // A SYN reopening an old conntrack entry does not inherit its verdict.
      '-A RWL7-0a1b2c3d -p tcp --syn -j CONNMARK --set-xmark 0x0/0x6000000',
      '-A RWL7-0a1b2c3d -p tcp -m connmark --mark 0x4000000/0x6000000 -j REJECT --reject-with tcp-reset',
    ]);
    expect(rules.filter((line) => line.startsWith('-A RWL7S-0a1b2c3d'))).toEqual([
      '-A RWL7S-0a1b2c3d -j CONNMARK --save-mark --nfmask 0x6000000 --ctmask 0x6000000',
      '-A RWL7S-0a1b2c3d -j MARK --set-xmark 0x0/0x7000000',
      '-A RWL7S-0a1b2c3d -p tcp -m connmark --mark 0x4000000/0x6000000 -j REJECT --reject-with tcp-reset',
    ]);
  });

  it('block mode never bypasses the queue (fail closed); audit mode does, so a dead agent does not break the job', () => {
    expect(l7RestoreText({ scope: EXEC, queue: 1, mode: 'block' })).not.toContain('--queue-bypass');
    const audit = lines(l7RestoreText({ scope: EXEC, queue: 1, mode: 'audit' })).filter((line) => line.includes('NFQUEUE'));
    expect(audit.length).toBe(2);
    expect(audit.every((line) => line.endsWith('--queue-bypass'))).toBe(true);
  });

  it('agent: local sockets (minus its own cgroup) and forwarded traffic; TCP Fast Open SYNs are queued too', () => {
    const rules = lines(l7RestoreText({ scope: AGENT, queue: 19_999, mode: 'block' }));
    expect(rules).toEqual(
      expect.arrayContaining([
        '-I OUTPUT 1 ! -o lo -p tcp -j RWL7O-agent',
        '-I FORWARD 1 -p tcp -j RWL7-agent',
        '-A RWL7O-agent -m cgroup --path runwall-agent -j RETURN',
        '-A RWL7O-agent -j RWL7-agent',
        '-A RWL7-agent -p tcp --syn -m tcp --tcp-option 34 -j NFQUEUE --queue-num 19999',
      ]),
    );
  });

  it('removal deletes exactly the jumps it inserted, then empties and deletes its chains', () => {
    expect(l7RemovalCommands(EXEC)).toEqual([
      ['-t', 'filter', '-D', 'FORWARD', '-i', 'rwh-0a1b2c3d', '-p', 'tcp', '-j', 'RWL7-0a1b2c3d'],
      ['-t', 'filter', '-F', 'RWL7-0a1b2c3d'],
      ['-t', 'filter', '-F', 'RWL7S-0a1b2c3d'],
      ['-t', 'filter', '-X', 'RWL7-0a1b2c3d'],
      ['-t', 'filter', '-X', 'RWL7S-0a1b2c3d'],
    ]);
    const agent = l7RemovalCommands(AGENT);
    expect(agent.slice(0, 2)).toEqual([
      ['-t', 'filter', '-D', 'OUTPUT', '!', '-o', 'lo', '-p', 'tcp', '-j', 'RWL7O-agent'],
      ['-t', 'filter', '-D', 'FORWARD', '-p', 'tcp', '-j', 'RWL7-agent'],
    ]);
    expect(agent.filter((args) => args[2] === '-X').map((args) => args[3])).toEqual(['RWL7O-agent', 'RWL7-agent', 'RWL7S-agent']);
  });
});

describe('l7VerdictMark', () => {
  it("sets runwall's bits and keeps every other bit of the packet's mark", () => {
    expect(l7VerdictMark(0, 'pass')).toBe(L7_MARK.seen | L7_MARK.pass);
    expect(l7VerdictMark(0, 'deny')).toBe(L7_MARK.seen | L7_MARK.deny);
    expect(l7VerdictMark(0xffffffff, 'undecided')).toBe(0xf9ffffff);
    expect(l7VerdictMark(0x4000 | L7_MARK.deny, 'pass')).toBe(0x4000 | L7_MARK.seen | L7_MARK.pass);
  });
});

describe('l7RulesIntact', () => {
  const config = { scope: AGENT, queue: 19_999, mode: 'block' as const };
  // What iptables-save printed after loading l7RestoreText(config) on this machine (iptables 1.8.9, nf_tables).
  const SAVED = `*filter
:INPUT ACCEPT [0:0]
:FORWARD ACCEPT [0:0]
:OUTPUT ACCEPT [0:0]
:RWL7-agent - [0:0]
:RWL7O-agent - [0:0]
:RWL7S-agent - [0:0]
-A FORWARD -p tcp -j RWL7-agent
-A OUTPUT ! -o lo -p tcp -j RWL7O-agent
-A RWL7-agent -m mark --mark 0x1000000/0x1000000 -g RWL7S-agent
-A RWL7-agent -p tcp -m tcp ! --tcp-flags FIN,SYN,RST,ACK SYN -m connmark --mark 0x2000000/0x6000000 -j RETURN
-A RWL7-agent -p tcp -m tcp --tcp-flags FIN,SYN,RST,ACK SYN -j CONNMARK --set-xmark 0x0/0x6000000
-A RWL7-agent -p tcp -m connmark --mark 0x4000000/0x6000000 -j REJECT --reject-with tcp-reset
-A RWL7-agent -p tcp -m conntrack --ctstate ESTABLISHED --ctdir ORIGINAL -m connbytes --connbytes 0:32 --connbytes-mode packets --connbytes-dir original -j NFQUEUE --queue-num 19999
-A RWL7-agent -p tcp -m tcp --tcp-flags FIN,SYN,RST,ACK SYN -m tcp --tcp-option 34 -j NFQUEUE --queue-num 19999
-A RWL7O-agent -m cgroup --path runwall-agent -j RETURN
-A RWL7O-agent -j RWL7-agent
-A RWL7S-agent -j CONNMARK --save-mark --nfmask 0x6000000 --ctmask 0x6000000
-A RWL7S-agent -j MARK --set-xmark 0x0/0x7000000
-A RWL7S-agent -p tcp -m connmark --mark 0x4000000/0x6000000 -j REJECT --reject-with tcp-reset
COMMIT
`;

  it('removal in one restore: every jump into its chains (a second copy too), then its chains emptied and deleted; nothing else', () => {
    const twice = SAVED.replace('-A FORWARD -p tcp -j RWL7-agent\n', '-A FORWARD -p tcp -j RWL7-agent\n-A FORWARD -i eth9 -p tcp -g RWL7-agent\n-A FORWARD -j RWL7-agent\n-A FORWARD -p tcp -j RWL7-0a1b2c3d\n');
    expect(l7RemovalRestoreText(twice, AGENT).split('\n')).toEqual([
      '*filter',
      '-D FORWARD -p tcp -j RWL7-agent',
      '-D FORWARD -i eth9 -p tcp -g RWL7-agent',
      '-D FORWARD -j RWL7-agent',
      '-D OUTPUT ! -o lo -p tcp -j RWL7O-agent',
      '-F RWL7-agent',
      '-F RWL7O-agent',
      '-F RWL7S-agent',
      '-X RWL7-agent',
      '-X RWL7O-agent',
      '-X RWL7S-agent',
      'COMMIT',
      '',
    ]);
    // Another run's chains and jumps are not this one's.
    expect(l7RemovalRestoreText(SAVED, EXEC)).toBe('');
    expect(l7RemovalRestoreText('*filter\n:INPUT ACCEPT [0:0]\n:FORWARD ACCEPT [0:0]\nCOMMIT\n', AGENT)).toBe('');
  });

  it('accepts the rules as loaded, and names what a tamperer flushed or deleted', () => {
    expect(l7RulesIntact(SAVED, config)).toEqual({ intact: true });
    const flushed = SAVED.split('\n').filter((line) => !line.startsWith('-A RWL7-agent ')).join('\n');
    expect(l7RulesIntact(flushed, config)).toEqual({ intact: false, problem: 'iptables chain RWL7-agent holds 0 of its 6 rules' });
    const unhooked = SAVED.replace('-A FORWARD -p tcp -j RWL7-agent\n', '');
    expect(l7RulesIntact(unhooked, config)).toEqual({ intact: false, problem: 'the jump from FORWARD into RWL7-agent is gone' });
    expect(l7RulesIntact('*filter\nCOMMIT\n', config)).toMatchObject({ intact: false });
  });
});
