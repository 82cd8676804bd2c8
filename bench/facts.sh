#!/usr/bin/env bash
# Benchmark: `regboot facts` against N local sshd servers beside an OpenSSH fan-out that reads
# the same facts (xargs -P over `ssh host SCRIPT`), N = 1, 10, 50. Prints the median wall time
# and client CPU time (user+sys) of each, and the ratio. Not a test: it only prints figures.
#
#   bench/facts.sh            # builds target/release/regboot first
#   RUNS=9 SIZES="1 10 50" bench/facts.sh
set -euo pipefail
cd "$(dirname "$0")/.."

RUNS=${RUNS:-7}
SIZES=${SIZES:-"1 10 50"}
FORKS=50
max=0
for n in $SIZES; do [ "$n" -gt "$max" ] && max=$n; done

cargo build --release --quiet --bin regboot
regboot=$PWD/target/release/regboot

work=$(mktemp -d)
pids=()
cleanup() {
  for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
  wait 2>/dev/null || true
  rm -rf "$work"
}
trap cleanup EXIT
mkdir -p /run/sshd

ssh-keygen -q -t ed25519 -N '' -C bench -f "$work/id"
cp "$work/id.pub" "$work/authorized_keys"
chmod 755 "$work"

# One sshd per host, each on its own loopback port with its own host key.
ports=()
for i in $(seq 1 "$max"); do
  d=$work/sshd$i
  mkdir -p "$d"
  ssh-keygen -q -t ed25519 -N '' -f "$d/host_key"
  port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
  cat > "$d/sshd_config" <<EOF
Port $port
ListenAddress 127.0.0.1
HostKey $d/host_key
PidFile $d/sshd.pid
AuthorizedKeysFile $work/authorized_keys
StrictModes no
UsePAM no
PermitRootLogin yes
PasswordAuthentication no
KbdInteractiveAuthentication no
LogLevel ERROR
# bash reads root's ~/.bashrc when sshd starts it at SHLVL 0; this machine's runs pyenv
# init, slower than the rest of a session: neither side's figures should be that.
SetEnv SHLVL=1
EOF
  /usr/sbin/sshd -D -e -f "$d/sshd_config" 2>>"$d/log" &
  pids+=($!)
  ports+=("$port")
done
for port in "${ports[@]}"; do
  for _ in $(seq 1 100); do
    (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null && break
    sleep 0.05
  done
done

kh=$work/known_hosts
for n in $SIZES; do
  {
    printf 'version: 1\ndefaults:\n  user: root\n  key: %s\n  known_hosts: %s\n  host_key_check: accept-new\nhosts:\n' "$work/id" "$kh"
    for i in $(seq 1 "$n"); do
      printf '  - { name: h%s, address: 127.0.0.1, port: %s, roles: [%s] }\n' "$i" "${ports[$((i - 1))]}" \
        "$([ "$i" = 1 ] && echo registry || echo agent)"
    done
    printf 'registry:\n  hostname: registry.bench\n'
  } > "$work/inv$n.yml"
done
# Learn every host key once, so both sides then run with strict checking of the same file.
"$regboot" facts -q -i "$work/inv$max.yml" -o json > /dev/null
sed -i 's/accept-new/strict/' "$work"/inv*.yml

# The same facts as regboot's script, the way one would write them for ssh.
script='cat /etc/os-release; [ -d /run/systemd/system ] && echo init=systemd || echo init=other;
command -v docker >/dev/null && echo docker_installed=yes || echo docker_installed=no;
docker version --format "{{.Server.Version}}" 2>/dev/null; pidof dockerd >/dev/null && echo docker_running=yes;
if [ "$(id -u)" = 0 ]; then echo sudo=root; elif sudo -n true 2>/dev/null; then echo sudo=nopasswd; else echo sudo=password; fi;
[ -e /etc/docker/daemon.json ] && echo daemon_json=yes || echo daemon_json=no'
for n in $SIZES; do printf '%s\n' "${ports[@]:0:$n}" > "$work/ports$n"; done

# Prints "wall cpu" in seconds for one run of the command (CPU includes its children).
measure() {
  /usr/bin/time -o "$work/time" -f '%e %U %S' "$@" > "$work/out" 2> "$work/err" || true
  awk '{ printf "%.3f %.3f\n", $1, $2 + $3 }' "$work/time"
}
median() { sort -g | awk '{ v[NR] = $1 } END { print (NR % 2) ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2 }'; }

printf '%-4s %-12s %-12s %-7s %-12s %-12s\n' N regboot_wall openssh_wall ratio regboot_cpu openssh_cpu
for n in $SIZES; do
  : > "$work/r"; : > "$work/o"
  for _ in $(seq 1 "$RUNS"); do
    # Alternate, so drift on a shared machine hits both sides alike.
    measure "$regboot" facts -q -i "$work/inv$n.yml" -o json >> "$work/r"
    grep -q '"host"' "$work/out" && ! grep -q '"error"' "$work/out" || { echo "regboot run failed" >&2; exit 1; }
    measure xargs -a "$work/ports$n" -P "$FORKS" -I{} ssh -F /dev/null -i "$work/id" -o BatchMode=yes \
      -o StrictHostKeyChecking=yes -o UserKnownHostsFile="$kh" -o ConnectTimeout=10 \
      -p {} root@127.0.0.1 "$script" >> "$work/o"
    [ "$(grep -c '^ID=' "$work/out")" = "$n" ] || { echo "openssh fan-out failed" >&2; exit 1; }
  done
  rw=$(cut -d' ' -f1 "$work/r" | median); ow=$(cut -d' ' -f1 "$work/o" | median)
  rc=$(cut -d' ' -f2 "$work/r" | median); oc=$(cut -d' ' -f2 "$work/o" | median)
  printf '%-4s %-12s %-12s %-7s %-12s %-12s\n' "$n" "${rw}s" "${ow}s" \
    "$(awk -v a="$rw" -v b="$ow" 'BEGIN { printf "%.2fx", (b > 0) ? a / b : 0 }')" "${rc}s" "${oc}s"
done
echo "(median of $RUNS runs each; ratio = regboot / OpenSSH wall time; CPU = client user+sys)"
