/**
 * The native engine against what the host's kernel offers, in a throwaway
 * network namespace that stands in for the host (test/fixtures/native/
 * private-host.js): IPv6 switched off host-wide, and `table inet podnet`
 * owned by nothing else, so the table's life can be checked exactly.
 * Resources: networks nk*, subnets 10.89.160.0/22 and fd00:89:160::/63, port 46600.
 */
import { spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';

import { describeRoot } from '../helpers/system';

jest.setTimeout(120000);

const FIXTURE = path.join(__dirname, '..', 'fixtures', 'native', 'private-host.js');
const DIST = path.join(__dirname, '..', '..', 'dist');

/** Runs a scenario in its own network and mount namespace; everything it makes dies with them. */
function inPrivateHost(scenario: string): Record<string, unknown> {
  const tmp = mkdtempSync(path.join(os.tmpdir(), 'nk-'));
  try {
    const r = spawnSync('unshare', ['--net', '--mount', '--propagation', 'private', process.execPath, FIXTURE, DIST, scenario, tmp], {
      encoding: 'utf8',
      timeout: 100_000,
    });
    const line = r.stdout.trim().split('\n').pop() ?? '';
    if (!line.startsWith('{')) throw new Error(`${scenario}: ${r.stdout}${r.stderr}`);
    return JSON.parse(line) as Record<string, unknown>;
  } finally {
    rmSync(tmp, { recursive: true, force: true });
  }
}

describeRoot('native networks and the kernel', () => {
  test('a network with an IPv6 subnet on a host with IPv6 disabled is refused, and nothing is made', () => {
    const out = inPrivateHost('createWithoutIpv6');
    expect(out.r).toMatchObject({ code: 'ERR_NATIVE_UNSUPPORTED', message: expect.stringMatching(/nk6.*IPv6 is disabled.*disable_ipv6=1/) });
    expect(out).toMatchObject({ networks: 0, table: false });
  });

  test('an attach after IPv6 went off is refused before any lease, link or port element; it works once IPv6 is back', () => {
    const out = inPrivateHost('attachWithoutIpv6');
    expect(out.r).toMatchObject({ code: 'ERR_NATIVE_UNSUPPORTED', message: expect.stringMatching(/nk6/) });
    expect(out.after).toEqual({ links: 0, leases: 0, attachments: 0, elements: false });
    expect(out.again).toBe(2);
    expect(out.table).toBe(false);
  });

  test('the table goes with the last network, whether the last ones are removed one by one or at once', () => {
    expect(inPrivateHost('removeLastNetworks')).toEqual({ kept: [] });
  });
});
