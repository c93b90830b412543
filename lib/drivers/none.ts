/** `none`: a namespace of its own with loopback only (Podman's --network none). */
import type { NetworkDriver } from './driver';

export const noneDriver: NetworkDriver = {
  name: 'none',
  namespace: 'own',
  unprivileged: true,
  accepts: { portMappings: false, staticAddress: false, networkOptions: false },
  poolable: true, // loopback only: a warm namespace is the whole sandbox
  async validate() {},
  async setUp() {},
  async tearDown() {},
};
