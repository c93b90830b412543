/** Runs the podnet CNI plugin executable as libcni does: one exec, CNI_* in the environment, the config on stdin. */
import path from 'node:path';
import { runCommand } from '../../lib/command';

export const PLUGIN = path.join(__dirname, '..', '..', 'build', 'Release', 'podnet-cni');

export interface PluginRun {
  exit: number | null;
  /** stdout parsed as JSON (null when empty): a result, an error object or VERSION's answer. */
  // eslint-disable-next-line @typescript-eslint/no-explicit-any -- tests read whichever shape the command returns
  out: any;
  stderr: string;
}

export type CniEnv = Partial<Record<'CNI_COMMAND' | 'CNI_CONTAINERID' | 'CNI_NETNS' | 'CNI_IFNAME' | 'CNI_ARGS' | 'CNI_PATH', string>>;

export async function invokePlugin(env: CniEnv, stdin: string | object): Promise<PluginRun> {
  const base: NodeJS.ProcessEnv = { PATH: process.env.PATH };
  const r = await runCommand(PLUGIN, [], {
    env: { ...base, ...env },
    input: typeof stdin === 'string' ? stdin : JSON.stringify(stdin),
    timeoutMs: 20_000,
  });
  const text = r.stdout.toString().trim();
  return { exit: r.code, out: text ? JSON.parse(text) : null, stderr: r.stderr };
}
