#!/usr/bin/env bash
# The test suite: installs what the tests need on a fresh Debian machine, then runs formatting,
# lints and every test (unit, real sshd on loopback, the containerized lab).
set -euo pipefail
cd "$(dirname "$0")/.."

scripts/install-deps.sh

cargo fmt --all -- --check
cargo clippy --all-targets -- -D warnings
# cargo-nextest (on this machine kind) runs test binaries side by side, the lab tests a few at
# a time (.config/nextest.toml); plain cargo test runs the binaries one after another. The lab
# tests install packages from the lab's cached bundle, which the first of them builds once per
# machine while the others wait on its lock (about half a minute; docs/testing.md).
if cargo nextest --version >/dev/null 2>&1; then
  cargo nextest run --all-targets --test-threads="${REGBOOT_TEST_THREADS:-6}"
else
  cargo test --all-targets -- --test-threads="${REGBOOT_TEST_THREADS:-4}"
fi
# Last, so a breach never hides a test result: no import circle in src/, no source file over
# 600 lines of code before its tests (docs/testing.md).
scripts/check-structure.sh
