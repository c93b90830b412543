/** Pool entry ids of native networks: who made an entry, read back from its id (no root). */
import { poolEntryOwner } from '../../../lib/runtime/pool-native';

describe('poolEntryOwner', () => {
  const prefix = 'podnet-0123abcd-';

  it('reads the maker of an entry id', () => {
    expect(poolEntryOwner(`${prefix}_4242.987654.7`, prefix)).toEqual({ pid: 4242, start: 987654 });
  });

  it('is undefined for a sandbox id, another state dir, or a malformed entry id', () => {
    for (const id of [
      `${prefix}web.1.2.3`,
      `${prefix}4242.987654.7`,
      `podnet-ffffffff-_4242.987654.7`,
      `${prefix}_4242.x.7`,
      `${prefix}_4242.1`,
      `${prefix}_`,
    ]) {
      expect(poolEntryOwner(id, prefix)).toBeUndefined();
    }
  });
});
