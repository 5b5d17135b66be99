#!/usr/bin/env bash
# The ebb quickstart: event-driven scaling of local worker processes, no cluster needed.
#
#   examples/quickstart/run.sh [--messages N] [--keep-running] [--release]
#
# 1. builds ebb, the RabbitMQ scaler and the demo worker and publisher (cargo);
# 2. uses the RabbitMQ already running on 127.0.0.1:5672, or installs and starts one
#    (Debian/Ubuntu, apt-get; says so first);
# 3. runs `ebb run -f examples/quickstart/`, publishes N messages (default 100) to the queue
#    `orders` a few seconds later, and shows the workers going 0 -> N -> 0;
# 4. exits by itself once the workers are back to 0 (unless --keep-running; Ctrl-C stops
#    everything gracefully at any time).
set -euo pipefail
cd "$(dirname "$0")/../.."

messages=100
until_idle=--until-idle
profile=debug
while [ $# -gt 0 ]; do
  case "$1" in
    --messages|-n) messages="$2"; shift 2 ;;
    --keep-running) until_idle=""; shift ;;
    --release) profile=release; shift ;;
    -h|--help) sed -n '2,13p' "$0"; exit 0 ;;
    *) echo "unknown option: $1 (try --help)" >&2; exit 2 ;;
  esac
done

DEMO_NAME=quickstart
# shellcheck source=examples/demo-lib.sh
. examples/demo-lib.sh

ensure_rabbitmq() {
  if port_open 5672; then
    say "using the RabbitMQ already running on 127.0.0.1:5672"
    return
  fi
  if ! command -v apt-get >/dev/null; then
    say "RabbitMQ is not running on 127.0.0.1:5672 and this is not Debian/Ubuntu:"
    say "start one (e.g. docker run -p 5672:5672 rabbitmq:3) and run this script again"
    exit 1
  fi
  if ! command -v rabbitmq-server >/dev/null; then
    say "RabbitMQ is not running: installing the Debian package rabbitmq-server (apt-get, ~20 s)"
    as_root apt-get update -qq
    as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq rabbitmq-server >/dev/null
  fi
  say "starting RabbitMQ (rabbitmq-server -detached; it keeps running after this demo)"
  as_root rabbitmq-server -detached
  sleep 2
  as_root rabbitmqctl wait --timeout 90 "/var/lib/rabbitmq/mnesia/rabbit@$(hostname).pid" >/dev/null \
    || as_root rabbitmqctl await_startup --timeout 90 >/dev/null
  for _ in $(seq 1 60); do port_open 5672 && break; sleep 0.5; done
  port_open 5672 || { say "RabbitMQ did not come up"; exit 1; }
  say "RabbitMQ ready on 127.0.0.1:5672"
}

say "building ebb, the RabbitMQ scaler, the worker and the publisher ($profile)"
cargo_flags=(-p ebb -p ebb-rabbitmq-scaler -p ebb-quickstart-worker -p ebb-quickstart-publisher)
if [ "$profile" = release ]; then cargo_flags+=(--release); fi
cargo build --quiet "${cargo_flags[@]}"
bin="${CARGO_TARGET_DIR:-$PWD/target}/$profile"
export PATH="$bin:$PATH"

ensure_rabbitmq
ebb-quickstart-publisher --queue orders --count 0 >/dev/null

status_addr="127.0.0.1:${EBB_QUICKSTART_STATUS_PORT:-9464}"
say "starting: ebb run -f examples/quickstart/ --status-addr $status_addr"
say "dashboard (live charts of the queue and the workers): http://$status_addr/"
say "in a few seconds $messages messages go to the queue 'orders'; watch the workers scale 0 -> N -> 0"
say "(each worker takes 1 s per message; cooldown 30 s; Ctrl-C stops everything gracefully)"
(
  # Publish once ebb is ready, plus a moment so the table shows the idle start.
  wait_for_port "${status_addr##*:}" 200 || true
  sleep 3
  ebb-quickstart-publisher --queue orders --count "$messages" >/dev/null
) &
publisher=$!
# until_idle is empty or one flag, hence unquoted below.
status=0
if [ -t 1 ]; then
  # The table redraws the screen: keep ebb's and the workers' logs out of it.
  log="${TMPDIR:-/tmp}/ebb-quickstart.log"
  say "logs: $log"
  # shellcheck disable=SC2086
  ebb run -f examples/quickstart/ --status-addr "$status_addr" $until_idle 2>"$log" || status=$?
else
  # shellcheck disable=SC2086
  ebb run -f examples/quickstart/ --status-addr "$status_addr" $until_idle || status=$?
fi
wait "$publisher" 2>/dev/null || true
if [ -n "$until_idle" ]; then
  say "done: the workers went 0 -> N -> 0. Status JSON was on http://$status_addr/status"
  say "(run with --keep-running to keep the dashboard on http://$status_addr/ open)"
fi
exit $status
