/** `podnet run`: a command in a fresh network, torn down when it exits or is interrupted. */
import { randomBytes } from 'node:crypto';

import { spawnIn } from '../runtime/spawn-in-sandbox';
import { Runtime } from '../runtime/runtime';
import type { NetworkMode } from '../runtime/state';
import { parsePortSpec } from './port-spec';
import { SignalGuard } from './supervise';
import { USAGE, UsageError, parse } from './usage';

const MODES = new Set(['bridge', 'slirp4netns', 'pasta', 'none', 'host']);

export async function run(argv: string[]): Promise<number> {
  const { values, positionals } = parse('run', argv, {
    network: { type: 'string', multiple: true },
    publish: { type: 'string', short: 'p', multiple: true },
    ip: { type: 'string' },
    mac: { type: 'string' },
    'network-opt': { type: 'string', multiple: true },
    name: { type: 'string' },
  });
  if (values.help) {
    process.stdout.write(USAGE.run);
    return 0;
  }
  if (positionals.length === 0) throw new UsageError('run', 'missing the command to run (after --)');
  const nets = (values.network as string[] | undefined) ?? [];
  let networkOptions = values['network-opt'] as string[] | undefined;
  // Podman's `--network pasta:OPT,OPT`: pasta's own command-line arguments.
  if (nets.length === 1 && nets[0].startsWith('pasta:')) {
    networkOptions = [...nets[0].slice(6).split(','), ...(networkOptions ?? [])];
    nets[0] = 'pasta';
  }
  const mode = nets.length === 1 && (MODES.has(nets[0]) || /^(ns|container):/.test(nets[0])) ? (nets[0] as NetworkMode) : undefined;
  let portMappings;
  try {
    portMappings = ((values.publish as string[] | undefined) ?? []).map(parsePortSpec);
  } catch (err) {
    throw new UsageError('run', (err as Error).message);
  }
  const id = (values.name as string | undefined) ?? `run-${randomBytes(6).toString('hex')}`;
  const rt = new Runtime();
  const guard = new SignalGuard();
  try {
    const sandbox = await rt.createSandbox({
      id,
      ephemeral: true,
      network: mode,
      networks: mode === undefined && nets.length ? nets : undefined,
      portMappings,
      staticIP: values.ip as string | undefined,
      staticMAC: values.mac as string | undefined,
      networkOptions,
    });
    try {
      if (guard.received) return guard.exitCode; // interrupted during set-up
      return await guard.wait(spawnIn(sandbox, positionals[0], positionals.slice(1), { stdio: 'inherit' }), positionals[0]);
    } finally {
      await rt.teardown(id);
    }
  } finally {
    guard.release();
  }
}
