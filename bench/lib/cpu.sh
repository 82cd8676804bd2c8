# Sourced by the benchmarks: what a command costs in CPU, on this machine and on the lab's
# hosts, beside its wall time. Each lab host is a container; its CPU is its cgroup's (cgroup
# v1 cpuacct.usage, or v2 cpu.stat), which holds sshd, the shells, dockerd and containerd
# (systemd inside the host keeps them in the container's cgroup). Containers the host's own
# dockerd starts (the registry) are cgroups of their own and not counted.
#
# Set CPU_PREFIX to the hosts' container name prefix and CPU_FIRST_AGENT to how many of them
# (in name order) are not agents; then `cpu_measure KEY LOG CMD...` runs CMD and adds to
# samples[KEY] (wall s), samples[KEY/client] (this machine's CPU s: CMD and its children),
# samples[KEY/hosts] (every host's CPU s), samples[KEY/agent] (the agents' mean, s) and
# samples[KEY/host/NAME] (each host's, s).

declare -A samples
CPU_FIRST_AGENT=${CPU_FIRST_AGENT:-1}
cores=$(nproc)

# Every lab host's CPU in ns, one "name ns" a line, in name order.
cpu_hosts() {
  local name id f
  docker ps --no-trunc --filter "name=^$CPU_PREFIX" --format '{{.Names}} {{.ID}}' | sort -V |
    while read -r name id; do
      for f in /sys/fs/cgroup/cpuacct/docker/$id/cpuacct.usage \
        /sys/fs/cgroup/cpu,cpuacct/docker/$id/cpuacct.usage; do
        [ -r "$f" ] && { echo "$name $(cat "$f")"; continue 2; }
      done
      for f in /sys/fs/cgroup/system.slice/docker-$id.scope/cpu.stat /sys/fs/cgroup/docker/$id/cpu.stat; do
        [ -r "$f" ] && { echo "$name $(awk '$1 == "usage_usec" { print $2 * 1000 }' "$f")"; continue 2; }
      done
      echo "no cgroup CPU for container $name ($id)" >&2
      return 1
    done
}

# cpu_measure KEY LOG CMD...: run CMD (output to LOG); stop the benchmark, showing LOG's
# tail, when it fails.
cpu_measure() {
  local label=$1 log=$2 t0 t1 before after
  shift 2
  before=$(cpu_hosts)
  local c0 c1
  c0=$(children_ticks)
  t0=$(date +%s.%N)
  # A subshell: CMD may be a function; its CPU and its children's reach this shell's
  # children's times once it is reaped.
  if ! ("$@") >"$log" 2>&1; then
    echo "$label failed:" >&2
    tail -n 30 "$log" >&2
    exit 1
  fi
  t1=$(date +%s.%N)
  c1=$(children_ticks)
  after=$(cpu_hosts)
  samples[$label]+="$(echo "$t1 - $t0" | bc) "
  samples[$label/client]+="$(echo "($c1 - $c0) / $(getconf CLK_TCK)" | bc -l) "
  local hosts agent
  read -r hosts agent < <(awk -v first="$CPU_FIRST_AGENT" 'NR == FNR { b[$1] = $2; next }
    $1 in b { d = ($2 - b[$1]) / 1e9; all += d; if (++i > first) { ag += d; n++ } }
    END { printf "%.3f %.3f\n", all, n ? ag / n : 0 }' <(echo "$before") <(echo "$after"))
  samples[$label/hosts]+="$hosts "
  samples[$label/agent]+="$agent "
  local name ns
  while read -r name ns; do
    samples[$label/host/$name]+="$ns "
  done < <(awk 'NR == FNR { b[$1] = $2; next } $1 in b { printf "%s %.3f\n", $1, ($2 - b[$1]) / 1e9 }' \
    <(echo "$before") <(echo "$after"))
}

# The script's reaped children's CPU (user + system) in clock ticks.
children_ticks() {
  local stat
  read -r stat < /proc/$$/stat
  stat=${stat##*) }
  # After "pid (comm) ": state is field 1; cutime and cstime are fields 14 and 15.
  set -- $stat
  echo $(( ${14} + ${15} ))
}

median() { sort -g | awk '{ v[NR] = $1 } END { print (NR % 2) ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2 }'; }
# The median of KEY's samples.
med() { printf '%s\n' ${samples[$1]} | median; }
