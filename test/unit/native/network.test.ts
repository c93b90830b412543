/** Native network definitions: validation and overlap checks, before anything is written. */
import { buildNativeNetwork, checkNoOverlap } from '../../../lib/native/network';

describe('buildNativeNetwork', () => {
  it('fills the gateway, MTU and isolation defaults', () => {
    const d = buildNativeNetwork({ name: 'n1', subnet: '10.1.0.0/16', ipv6Subnet: 'fd00:1::/64' });
    expect(d.subnets).toEqual([
      { subnet: '10.1.0.0/16', gateway: '10.1.0.1' },
      { subnet: 'fd00:1::/64', gateway: 'fd00:1::1' },
    ]);
    expect(d).toMatchObject({ driver: 'native', mtu: 1500, internal: false, isolate: true });
  });

  it.each([
    [{ name: 'n', subnet: '10.1.0.0/33' }, /subnet/],
    [{ name: 'n', subnet: '10.1.0.1/24' }, /host bits/],
    [{ name: 'n', subnet: '10.1.0.0/31' }, /too small/],
    [{ name: 'n', subnet: '10.1.0.0/24', gateway: '10.2.0.1' }, /gateway/],
    [{ name: 'n', subnet: 'fd00::/64' }, /ipv4/],
    [{ name: 'n' }, /need subnet/],
    [{ name: 'bad name', subnet: '10.1.0.0/24' }, /network name/],
    [{ name: 'n', subnet: '10.1.0.0/24', mtu: 100 }, /mtu/],
  ])('refuses %j', (opts, msg) => {
    expect(() => buildNativeNetwork(opts)).toThrow(expect.objectContaining({ code: 'ERR_INVALID_ARGUMENT', message: expect.stringMatching(msg) }));
  });
});

describe('checkNoOverlap', () => {
  const d = buildNativeNetwork({ name: 'n1', subnet: '10.1.0.0/24', ipv6Subnet: 'fd00:1::/64' });
  it('refuses a subnet inside or around another network', () => {
    expect(() => checkNoOverlap(d, new Map([['other', ['10.0.0.0/8']]]))).toThrow(expect.objectContaining({ code: 'ERR_NATIVE_SUBNET_OVERLAP' }));
    expect(() => checkNoOverlap(d, new Map([['other', ['10.1.0.128/25']]]))).toThrow(/overlaps 10.1.0.128\/25 of network 'other'/);
    expect(() => checkNoOverlap(d, new Map([['v6', ['fd00:1::/48']]]))).toThrow(expect.objectContaining({ code: 'ERR_NATIVE_SUBNET_OVERLAP' }));
  });
  it('takes disjoint subnets and other families', () => {
    expect(() => checkNoOverlap(d, new Map([['a', ['10.1.1.0/24', 'fd00:2::/64']]]))).not.toThrow();
  });
});
