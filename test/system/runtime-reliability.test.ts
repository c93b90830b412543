/**
 * The runtime when things go wrong: a forced teardown of a sandbox whose
 * plugins have gone, restartNetwork racing a teardown, a per-user state dir
 * another user made first, and temp files of writes a crash interrupted.
 * Resources: network rel-rt205 (pnrel205, 10.89.205.0/24), test user pnrel1.
 */
import { execFileSync, spawn } from 'node:child_process';
import { chownSync, existsSync, mkdirSync, mkdtempSync, readdirSync, rmSync, unlinkSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';

import { Runtime } from '../../lib';
import { PASS_THROUGH, filesUnder, leases, writePlugin } from '../helpers/reliability';
import { createTestUser, type TestUser } from '../helpers/rootless';
import { describeRoot, ipNetnsList } from '../helpers/system';

jest.setTimeout(120_000);

const NET = 'rel-rt205';
const GONE = 'rel-rt205-gone';

describeRoot('runtime reliability', () => {
  const dir = mkdtempSync(path.join(os.tmpdir(), 'pnrel-rt-'));
  const binDir = path.join(dir, 'bin');
  const cni = { confDir: path.join(dir, 'net.d'), cacheDir: path.join(dir, 'cache'), binDirs: [binDir] };
  const rt = new Runtime({ stateDir: path.join(dir, 'state'), cni });

  beforeAll(async () => {
    mkdirSync(binDir, { recursive: true });
    await rt.cni.createNetwork({ name: NET, subnet: '10.89.205.0/24', bridge: 'pnrel205' });
    const plugins = [{ type: 'bridge', bridge: 'pnrel206', ipam: { type: 'host-local', ranges: [[{ subnet: '10.89.206.0/24' }]] } }, { type: 'rel-vanish' }];
    writeFileSync(path.join(cni.confDir, `${GONE}.conflist`), JSON.stringify({ cniVersion: '1.0.0', name: GONE, plugins }));
  });

  afterAll(async () => {
    for (const s of await rt.list()) await rt.teardown(s.id, { force: true }).catch(() => {});
    for (const b of ['pnrel205', 'pnrel206']) if (existsSync(`/sys/class/net/${b}`)) execFileSync('ip', ['link', 'delete', b]);
    for (const n of [NET, GONE]) rmSync(`/var/lib/cni/networks/${n}`, { recursive: true, force: true });
    rmSync(dir, { recursive: true, force: true });
  });

  test('plugins gone from the host: teardown fails and keeps the sandbox; teardown with force removes it and reports what may remain', async () => {
    writePlugin(binDir, 'rel-vanish', PASS_THROUGH);
    const id = 'rel-rt-gone';
    const sb = await rt.createSandbox({ id, networks: [GONE] });
    unlinkSync(path.join(binDir, 'rel-vanish'));
    await expect(rt.teardown(id)).rejects.toMatchObject({ code: 'ERR_CNI_TEARDOWN' });
    expect((await rt.get(id))?.status).toBe('removing');
    const report = await rt.teardown(id, { force: true });
    expect(report.notUndone.map((e) => e.code)).toEqual(['ERR_CNI_PLUGIN_NOT_FOUND']);
    expect(report.notUndone[0].message).toContain(`network '${GONE}'`);
    expect(await rt.get(id)).toBeUndefined();
    expect(ipNetnsList()).not.toContain(path.basename(sb.netnsPath!));
    expect(filesUnder(path.join(cni.cacheDir, 'results'))).toEqual([]);
    expect(leases([GONE])).toEqual([]); // the bridge plugin, still installed, released its address
  });

  test('restartNetwork holds the state lock: a teardown meanwhile waits, and nothing comes back after it', async () => {
    const id = 'rel-rt-restart';
    await rt.createSandbox({ id, networks: [NET] });
    const restart = rt.restartNetwork(id).then(
      () => 'restarted',
      (e) => e.code,
    );
    const down = rt.teardown(id);
    await Promise.all([restart, down]);
    expect(await rt.get(id)).toBeUndefined();
    expect(filesUnder(path.join(cni.cacheDir, 'results'))).toEqual([]);
    expect(leases([NET])).toEqual([]);
    expect(ipNetnsList().filter((n) => n.endsWith(id))).toEqual([]);
  });

  test('gc removes the temp files of state and cache writes whose writer is gone', async () => {
    await rt.list();
    const stale = [
      path.join(dir, 'state', 'sandboxes', '.rel-x.json.4194999-0a0b0c0d.tmp'),
      path.join(cni.cacheDir, 'results', '.rel-x-eth0.4194999-0a0b0c0d.tmp'),
    ];
    for (const f of stale) {
      mkdirSync(path.dirname(f), { recursive: true });
      writeFileSync(f, '{');
    }
    await rt.gc();
    for (const f of stale) expect(existsSync(f)).toBe(false);
  });

  describe('a per-user state dir under /tmp that another user made first', () => {
    let user: TestUser | undefined;
    let squatted = '';
    beforeAll(() => {
      user = createTestUser('pnrel1');
      squatted = `/tmp/podnet-${user.uid}`;
      rmSync(squatted, { recursive: true, force: true });
      mkdirSync(squatted, { mode: 0o700 });
      chownSync(squatted, 0, 0);
    });
    afterAll(() => {
      rmSync(squatted, { recursive: true, force: true });
      user?.remove();
    });

    test('is refused with ERR_STATE_DIR naming it, not followed or used', async () => {
      const script = `const { Runtime } = require(${JSON.stringify(path.join(user!.pkg, 'dist'))});
        new Runtime().createSandbox({ id: 'rel-x', network: 'none' }).then(() => console.log('created'), (e) => console.log(JSON.stringify({ code: e.code, message: e.message })));`;
      const [cmd, args] = user!.argv(process.execPath, ['-e', script]);
      // No XDG_RUNTIME_DIR: the default is /tmp/podnet-<uid>.
      const child = spawn(cmd, args, { cwd: user!.pkg, env: { PATH: process.env.PATH, HOME: `/home/${user!.name}` }, stdio: ['ignore', 'pipe', 'inherit'] });
      let out = '';
      child.stdout!.on('data', (b: Buffer) => (out += b.toString()));
      await new Promise((r) => child.once('exit', r));
      const r = JSON.parse(out.trim());
      expect(r.code).toBe('ERR_STATE_DIR');
      expect(r.message).toContain(squatted);
      expect(readdirSync(squatted)).toEqual([]);
    });
  });
});
