#!/usr/bin/env bash
# Benchmark: regboot at fleet scale beyond the lab. N real OpenSSH servers on this machine
# (one sshd per host, each on its own loopback address 127.1.x.y, default MaxStartups
# 10:30:100), N = 100, 250, 500, 1000. For each N: `regboot facts` (connect + probe) and `regboot
# plan` (connect, probe and every apply module's decision, changing nothing) against the OpenSSH
# floor (one ssh per host, all at once, running the same facts the probe reads). Prints median
# wall time, the ratio to the floor, the CPU of the client (regboot, or every ssh) and of the
# hosts (every sshd and what it ran), the bound they set on this machine's cores ((client +
# hosts) CPU / cores: everything here runs on them), regboot's peak RSS and peak open file
# descriptors, and how many hosts failed (a handshake refused by MaxStartups counts). Not a test: it prints.
#
#   bench/fanout.sh                      # builds target/release/regboot first
#   RUNS=5 SIZES="100 250 500 1000" FORKS=500 bench/fanout.sh   # FORKS: default 50, as regboot's --forks
set -euo pipefail
cd "$(dirname "$0")/.."

RUNS=${RUNS:-3}
SIZES=${SIZES:-"100 250 500 1000"}
FORKS=${FORKS:-50}
max=0
for n in $SIZES; do [ "$n" -gt "$max" ] && max=$n; done
[ "$max" -le 2000 ] || { echo "at most 2000 hosts" >&2; exit 1; }

cargo build --release --quiet --bin regboot
regboot=${CARGO_TARGET_DIR:-$PWD/target}/release/regboot

work=$(mktemp -d)
pids=()
cleanup() {
  for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
  wait 2>/dev/null || true
  rm -rf "$work"
}
trap cleanup EXIT
mkdir -p /run/sshd
ulimit -n "$(ulimit -Hn)"

ssh-keygen -q -t ed25519 -N '' -C bench -f "$work/id"
cp "$work/id.pub" "$work/authorized_keys"
chmod 755 "$work"

# Host i listens on 127.1.(i/250).(i%250+1), port 22: its own address, so neither regboot's
# per-address handshake limit nor one sshd's MaxStartups is what is measured.
addr() { echo "127.1.$(($1 / 250)).$(($1 % 250 + 1))"; }
for i in $(seq 1 "$max"); do
  d=$work/sshd$i
  mkdir -p "$d"
  ssh-keygen -q -t ed25519 -N '' -f "$d/host_key"
  cat > "$d/sshd_config" <<EOF
Port 22
ListenAddress $(addr "$i")
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
done
for i in $(seq 1 "$max"); do
  for _ in $(seq 1 100); do
    (exec 3<>"/dev/tcp/$(addr "$i")/22") 2>/dev/null && break
    sleep 0.05
  done
done

kh=$work/known_hosts
# Both sides wait up to 30 s for a handshake (the floor's ConnectTimeout=30).
for n in $SIZES; do
  {
    printf 'version: 1\ndefaults:\n  user: root\n  key: %s\n  known_hosts: %s\n  host_key_check: accept-new\n  connect_timeout_secs: 30\nhosts:\n' "$work/id" "$kh"
    for i in $(seq 1 "$n"); do
      printf '  - { name: h%s, address: %s, roles: [%s] }\n' "$i" "$(addr "$i")" \
        "$([ "$i" = 1 ] && echo registry || echo agent)"
    done
    printf 'registry:\n  hostname: registry.bench\nsmoke_test: false\n'
  } > "$work/inv$n.yml"
  for i in $(seq 1 "$n"); do addr "$i"; done > "$work/addrs$n"
done
# Learn every host key once; then both sides check the same file strictly.
"$regboot" facts -q --forks "$FORKS" -i "$work/inv$max.yml" -o json > /dev/null || true
sed -i 's/accept-new/strict/' "$work"/inv*.yml

script='cat /etc/os-release; [ -d /run/systemd/system ] && echo init=systemd || echo init=other;
command -v docker >/dev/null && echo docker_installed=yes || echo docker_installed=no;
docker version --format "{{.Server.Version}}" 2>/dev/null; pidof dockerd >/dev/null && echo docker_running=yes;
[ -e /etc/docker/daemon.json ] && echo daemon_json=yes || echo daemon_json=no'

# Every sshd's CPU and its reaped sessions' (each host's work), in clock ticks.
hosts_ticks() {
  local p stat total=0
  for p in "${pids[@]}"; do
    read -r stat < "/proc/$p/stat" || continue
    stat=${stat##*) }
    set -- $stat
    total=$((total + ${12} + ${13} + ${14} + ${15}))
  done
  echo "$total"
}
tck=$(getconf CLK_TCK)
cores=$(nproc)

# Runs the command; prints "wall peak_rss_mb peak_fds client_cpu hosts_cpu" (client CPU: user+sys of
# the command and its children, here regboot alone or every ssh client, not the hosts' work). File descriptors are sampled every
# 10 ms from /proc (bounded by the command's own end).
measure() {
  local h0 h1
  h0=$(hosts_ticks)
  /usr/bin/time -o "$work/time" -f '%e %M %U %S' "$@" > "$work/out" 2> "$work/err" &
  local tpid=$! fds=0 count child
  while kill -0 "$tpid" 2>/dev/null; do
    child=$(pgrep -P "$tpid" | head -n 1 || true)
    if [ -n "$child" ]; then
      count=$({ ls "/proc/$child/fd" 2>/dev/null || true; } | wc -l)
      if [ "$count" -gt "$fds" ]; then fds=$count; fi
    fi
    sleep 0.01
  done
  wait "$tpid" || true
  h1=$(hosts_ticks)
  awk -v fds="$fds" -v h="$(((h1 - h0)))" -v tck="$tck" \
    '{ printf "%.3f %.1f %d %.2f %.2f\n", $1, $2 / 1024, fds, $3 + $4, h / tck }' "$work/time"
}
median() { sort -g | awk '{ v[NR] = $1 } END { print (NR % 2) ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2 }'; }
failed() { { grep -o '"error": *"[^"]' "$work/out" || true; } | wc -l; }

printf '%-5s %-8s %-9s %-7s %-9s %-9s %-8s %-8s %-7s %-6s\n' N command wall ratio cpu hosts bound rss_MB fds failed
for n in $SIZES; do
  : > "$work/floor"; : > "$work/facts"; : > "$work/plan"; fails_f=0; fails_p=0
  for _ in $(seq 1 "$RUNS"); do
    measure xargs -a "$work/addrs$n" -P "$n" -I{} ssh -F /dev/null -i "$work/id" -o BatchMode=yes \
      -o StrictHostKeyChecking=yes -o UserKnownHostsFile="$kh" -o ConnectTimeout=30 \
      root@{} "$script" >> "$work/floor"
    ok=$(grep -c '^ID=' "$work/out" || true)
    [ "$ok" = "$n" ] || echo "  (OpenSSH floor: $((n - ok)) of $n hosts failed)" >&2
    measure "$regboot" facts -q --forks "$FORKS" -i "$work/inv$n.yml" -o json >> "$work/facts"
    fails_f=$((fails_f + $(failed)))
    measure "$regboot" plan -q --forks "$FORKS" -i "$work/inv$n.yml" -o json >> "$work/plan"
    fails_p=$((fails_p + $(failed)))
  done
  floor=$(cut -d' ' -f1 "$work/floor" | median)
  row() {
    local wall rss fds cpu hosts
    wall=$(cut -d' ' -f1 "$work/$1" | median)
    cpu=$(cut -d' ' -f4 "$work/$1" | median)
    hosts=$(cut -d' ' -f5 "$work/$1" | median)
    rss=$(cut -d' ' -f2 "$work/$1" | sort -g | tail -n 1)
    fds=$(cut -d' ' -f3 "$work/$1" | sort -g | tail -n 1)
    printf '%-5s %-8s %-9s %-7s %-9s %-9s %-8s %-8s %-7s %-6s\n' "$n" "$1" "${wall}s" \
      "$(awk -v a="$wall" -v b="$floor" 'BEGIN { printf "%.2fx", (b > 0) ? a / b : 0 }')" "${cpu}s" \
      "${hosts}s" "$(awk -v c="$cpu" -v h="$hosts" -v n="$cores" 'BEGIN { printf "%.2fs", (c + h) / n }')" \
      "$rss" "$fds" "$2"
  }
  row floor -
  row facts "$fails_f"
  row plan "$fails_p"
done
echo "(median of $RUNS runs; ratio = wall / OpenSSH floor; cpu: the client's user+sys (regboot, or all ssh"
echo " clients); hosts: every sshd's and its sessions'; bound: (cpu + hosts) / $cores cores; every host is this machine, so wall time includes the hosts' own work; rss and fds: peak;"
echo " failed: hosts with an error over all runs; --forks $FORKS)"
