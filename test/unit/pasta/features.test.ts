/** pasta --help parsing, with the Debian 12 pasta's real output and a newer pasta's lines as vectors. */
import { readFileSync } from 'node:fs';
import path from 'node:path';

import { cleanPastaOutput, parsePastaHelp } from '../../../lib/pasta/features';

const DEBIAN = readFileSync(path.join(__dirname, '..', '..', 'fixtures', 'pasta', 'help-0.0-git20230309.txt'), 'utf8');

// Lines of passt 2025-01's usage() (conf.c), as a newer pasta prints them.
const NEWER = [
  'Usage: pasta [OPTION]... [COMMAND] [ARGS]...',
  "  -q, --quiet\t\tDon't print informational messages",
  "  -f, --foreground\tDon't run in background",
  '  --runas UID|UID:GID \tRun as given UID, GID, which can be',
  '  -P, --pid FILE\tWrite own PID to the given file',
  "  --map-guest-addr ADDR\tTranslate ADDR to guest's address",
  '  --dns-forward ADDR\tForward DNS queries sent to ADDR',
  "  --no-map-gw\t\tDon't map gateway address to host",
  '  -t, --tcp-ports SPEC\tTCP port forwarding to namespace',
  '        -t 22\tForward local port 22 to port 22 in netns',
  '  --netns PATH|NAME\tTarget network namespace to join',
  '  --config-net\t\tConfigure tap interface in namespace',
].join('\n');

describe('parsePastaHelp', () => {
  test('Debian 12 pasta: its options and what it lacks', () => {
    const f = parsePastaHelp('/usr/bin/pasta', DEBIAN, 'Failed to send 22 bytes to syslog\npasta unknown version\n');
    expect(f.version).toBeUndefined();
    expect(f.runas).toBe(true);
    expect(f.dnsForward).toBe(true);
    expect(f.noMapGw).toBe(true);
    expect(f.mapGuestAddr).toBe(false);
    expect(f.options.get('t')).toEqual({ name: 'tcp-ports', short: 't', takesArg: true });
    expect(f.options.get('tcp-ports')).toBe(f.options.get('t'));
    expect(f.options.get('runas')).toEqual({ name: 'runas', takesArg: true });
    expect(f.options.get('trace')).toEqual({ name: 'trace', takesArg: false });
    expect(f.options.get('4')).toEqual({ name: 'ipv4-only', short: '4', takesArg: false });
    expect(f.options.get('dhcp-search')).toEqual({ name: 'dhcp-search', takesArg: false });
    expect(f.options.get('mtu')).toEqual({ name: 'mtu', short: 'm', takesArg: true });
    expect(f.options.get('ns-mac-addr')?.takesArg).toBe(true);
    // Continuation lines (examples, defaults) are no options.
    expect(f.options.has('22')).toBe(false);
    expect([...new Set(f.options.values())].length).toBe(48);
  });

  test('a newer pasta: --map-guest-addr and a version', () => {
    const f = parsePastaHelp('/usr/local/bin/pasta', NEWER, 'pasta 2025_01_21.4f2c8e7\nCopyright Red Hat\n');
    expect(f.version).toBe('2025_01_21.4f2c8e7');
    expect(f.mapGuestAddr).toBe(true);
    expect(f.options.get('map-guest-addr')).toEqual({ name: 'map-guest-addr', takesArg: true });
    expect(f.options.get('config-net')).toEqual({ name: 'config-net', takesArg: false });
  });

  test('no options at all in unrelated text', () => {
    const f = parsePastaHelp('/bin/true', 'usage: true\n', '');
    expect(f.options.size).toBe(0);
    expect(f.runas).toBe(false);
  });
});

test('cleanPastaOutput drops the syslog fallback lines only', () => {
  expect(
    cleanPastaOutput(
      "Failed to send 47 bytes to syslog\nDon't run as root. Changing to nobody...\nFailed to send 42 bytes to syslog\nCouldn't switch to pasta namespaces",
    ),
  ).toBe("Don't run as root. Changing to nobody...\nCouldn't switch to pasta namespaces");
});
