/**
 * gc shares the CNI cache directory with other runtimes: podman's libcni
 * (4.3) writes result entries without a namespace path. gc must leave them
 * alone and go on, not fail on them.
 */
import { mkdirSync, mkdtempSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';

import { Runtime } from '../../lib';
import { describeRoot } from '../helpers/system';

describeRoot('gc beside another runtime’s CNI cache entries', () => {
  let dir = '';
  beforeAll(() => (dir = mkdtempSync(path.join(os.tmpdir(), 'pn-gcf-'))));
  afterAll(() => rmSync(dir, { recursive: true, force: true }));

  it('skips an entry without a namespace path and keeps it', async () => {
    const results = path.join(dir, 'cache', 'results');
    mkdirSync(results, { recursive: true, mode: 0o700 });
    const name = 'gcf-net-0123456789abcdef-eth0';
    const entry = {
      kind: 'cniCacheV1',
      containerId: '0123456789abcdef',
      config: Buffer.from('{}').toString('base64'),
      ifName: 'eth0',
      networkName: 'gcf-net',
      cniArgs: [],
      result: {},
    };
    writeFileSync(path.join(results, name), JSON.stringify(entry), { mode: 0o600 });
    const rt = new Runtime({ stateDir: path.join(dir, 'state'), cni: { cacheDir: path.join(dir, 'cache'), confDir: path.join(dir, 'net.d') } });
    const removed = await rt.gc();
    expect(removed.errors).toEqual([]);
    expect(removed.cniAttachments).toEqual([]);
    expect(readdirSync(results)).toEqual([name]);
  });
});
