/** PortForwarder's option checks: bad input is refused before any process starts (no root needed). */
import { PortForwarder, type PortForwarderOptions } from '../../../lib/api/portfwd';

const base: PortForwarderOptions = { netnsPath: '/proc/self/ns/net', portMappings: [{ hostPort: 1, containerPort: 1 }] };

describe('PortForwarder.start refuses bad options', () => {
  it.each<[string, Partial<Record<keyof PortForwarderOptions, unknown>>]>([
    ['keepClientAddress', { keepClientAddress: 'false' }],
    ['keepClientAddress', { keepClientAddress: 0 }],
    ['udpMaxFlows', { udpMaxFlows: 0 }],
    ['udpMaxFlows', { udpMaxFlows: 1.5 }],
    ['udpMaxFlows', { udpMaxFlows: '10' }],
    ['udpIdleTimeoutMs', { udpIdleTimeoutMs: -1 }],
    ['udpIdleTimeoutMs', { udpIdleTimeoutMs: 86400001 }],
    ['timeoutMs', { timeoutMs: 0 }],
  ])('%s: %p', async (name, bad) => {
    await expect(PortForwarder.start({ ...base, ...bad } as PortForwarderOptions)).rejects.toMatchObject({
      code: 'ERR_INVALID_ARGUMENT',
      message: expect.stringContaining(name),
    });
  });
});
