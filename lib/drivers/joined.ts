/**
 * Joined namespaces, never made nor removed by the sandbox: `ns:<path>` (an
 * existing namespace, Podman's --network ns:PATH) and `container:<id>` (another
 * sandbox's, resolved by the runtime under its lock when the sandbox is made).
 */
import { NetNS } from '../netns';
import type { NetworkDriver } from './driver';

const base = {
  namespace: 'joined',
  unprivileged: true,
  accepts: { portMappings: false, staticAddress: false, networkOptions: false },
  async validate() {},
  async tearDown() {},
} as const;

export const nsPathDriver: NetworkDriver = {
  ...base,
  name: 'ns:<path>',
  /** The path must be a network namespace now (ENOENT, ERR_NOT_NETNS), before the sandbox is recorded. */
  async validate(state) {
    (await NetNS.open(state.mode.slice('ns:'.length))).close();
  },
  async setUp({ state, live }) {
    live.netns = await NetNS.open(state.mode.slice('ns:'.length));
    state.netnsPath = live.netns.path;
  },
};

export const containerDriver: NetworkDriver = {
  ...base,
  name: 'container:<id>',
  async setUp() {}, // netnsPath and usernsPath were copied from the owner at creation
};
