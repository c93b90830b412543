#!/usr/bin/env bash
# Idempotent set-up for a fresh Debian 12 machine: system packages podnet needs to
# build, run and test, then npm ci and the native build when missing or stale.
set -euo pipefail
cd "$(dirname "$0")/.."

PKGS=(build-essential python3 pkg-config libnl-3-dev libnl-route-3-dev iproute2 iptables
      containernetworking-plugins slirp4netns uidmap util-linux procps psmisc iperf3 netavark rootlesskit
      acl passt nlohmann-json3-dev libnftables1 nftables podman runc busybox-static clang-format conntrack)

missing=()
for p in "${PKGS[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
  if [ "$(id -u)" -ne 0 ]; then
    # Unit tests need only the build; system tests run as root, which installs these.
    echo "setup: missing Debian packages (${missing[*]}); run scripts/setup.sh as root to install them" >&2
  else
    echo "setup: installing ${missing[*]}" >&2
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq
    apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
  fi
fi

# podman drops its bridge network into /etc/cni/net.d, the directory podnet's
# CNI runtime lists: remove it while it is the packaged file (podman makes its
# default network in memory when the file is missing; tests that run podman
# use their own configuration directory).
podman_conf=/etc/cni/net.d/87-podman-bridge.conflist
if [ -f "$podman_conf" ] && [ "$(id -u)" -eq 0 ]; then
  packaged=$(dpkg-query -W -f='${Conffiles}\n' podman 2>/dev/null | awk -v f="$podman_conf" '$1 == f {print $2}')
  [ -n "$packaged" ] && [ "$(md5sum <"$podman_conf" | cut -d' ' -f1)" = "$packaged" ] && rm -f "$podman_conf"
fi

# npm ci when node_modules is missing or older than the lock file.
if [ ! -d node_modules ] || [ package-lock.json -nt node_modules/.package-lock.json ]; then
  npm ci --ignore-scripts --no-audit --no-fund
  touch node_modules/.package-lock.json
fi

# Native addon and TypeScript: rebuild when a source is newer than its output.
addon=build/Release/podnet.node
if [ ! -f "$addon" ] || [ -n "$(find csrc binding.gyp -newer "$addon" 2>/dev/null | head -1)" ]; then
  npx --no-install node-gyp rebuild --loglevel=warn >/dev/null
fi
if [ ! -f dist/index.js ] || [ -n "$(find lib tsconfig.json -newer dist/index.js 2>/dev/null | head -1)" ]; then
  npx --no-install tsc -p tsconfig.json
fi
