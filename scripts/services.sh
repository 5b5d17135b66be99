#!/usr/bin/env bash
# Installs (on Debian/Ubuntu, when missing) and starts the services the tests use:
# RabbitMQ with its management plugin on 127.0.0.1:5672/15672, Azurite's queue service on
# 127.0.0.1:10001, and headless Chromium with chromedriver (the dashboard's browser test).
# A real Kubernetes control plane (scripts/cluster.sh: etcd, kube-apiserver,
# kube-controller-manager, kube-scheduler and the kubelet stand-in, built from the Go modules
# pinned in tests/cluster, cached outside the checkout), for every test that talks to Kubernetes.
# Safe to run again: running services are left alone.
set -euo pipefail
cd "$(dirname "$0")/.."

say() { printf '[services] %s\n' "$*" >&2; }
port_open() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }
apt_updated=""
apt_install() {
  if [ -z "$apt_updated" ]; then apt-get update -qq; apt_updated=1; fi
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "$@" >/dev/null
}

start_rabbitmq() {
  if ! port_open 5672; then
    if ! command -v rabbitmq-server >/dev/null; then
      say "installing rabbitmq-server (Debian package)"
      apt_install rabbitmq-server
    fi
    say "starting RabbitMQ"
    rabbitmq-plugins enable --offline rabbitmq_management >/dev/null
    rabbitmq-server -detached
    sleep 2
    rabbitmqctl wait --timeout 90 "/var/lib/rabbitmq/mnesia/rabbit@$(hostname).pid" >/dev/null \
      || rabbitmqctl await_startup --timeout 90 >/dev/null
  fi
  if ! port_open 15672; then
    say "enabling the RabbitMQ management plugin"
    rabbitmq-plugins enable rabbitmq_management >/dev/null
    for _ in $(seq 1 60); do port_open 15672 && break; sleep 1; done
  fi
  port_open 15672 || { say "RabbitMQ management API did not come up"; exit 1; }
  say "RabbitMQ ready (amqp 5672, management 15672)"
}

start_azurite() {
  # Installed even when an Azurite already runs: tests start private ones from this folder.
  if [ ! -x tests/services/node_modules/.bin/azurite-queue ]; then
    if ! command -v npm >/dev/null; then
      say "installing nodejs and npm (Debian packages)"
      apt_install nodejs npm
    fi
    say "installing azurite 3.35.0 from npm"
    (cd tests/services && npm install --no-audit --no-fund --loglevel=error >/dev/null)
  fi
  if port_open 10001; then say "Azurite already running"; return; fi
  say "starting Azurite (queue service)"
  mkdir -p target
  nohup tests/services/node_modules/.bin/azurite-queue --queueHost 127.0.0.1 --queuePort 10001 \
    --inMemoryPersistence --silent --skipApiVersionCheck --loose --disableTelemetry \
    >target/azurite.log 2>&1 &
  for _ in $(seq 1 60); do
    if curl -s -o /dev/null "http://127.0.0.1:10001/devstoreaccount1?comp=list"; then
      say "Azurite ready (queue 10001)"; return
    fi
    sleep 0.5
  done
  say "Azurite did not come up; see target/azurite.log"; exit 1
}

start_python() {
  if [ ! -x .venv/bin/python ] || ! .venv/bin/python -c 'import grpc, grpc_tools, grpc_health' 2>/dev/null; then
    say "creating .venv with grpcio, grpcio-tools, grpcio-health-checking, grpcio-reflection"
    python3 -m venv .venv
    .venv/bin/pip install -q grpcio grpcio-tools grpcio-health-checking grpcio-reflection
  fi
  # Real Kubernetes clients for the tests against the fake API server: the official Python
  # client and Helm's own library (helm-python-sdk ships it; no helm binary needed).
  if ! .venv/bin/python -c 'import kubernetes' 2>/dev/null; then
    say "installing the kubernetes Python client into .venv"
    .venv/bin/pip install -q kubernetes
  fi
  if ! .venv/bin/python -c 'import helm_python' 2>/dev/null; then
    say "installing helm-python-sdk into .venv"
    .venv/bin/pip install -q helm-python-sdk
  fi
  if ! command -v kubectl >/dev/null; then
    say "installing kubectl"
    apt_install kubectl || apt_install kubernetes-client
  fi
}

# npm packages pinned by a package-lock.json: the buf CLI (tests/proto, for
# scripts/proto-check.sh) and the Node example scaler's gRPC libraries. Installed again only
# when the lock file is newer than the last install.
install_node_packages() {
  if ! command -v npm >/dev/null; then
    say "installing nodejs and npm (Debian packages)"
    apt_install nodejs npm
  fi
  for dir in tests/proto examples/node-scaler; do
    if [ ! -f "$dir/node_modules/.package-lock.json" ] \
      || [ "$dir/package-lock.json" -nt "$dir/node_modules/.package-lock.json" ]; then
      say "installing the npm packages of $dir (npm ci)"
      (cd "$dir" && npm ci --no-audit --no-fund --loglevel=error >/dev/null)
    fi
  done
}

# The Helm chart's tests (tests/helm): Helm's own engine (helm-python-sdk), the Kubernetes
# OpenAPI schemas (kubernetes-validate), pytest.
start_helm_python() {
  if ! .venv/bin/python -c 'import helm_python, kubernetes_validate, jsonschema, yaml, pytest' 2>/dev/null; then
    say "installing helm-python-sdk, kubernetes-validate, jsonschema, pyyaml, pytest into .venv"
    .venv/bin/pip install -q helm-python-sdk kubernetes-validate jsonschema pyyaml pytest
  fi
}

# Headless Chromium and chromedriver for the dashboard's browser test
# (tests/dashboard_browser.rs).
install_chromium() {
  if ! command -v chromium >/dev/null || ! command -v chromedriver >/dev/null; then
    say "installing chromium and chromium-driver (Debian packages)"
    apt_install chromium chromium-driver
  fi
}

# The control plane every cluster test uses; one already up (scripts/cluster.sh env) is kept.
start_cluster() {
  if scripts/cluster.sh env >/dev/null 2>&1; then say "Kubernetes control plane already up"; return; fi
  if ! command -v go >/dev/null; then
    say "Go is missing: the Kubernetes control plane is built from Go modules; install Go 1.26 (the project's machines have it)"
    exit 1
  fi
  say "starting the Kubernetes control plane (scripts/cluster.sh up; the first build takes ~15 min on 2 cores)"
  scripts/cluster.sh up >/dev/null
  say "Kubernetes control plane ready ($(scripts/cluster.sh env))"
}

start_rabbitmq
start_cluster
install_chromium
start_azurite
start_python
install_node_packages
start_helm_python
