/**
 * The packed tarball works for a consumer without compilers: its prebuilt
 * binary loads, from require() and from import. libnl stays a shared library:
 * Debian's libnl-3.a/libnl-route-3.a are not position-independent, so they
 * cannot go into a shared object; the binary needs only libnl-3-200 and
 * libnl-route-3-200 at run time.
 */
import { execFileSync } from 'node:child_process';
import { cpSync, mkdtempSync, mkdirSync, readdirSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';

const root = path.join(__dirname, '..', '..');

describe('npm pack, then install in an empty folder without compilers', () => {
  let dir = '';
  beforeAll(() => {
    dir = mkdtempSync(path.join(os.tmpdir(), 'podnet-consumer-'));
    // Pack from a copy: prepack (tsc + prebuildify) rebuilds build/, which other
    // test files running in parallel load the addon from.
    const src = path.join(dir, 'src');
    mkdirSync(src);
    for (const f of ['package.json', 'binding.gyp', 'tsconfig.json', 'README.md', 'csrc', 'lib', 'scripts/prebuild.sh']) {
      cpSync(path.join(root, f), path.join(src, f), { recursive: true });
    }
    symlinkSync(path.join(root, 'node_modules'), path.join(src, 'node_modules'));
    execFileSync('npm', ['pack', '--silent', '--pack-destination', dir], { cwd: src, stdio: 'ignore' });
    // A PATH with node and npm only: no cc, c++, make or python.
    const bin = path.join(dir, 'bin');
    mkdirSync(bin);
    for (const tool of ['node', 'npm', 'sh', 'env']) {
      symlinkSync(execFileSync('sh', ['-c', `command -v ${tool}`], { encoding: 'utf8' }).trim(), path.join(bin, tool));
    }
    const app = path.join(dir, 'app');
    mkdirSync(app);
    writeFileSync(path.join(app, 'package.json'), '{"name":"consumer","version":"1.0.0","private":true}');
    const tgz = readdirSync(dir).find((f) => f.endsWith('.tgz'))!;
    execFileSync('npm', ['install', '--no-audit', '--no-fund', '--foreground-scripts', path.join(dir, tgz)], {
      cwd: app,
      env: { ...process.env, PATH: bin, CC: '/bin/false', CXX: '/bin/false' },
      stdio: 'ignore',
    });
  }, 180_000);
  afterAll(() => rmSync(dir, { recursive: true, force: true }));

  it('builds from source where no prebuilt binary fits (node-addon-api is a dependency)', () => {
    // The tarball without its prebuilds/, as a host of another architecture sees it.
    const tgz = readdirSync(dir).find((f) => f.endsWith('.tgz'))!;
    const unpacked = path.join(dir, 'noprebuilds');
    mkdirSync(unpacked);
    execFileSync('tar', ['-xzf', path.join(dir, tgz), '-C', unpacked]);
    rmSync(path.join(unpacked, 'package/prebuilds'), { recursive: true, force: true });
    execFileSync('npm', ['pack', '--silent', '--ignore-scripts', '--pack-destination', unpacked], { cwd: path.join(unpacked, 'package'), stdio: 'ignore' });
    const app = path.join(dir, 'app-source');
    mkdirSync(app);
    writeFileSync(path.join(app, 'package.json'), '{"name":"consumer-source","version":"1.0.0","private":true}');
    const src = readdirSync(unpacked).find((f) => f.endsWith('.tgz'))!;
    execFileSync('npm', ['install', '--no-audit', '--no-fund', '--foreground-scripts', path.join(unpacked, src)], { cwd: app, stdio: 'ignore' });
    const mod = path.join(app, 'node_modules/podnet');
    expect(readdirSync(mod)).not.toContain('prebuilds');
    expect(readdirSync(path.join(mod, 'build/Release'))).toContain('podnet.node');
    const out = execFileSync('node', ['-e', "const p=require('podnet');console.log(typeof p.NetNS.create)"], { cwd: app, encoding: 'utf8' });
    expect(out.trim()).toBe('function');
  }, 300_000);

  it('ships a prebuilt binary that needs only libc, libstdc++ and libnl at run time', () => {
    const pre = path.join(dir, 'app/node_modules/podnet/prebuilds/linux-x64');
    const files = readdirSync(pre).filter((f) => f.endsWith('.node'));
    expect(readdirSync(pre)).toContain('podnet-portfwd');
    expect(files.length).toBe(1);
    const libs = execFileSync('ldd', [path.join(pre, files[0])], { encoding: 'utf8' })
      .split('\n')
      .map((l) => l.trim().split(/\s/)[0])
      .filter((l) => l.startsWith('lib'))
      .sort();
    // libnl is linked where the addon uses it (the linker drops it when unused: --as-needed).
    expect(libs.filter((l) => !l.startsWith('libnl-'))).toEqual(['libc.so.6', 'libgcc_s.so.1', 'libm.so.6', 'libstdc++.so.6']);
    for (const l of libs.filter((x) => x.startsWith('libnl-'))) expect(['libnl-3.so.200', 'libnl-route-3.so.200']).toContain(l);
    expect(execFileSync('ldd', [path.join(pre, files[0])], { encoding: 'utf8' })).not.toMatch(/not found/);
    expect(readdirSync(path.join(dir, 'app/node_modules/podnet'))).not.toContain('build');
  });

  it('loads with require() and import, with typings', () => {
    const app = path.join(dir, 'app');
    const cjs = execFileSync('node', ['-e', "const p=require('podnet');console.log(typeof p.NetNS.create, typeof p.PodnetError)"], {
      cwd: app,
      encoding: 'utf8',
    });
    expect(cjs.trim()).toBe('function function');
    const esm = execFileSync(
      'node',
      ['--input-type=module', '-e', "import { NetNS } from 'podnet'; import d from 'podnet'; console.log(typeof NetNS.open, d.NetNS === NetNS)"],
      { cwd: app, encoding: 'utf8' },
    );
    expect(esm.trim()).toBe('function true');
    expect(readdirSync(path.join(app, 'node_modules/podnet/dist'))).toContain('index.d.ts');
    // The port forwarder executable ships prebuilt too, and is the one podnet starts.
    const fwd = execFileSync(
      'node',
      ['-e', "const p=require('path');console.log(require(p.join(p.dirname(require.resolve('podnet')),'portfwd/forwarder')).forwarderPath())"],
      { cwd: app, encoding: 'utf8' },
    ).trim();
    expect(fwd).toBe(path.join(app, 'node_modules/podnet/prebuilds/linux-x64/podnet-portfwd'));
  });
});
