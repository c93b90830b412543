/** spawnHelper's readiness wait settles on every path (no root needed). */
import { Socket } from 'node:net';

import { spawnHelper } from '../../lib/spawn';

describe('HelperProcess.waitReady', () => {
  test('a read error on the ready pipe rejects with a typed error carrying the output, and the helper is killed', async () => {
    const h = spawnHelper('sh', ['-c', 'echo starting; exec sleep 30']);
    // Catch the ready pipe's socket as waitReady subscribes to its errors, to fail it as a broken pipe would.
    const seen: Socket[] = [];
    const once = jest.spyOn(Socket.prototype, 'once').mockImplementation(function (this: Socket, ev: string | symbol, fn: (...a: never[]) => void) {
      if (ev === 'error') seen.push(this);
      return (Socket.prototype.addListener as (e: string | symbol, f: unknown) => Socket).call(this, ev, fn);
    });
    let ready: Promise<unknown>;
    try {
      ready = h.waitReady(10_000).then(
        () => 'resolved',
        (e) => e,
      );
    } finally {
      once.mockRestore();
    }
    const sock = seen[0];
    expect(sock).toBeDefined();
    await new Promise((r) => setTimeout(r, 50));
    sock.emit('error', Object.assign(new Error('read EIO'), { code: 'EIO', syscall: 'read' }));
    const deadline = new Promise((r) => setTimeout(r, 3000, 'never settled'));
    const got = await Promise.race([ready, deadline]);
    expect(got).toMatchObject({ name: 'PodnetError', code: 'EIO', details: { output: expect.stringContaining('starting') } });
    expect(h.exitStatus).toEqual({ code: null, signal: 'SIGKILL' });
  });
});
