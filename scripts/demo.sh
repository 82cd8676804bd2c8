#!/usr/bin/env bash
# The demo on a fresh machine: install what the lab needs, build regboot, start a lab of three
# containerized hosts, set up the registry on them with `apply`, and run the smoke test again
# with `verify`. Re-running it is quick: everything is already there and apply changes nothing.
set -euo pipefail
cd "$(dirname "$0")/.."

scripts/install-deps.sh
cargo build --release --quiet
regboot=target/release/regboot

$regboot lab up --name demo
inventory=.regboot-lab/demo/inventory.yml
$regboot plan -i "$inventory" || [ $? -eq 2 ]   # exit 2 just means "changes pending"
$regboot apply -i "$inventory"
$regboot verify -i "$inventory"
echo
echo "The lab stays up: try 'regboot plan -i $inventory' (nothing to change)."
echo "Remove it with: $regboot lab down --name demo"
