/**
 * The embedded default network `podnet` (bridge podnet0, 10.89.0.0/24). The only test file of
 * this branch that uses it; own conf and cache dirs, host ports 18020-18029.
 */
import { execFileSync } from 'node:child_process';
import { existsSync, mkdtempSync, readdirSync, rmSync } from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';

import { NetNS } from '../../lib';
import { CniRuntime, DEFAULT_NETWORK_NAME } from '../../lib/api/cni';
import { leftovers, linkExists } from '../fixtures/cni/helpers';
import { describeRoot, uniqueName } from '../helpers/system';

const tmp = mkdtempSync(path.join(os.tmpdir(), 'pn-cni-default-'));
const confDir = path.join(tmp, 'net.d'); // never created: the default needs nothing on disk
const cacheDir = path.join(tmp, 'cache');

describeRoot('the embedded default network', () => {
  const rt = new CniRuntime({ confDir, cacheDir });
  const bridgeExisted = linkExists('podnet0');

  afterAll(() => {
    // The bridge and the lease dir are this file's to remove, unless they were there before or another
    // suite (the pod runtime's) has pods on podnet right now: leases or ports on the bridge.
    const leases = '/var/lib/cni/networks/podnet';
    const inUse =
      (existsSync(leases) && readdirSync(leases).some((f) => /^\d/.test(f))) ||
      (linkExists('podnet0') && readdirSync('/sys/class/net/podnet0/brif').length > 0);
    if (!inUse) {
      if (!bridgeExisted && linkExists('podnet0')) execFileSync('ip', ['link', 'delete', 'podnet0']);
      rmSync(leases, { recursive: true, force: true });
    }
    rmSync(tmp, { recursive: true, force: true });
  });

  it('is listed without any file', async () => {
    const nets = await rt.networks();
    expect(nets.map((n) => n.name)).toEqual([DEFAULT_NETWORK_NAME]);
    expect(nets[0].file).toBeUndefined();
    expect(nets[0].plugins.map((p) => p.type)).toEqual(['bridge', 'portmap', 'firewall', 'tuning']);
  });

  it('a pod with no networks named gets podnet: eth0 on 10.89.0.0/24, default route, a working port mapping', async () => {
    const ns = await NetNS.create({ name: uniqueName('pn-cni-def') });
    const id = uniqueName('pn-cni-def');
    const server = ns.spawn(process.execPath, ['-e', "require('net').createServer((s) => s.end('default-hello')).listen(80, () => console.log('ready'))"], {
      stdio: ['ignore', 'pipe', 'inherit'],
    });
    let ip = '';
    try {
      await new Promise((r) => server.stdout?.once('data', r));
      const res = await rt.setUpPod({ id, name: 'def', netnsPath: ns.path, portMappings: [{ hostPort: 18020, containerPort: 80 }] });
      expect(res).toHaveLength(1);
      expect(res[0]).toMatchObject({ network: 'podnet', ifname: 'eth0', portMappings: [{ hostPort: 18020, containerPort: 80, protocol: 'tcp' }] });
      expect(res[0].result.ips).toEqual([{ address: expect.stringMatching(/^10\.89\.0\.\d+\/24$/), gateway: '10.89.0.1', interface: 2 }]);
      ip = res[0].result.ips![0].address.split('/')[0];
      expect(res[0].result.interfaces![0].name).toBe('podnet0');
      const routes = JSON.parse((await ns.exec('ip', ['-j', 'route', 'show', 'default'])).stdout);
      expect(routes).toEqual([expect.objectContaining({ dst: 'default', gateway: '10.89.0.1', dev: 'eth0' })]);
      const got = await new Promise<string>((resolve, reject) => {
        let data = '';
        net
          .connect(18020, '127.0.0.1')
          .on('data', (d) => (data += d))
          .on('end', () => resolve(data))
          .on('error', reject);
      });
      expect(got).toBe('default-hello');
      expect(existsSync(confDir)).toBe(false);
      expect(readdirSync(path.join(cacheDir, 'results'))).toEqual([`podnet-${id}-eth0`]);
    } finally {
      await rt.tearDownPod({ id });
      server.kill('SIGKILL');
      await ns.remove();
    }
    expect(leftovers(cacheDir, id, [ip])).toEqual([]);
  });
});
