#!/usr/bin/env bash
# The demo behind `make demo`: a local control plane with Istio 1-30 and Bookinfo, then the
# upgrade guide walked to 1-31 with the four plugins, each step narrated with their real output.
# Leaves the cluster up; `make demo-down` stops it.
set -euo pipefail
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

PLUGINS="$ROOT/target/plugins"
[[ -x "$PLUGINS/kubectl-rev_inventory" ]] || die "run 'make plugins' first (make demo does)"

step() { printf '\n\033[1m== %s\033[0m\n' "$*"; }
run() { printf '\n$ %s\n' "$*"; "$@"; }

step "Local control plane (real kube-apiserver, controllers, kwok nodes) — fresh"
bash "$CLUSTER_DIR/cluster.sh" down >/dev/null 2>&1 || true
bash "$CLUSTER_DIR/cluster.sh" up
bash "$CLUSTER_DIR/scenario.sh" old
bash "$CLUSTER_DIR/scenario.sh" bookinfo
export KUBECONFIG="$STATE_DIR/admin.kubeconfig"
export PATH="$PLUGINS:$BIN:$PATH"
export HELM_CONFIG_HOME="$STATE_DIR/helm/config" HELM_CACHE_HOME="$STATE_DIR/helm/cache" HELM_DATA_HOME="$STATE_DIR/helm/data"

step "Step 1: gather mesh details — what runs, which revision each namespace is on"
run kubectl rev-inventory

step "Steps 2-3: deploy the new control plane ($NEW_REV) and its gateways beside $OLD_REV (real helm)"
bash "$CLUSTER_DIR/scenario.sh" new
run helm ls -A
run kubectl rev-inventory

step "Step 3.6: move the workload namespace to $NEW_REV — plan first, then for real"
run kubectl rev-relabel bookinfo "$NEW_REV" --dry-run=client
run kubectl rev-relabel bookinfo "$NEW_REV" --yes
run kubectl rev-inventory -n bookinfo

step "Step 5 too early: prune refuses while anything still uses $OLD_REV"
run kubectl rev-prune "$OLD_REV" --dry-run=client || true

step "Steps 3.7-3.8: restart the drifted workloads one at a time, verifying each new sidecar"
run kubectl rev-restart bookinfo --yes

step "Move the default tag (and istiod-default-validator) to $NEW_REV"
run kubectl rev-relabel --tag default "$NEW_REV" --yes
run kubectl rev-inventory

step "Step 5: remove $OLD_REV now that nothing uses it"
run kubectl rev-prune "$OLD_REV" --yes
run helm ls -A
run kubectl get pods -n istio-system

step "Done"
cat <<EOF
The cluster is still up. To look around:
  export KUBECONFIG=$KUBECONFIG
  export PATH=$PLUGINS:$BIN:\$PATH
Stop it with: make demo-down
EOF
