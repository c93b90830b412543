/** `podnet run -p` port specs, parsed as podman run parses them (vectors). */
import { parsePortSpec } from '../../../lib/cli/port-spec';
import { PodnetError } from '../../../lib/errors';

describe('parsePortSpec', () => {
  it.each([
    ['8080:80', { hostPort: 8080, containerPort: 80 }],
    ['127.0.0.1:8080:80', { hostIP: '127.0.0.1', hostPort: 8080, containerPort: 80 }],
    ['[::1]:8080:80/udp', { hostIP: '::1', hostPort: 8080, containerPort: 80, protocol: 'udp' }],
    ['8080:80/tcp,udp', { hostPort: 8080, containerPort: 80, protocol: 'tcp,udp' }],
    ['9000-9002:7000-7002', { hostPort: 9000, containerPort: 7000, range: 3 }],
    ['0:80', { hostPort: 0, containerPort: 80 }],
    ['10.89.0.1:53:53/sctp', { hostIP: '10.89.0.1', hostPort: 53, containerPort: 53, protocol: 'sctp' }],
  ])('%s', (spec, want) => {
    expect(parsePortSpec(spec)).toEqual(want);
  });

  it.each([
    ['80', 'is not [hostIP:]hostPort:containerPort'],
    ['a:80', "host port 'a'"],
    ['8080:70000', 'out of 0-65535'],
    ['8080:0', 'container port 0'],
    ['8080:80/icmp', "protocol 'icmp'"],
    ['9000-9001:80', 'ranges differ'],
    ['9002-9000:80-82', 'out of 0-65535'],
    ['1:2:3:4', 'is not [hostIP:]hostPort'],
  ])('refuses %s', (spec, msg) => {
    let err: unknown;
    try {
      parsePortSpec(spec);
    } catch (e) {
      err = e;
    }
    expect(err).toBeInstanceOf(PodnetError);
    expect((err as PodnetError).code).toBe('ERR_INVALID_ARGUMENT');
    expect((err as PodnetError).message).toContain(msg);
    expect((err as PodnetError).message).toContain(spec);
  });
});
