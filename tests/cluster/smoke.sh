#!/usr/bin/env bash
# Checks that the cluster behaves like an Istio canary-upgrade cluster, after
# `cluster.sh up && scenario.sh all`. Mutates namespace bookinfo (relabels it to NEW_REV and
# restarts details-v1) and creates throwaway namespaces smoke-*; run scenario.sh bookinfo to
# restore the label.
set -euo pipefail
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
[[ -f "$STATE_DIR/env" ]] || die "no cluster in $STATE_DIR"
. "$STATE_DIR/env"

pass=0 fail=0
check() { # DESCRIPTION EXPECTED ACTUAL
    if [[ "$2" == "$3" ]]; then pass=$((pass + 1)); echo "ok    $1"
    else fail=$((fail + 1)); echo "FAIL  $1: expected [$2], got [$3]"; fi
}
k() { kubectl "$@"; }
pod_field() { # NAMESPACE SELECTOR JSONPATH_TEMPLATE, of the newest matching pod
    local pod
    pod="$(k get pods -n "$1" -l "$2" --sort-by=.metadata.creationTimestamp -o name | tail -n 1)"
    k get -n "$1" "$pod" -o jsonpath="$3"
}
ann_rev='.metadata.annotations.istio\.io/rev'
proxy_image='.spec.containers[?(@.name=="istio-proxy")].image'

check "3 nodes Ready" 3 "$(k get nodes --no-headers | grep -c ' Ready ')"
check "bookinfo Deployments Available" 6 \
    "$(k get deploy -n bookinfo -o jsonpath='{range .items[*]}{.status.conditions[?(@.type=="Available")].status}{"\n"}{end}' | grep -c True)"
check "bookinfo sidecars of $OLD_REV" "$OLD_REV $OLD_REV $OLD_REV $OLD_REV $OLD_REV $OLD_REV" \
    "$(k get pods -n bookinfo -o jsonpath="{range .items[*]}{$ann_rev}{' '}{end}" | xargs)"
status="$(pod_field bookinfo app=ratings '{.metadata.annotations.sidecar\.istio\.io/status}')"
check "sidecar.istio.io/status revision" "\"revision\":\"$OLD_REV\"}" "$(grep -o '"revision":"[^"]*"}' <<<"$status")"
check "istio-proxy image" "$ISTIO_HUB/proxyv2:$OLD_TAG" "$(pod_field bookinfo app=ratings "{$proxy_image}")"
check "gateway of $NEW_REV filled in" "$ISTIO_HUB/proxyv2:$NEW_TAG" \
    "$(pod_field istio-ingress "istio.io/rev=$NEW_REV" "{$proxy_image}")"

# Guide step 3.6-3.7: relabel, restart, the new pod has the new sidecar.
k label ns bookinfo "istio.io/rev=$NEW_REV" --overwrite >/dev/null
k rollout restart deploy/details-v1 -n bookinfo >/dev/null
k rollout status deploy/details-v1 -n bookinfo --timeout=60s >/dev/null
check "restarted details-v1 on $NEW_REV" "$NEW_REV $ISTIO_HUB/proxyv2:$NEW_TAG" \
    "$(pod_field bookinfo app=details "{$ann_rev} {$proxy_image}")"

# DOMAIN §2 precedence, decided by the apiserver over the charts' webhooks.
k delete ns smoke-legacy smoke-object --ignore-not-found --wait=false >/dev/null
k wait --for=delete ns/smoke-legacy ns/smoke-object --timeout=60s >/dev/null 2>&1 || true
k create ns smoke-legacy >/dev/null && k label ns smoke-legacy istio-injection=enabled "istio.io/rev=$NEW_REV" >/dev/null
k create ns smoke-object >/dev/null
k run p -n smoke-legacy --image=nginx >/dev/null
k run p -n smoke-object --image=nginx -l "istio.io/rev=$NEW_REV" >/dev/null
check "istio-injection=enabled beats istio.io/rev" "$OLD_REV" "$(k get pod p -n smoke-legacy -o jsonpath="{$ann_rev}")"
check "pod label selects revision" "$NEW_REV" "$(k get pod p -n smoke-object -o jsonpath="{$ann_rev}")"
k delete ns smoke-legacy smoke-object --wait=false >/dev/null

# Validation webhooks answer (failurePolicy Fail): creating Istio config neither hangs nor fails.
ef="apiVersion: networking.istio.io/v1alpha3
kind: EnvoyFilter
metadata: {name: smoke, namespace: bookinfo, labels: {istio.io/rev: \"$OLD_REV\"}}
spec: {configPatches: []}"
check "EnvoyFilter accepted" created \
    "$(timeout 20 kubectl create -f - -o jsonpath='{.metadata.name}' <<<"$ef" >/dev/null && echo created)"
k delete envoyfilter smoke -n bookinfo >/dev/null

lim=(--kubeconfig "$REV_LIMITED_KUBECONFIG")
check "limited user lists pods" yes "$(k "${lim[@]}" auth can-i list pods -A)"
check "limited user cannot read secrets" no "$(k "${lim[@]}" auth can-i list secrets -A || true)"
check "limited user cannot patch namespaces" no "$(k "${lim[@]}" auth can-i patch namespaces 2>/dev/null || true)"

echo "smoke: $pass passed, $fail failed"
((fail == 0))
