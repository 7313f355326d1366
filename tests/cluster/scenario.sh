#!/usr/bin/env bash
# Installs the Istio canary-upgrade scenario into the cluster of cluster.sh, with the real
# Istio charts and the real helm (both cached by build.sh):
#
#   scenario.sh old       istio-base (CRDs; default validator -> OLD_REV), istiod-OLD_REV,
#                         the `default` revision tag -> OLD_REV, and the OLD_REV ingress and
#                         east-west gateways
#   scenario.sh bookinfo  namespace bookinfo (istio.io/rev=OLD_REV) with the Bookinfo workloads,
#                         waited for until Available
#   scenario.sh new       upgrade guide steps 2-3: new CRDs, istiod-NEW_REV and the NEW_REV
#                         gateways (namespaces and workloads are left to the test / plugins)
#   scenario.sh all       old + bookinfo + new
#
# istiod runs under kwok (its Deployment becomes Ready, nothing executes). Each revision's
# webhooks point at rev-test-injector by URL, /inject/<rev> and /validate/<rev>, so the real
# apiserver evaluates the charts' real selectors and calls the injector for the revision that wins.
set -euo pipefail
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

[[ -f "$STATE_DIR/ports.env" ]] || die "no cluster in $STATE_DIR: run tests/cluster/cluster.sh up"
. "$STATE_DIR/ports.env"
export KUBECONFIG="$STATE_DIR/admin.kubeconfig"
# Keep helm's repo/cache/config files with the cluster instead of in ~/.config and ~/.cache.
export HELM_CONFIG_HOME="$STATE_DIR/helm/config" HELM_CACHE_HOME="$STATE_DIR/helm/cache" HELM_DATA_HOME="$STATE_DIR/helm/data"
KUBECTL="$BIN/kubectl"
HELM="$BIN/helm"
CA_B64="$(base64 -w0 <"$STATE_DIR/pki/ca.crt")"
INJECTOR="https://127.0.0.1:$INJECTOR_PORT"
TIMEOUT="${REV_SCENARIO_TIMEOUT:-180s}"

# Values that make a revision's istiod chart talk to the injector instead of its own Service.
# validationCABundle also makes the validating webhooks failurePolicy Fail from the start (the
# chart's own switch for "pilot has a well-known cert"), so Istio config is really validated by
# a live endpoint instead of being waved through by Ignore.
istiod_values() {
    local rev="$1" tag="$2"
    cat <<EOF
revision: "$rev"
global:
  hub: $ISTIO_HUB
  tag: "$tag"
istiodRemote:
  injectionURL: $INJECTOR/inject/$rev
  injectionCABundle: $CA_B64
base:
  validationURL: $INJECTOR/validate/$rev
  validationCABundle: $CA_B64
EOF
}

helm_install() { # RELEASE CHART NAMESPACE VALUES_FILE [extra helm args]
    local t; t="$(now)"
    local release="$1" chart="$2" ns="$3" values="$4"; shift 4
    "$HELM" upgrade --install "$release" "$chart" -n "$ns" --create-namespace --wait --timeout "$TIMEOUT" \
        -f "$values" "$@" >/dev/null
    log "helm: $release ($ns) in $(since "$t")"
}

install_gateways() {
    local rev="$1" tag="$2" charts="$CHARTS/$1" v="$STATE_DIR/values"
    mkdir -p "$v"
    cat >"$v/ingress-$rev.yaml" <<EOF
revision: "$rev"
labels:
  istio: ingressgateway
  app: istio-ingressgateway
EOF
    cat >"$v/eastwest-$rev.yaml" <<EOF
revision: "$rev"
labels:
  istio: eastwestgateway
  app: istio-eastwestgateway
networkGateway: network1
EOF
    helm_install "istio-ingressgateway-$rev" "$charts/gateway" istio-ingress "$v/ingress-$rev.yaml" &
    local p1=$!
    helm_install "istio-eastwestgateway-$rev" "$charts/gateway" istio-eastwest "$v/eastwest-$rev.yaml" &
    local p2=$!
    wait "$p1" && wait "$p2"
    log "gateways of $rev ($tag) installed"
}

cmd_old() {
    local charts="$CHARTS/$OLD_REV" v="$STATE_DIR/values"
    mkdir -p "$v"
    # Base: CRDs and istiod-default-validator, which follows the default revision.
    cat >"$v/base.yaml" <<EOF
defaultRevision: "$OLD_REV"
base:
  validationURL: $INJECTOR/validate/$OLD_REV
  validationCABundle: $CA_B64
EOF
    helm_install istio-base "$charts/base" istio-system "$v/base.yaml"
    istiod_values "$OLD_REV" "$OLD_TAG" >"$v/istiod-$OLD_REV.yaml"
    helm_install "istiod-$OLD_REV" "$charts/istiod" istio-system "$v/istiod-$OLD_REV.yaml"
    # The `default` tag, as `istioctl tag set default --revision OLD_REV` leaves it: the chart's
    # own template, applied outside any release (DOMAIN §6). It carries the webhooks for
    # istio-injection=enabled and sidecar.istio.io/inject=true (DOMAIN §2).
    "$HELM" template "istiod-$OLD_REV" "$charts/istiod" -n istio-system -f "$v/istiod-$OLD_REV.yaml" \
        --set 'revisionTags={default}' -s templates/revision-tags-mwc.yaml |
        "$KUBECTL" apply -f - >/dev/null
    log "revision tag default -> $OLD_REV"
    install_gateways "$OLD_REV" "$OLD_TAG"
}

cmd_new() {
    local charts="$CHARTS/$NEW_REV" v="$STATE_DIR/values"
    mkdir -p "$v"
    # Guide step 2.3: upgrade the CRDs first (the base release itself stays on the old chart).
    "$HELM" template istio-base "$charts/base" -n istio-system -s templates/crds.yaml |
        "$KUBECTL" apply --server-side --force-conflicts -f - >/dev/null
    log "CRDs of $NEW_REV applied"
    istiod_values "$NEW_REV" "$NEW_TAG" >"$v/istiod-$NEW_REV.yaml"
    helm_install "istiod-$NEW_REV" "$charts/istiod" istio-system "$v/istiod-$NEW_REV.yaml"
    install_gateways "$NEW_REV" "$NEW_TAG"
}

cmd_bookinfo() {
    local t; t="$(now)"
    "$KUBECTL" create namespace bookinfo --dry-run=client -o yaml | "$KUBECTL" apply -f - >/dev/null
    "$KUBECTL" label namespace bookinfo "istio.io/rev=$OLD_REV" --overwrite >/dev/null
    "$KUBECTL" apply -n bookinfo -f "$CLUSTER_DIR/bookinfo.yaml" >/dev/null
    "$KUBECTL" wait -n bookinfo --for=condition=Available deployment --all --timeout "$TIMEOUT" >/dev/null
    log "bookinfo Available in $(since "$t")"
}

T0="$(now)"
case "${1:-}" in
    old) cmd_old ;;
    new) cmd_new ;;
    bookinfo) cmd_bookinfo ;;
    all) cmd_old; cmd_bookinfo; cmd_new ;;
    *) echo "usage: $0 old|bookinfo|new|all" >&2; exit 2 ;;
esac
log "scenario $1 done in $(since "$T0")"
