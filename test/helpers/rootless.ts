/**
 * Rootless tests run as a real unprivileged user that the test creates
 * (`useradd`, with subordinate id ranges) and removes afterwards. Each test
 * file passes its own user name so parallel files never share one.
 */
import { execFile, execFileSync, type ExecFileOptions } from 'node:child_process';
import { chmodSync, cpSync, existsSync, mkdtempSync, readFileSync, readdirSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';

export interface TestUser {
  name: string;
  uid: number;
  gid: number;
  /** Runs a command as the user (setpriv, no shell), resolving with its output. */
  run(cmd: string, args: string[], opts?: ExecFileOptions): Promise<{ stdout: string; stderr: string }>;
  /** Argument vector that runs `cmd args` as the user, for spawn(). */
  argv(cmd: string, args: string[]): [string, string[]];
  /** A copy of the package the user can read (see readableCopy): run podnet as the user from `${pkg}/dist`. */
  pkg: string;
  remove(): void;
}

const ROOT = path.join(__dirname, '..', '..');

/**
 * What podnet needs at run time (dist/, the addon and the forwarder from
 * build/Release, prebuilds/, package.json, the runtime dependencies), copied
 * into a fresh directory every user can read: the checkout itself may sit
 * where the test user cannot read it (a root-only home, a `mktemp -d` dir).
 */
export function readableCopy(): { root: string; remove(): void } {
  const root = mkdtempSync(path.join(os.tmpdir(), 'podnet-pkg-'));
  const parts = [
    'package.json',
    'dist',
    'prebuilds',
    'build/Release/podnet.node',
    'build/Release/podnet-portfwd',
    'node_modules/ipaddr.js',
    'node_modules/node-gyp-build',
  ];
  for (const rel of parts) if (existsSync(path.join(ROOT, rel))) cpSync(path.join(ROOT, rel), path.join(root, rel), { recursive: true });
  chmodSync(root, 0o755); // mkdtemp makes it 0700
  execFileSync('chmod', ['-R', 'a+rX', root]); // whatever umask the checkout was built with
  return { root, remove: () => rmSync(root, { recursive: true, force: true }) };
}

function procUid(pid: string): number | undefined {
  try {
    return Number(/^Uid:\s+(\d+)/m.exec(readFileSync(`/proc/${pid}/status`, 'utf8'))?.[1]);
  } catch {
    return undefined;
  }
}

function passwdHas(uid: number): boolean {
  try {
    execFileSync('getent', ['passwd', String(uid)], { stdio: 'ignore' });
    return true;
  } catch {
    return false;
  }
}

/** Creates the user (removing a stale one of the same name first). Needs root. */
export function createTestUser(name: string): TestUser {
  try {
    execFileSync('userdel', ['-r', '-f', name], { stdio: 'ignore' });
  } catch {
    /* none */
  }
  // A uid that no running process holds: a process left by a user deleted earlier would otherwise belong to this one
  // (useradd reuses the lowest free uid), and remove() could never succeed.
  const busy = new Set(
    readdirSync('/proc')
      .filter((p) => /^\d+$/.test(p))
      .map((p) => procUid(p)),
  );
  let uid = 999;
  for (let attempt = 0; ; attempt++) {
    do uid++;
    while (busy.has(uid) || passwdHas(uid));
    try {
      execFileSync('useradd', ['--create-home', '--shell', '/usr/sbin/nologin', '--uid', String(uid), name], { stdio: 'pipe' });
      break;
    } catch (err) {
      if (attempt >= 5) throw err; // another test file took this uid in the meantime: the next one
    }
  }

  const copy = readableCopy();
  const gid = Number(execFileSync('id', ['-g', name], { encoding: 'utf8' }));
  // A subordinate range of its own (useradd allocates one from /etc/login.defs).
  const argv = (cmd: string, args: string[]): [string, string[]] => [
    'setpriv',
    ['--reuid', String(uid), '--regid', String(gid), '--init-groups', '--', cmd, ...args],
  ];
  return {
    name,
    uid,
    gid,
    argv,
    pkg: copy.root,
    async run(cmd, args, opts = {}) {
      const [c, a] = argv(cmd, args);
      const env = { ...opts.env, HOME: `/home/${name}`, USER: name, PATH: process.env.PATH, XDG_RUNTIME_DIR: `/home/${name}/.run` };
      const r = await promisify(execFile)(c, a, { encoding: 'utf8', cwd: copy.root, ...opts, env });
      return { stdout: String(r.stdout), stderr: String(r.stderr) };
    },
    remove() {
      // Processes the tests started as the user are ended by their own tests;
      // userdel refuses while one runs, which makes a leak visible.
      copy.remove();
      execFileSync('userdel', ['-r', name], { stdio: 'ignore' });
    },
  };
}

/** The unprivileged user needs /dev/net/tun (0666 under udev; 0600 on hosts without it): a named ACL entry, removed afterwards. */
export function tunOpenToAll(): boolean {
  return execFileSync('stat', ['-c', '%a', '/dev/net/tun'], { encoding: 'utf8' }).trim().endsWith('6');
}

export function grantTun(user: string): boolean {
  if (tunOpenToAll()) return false;
  execFileSync('setfacl', ['-m', `u:${user}:rw`, '/dev/net/tun']);
  return true;
}

export function revokeTun(user: string): void {
  execFileSync('setfacl', ['-x', `u:${user}`, '/dev/net/tun']);
  const acl = execFileSync('getfacl', ['-cp', '/dev/net/tun'], { encoding: 'utf8' });
  if (!/^(user|group):[^:]+:/m.test(acl)) execFileSync('setfacl', ['-b', '/dev/net/tun']); // no one else's entries: back to plain mode bits
}
