/** fromNative: one error shape whatever threw, errno negative as in Node's SystemError. */
import { readFile } from 'node:fs/promises';

import { PodnetError, fromNative } from '../../lib/errors';
import { native } from '../../lib/addon';

describe('fromNative', () => {
  it("keeps Node's negative errno", async () => {
    const err = await readFile('/nonexistent/podnet-unit').catch((e) => e);
    const p = fromNative(err, 'read');
    expect(p).toMatchObject({ code: 'ENOENT', errno: -2, syscall: 'open', path: '/nonexistent/podnet-unit' });
    expect(p.errno).toBe((err as NodeJS.ErrnoException).errno);
  });

  it('makes a positive errno negative and leaves a missing one missing', () => {
    expect(fromNative(Object.assign(new Error('x'), { code: 'EPERM', errno: 1 }), 'op').errno).toBe(-1);
    expect(fromNative(Object.assign(new Error('x'), { code: 'ERR_NOT_NETNS' }), 'op').errno).toBeUndefined();
  });

  it('an addon error arrives with a negative errno and its errno name as code', async () => {
    const err = await native.netnsOpen('/nonexistent/podnet-unit').catch((e) => e);
    expect(err).toMatchObject({ code: 'ENOENT', errno: -2, syscall: 'open' });
    expect(fromNative(err, 'open')).toBeInstanceOf(PodnetError);
    expect(fromNative(err, 'open').errno).toBe(-2);
  });
});
