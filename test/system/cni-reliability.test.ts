/**
 * The CNI runtime when plugins misbehave and owners crash: time limits that
 * hold against forking plugins, results persisted plugin by plugin (so a DEL
 * after a crash removes the firewall plugin's rules), plugins that are missing
 * or vanish, and inputs refused before any plugin runs.
 * Resources: networks rel-cni-*, bridges pnrel200-pnrel203, subnets 10.89.200-203.0/24, ports 42001-42019.
 */
import { execFileSync } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, unlinkSync, writeFileSync } from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';

import { NetNS, Runtime } from '../../lib';
import { CniRuntime } from '../../lib/api/cni';
import { describeRoot, ipNetnsList, uniqueName } from '../helpers/system';
import { PASS_THROUGH, filesUnder, iptablesRules, leases, processesWith, startOwner, waitFor, writePlugin } from '../helpers/reliability';

jest.setTimeout(120_000);

const tmp = mkdtempSync(path.join(os.tmpdir(), 'pnrel-cni-'));
const confDir = path.join(tmp, 'net.d');
const cacheDir = path.join(tmp, 'cache');
const binDir = path.join(tmp, 'bin');
const stateDir = path.join(tmp, 'state');
const BRIDGES = ['pnrel200', 'pnrel201', 'pnrel202', 'pnrel203'];
const bridge = (name: string, subnet: string) => ({
  type: 'bridge',
  bridge: name,
  isGateway: true,
  ipMasq: true,
  ipam: { type: 'host-local', ranges: [[{ subnet }]] },
});
const LISTS: Record<string, unknown[]> = {
  'rel-cni-fork': [{ type: 'rel-fork' }],
  'rel-cni-vhang': [{ type: 'rel-vhang' }],
  // The chain of the crash test: its last plugin hangs (after recording its pid) until killed.
  'rel-cni-fw': [bridge('pnrel200', '10.89.200.0/24'), { type: 'portmap', capabilities: { portMappings: true } }, { type: 'firewall' }, { type: 'rel-hang' }],
  'rel-cni-gone': [bridge('pnrel201', '10.89.201.0/24'), { type: 'rel-vanish' }],
  'rel-cni-missing': [{ type: 'rel-nosuch' }],
  'rel-cni-liar': [{ type: 'rel-liar', ipam: { type: 'host-local', ranges: [[{ subnet: '10.89.202.0/24' }]] } }],
  'rel-cni-val': [
    { ...bridge('pnrel203', '10.89.203.0/24'), capabilities: { ips: true } },
    { type: 'portmap', capabilities: { portMappings: true } },
  ],
};
const cni = { confDir, cacheDir, binDirs: [binDir], pluginTimeoutMs: 1500 };
const rt = new CniRuntime(cni);
const namespaces: NetNS[] = [];
const hangPidFile = path.join(tmp, 'hang.pid');

async function newNetns(): Promise<NetNS> {
  const ns = await NetNS.create({ name: uniqueName('rel-cni') });
  namespaces.push(ns);
  return ns;
}

describeRoot('CNI runtime under misbehaving plugins and crashing owners', () => {
  beforeAll(() => {
    for (const d of [confDir, binDir]) mkdirSync(d, { recursive: true });
    writePlugin(binDir, 'rel-fork', 'sleep 3001; echo "{}"'); // the shell waits on its child: no exec
    writePlugin(binDir, 'rel-vhang', PASS_THROUGH, 'sleep 3002');
    writePlugin(binDir, 'rel-hang', `echo $$ > ${hangPidFile}; exec sleep 3003`);
    writePlugin(binDir, 'rel-vanish', PASS_THROUGH);
    writePlugin(binDir, 'rel-liar', `echo '{"cniVersion":"1.0.0","ips":[{"address":"10.1.2.3/24"}]}'`);
    for (const [name, plugins] of Object.entries(LISTS))
      writeFileSync(path.join(confDir, `${name}.conflist`), JSON.stringify({ cniVersion: '1.0.0', name, plugins }));
  });

  afterAll(async () => {
    for (const p of processesWith('sleep 300')) if (/sleep 300[123]/.test(p.cmd)) process.kill(p.pid, 'SIGKILL');
    const runtime = new Runtime({ stateDir, cni });
    for (const s of await runtime.list()) await runtime.teardown(s.id).catch(() => {});
    for (const ns of namespaces) await ns.remove().catch(() => {});
    for (const b of BRIDGES) if (existsSync(`/sys/class/net/${b}`)) execFileSync('ip', ['link', 'delete', b]);
    for (const n of Object.keys(LISTS)) rmSync(`/var/lib/cni/networks/${n}`, { recursive: true, force: true });
    rmSync(tmp, { recursive: true, force: true });
  });

  test('a plugin script whose child keeps running is killed, child and all, at the time limit', async () => {
    const ns = await newNetns();
    const t0 = Date.now();
    await expect(rt.setUpPod({ id: uniqueName('rel-fork'), netnsPath: ns.path, networks: ['rel-cni-fork'] })).rejects.toMatchObject({
      code: 'ERR_CNI_PLUGIN_TIMEOUT',
    });
    expect(Date.now() - t0).toBeLessThan(6000);
    await waitFor('the plugin child to go', () => processesWith('sleep 3001').length === 0, 3000);
  });

  test('a plugin that hangs answering VERSION is killed at the time limit', async () => {
    const ns = await newNetns();
    const t0 = Date.now();
    await expect(rt.setUpPod({ id: uniqueName('rel-vhang'), netnsPath: ns.path, networks: ['rel-cni-vhang'] })).rejects.toMatchObject({
      code: 'ERR_CNI_PLUGIN_TIMEOUT',
    });
    expect(Date.now() - t0).toBeLessThan(6000);
    await waitFor('the VERSION child to go', () => processesWith('sleep 3002').length === 0, 3000);
  });

  test('an owner killed mid-ADD leaves the results so far in the cache: gc in a fresh process removes the firewall rules', async () => {
    const id = uniqueName('rel-crash');
    rmSync(hangPidFile, { force: true });
    // A long plugin timeout: the owner must be killed while the last plugin runs, not time out.
    const owner = startOwner(`
      const rt = new podnet.Runtime({ stateDir: ${JSON.stringify(stateDir)}, cni: { ...${JSON.stringify(cni)}, pluginTimeoutMs: 60000 } });
      console.log('READY');
      await rt.createSandbox({ id: ${JSON.stringify(id)}, networks: ['rel-cni-fw'], portMappings: [{ hostPort: 42001, containerPort: 80 }] });
    `);
    await owner.ready;
    const hangPid = Number(await waitFor('the last plugin to start', () => existsSync(hangPidFile) && readFileSync(hangPidFile, 'utf8').trim()));
    owner.child.kill('SIGKILL');
    process.kill(hangPid, 'SIGKILL'); // the owner's plugin, orphaned by the kill
    await new Promise((r) => owner.child.once('exit', r));
    const [lease] = leases(['rel-cni-fw']);
    expect(lease).toBeDefined();
    const ip = path.basename(lease);
    expect(iptablesRules([`${ip}/32`]).length).toBeGreaterThan(0); // the firewall plugin's CNI-FORWARD rules are there
    const gc = startOwner(
      `
      const r = await new podnet.Runtime({ stateDir: ${JSON.stringify(stateDir)}, cni: ${JSON.stringify(cni)} }).gc();
      console.log(JSON.stringify(r.errors.map((e) => e.message)), 'DONE');
    `,
      'DONE',
    );
    await gc.ready;
    expect(gc.out()).toContain('[] DONE');
    expect(iptablesRules([`${ip}/32`, `"${id}"`])).toEqual([]);
    expect(leases(['rel-cni-fw'])).toEqual([]);
    expect(filesUnder(path.join(cacheDir, 'results'), (f) => f.includes(id))).toEqual([]);
    expect(ipNetnsList().filter((n) => n.endsWith(id))).toEqual([]);
  });

  test('a network whose plugin is missing fails typed and leaves no sandbox (not one stuck in removing)', async () => {
    const runtime = new Runtime({ stateDir, cni });
    const id = uniqueName('rel-miss');
    await expect(runtime.createSandbox({ id, networks: ['rel-cni-missing'] })).rejects.toMatchObject({ code: 'ERR_CNI_PLUGIN_NOT_FOUND' });
    expect(await runtime.get(id)).toBeUndefined();
    expect(ipNetnsList().filter((n) => n.endsWith(id))).toEqual([]);
  });

  test('plugins gone from the host: teardown fails typed and keeps the pod; a forced one removes it and reports what may remain', async () => {
    const ns = await newNetns();
    const id = uniqueName('rel-gone');
    writePlugin(binDir, 'rel-vanish', PASS_THROUGH);
    const [res] = await rt.setUpPod({ id, netnsPath: ns.path, networks: ['rel-cni-gone'] });
    unlinkSync(path.join(binDir, 'rel-vanish'));
    await expect(rt.tearDownPod({ id })).rejects.toMatchObject({ code: 'ERR_CNI_TEARDOWN' });
    expect(filesUnder(path.join(cacheDir, 'results'), (f) => f.includes(id))).toHaveLength(1);
    const report = await rt.tearDownPod({ id, force: true });
    expect(report.notUndone).toHaveLength(1);
    expect(report.notUndone[0]).toMatchObject({ code: 'ERR_CNI_PLUGIN_NOT_FOUND', message: expect.stringContaining("network 'rel-cni-gone'") });
    expect(filesUnder(path.join(cacheDir, 'results'), (f) => f.includes(id))).toEqual([]);
    // The plugins still installed ran their DEL: bridge released the lease.
    expect(leases(['rel-cni-gone'])).toEqual([]);
    expect(res.result.ips?.length).toBe(1);
  });

  test('a plugin result outside the IPAM subnet is refused and rolled back', async () => {
    const ns = await newNetns();
    const id = uniqueName('rel-liar');
    await expect(rt.setUpPod({ id, netnsPath: ns.path, networks: ['rel-cni-liar'] })).rejects.toMatchObject({
      code: 'ERR_CNI_PLUGIN_OUTPUT',
      message: expect.stringContaining('10.1.2.3/24 is outside'),
    });
    expect(filesUnder(path.join(cacheDir, 'results'), (f) => f.includes(id))).toEqual([]);
  });

  test.each([
    ['a static IP outside the subnet', { ip: '10.89.99.5' }, 'ERR_INVALID_ARGUMENT'],
    ["a host IP that is not this host's", { portMappings: [{ hostIP: '10.89.203.77', hostPort: 42003, containerPort: 80 }] }, 'EADDRNOTAVAIL'],
    ['a host port a host listener holds', { portMappings: [{ hostPort: 42002, containerPort: 80 }] }, 'EADDRINUSE'],
  ])('%s is refused before any plugin runs', async (_what, extra, code) => {
    const ns = await newNetns();
    const id = uniqueName('rel-val');
    const listener = net.createServer().listen(42002);
    await new Promise((r) => listener.once('listening', r));
    try {
      await expect(rt.setUpPod({ id, netnsPath: ns.path, networks: ['rel-cni-val'], ...extra })).rejects.toMatchObject({ code });
    } finally {
      listener.close();
    }
    expect(existsSync('/sys/class/net/pnrel203')).toBe(false); // the bridge plugin never ran
    expect(filesUnder(path.join(cacheDir, 'results'), (f) => f.includes(id))).toEqual([]);
  });
});
