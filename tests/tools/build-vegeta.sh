#!/usr/bin/env bash
# Builds vegeta (github.com/tsenart/vegeta/v12, pinned in go/vegeta/go.mod, go.sum committed)
# into tests/tools/.cache/vegeta-<version>/vegeta and prints its path. Idempotent: a cached
# binary is kept; bumping the version in go.mod changes the cache key. Used by
# tests/bench/probe_vs_vegeta.sh to run rev-probe and vegeta side by side.
#   Env: REV_TOOLS_CACHE (cache root, default tests/tools/.cache)
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
module="$here/go/vegeta"
version=$(sed -n 's|^[[:space:]]*github.com/tsenart/vegeta/v12 \(v[^ ]*\).*|\1|p' "$module/go.mod")
[ -n "$version" ] || { echo "build-vegeta: no vegeta version in $module/go.mod" >&2; exit 1; }
cache="${REV_TOOLS_CACHE:-$here/.cache}/vegeta-$version"
if [ ! -x "$cache/vegeta" ]; then
  command -v go >/dev/null || { echo "build-vegeta: needs Go (https://go.dev/dl/)" >&2; exit 1; }
  mkdir -p "$cache"
  started=$(date +%s)
  (cd "$module" && GOFLAGS=-mod=mod go build -trimpath -o "$cache/vegeta.tmp" github.com/tsenart/vegeta/v12)
  mv "$cache/vegeta.tmp" "$cache/vegeta"
  echo "build-vegeta: built vegeta $version in $(( $(date +%s) - started ))s" >&2
fi
echo "$cache/vegeta"
