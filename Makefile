# Local test cluster (tests/cluster/): real Kubernetes control plane on loopback, kwok nodes,
# real Istio charts via real helm, rev-test-injector for the webhooks. See tests/cluster/*.sh.
# Other targets (demo, demo-down, test, ...) can build on these; each script is idempotent.

CLUSTER := tests/cluster
# The plugins, from the one list release/dist.sh, the krew manifests and the tests read too.
PLUGINS := $(shell grep -v '^\s*\(\#\|$$\)' release/plugins.txt)
PLUGIN_EXES := $(foreach p,$(PLUGINS),kubectl-$(subst rev-,rev_,$(p)))

.PHONY: test unit e2e e2e-krew demo demo-down plugins dist cross-tools bench lint cluster-build cluster-up cluster-down cluster-status scenario scenario-old scenario-bookinfo scenario-new cluster-smoke

## cluster-build: build/cached binaries, Istio charts and the test injector
cluster-build:
	bash $(CLUSTER)/build.sh

## cluster-up: start the local cluster (prints the admin kubeconfig path)
cluster-up: cluster-build
	bash $(CLUSTER)/cluster.sh up

## cluster-down: stop everything cluster-up started and delete its state
cluster-down:
	bash $(CLUSTER)/cluster.sh down

cluster-status:
	bash $(CLUSTER)/cluster.sh status

## scenario: old revision + Bookinfo + new revision installed side by side (guide steps 1-3)
scenario: cluster-up
	bash $(CLUSTER)/scenario.sh all

scenario-old scenario-bookinfo scenario-new: scenario-%: cluster-up
	bash $(CLUSTER)/scenario.sh $*

## cluster-smoke: check the scenario behaves like Istio (run right after `make scenario`)
cluster-smoke:
	bash $(CLUSTER)/smoke.sh

# ---------------------------------------------------------------------------------------------
# The suite

## test: everything CI runs after lint: unit, fixture, mock and CLI snapshot tests, then the
## end-to-end suite on a fresh local control plane
test: unit e2e

## unit: tests that need no cluster
unit:
	cargo test --workspace

## e2e: the upgrade guide end to end on the local control plane (builds it on first use)
# Built and run with the same feature set as `make unit` (--workspace, tests), so nothing is
# compiled twice: the plugin executables the e2e suite runs come from that build.
e2e: cluster-build
	cargo test --workspace --no-run
	cargo build --profile fastbuild -p rev-inventory
	cargo test --workspace -- --ignored --test-threads=1; rc=$$?; bash $(CLUSTER)/cluster.sh down >/dev/null 2>&1; exit $$rc

## e2e-krew: only the krew e2e (part of `make e2e`): the real krew installs each plugin from its
## archive, kubectl completes through it
e2e-krew: cluster-build
	cargo test --workspace --test krew -- --ignored --test-threads=1

## lint: formatting and clippy, as CI runs them
lint:
	cargo fmt --all --check
	cargo clippy --workspace --all-targets -- -D warnings

## plugins: the plugin executables in target/plugins (cargo's .d files in target/debug make
## `kubectl plugin list` warn); put that directory on PATH
plugins:
	cargo build --workspace
	mkdir -p target/plugins && cp $(addprefix target/debug/,$(PLUGIN_EXES)) target/plugins/

## dist: release archives of every plugin for linux/darwin amd64/arm64 and windows/amd64, their
## checksums and krew manifests in dist/, checked with the real krew (release/check-dist.sh);
## krew-manifests/plugins/ updated with the real sha256. REV_RELEASE_REPO=owner/repo sets the
## download URIs; darwin needs SDKROOT (a macOS SDK); DIST_PLATFORMS="linux/amd64 …" builds a
## subset into dist/ only.
dist: cross-tools
	DIST_PLATFORMS="$(DIST_PLATFORMS)" bash release/dist.sh $(if $(DIST_PLATFORMS),,--update-index)
	DIST_PLATFORMS="$(DIST_PLATFORMS)" bash release/check-dist.sh

## cross-tools: rustup targets, zig (PyPI ziglang) and cargo-zigbuild for make dist
cross-tools:
	bash release/install-cross.sh

## demo: build, start the local cluster, install the scenario and walk the upgrade guide with the
## four plugins; leaves the cluster up and prints its kubeconfig
demo: cluster-build plugins
	bash $(CLUSTER)/demo.sh

## demo-down: stop the demo cluster
demo-down: cluster-down

## bench: live rev-inventory beside the kubectl pipeline and the API floor on a populated local
## cluster (BENCH_SCALE=small: 400 namespaces / 2,000 Deployments / 10,000 pods; large: 2,000 /
## 10,000 / 50,000), then --from-file on a 70 MB dump. Figures, not pass/fail.
BENCH_SCALE ?= small
bench: cluster-build
	python3 tests/bench/live.py --scale $(BENCH_SCALE) --readme
	bash tests/bench/inventory_from_file.sh
