#!/usr/bin/env bash
# A real Kubernetes control plane on loopback for tests and demos: etcd, kube-apiserver,
# kube-controller-manager and kube-scheduler built from the official Go modules pinned in
# tests/cluster/go.mod, and ebb's kubelet stand-in for the nodes (tests/cluster/README.md).
#
#   scripts/cluster.sh up     build once (cached), start, wait until ready, print the export line
#   scripts/cluster.sh env    print the export line of the running cluster again
#   scripts/cluster.sh down   stop what `up` started, by pid, and remove its directory
#
# stdout carries exactly one line, `export KUBECONFIG=<dir>/kubeconfig`, so that
# `eval "$(scripts/cluster.sh up)"` works; progress and errors go to stderr.
#
# Environment:
#   EBB_CLUSTER_DIR    the cluster's directory (an isolated cluster per test run); default: a
#                      mktemp directory, recorded in ${TMPDIR:-/tmp}/ebb-cluster-<uid>/current
#   EBB_CLUSTER_NODES  stand-in nodes to register (default 2); EBB_CLUSTER_MAX_PODS per node (110)
#   EBB_CLUSTER_APISERVER_PORT  a fixed apiserver port (default: a free one)
#   EBB_CLUSTER_TIMEOUT         seconds to wait for readiness (default 90)
#   EBB_CLUSTER_CONTROLLERS     kube-controller-manager --controllers (default below)
#   EBB_CLUSTER_{ETCD,APISERVER,CONTROLLER_MANAGER,SCHEDULER,STANDIN}_ARGS  extra flags
#   XDG_CACHE_HOME     binaries are cached in ${XDG_CACHE_HOME:-$HOME/.cache}/ebb-cluster/
#
# The directory holds kubeconfig (admin, system:masters), audit.log (every request at Metadata
# level, one JSON line each), cluster.env (addresses), logs/, pki/ and etcd/.
set -euo pipefail

ROOT=$(cd "$(dirname "$0")/.." && pwd)
MODULE=$ROOT/tests/cluster
CACHE=${XDG_CACHE_HOME:-$HOME/.cache}/ebb-cluster
STATE=${TMPDIR:-/tmp}/ebb-cluster-$(id -u)
FAILED_LOGS=$STATE/failed-up-logs # where a failed `up` leaves its components' logs
MARKER=.ebb-cluster
COMPONENTS=(etcd kube-apiserver kube-controller-manager kube-scheduler ebb-kubelet-standin)
DEFAULT_CONTROLLERS=deployment-controller,replicaset-controller,job-controller,cronjob-controller,ttl-after-finished-controller,garbage-collector-controller,namespace-controller,serviceaccount-controller,serviceaccount-token-controller,root-ca-certificate-publisher-controller,clusterrole-aggregation-controller,node-lifecycle-controller,taint-eviction-controller,pod-garbage-collector-controller,disruption-controller,statefulset-controller,daemonset-controller,service-cidr-controller,validatingadmissionpolicy-status-controller

say() { printf '[cluster] %s\n' "$*" >&2; }
die() { printf 'cluster.sh: %s\n' "$*" >&2; exit 1; }

# --- where the running cluster lives -------------------------------------------------------

# The directory of the cluster that env/down act on, or nothing.
current_dir() {
  if [ -n "${EBB_CLUSTER_DIR:-}" ]; then
    printf '%s\n' "$EBB_CLUSTER_DIR"
  elif [ -f "$STATE/current" ]; then
    cat "$STATE/current"
  fi
}

# True if pid $1 runs binary $2 (so a recycled pid is never signalled); an exited process
# that init has not reaped yet (a zombie) has no exe link and no longer counts.
ours() {
  local exe
  exe=$(readlink "/proc/$1/exe" 2>/dev/null) || return 1
  [ "${exe% (deleted)}" = "$2" ]
}

# True while pid $1 is still in the process table as a zombie named like binary $2.
unreaped() {
  [ "$(cut -d' ' -f3 "/proc/$1/stat" 2>/dev/null)" = Z ] \
    && [ "$(cat "/proc/$1/comm" 2>/dev/null)" = "$(basename "$2" | cut -c1-15)" ]
}

# Pids of the components recorded in $1 that still run, as "pid" lines.
live_pids() {
  local dir=$1 name pid exe
  for name in "${COMPONENTS[@]}"; do
    [ -f "$dir/pids/$name" ] || continue
    read -r pid exe <"$dir/pids/$name" || continue
    if ours "$pid" "$exe"; then printf '%s\n' "$pid"; fi
  done
}

# stop_components DIR [GRACE] [quiet]: stops every component recorded in DIR, one at a time in
# reverse start order (so etcd goes last and the apiserver can shut down cleanly): TERM, then
# KILL after GRACE seconds (default 15).
stop_components() {
  local dir=$1 grace=${2:-15} quiet=${3:-} i name pid exe deadline
  for ((i = ${#COMPONENTS[@]} - 1; i >= 0; i--)); do
    name=${COMPONENTS[i]}
    [ -f "$dir/pids/$name" ] || continue
    read -r pid exe <"$dir/pids/$name" || continue
    ours "$pid" "$exe" || continue
    kill -TERM "$pid" 2>/dev/null || true
    deadline=$((SECONDS + grace))
    while ours "$pid" "$exe" && [ "$SECONDS" -lt "$deadline" ]; do sleep 0.1; done
    ours "$pid" "$exe" || continue
    [ -n "$quiet" ] || say "$name (pid $pid) did not stop within $grace s of TERM; killing it"
    kill -KILL "$pid" 2>/dev/null || true
    deadline=$((SECONDS + 5))
    while ours "$pid" "$exe" && [ "$SECONDS" -lt "$deadline" ]; do sleep 0.1; done
  done
  # Exited processes leave the process table when init reaps them (within ~2 s here); wait
  # for that so that nothing of ours shows in `ps` once `down` returns.
  deadline=$((SECONDS + 5))
  for name in "${COMPONENTS[@]}"; do
    [ -f "$dir/pids/$name" ] || continue
    read -r pid exe <"$dir/pids/$name" || continue
    while unreaped "$pid" "$exe" && [ "$SECONDS" -lt "$deadline" ]; do sleep 0.1; done
  done
}

# Removes a cluster directory, but only one that `up` made (it carries the marker).
remove_dir() {
  local dir=$1
  [ -f "$dir/$MARKER" ] || return 0
  rm -rf "$dir"
  if [ -f "$STATE/current" ] && [ "$(cat "$STATE/current")" = "$dir" ]; then rm -f "$STATE/current"; fi
}

# --- build ---------------------------------------------------------------------------------

# Prints the bin directory holding all five binaries, building what is missing.
build() {
  local sum_key standin_key bin standin_dir log version ldflags tmp
  sum_key=$(cat "$MODULE/go.mod" "$MODULE/go.sum" | sha256sum | cut -c1-16)
  standin_key=$(cd "$MODULE" && { find cmd -name '*.go' ! -name '*_test.go' | LC_ALL=C sort | xargs cat; cat go.mod go.sum; } | sha256sum | cut -c1-16)
  bin=$CACHE/$sum_key/bin
  standin_dir=$CACHE/$sum_key/standin-$standin_key
  if [ -x "$bin/kube-apiserver" ] && [ -x "$standin_dir/ebb-kubelet-standin" ]; then
    printf '%s %s\n' "$bin" "$standin_dir"
    return
  fi
  command -v go >/dev/null \
    || die "Go toolchain not found: install Go 1.26 or later (https://go.dev/dl/), put 'go' on PATH and run scripts/cluster.sh up again"
  mkdir -p "$CACHE/$sum_key"
  exec 9>"$CACHE/$sum_key/build.lock"
  flock 9 # another `up` may be building the same version
  log=$CACHE/$sum_key/build.log
  version=$(grep -oE 'k8s\.io/kubernetes v[0-9]+\.[0-9]+\.[0-9]+' "$MODULE/go.mod" | head -1 | cut -d' ' -f2)
  [ -n "$version" ] || die "tests/cluster/go.mod requires no k8s.io/kubernetes release: restore its require line"
  ldflags=""
  for pkg in k8s.io/component-base/version k8s.io/client-go/pkg/version; do
    ldflags+=" -X $pkg.gitVersion=$version -X $pkg.gitMajor=$(echo "${version#v}" | cut -d. -f1)"
    ldflags+=" -X $pkg.gitMinor=$(echo "$version" | cut -d. -f2) -X $pkg.gitTreeState=clean"
  done
  if [ ! -x "$bin/kube-apiserver" ]; then
    say "building the control plane $version once into $bin (a cold build takes many minutes; log: $log)"
    (cd "$MODULE" && GOWORK=off go mod download) >"$log" 2>&1 \
      || die "cannot download the Go modules of tests/cluster (log: $log): check that the Go module proxy ($(go env GOPROXY)) is reachable, then run scripts/cluster.sh up again"
    tmp=$(mktemp -d "$CACHE/$sum_key/bin.XXXXXX")
    (cd "$MODULE" && GOWORK=off go build -buildvcs=false -ldflags "$ldflags" -o "$tmp/" tool) >>"$log" 2>&1 \
      || { rm -rf "$tmp"; die "building the control plane failed (log: $log): fix the error shown there, then run scripts/cluster.sh up again"; }
    # etcd's main package is go.etcd.io/etcd/server/v3, so Go names its binary "server".
    mv "$tmp/server" "$tmp/etcd"
    rm -rf "$bin" && mv "$tmp" "$bin"
  fi
  if [ ! -x "$standin_dir/ebb-kubelet-standin" ]; then
    say "building ebb-kubelet-standin (log: $log)"
    tmp=$(mktemp -d "$CACHE/$sum_key/standin.XXXXXX")
    (cd "$MODULE" && GOWORK=off go build -buildvcs=false -ldflags "$ldflags" -o "$tmp/" ./cmd/ebb-kubelet-standin) >>"$log" 2>&1 \
      || { rm -rf "$tmp"; die "building ebb-kubelet-standin failed (log: $log): fix the error shown there, then run scripts/cluster.sh up again"; }
    rm -rf "$CACHE/$sum_key"/standin-* && mv "$tmp" "$standin_dir"
  fi
  exec 9>&-
  printf '%s %s\n' "$bin" "$standin_dir"
}

# --- ports ---------------------------------------------------------------------------------

port_in_use() {
  if command -v ss >/dev/null; then
    [ -n "$(ss -Htln "sport = :$1" 2>/dev/null)" ]
  else
    (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null
  fi
}

PICKED=" "
# pick_port VAR: a free port below the kernel's ephemeral range (so outgoing connections do
# not take it), different from the ones picked before.
pick_port() {
  local port
  for _ in $(seq 1 100); do
    port=$((20000 + RANDOM % 12000))
    if [[ $PICKED != *" $port "* ]] && ! port_in_use "$port"; then
      PICKED+="$port "
      printf -v "$1" '%s' "$port"
      return
    fi
  done
  die "no free port found on 127.0.0.1 in 20000-31999: stop some listeners and run scripts/cluster.sh up again"
}

# --- certificates and kubeconfigs ----------------------------------------------------------

new_key() { openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 -out "$1" 2>/dev/null; }

# issue NAME SUBJECT EXTENSIONS: a key and a certificate signed by the cluster's CA.
issue() {
  local pki=$DIR/pki
  new_key "$pki/$1.key"
  openssl req -new -key "$pki/$1.key" -subj "$2" -out "$pki/$1.csr" 2>/dev/null
  printf '%b\n' "$3" >"$pki/$1.ext"
  openssl x509 -req -in "$pki/$1.csr" -CA "$pki/ca.crt" -CAkey "$pki/ca.key" \
    -set_serial "0x$(openssl rand -hex 12)" -days 365 -sha256 -extfile "$pki/$1.ext" \
    -out "$pki/$1.crt" 2>/dev/null
  rm -f "$pki/$1.csr" "$pki/$1.ext"
}

make_pki() {
  local pki=$DIR/pki client="basicConstraints=CA:FALSE\nkeyUsage=critical,digitalSignature\nextendedKeyUsage=clientAuth"
  mkdir -p "$pki"
  new_key "$pki/ca.key"
  openssl req -x509 -new -key "$pki/ca.key" -subj "/CN=ebb-cluster-ca" -days 3650 -sha256 \
    -addext basicConstraints=critical,CA:TRUE -addext keyUsage=critical,keyCertSign,cRLSign,digitalSignature \
    -out "$pki/ca.crt" 2>/dev/null
  issue apiserver "/CN=kube-apiserver" "basicConstraints=CA:FALSE\nkeyUsage=critical,digitalSignature\nextendedKeyUsage=serverAuth\nsubjectAltName=IP:127.0.0.1,IP:10.96.0.1,DNS:localhost,DNS:kubernetes,DNS:kubernetes.default,DNS:kubernetes.default.svc,DNS:kubernetes.default.svc.cluster.local"
  issue admin "/O=system:masters/CN=ebb-admin" "$client"
  issue controller-manager "/CN=system:kube-controller-manager" "$client"
  issue scheduler "/CN=system:kube-scheduler" "$client"
  issue standin "/CN=ebb:kubelet-standin" "$client"
  new_key "$pki/service-account.key"
  openssl pkey -in "$pki/service-account.key" -pubout -out "$pki/service-account.pub" 2>/dev/null
}

# kubeconfig FILE CERT-NAME: a kubeconfig for the apiserver with that client certificate.
kubeconfig() {
  local b64='base64 -w0' pki=$DIR/pki
  cat >"$1" <<EOF
apiVersion: v1
kind: Config
clusters:
- name: ebb
  cluster:
    server: https://127.0.0.1:$APISERVER_PORT
    certificate-authority-data: $($b64 "$pki/ca.crt")
users:
- name: $2
  user:
    client-certificate-data: $($b64 "$pki/$2.crt")
    client-key-data: $($b64 "$pki/$2.key")
contexts:
- name: ebb
  context:
    cluster: ebb
    user: $2
current-context: ebb
EOF
  chmod 600 "$1"
}

# --- processes -----------------------------------------------------------------------------

# start NAME BINARY ARGS...: runs it in its own session, output to logs/NAME.log, pid recorded.
start() {
  local name=$1 exe=$2
  shift 2
  setsid "$exe" "$@" </dev/null >"$DIR/logs/$name.log" 2>&1 &
  printf '%s %s\n' "$!" "$exe" >"$DIR/pids/$name"
  disown # `down`, possibly from another shell, stops it by pid; bash need not report its end
}

# Fails `up` if a started component has exited, naming the reason when it is a taken port.
check_alive() {
  local name pid exe
  for name in "${COMPONENTS[@]}"; do
    [ -f "$DIR/pids/$name" ] || continue
    read -r pid exe <"$DIR/pids/$name"
    kill -0 "$pid" 2>/dev/null && continue
    if grep -q 'address already in use' "$DIR/logs/$name.log" 2>/dev/null; then
      die "$name could not listen: a port it was given is already in use (log: $FAILED_LOGS/$name.log); run scripts/cluster.sh up again to pick other ports"
    fi
    die "$name exited during start: see the last lines of $FAILED_LOGS/$name.log"
  done
}

# api METHOD PATH [BODY]: a request as the admin; prints the body, returns curl's status.
api() {
  local pki=$DIR/pki
  curl -sS --max-time 5 -A ebb-cluster.sh --cacert "$pki/ca.crt" --cert "$pki/admin.crt" --key "$pki/admin.key" \
    -X "$1" -H 'Content-Type: application/json' ${3:+--data "$3"} \
    "https://127.0.0.1:$APISERVER_PORT$2" 2>/dev/null
}

# wait_until DESCRIPTION COMMAND...: polls until the command succeeds or the deadline passes.
wait_until() {
  local what=$1
  shift
  until "$@"; do
    check_alive
    [ "$SECONDS" -lt "$DEADLINE" ] \
      || die "timed out after ${EBB_CLUSTER_TIMEOUT:-90} s waiting for $what (logs: $FAILED_LOGS/): raise EBB_CLUSTER_TIMEOUT or see the logs"
    sleep 0.2
  done
}

apiserver_ready() { [ "$(api GET /readyz)" = ok ]; }
healthz_ok() { [ "$(curl -sk --max-time 2 "https://127.0.0.1:$1/healthz" 2>/dev/null)" = ok ]; }
nodes_ready() {
  local ready
  ready=$(api GET "/api/v1/nodes?labelSelector=ebb.dev%2Fkubelet-standin") || return 1
  ready=$(grep -o '"type":"Ready","status":"True"' <<<"$ready" | wc -l)
  [ "$ready" -ge "$NODES" ]
}
default_service_account() {
  local answer
  answer=$(api GET /api/v1/namespaces/default/serviceaccounts/default) || return 1
  [[ $answer == *'"kind":"ServiceAccount"'* ]]
}
bind_standin() {
  # The stand-in acts as the kubelets: it gets the kubelet's built-in ClusterRole, system:node.
  local answer
  answer=$(api POST /apis/rbac.authorization.k8s.io/v1/clusterrolebindings \
    '{"apiVersion":"rbac.authorization.k8s.io/v1","kind":"ClusterRoleBinding","metadata":{"name":"ebb:kubelet-standin"},"roleRef":{"apiGroup":"rbac.authorization.k8s.io","kind":"ClusterRole","name":"system:node"},"subjects":[{"apiGroup":"rbac.authorization.k8s.io","kind":"User","name":"ebb:kubelet-standin"}]}') || return 1
  [[ $answer == *'"kind":"ClusterRoleBinding"'* || $answer == *'"reason":"AlreadyExists"'* ]]
}

# --- commands ------------------------------------------------------------------------------

running_dir() {
  local dir
  dir=$(current_dir)
  [ -n "$dir" ] && [ -f "$dir/$MARKER" ] && [ -n "$(live_pids "$dir")" ] && printf '%s\n' "$dir"
}

cmd_env() {
  local dir
  dir=$(running_dir) || die "no cluster is up${EBB_CLUSTER_DIR:+ in $EBB_CLUSTER_DIR}: run scripts/cluster.sh up"
  printf 'export KUBECONFIG=%s/kubeconfig\n' "$dir"
}

cmd_down() {
  local dir
  dir=$(current_dir)
  if [ -z "$dir" ] || [ ! -f "$dir/$MARKER" ]; then
    say "no cluster to stop${EBB_CLUSTER_DIR:+ in $EBB_CLUSTER_DIR}"
    rm -f "$STATE/current"
    return
  fi
  stop_components "$dir"
  [ -z "$(live_pids "$dir")" ] || die "some components of $dir still run after KILL: $(live_pids "$dir" | tr '\n' ' ')"
  remove_dir "$dir"
  say "stopped and removed $dir"
}

UP_OK=""
DIR=""
cleanup_failed_up() {
  [ -z "$UP_OK" ] && [ -n "$DIR" ] && [ -f "$DIR/$MARKER" ] || return 0
  # A half-started apiserver may wait on etcd rather than stop; nothing here is worth waiting for.
  stop_components "$DIR" 3 quiet
  # Keep the components' logs where the error line says they are.
  rm -rf "$FAILED_LOGS" && mkdir -p "$FAILED_LOGS"
  cp "$DIR"/logs/*.log "$FAILED_LOGS/" 2>/dev/null || true
  remove_dir "$DIR"
}

cmd_up() {
  local existing bins bin standin_dir etcd_port peer_port cm_port sched_port controllers started_at
  if existing=$(running_dir); then
    say "already up in $existing"
    printf 'export KUBECONFIG=%s/kubeconfig\n' "$existing"
    return
  fi
  existing=$(current_dir)
  if [ -n "$existing" ] && [ -f "$existing/$MARKER" ]; then
    say "removing the remains of a stopped cluster in $existing"
    stop_components "$existing"
    remove_dir "$existing"
  fi
  for tool in openssl curl setsid flock sha256sum base64; do
    command -v "$tool" >/dev/null || die "$tool not found: install it (Debian: apt-get install -y openssl curl util-linux coreutils) and run scripts/cluster.sh up again"
  done
  bins=$(build)
  bin=${bins% *}
  standin_dir=${bins#* }

  started_at=$SECONDS
  DEADLINE=$((SECONDS + ${EBB_CLUSTER_TIMEOUT:-90}))
  NODES=${EBB_CLUSTER_NODES:-2}
  if [ -n "${EBB_CLUSTER_APISERVER_PORT:-}" ]; then
    port_in_use "$EBB_CLUSTER_APISERVER_PORT" \
      && die "port $EBB_CLUSTER_APISERVER_PORT (EBB_CLUSTER_APISERVER_PORT, for kube-apiserver) is already in use on 127.0.0.1: choose another port or unset EBB_CLUSTER_APISERVER_PORT"
    APISERVER_PORT=$EBB_CLUSTER_APISERVER_PORT
    PICKED+="$APISERVER_PORT "
  else
    pick_port APISERVER_PORT
  fi
  pick_port etcd_port
  pick_port peer_port
  pick_port cm_port
  pick_port sched_port

  if [ -n "${EBB_CLUSTER_DIR:-}" ]; then
    DIR=$EBB_CLUSTER_DIR
    mkdir -p "$DIR"
    [ -z "$(ls -A "$DIR")" ] || die "EBB_CLUSTER_DIR=$DIR is not empty and holds no cluster: give an empty or new directory"
  else
    DIR=$(mktemp -d "${TMPDIR:-/tmp}/ebb-cluster.XXXXXX")
  fi
  DIR=$(cd "$DIR" && pwd)
  touch "$DIR/$MARKER"
  trap cleanup_failed_up EXIT
  trap 'exit 130' INT TERM
  if [ -z "${EBB_CLUSTER_DIR:-}" ]; then
    mkdir -p "$STATE"
    printf '%s\n' "$DIR" >"$STATE/current"
  fi
  mkdir -p "$DIR/logs" "$DIR/pids" "$DIR/etcd"
  make_pki
  kubeconfig "$DIR/kubeconfig" admin
  kubeconfig "$DIR/controller-manager.kubeconfig" controller-manager
  kubeconfig "$DIR/scheduler.kubeconfig" scheduler
  kubeconfig "$DIR/standin.kubeconfig" standin
  cat >"$DIR/audit-policy.yaml" <<'EOF'
# Every request once, when its response starts or completes, with who made it (no bodies).
apiVersion: audit.k8s.io/v1
kind: Policy
omitStages: [RequestReceived]
rules:
- level: Metadata
EOF
  cat >"$DIR/cluster.env" <<EOF
APISERVER=https://127.0.0.1:$APISERVER_PORT
ETCD=http://127.0.0.1:$etcd_port
CONTROLLER_MANAGER=https://127.0.0.1:$cm_port
SCHEDULER=https://127.0.0.1:$sched_port
AUDIT_LOG=$DIR/audit.log
BIN=$bin
EOF

  local pki=$DIR/pki
  # shellcheck disable=SC2086 # the *_ARGS variables are lists of flags
  start etcd "$bin/etcd" --name ebb --data-dir "$DIR/etcd" --log-level warn \
    --listen-client-urls "http://127.0.0.1:$etcd_port" --advertise-client-urls "http://127.0.0.1:$etcd_port" \
    --listen-peer-urls "http://127.0.0.1:$peer_port" --initial-advertise-peer-urls "http://127.0.0.1:$peer_port" \
    --initial-cluster "ebb=http://127.0.0.1:$peer_port" ${EBB_CLUSTER_ETCD_ARGS:-}
  # shellcheck disable=SC2086
  start kube-apiserver "$bin/kube-apiserver" \
    --etcd-servers "http://127.0.0.1:$etcd_port" \
    --bind-address 127.0.0.1 --advertise-address 127.0.0.1 --secure-port "$APISERVER_PORT" \
    --tls-cert-file "$pki/apiserver.crt" --tls-private-key-file "$pki/apiserver.key" \
    --client-ca-file "$pki/ca.crt" --authorization-mode RBAC \
    --service-account-issuer https://kubernetes.default.svc.cluster.local \
    --service-account-key-file "$pki/service-account.pub" \
    --service-account-signing-key-file "$pki/service-account.key" \
    --service-cluster-ip-range 10.96.0.0/16 --endpoint-reconciler-type none \
    --audit-policy-file "$DIR/audit-policy.yaml" --audit-log-path "$DIR/audit.log" \
    ${EBB_CLUSTER_APISERVER_ARGS:-}
  controllers=${EBB_CLUSTER_CONTROLLERS:-$DEFAULT_CONTROLLERS}
  # shellcheck disable=SC2086
  start kube-controller-manager "$bin/kube-controller-manager" \
    --kubeconfig "$DIR/controller-manager.kubeconfig" --leader-elect=false \
    --bind-address 127.0.0.1 --secure-port "$cm_port" --controllers "$controllers" \
    --use-service-account-credentials --service-account-private-key-file "$pki/service-account.key" \
    --root-ca-file "$pki/ca.crt" ${EBB_CLUSTER_CONTROLLER_MANAGER_ARGS:-}
  # shellcheck disable=SC2086
  start kube-scheduler "$bin/kube-scheduler" \
    --kubeconfig "$DIR/scheduler.kubeconfig" --leader-elect=false \
    --bind-address 127.0.0.1 --secure-port "$sched_port" ${EBB_CLUSTER_SCHEDULER_ARGS:-}

  wait_until "kube-apiserver /readyz" apiserver_ready
  wait_until "the stand-in's ClusterRoleBinding" bind_standin
  # shellcheck disable=SC2086
  start ebb-kubelet-standin "$standin_dir/ebb-kubelet-standin" \
    --kubeconfig "$DIR/standin.kubeconfig" --nodes "$NODES" --max-pods "${EBB_CLUSTER_MAX_PODS:-110}" \
    ${EBB_CLUSTER_STANDIN_ARGS:-}
  wait_until "kube-controller-manager /healthz" healthz_ok "$cm_port"
  wait_until "kube-scheduler /healthz" healthz_ok "$sched_port"
  wait_until "$NODES Ready nodes" nodes_ready
  wait_until "the default ServiceAccount" default_service_account

  UP_OK=1
  say "ready in $((SECONDS - started_at)) s: $DIR (apiserver https://127.0.0.1:$APISERVER_PORT)"
  printf 'export KUBECONFIG=%s/kubeconfig\n' "$DIR"
}

case "${1:-}" in
  up) cmd_up ;;
  down) cmd_down ;;
  env) cmd_env ;;
  *) die "usage: scripts/cluster.sh up | down | env" ;;
esac
