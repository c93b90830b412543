/** The pasta command line (Podman 5's createPastaArgs plus podnet's process management) and the check of a caller's options. */
import { readFileSync } from 'node:fs';
import path from 'node:path';

import { ErrorCode } from '../../../lib/errors';
import { checkPastaOptions, pastaArgs, portSpecs } from '../../../lib/pasta/args';
import { parsePastaHelp, type PastaFeatures } from '../../../lib/pasta/features';
import { checkPortMappings } from '../../../lib/ports';

const DEBIAN = parsePastaHelp('/usr/bin/pasta', readFileSync(path.join(__dirname, '..', '..', 'fixtures', 'pasta', 'help-0.0-git20230309.txt'), 'utf8'));
const NEWER: PastaFeatures = {
  ...DEBIAN,
  binary: '/opt/pasta',
  mapGuestAddr: true,
  options: new Map([...DEBIAN.options, ['map-guest-addr', { name: 'map-guest-addr', takesArg: true }]]),
};
const ROOT = { netns: '/run/netns/x', pidFile: '/tmp/d/pid', root: true };
const USER = { netns: '/proc/7/ns/net', userns: '/proc/7/ns/user', pidFile: '/tmp/d/pid', root: false };

describe('pastaArgs', () => {
  test('no ports: nothing forwarded in any direction, as Podman passes', () => {
    expect(pastaArgs(DEBIAN, checkPastaOptions(DEBIAN, []), [], ROOT)).toEqual([
      '--config-net',
      '--dns-forward',
      '169.254.1.1',
      '-t',
      'none',
      '-u',
      'none',
      '-T',
      'none',
      '-U',
      'none',
      '--no-map-gw',
      '--quiet',
      '--netns',
      '/run/netns/x',
      '--runas',
      '0:0',
      '-f',
      '--pid',
      '/tmp/d/pid',
    ]);
  });

  test('ports with ranges and host addresses, unprivileged, newer pasta', () => {
    const ports = checkPortMappings([
      { hostPort: 8080, containerPort: 80 },
      { hostIP: '127.0.0.1', hostPort: 9000, containerPort: 90, range: 3, protocol: 'tcp,udp' },
      { hostIP: '::1', hostPort: 5353, containerPort: 53, protocol: 'udp' },
    ]);
    expect(pastaArgs(NEWER, checkPastaOptions(NEWER, []), ports, USER)).toEqual([
      '--config-net',
      '-t',
      '8080:80',
      '-t',
      '127.0.0.1/9000-9002:90-92',
      '-u',
      '127.0.0.1/9000-9002:90-92',
      '-u',
      '::1/5353:53',
      '--dns-forward',
      '169.254.1.1',
      '-T',
      'none',
      '-U',
      'none',
      '--no-map-gw',
      '--quiet',
      '--netns',
      '/proc/7/ns/net',
      '--map-guest-addr',
      '169.254.1.2',
      '--userns',
      '/proc/7/ns/user',
      '-f',
      '--pid',
      '/tmp/d/pid',
    ]);
  });

  test("the caller's options come first and replace the defaults they cover", () => {
    const user = checkPastaOptions(DEBIAN, ['--map-gw', '-T', '5432', '--dns-forward', '10.0.0.1', '--mtu=1500', '-4']);
    expect(pastaArgs(DEBIAN, user, [], ROOT)).toEqual([
      '--config-net',
      '-T',
      '5432',
      '--dns-forward',
      '10.0.0.1',
      '--mtu=1500',
      '-4',
      '-t',
      'none',
      '-u',
      'none',
      '-U',
      'none',
      '--quiet',
      '--netns',
      '/run/netns/x',
      '--runas',
      '0:0',
      '-f',
      '--pid',
      '/tmp/d/pid',
    ]);
  });

  test("a caller's --debug or --trace replaces --quiet (pasta refuses both together)", () => {
    for (const o of ['--debug', '-d', '--trace']) {
      const a = pastaArgs(DEBIAN, checkPastaOptions(DEBIAN, [o]), [], ROOT);
      expect(a).toContain(o);
      expect(a).not.toContain('--quiet');
    }
  });

  test('root with a pasta that has no --runas is refused', () => {
    const old: PastaFeatures = { ...DEBIAN, runas: false };
    expect(() => pastaArgs(old, checkPastaOptions(old, []), [], ROOT)).toThrow(expect.objectContaining({ code: ErrorCode.PASTA_OPTION }));
    expect(pastaArgs(old, checkPastaOptions(old, []), [], USER)).not.toContain('--runas');
  });
});

describe('checkPastaOptions', () => {
  test.each([
    [
      ['--mtu', '1500'],
      ['--mtu', '1500'],
    ],
    [['-m1500'], ['-m1500']],
    [['-46'], ['-46']],
    [
      ['-d', '-t', '22'],
      ['-d', '-t', '22'],
    ],
    [['--ns-ifname=eth7'], ['--ns-ifname=eth7']],
  ])('%j is accepted', (given, args) => {
    expect(checkPastaOptions(DEBIAN, given).args).toEqual(args);
  });

  test.each([
    [['--bogus'], 'unknown to this pasta'],
    [['--map-guest-addr', '169.254.1.2'], 'unknown to this pasta'],
    [['-Z'], "'-Z' is unknown"],
    [['--mtu'], 'needs a value'],
    [['--no-tcp=1'], 'takes no value'],
    [['sh'], 'not an option'],
    [['--netns', '/run/netns/other'], 'set by podnet'],
    [['-P', '/tmp/p'], 'set by podnet'],
    [['-f'], 'set by podnet'],
    [['--runas', 'nobody'], 'set by podnet'],
    [['--tcp'], 'unknown to this pasta'],
  ])('%j is refused (%s)', (given, why) => {
    expect(() => checkPastaOptions(DEBIAN, given)).toThrow(expect.objectContaining({ code: ErrorCode.PASTA_OPTION, message: expect.stringContaining(why) }));
  });

  test('a newer pasta accepts its newer option', () => {
    expect(checkPastaOptions(NEWER, ['--map-guest-addr', '169.254.1.9']).args).toEqual(['--map-guest-addr', '169.254.1.9']);
  });
});

test('portSpecs refuses what pasta cannot forward', () => {
  expect(() => portSpecs(checkPortMappings([{ hostPort: 1, containerPort: 1, protocol: 'sctp' }]))).toThrow(/tcp and udp only/);
  expect(() => portSpecs(checkPortMappings([{ hostPort: 0, containerPort: 1 }]))).toThrow(/real host port/);
});
