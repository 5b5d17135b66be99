#!/usr/bin/env bash
# The ebb Azure Queue demo: Functions-style queue workers scaled 0 -> N -> 0, no cluster and
# no Azure account needed.
#
#   examples/azure-queue/run.sh [--messages N] [--fail-every N] [--keep-running] [--release]
#
# 1. builds ebb, the Azure Queue scaler, the worker and the demo helper (cargo);
# 2. starts its own Azurite (the Azure Storage emulator, npm package `azurite` installed into
#    tests/services on first use) on a free port, and stops it on exit;
# 3. runs `ebb run -f examples/azure-queue/` and sends N messages (default 100) to the queue
#    `orders`; every 20th message always fails and ends in `orders-poison` after 3 tries;
# 4. exits once the workers are back to 0, with the number of messages processed and
#    poisoned and the peak number of workers; non-zero when a message was lost or repeated.
#
# EBB_DEMO_BIN_DIR=DIR uses prebuilt binaries from DIR instead of building; EBB_DEMO_DIR=DIR
# keeps the workers' record files (processed, poisoned) and the logs in DIR.
set -euo pipefail
cd "$(dirname "$0")/../.."

messages=100
fail_every=20
until_idle=--until-idle
profile=debug
while [ $# -gt 0 ]; do
  case "$1" in
    --messages|-n) messages="$2"; shift 2 ;;
    --fail-every) fail_every="$2"; shift 2 ;;
    --keep-running) until_idle=""; shift ;;
    --release) profile=release; shift ;;
    -h|--help) sed -n '2,16p' "$0"; exit 0 ;;
    *) echo "unknown option: $1 (try --help)" >&2; exit 2 ;;
  esac
done

DEMO_NAME=azure-queue
# shellcheck source=examples/demo-lib.sh
. examples/demo-lib.sh

if [ -n "${EBB_DEMO_BIN_DIR:-}" ]; then
  bin="$EBB_DEMO_BIN_DIR"
else
  say "building ebb, the Azure Queue scaler, the worker and the demo helper ($profile)"
  cargo_flags=(-p ebb -p ebb-azure-queue-scaler -p ebb-azure-queue-demo)
  if [ "$profile" = release ]; then cargo_flags+=(--release); fi
  cargo build --quiet "${cargo_flags[@]}"
  bin="${CARGO_TARGET_DIR:-$PWD/target}/$profile"
fi
export PATH="$bin:$PATH"

azurite=tests/services/node_modules/.bin/azurite-queue
if [ ! -x "$azurite" ]; then
  if ! command -v npm >/dev/null; then
    if ! command -v apt-get >/dev/null; then
      say "npm is needed to install Azurite; install Node.js 20 and npm, then run this again"
      exit 1
    fi
    say "installing nodejs and npm (Debian packages, apt-get)"
    as_root apt-get update -qq
    as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq nodejs npm >/dev/null
  fi
  say "installing Azurite (npm, pinned in tests/services/package.json)"
  (cd tests/services && npm install --no-audit --no-fund --loglevel=error >/dev/null)
fi

work_dir="${EBB_DEMO_DIR:-}"
keep_dir=1
if [ -z "$work_dir" ]; then work_dir="$(mktemp -d "${TMPDIR:-/tmp}/ebb-azure-queue.XXXXXX")"; keep_dir=""; fi
mkdir -p "$work_dir"
azurite_pid=""
background=()
cleanup() {
  for pid in "${background[@]}"; do kill "$pid" 2>/dev/null || true; done
  if [ -n "$azurite_pid" ]; then
    kill "$azurite_pid" 2>/dev/null || true
    wait "$azurite_pid" 2>/dev/null || true
    say "stopped Azurite"
  fi
  if [ -z "$keep_dir" ]; then rm -rf "$work_dir"; fi
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

port=""
for _ in 1 2 3; do
  port="$(free_port)"
  "$azurite" --queueHost 127.0.0.1 --queuePort "$port" --inMemoryPersistence --silent \
    --skipApiVersionCheck --loose --disableTelemetry >"$work_dir/azurite.log" 2>&1 &
  azurite_pid=$!
  if wait_for_port "$port" 300 && kill -0 "$azurite_pid" 2>/dev/null; then break; fi
  kill "$azurite_pid" 2>/dev/null || true
  wait "$azurite_pid" 2>/dev/null || true
  azurite_pid=""
done
if [ -z "$azurite_pid" ]; then say "Azurite did not start; see $work_dir/azurite.log"; exit 1; fi
say "Azurite (pid $azurite_pid) serving queues on 127.0.0.1:$port"

# The emulator's well-known development account, at this port.
export AzureWebJobsStorage="UseDevelopmentStorage=true;DevelopmentStorageProxyUri=http://127.0.0.1:$port"
export QUEUE=orders PROCESSED_FILE="$work_dir/processed" POISONED_FILE="$work_dir/poisoned"
export FAIL_EVERY="$fail_every" COUNT="$messages" ID_PREFIX=msg
: >"$PROCESSED_FILE"
: >"$POISONED_FILE"
ebb-azure-queue-demo send --count 0 >/dev/null

status_addr="127.0.0.1:$(free_port)"
say "starting: ebb run -f examples/azure-queue/ --status-addr $status_addr"
say "in a few seconds $messages messages go to the queue 'orders' (every ${fail_every}th always fails);"
say "watch the workers scale 0 -> N -> 0 (1 s per message, cooldown 10 s; Ctrl-C stops everything)"
(
  wait_for_port "${status_addr##*:}" 300 || exit 1
  sleep 2
  ebb-azure-queue-demo send --count "$messages" >/dev/null
) &
background+=($!)
publisher=$!
ebb-azure-queue-demo report --status-addr "$status_addr" >"$work_dir/report.txt" 2>&1 &
background+=($!)
reporter=$!

status=0
if [ -t 1 ]; then
  say "logs: $work_dir/ebb.log"
  # shellcheck disable=SC2086
  ebb run -f examples/azure-queue/ --status-addr "$status_addr" $until_idle 2>"$work_dir/ebb.log" || status=$?
else
  # shellcheck disable=SC2086
  ebb run -f examples/azure-queue/ --status-addr "$status_addr" $until_idle || status=$?
fi
wait "$publisher" || { say "sending the messages failed"; status=1; }
report_status=0
wait "$reporter" || report_status=$?
echo
cat "$work_dir/report.txt"
if [ "$status" = 0 ] && [ "$report_status" != 0 ]; then status=$report_status; fi
if [ "$status" = 0 ] && [ -n "$until_idle" ]; then
  say "done: the workers went 0 -> N -> 0"
fi
exit $status
