#!/usr/bin/env bash
# Smoke test of the local control plane (scripts/cluster.sh): starts an isolated cluster, checks
# that the real controllers, scheduler, TokenRequest, RBAC and garbage collector work with the
# kubelet stand-in, then stops it and checks that no process is left. Needs kubectl.
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/../.." && pwd)
export EBB_CLUSTER_DIR
EBB_CLUSTER_DIR=$(mktemp -d "${TMPDIR:-/tmp}/ebb-cluster-smoke.XXXXXX") # `down` removes it

fail() { printf 'smoke: FAIL: %s\n' "$*" >&2; exit 1; }
pass() { printf 'smoke: ok: %s\n' "$*" >&2; }
cleanup() { "$ROOT/scripts/cluster.sh" down >/dev/null 2>&1 || true; }
trap cleanup EXIT

# until_true SECONDS DESCRIPTION COMMAND...: polls with a deadline.
until_true() {
  local limit=$1 deadline=$((SECONDS + $1)) what=$2
  shift 2
  until "$@" >/dev/null 2>&1; do
    [ "$SECONDS" -lt "$deadline" ] || fail "$what (not within $limit s)"
    sleep 0.25
  done
  pass "$what"
}
field() { kubectl get "$@" 2>/dev/null; }
equals() {
  local want=$1
  shift
  [ "$(field "$@")" = "$want" ]
}

eval "$("$ROOT/scripts/cluster.sh" up)"
[ "$(kubectl get --raw /readyz)" = ok ] || fail "/readyz does not answer ok"
pass "/readyz answers ok"

kubectl create deployment web --image=registry.invalid/web:1 --replicas=2 >/dev/null
until_true 30 "a Deployment of 2 gets a ReplicaSet with 2 Ready replicas" \
  equals 2 replicasets -l app=web -o 'jsonpath={.items[0].status.readyReplicas}'
until_true 30 "its 2 Pods are Running" \
  equals "Running Running" pods -l app=web -o 'jsonpath={.items[*].status.phase}'

kubectl apply -f - >/dev/null <<'EOF'
apiVersion: batch/v1
kind: Job
metadata: {name: once}
spec:
  backoffLimit: 0
  template:
    metadata:
      annotations: {ebb.dev/test-pod-outcome: Succeeded, ebb.dev/test-pod-run-seconds: "1"}
    spec:
      restartPolicy: Never
      containers: [{name: work, image: registry.invalid/work:1}]
EOF
until_true 30 "a Job's Pod Succeeded" equals Succeeded pods -l job-name=once -o 'jsonpath={.items[0].status.phase}'
until_true 30 "the Job is Complete" \
  equals True job once -o 'jsonpath={.status.conditions[?(@.type=="Complete")].status}'

kubectl create namespace smoke >/dev/null
kubectl -n smoke create serviceaccount reader >/dev/null
until_true 30 "the ServiceAccount exists" kubectl -n smoke get serviceaccount reader
token=$(kubectl -n smoke create token reader --duration=10m)
as_reader() { kubectl --kubeconfig=/dev/null --server="$(kubectl config view -o 'jsonpath={.clusters[0].cluster.server}')" \
  --certificate-authority="$EBB_CLUSTER_DIR/pki/ca.crt" --token="$token" "$@"; }
[ "$(as_reader auth can-i list pods -n smoke || true)" = no ] || fail "a fresh ServiceAccount may list pods"
kubectl -n smoke create role pod-reader --verb=get,list --resource=pods >/dev/null
kubectl -n smoke create rolebinding reader --role=pod-reader --serviceaccount=smoke:reader >/dev/null
[ "$(as_reader auth can-i list pods -n smoke)" = yes ] || fail "the RoleBinding does not let the token list pods"
[ "$(as_reader auth can-i delete pods -n smoke || true)" = no ] || fail "the token may delete pods, which its Role does not grant"
[ "$(as_reader auth can-i list pods -n default || true)" = no ] || fail "the token may list pods outside its namespace"
pass "a TokenRequest token is authorized by RBAC, and only as bound"

job_pod=$(field pods -l job-name=once -o 'jsonpath={.items[0].metadata.name}')
kubectl delete job once --cascade=background >/dev/null
until_true 30 "deleting the Job (propagation Background) removes its Pod" \
  equals "" pods -l job-name=once -o 'jsonpath={.items[*].metadata.name}'
deleted_by_gc() {
  grep '"verb":"delete"' "$EBB_CLUSTER_DIR/audit.log" | grep '"resource":"pods"' | grep "\"name\":\"$job_pod\"" \
    | grep -c '"username":"system:serviceaccount:kube-system:generic-garbage-collector"' >/dev/null # -c reads all input: no SIGPIPE under pipefail
}
until_true 10 "the audit log shows the garbage collector deleted it" deleted_by_gc

kubectl scale deployment web --replicas=0 >/dev/null
until_true 30 "scaling to 0 removes the Running Pods (graceful delete finished by the stand-in)" \
  equals "" pods -l app=web -o 'jsonpath={.items[*].metadata.name}'

pids=$(cut -d' ' -f1 "$EBB_CLUSTER_DIR"/pids/*)
"$ROOT/scripts/cluster.sh" down
for pid in $pids; do
  [ ! -e "/proc/$pid" ] || fail "pid $pid is still there after down"
done
[ ! -e "$EBB_CLUSTER_DIR" ] || fail "down left $EBB_CLUSTER_DIR"
pass "down left no process and no directory"
