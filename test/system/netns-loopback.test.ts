/**
 * setLoopbackUp acts on the namespace the handle named when it was called,
 * even if the handle is closed and its fd number reused before the namespace
 * thread reaches the job.
 * Resources: namespaces core-lo-*.
 */
import { execFileSync } from 'node:child_process';
import { closeSync, openSync } from 'node:fs';

import { NetNS } from '../../lib';
import { describeRoot, uniqueName } from '../helpers/system';

function loUp(name: string): boolean {
  return /<[^>]*\bUP\b/.test(execFileSync('ip', ['-n', name, 'link', 'show', 'lo'], { encoding: 'utf8' }));
}

describeRoot('NetNS.setLoopbackUp', () => {
  const made: NetNS[] = [];
  afterAll(async () => {
    for (const ns of made) await ns.remove().catch(() => {});
  });

  it('sets lo up in its own namespace when its fd is closed and reused at once', async () => {
    const a = await NetNS.create({ name: uniqueName('core-lo-a') });
    made.push(a);
    const b = await NetNS.create({ name: uniqueName('core-lo-b') });
    made.push(b);
    // Keep the namespace thread busy so the job below runs after the fd is reused.
    const busy = Array.from({ length: 20 }, () => NetNS.create({ name: uniqueName('core-lo-x') }).then((ns) => made.push(ns)));
    const fd = a.fd;
    const up = a.setLoopbackUp();
    a.close();
    // Fds are handed out lowest first: open `b` until its fd takes the number `a` had.
    const opened: number[] = [];
    try {
      for (let i = 0; i < 1000 && opened[opened.length - 1] !== fd; i++) opened.push(openSync(b.path, 'r'));
      expect(opened[opened.length - 1]).toBe(fd);
      await up;
    } finally {
      for (const f of opened) closeSync(f);
    }
    await Promise.all(busy);
    expect(loUp(a.name)).toBe(true);
    expect(loUp(b.name)).toBe(false);
  });
});
