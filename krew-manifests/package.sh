#!/usr/bin/env bash
# Builds each plugin's krew archive (binary + LICENSE) for the given Rust targets and writes the
# archives' sha256 into krew-manifests/plugins/*.yaml. Cross targets need their toolchains.
#   krew-manifests/package.sh [x86_64-unknown-linux-gnu ...]   (default: the host)
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"
targets=("$@")
[ ${#targets[@]} -gt 0 ] || targets=("$(rustc -vV | sed -n 's/^host: //p')")
mkdir -p dist
for target in "${targets[@]}"; do
  case "$target" in
    x86_64-unknown-linux-*) os=linux arch=amd64 ext=tar.gz exe= ;;
    aarch64-unknown-linux-*) os=linux arch=arm64 ext=tar.gz exe= ;;
    x86_64-apple-darwin) os=darwin arch=amd64 ext=tar.gz exe= ;;
    aarch64-apple-darwin) os=darwin arch=arm64 ext=tar.gz exe= ;;
    x86_64-pc-windows-*) os=windows arch=amd64 ext=zip exe=.exe ;;
    *) echo "unsupported target $target" >&2; exit 1 ;;
  esac
  cargo build --release --target "$target" --workspace
  for manifest in krew-manifests/plugins/*.yaml; do
    plugin=$(basename "$manifest" .yaml)            # rev-inventory
    bin="kubectl-${plugin/-/_}$exe"                  # kubectl-rev_inventory
    stage=$(mktemp -d)
    cp "target/$target/release/$bin" LICENSE "$stage/"
    archive="dist/${plugin}_${os}_${arch}.$ext"
    if [ "$ext" = zip ]; then (cd "$stage" && zip -q "$root/$archive" "$bin" LICENSE)
    else tar -C "$stage" -czf "$archive" "$bin" LICENSE; fi
    rm -rf "$stage"
    sum=$(sha256sum "$archive" | cut -d' ' -f1)
    # The sha256 line follows the uri line of this platform's archive.
    sed -i "\|/${plugin}_${os}_${arch}\.$ext\$|{n;s/sha256: \".*\"/sha256: \"$sum\"/}" "$manifest"
    echo "$archive $sum"
  done
done
