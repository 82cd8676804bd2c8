#!/usr/bin/env bash
# The test suite: installs what the tests need on a fresh Debian machine, then runs formatting,
# lints and every test (unit, real sshd on loopback, the containerized lab).
set -euo pipefail
cd "$(dirname "$0")/.."

scripts/install-deps.sh

cargo fmt --all -- --check
cargo clippy --all-targets -- -D warnings
cargo test --all-targets -- --test-threads="${REGBOOT_TEST_THREADS:-4}"
