#!/usr/bin/env bash
# The test command: starts (installing when missing) every service the tests use, then runs
# the whole workspace's tests. Usage: scripts/test.sh [extra cargo test args]
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/services.sh
# Build everything first so tests that spawn workspace binaries find them ready.
cargo build --workspace --all-targets
cargo test --workspace "$@"
