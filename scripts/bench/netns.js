#!/usr/bin/env node
'use strict';
// Persistent namespace create+remove cycles: podnet vs a raw syscall loop in C
// (the floor) vs iproute2 called from Node, all in one run. Root only.
const { execFileSync } = require('node:child_process');
const fs = require('node:fs');
const { NetNS } = require('../../dist');
const { now, median, compileC, report } = require('./common');

const N = Number(process.env.N ?? 300);
const ROUNDS = 5;
const DIR = '/run/netns';

async function podnetCycles(n) {
  const t = now();
  for (let i = 0; i < n; i++) await (await NetNS.create({ name: `pn-bench-${i}` })).remove();
  return (now() - t) / n;
}

async function podnetConcurrent(n, width) {
  const t = now();
  for (let i = 0; i < n; i += width) {
    const batch = await Promise.all(Array.from({ length: width }, (_, k) => NetNS.create({ name: `pn-bench-c${i + k}` })));
    await Promise.all(batch.map((ns) => ns.remove()));
  }
  return (now() - t) / n;
}

function iproute2Cycles(n) {
  const t = now();
  for (let i = 0; i < n; i++) {
    execFileSync('ip', ['netns', 'add', `pn-bench-ip${i}`]);
    execFileSync('ip', ['netns', 'del', `pn-bench-ip${i}`]);
  }
  return (now() - t) / n;
}

(async () => {
  const raw = compileC('netns-raw');
  await (await NetNS.create({ name: 'pn-bench-warm' })).remove(); // makes DIR a mount point
  const res = { raw: [], podnet: [], conc: [], ip: [] };
  for (let r = 0; r < ROUNDS; r++) {
    res.raw.push(Number(execFileSync(raw, [DIR, String(N)], { encoding: 'utf8' })));
    res.podnet.push(await podnetCycles(N));
    res.conc.push(await podnetConcurrent(N - (N % 10), 10));
    res.ip.push(iproute2Cycles(Math.ceil(N / 5)));
  }
  fs.rmSync(require('node:path').dirname(raw), { recursive: true });
  report(`netns create+remove, ms per cycle (median of ${ROUNDS} rounds, N=${N})`, [
    { name: 'raw C loop (unshare+bind+umount+unlink)', value: median(res.raw), unit: 'ms' },
    { name: 'podnet NetNS.create+remove, sequential', value: median(res.podnet), unit: 'ms' },
    { name: 'podnet, 10 concurrent', value: median(res.conc), unit: 'ms' },
    { name: 'ip netns add+del from Node', value: median(res.ip), unit: 'ms' },
  ], 'raw C loop (unshare+bind+umount+unlink)');
})().catch((e) => { console.error(e); process.exit(1); });
