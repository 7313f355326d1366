#!/usr/bin/env bash
# Installs what `make dist` needs to cross-build every platform from one Linux machine, from the
# package registries only (idempotent; a second run only checks):
#   - Rust std for each release target (rustup),
#   - zig, the cross linker/C compiler, from the `ziglang` PyPI package (pip),
#   - cargo-zigbuild, which drives cargo with zig as linker (crates.io, built by cargo install),
#   - zip, for the Windows archives (Debian).
set -euo pipefail
. "$(dirname "${BASH_SOURCE[0]}")/targets.env"
log() { printf '[%s] %s\n' "$(date +%H:%M:%S)" "$*" >&2; }

# shellcheck disable=SC2086  # RUST_TARGETS is a list
rustup target add $RUST_TARGETS >/dev/null 2>&1 || rustup target add $RUST_TARGETS

if [[ "$(python3 -m ziglang version 2>/dev/null)" != "$ZIG_VERSION" ]]; then
    log "installing ziglang==$ZIG_VERSION (pip)"
    python3 -m pip install -q --disable-pip-version-check --root-user-action=ignore "ziglang==$ZIG_VERSION"
fi

if [[ "$(cargo-zigbuild --version 2>/dev/null)" != "cargo-zigbuild $CARGO_ZIGBUILD_VERSION" ]]; then
    log "installing cargo-zigbuild $CARGO_ZIGBUILD_VERSION (cargo install; ~2 min on 2 cores)"
    cargo install -q --locked cargo-zigbuild --version "$CARGO_ZIGBUILD_VERSION"
fi

if ! command -v zip >/dev/null; then
    log "installing zip (apt-get)"
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq && apt-get install -y -qq --no-install-recommends zip >/dev/null
fi
log "cross toolchain ready: $(cargo-zigbuild --version), zig $(python3 -m ziglang version)"
