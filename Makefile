# Local test cluster (tests/cluster/): real Kubernetes control plane on loopback, kwok nodes,
# real Istio charts via real helm, rev-test-injector for the webhooks. See tests/cluster/*.sh.
# Other targets (demo, demo-down, test, ...) can build on these; each script is idempotent.

CLUSTER := tests/cluster

.PHONY: cluster-build cluster-up cluster-down cluster-status scenario scenario-old scenario-bookinfo scenario-new cluster-smoke

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
