'use strict';
// What a benchmark makes (processes, namespaces) and their removal when it
// ends, in reverse order, even when it failed; waiting for a port; a
// process's CPU time. Each benchmark is a process of its own, so one list.
const { execFileSync, spawn } = require('node:child_process');
const fs = require('node:fs');
const net = require('node:net');

const undo = [];
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));
const sh = (cmd, args, opts = {}) => execFileSync(cmd, args, { encoding: 'utf8', ...opts });

/** Starts a process this benchmark owns; killed by PID at the end. */
function start(cmd, args, opts = {}) {
  const p = spawn(cmd, args, { stdio: ['ignore', 'ignore', 'inherit'], ...opts });
  undo.push(() => {
    if (p.exitCode === null && p.signalCode === null) p.kill('SIGKILL');
  });
  return p;
}

/** A named network namespace with lo up, removed at the end; returns its path. */
function netns(name) {
  sh('ip', ['netns', 'add', name]);
  undo.push(() => sh('ip', ['netns', 'del', name]));
  sh('ip', ['-n', name, 'link', 'set', 'lo', 'up']);
  return `/run/netns/${name}`;
}

/** netns(name) whose eth0 is a veth to host link `hostIf`, `hostAddr` and `nsAddr` (address/prefix) on its two ends, both up. */
function vethNetns(name, hostIf, hostAddr, nsAddr) {
  const ns = netns(name);
  sh('ip', ['link', 'add', hostIf, 'type', 'veth', 'peer', 'name', 'eth0', 'netns', name]);
  undo.push(() => sh('ip', ['link', 'del', hostIf]));
  sh('ip', ['addr', 'add', hostAddr, 'dev', hostIf]);
  sh('ip', ['link', 'set', hostIf, 'up']);
  sh('ip', ['-n', name, 'addr', 'add', nsAddr, 'dev', 'eth0']);
  sh('ip', ['-n', name, 'link', 'set', 'eth0', 'up']);
  return ns;
}

/** The first chunk `p` writes on `stream`; rejects with its output so far when it exits first (it failed to start). */
function firstOutput(p, stream = p.stdout) {
  return new Promise((resolve, reject) => {
    let err = '';
    p.stderr?.on('data', (d) => {
      err += d;
    });
    // 'close', not 'exit': by then its error output has been read to the end.
    const onClose = (code, signal) => reject(new Error(`${p.spawnfile} exited (${signal ?? code}) before it wrote anything${err ? `: ${err.trim()}` : ''}`));
    p.once('close', onClose);
    stream.once('data', (d) => {
      p.off('close', onClose);
      resolve(d);
    });
  });
}

async function waitPort(host, port, ms = 5000) {
  const end = Date.now() + ms;
  for (;;) {
    const ok = await new Promise((r) => {
      const s = net.connect(port, host, () => {
        s.destroy();
        r(true);
      });
      s.on('error', () => r(false));
    });
    if (ok) return;
    if (Date.now() > end) throw new Error(`${host}:${port} not reachable`);
    await sleep(50);
  }
}

/** User plus system CPU seconds of a process so far. */
function cpuSecs(pid) {
  const f = fs.readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1].split(' ');
  return (Number(f[11]) + Number(f[12])) / 100; // utime + stime, USER_HZ 100
}

/** An iperf3 server on port 5201 inside a namespace (quiet about probes). */
function iperfServer(nsPath) {
  start('nsenter', [`--net=${nsPath}`, 'iperf3', '-s', '-p', '5201'], { stdio: 'ignore' });
}

/** One request to slirp4netns's API socket; rejects with the error it answers. */
function slirpApi(sock, req) {
  return new Promise((resolve, reject) => {
    const s = net.connect(sock, () => s.end(JSON.stringify(req)));
    let out = '';
    s.on('data', (d) => {
      out += d;
    });
    s.on('end', () => {
      const r = JSON.parse(out);
      if (r.error) reject(new Error(JSON.stringify(r.error)));
      else resolve(r);
    });
    s.on('error', reject);
  });
}

/** Runs `main`, then undoes what was made and removes `tmp`; a failure sets the exit code. */
function run(main, tmp) {
  main()
    .catch((e) => {
      console.error(e);
      process.exitCode = 1;
    })
    .finally(async () => {
      for (const fn of undo.reverse()) {
        try {
          await fn();
        } catch (e) {
          console.error(`cleanup: ${String(e.message).split('\n')[0]}`);
        }
      }
      if (tmp) fs.rmSync(tmp, { recursive: true, force: true });
    });
}

module.exports = { undo, sleep, sh, start, netns, vethNetns, firstOutput, waitPort, cpuSecs, iperfServer, slirpApi, run };
