#!/usr/bin/env python3
"""Writes a synthetic mesh as one `kubectl get -o json` List: N namespaces (half on 1-19, half
relabelled to 1-20), W Deployments with ReplicaSets, P pods (half of the moved namespaces'
pods still on 1-19), two istiod revisions with their injector webhooks.

    gen_dump.py OUT.json [namespaces=2000] [workloads=10000] [pods=50000]
"""
import json, sys

out = sys.argv[1]
n_ns, n_wl, n_pods = (int(a) for a in (sys.argv[2:5] + ["2000", "10000", "50000"][len(sys.argv[2:5]):]))

def status_ann(rev):
    return json.dumps({"initContainers": ["istio-init"], "containers": ["istio-proxy"], "volumes": ["istio-envoy"], "imagePullSecrets": None, "revision": rev})

def write_items(f):
    first = True
    def emit(obj):
        nonlocal first
        f.write(("" if first else ",\n") + json.dumps(obj, separators=(",", ":")))
        first = False
    for rev, ver in (("1-19", "1.19.3"), ("1-20", "1.20.2")):
        emit({"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": f"istiod-{rev}", "namespace": "istio-system", "labels": {"app": "istiod", "istio.io/rev": rev}},
              "spec": {"replicas": 2, "selector": {"matchLabels": {"app": "istiod"}}, "template": {"metadata": {"labels": {"app": "istiod"}}, "spec": {"containers": [{"name": "discovery", "image": f"docker.io/istio/pilot:{ver}"}]}}},
              "status": {"replicas": 2, "readyReplicas": 2, "availableReplicas": 2, "updatedReplicas": 2}})
        emit({"apiVersion": "admissionregistration.k8s.io/v1", "kind": "MutatingWebhookConfiguration",
              "metadata": {"name": f"istio-sidecar-injector-{rev}", "labels": {"app": "sidecar-injector", "istio.io/rev": rev}}, "webhooks": []})
    for i in range(n_ns):
        emit({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": f"team-{i:04d}", "labels": {"istio.io/rev": "1-20" if i % 2 else "1-19", "kubernetes.io/metadata.name": f"team-{i:04d}"}}})
    per_wl = max(1, n_pods // n_wl)
    for w in range(n_wl):
        ns = f"team-{w % n_ns:04d}"
        name = f"svc-{w:05d}"
        moved = (w % n_ns) % 2 == 1
        emit({"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": name, "namespace": ns, "labels": {"app": name}, "generation": 3},
              "spec": {"replicas": per_wl, "selector": {"matchLabels": {"app": name}}, "template": {"metadata": {"labels": {"app": name}},
                       "spec": {"containers": [{"name": "app", "image": "registry.example/app:1.0", "ports": [{"containerPort": 8080}], "resources": {"requests": {"cpu": "100m", "memory": "128Mi"}}}]}}},
              "status": {"observedGeneration": 3, "replicas": per_wl, "updatedReplicas": per_wl, "readyReplicas": per_wl, "availableReplicas": per_wl}})
        emit({"apiVersion": "apps/v1", "kind": "ReplicaSet", "metadata": {"name": f"{name}-5c9f8", "namespace": ns, "ownerReferences": [{"apiVersion": "apps/v1", "kind": "Deployment", "name": name, "uid": f"u{w}", "controller": True}]}, "spec": {"selector": {"matchLabels": {"app": name}}}})
        for p in range(per_wl):
            rev = "1-19" if (not moved or (w + p) % 2 == 0) else "1-20"
            ver = "1.19.3" if rev == "1-19" else "1.20.2"
            emit({"apiVersion": "v1", "kind": "Pod",
                  "metadata": {"name": f"{name}-5c9f8-{p:05d}", "namespace": ns, "labels": {"app": name, "pod-template-hash": "5c9f8", "security.istio.io/tlsMode": "istio", "service.istio.io/canonical-name": name},
                               "annotations": {"sidecar.istio.io/status": status_ann(rev), "istio.io/rev": rev, "kubectl.kubernetes.io/default-container": "app", "prometheus.io/port": "15020"},
                               "ownerReferences": [{"apiVersion": "apps/v1", "kind": "ReplicaSet", "name": f"{name}-5c9f8", "uid": f"r{w}", "controller": True}]},
                  "spec": {"containers": [{"name": "app", "image": "registry.example/app:1.0", "ports": [{"containerPort": 8080}]},
                                          {"name": "istio-proxy", "image": f"docker.io/istio/proxyv2:{ver}", "args": ["proxy", "sidecar", "--domain", "$(POD_NAMESPACE).svc.cluster.local"],
                                           "env": [{"name": "PROXY_CONFIG", "value": json.dumps({"discoveryAddress": f"istiod-{rev}.istio-system.svc:15012"})}, {"name": "ISTIO_META_CLUSTER_ID", "value": "Kubernetes"}]}],
                           "initContainers": [{"name": "istio-init", "image": f"docker.io/istio/proxyv2:{ver}"}]},
                  "status": {"phase": "Running", "conditions": [{"type": "Ready", "status": "True"}]}})

with open(out, "w") as f:
    f.write('{"apiVersion":"v1","kind":"List","metadata":{},"items":[\n')
    write_items(f)
    f.write("\n]}\n")
