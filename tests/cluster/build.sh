#!/usr/bin/env bash
# Builds everything the local test cluster runs, from pinned upstream sources:
#   kube-apiserver, kube-controller-manager, kube-scheduler, kubectl, etcd, kwok, helm (Go),
#   the Istio charts of both revisions (extracted from the istio.io/istio module zip),
#   and the Rust test injector (cargo, in this workspace).
# Idempotent: binaries already in the cache are kept; a version bump changes the cache key.
# Env: REV_CLUSTER_CACHE (cache root, default tests/cluster/.cache), REV_SKIP_INJECTOR=1.
set -euo pipefail
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

T0="$(now)"
need_pkgs=()
command -v go >/dev/null || die "go is required (1.24+; helm/etcd modules ask for newer and Go fetches that toolchain)"
command -v cargo >/dev/null || [[ "${REV_SKIP_INJECTOR:-}" == 1 ]] || die "cargo is required"
command -v openssl >/dev/null || need_pkgs+=(openssl)
command -v curl >/dev/null || need_pkgs+=(curl)
command -v ss >/dev/null || need_pkgs+=(iproute2)
command -v pgrep >/dev/null || need_pkgs+=(procps)
if ((${#need_pkgs[@]})); then
    log "installing ${need_pkgs[*]} (apt-get)"
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq && apt-get install -y -qq --no-install-recommends "${need_pkgs[@]}" >/dev/null
fi

mkdir -p "$BIN" "$CHARTS"
export CGO_ENABLED=0

# Version stamping: unstamped builds say v0.0.0-master+$Format:%H$, which breaks Helm's
# .Capabilities.KubeVersion (the Istio charts semverCompare it) and kubectl's version skew check.
kube_minor="${KUBE_VERSION#v1.}"; kube_minor="${kube_minor%%.*}"
kube_ldflags="-s -w"
for p in k8s.io/component-base/version k8s.io/client-go/pkg/version; do
    kube_ldflags+=" -X $p.gitVersion=$KUBE_VERSION -X $p.gitMajor=1 -X $p.gitMinor=$kube_minor -X $p.gitTreeState=clean"
done

# go_build MODULE_DIR LDFLAGS NAME=PACKAGE...: builds the missing ones into $BIN, one `go build`
# (so the packages shared between binaries are compiled once), via a temp dir so that an
# interrupted build never leaves a half-written binary that later runs would trust.
go_build() {
    local mod="$1" ldflags="$2"; shift 2
    local dir="$CLUSTER_DIR/go/$mod"
    local names=() pkgs=() spec
    for spec in "$@"; do
        [[ -x "$BIN/${spec%%=*}" ]] && continue
        names+=("${spec%%=*}"); pkgs+=("${spec#*=}")
    done
    ((${#names[@]})) || { log "cached: ${*%%=*}"; return 0; }
    local t tmp
    t="$(now)"; tmp="$(mktemp -d "$BIN/.build.XXXXXX")"
    log "building ${names[*]} (go/$mod)"
    (
        cd "$dir"
        [[ -f go.sum ]] || go mod tidy
        if ((${#pkgs[@]} == 1)); then
            go build -trimpath -ldflags "$ldflags" -o "$tmp/${names[0]}" "${pkgs[0]}"
        else
            # With several packages, -o DIR names each binary after its package's last element.
            go build -trimpath -ldflags "$ldflags" -o "$tmp/" "${pkgs[@]}"
        fi
    )
    local n
    for n in "${names[@]}"; do mv "$tmp/$n" "$BIN/$n"; done
    rmdir "$tmp"
    log "built ${names[*]} in $(since "$t")"
}

go_build kubernetes "$kube_ldflags" \
    kube-apiserver=k8s.io/kubernetes/cmd/kube-apiserver \
    kube-controller-manager=k8s.io/kubernetes/cmd/kube-controller-manager \
    kube-scheduler=k8s.io/kubernetes/cmd/kube-scheduler \
    kubectl=k8s.io/kubernetes/cmd/kubectl
go_build etcd "-s -w" etcd=go.etcd.io/etcd/server/v3
go_build kwok "-s -w -X sigs.k8s.io/kwok/pkg/consts.Version=${KWOK_VERSION#v} -X sigs.k8s.io/kwok/pkg/consts.KubeVersion=${KUBE_VERSION#v}" \
    kwok=sigs.k8s.io/kwok/cmd/kwok
# Helm's own version, and the default Kubernetes version of `helm template` (from its client-go).
if [[ ! -x "$BIN/helm" ]]; then
    helm_cg="$(cd "$CLUSTER_DIR/go/helm" && go list -m -f '{{.Version}}' k8s.io/client-go)"
    helm_minor="${helm_cg#v0.}"; helm_minor="${helm_minor%%.*}"
fi
go_build helm "-s -w -X helm.sh/helm/v3/internal/version.version=$HELM_VERSION -X helm.sh/helm/v3/internal/version.gitTreeState=clean
    -X helm.sh/helm/v3/pkg/chartutil.k8sVersionMajor=1 -X helm.sh/helm/v3/pkg/chartutil.k8sVersionMinor=${helm_minor:-0}
    -X helm.sh/helm/v3/pkg/lint/rules.k8sVersionMajor=1 -X helm.sh/helm/v3/pkg/lint/rules.k8sVersionMinor=${helm_minor:-0}" \
    helm=helm.sh/helm/v3/cmd/helm

# Charts: charts/<rev>/{base,istiod,gateway}. The module zip is the only source the Go proxy
# serves; it has no symlinks in manifests/charts, so a plain copy is a complete chart.
extract_charts() {
    local rev="$1" mod="$2" tag="$3" dest="$CHARTS/$1"
    if [[ -f "$dest/.complete" ]]; then log "cached: charts $rev"; return 0; fi
    local t dir
    t="$(now)"
    dir="$(cd "$(mktemp -d)" && GO111MODULE=on GOFLAGS=-mod=mod go mod download -json "istio.io/istio@$mod" |
        sed -n 's/^[[:space:]]*"Dir": "\(.*\)",\{0,1\}$/\1/p')"
    [[ -d "$dir/manifests/charts" ]] || die "istio.io/istio@$mod: no manifests/charts in module download ($dir)"
    rm -rf "$dest"; mkdir -p "$dest"
    cp -R "$dir/manifests/charts/base" "$dest/base"
    cp -R "$dir/manifests/charts/istio-control/istio-discovery" "$dest/istiod"
    cp -R "$dir/manifests/charts/gateway" "$dest/gateway"
    chmod -R u+w "$dest"
    # Istio's release builder stamps the chart version; git has 1.0.0. Helm records carry this
    # (chart.metadata.appVersion), and the plugins read it.
    local c
    for c in base istiod gateway; do
        sed -i -e "s/^version: .*/version: $tag/" -e "s/^appVersion: .*/appVersion: $tag/" "$dest/$c/Chart.yaml"
    done
    echo "istio.io/istio@$mod tag=$tag" >"$dest/.complete"
    log "charts $rev (istio $tag) extracted in $(since "$t")"
}
extract_charts "$OLD_REV" "$ISTIO_OLD_MODULE" "$OLD_TAG"
extract_charts "$NEW_REV" "$ISTIO_NEW_MODULE" "$NEW_TAG"

if [[ "${REV_SKIP_INJECTOR:-}" != 1 ]]; then
    t="$(now)"
    log "building rev-test-injector (cargo)"
    (cd "$ROOT" && cargo build -q -p rev-test-injector)
    [[ -x "$INJECTOR_BIN" ]] || die "cargo built no $INJECTOR_BIN (set REV_INJECTOR_BIN if the target dir is elsewhere)"
    log "rev-test-injector ready in $(since "$t")"
fi

log "cache: $CACHE_DIR ($(du -sh "$CACHE_DIR" | cut -f1)); total $(since "$T0")"
