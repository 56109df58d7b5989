import { describe, expect, it } from 'vitest';
import fc from 'fast-check';
import { Detector, detectRecon, labelLooksEncoded, nameLooksEncoded, TunnelTracker, zoneOf } from '../../src/detect/index.js';
import { T0, connection, dns, proc } from './helpers.js';

/** Names a CI job queries every day (registries, GitHub, clouds, CDNs, distributions). */
export const NORMAL_NAMES: readonly string[] = [
  'github.com', 'api.github.com', 'codeload.github.com', 'objects.githubusercontent.com', 'raw.githubusercontent.com',
  'github-releases.githubusercontent.com', 'pipelinesghubeus22.actions.githubusercontent.com', 'results-receiver.actions.githubusercontent.com',
  'productionresultssa12.blob.core.windows.net', 'vstoken.actions.githubusercontent.com', 'ghcr.io', 'pkg-containers.githubusercontent.com',
  'github-production-release-asset-2e65be.s3.amazonaws.com', 'github-production-user-asset-6210df.s3.amazonaws.com',
  'actions-results-receiver-production.githubapp.com', 'registry.npmjs.org', 'registry.yarnpkg.com', 'nodejs.org', 'pypi.org',
  'files.pythonhosted.org', 'proxy.golang.org', 'sum.golang.org', 'storage.googleapis.com', 'index.crates.io', 'static.crates.io',
  'repo.maven.apache.org', 'repo1.maven.org', 'plugins.gradle.org', 'services.gradle.org', 'api.nuget.org', 'rubygems.org',
  'registry-1.docker.io', 'auth.docker.io', 'production.cloudflare.docker.com', 'mcr.microsoft.com', 'mcrflowprodcentralus.data.mcr.microsoft.com',
  'deb.debian.org', 'security.debian.org', 'archive.ubuntu.com', 'azure.archive.ubuntu.com', 'security.ubuntu.com', 'ppa.launchpadcontent.net',
  'dl-cdn.alpinelinux.org', 'download.docker.com', 'packages.microsoft.com', 'dotnetcli.azureedge.net', 'builds.dotnet.microsoft.com',
  'd3g5vo6xdbdb9a.cloudfront.net', 'sonarcloud.io', 'codecov.io', 'uploader.codecov.io', 'coveralls.io', 'cdn.jsdelivr.net', 'unpkg.com',
  'fonts.googleapis.com', 'fonts.gstatic.com', 'cdn-lfs.huggingface.co', 'huggingface.co', 'cache.nixos.org', 'dl.google.com',
  'oauth2.googleapis.com', 'sts.amazonaws.com', 'ecr.us-east-1.amazonaws.com', 'prod-tailwind-nextjs-starter-blog.vercel.app',
  'xn--80ak6aa92e.com', 'mirror-cloudflare-secure.example.org', 'downloadsfromtheinternet.example.com', 'ec2-54-123-45-67.compute-1.amazonaws.com',
  'login.microsoftonline.com', 'management.azure.com', 'token.actions.githubusercontent.com', 'api.snapcraft.io', 'gitlab.com', 'bitbucket.org',
  'sentry.io', 'o123456.ingest.sentry.io', 'telemetry.nextjs.org', 'www.googletagmanager.com', 'update.code.visualstudio.com',
];

const HEX = '0123456789abcdef';
const ALNUM = 'abcdefghijklmnopqrstuvwxyz0123456789';
const BASE32 = 'abcdefghijklmnopqrstuvwxyz234567';
/** Uniformly random labels, as an encoder produces them (no bias towards repeated or edge characters). */
const label = (alphabet: string, length: number) =>
  fc.noBias(fc.array(fc.integer({ min: 0, max: alphabet.length - 1 }), { minLength: length, maxLength: length })).map((indexes) => indexes.map((i) => alphabet[i]).join(''));

describe('DNS tunnelling scores', () => {
  it('never flags the names ordinary builds query', () => {
    expect(NORMAL_NAMES.filter(nameLooksEncoded)).toEqual([]);
  });

  it('never flags any label of the normal names, under any zone (property)', () => {
    const labels = NORMAL_NAMES.flatMap((n) => n.split('.'));
    fc.assert(fc.property(fc.constantFrom(...labels), fc.constantFrom('example.com', 'evil.test'), (l, zone) => {
        expect(nameLooksEncoded(`${l}.${zone}`)).toBe(false);
      }));
  });

  it('flags random 40-character labels (base36, base32, hex): at most a handful in 2,000 escape', () => {
    // A random label is low-entropy by chance about once in 10,000 draws (hex) or far fewer: "always" would be
    // a flaky claim. At most 4 misses in 2,000 fails by chance about once in 40,000 runs.
    for (const alphabet of [ALNUM, BASE32, HEX]) {
      const missed = fc.sample(label(alphabet, 40), 2000).filter((l) => !labelLooksEncoded(l));
      expect(missed.length, missed.join(' ')).toBeLessThanOrEqual(4);
    }
  });

  it('never flags labels shorter than 20 characters (property)', () => {
    fc.assert(fc.property(fc.string({ unit: fc.constantFrom(...ALNUM), maxLength: 19 }), (l) => {
        expect(labelLooksEncoded(l)).toBe(false);
      }));
  });

  it('groups names by registrable domain', () => {
    expect(zoneOf('a.b.t.evil.com')).toBe('evil.com');
    expect(zoneOf('x.example.co.uk.')).toBe('example.co.uk');
    expect(zoneOf('localhost')).toBe('localhost');
  });
});

describe('TunnelTracker', () => {
  const at = (ms: number) => new Date(Date.parse(T0) + ms).toISOString();

  it('flags a zone once after five encoded names, with samples', () => {
    const tracker = new TunnelTracker();
    const names = Array.from({ length: 8 }, (_, i) => `${'k3j9x2q8w7v5z1m4n6b0c'}${i}d8f7g6h5.t.evil.test`);
    const results = names.map((name, i) => tracker.observe(dns(name, 'audit', at(i)), undefined));
    expect(results.slice(0, 4)).toEqual([null, null, null, null]);
    expect(results[4]).toMatchObject({ id: 'dns-tunnelling', evidence: { zone: 'evil.test', encodedNames: 5 } });
    expect(results.slice(5)).toEqual([null, null, null]);
  });

  it('flags very many distinct subdomains even when each looks harmless', () => {
    const tracker = new TunnelTracker({ encodedNames: 5, uniqueNames: 150, windowMs: 60_000, maxZones: 10 });
    const results = Array.from({ length: 150 }, (_, i) => tracker.observe(dns(`host${i}.many.test`, 'allowed', at(i)), undefined));
    expect(results.filter((r) => r !== null)).toHaveLength(1);
    expect(results[149]?.evidence['uniqueNames']).toBe(150);
  });

  it('forgets names older than the window, and ignores names answered locally (never forwarded)', () => {
    const tracker = new TunnelTracker({ encodedNames: 5, uniqueNames: 10, windowMs: 1000, maxZones: 10 });
    for (let i = 0; i < 40; i++) expect(tracker.observe(dns(`h${i}.slow.test`, 'audit', at(i * 500)), undefined)).toBeNull();
    for (let i = 0; i < 40; i++) expect(tracker.observe(dns(`h${i}.blocked.test`, 'blocked', at(i)), undefined)).toBeNull();
  });

  it('a burst of random subdomains is always flagged exactly once (property)', () => {
    fc.assert(
      fc.property(fc.array(label(ALNUM, 40), { minLength: 200, maxLength: 200 }), (labels) => {
        const tracker = new TunnelTracker();
        const hits = labels.map((l, i) => tracker.observe(dns(`${l}.x${i % 3}.tunnel.test`, 'audit', at(i)), undefined)).filter((r) => r !== null);
        expect(hits).toHaveLength(1);
      }),
      { numRuns: 20 },
    );
  });

  it('a build that queries the normal names never trips it (property: any order, repeated)', () => {
    fc.assert(
      fc.property(fc.array(fc.constantFrom(...NORMAL_NAMES), { maxLength: 300 }), (names) => {
        const tracker = new TunnelTracker();
        expect(names.map((n, i) => tracker.observe(dns(n, 'audit', at(i)), undefined)).filter((r) => r !== null)).toEqual([]);
      }),
      { numRuns: 50 },
    );
  });
});

describe('reconnaissance', () => {
  it('IP-echo names are reported in every verdict, once per service', () => {
    const detector = new Detector();
    const first = detector.observe({ kind: 'network', event: dns('api.ipify.org', 'blocked') });
    expect(first.map((d) => [d.id, d.evidence['service']])).toEqual([['recon-ip-echo', 'ipify.org']]);
    expect(detector.observe({ kind: 'network', event: dns('api64.ipify.org', 'audit') })).toEqual([]);
    expect(detector.observe({ kind: 'network', event: dns('ifconfig.me', 'allowed') }).map((d) => d.id)).toEqual(['recon-ip-echo']);
    expect(detector.observe({ kind: 'network', event: dns('icanhazip.com.', 'audit') }).map((d) => d.id)).toEqual(['recon-ip-echo']);
  });

  it('metadata names, addresses and names that resolve to the metadata address are reported', () => {
    expect(detectRecon(dns('metadata.google.internal', 'blocked'), undefined).map((f) => f.id)).toEqual(['recon-metadata']);
    expect(detectRecon(connection('169.254.169.254', 80), proc(['curl'])).map((f) => [f.id, f.evidence['verdict']])).toEqual([['recon-metadata', 'blocked']]);
    expect(detectRecon(connection('fd00:ec2::254', 80), undefined).map((f) => f.id)).toEqual(['recon-metadata']);
    expect(detectRecon(dns('innocent.test', 'audit', T0, [{ name: 'innocent.test', type: 'A', ttl: 1, data: '169.254.169.254' }]), undefined).map((f) => f.id)).toEqual(['recon-metadata']);
  });

  it('ordinary names and addresses are not recon', () => {
    for (const name of NORMAL_NAMES) expect(detectRecon(dns(name), undefined)).toEqual([]);
    expect(detectRecon(dns('metadata.example.com'), undefined)).toEqual([]);
    expect(detectRecon(dns('notifconfig.me.example'), undefined)).toEqual([]);
    expect(detectRecon(connection('198.51.100.80', 443), undefined)).toEqual([]);
  });
});
