#!/usr/bin/env bash
# Zero-downtime figures: runs tests/lab/zero_downtime.rs (labs of its own, removed at the end)
# and prints its tables, one per topology: one registry host (3-host lab: host3 pulls, host2
# pushes and probes) and HA (the HA lab: three replicas behind two nginx lbs, every request
# through the VIP; host6 pulls, host7 pushes and probes). During each operation (rotate
# --leaf, a config change, a user change, an image change, rotate --ca; 5 s idle first as the
# baseline) one agent pulls every 0.2 s (the image removed first, so blobs travel), another
# pushes a new one-layer image in a loop and probes https://registry.lab:5000/v2/ with curl
# every 50 ms. Per operation and loop: requests made, requests failed, the longest gap between
# two answers, the longest single probe (`slowest`), and the operation's wall time.
# `bench/zero-downtime.sh one_registry` or `bench/zero-downtime.sh ha_` runs one topology (HA
# takes about 10 minutes). Needs root (docker) and the lab's prerequisites.
set -euo pipefail
cd "$(dirname "$0")/.."
unset AWS_CA_BUNDLE
out=$(mktemp)
trap 'rm -f "$out"' EXIT
status=0
cargo test --test lab -- zero_downtime:: --test-threads=1 --nocapture "$@" >"$out" 2>&1 || status=$?
sed -n -e 's/^test \([a-z_]*\) \.\.\..*/== \1/p' -e '/^operation /,/^$/p' "$out"
if [ "$status" != 0 ]; then
  echo "the test failed (exit $status):" >&2
  tail -n 40 "$out" >&2
fi
exit "$status"
