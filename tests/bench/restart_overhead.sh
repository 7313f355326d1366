#!/usr/bin/env bash
# Benchmark: rev-restart's own overhead per workload on the local control plane — wall time
# minus the sum of the rollout durations it reports — side by side with what the guide does by
# hand (`kubectl rollout restart` + `kubectl rollout status` per Deployment, without its sleeps).
# Needs a running scenario: make scenario (or make demo). Restarts every Bookinfo workload.
#   tests/bench/restart_overhead.sh [runs=3]
set -euo pipefail
. "$(dirname "${BASH_SOURCE[0]}")/../cluster/lib.sh"
export KUBECONFIG="$STATE_DIR/admin.kubeconfig"
export PATH="$ROOT/target/plugins:$BIN:$PATH"
[[ -x "$ROOT/target/plugins/kubectl-rev_restart" ]] || (cd "$ROOT" && make -s plugins)
runs=${1:-3}
mkdir -p "$ROOT/target/bench"
out="$ROOT/target/bench/restart.json"
for run in $(seq "$runs"); do
  start=$(date +%s.%N)
  kubectl rev-restart bookinfo --all --yes -o json >"$out" 2>/dev/null
  end=$(date +%s.%N)
  python3 - "$out" "$start" "$end" "$run" <<'PY'
import json, sys
doc = json.load(open(sys.argv[1]))
wall = float(sys.argv[3]) - float(sys.argv[2])
w = doc["workloads"]
rollouts = sum(x["rolloutSeconds"] for x in w)
print(f"rev-restart run {sys.argv[4]}: {len(w)} workloads, wall {wall:.2f} s, rollouts {rollouts:.2f} s, "
      f"overhead {(wall - rollouts) / len(w):.3f} s per workload")
PY
done
deployments=$(kubectl get deploy -n bookinfo -o name)
start=$(date +%s.%N)
for d in $deployments; do
  kubectl rollout restart "$d" -n bookinfo >/dev/null
  kubectl rollout status "$d" -n bookinfo --timeout=120s >/dev/null
done
end=$(date +%s.%N)
n=$(echo "$deployments" | wc -l)
awk -v s="$start" -v e="$end" -v n="$n" 'BEGIN { printf "kubectl rollout restart + status by hand: %d workloads, wall %.2f s (no sidecar verification)\n", n, e - s }'
