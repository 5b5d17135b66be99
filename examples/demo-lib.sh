# Shell helpers shared by the demo scripts (examples/*/run.sh). Source it after setting
# DEMO_NAME; it defines functions only.

# Prints a bold "[DEMO_NAME]" line on stderr.
say() { printf '\033[1m[%s]\033[0m %s\n' "${DEMO_NAME:-demo}" "$*" >&2; }

# True when something accepts TCP connections on 127.0.0.1:$1.
port_open() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }

# Runs a command as root (sudo when not root already).
as_root() { if [ "$(id -u)" = 0 ]; then "$@"; else sudo "$@"; fi; }

# Prints a loopback port nothing listens on right now.
free_port() {
  local port
  for _ in $(seq 1 100); do
    port=$((20000 + RANDOM % 12000))  # below the ephemeral range (32768+)
    if ! port_open "$port"; then echo "$port"; return 0; fi
  done
  say "no free port found"; return 1
}

# Waits until 127.0.0.1:$1 accepts connections, at most $2 tenths of a second (default 300).
wait_for_port() {
  for _ in $(seq 1 "${2:-300}"); do
    if port_open "$1"; then return 0; fi
    sleep 0.1
  done
  return 1
}
