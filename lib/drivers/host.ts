/** `host`: no namespace of its own; the sandbox uses the host's network (Podman's --network host). */
import type { NetworkDriver } from './driver';

export const hostDriver: NetworkDriver = {
  name: 'host',
  namespace: 'host',
  unprivileged: true,
  accepts: { portMappings: false, staticAddress: false, networkOptions: false },
  async validate() {},
  async setUp() {},
  async tearDown() {},
};
