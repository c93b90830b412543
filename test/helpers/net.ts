/** Small network clients for tests: traffic only to loopback or to the tests' own namespaces. */
import dgram from 'node:dgram';
import net from 'node:net';

/** Connects, reads until the server closes, and resolves with what it sent (5 s limit). */
export function tcpRead(port: number, host = '127.0.0.1'): Promise<string> {
  return new Promise((resolve, reject) => {
    const s = net.connect(port, host);
    let data = '';
    s.setTimeout(5000, () => s.destroy(new Error(`timeout ${host}:${port}`)));
    s.on('data', (b) => (data += b));
    s.on('end', () => resolve(data));
    s.on('error', reject);
  });
}

/**
 * Sends `msg` (resent every 200 ms: UDP may drop) from a connected socket, which
 * drops replies from any other source address, until a reply comes; undefined after `ms`.
 */
export function udpExchange(port: number, msg: Buffer, host = '127.0.0.1', ms = 3000): Promise<Buffer | undefined> {
  return new Promise((resolve, reject) => {
    const u = dgram.createSocket(host.includes(':') ? 'udp6' : 'udp4');
    let t: NodeJS.Timeout | undefined;
    const end = setTimeout(() => {
      clearInterval(t);
      u.close();
      resolve(undefined);
    }, ms);
    u.on('message', (m) => {
      clearInterval(t);
      clearTimeout(end);
      u.close();
      resolve(m);
    });
    u.on('error', (e) => {
      clearInterval(t);
      clearTimeout(end);
      u.close();
      reject(e);
    });
    u.connect(port, host, () => {
      u.send(msg);
      t = setInterval(() => u.send(msg), 200);
    });
  });
}
