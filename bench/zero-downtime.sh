#!/usr/bin/env bash
# Zero-downtime figures on one registry host: runs tests/zero_downtime_lab.rs (a 3-host lab of
# its own, removed at the end) and prints its table. During each operation (rotate --leaf, a
# config change, a user change, an image change, rotate --ca; and 5 s idle as the baseline)
# host3 pulls every 0.2 s (image removed first, so blobs travel), host2 pushes a new one-layer
# image in a loop and probes https://registry.lab:5000/v2/ with curl every 50 ms. Per
# operation and loop: requests made, requests failed, the longest gap between two answers,
# and the operation's wall time. Needs root (docker) and the lab's prerequisites.
set -euo pipefail
cd "$(dirname "$0")/.."
unset AWS_CA_BUNDLE
out=$(mktemp)
trap 'rm -f "$out"' EXIT
status=0
cargo test -q --test zero_downtime_lab -- --test-threads=1 --nocapture >"$out" 2>&1 || status=$?
sed -n '/^operation /,/^$/p' "$out"
if [ "$status" != 0 ]; then
  echo "the test failed (exit $status):" >&2
  tail -n 40 "$out" >&2
fi
exit "$status"
