#!/usr/bin/env bash
# Captures real ADD results of Debian's bridge + host-local plugins (CNI 0.4.0 and
# 1.0.0, IPv4 and dual-stack) into test/fixtures/inspect/, then DELs and cleans up.
# Uses only the stats feature's resources: netns pn-st-cap, bridges pnstcap0/pnstcap1, 10.89.64.0/20.
set -euo pipefail
shopt -s inherit_errexit 2>/dev/null || true
cd "$(dirname "$0")/.."
out=test/fixtures/inspect
mkdir -p "$out"
ns=pn-st-cap
data=$(mktemp -d /tmp/pnst-ipam.XXXXXX)
cleanup() {
  ip netns del "$ns" 2>/dev/null || true
  ip link del pnstcap0 2>/dev/null || true
  ip link del pnstcap1 2>/dev/null || true
  rm -rf "$data"
}
trap cleanup EXIT
ip netns add "$ns"

conf() { # version name ranges-json bridge
  cat <<JSON
{"cniVersion":"$1","name":"$2","type":"bridge","bridge":"$4","isGateway":true,"ipMasq":false,
 "ipam":{"type":"host-local","dataDir":"$data","ranges":$3}}
JSON
}
run() { # command version name ranges ifname bridge
  conf "$2" "$3" "$4" "$6" | CNI_COMMAND=$1 CNI_CONTAINERID=pnstcap CNI_NETNS=/run/netns/$ns CNI_IFNAME=$5 \
    CNI_PATH=/usr/lib/cni /usr/lib/cni/bridge
}
v4='[[{"subnet":"10.89.64.0/24"}]]'
dual='[[{"subnet":"10.89.65.0/24"}],[{"subnet":"fd89:64::/64"}]]'
for v in 0.4.0 1.0.0; do
  run ADD "$v" pnst-v4 "$v4" eth0 pnstcap0 | python3 -m json.tool > "$out/bridge-$v-ipv4.json"
  run DEL "$v" pnst-v4 "$v4" eth0 pnstcap0
  run ADD "$v" pnst-dual "$dual" eth1 pnstcap1 | python3 -m json.tool > "$out/bridge-$v-dualstack.json"
  run DEL "$v" pnst-dual "$dual" eth1 pnstcap1
done
ls -l "$out"
