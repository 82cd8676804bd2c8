#!/usr/bin/env bash
# Cold and no-op `regboot apply` against the lab with 3 and 10 hosts: wall time, and the SSH
# commands per host (each about one round trip; the handshake and the health/delete tunnels
# are not counted). A cold apply includes the CA, the registry image load and the smoke test.
# Usage: bench/apply.sh [RUNS]   (no-op runs per size, median printed; default 5)
set -euo pipefail
cd "$(dirname "$0")/.."
runs=${1:-5}
cargo build --release --quiet
bin=$PWD/target/release/regboot

now() { date +%s.%N; }
median() { sort -n | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}'; }
# Mean and max SSH commands per host in a JSON report.
commands() { python3 -c 'import json,sys; c=[h["commands"] for h in json.load(sys.stdin)["hosts"]]; print(f"{sum(c)/len(c):.1f} (max {max(c)})")'; }
changed() { python3 -c 'import json,sys; r=json.load(sys.stdin); print(sum(len(s["changes"]) for h in r["hosts"] for s in h["steps"]))'; }

printf '%-6s %-10s %-22s %-14s %-22s\n' hosts cold_s cold_cmds_per_host noop_median_s noop_cmds_per_host
for n in 3 10; do
  name=bench-apply-$n
  dir=$(mktemp -d)
  trap '$bin lab down --name $name --dir $dir/lab >/dev/null 2>&1 || true; rm -rf $dir' EXIT
  $bin lab up --hosts "$n" --name "$name" --dir "$dir/lab" >/dev/null
  inv=$dir/lab/inventory.yml
  t0=$(now); $bin apply -i "$inv" -o json >"$dir/cold.json"; t1=$(now)
  cold=$(echo "$t1 - $t0" | bc)
  times=()
  for _ in $(seq "$runs"); do
    t0=$(now); $bin apply -i "$inv" -o json >"$dir/noop.json"; t1=$(now)
    [ "$(changed <"$dir/noop.json")" = 0 ] || { echo "no-op apply changed something" >&2; exit 1; }
    times+=("$(echo "$t1 - $t0" | bc)")
  done
  noop=$(printf '%s\n' "${times[@]}" | median)
  printf '%-6s %-10.2f %-22s %-14.2f %-22s\n' "$n" "$cold" "$(commands <"$dir/cold.json")" \
    "$noop" "$(commands <"$dir/noop.json")"
  $bin lab down --name "$name" --dir "$dir/lab" >/dev/null
  rm -rf "$dir"
  trap - EXIT
done
