#!/usr/bin/env bash
# Cold and warm `regboot lab up` with 3 hosts (HOSTS=N for another count); prints the figures.
#
# cold:        as on a fresh machine: no engine running, empty image store, empty lab cache.
#              `lab up` starts dockerd itself, builds the host image (debootstrap, downloads
#              included) and the registry image, then boots the hosts.
# warm re-run: `lab up` again on the running lab (nothing to do).
# warm fresh:  `lab down`, then `lab up`: images cached, new hosts boot.
#
# To leave this machine's engine and its labs alone, the run happens in a private mount
# namespace (its own /run, /var/lib/docker, /etc/docker, /var/log) with a daemon.json that
# keeps the private engine from touching docker0 and iptables. Needs root and unshare(1).
set -euo pipefail
cd "$(dirname "$0")/.."
hosts=${HOSTS:-3}

if [ "${1:-}" != --inside ]; then
  cargo build -q
  work=$(mktemp -d /var/tmp/regboot-bench.XXXX)
  mkdir -p "$work"/{lib,etc-docker,log,cache}
  echo '{"bridge": "none", "iptables": false, "ip-masq": false}' >"$work/etc-docker/daemon.json"
  status=0
  unshare --mount --propagation private "$0" --inside "$work" || status=$?
  rm -rf "$work"
  exit "$status"
fi

work=$2
mount -t tmpfs tmpfs /run
mkdir -p /var/lib/docker /etc/docker
mount --bind "$work/lib" /var/lib/docker
mount --bind "$work/etc-docker" /etc/docker
mount --bind "$work/log" /var/log
export REGBOOT_LAB_CACHE="$work/cache"
unset DOCKER_HOST
bin=$PWD/target/debug/regboot
if docker info >/dev/null 2>&1; then echo "an engine still answers: not isolated" >&2; exit 1; fi
cleanup() {
  "$bin" lab down --name bench --dir "$work/lab" --purge >/dev/null 2>&1 || true
  if [ -f /run/docker.pid ]; then
    pid=$(cat /run/docker.pid)
    kill "$pid" 2>/dev/null || true
    for _ in $(seq 40); do kill -0 "$pid" 2>/dev/null || break; sleep 0.5; done
  fi
}
trap cleanup EXIT

timed() { # label, command...: runs the command, prints "label   N.N s"
  local label=$1 start end ds; shift
  start=$(date +%s%N)
  "$@" >"$work/out.log" 2>&1 || { cat "$work/out.log"; exit 1; }
  end=$(date +%s%N)
  ds=$(( (end - start) / 100000000 ))
  printf '%-48s %4d.%d s\n' "$label" $((ds / 10)) $((ds % 10))
}

up=("$bin" lab up --name bench --hosts "$hosts" --dir "$work/lab")
echo "regboot lab up, $hosts hosts, $(nproc) cores"
timed "cold (engine start, image builds, hosts boot)" "${up[@]}"
grep -E '^\s+\[|built in' "$work/out.log" | sed 's/^/    /' || true
timed "warm re-run on the running lab" "${up[@]}"
"$bin" lab down --name bench --dir "$work/lab" >/dev/null
timed "warm fresh lab (images cached, hosts boot)" "${up[@]}"
