#!/usr/bin/env bash
# Benchmark: what each lab host pays for regboot's commands. Starts a lab of N hosts (host1 the
# registry; host2, 5, 8... log in as ops with sudo, the others as root), applies once, then
# measures RUNS times each (median): `facts` (connect and probe), `plan` (probe and every
# module's decision), `verify` (probe and the smoke test), a no-op `apply` (lock, probe, every
# decision, the smoke test). Prints, per command, the wall time, this machine's CPU, and each
# host's CPU from its container's cgroup (see bench/lib/cpu.sh). Not a test: it prints figures.
#
#   bench/host-cpu.sh 3            # RUNS=3 by default
#   REGBOOT=/path/to/regboot bench/host-cpu.sh 3   # another build
#   BEFORE=/path/to/old/regboot bench/host-cpu.sh 3   # that build too, alternating on one lab
#   ROOT=1 bench/host-cpu.sh 3     # every host logs in as root (the runtimes' APIs everywhere)
set -euo pipefail
cd "$(dirname "$0")/.."

n=${1:?usage: bench/host-cpu.sh N}
RUNS=${RUNS:-3}
[ "$n" -ge 2 ] && [ "$n" -le 60 ] || { echo "N: 2 to 60 hosts" >&2; exit 1; }
if [ -z "${REGBOOT:-}" ]; then
  cargo build --release --quiet --bin regboot
  REGBOOT=${CARGO_TARGET_DIR:-$PWD/target}/release/regboot
fi
work=$(mktemp -d)
lab=hostcpu-$n-$$
cleanup() {
  "$REGBOOT" lab down --name "$lab" --dir "$work/lab" >/dev/null 2>&1 || true
  rm -rf "$work"
}
trap cleanup EXIT
trap 'exit 130' INT TERM HUP

. bench/lib/cpu.sh
CPU_PREFIX=regboot-lab-$lab-
"$REGBOOT" lab up --hosts "$n" --name "$lab" --dir "$work/lab" >/dev/null
inv=$work/lab/inventory.yml
if [ -n "${ROOT:-}" ]; then sed -i '/^    user: ops$/d' "$inv"; fi
"$REGBOOT" apply -q -i "$inv" >/dev/null

commands=(facts plan verify apply)
builds=(after)
declare -A bin=([after]=$REGBOOT)
if [ -n "${BEFORE:-}" ]; then builds=(before after); bin[before]=$BEFORE; fi
for _ in $(seq 1 "$RUNS"); do
  for b in "${builds[@]}"; do
    for c in "${commands[@]}"; do
      cpu_measure "$c $b" "$work/$c.log" "${bin[$b]}" "$c" -q -i "$inv"
    done
  done
done

hosts=$(cpu_hosts | awk '{ print $1 }')
printf '%-14s %7s %7s' command wall client
for h in $hosts; do printf ' %7s' "${h##*-}"; done
printf '   (CPU seconds; medians of %s)\n' "$RUNS"
for c in "${commands[@]}"; do
  for b in "${builds[@]}"; do
    k="$c $b"
    printf '%-14s %7.2f %7.3f' "$k" "$(med "$k")" "$(med "$k/client")"
    for h in $hosts; do printf ' %7.3f' "$(med "$k/host/$h")"; done
    printf '\n'
  done
done
echo "host1: the registry (its registry container's own CPU not counted); host2 pushes; $(
  [ -n "${ROOT:-}" ] && echo "root logs in everywhere" || echo "ops (sudo) logs in on host2, 5, 8...")"
