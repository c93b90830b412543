/** `podnet run -p` port specs, parsed as podman run parses them (vectors, then properties). */
import fc from 'fast-check';

import { parsePortSpec } from '../../../lib/cli/port-spec';
import { PodnetError } from '../../../lib/errors';
import { checkPortMappings } from '../../../lib/ports';

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

const port = fc.integer({ min: 1, max: 65535 });

describe('parsePortSpec on generated specs', () => {
  test('arbitrary text: a mapping that passes checkPortMappings, or ERR_INVALID_ARGUMENT', () => {
    const spec = fc.oneof(fc.string(), fc.stringMatching(/^(\[[0-9a-f:]{0,12}\]:|[0-9.]{0,16}:)?[0-9-]{0,12}:[0-9-]{0,12}(\/[a-z,]{0,10})?$/));
    fc.assert(
      fc.property(spec, (s) => {
        let m;
        try {
          m = parsePortSpec(s);
        } catch (e) {
          return e instanceof PodnetError && e.code === 'ERR_INVALID_ARGUMENT';
        }
        try {
          checkPortMappings([m]);
          return true;
        } catch (e) {
          return e instanceof PodnetError && e.code === 'ERR_INVALID_ARGUMENT'; // e.g. a host IP that is not an address
        }
      }),
      { numRuns: 2000 },
    );
  });

  test('well-formed specs round-trip to their fields', () => {
    fc.assert(
      fc.property(port, port, fc.integer({ min: 1, max: 50 }), fc.constantFrom('tcp', 'udp', 'sctp', 'tcp,udp'), (h, c, n, proto) => {
        const len = Math.min(n, 65536 - Math.max(h, c));
        const spec = len > 1 ? `127.0.0.1:${h}-${h + len - 1}:${c}-${c + len - 1}/${proto}` : `127.0.0.1:${h}:${c}/${proto}`;
        expect(parsePortSpec(spec)).toEqual({ hostIP: '127.0.0.1', hostPort: h, containerPort: c, protocol: proto, ...(len > 1 ? { range: len } : {}) });
      }),
      { numRuns: 500 },
    );
  });
});
