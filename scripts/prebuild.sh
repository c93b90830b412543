#!/usr/bin/env bash
# Prebuilt binaries for the npm package: the addon (prebuildify, N-API, tagged
# with the libc) and the port forwarder and CNI plugin executables next to it, where
# forwarderPath() finds it in an installed package.
set -euo pipefail
cd "$(dirname "$0")/.."
npx --no-install tsc -p tsconfig.json
npx --no-install prebuildify --napi --strip --tag-libc
dir="prebuilds/$(node -p 'process.platform + "-" + process.arch')"
install -m 0755 -s build/Release/podnet-portfwd "$dir/podnet-portfwd"
install -m 0755 -s build/Release/podnet-cni "$dir/podnet-cni"
