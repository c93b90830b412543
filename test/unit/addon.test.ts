/** The addon's typed contract (lib/addon.ts) against what the built addon really exports. */
import { NATIVE_EXPORTS, native } from '../../lib/addon';

describe('the native addon', () => {
  it('exports exactly the names lib/addon.ts declares, each a function or class', () => {
    expect(Object.keys(native).sort()).toEqual([...NATIVE_EXPORTS].sort());
    for (const name of NATIVE_EXPORTS) expect(typeof native[name]).toBe('function');
  });
});
