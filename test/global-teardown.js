// After all test files: the embedded default network's bridge (podnet0) and its
// IPAM directory are removed when the tests made them and no lease remains.
const { execFileSync } = require('node:child_process');
const fs = require('node:fs');

const IPAM = '/var/lib/cni/networks/podnet';

module.exports = async () => {
  if (process.getuid() !== 0) return;
  // The ports global-setup reserved for the suites.
  if (globalThis.__podnetReservedPorts !== undefined) fs.writeFileSync('/proc/sys/net/ipv4/ip_local_reserved_ports', globalThis.__podnetReservedPorts);
  await removeDefaultNative();
  if (globalThis.__podnetDefaultBridgeExisted) return;
  const leases = fs.existsSync(IPAM) ? fs.readdirSync(IPAM).filter((f) => /^[0-9a-f.:]+$/.test(f)) : [];
  if (leases.length) return;
  try {
    execFileSync('ip', ['link', 'del', 'podnet0'], { stdio: 'ignore' });
  } catch {
    /* not there */
  }
  fs.rmSync(IPAM, { recursive: true, force: true });
};

// The default native network, when the tests created it and nothing is attached any more.
async function removeDefaultNative() {
  if (globalThis.__podnetDefaultNativeExisted || !fs.existsSync('/etc/podnet/networks/podnet.json')) return;
  const { NativeNetworks } = require('../dist');
  const nets = new NativeNetworks();
  if ((await nets.attachments('podnet')).length === 0) await nets.remove('podnet').catch(() => {});
}
