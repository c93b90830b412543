/** The native driver's conversions: port mappings to engine mappings, attachments to CNI results for inspect. */
import { toCniResult, toNativePorts } from '../../../lib/drivers/native';
import { resultToBasicNetworkConfig } from '../../../lib/inspect';

describe('native driver conversions', () => {
  it('splits "tcp,udp" into one engine mapping per protocol', () => {
    expect(
      toNativePorts([
        { hostPort: 8080, containerPort: 80, protocol: 'tcp,udp', range: 2 },
        { hostIP: '127.0.0.1', hostPort: 9, containerPort: 9 },
      ]),
    ).toEqual([
      { protocol: 'tcp', hostIp: '', hostPort: 8080, containerPort: 80, range: 2 },
      { protocol: 'udp', hostIp: '', hostPort: 8080, containerPort: 80, range: 2 },
      { protocol: 'tcp', hostIp: '127.0.0.1', hostPort: 9, containerPort: 9, range: 1 },
    ]);
  });

  it('gives inspect the sandbox interface, its addresses and gateways', () => {
    const r = toCniResult(
      {
        network: 'n',
        containerId: 'c',
        ifname: 'eth0',
        hostIfname: 'pn0123456789abc',
        mac: '02:00:00:00:00:01',
        hostMac: 'ee:ee:ee:ee:ee:ee',
        mtu: 1500,
        ips: [
          { address: '10.1.0.5/24', gateway: '10.1.0.1' },
          { address: 'fd00:1::5/64', gateway: 'fe80::ecee:eeff:feee:eeee' },
        ],
        routes: [{ dst: '0.0.0.0/0', gw: '10.1.0.1' }],
        ports: [],
      },
      '/run/netns/x',
    );
    expect(resultToBasicNetworkConfig(r)).toMatchObject({
      IPAddress: '10.1.0.5',
      IPPrefixLen: 24,
      Gateway: '10.1.0.1',
      MacAddress: '02:00:00:00:00:01',
      GlobalIPv6Address: 'fd00:1::5',
      GlobalIPv6PrefixLen: 64,
      IPv6Gateway: 'fe80::ecee:eeff:feee:eeee',
    });
  });
});
