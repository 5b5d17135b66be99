#!/usr/bin/env bash
# The test command: starts (installing when missing) every service the tests use, then runs
# the whole workspace's tests. Usage: scripts/test.sh [extra cargo test args]
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/services.sh
# Build the binaries first (the same command tests use to find them) so tests that spawn
# workspace binaries find them ready.
cargo build --workspace --bins
cargo test --workspace "$@"
