/** Usage texts of `podnet` and its subcommands, the error that prints them, and flag parsing. */
import { parseArgs, type ParseArgsConfig } from 'node:util';

import { ErrorCode } from '../errors';

export class UsageError extends Error {
  readonly code = ErrorCode.USAGE;
  constructor(
    readonly command: string,
    message: string,
  ) {
    super(message);
  }
}

const COMMON = `  --debug            show helpers' logs and error details
  -h, --help         show this help
`;

export const USAGE: Record<string, string> = {
  main: `Usage: podnet <command> [options]

Container networking for Node.js.

Commands:
  run [opts] -- CMD ARGS...       run a command in a fresh network, ports published
  demo                            a sandbox on the default network, end to end
  netns add|ls|rm|exec            persistent network namespaces (like ip netns)
  network ls|create|rm            native and CNI networks
  inspect ID                      a sandbox's NetworkSettings as JSON
  stats [ID...] [--watch]         traffic statistics per sandbox
  pool [ls] [--json]              pools of warm sandboxes: size, fill, hits, misses
  gc                              clean up what crashed owners left

Run 'podnet <command> --help' for a command's options.
`,
  run: `Usage: podnet run [options] -- CMD ARGS...

Runs CMD in a new network namespace with its ports published, forwards signals
and the exit code, and tears everything down when CMD exits.

  --network MODE     bridge (root default), slirp4netns (unprivileged default),
                     pasta[:OPT,...] (pasta's own options, as Podman takes them),
                     none, or a CNI network name (repeatable)
  -p, --publish SPEC [hostIP:]hostPort:containerPort[/tcp|udp|sctp] (repeatable)
  --ip IP            static IP on the first network
  --mac MAC          static MAC on the first network
  --network-opt OPT  slirp4netns option, e.g. port_handler=slirp4netns, or one
                     pasta argument, e.g. --network-opt=--mtu --network-opt=1500 (repeatable)
  --name NAME        sandbox name (default: a random id)
${COMMON}`,
  demo: `Usage: podnet demo

Starts an HTTP server inside a new sandbox on the embedded default network
(or slirp4netns and the port forwarder when not root), publishes it on a host
port, fetches a page through it, prints the inspect JSON and the traffic
statistics, and tears everything down.
${COMMON}`,
  netns: `Usage: podnet netns add NAME | ls | rm NAME... | exec NAME -- CMD ARGS...

Persistent network namespaces under /run/netns, interoperable with ip netns.
${COMMON}`,
  network: `Usage: podnet network ls | create NAME [--driver native|cni] [--subnet CIDR] [--gateway IP]
                            [--ipv6-subnet CIDR] [--ipv6-gateway IP] [--internal] [--mtu N]
                            [--no-isolate] [--bridge NAME (cni)] | rm NAME
       podnet network install-cni-plugin [NETWORK] [--dir DIR] [--conf-dir DIR] [--networks-dir DIR]

native (the default): routed veths and nftables in-process; --no-isolate lets two
such networks talk. cni: a bridge conflist run through the CNI plugins.
install-cni-plugin copies podnet's CNI plugin into DIR (default /opt/cni/bin) as
'podnet' and, given a native NETWORK, writes CONF-DIR/NETWORK.conflist (default
/etc/cni/net.d) so podman, containerd and nerdctl attach containers to it.
${COMMON}`,
  inspect: `Usage: podnet inspect ID

Prints the sandbox's NetworkSettings as JSON, like podman inspect --format json.
${COMMON}`,
  stats: `Usage: podnet stats [ID...] [--watch] [--interval SECONDS]

rx/tx bytes and packets per sandbox; --watch refreshes a live table with rates.
${COMMON}`,
  pool: `Usage: podnet pool [ls] [--json]

The pools of warm sandboxes kept by the processes using this state dir
(Runtime option 'pools' or startPool): per process and network, the target
size, the ready entries (fill), entries being made, and the creates served
from the pool (hits) or made cold because it was empty (misses).
${COMMON}`,
  gc: `Usage: podnet gc [--networks-dir DIR] [--state-dir DIR]

Tears down sandboxes whose owner crashed half-way or whose helpers died, and
removes podnet namespaces that no sandbox names, and the pool status of
processes that are gone (their warm namespaces went with them; the addresses
of their warm native-network entries are released). On native
networks (defaults /etc/podnet/networks and /var/lib/podnet) it also releases
the addresses and published ports of containers attached through podnet's CNI
plugin whose namespace is gone.
${COMMON}`,
};

export type Options = ParseArgsConfig['options'];

/** Parses `argv` for a subcommand; unknown flags are usage errors. */
export function parse(
  cmd: string,
  argv: string[],
  options: Options = {},
): { values: Record<string, string | boolean | string[] | undefined>; positionals: string[] } {
  try {
    return parseArgs({
      args: argv,
      options: { ...options, help: { type: 'boolean', short: 'h' }, debug: { type: 'boolean' } },
      allowPositionals: true,
      strict: true,
    });
  } catch (err) {
    throw new UsageError(cmd, (err as Error).message);
  }
}
