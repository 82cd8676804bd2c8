#!/usr/bin/env bash
# Cold and warm `regboot lab up` with 3 hosts; prints the figures.
#
# cold:        a private docker engine with an empty image store and an empty lab cache, so the
#              host image (debootstrap, downloads included) and the registry image are built
#              from nothing, then 3 hosts boot.
# warm re-run: `lab up` again on the running lab (nothing to do).
# warm fresh:  `lab down`, then `lab up` again: images cached, 3 new hosts boot.
#
# The private engine (own socket, data and exec roots, no iptables rules) leaves the machine's
# engine and any lab running on it alone. Run as root.
set -euo pipefail
cd "$(dirname "$0")/.."
hosts=${HOSTS:-3}
cargo build -q
bin=$PWD/target/debug/regboot
work=$(mktemp -d /var/tmp/regboot-bench.XXXX)
export DOCKER_HOST="unix://$work/docker.sock" REGBOOT_LAB_CACHE="$work/cache"

dockerd --data-root "$work/data" --exec-root "$work/exec" --pidfile "$work/dockerd.pid" \
  -H "$DOCKER_HOST" --bridge=none --iptables=false --ip-masq=false >"$work/dockerd.log" 2>&1 &
dockerd_pid=$!
cleanup() {
  "$bin" lab down --name bench --dir "$work/lab" >/dev/null 2>&1 || true
  docker image prune -af >/dev/null 2>&1 || true
  kill "$dockerd_pid" 2>/dev/null && wait "$dockerd_pid" 2>/dev/null || true
  rm -rf "$work"
}
trap cleanup EXIT
for _ in $(seq 60); do docker info >/dev/null 2>&1 && break; sleep 0.5; done
docker info >/dev/null

timed() { # label, command...: runs the command, prints "label: N.N s"
  local label=$1 start end; shift
  start=$(date +%s%N)
  "$@" >"$work/out.log" 2>&1 || { cat "$work/out.log"; exit 1; }
  end=$(date +%s%N)
  local ds=$(( (end - start) / 100000000 ))
  printf '%-44s %4d.%d s\n' "$label" $((ds / 10)) $((ds % 10))
}

up=("$bin" lab up --name bench --hosts "$hosts" --dir "$work/lab")
echo "regboot lab up, $hosts hosts, $(nproc) cores"
timed "cold (empty engine and cache; image builds)" "${up[@]}"
grep -E '^\s+\[|built in' "$work/out.log" | sed 's/^/    /' || true
timed "warm re-run on the running lab" "${up[@]}"
"$bin" lab down --name bench --dir "$work/lab" >/dev/null
timed "warm fresh lab (images cached)" "${up[@]}"
