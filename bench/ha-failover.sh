#!/usr/bin/env bash
# HA figures on the HA lab (`regboot lab up --profile ha`, on this machine's docker engine):
#
# failover:   seconds from stopping keepalived (then nginx) on the MASTER lb until a
#             manifest GET through the VIP (from this machine, TLS checked against the CA,
#             every 100 ms, 1 s timeout each) answers 200 again; and where the VIP went.
# throughput: `docker pull` of a SIZE_MB image (one random layer) through the VIP, RUNS times
#             each (median), on one agent and on both agents at once (aggregate MB/s), with
#             all three replicas healthy and with one (two stopped).
#
# The lab is named ha-bench and removed at the end. SIZE_MB (default 64) and RUNS (default 3)
# change the workload. Needs root (docker), curl and bc.
set -euo pipefail
cd "$(dirname "$0")/.."
size_mb=${SIZE_MB:-64}
runs=${RUNS:-3}
cargo build -q
bin=$PWD/target/debug/regboot
work=$(mktemp -d /var/tmp/regboot-ha-bench.XXXX)
lab=$work/lab
cleanup() {
  "$bin" lab down --name ha-bench --dir "$lab" >/dev/null 2>&1 || true
  rm -rf "$work"
}
trap cleanup EXIT
unset AWS_CA_BUNDLE

"$bin" lab up --profile ha --name ha-bench --dir "$lab" >/dev/null
set -a; . "$lab/s3.env"; set +a
"$bin" apply -q -i "$lab/inventory.yml" >/dev/null
vip=$(sed -n 's/^  vip: //p' "$lab/inventory.yml")
c() { echo "regboot-lab-ha-bench-$1"; }
password=$(cat "$lab/registry-password")
ca=$lab/.regboot/ca.crt
image=registry.lab:5000/bench:1

# The bench image: one layer of random bytes, built on agent host6 and pushed through the VIP.
docker exec -i "$(c host6)" sh -c "
  set -e; d=\$(mktemp -d); head -c ${size_mb}M /dev/urandom >\$d/blob
  tar -C \$d -c blob | docker import - $image >/dev/null; rm -rf \$d
  docker login -u lab --password-stdin registry.lab:5000 >/dev/null 2>&1
  docker push $image >/dev/null" <<<"$password"
docker exec -i "$(c host7)" docker login -u lab --password-stdin registry.lab:5000 \
  >/dev/null 2>&1 <<<"$password"

# Seconds until `docker pull` finished on every host given (image removed before each run,
# pulls started together); prints the median of RUNS.
pull_median() {
  local times=()
  for _ in $(seq "$runs"); do
    for h in "$@"; do docker exec "$(c "$h")" docker rmi "$image" >/dev/null 2>&1 || true; done
    local s e pids=()
    s=$(date +%s.%N)
    for h in "$@"; do
      docker exec "$(c "$h")" docker pull -q "$image" >/dev/null &
      pids+=($!)
    done
    for p in "${pids[@]}"; do wait "$p"; done
    e=$(date +%s.%N)
    times+=("$(echo "$e - $s" | bc)")
  done
  printf '%s\n' "${times[@]}" | sort -n | sed -n "$(((runs + 1) / 2))p"
}
throughput() { # $1: label, then the hosts that pull
  local label=$1 t
  shift
  t=$(pull_median "$@")
  printf '%-50s %6.2f s  %7.1f MB/s\n' "$label" "$t" "$(echo "$size_mb * $# / $t" | bc -l)"
}

echo "pull of a ${size_mb} MB image through the VIP (median of $runs):"
throughput "  3 replicas healthy, 1 agent" host7
throughput "  3 replicas healthy, 2 agents at once" host6 host7
for h in host4 host5; do docker exec "$(c "$h")" docker stop regboot-registry >/dev/null; done
throughput "  1 replica healthy (2 stopped), 1 agent" host7
throughput "  1 replica healthy (2 stopped), 2 agents at once" host6 host7
for h in host4 host5; do docker exec "$(c "$h")" docker start regboot-registry >/dev/null; done

# Bounded: 600 tries of at most 1.1 s each.
manifest_ok() {
  curl -s -o /dev/null -w '%{http_code}' --max-time 1 --cacert "$ca" -u "lab:$password" \
    -H 'Accept: application/vnd.docker.distribution.manifest.v2+json' \
    --resolve "registry.lab:5000:$vip" "https://registry.lab:5000/v2/bench/manifests/1" || true
}
holder() {
  for h in host1 host2; do
    docker exec "$(c "$h")" ip -4 -o addr show | grep -q " $vip/" && { echo "$h"; return; }
  done
  echo none
}
failover() { # $1: service to stop on the MASTER
  local master s e i
  master=$(holder)
  [ "$(manifest_ok)" = 200 ] || { echo "the VIP does not serve before the test" >&2; exit 1; }
  s=$(date +%s.%N)
  docker exec "$(c "$master")" systemctl stop "$1"
  for i in $(seq 600); do
    [ "$(manifest_ok)" = 200 ] && break
    sleep 0.1
  done
  e=$(date +%s.%N)
  printf '  %-10s stopped on %s: pulls work again after %5.2f s (VIP now on %s)\n' \
    "$1" "$master" "$(echo "$e - $s" | bc)" "$(holder)"
  docker exec "$(c host6)" sh -c "docker rmi $image >/dev/null 2>&1; docker pull -q $image >/dev/null" &&
    echo "             docker pull on host6 through the VIP: ok"
  docker exec "$(c "$master")" systemctl start "$1"
}
echo "failover (manifest GET through the VIP every 100 ms):"
failover keepalived
sleep 3
failover nginx
