import { describe, expect, it } from 'vitest';
import fc from 'fast-check';
import { detectPipedProgram, detectReverseShell, draftOf, isShell, programDescriptor } from '../../src/detect/index.js';
import { T0, proc } from './helpers.js';

describe('reverse shells', () => {
  it('a shell whose stdin or stdout is a TCP connection is a reverse shell naming the far end', () => {
    const shell = proc(['sh', '-i']);
    const [finding] = detectReverseShell({ shell, descriptors: [{ fd: 0, kind: 'tcp', remote: '198.51.100.7:4444' }, { fd: 1, kind: 'tcp', remote: '198.51.100.7:4444' }] }, T0);
    expect(finding).toMatchObject({ id: 'reverse-shell', evidence: { remote: '198.51.100.7:4444', via: 'socket' } });
  });

  it('a shell wired through nc or socat to a connection is a reverse shell too', () => {
    const shell = proc(['sh', '-i']);
    const nc = proc(['nc', '198.51.100.7', '4444']);
    const [finding] = detectReverseShell({ shell, descriptors: [{ fd: 0, kind: 'pipe' }, { fd: 1, kind: 'pipe' }], relay: { process: nc, remote: '198.51.100.7:4444', via: 'pipe' } }, T0);
    expect(finding?.evidence).toMatchObject({ via: 'pipe', relay: { pid: nc.pid } });
  });

  it('shells on pipes, terminals and files are not; nor non-shells on sockets', () => {
    const shell = proc(['bash', '-e', 'x.sh']);
    expect(detectReverseShell({ shell, descriptors: [{ fd: 0, kind: 'pipe' }, { fd: 1, kind: 'pipe' }, { fd: 2, kind: 'file' }] }, T0)).toEqual([]);
    expect(detectReverseShell({ shell, descriptors: [{ fd: 0, kind: 'tty' }, { fd: 1, kind: 'tty' }] }, T0)).toEqual([]);
    // stderr alone on a socket (a logging collector) is not a shell driven over the network.
    expect(detectReverseShell({ shell, descriptors: [{ fd: 0, kind: 'pipe' }, { fd: 2, kind: 'tcp', remote: '203.0.113.1:514' }] }, T0)).toEqual([]);
    expect(detectReverseShell({ shell: proc(['nginx']), descriptors: [{ fd: 0, kind: 'tcp', remote: '198.51.100.1:1' }] }, T0)).toEqual([]);
  });

  it('busybox is a shell only as its sh applet', () => {
    expect(isShell({ exe: '/bin/busybox', argv: ['busybox', 'sh'] })).toBe(true);
    expect(isShell({ exe: '/bin/busybox', argv: ['sh'] })).toBe(true);
    expect(isShell({ exe: '/bin/busybox', argv: ['busybox', 'wget'] })).toBe(false);
  });
});

describe('remote scripts piped into a shell', () => {
  it('knows where an interpreter reads its program from', () => {
    expect(programDescriptor({ exe: '/bin/sh', argv: ['sh'] })).toBe(0);
    expect(programDescriptor({ exe: '/bin/bash', argv: ['bash', '-s', '--', 'x'] })).toBe(0);
    expect(programDescriptor({ exe: '/bin/bash', argv: ['bash', '-es'] })).toBe(0);
    expect(programDescriptor({ exe: '/bin/bash', argv: ['bash', '/dev/fd/63'] })).toBe(63);
    expect(programDescriptor({ exe: '/usr/bin/python3.11', argv: ['python3', '-'] })).toBe(0);
    expect(programDescriptor({ exe: '/bin/sh', argv: ['sh', '-c', 'echo hi'] })).toBeNull();
    expect(programDescriptor({ exe: '/bin/sh', argv: ['sh', '-ec', 'echo hi'] })).toBeNull();
    expect(programDescriptor({ exe: '/bin/bash', argv: ['bash', '-o', 'pipefail', 'build.sh'] })).toBeNull();
    expect(programDescriptor({ exe: '/usr/bin/python3', argv: ['python3', 'setup.py'] })).toBeNull();
    expect(programDescriptor({ exe: '/usr/bin/curl', argv: ['curl'] })).toBeNull();
  });

  it('curl … | sh is reported with the URL; tar reading a download is not', () => {
    const sh = proc(['sh']);
    const curl = proc(['curl', '-fsSL', 'http://allowed.test:443/install.sh']);
    const [finding] = detectPipedProgram({ interpreter: sh, writer: curl, fd: 0, verified: true }, T0);
    expect(finding && draftOf(finding)).toMatchObject({ id: 'remote-script-piped', severity: 'high', evidence: { url: 'http://allowed.test:443/install.sh', verified: true } });
    expect(detectPipedProgram({ interpreter: proc(['tar', 'xz']), writer: curl, fd: 0, verified: true }, T0)).toEqual([]);
    expect(detectPipedProgram({ interpreter: proc(['sh', 'x.sh']), writer: curl, fd: 0, verified: true }, T0)).toEqual([]);
    expect(detectPipedProgram({ interpreter: sh, writer: proc(['cat', 'x.sh']), fd: 0, verified: true }, T0)).toEqual([]);
  });

  it('a shell given -c never reads its program from a pipe (property)', () => {
    fc.assert(
      fc.property(fc.constantFrom('sh', 'bash', 'dash', 'zsh'), fc.array(fc.constantFrom('-e', '-x', '-u', '--noprofile'), { maxLength: 3 }), fc.string(), (shell, options, command) => {
        expect(programDescriptor({ exe: `/bin/${shell}`, argv: [shell, ...options, '-c', command] })).toBeNull();
      }),
    );
  });
});
