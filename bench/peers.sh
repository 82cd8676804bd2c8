#!/usr/bin/env bash
# Benchmark: regboot beside the tools people use instead, on the same lab hosts in one run.
# Starts a lab of N hosts (systemd, sshd, dockerd), then measures, RUNS times each (median):
#   - the OpenSSH floor: one `ssh HOST true` per host, all at once;
#   - regboot: cold apply (registry, client side and smoke test; `reset --yes` between runs),
#     no-op plan, no-op apply (with its smoke test);
#   - the client side alone (CA into certs.d and the trust store with its update, an
#     /etc/hosts entry, a daemon.json key merged with a reload), written as an Ansible
#     playbook (ansible-core, forks=N, pipelining) and a pyinfra deploy, both from PyPI in a
#     virtualenv this script makes: cold (after undoing it) and no-op.
# Prints each median, its ratio to the floor and to pyinfra, the CPU it cost this machine and
# the lab's hosts (each host container's cgroup, bench/lib/cpu.sh), and the bound that host CPU
# sets on these shared cores (host CPU / cores). Not a test: it prints figures.
#
#   bench/peers.sh 5            # RUNS=3 by default
#   RUNS=5 bench/peers.sh 20
#   PEERS=pyinfra bench/peers.sh 50   # pyinfra alone beside regboot (Ansible's runs are the longest)
#   BUNDLE=1 bench/peers.sh 20        # regboot installs nginx from the lab's bundle (`lab up
#                                     # --bundle`, docs/bundle.md), not the hosts' mirror
set -euo pipefail
cd "$(dirname "$0")/.."

n=${1:?usage: bench/peers.sh N}
RUNS=${RUNS:-3}
PEERS=${PEERS:-"ansible pyinfra"}
case " $PEERS " in *" pyinfra "*) ;; *) echo "PEERS must include pyinfra (the ratios are to it)" >&2; exit 1 ;; esac
[ "$n" -ge 2 ] && [ "$n" -le 60 ] || { echo "N: 2 to 60 hosts" >&2; exit 1; }

# REGBOOT: a build to measure instead of this tree's release build.
if [ -n "${REGBOOT:-}" ]; then regboot=$REGBOOT; else
  cargo build --release --quiet --bin regboot
  regboot=${CARGO_TARGET_DIR:-$PWD/target}/release/regboot
fi
work=$(mktemp -d)
# Not `name`: the host loops below read host names into that.
lab=peers-$n-$$
cleanup() {
  "$regboot" lab down --name "$lab" --dir "$work/lab" >/dev/null 2>&1 || true
  rm -rf "$work"
}
# A signal ends the script through its EXIT trap, so the lab goes either way.
trap cleanup EXIT
trap 'exit 130' INT TERM HUP

# The peers, from PyPI (cached between runs).
venv=${PEERS_VENV:-$HOME/.cache/regboot/peers-venv}
if [ ! -x "$venv/bin/pyinfra" ] || [ ! -x "$venv/bin/ansible-playbook" ]; then
  python3 -m venv "$venv"
  "$venv/bin/pip" install -q 'ansible-core>=2.19,<2.20' 'pyinfra>=3,<4'
fi
echo "peers: $("$venv/bin/ansible-playbook" --version | head -n 1), pyinfra $("$venv/bin/pyinfra" --version 2>&1 | tail -n 1)"

"$regboot" lab up --hosts "$n" --name "$lab" --dir "$work/lab" ${BUNDLE:+--bundle} >/dev/null
inv=$work/lab/inventory.yml
# The CA the client side places (regboot's own, so every tool installs the same file).
"$regboot" certs init -i "$inv" >/dev/null
ca=$work/lab/.regboot/ca.crt

# Hosts as (name user address port), from the lab's inventory.
python3 - "$inv" > "$work/hosts" <<'EOF'
import sys, yaml
doc = yaml.safe_load(open(sys.argv[1]))
d = doc["defaults"]
for h in doc["hosts"]:
    print(h["name"], h.get("user", d["user"]), h["address"], h.get("port", d["port"]))
EOF
registry_ip=$(awk 'NR == 1 { print $3 }' "$work/hosts")
key=$work/lab/id_ed25519
kh=$work/lab/known_hosts
sshopts=(-F /dev/null -i "$key" -o BatchMode=yes -o StrictHostKeyChecking=yes -o "UserKnownHostsFile=$kh" -o ConnectTimeout=20)
# Runs a root shell command on every host at once; fails when one fails.
on_all() {
  local pids=() name user addr port
  while read -r name user addr port; do
    ssh "${sshopts[@]}" -p "$port" "$user@$addr" "sudo -n sh -c '$1'" >/dev/null &
    pids+=($!)
  done < "$work/hosts"
  for p in "${pids[@]}"; do wait "$p"; done
}
# Ansible runs its modules with Python on the host; the lab's minimal Debian has none.
case " $PEERS " in *" ansible "*)
  on_all 'command -v python3 >/dev/null || { apt-get update -qq && apt-get install -y -qq python3-minimal; } >/dev/null 2>&1' ;;
esac

# Undo the client side (the peers' cold runs start from here): the same paths regboot uses.
undo='rm -rf /etc/docker/certs.d/registry.lab:5000 /usr/local/share/ca-certificates/regboot-registry.lab.crt;
update-ca-certificates --fresh >/dev/null 2>&1;
grep -v " registry.lab\$" /etc/hosts > /tmp/hosts.peers; cat /tmp/hosts.peers > /etc/hosts; rm -f /tmp/hosts.peers;
rm -f /etc/docker/daemon.json; systemctl reload docker'

# --- Ansible: the client side as a playbook -------------------------------------------------
{
  echo "[lab]"
  while read -r name user addr port; do
    echo "$name ansible_host=$addr ansible_port=$port ansible_user=$user"
  done < "$work/hosts"
  echo "[lab:vars]"
  echo "ansible_ssh_private_key_file=$key"
  echo "ansible_ssh_common_args='-F /dev/null -o StrictHostKeyChecking=yes -o UserKnownHostsFile=$kh'"
  echo "ansible_python_interpreter=/usr/bin/python3"
} > "$work/ansible.ini"
cat > "$work/ansible.cfg" <<EOF
[defaults]
forks = $n
host_key_checking = True
gathering = explicit
stdout_callback = default
[ssh_connection]
pipelining = True
EOF
cat > "$work/client.yml" <<EOF
- hosts: lab
  become: true
  tasks:
    - name: certs.d directory
      file: { path: /etc/docker/certs.d/registry.lab:5000, state: directory, mode: "0755" }
    - name: CA in docker certs.d
      copy: { src: "$ca", dest: /etc/docker/certs.d/registry.lab:5000/ca.crt, mode: "0644" }
    - name: CA in the trust store
      copy: { src: "$ca", dest: /usr/local/share/ca-certificates/regboot-registry.lab.crt, mode: "0644" }
      register: anchor
    - name: update the trust store
      command: update-ca-certificates
      when: anchor.changed
    - name: /etc/hosts entry
      lineinfile: { path: /etc/hosts, line: "$registry_ip registry.lab", unsafe_writes: true }
    - name: read daemon.json
      slurp: { src: /etc/docker/daemon.json }
      register: current
      failed_when: false
    - name: daemon.json key merged
      copy:
        dest: /etc/docker/daemon.json
        content: "{{ ((current.content | default('e30=') | b64decode | from_json) | combine({'max-concurrent-downloads': 4})) | to_nice_json }}"
        mode: "0644"
      notify: reload docker
  handlers:
    - name: reload docker
      systemd: { name: docker, state: reloaded }
EOF
ansible_run() { ANSIBLE_CONFIG=$work/ansible.cfg "$venv/bin/ansible-playbook" -i "$work/ansible.ini" "$work/client.yml"; }

# --- pyinfra: the same client side as a deploy ---------------------------------------------
{
  echo "hosts = ["
  while read -r name user addr port; do
    echo "    ('$addr', {'ssh_port': $port, 'ssh_user': '$user', '_sudo': $([ "$user" = root ] && echo False || echo True)}),"
  done < "$work/hosts"
  echo "]"
} > "$work/pyinfra_inventory.py"
cat > "$work/deploy.py" <<EOF
import json
from io import StringIO
from pyinfra import host
from pyinfra.facts.files import FileContents
from pyinfra.operations import files, server, systemd

files.put(name="CA in docker certs.d", src="$ca", dest="/etc/docker/certs.d/registry.lab:5000/ca.crt", mode="644", create_remote_dir=True)
anchor = files.put(name="CA in the trust store", src="$ca", dest="/usr/local/share/ca-certificates/regboot-registry.lab.crt", mode="644")
server.shell(name="update the trust store", commands=["update-ca-certificates"], _if=anchor.did_change)
files.line(name="/etc/hosts entry", path="/etc/hosts", line="$registry_ip registry.lab")
current = host.get_fact(FileContents, path="/etc/docker/daemon.json") or ["{}"]
merged = json.loads("\n".join(current) or "{}")
merged["max-concurrent-downloads"] = 4
daemon = files.put(name="daemon.json key merged", src=StringIO(json.dumps(merged, indent=2) + "\n"), dest="/etc/docker/daemon.json", mode="644")
systemd.service(name="reload docker", service="docker", reloaded=True, _if=daemon.did_change)
EOF
pyinfra_run() {
  (cd "$work" && "$venv/bin/pyinfra" -y --parallel "$n" --key "$key" --data ssh_known_hosts_file="$kh" \
    --data ssh_strict_host_key_checking=yes pyinfra_inventory.py deploy.py)
}

# --- measuring --------------------------------------------------------------------------
# Wall time, this machine's CPU and every lab host's (its container's cgroup): bench/lib/cpu.sh.
. bench/lib/cpu.sh
CPU_PREFIX=regboot-lab-$lab-
measure() { cpu_measure "$@"; }
floor_run() {
  local pids=() name user addr port
  while read -r name user addr port; do
    ssh "${sshopts[@]}" -p "$port" "$user@$addr" true &
    pids+=($!)
  done < "$work/hosts"
  for p in "${pids[@]}"; do wait "$p"; done
}

for _ in $(seq 1 "$RUNS"); do
  measure floor "$work/floor.log" floor_run
  for tool in $PEERS; do
    on_all "$undo"
    measure "$tool cold" "$work/$tool.log" "${tool}_run"
    measure "$tool no-op" "$work/$tool.log" "${tool}_run"
  done
  on_all "$undo"
  measure "regboot cold apply" "$work/cold.json" "$regboot" apply -q -i "$inv" -o json
  measure "regboot no-op plan" "$work/plan.json" "$regboot" plan -q -i "$inv" -o json
  measure "regboot no-op apply" "$work/noop.json" "$regboot" apply -q -i "$inv" -o json
  "$regboot" reset --yes -q -i "$inv" >/dev/null
done

floor=$(med floor)
pyinfra_noop=$(med "pyinfra no-op")
pyinfra_cold=$(med "pyinfra cold")
printf '%-20s %8s %6s %7s %8s %8s %7s %8s %6s\n' "$n hosts" wall floor/x pyinfra "client" hosts "/agent" bound wall/bd
rows=(floor "regboot no-op plan" "regboot no-op apply" "regboot cold apply")
for tool in $PEERS; do rows+=("$tool no-op" "$tool cold"); done
for k in "${rows[@]}"; do
  m=$(med "$k")
  hosts=$(med "$k/hosts")
  # Cold runs are compared with pyinfra's cold run, the others with its no-op run.
  case $k in *cold*) p=$pyinfra_cold ;; *) p=$pyinfra_noop ;; esac
  awk -v k="$k" -v m="$m" -v f="$floor" -v p="$p" -v c="$(med "$k/client")" -v h="$hosts" \
    -v a="$(med "$k/agent")" -v cores="$cores" 'BEGIN {
      b = h / cores
      printf "%-20s %7.2fs %5.1fx %6.2fx %7.2fs %7.2fs %6.3fs %7.2fs %5.1fx\n", k, m, m / f, m / p, c, h, a, b, m / b }'
done
cat <<EOF
(medians of $RUNS runs; cold: the client side undone first, and for regboot the registry too
(reset); pyinfra: the ratio to pyinfra's no-op, for a cold run to its cold run; client: this
machine's CPU (the tool and its ssh processes); hosts: every lab host's CPU (cgroup), /agent:
an agent's mean; bound: hosts / $cores cores, the least wall time the hosts' own work allows
on this machine, and wall/bd how far the run is above it)
EOF
# Where regboot's time went in the last run (its report's phases; -v prints the same line).
for run in cold noop; do
  python3 - "$work/$run.json" "$run" <<'EOF'
import json, sys
phases = json.load(open(sys.argv[1]))["phases"]
print(f"regboot {sys.argv[2]} apply, last run:", ", ".join(
    f"{p['phase']} {p['seconds']:.2f}s" for p in phases if p["seconds"] >= 0.005))
EOF
done
