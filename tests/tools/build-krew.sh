#!/usr/bin/env bash
# Builds the Go tools the release tests use (not part of the local cluster), from their pinned
# Go modules in tests/tools/go/<tool>/: today the real krew (`kubectl-krew`) and krew's own
# manifest validator (`validate-krew-manifest`), both from sigs.k8s.io/krew.
# Idempotent: a cache hit costs nothing; the cache key covers go.mod and go.sum, so a version
# bump builds into a fresh directory. Prints the bin directory on stdout.
# Env: REV_TOOLS_CACHE (cache root, default tests/tools/.cache).
set -euo pipefail
TOOLS_DIR="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
log() { printf '[%s] %s\n' "$(date +%H:%M:%S)" "$*" >&2; }
die() { log "ERROR: $*"; exit 1; }
command -v go >/dev/null || die "go is required (1.24+)"

mod="$TOOLS_DIR/go/krew"
key="krew-$(cat "$mod/go.mod" "$mod/go.sum" | sha256sum | cut -c1-10)"
bin="$(realpath -m "${REV_TOOLS_CACHE:-$TOOLS_DIR/.cache}")/$key/bin"
if [[ -x "$bin/kubectl-krew" && -x "$bin/validate-krew-manifest" ]]; then
    log "cached: kubectl-krew, validate-krew-manifest ($bin)"
    echo "$bin"; exit 0
fi

version="$(cd "$mod" && go list -m -f '{{.Version}}' sigs.k8s.io/krew)"
log "building kubectl-krew and validate-krew-manifest (sigs.k8s.io/krew $version)"
mkdir -p "$bin"
# Through a temp dir, so an interrupted build never leaves a binary that later runs would trust.
tmp="$(mktemp -d "$bin/.build.XXXXXX")"
trap 'rm -rf "$tmp"' EXIT
start=$(date +%s)
(
    cd "$mod"
    export CGO_ENABLED=0
    # krew skips its GitHub upgrade check only for unstamped builds or KREW_NO_UPGRADE_CHECK; the
    # tag is stamped so `kubectl krew version` says what it is, and the tests set the variable.
    go build -trimpath -ldflags "-s -w -X sigs.k8s.io/krew/internal/version.gitTag=$version" \
        -o "$tmp/kubectl-krew" sigs.k8s.io/krew/cmd/krew
    go build -trimpath -ldflags "-s -w" -o "$tmp/validate-krew-manifest" \
        sigs.k8s.io/krew/cmd/validate-krew-manifest
)
mv "$tmp/kubectl-krew" "$tmp/validate-krew-manifest" "$bin/"
log "built in $(( $(date +%s) - start ))s: $bin"
echo "$bin"
