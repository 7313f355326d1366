# shellcheck shell=bash disable=SC2034  # variables are used by the scripts that source this
# Shared by build.sh, cluster.sh and scenario.sh (sourced, not run).
# Paths and the binary cache key; everything else lives in the scripts that use it.

CLUSTER_DIR="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
ROOT="$(cd "$CLUSTER_DIR/../.." && pwd)"
# shellcheck source=versions.env
. "$CLUSTER_DIR/versions.env"

# The key covers every input of the Go builds and chart extraction, so a version bump builds
# into a fresh directory instead of silently reusing stale binaries.
cache_key() {
    local h
    h="$(cd "$CLUSTER_DIR" && cat versions.env go/*/go.mod go/*/go.sum 2>/dev/null | sha256sum | cut -c1-10)"
    echo "k8s-${KUBE_VERSION}-${h}"
}

# Absolute: the paths end up on the command lines of long-running processes (and `down` finds
# its processes by them).
CACHE_ROOT="$(realpath -m "${REV_CLUSTER_CACHE:-$CLUSTER_DIR/.cache}")"
CACHE_DIR="$CACHE_ROOT/$(cache_key)"
BIN="$CACHE_DIR/bin"
CHARTS="$CACHE_DIR/charts"
STATE_DIR="$(realpath -m "${REV_CLUSTER_STATE:-$CLUSTER_DIR/.state}")"
INJECTOR_BIN="${REV_INJECTOR_BIN:-${CARGO_TARGET_DIR:-$ROOT/target}/debug/rev-test-injector}"

log() { printf '[%s] %s\n' "$(date +%H:%M:%S)" "$*" >&2; }
die() { log "ERROR: $*"; exit 1; }

# Seconds since the epoch with millisecond precision, for the timings the scripts print.
now() { date +%s.%N | cut -c1-14; }
since() { awk -v a="$1" -v b="$(now)" 'BEGIN { printf "%.1fs", b - a }'; }
