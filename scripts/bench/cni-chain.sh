#!/usr/bin/env bash
# The bare cost of a CNI plugin chain: ADD each plugin in order with the previous result spliced in
# as prevResult (timed with bash's builtin EPOCHREALTIME, no extra processes), then DEL in reverse with the final result, as a plain script would (no jq, no cache).
# Usage: cni-chain.sh <confdir> <netns path> <container id> <cycles>   (CNI_PATH: plugin directory, default /usr/lib/cni)
# <confdir> holds 0.json, 1.json, ... : each plugin's complete stdin config without prevResult.
# Prints "cycle_us <n>" per cycle, "total_us <n>" and "<plugin> <ADD|DEL> <us>" summed over all cycles.
set -euo pipefail
dir=$1 netns=$2 cid=$3 cycles=$4
export CNI_CONTAINERID=$cid CNI_NETNS=$netns CNI_IFNAME=eth0 CNI_PATH=${CNI_PATH:-/usr/lib/cni} CNI_ARGS="IgnoreUnknown=1;K8S_POD_INFRA_CONTAINER_ID=$cid"
confs=()
types=()
for f in $(ls "$dir" | sort -n); do
  c=$(<"$dir/$f")
  confs+=("$c")
  t=${c#*\"type\":\"}
  types+=("${t%%\"*}")
done
n=${#confs[@]}
declare -A spent
start=${EPOCHREALTIME/./}
for ((k = 0; k < cycles; k++)); do
  c0=${EPOCHREALTIME/./}
  prev=""
  for ((i = 0; i < n; i++)); do
    stdin=${confs[i]}
    [ -n "$prev" ] && stdin="${stdin%\}},\"prevResult\":$prev}"
    t0=${EPOCHREALTIME/./}
    prev=$(CNI_COMMAND=ADD "$CNI_PATH/${types[i]}" <<<"$stdin") || { echo "${types[i]} ADD: $prev" >&2; exit 1; }
    spent[${types[i]} ADD]=$(( ${spent[${types[i]} ADD]:-0} + ${EPOCHREALTIME/./} - t0 ))
  done
  for ((i = n - 1; i >= 0; i--)); do
    stdin="${confs[i]%\}},\"prevResult\":$prev}"
    t0=${EPOCHREALTIME/./}
    out=$(CNI_COMMAND=DEL "$CNI_PATH/${types[i]}" <<<"$stdin") || { echo "${types[i]} DEL: $out" >&2; exit 1; }
    spent[${types[i]} DEL]=$(( ${spent[${types[i]} DEL]:-0} + ${EPOCHREALTIME/./} - t0 ))
  done
  echo "cycle_us $(( ${EPOCHREALTIME/./} - c0 ))"
done
echo "total_us $(( ${EPOCHREALTIME/./} - start ))"
for key in "${!spent[@]}"; do echo "$key ${spent[$key]}"; done
