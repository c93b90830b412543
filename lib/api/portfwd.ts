/** `podnet/portfwd`: the port forwarder (host ports to a namespace) on its own. */
export { PortForwarder } from '../portfwd/forwarder';
export type { PortForwarderOptions, PortForwarderHandle } from '../portfwd/forwarder';
