/**
 * pasta (passt project) started natively for a network namespace, for root
 * and unprivileged callers, the way Podman 5 starts it (see ./args.ts), but
 * managed like podnet's other helpers (spawnHelper: pidfd, own process group,
 * output captured) instead of letting it fork into the background:
 *
 * - Readiness: in the foreground (`-f`) pasta writes its pid file after
 *   `--config-net` has configured the interface and every forwarded port is
 *   bound (passt.c main(): conf(), tap_sock_init(), tcp_init()/udp_init(),
 *   then the pid file). podnet gives it a FIFO as that file, opened here for
 *   reading and writing (so there is never an EOF), and waits for the pid to
 *   arrive. A FIFO path, not an inherited fd: pasta since 2024-08 closes every
 *   fd it did not ask for (passt commit 09603ca), so the ready pipe at fd 4
 *   would not survive.
 * - A pasta that exits first (bad option, namespace it cannot enter, a port it
 *   cannot bind) is seen at once through its pidfd; the typed error carries its
 *   output. Once running, `died` settles the moment it exits unasked.
 * - Stop: SIGTERM (pasta's exit handler), SIGKILL after a grace period.
 *
 * Ports pasta cannot bind: the Debian 12 pasta (0.0~git20230309) skips a port
 * already in use and runs on, so each host port is probed before the start
 * and a busy one is refused (ERR_PASTA_PORT); newer pasta exits instead
 * ("Failed to bind port"), which the output check maps to the same code.
 */
import { existsSync, mkdtempSync, openSync, readdirSync, rmSync } from 'node:fs';
import { readFile, readdir } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';

import type { PortMapping } from '../types';
import { ErrorCode, PodnetError, invalidArgument } from '../errors';
import { native } from '../addon';
import { checkPortMappings, portFree, resolveHostPorts, toPortMappings, type CheckedPortMapping } from '../ports';
import { checkTunAccess } from '../rootless/tun';
import { isAlive, procRef } from '../runtime/proc';
import { spawnHelper, type HelperExit, type HelperProcess } from '../spawn';
import { checkPath } from '../validate';
import { checkPastaOptions, pastaArgs } from './args';
import { cleanPastaOutput, pastaFeatures, type PastaFeatures } from './features';

export interface PastaStartOptions {
  /** Path of the network namespace to configure. */
  netns: string;
  /** User namespace owning it (unprivileged callers: the holder's). */
  userns?: string;
  /** pasta binary; default pasta from PATH. */
  binary?: string;
  /** Extra pasta options, one argument per element (Podman's `--network pasta:OPTIONS`). */
  options?: readonly string[];
  /** Published ports, forwarded by pasta itself; hostPort 0 gets a free port. */
  portMappings?: PortMapping[];
  /** How long to wait for readiness (default 10000 ms). */
  readyTimeoutMs?: number;
  /** Directory for the readiness FIFO's private temp dir; default the OS temp dir. */
  tmpDir?: string;
}

const isRoot = () => process.geteuid?.() === 0;

/** Types a failure to start by what pasta said (exported for unit tests). @internal */
export function pastaError(err: PodnetError, output: string, where: string): PodnetError {
  const out = cleanPastaOutput(output).trim();
  let code: string = ErrorCode.PASTA_EXITED;
  if (err.code === ErrorCode.HELPER_TIMEOUT) code = ErrorCode.PASTA_TIMEOUT;
  else if (/bind|address already in use/i.test(out)) code = ErrorCode.PASTA_PORT;
  else if (/unrecognized option|invalid option|requires an argument|^Invalid |^Usage:/im.test(out)) code = ErrorCode.PASTA_OPTION;
  const first = out
    .split('\n')
    .filter((l) => l && !l.startsWith(' ') && !l.startsWith('\t'))
    .slice(0, 4);
  const base = err.message.replace(/:\s[\s\S]*$/, ''); // spawn.ts's message without its raw output
  return new PodnetError(code, `pasta for ${where}: ${base}${first.length ? `: ${first.join('; ')}` : ''}`, {
    details: { ...err.details, output: out },
    cause: err,
  });
}

async function checkPortsFree(ports: CheckedPortMapping[]): Promise<void> {
  for (const m of ports) {
    for (let k = 0; k < m.range; k++) {
      for (const p of m.protocols) {
        if (!(await portFree(m.hostPort + k, [p], m.hostIP))) {
          const where = `${m.hostIP ?? '*'}:${m.hostPort + k}/${p}`;
          throw new PodnetError(ErrorCode.PASTA_PORT, `pasta cannot forward host port ${where}: it is in use`, {
            details: { hostIP: m.hostIP, hostPort: m.hostPort + k, protocol: p },
          });
        }
      }
    }
  }
}

export class Pasta {
  readonly pid: number;
  readonly features: PastaFeatures;
  /** The command line pasta was started with. */
  readonly args: readonly string[];
  /** The port mappings pasta forwards (hostPort 0 resolved). */
  readonly portMappings: PortMapping[];
  readonly helper: HelperProcess;
  /** Settles with ERR_PASTA_EXITED (its output attached) as soon as pasta exits without stop(); never rejects. */
  readonly died: Promise<PodnetError>;
  #stopping = false;

  private constructor(helper: HelperProcess, features: PastaFeatures, args: string[], portMappings: PortMapping[], netns: string) {
    this.helper = helper;
    this.pid = helper.pid;
    this.features = features;
    this.args = args;
    this.portMappings = portMappings;
    this.died = new Promise((resolve) => {
      void helper.exited.then((e) => {
        if (this.#stopping) return;
        const out = cleanPastaOutput(helper.output()).trim();
        resolve(
          new PodnetError(ErrorCode.PASTA_EXITED, `pasta (pid ${helper.pid}) for '${netns}' ${helper.describeExit(e)}${out ? `: ${out.split('\n')[0]}` : ''}`, {
            details: { pid: helper.pid, code: e.code, signal: e.signal, output: out },
          }),
        );
      });
    });
  }

  /**
   * Starts pasta for a namespace and waits until it is ready. Bad input is
   * refused before anything is spawned; on any later failure pasta is killed
   * and reaped, its FIFO gone, and the error carries its output.
   */
  static async start(opts: PastaStartOptions): Promise<Pasta> {
    if (!opts || typeof opts !== 'object') throw invalidArgument('pasta options', 'expected an object');
    const netns = checkPath('pasta netns path', opts.netns);
    const userns = opts.userns === undefined ? undefined : checkPath('pasta userns path', opts.userns);
    const timeoutMs = opts.readyTimeoutMs ?? 10000;
    let ports = checkPortMappings(opts.portMappings);
    const features = await pastaFeatures(opts.binary);
    const user = checkPastaOptions(features, opts.options ?? []);
    const root = isRoot();
    ports = await resolveHostPorts(ports);
    pastaArgs(features, user, ports, { netns, userns, pidFile: '/x', root }); // throws on what this pasta cannot do
    await checkPortsFree(ports);
    if (!root) checkTunAccess('pasta');

    // The owner's pid in the name: a dir whose owner was killed before it was removed is swept (sweepPastaTemp).
    const dir = mkdtempSync(path.join(opts.tmpDir ?? tmpdir(), `podnet-pasta-${process.pid}-`));
    let helper: HelperProcess | undefined;
    let args: string[] = [];
    try {
      const fifo = path.join(dir, 'pid');
      native.mkfifo(fifo, 0o600);
      args = pastaArgs(features, user, ports, { netns, userns, pidFile: fifo, root });
      const readyFd = openSync(fifo, 'r+'); // read and write: no EOF before pasta writes, and pasta's open never blocks
      helper = spawnHelper(features.binary, args, { name: 'pasta', exitFd: false, readyFd: false, readyFrom: readyFd });
      await helper.waitReady(timeoutMs);
    } catch (err) {
      if (helper && err instanceof PodnetError) throw pastaError(err, String(err.details?.output ?? helper.output()), `'${netns}'`);
      throw err;
    } finally {
      rmSync(dir, { recursive: true, force: true }); // pasta has its pid file open (or is gone): the name is not needed
    }
    return new Pasta(helper, features, args, toPortMappings(ports), netns);
  }

  /** Settles when pasta has exited and been reaped. */
  get exited(): Promise<HelperExit> {
    return this.helper.exited;
  }

  get running(): boolean {
    return this.helper.running;
  }

  /** pasta's output so far (syslog fallback noise removed). */
  output(): string {
    return cleanPastaOutput(this.helper.output());
  }

  /** Lets this process exit while pasta runs. */
  unref(): void {
    this.helper.unref();
  }

  /** SIGTERM, SIGKILL after `graceMs`; resolves once pasta is reaped. Idempotent. */
  async stop(graceMs = 2000): Promise<HelperExit> {
    this.#stopping = true;
    if (this.helper.running) void this.helper.kill('SIGTERM');
    return this.helper.stop(graceMs);
  }
}

/** Removes the readiness FIFO dirs in `dir` of owners that are gone (killed while pasta started). */
export function sweepPastaTemp(dir: string): string[] {
  const removed: string[] = [];
  let names: string[];
  try {
    names = readdirSync(dir);
  } catch {
    return removed;
  }
  for (const n of names) {
    const m = /^podnet-pasta-(\d+)-/.exec(n);
    if (!m || existsSync(`/proc/${m[1]}`)) continue;
    rmSync(path.join(dir, n), { recursive: true, force: true });
    removed.push(n);
  }
  return removed;
}

/**
 * Kills pasta processes serving `netns` that no state records: one started by
 * an owner killed before pasta was ready (its pid is recorded only then) would
 * keep the namespace and its published ports forever, as pasta has no exit-fd
 * option (slirp4netns has `--exit-fd`) and the Debian 12 pasta does not quit
 * when its namespace file goes. Found by their `--netns` argument (./args.ts);
 * resolves once they are gone (2 s at most).
 */
export async function killStrayPasta(netns: string): Promise<number[]> {
  const killed: number[] = [];
  for (const d of await readdir('/proc')) {
    if (!/^\d+$/.test(d) || Number(d) === process.pid) continue;
    try {
      const argv = (await readFile(`/proc/${d}/cmdline`, 'utf8')).split('\0');
      const at = argv.indexOf('--netns');
      if (!path.basename(argv[0]).startsWith('pasta') || at < 0 || argv[at + 1] !== netns) continue;
      process.kill(Number(d), 'SIGKILL');
      killed.push(Number(d));
    } catch {
      // gone meanwhile, or not ours to signal
    }
  }
  const end = Date.now() + 2000;
  while (killed.some((pid) => isAlive(procRef(pid))) && Date.now() < end) await new Promise((r) => setTimeout(r, 10));
  return killed;
}
