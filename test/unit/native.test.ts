/** The addon's typed contract (lib/native.ts) against what the built addon really exports. */
import { NATIVE_EXPORTS, native } from '../../lib/native';

describe('the native addon', () => {
  it('exports exactly the names lib/native.ts declares, each a function or class', () => {
    expect(Object.keys(native).sort()).toEqual([...NATIVE_EXPORTS].sort());
    for (const name of NATIVE_EXPORTS) expect(typeof native[name]).toBe('function');
  });
});
