#!/usr/bin/env bash
# Rehearse the whole setup on a lab of containerized hosts, as a CI job does before regboot
# touches real machines: lab up, plan, apply, verify, a plan that must find nothing left to
# change, and lab down (also when a step fails). Exits non-zero at the first step that fails.
#
#   scripts/ci-lab.sh [REGBOOT]     REGBOOT: the regboot binary (default: `regboot` on PATH)
#
# Environment: REGBOOT_CI_LAB (lab name, default ci-PID), REGBOOT_CI_HOSTS (default 3),
# REGBOOT_CI_BUNDLE=1 (packages from the lab's cached bundle, not the mirror: `lab up --bundle`).
# Needs root (or the docker group) on a Debian/Ubuntu machine: scripts/install-deps.sh.
# The GitHub Actions workflow (.github/workflows/lab.yml), the GitLab CI file (.gitlab-ci.yml)
# and regboot's own test suite (tests/lab/ci.rs) all run this script.
set -euo pipefail

regboot=${1:-regboot}
name=${REGBOOT_CI_LAB:-ci-$$}
hosts=${REGBOOT_CI_HOSTS:-3}
work=$(mktemp -d)
lab="$work/lab"
inventory="$lab/inventory.yml"

down() {
  "$regboot" lab down --name "$name" --dir "$lab" >/dev/null || echo "ci-lab: lab down failed" >&2
  rm -rf "$work"
}
trap down EXIT

step() { echo "== ci-lab: $*"; }

step "lab up ($hosts hosts)"
bundle=()
[ "${REGBOOT_CI_BUNDLE:-}" = 1 ] && bundle=(--bundle)
"$regboot" lab up --name "$name" --dir "$lab" --hosts "$hosts" "${bundle[@]}"

step "plan (exit 2: changes pending)"
code=0
"$regboot" plan -i "$inventory" -q || code=$?
[ "$code" -eq 2 ] || { echo "ci-lab: plan on a fresh lab exited $code, expected 2" >&2; exit 1; }

step "apply"
"$regboot" apply -i "$inventory"

step "verify"
"$regboot" verify -i "$inventory"

step "plan (exit 0: nothing left to change)"
"$regboot" plan -i "$inventory" -q

step "done: the lab was set up, verified and is converged"
