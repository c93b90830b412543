/**
 * An owner killed after pasta started but before its pid was recorded (pasta
 * records only once ready): gc in a fresh process must stop that pasta, which
 * nothing else ever stops (pasta has no exit fd, and the Debian 12 pasta does
 * not quit when its namespace file goes), and the dir of its readiness FIFO. The owner's pasta is a wrapper that
 * marks its start and waits before it execs pasta, so the owner is killed at
 * exactly that point.
 * Resources: host port 46100, sandbox ids rel-pasta-*.
 */
import { chmodSync, existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';

import { Runtime } from '../../lib';
import { processesWith, runWorker, startOwner, waitFor } from '../helpers/reliability';
import { describeRoot } from '../helpers/system';

jest.setTimeout(120_000);

describeRoot('pasta started by an owner killed before it was ready', () => {
  const dir = mkdtempSync(path.join(os.tmpdir(), 'pnrel-pasta-'));
  const binary = path.join(dir, 'bin', 'pasta');
  const marker = path.join(dir, 'started');
  const runtime = { stateDir: path.join(dir, 'state'), pastaBinary: binary };
  const rt = new Runtime(runtime);
  const id = 'rel-pasta-stray';
  const netns = `/run/netns/${rt.netnsPrefix}${id}`;

  let fifo = '';
  afterAll(async () => {
    for (const p of processesWith(netns)) process.kill(p.pid, 'SIGKILL');
    if (fifo) rmSync(path.dirname(fifo), { recursive: true, force: true });
    await rt.teardown(id, { force: true }).catch(() => {});
    rmSync(dir, { recursive: true, force: true });
  });

  test('gc stops it, and removes the sandbox and its namespace', async () => {
    // The real pasta for --help/--version (feature probing); a marked, delayed start otherwise.
    mkdirSync(path.dirname(binary));
    writeFileSync(
      binary,
      `#!/bin/sh
case "$1" in --help|--version|-h) exec /usr/bin/pasta "$@" ;; esac
echo $$ > ${marker}.tmp
for a; do [ "$prev" = --pid ] && echo "$a" >> ${marker}.tmp; prev=$a; done
mv ${marker}.tmp ${marker}
sleep 1
exec /usr/bin/pasta "$@"
`,
    );
    chmodSync(binary, 0o755);
    const owner = startOwner(
      `const rt = new podnet.Runtime(${JSON.stringify(runtime)});
       console.log('READY');
       await rt.createSandbox({ id: ${JSON.stringify(id)}, network: 'pasta', portMappings: [{ hostPort: 46100, containerPort: 80 }] });`,
    );
    await owner.ready;
    await waitFor('the owner to start pasta', () => existsSync(marker), 30_000);
    owner.child.kill('SIGKILL');
    const [pid, pidFile] = readFileSync(marker, 'utf8').trim().split('\n');
    fifo = pidFile;
    // The wrapper becomes pasta (exec), serving the sandbox's namespace, with nobody to stop it.
    await waitFor('pasta to run', () => processesWith(netns).some((p) => p.pid === Number(pid) && p.cmd.startsWith('/usr/bin/pasta ')), 10_000);
    expect((await rt.get(id))?.helpers.pasta).toBeUndefined();

    const r = await runWorker({ runtime, how: 'gc' });
    expect(r.errors).toEqual([]);
    expect(r.gc!.sandboxes).toEqual([id]);
    expect(processesWith(netns)).toEqual([]);
    expect(existsSync(netns)).toBe(false);
    expect(await rt.get(id)).toBeUndefined();
    // The readiness FIFO's dir, which the owner would have removed.
    expect(existsSync(path.dirname(fifo))).toBe(false);
  });
});
