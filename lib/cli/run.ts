/** `podnet run`: a command in a fresh network, torn down when it exits or is interrupted. */
import { constants } from 'node:os';
import { randomBytes } from 'node:crypto';

import { spawnIn } from '../runtime/exec';
import { Runtime } from '../runtime/runtime';
import type { NetworkMode, SandboxState } from '../runtime/state';
import { parsePortSpec } from './ports';
import { USAGE, UsageError, parse } from './usage';

const MODES = new Set(['bridge', 'slirp4netns', 'none', 'host']);

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
  const mode = nets.length === 1 && (MODES.has(nets[0]) || /^(ns|container):/.test(nets[0])) ? (nets[0] as NetworkMode) : undefined;
  let portMappings;
  try {
    portMappings = ((values.publish as string[] | undefined) ?? []).map(parsePortSpec);
  } catch (err) {
    throw new UsageError('run', (err as Error).message);
  }
  const id = (values.name as string | undefined) ?? `run-${randomBytes(6).toString('hex')}`;
  const rt = new Runtime();
  const sandbox = await rt.createSandbox({
    id,
    network: mode,
    networks: mode === undefined && nets.length ? nets : undefined,
    portMappings,
    staticIP: values.ip as string | undefined,
    staticMAC: values.mac as string | undefined,
    networkOptions: values['network-opt'] as string[] | undefined,
  });
  try {
    return await runInside(sandbox, positionals);
  } finally {
    await rt.teardown(id);
  }
}

/** Runs the command inside the sandbox's namespaces, forwarding signals; resolves with its exit code. */
export function runInside(sandbox: SandboxState, cmd: string[]): Promise<number> {
  const child = spawnIn(sandbox, cmd[0], cmd.slice(1), { stdio: 'inherit' });
  const signals: NodeJS.Signals[] = ['SIGINT', 'SIGTERM', 'SIGHUP', 'SIGQUIT'];
  const forward = (sig: NodeJS.Signals) => child.kill(sig);
  for (const s of signals) process.on(s, forward);
  return new Promise((resolve) => {
    const done = (code: number) => {
      for (const s of signals) process.off(s, forward);
      resolve(code);
    };
    child.on('error', (err) => {
      process.stderr.write(`podnet: cannot run ${cmd[0]}: ${err.message}\n`);
      done(127);
    });
    child.on('exit', (code, signal) => done(code ?? 128 + (signal ? constants.signals[signal] : 0)));
  });
}
