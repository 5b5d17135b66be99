#!/usr/bin/env bash
# Runs every fuzz target (cargo-fuzz, libFuzzer) for a bounded time, starting from its
# committed corpus in fuzz/corpus/<target>. Usage: scripts/fuzz.sh [seconds per target]
# Installs cargo-fuzz when missing. It runs on the machine's stable toolchain: a fresh machine
# cannot fetch another one, and with --sanitizer none cargo-fuzz needs only the unstable flag
# switch RUSTC_BOOTSTRAP=1 gives. A crash fails the run and leaves the input in
# fuzz/artifacts/<target>/.
set -euo pipefail
cd "$(dirname "$0")/.."
seconds="${1:-20}"
say() { printf '[fuzz] %s\n' "$*"; }

export RUSTC_BOOTSTRAP=1
if ! command -v cargo-fuzz >/dev/null; then
  say "installing cargo-fuzz"
  cargo install cargo-fuzz --locked
fi

# Beside the main build, so `target/` holds everything and .gitignore already covers it.
export CARGO_TARGET_DIR="$PWD/target/fuzz"
cd fuzz
# --dev: a debug build (overflow checks on) compiles in a fraction of the release time, and
# the code under test forbids `unsafe`, so AddressSanitizer would find nothing to add.
flags=(--dev --sanitizer none)
cargo fuzz build "${flags[@]}"
for target in $(cargo fuzz list); do
  mkdir -p "corpus/$target"
  # New inputs go to a scratch folder: the committed corpus changes only by review.
  scratch="$(mktemp -d)"
  say "$target for ${seconds}s"
  log="$scratch.log"
  status=0
  cargo fuzz run "${flags[@]}" "$target" "$scratch" "corpus/$target" -- \
    -max_total_time="$seconds" -rss_limit_mb=2048 -print_final_stats=1 >"$log" 2>&1 || status=$?
  grep -E 'stat::number_of_executed_units|panicked|ERROR|SUMMARY' "$log" || true
  if [ "$status" -ne 0 ]; then
    tail -n 40 "$log"
    say "$target failed; the input is in fuzz/artifacts/$target"
    exit 1
  fi
  rm -rf "$scratch" "$log"
done
