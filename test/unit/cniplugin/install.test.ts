/** installCniPlugin: the executable copied into a plugin directory, a conflist for a native network; bad input writes nothing. */
import { mkdirSync, mkdtempSync, readFileSync, readdirSync, rmSync, statSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';

import { cniPluginPath, installCniPlugin } from '../../../lib/cniplugin/install';
import { PodnetError } from '../../../lib/errors';

describe('installCniPlugin', () => {
  let dir: string;
  beforeEach(() => {
    dir = mkdtempSync(path.join(os.tmpdir(), 'cnip-install-'));
    mkdirSync(path.join(dir, 'networks'));
    writeFileSync(
      path.join(dir, 'networks', 'cnip-web.json'),
      JSON.stringify({ name: 'cnip-web', driver: 'native', subnets: [{ subnet: '10.89.231.0/24', gateway: '10.89.231.1' }] }),
    );
  });
  afterEach(() => rmSync(dir, { recursive: true, force: true }));

  it('copies the plugin as an executable named podnet and writes the conflist', () => {
    const done = installCniPlugin({
      dir: path.join(dir, 'bin'),
      confDir: path.join(dir, 'net.d'),
      networksDir: path.join(dir, 'networks'),
      network: 'cnip-web',
    });
    expect(done.plugin).toBe(path.join(dir, 'bin', 'podnet'));
    expect(statSync(done.plugin).mode & 0o777).toBe(0o755);
    expect(readFileSync(done.plugin).equals(readFileSync(cniPluginPath()))).toBe(true);
    expect(JSON.parse(readFileSync(done.conflist!, 'utf8'))).toEqual({
      cniVersion: '1.0.0',
      name: 'cnip-web',
      plugins: [{ type: 'podnet', network: 'cnip-web', networksDir: path.join(dir, 'networks'), capabilities: { portMappings: true, ips: true, mac: true } }],
    });
    expect(readdirSync(path.join(dir, 'bin'))).toEqual(['podnet']); // no temp file left
  });

  it('without a network installs only the plugin, replacing an older copy', () => {
    mkdirSync(path.join(dir, 'bin'));
    writeFileSync(path.join(dir, 'bin', 'podnet'), 'old');
    const done = installCniPlugin({ dir: path.join(dir, 'bin'), confDir: path.join(dir, 'net.d') });
    expect(done.conflist).toBeUndefined();
    expect(readFileSync(done.plugin).length).toBeGreaterThan(3);
    expect(() => readdirSync(path.join(dir, 'net.d'))).toThrow();
  });

  it.each([
    ['a missing network', { network: 'cnip-none' }, 'ERR_NATIVE_NETWORK_NOT_FOUND', /podnet network 'cnip-none' not found/],
    ['a network name with a slash', { network: '../x' }, 'ERR_INVALID_ARGUMENT', /network name/],
    ['a relative plugin directory', { dir: 'bin' }, 'ERR_INVALID_ARGUMENT', /plugin directory/],
  ])('refuses %s and writes nothing', (_what, opts, code, msg) => {
    const run = () => installCniPlugin({ dir: path.join(dir, 'bin'), confDir: path.join(dir, 'net.d'), networksDir: path.join(dir, 'networks'), ...opts });
    expect(run).toThrow(PodnetError);
    expect(run).toThrow(msg);
    try {
      run();
    } catch (e) {
      expect((e as PodnetError).code).toBe(code);
    }
    expect(readdirSync(dir)).toEqual(['networks']);
  });
});
