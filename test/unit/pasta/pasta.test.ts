/** A failed pasta start typed by what pasta printed (the Debian 12 pasta's messages and a newer one's); the sweep of killed owners' FIFO dirs. */
import { mkdirSync, mkdtempSync, readdirSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';

import { ErrorCode, PodnetError } from '../../../lib/errors';
import { pastaError, sweepPastaTemp } from '../../../lib/pasta/pasta';

const exited = () => new PodnetError(ErrorCode.HELPER_EXITED, 'pasta (pid 7) exited with status 1 before it was ready: raw output', { details: { pid: 7 } });

describe('pastaError', () => {
  test.each([
    ['Failed to send 20 bytes to syslog\nInvalid MTU: 70000', ErrorCode.PASTA_OPTION, 'exited with status 1 before it was ready: Invalid MTU: 70000'],
    [
      "pasta: unrecognized option '--bogus'\nUsage: pasta [OPTION]...\n  -d, --debug\t\tBe verbose",
      ErrorCode.PASTA_OPTION,
      "unrecognized option '--bogus'; Usage: pasta [OPTION]...",
    ],
    ["Failed to bind port 8080 (Address already in use) for option '-t 8080', exiting", ErrorCode.PASTA_PORT, 'Failed to bind port 8080'],
    [
      "Don't run as root. Changing to nobody...\nCouldn't switch to pasta namespaces",
      ErrorCode.PASTA_EXITED,
      "Changing to nobody...; Couldn't switch to pasta namespaces",
    ],
    ['', ErrorCode.PASTA_EXITED, 'before it was ready'],
  ])('%j -> %s', (output, code, msg) => {
    const e = pastaError(exited(), output, "'/run/netns/x'");
    expect(e.code).toBe(code);
    expect(e.message).toContain(`pasta for '/run/netns/x': pasta (pid 7) exited with status 1`);
    expect(e.message).toContain(msg);
    expect(e.message).not.toContain('raw output');
    expect(e.message).not.toContain('syslog');
    expect(e.details).toMatchObject({ pid: 7, output: output.replace(/^Failed to send \d+ bytes to syslog\n/gm, '').trim() });
  });

  test('a timeout stays a timeout', () => {
    const t = new PodnetError(ErrorCode.HELPER_TIMEOUT, 'pasta (pid 7) not ready after 10 ms', { details: { pid: 7 } });
    expect(pastaError(t, '', "'/x'").code).toBe(ErrorCode.PASTA_TIMEOUT);
  });
});

describe('sweepPastaTemp', () => {
  test("removes the FIFO dirs of owners that are gone, keeps a live owner's and what is not a FIFO dir", () => {
    const dir = mkdtempSync(path.join(os.tmpdir(), 'pasta-sweep-'));
    try {
      // 4194305 is above the largest pid_max (2^22): never a live process.
      for (const n of [`podnet-pasta-${process.pid}-a`, 'podnet-pasta-4194305-b', 'podnet-pasta-x', 'other']) mkdirSync(path.join(dir, n));
      expect(sweepPastaTemp(dir)).toEqual(['podnet-pasta-4194305-b']);
      expect(readdirSync(dir).sort()).toEqual(['other', `podnet-pasta-${process.pid}-a`, 'podnet-pasta-x']);
      expect(sweepPastaTemp(path.join(dir, 'missing'))).toEqual([]);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
