#!/usr/bin/env bash
# The protocol as a contract: buf lint and buf breaking on proto/ (run by .ci/run, exercised by
# tests/proto_contract.rs). Exits non-zero on the first check that fails.
#   1. buf lint with the rule set in buf.yaml;
#   2. ebb.scaler.v1 against its release baseline tests/proto/baseline/ebb-scaler-v1.yaml
#      (FILE rules, from buf.yaml): additive changes only;
#   3. KEDA's externalscaler against KEDA's wire facts in tests/proto/baseline/keda
#      (WIRE and a few stricter rules, from tests/proto/keda-wire.yaml).
# Usage: scripts/proto-check.sh [ROOT]
#   ROOT: a directory laid out like this repository (buf.yaml, proto/, tests/proto/); default
#   the repository itself. Tests pass a copy with a deliberate edit.
# scripts/proto-check.sh --update-baseline
#   rewrites the v1 baseline from proto/; do this only when releasing, so that the fields added
#   since the last release are protected from then on (see proto/ebb/scaler/v1/README.md).
set -euo pipefail
repo="$(cd "$(dirname "$0")/.." && pwd)"
buf="$repo/tests/proto/node_modules/.bin/buf"
if [ ! -x "$buf" ]; then
  echo "proto-check: buf is missing ($buf); run scripts/services.sh to install it" >&2
  exit 2
fi
baseline=tests/proto/baseline/ebb-scaler-v1.yaml

if [ "${1:-}" = "--update-baseline" ]; then
  cd "$repo"
  "$buf" build --path proto/ebb/scaler/v1 --exclude-source-info -o "$baseline"
  echo "proto-check: wrote $baseline" >&2
  exit 0
fi

cd "${1:-$repo}"
say() { printf '[proto-check] %s\n' "$*" >&2; }
say "buf lint (buf.yaml)"
"$buf" lint
say "buf breaking: ebb.scaler.v1 against $baseline"
"$buf" breaking --against "$baseline"
say "buf breaking: externalscaler against KEDA's wire protocol (tests/proto/keda-wire.yaml)"
"$buf" breaking --against tests/proto/baseline/keda --config tests/proto/keda-wire.yaml
say "all checks passed"
