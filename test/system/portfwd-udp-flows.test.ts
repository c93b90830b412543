/**
 * The forwarder's UDP flows are bounded: at most udpMaxFlows at once (the least
 * recently used ends when a new client comes) and none outlives its idle time.
 * Real namespace, real forwarder; the server answers each datagram with the
 * source port it saw, which names the flow's socket in the namespace.
 */
import { execFileSync, spawn, type ChildProcess } from 'node:child_process';
import dgram from 'node:dgram';
import { createInterface } from 'node:readline';

import { NetNS } from '../../lib';
import { PortForwarder, type PortForwarderHandle } from '../../lib/api/portfwd';
import { describeRoot, uniqueName } from '../helpers/system';

jest.setTimeout(30000);

const PORT = 46600;
const SERVER = `
const u = require('dgram').createSocket('udp4');
u.on('message', (m, r) => u.send(m + ' ' + r.port, r.port, r.address));
u.bind(8000, '0.0.0.0', () => console.log('listening'));
`;

/** A client with its own socket (so its own flow): ask() resolves with the server's answer. */
class Client {
  readonly sock = dgram.createSocket('udp4');
  async open(): Promise<this> {
    await new Promise<void>((r) => this.sock.connect(PORT, '127.0.0.1', () => r()));
    return this;
  }
  #seq = 0;
  ask(): Promise<string> {
    // A nonce per question: a late answer to an earlier resend is not taken for this one's.
    const nonce = `${process.pid}.${++this.#seq}`;
    return new Promise((resolve, reject) => {
      const resend = setInterval(() => this.sock.send(nonce), 200); // UDP may drop
      const done = () => {
        clearInterval(resend);
        clearTimeout(end);
        this.sock.off('message', onMessage);
      };
      const end = setTimeout(() => {
        done();
        reject(new Error('no reply within 3 s'));
      }, 3000);
      const onMessage = (m: Buffer) => {
        const [n, port] = String(m).split(' ');
        if (n === nonce) {
          done();
          resolve(port);
        }
      };
      this.sock.on('message', onMessage);
      this.sock.send(nonce);
    });
  }
  close(): void {
    this.sock.close();
  }
}

describeRoot('UDP flows through the forwarder', () => {
  let ns: NetNS | undefined;
  let server: ChildProcess | undefined;
  let fwd: PortForwarderHandle | undefined;
  const clients: Client[] = [];
  /** Flow sockets in the namespace: connected UDP sockets towards the server's port. */
  const flows = () =>
    execFileSync('nsenter', [`--net=${ns!.path}`, 'ss', '-Hun', 'dport = :8000'], { encoding: 'utf8' })
      .split('\n')
      .filter(Boolean).length;
  const client = async () => {
    const c = await new Client().open();
    clients.push(c);
    return c;
  };

  beforeAll(async () => {
    ns = await NetNS.create({ name: uniqueName('fwd-udp') });
    execFileSync('nsenter', [`--net=${ns.path}`, 'sh', '-c', 'ip link set lo up && ip addr add 10.89.248.130/32 dev lo']);
    server = spawn('nsenter', [`--net=${ns.path}`, process.execPath, '-e', SERVER], { stdio: ['ignore', 'pipe', 'inherit'] });
    await new Promise((resolve, reject) => {
      createInterface({ input: server!.stdout! }).once('line', resolve);
      server!.once('exit', (c) => reject(new Error(`server exited ${c}`)));
    });
    fwd = await PortForwarder.start({
      netnsPath: ns.path,
      udpMaxFlows: 4,
      udpIdleTimeoutMs: 1500,
      portMappings: [{ hostIP: '127.0.0.1', hostPort: PORT, containerPort: 8000, protocol: 'udp' }],
    });
  });
  afterAll(async () => {
    for (const c of clients) c.close();
    await fwd?.stop();
    server?.kill('SIGKILL');
    await ns?.remove();
  });

  it('holds at most udpMaxFlows; a new client ends the least recently used flow', async () => {
    const [a, b, c, d] = [await client(), await client(), await client(), await client()];
    const first = { a: await a.ask(), b: await b.ask(), c: await c.ask(), d: await d.ask() };
    expect(new Set(Object.values(first)).size).toBe(4); // four flows, four sockets
    expect(flows()).toBe(4);
    expect(await a.ask()).toBe(first.a); // a is now the most recent; b the least
    const e = await client();
    await e.ask();
    expect(flows()).toBe(4);
    // a, c, d kept their flows; b's ended, so its next datagram makes a new one (ending c's).
    expect([await a.ask(), await d.ask()]).toEqual([first.a, first.d]);
    expect(await b.ask()).not.toBe(first.b);
    expect(flows()).toBe(4);
    expect(await c.ask()).not.toBe(first.c);
  });

  it('ends flows that stay idle for udpIdleTimeoutMs, and not before', async () => {
    const c = await client();
    await c.ask();
    const t0 = Date.now();
    expect(flows()).toBeGreaterThan(0);
    while (flows() > 0 && Date.now() - t0 < 5000) await new Promise((r) => setTimeout(r, 50));
    expect(flows()).toBe(0);
    expect(Date.now() - t0).toBeGreaterThanOrEqual(1000); // the last answer came just before t0
    // A client that comes back gets a new flow.
    expect(Number(await c.ask())).toBeGreaterThan(0);
    expect(flows()).toBe(1);
  });
});
