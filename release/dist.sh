#!/usr/bin/env bash
# A release, as one command (`make dist`): every plugin of release/plugins.txt for every platform
# of release/targets.env, cross-built with cargo-zigbuild, packed as krew archives (binary, man
# page, LICENSE; .tar.gz, .zip for Windows), checksums, and the krew manifests rendered from
# krew-manifests/templates/ with each archive's sha256 and release URI.
#
#   release/dist.sh [--platforms "linux/amd64 …"] [--out DIR] [--prebuilt DIR] [--update-index]
#
#   --platforms    a subset of the release platforms (default: $DIST_PLATFORMS, else all five)
#   --out          where archives, checksums.txt and krew-manifests/ go (default: dist/)
#   --prebuilt DIR package the executables already in DIR (a debug build) for this machine's
#                  platform instead of building: stripped copies, fast compression. The krew e2e
#                  packs the host build this way, through the same packaging code; nothing is
#                  compiled
#   --update-index also copy the rendered manifests into krew-manifests/plugins/ (make dist)
#   --manifests-only render the manifests with placeholder sha256 (all zeros), building nothing:
#                  for a template edit between releases; make dist writes the real values
#
# Env: REV_RELEASE_REPO=owner/repo for the URIs and homepage (default: Cargo.toml's repository);
# SOURCE_DATE_EPOCH (default: the commit's time) fixes build dates and archive timestamps, so the
# same commit gives byte-identical archives.
set -euo pipefail
RELEASE_DIR="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
ROOT="$(cd "$RELEASE_DIR/.." && pwd)"
# shellcheck source=targets.env
. "$RELEASE_DIR/targets.env"
log() { printf '[%s] %s\n' "$(date +%H:%M:%S)" "$*" >&2; }
die() { log "ERROR: $*"; exit 1; }

# krew's os/arch of this machine: the only platform --prebuilt can package.
host_platform() {
    case "$(uname -s)/$(uname -m)" in
        Linux/x86_64) echo linux/amd64 ;;
        Linux/aarch64) echo linux/arm64 ;;
        *) die "--prebuilt packages a Linux build; this is $(uname -s)/$(uname -m)" ;;
    esac
}

platforms="${DIST_PLATFORMS:-$PLATFORMS}" out="$ROOT/dist" prebuilt="" update_index=0 manifests_only=0
while (($#)); do
    case "$1" in
        --platforms) platforms="$2"; shift 2 ;;
        --out) out="$(realpath -m "$2")"; shift 2 ;;
        --prebuilt) prebuilt="$(realpath "$2")"; platforms="$(host_platform)"; shift 2 ;;
        --update-index) update_index=1; shift ;;
        --manifests-only) manifests_only=1; shift ;;
        *) die "unknown argument $1 (see the header of $0)" ;;
    esac
done
cd "$ROOT"

mapfile -t plugins < <(grep -v '^[[:space:]]*\(#\|$\)' release/plugins.txt)
version="v$(sed -n '/^\[workspace.package\]/,/^\[/s/^version = "\(.*\)"/\1/p' Cargo.toml)"
repo_url="$(sed -n '/^\[workspace.package\]/,/^\[/s/^repository = "\(.*\)"/\1/p' Cargo.toml)"
repo="${REV_RELEASE_REPO:-${repo_url#https://github.com/}}"
[[ "$repo" =~ ^[A-Za-z0-9_.-]+/[A-Za-z0-9_.-]+$ ]] || die "REV_RELEASE_REPO must be owner/repo, not '$repo'"
homepage="https://github.com/$repo"
uri_base="$homepage/releases/download/$version"

# What --version reports. The date is the commit's unless SOURCE_DATE_EPOCH says otherwise, so
# rebuilding a commit reproduces its archives.
commit="$(git rev-parse --short=12 HEAD 2>/dev/null || echo unknown)"
[[ -z "$(git status --porcelain --untracked-files=no 2>/dev/null)" ]] || commit="$commit-dirty"
export SOURCE_DATE_EPOCH="${SOURCE_DATE_EPOCH:-$(git log -1 --format=%ct 2>/dev/null || date +%s)}"
build_date="$(date -u -d "@$SOURCE_DATE_EPOCH" +%Y-%m-%dT%H:%M:%SZ)"
export REV_GIT_COMMIT="$commit" REV_BUILD_DATE="$build_date"

exe_of() { local p="$1"; echo "kubectl-${p/-/_}"; }   # rev-inventory → kubectl-rev_inventory
target_of() { local v="TARGET_${1/\//_}"; echo "${!v:-}"; }

# The darwin builds link Apple's Security and CoreFoundation frameworks (security-framework-sys,
# through kube's rustls-platform-verifier and rustls-native-certs). zig ships libSystem's stubs
# but no framework stubs, so without a macOS SDK the link fails after every crate is compiled
# ("unable to find framework 'Security'"): say so before building anything.
if ((!manifests_only)) && [[ -z "$prebuilt" && " $platforms " == *" darwin/"* ]]; then
    [[ -n "${SDKROOT:-}${DEVELOPER_DIR:-}" ]] ||
        die "darwin builds need a macOS SDK (Security and CoreFoundation frameworks): set SDKROOT=/path/to/MacOSX.sdk (from Xcode; cargo-zigbuild passes it to zig), or leave darwin out: --platforms \"linux/amd64 linux/arm64 windows/amd64\" (make dist DIST_PLATFORMS=…)"
fi

rm -rf "$out"; mkdir -p "$out/krew-manifests/plugins"
work="$(mktemp -d)"; trap 'rm -rf "$work"' EXIT
T0=$(date +%s)

if ((manifests_only)); then
    for platform in $platforms; do
        os="${platform%/*}" arch="${platform#*/}" kind="tar.gz"; [[ "$os" == windows ]] && kind="zip"
        for p in "${plugins[@]}"; do
            echo "$(printf '0%.0s' {1..64})  ${p}_${version}_${os}_${arch}.$kind"
        done
    done >"$out/checksums.txt"
fi

if ((!manifests_only)); then
# --- build ------------------------------------------------------------------------------------
# bins/<os>_<arch>/ holds each platform's executables.
for platform in $platforms; do
    target="$(target_of "$platform")"
    [[ -n "$target" ]] || die "unknown platform $platform (release/targets.env: $PLATFORMS)"
    dir="$work/bins/${platform/\//_}"; mkdir -p "$dir"
    ext=""; [[ "$platform" == windows/* ]] && ext=".exe"
    if [[ -n "$prebuilt" ]]; then
        src="$prebuilt"
    else
        command -v cargo-zigbuild >/dev/null || die "cargo-zigbuild is missing: run release/install-cross.sh"
        t=$(date +%s)
        log "building $platform ($target)"
        pkgs=(); for p in "${plugins[@]}"; do pkgs+=(-p "$p"); done
        REV_BUILD_TARGET="$target" cargo zigbuild --release --locked --target "$target" "${pkgs[@]}"
        src="${CARGO_TARGET_DIR:-$ROOT/target}/$target/release"
        log "built $platform in $(( $(date +%s) - t ))s"
    fi
    for p in "${plugins[@]}"; do
        bin="$(exe_of "$p")$ext"
        [[ -f "$src/$bin" ]] || die "$src/$bin was not built"
        install -m 0755 "$src/$bin" "$dir/$bin"
        # A debug build carries line tables: a fifth of the size without them, as krew users
        # get from the release profile (strip = true).
        [[ -z "$prebuilt" ]] || strip "$dir/$bin"
    done
done

# --- man pages: the same for every platform, rendered by a binary this machine runs ----------
host_bins="$work/bins/linux_amd64"
[[ -d "$host_bins" ]] || die "the man pages are rendered by the linux/amd64 build: include linux/amd64"
mkdir -p "$work/man"
for p in "${plugins[@]}"; do
    "$host_bins/$(exe_of "$p")" --generate-man >"$work/man/$(exe_of "$p").1"
done

# --- archives -----------------------------------------------------------------------------------
# Releases are compressed hard once; a test's archive is unpacked once, right away.
level=9; [[ -z "$prebuilt" ]] || level=1
touch -d "@$SOURCE_DATE_EPOCH" "$work/man"/*.1
for platform in $platforms; do
    os="${platform%/*}" arch="${platform#*/}"
    for p in "${plugins[@]}"; do
        exe="$(exe_of "$p")"; ext=""; [[ "$os" == windows ]] && ext=".exe"
        stage="$work/stage/$p-$os-$arch"; mkdir -p "$stage"
        install -m 0755 "$work/bins/${os}_$arch/$exe$ext" "$stage/$exe$ext"
        install -m 0644 "$work/man/$exe.1" "$stage/$exe.1"
        install -m 0644 LICENSE "$stage/LICENSE"
        touch -d "@$SOURCE_DATE_EPOCH" "$stage"/*
        if [[ "$os" == windows ]]; then
            archive="${p}_${version}_${os}_${arch}.zip"
            (cd "$stage" && TZ=UTC zip -q -X "-$level" "$out/$archive" "$exe$ext" "$exe.1" LICENSE)
        else
            archive="${p}_${version}_${os}_${arch}.tar.gz"
            tar -C "$stage" --sort=name --owner=0 --group=0 --numeric-owner \
                --mtime="@$SOURCE_DATE_EPOCH" -cf - "$exe" "$exe.1" LICENSE | gzip -n "-$level" >"$out/$archive"
        fi
    done
done
(cd "$out" && shopt -s nullglob && sha256sum -- *.tar.gz *.zip | sort -k2 >checksums.txt)

fi

# --- krew manifests -------------------------------------------------------------------------------
for p in "${plugins[@]}"; do
    template="krew-manifests/templates/$p.yaml"
    [[ -f "$template" ]] || die "$template is missing (one template per plugin of release/plugins.txt)"
    exe="$(exe_of "$p")"
    entries="$work/platforms-$p.yaml"; : >"$entries"
    for platform in $platforms; do
        os="${platform%/*}" arch="${platform#*/}" ext="" kind="tar.gz"
        [[ "$os" == windows ]] && ext=".exe" kind="zip"
        archive="${p}_${version}_${os}_${arch}.$kind"
        sum="$(awk -v a="$archive" '$2 == a { print $1 }' "$out/checksums.txt")"
        cat >>"$entries" <<EOF
  - selector:
      matchLabels:
        os: $os
        arch: $arch
    uri: $uri_base/$archive
    sha256: "$sum"
    files:
    - from: $exe$ext
      to: .
    - from: $exe.1
      to: .
    - from: LICENSE
      to: .
    bin: $exe$ext
EOF
    done
    # The template's own comment says how it is made; the rendered file says where it came from.
    {
        echo "# Rendered by release/dist.sh from krew-manifests/templates/$p.yaml: edit the template."
        sed -e '/^#/d' -e "s|@VERSION@|$version|" -e "s|@HOMEPAGE@|$homepage|" "$template" |
            awk -v entries="$entries" '$0 == "@PLATFORMS@" { while ((getline l < entries) > 0) print l; next } { print }'
    } >"$out/krew-manifests/plugins/$p.yaml"
done
if ((update_index)); then
    # krew-manifests/ is what users install from: every release platform, or none changed.
    [[ "$(tr ' ' '\n' <<<"$platforms" | sort)" == "$(tr ' ' '\n' <<<"$PLATFORMS" | sort)" ]] ||
        die "--update-index needs every release platform ($PLATFORMS), not: $platforms"
    cp "$out"/krew-manifests/plugins/*.yaml krew-manifests/plugins/
    log "krew-manifests/plugins/ updated for $version ($repo)"
fi
log "dist: ${#plugins[@]} plugins × $(wc -w <<<"$platforms") platforms in $out ($(( $(date +%s) - T0 ))s)"
cat "$out/checksums.txt"
