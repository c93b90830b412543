/**
 * `podnet demo`, the README's main job: an HTTP server inside a new sandbox
 * (the embedded default network as root; slirp4netns and the port forwarder
 * otherwise), published on a host port, fetched through it, then inspect and
 * statistics printed and everything torn down.
 */
import type { ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';

import { PodnetError } from '../errors';
import { Runtime } from '../runtime/runtime';
import { SignalGuard } from './supervise';
import { USAGE, parse } from './usage';

const CONTAINER_PORT = 8000;
const SERVER = `require('http').createServer((q, s) => s.end('hello from inside the sandbox, you are ' + q.socket.remoteAddress + '\\n')).listen(${CONTAINER_PORT}, '0.0.0.0')`;

/** GETs the URL, retrying while the server inside is still starting (not once interrupted). */
async function fetchWithRetry(url: string, deadlineMs: number, interrupted: () => unknown): Promise<string> {
  const end = Date.now() + deadlineMs;
  for (;;) {
    if (interrupted()) throw new PodnetError('EINTR', 'demo interrupted');
    try {
      const res = await fetch(url, { signal: AbortSignal.timeout(2000) });
      return await res.text();
    } catch (err) {
      if (Date.now() > end) throw err;
      await new Promise((r) => setTimeout(r, 50));
    }
  }
}

export async function demo(argv: string[]): Promise<number> {
  const { values } = parse('demo', argv);
  if (values.help) {
    process.stdout.write(USAGE.demo);
    return 0;
  }
  const rt = new Runtime();
  const id = `demo-${randomBytes(4).toString('hex')}`;
  const log = (s: string) => process.stdout.write(`${s}\n`);
  const guard = new SignalGuard(); // an interrupt still tears down
  try {
    // hostPort 0: any free port, reported back in the sandbox's port mappings.
    const sandbox = await rt.createSandbox({ id, ephemeral: true, portMappings: [{ hostPort: 0, containerPort: CONTAINER_PORT, protocol: 'tcp' }] });
    const hostPort = sandbox.portMappings[0].hostPort;
    log(`sandbox ${id}: network ${sandbox.mode}, namespace ${sandbox.netnsPath}`);
    let server: ChildProcess | undefined;
    try {
      server = await rt.spawn(id, process.execPath, ['-e', SERVER], { stdio: ['ignore', 'inherit', 'inherit'] });
      const failed = new Promise<never>((_, reject) => server!.once('error', reject));
      const url = `http://127.0.0.1:${hostPort}/`;
      log(`GET ${url} (published ${hostPort} -> ${CONTAINER_PORT}/tcp)`);
      log(`  ${(await Promise.race([fetchWithRetry(url, 10_000, () => guard.received), failed])).trim()}`);
      log('\ninspect:');
      log(JSON.stringify(await rt.inspect(id), null, 2));
      log('\nstatistics:');
      for (const [ifname, st] of Object.entries((await rt.stats(id)) ?? {})) {
        log(`  ${ifname}: rx ${st.rxBytes} bytes / ${st.rxPackets} packets, tx ${st.txBytes} bytes / ${st.txPackets} packets`);
      }
    } finally {
      if (server?.pid !== undefined && server.exitCode === null && server.signalCode === null) {
        const gone = new Promise((r) => server!.once('exit', r));
        server.kill('SIGTERM');
        await gone;
      }
      await rt.teardown(id);
      log(`\nsandbox ${id} torn down`);
    }
  } finally {
    guard.release();
  }
  return guard.received ? guard.exitCode : 0;
}
