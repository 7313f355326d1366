#!/usr/bin/env bash
# Checks what `make dist` produced, the way krew and the target machines will see it:
#   1. every plugin has an archive per platform, and each manifest's sha256 is its archive's;
#   2. krew's own validator (validate-krew-manifest, real krew) accepts every manifest;
#   3. the real krew installs every platform's archive from its manifest (KREW_OS/KREW_ARCH pick
#      the platform, as krew's validator does), yielding the binary, man page and LICENSE;
#   4. `file` says each binary is an executable for its platform; the linux/arm64 binaries print
#      --help under qemu-user (Debian's qemu-user, installed if missing).
#
#   release/check-dist.sh [DIST_DIR]   (default: dist/; $DIST_PLATFORMS: the platforms built,
#                                       default all five)
set -euo pipefail
RELEASE_DIR="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
ROOT="$(cd "$RELEASE_DIR/.." && pwd)"
# shellcheck source=targets.env
. "$RELEASE_DIR/targets.env"
dist="$(realpath "${1:-$ROOT/dist}")"
platforms="${DIST_PLATFORMS:-$PLATFORMS}"
log() { printf '[%s] %s\n' "$(date +%H:%M:%S)" "$*" >&2; }
fail() { log "FAIL: $*"; failures=$((failures + 1)); }
failures=0
cd "$ROOT"
mapfile -t plugins < <(grep -v '^[[:space:]]*\(#\|$\)' release/plugins.txt)
version="v$(sed -n '/^\[workspace.package\]/,/^\[/s/^version = "\(.*\)"/\1/p' Cargo.toml)"
tools="$(bash tests/tools/build-krew.sh)"
work="$(mktemp -d)"; trap 'rm -rf "$work"' EXIT

if ! command -v qemu-aarch64 >/dev/null; then
    log "installing qemu-user (apt-get), to run the linux/arm64 binaries"
    export DEBIAN_FRONTEND=noninteractive
    { apt-get update -qq && apt-get install -y -qq --no-install-recommends qemu-user >/dev/null; } ||
        log "qemu-user unavailable: the arm64 binaries are checked with file(1) only"
fi

# What file(1) must say of each platform's binaries.
expect_file() {
    case "$1" in
        linux/amd64) echo 'ELF 64-bit LSB .*x86-64.*statically linked' ;;
        linux/arm64) echo 'ELF 64-bit LSB .*ARM aarch64.*statically linked' ;;
        darwin/amd64) echo 'Mach-O 64-bit x86_64 executable' ;;
        darwin/arm64) echo 'Mach-O 64-bit arm64 executable' ;;
        windows/amd64) echo 'PE32\+ executable \(console\) x86-64.*MS Windows' ;;
    esac
}

for p in "${plugins[@]}"; do
    manifest="$dist/krew-manifests/plugins/$p.yaml"
    exe="kubectl-${p/-/_}"
    [[ -f "$manifest" ]] || { fail "$manifest missing"; continue; }
    if out="$("$tools/validate-krew-manifest" -manifest "$manifest" -skip-install 2>&1)"; then
        log "ok  krew validates $p.yaml"
    else
        fail "validate-krew-manifest $p.yaml: $out"
    fi
    for platform in $platforms; do
        os="${platform%/*}" arch="${platform#*/}" kind="tar.gz" ext=""
        [[ "$os" == windows ]] && kind="zip" ext=".exe"
        archive="$dist/${p}_${version}_${os}_${arch}.$kind"
        [[ -f "$archive" ]] || { fail "$archive missing"; continue; }
        actual="$(sha256sum "$archive" | cut -d' ' -f1)"
        # The sha256 line follows the uri line of this archive in the rendered manifest.
        listed="$(awk -v a="/$(basename "$archive")" 'index($0, a) && /uri:/ { getline; gsub(/[" ]|sha256:/, ""); print }' "$manifest")"
        [[ "$listed" == "$actual" ]] || fail "$p $platform: manifest sha256 '$listed' != archive $actual"

        root="$work/krew-$p-$os-$arch"
        if out="$(KREW_ROOT="$root" KREW_OS="$os" KREW_ARCH="$arch" KREW_NO_UPGRADE_CHECK=1 \
            "$tools/kubectl-krew" install --manifest="$manifest" --archive="$archive" 2>&1)"; then
            installed="$root/store/$p/$version"
            for f in "$exe$ext" "$exe.1" LICENSE; do
                [[ -f "$installed/$f" ]] || fail "$p $platform: krew installed no $f"
            done
            description="$(file -b "$installed/$exe$ext")"
            if grep -Eq "$(expect_file "$platform")" <<<"$description"; then
                log "ok  $p $platform: sha256 matches, krew installs it: $description"
            else
                fail "$p $platform: file(1) says '$description'"
            fi
            if [[ "$platform" == linux/arm64 ]] && command -v qemu-aarch64 >/dev/null; then
                if qemu-aarch64 "$installed/$exe" --help | grep -q "^Usage: kubectl $p"; then
                    log "ok  $p linux/arm64 prints --help under qemu-aarch64"
                else
                    fail "$p linux/arm64: no usage under qemu-aarch64"
                fi
            fi
        else
            fail "$p $platform: krew install: $out"
        fi
    done
done
((failures == 0)) || { log "$failures check(s) failed"; exit 1; }
log "dist checked: ${#plugins[@]} plugins × $(wc -w <<<"$platforms") platforms ($platforms)"
