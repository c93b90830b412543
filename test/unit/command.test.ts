/** runCommand: time limits and settling hold against commands whose children keep their pipes open. */
import { readFileSync } from 'node:fs';

import { runCommand } from '../../lib/command';

/** Whether `pid` runs (a zombie waiting for init to reap it does not). */
function running(pid: number): boolean {
  try {
    return !/^\d+ \(.*\) Z/.test(readFileSync(`/proc/${pid}/stat`, 'utf8'));
  } catch {
    return false;
  }
}

/** Waits until `pid` no longer runs, or fails at the deadline. */
async function gone(pid: number, deadlineMs = 3000): Promise<boolean> {
  const end = Date.now() + deadlineMs;
  while (running(pid)) {
    if (Date.now() > end) return false;
    await new Promise((r) => setTimeout(r, 20));
  }
  return true;
}

describe('runCommand', () => {
  test('a time limit kills the whole process group: a shell waiting on a child settles on time', async () => {
    const t0 = Date.now();
    // The shell prints its child's pid, then waits: without a group kill, `sleep` holds stdout for 30 s.
    const r = await runCommand('sh', ['-c', 'sleep 30 & echo $!; wait'], { timeoutMs: 300 });
    expect(Date.now() - t0).toBeLessThan(2000);
    expect(r.timedOut).toBe(true);
    expect(r.signal).toBe('SIGKILL');
    const pid = Number(r.stdout.toString().trim());
    expect(pid).toBeGreaterThan(0);
    expect(await gone(pid)).toBe(true);
  });

  test('a command that exits while a child holds its stdout settles after a bounded drain, output kept', async () => {
    const t0 = Date.now();
    const r = await runCommand('sh', ['-c', 'sleep 30 & echo $!; echo done >&2'], { drainMs: 200 });
    expect(Date.now() - t0).toBeLessThan(2000);
    expect(r.code).toBe(0);
    expect(r.timedOut).toBe(false);
    expect(r.stderr).toBe('done\n');
    expect(await gone(Number(r.stdout.toString().trim()))).toBe(true); // the stray child went with the group
  });

  test('a command that closes its pipes settles at once with all its output', async () => {
    const r = await runCommand('sh', ['-c', 'head -c 200000 /dev/zero; exit 3'], { drainMs: 5000 });
    expect(r.code).toBe(3);
    expect(r.stdout.length).toBe(200000);
  });

  test('input reaches stdin; a missing command rejects with its errno name', async () => {
    expect((await runCommand('cat', [], { input: 'abc' })).stdout.toString()).toBe('abc');
    await expect(runCommand('/nonexistent/cmd', [])).rejects.toMatchObject({ code: 'ENOENT' });
  });
});
