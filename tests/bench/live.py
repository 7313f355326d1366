#!/usr/bin/env python3
"""Live benchmark (issue 12): `kubectl rev-inventory -o json` against a populated local control
plane, side by side, in one run, with what a user would otherwise run and with the floor.

  tests/bench/live.py [--scale small|large|N,D,R] [--runs 3] [--keep] [--resume] [--readme]

Scales (namespaces, Deployments per namespace, replicas): small = 400 / 2,000 / 10,000 pods,
large = 2,000 / 10,000 / 50,000 pods (opt-in: `make bench BENCH_SCALE=large`), or any N,D,R.

1. A fresh cluster (tests/cluster/cluster.sh, its own state dir under target/bench/), both Istio
   revisions installed by tests/cluster/scenario.sh (old + new), then N namespaces labelled for
   the old revision with D Deployments of R replicas each: every pod goes through the real
   webhooks to the injector. Half the namespaces are then relabelled to the new revision, so
   drift exists. kwok starts the bench pods at once (per-pod stage delay 0 ms).
2. Each measured --runs times, alternated, with wall time (min/median/max), peak RSS, requests
   and bytes as the API server counts them (its audit log of gets and lists, and the
   apiserver_response_sizes metric; bytes are what it serialised, before any compression):
   - inventory: the rev-inventory executable (what `kubectl rev-inventory` execs), -o json;
   - pipeline: `kubectl get ns -L istio.io/rev` then `kubectl get pods -A -o json | jq` grouping
     pods by namespace and sidecar revision (peak memory: kubectl + jq, which run together);
   - floor: the very lists rev-inventory sent (replayed from the audit log: same paths,
     selectors and page size, metadata-only where it asked so), raw, in parallel, discarded;
   - restart-ns: `rev-restart <one namespace> --dry-run=client`, what a namespaced command reads.
   Then rev-restart's own overhead, for real: --restart-workloads drifted Deployments (100 by
   default, five per relabelled namespace) restarted at --max-parallel 1, and as many others at
   4: wall time per workload beside the rollouts' own seconds (each verified).
3. A table with the ratios, also written to target/bench/live-<scale>.json (and with --readme
   as Markdown rows to target/bench/live-<scale>.md); when both scales' results exist, growth.

The plugins are the `fastbuild` profile (release code generation without LTO; see Cargo.toml)
unless --plugins names a directory of built executables.
"""
import argparse
import gzip
import http.client
import json
import os
import shutil
import ssl
import statistics
import subprocess
import sys
import threading
import time
import urllib.parse
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
CLUSTER = ROOT / "tests" / "cluster"
OUT = ROOT / "target" / "bench"
SCALES = {"small": (400, 5, 5), "large": (2000, 5, 5)}
# The executables measured: the fastbuild profile unless --plugins names others.
PLUGINS = ROOT / "target" / "fastbuild"
# System clients whose reads are not the benchmark's (the cluster runs while we measure).
SYSTEM_AGENTS = ("kube-controller-manager", "kube-scheduler", "kwok", "kube-apiserver", "rev-test-injector",
                 "rev-bench-metrics")
METADATA_ACCEPT = "application/json;as=PartialObjectMetadataList;g=meta.k8s.io;v=v1"
JQ_GROUPING = (
    '[.items[] | {ns: .metadata.namespace, rev: ((.metadata.annotations // {})["sidecar.istio.io/status"]'
    ' // "" | if . == "" then "none" else (fromjson | .revision // "default") end)}]'
    " | group_by([.ns, .rev]) | map({namespace: .[0].ns, revision: .[0].rev, pods: length})"
)


def log(msg):
    print(f"[{time.strftime('%H:%M:%S')}] {msg}", file=sys.stderr, flush=True)


def sh(*args, env=None, stdin=None, capture=True):
    res = subprocess.run(args, env=env, input=stdin, capture_output=capture, text=True)
    if res.returncode != 0:
        sys.exit(f"{' '.join(map(str, args))} failed ({res.returncode}):\n{res.stderr}")
    return res.stdout


class Api:
    """The admin client the floor and the counters use: TLS with the cluster's client cert."""

    def __init__(self, state: Path, compressed=False):
        # compressed: ask for gzip bodies, as kube-rs and client-go do (and decompress them).
        self.compressed = compressed
        ports = dict(l.split("=", 1) for l in (state / "ports.env").read_text().split() if "=" in l)
        self.port = int(ports["API_PORT"])
        pki = state / "pki"
        self.ctx = ssl.create_default_context(cafile=str(pki / "ca.crt"))
        self.ctx.load_cert_chain(str(pki / "admin.crt"), str(pki / "admin.key"))

    def conn(self):
        return http.client.HTTPSConnection("127.0.0.1", self.port, context=self.ctx, timeout=120)

    def get(self, conn, path, accept="application/json", agent="rev-bench-floor"):
        headers = {"Accept": accept, "User-Agent": agent}
        if self.compressed:
            headers["Accept-Encoding"] = "gzip"
        conn.request("GET", path, headers=headers)
        resp = conn.getresponse()
        body = resp.read()
        if resp.status != 200:
            sys.exit(f"GET {path}: {resp.status} {body[:300]!r}")
        return gzip.decompress(body) if resp.getheader("Content-Encoding") == "gzip" else body

    def served_bytes(self):
        """Sum of apiserver_response_sizes over gets and lists so far: bytes as sent, gzipped
        for clients that accept it (rev-inventory and kubectl do; the floor does not)."""
        c = self.conn()
        text = self.get(c, "/metrics", "text/plain", agent="rev-bench-metrics").decode()
        total = 0.0
        for line in text.splitlines():
            if line.startswith("apiserver_response_sizes_sum{") and ('verb="LIST"' in line or 'verb="GET"' in line):
                total += float(line.rsplit(" ", 1)[1])
        return total


# ---------------------------------------------------------------------------------------------
# the cluster


NODE_PODS = 250  # the most pods a node takes on the large managed offerings (AKS, GKE: 256)


def cluster_env(state: Path, scale=None):
    env = dict(os.environ)
    # Profiling on: tests/bench/profile_live.py reads the API server's CPU profile on a kept cluster.
    env.update(REV_CLUSTER_STATE=str(state), REV_CLUSTER_AUDIT="1", REV_CLUSTER_CONTROLLER_QPS="500",
               REV_CLUSTER_PROFILING="1")
    if scale:
        pods = scale[0] * scale[1] * scale[2]
        # Room for every bench pod, plus the 3 nodes' worth istiod and the gateways use.
        env.update(REV_CLUSTER_NODES=str(-(-pods // NODE_PODS) + 3), REV_CLUSTER_NODE_PODS=str(NODE_PODS))
    return env


def create(kubectl, chunk):
    """`kubectl create` of a List; on a resumed populate the objects already there are fine."""
    res = subprocess.run([*kubectl, "create", "-f", "-"], input=json.dumps(chunk), capture_output=True, text=True)
    failures = [l for l in res.stderr.splitlines() if l.strip() and "AlreadyExists" not in l and "already exists" not in l]
    if res.returncode != 0 and failures:
        sys.exit("kubectl create failed:\n" + "\n".join(failures))


def bring_up(state: Path, scale, resume=False):
    env = cluster_env(state, scale)
    t0 = time.monotonic()
    if not resume:
        sh("bash", str(CLUSTER / "cluster.sh"), "up", env=env, capture=False)
        sh("bash", str(CLUSTER / "scenario.sh"), "old", env=env, capture=False)
        sh("bash", str(CLUSTER / "scenario.sh"), "new", env=env, capture=False)
        log(f"cluster with both revisions in {time.monotonic() - t0:.0f} s")
    versions = dict(
        l.split("=", 1) for l in (CLUSTER / "versions.env").read_text().splitlines() if "=" in l and not l.startswith("#")
    )
    old, new = (versions[k].strip('"') for k in ("OLD_REV", "NEW_REV"))
    namespaces, per_ns, replicas = scale
    t0 = time.monotonic()
    kubectl = kubectl_cmd(state)
    docs = []
    for i in range(namespaces):
        ns = f"bench-{i:04d}"
        docs.append({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": ns, "labels": {"istio.io/rev": old}}})
        for d in range(per_ns):
            app = f"app-{d}"
            docs.append({
                "apiVersion": "apps/v1", "kind": "Deployment",
                "metadata": {"name": app, "namespace": ns},
                "spec": {
                    "replicas": replicas,
                    "selector": {"matchLabels": {"app": app}},
                    "template": {
                        "metadata": {
                            "labels": {"app": app},
                            # kwok starts these at once: the benchmark measures reads, not start-ups.
                            "annotations": {
                                "pod-ready.stage.kwok.x-k8s.io/delay": "0ms",
                                "pod-ready.stage.kwok.x-k8s.io/jitter-delay": "0ms",
                            },
                        },
                        "spec": {"containers": [{"name": "app", "image": "registry.local/bench:1"}]},
                    },
                },
            })
    # In chunks: one kubectl per ~500 objects keeps its memory and a failure's blast small.
    for start in range(0, len(docs), 500):
        chunk = {"apiVersion": "v1", "kind": "List", "items": docs[start:start + 500]}
        create(kubectl, chunk)
    want = namespaces * per_ns * replicas
    # At the large scale the API server admits ~15 pods/s on 2 cores: give it time, and poll
    # less often (each poll lists every Deployment).
    deadline, poll = max(3600, want / 5), max(10, want // 2000)
    while True:
        out = sh(*kubectl, "get", "deploy", "-A", "-l", "!istio.io/rev", "--chunk-size=2000",
                 "-o", "jsonpath={range .items[*]}{.metadata.namespace} {.status.availableReplicas}{'\\n'}{end}")
        ready = sum(int(f[1]) for f in (l.split() for l in out.splitlines()) if f[0].startswith("bench-") and len(f) > 1)
        log(f"{ready}/{want} bench pods available")
        if ready >= want:
            break
        if time.monotonic() - t0 > deadline:
            sys.exit(f"bench pods not available after {deadline / 60:.0f} min")
        time.sleep(poll)
    moved = [f"bench-{i:04d}" for i in range(0, namespaces, 2)]
    for start in range(0, len(moved), 200):
        sh(*kubectl, "label", "ns", "--overwrite", *moved[start:start + 200], f"istio.io/rev={new}")
    log(f"populated {namespaces} namespaces, {namespaces * per_ns} Deployments, {want} pods in "
        f"{time.monotonic() - t0:.0f} s; {len(moved)} namespaces relabelled to {new}")


def kubectl_cmd(state: Path):
    return [str(bin_dir() / "kubectl"), "--kubeconfig", str(state / "admin.kubeconfig")]


def bin_dir():
    """The cached Go binaries (kubectl among them): lib.sh knows the cache key."""
    return Path(sh("bash", "-c", f'. "{CLUSTER}/lib.sh" && echo "$BIN"').strip())


# ---------------------------------------------------------------------------------------------
# measuring


class AuditLog:
    """Requests the API server answered (gets and lists), read from its audit log."""

    def __init__(self, path: Path):
        self.path = path

    def mark(self):
        return self.path.stat().st_size

    def events_since(self, offset):
        with open(self.path, "rb") as f:
            f.seek(offset)
            events = [json.loads(l) for l in f if l.strip()]
        return [e for e in events if not e.get("userAgent", "").startswith(SYSTEM_AGENTS)]


def timed(cmd, env, stdout=subprocess.DEVNULL):
    """Runs cmd under GNU time: (wall seconds, peak RSS KiB)."""
    tf = OUT / "time.out"
    t0 = time.monotonic()
    res = subprocess.run(["/usr/bin/time", "-f", "%M", "-o", str(tf), *cmd], env=env, stdout=stdout,
                         stderr=subprocess.PIPE, text=True)
    wall = time.monotonic() - t0
    if res.returncode != 0:
        sys.exit(f"{' '.join(cmd)} exited {res.returncode}:\n{res.stderr[-2000:]}")
    return wall, int(tf.read_text().split()[-1])


def pipeline(env, kubectl):
    """The guide's way: namespaces with their label, every pod as JSON through jq."""
    t_ns, t_pods, t_jq = (OUT / f"time.{n}" for n in ("ns", "pods", "jq"))
    k = " ".join(kubectl)
    script = (
        f"/usr/bin/time -f %M -o {t_ns} {k} get ns -L istio.io/rev >/dev/null && "
        f"/usr/bin/time -f %M -o {t_pods} {k} get pods -A -o json | "
        f"/usr/bin/time -f %M -o {t_jq} jq -c '{JQ_GROUPING}' >/dev/null"
    )
    t0 = time.monotonic()
    res = subprocess.run(["bash", "-o", "pipefail", "-c", script], env=env, stderr=subprocess.PIPE, text=True)
    wall = time.monotonic() - t0
    if res.returncode != 0:
        sys.exit(f"pipeline failed:\n{res.stderr[-2000:]}")
    peak = lambda p: int(p.read_text().split()[-1])
    # kubectl and jq run side by side: their peaks add up.
    return wall, max(peak(t_ns), peak(t_pods) + peak(t_jq))


def first_pages(events):
    """The lists a run started (its continue requests are followed again by the floor)."""
    out = []
    for e in events:
        if e.get("verb") != "list":
            continue
        uri = e["requestURI"]
        query = urllib.parse.parse_qs(urllib.parse.urlsplit(uri).query)
        if "continue" not in query and "watch" not in query:
            out.append(uri)
    return out


def is_metadata_only(uri):
    # What the reader asks metadata-only (shared/src/snapshot/live.rs): pods, ReplicaSets and the
    # revision config kinds (Istio's groups, Gateway API, RBAC with istio.io/rev).
    path = urllib.parse.urlsplit(uri).path
    return path.endswith(("/pods", "/replicasets")) or ".istio.io/" in path or "gateway.networking.k8s.io" in path \
        or "rbac.authorization.k8s.io" in path


def floor(state: Path, uris, compressed=False):
    """Sends each list with its pages, in parallel across lists, and discards the bodies."""
    api = Api(state, compressed)

    def one(uri):
        c = api.conn()
        next_uri = uri
        while next_uri:
            body = api.get(c, next_uri, METADATA_ACCEPT if is_metadata_only(uri) else "application/json")
            token = json.loads(body).get("metadata", {}).get("continue")
            if not token:
                break
            parts = urllib.parse.urlsplit(uri)
            q = urllib.parse.parse_qsl(parts.query) + [("continue", token)]
            next_uri = parts.path + "?" + urllib.parse.urlencode(q)

    threads = [threading.Thread(target=one, args=(u,)) for u in uris]
    for t in threads:
        t.start()
    for t in threads:
        t.join()


def summarise(samples):
    walls = sorted(s["wall"] for s in samples)
    return {
        "wall_min": walls[0], "wall_median": statistics.median(walls), "wall_max": walls[-1],
        "peak_mib": max(s["rss_kib"] for s in samples) / 1024,
        "requests": statistics.median(s["requests"] for s in samples),
        "served_mb": statistics.median(s["served"] for s in samples) / 1e6,
    }


def measure(state: Path, scale, runs):
    env = dict(os.environ)
    env["KUBECONFIG"] = str(state / "admin.kubeconfig")
    kubectl = kubectl_cmd(state)
    inventory = str(PLUGINS / "kubectl-rev_inventory")
    restart = str(PLUGINS / "kubectl-rev_restart")
    audit = AuditLog(state / "logs" / "audit.log")
    api = Api(state)
    # The floor replays what rev-inventory sends: learn it from one run first (also a warm-up
    # for every variant's caches: the API server's watch cache, the page cache).
    mark = audit.mark()
    timed([inventory, "-o", "json"], env)
    lists = first_pages(audit.events_since(mark))
    (OUT / "floor-lists.txt").write_text("\n".join(lists) + "\n")
    floor_cmd = [sys.executable, __file__, "--floor", str(state), str(OUT / "floor-lists.txt")]
    variants = {
        "inventory": lambda: timed([inventory, "-o", "json"], env),
        "pipeline": lambda: pipeline(env, kubectl),
        "floor": lambda: timed(floor_cmd, env),
        "restart-ns": lambda: timed([restart, "bench-0001", "--dry-run=client"], env),
    }
    samples = {name: [] for name in variants}
    for run in range(runs):
        for name, run_it in variants.items():
            mark, before = audit.mark(), api.served_bytes()
            wall, rss = run_it()
            served = api.served_bytes() - before
            events = audit.events_since(mark)
            samples[name].append({"wall": wall, "rss_kib": rss, "requests": len(events), "served": served,
                                  "uris": [e["requestURI"] for e in events] if run == 0 else None})
            log(f"run {run + 1} {name}: {wall:.2f} s, {rss / 1024:.0f} MiB, {len(events)} requests, {served / 1e6:.1f} MB")
    results = {name: summarise(s) for name, s in samples.items()}
    namespaces, per_ns, replicas = scale
    results["scale"] = {"namespaces": namespaces, "deployments": namespaces * per_ns, "pods": namespaces * per_ns * replicas}
    results["inventory_uris"] = samples["inventory"][0]["uris"]
    results["restart_ns_uris"] = samples["restart-ns"][0]["uris"]
    return results


def restart_overhead(state: Path, scale, workloads):
    """Restarts `workloads` drifted Deployments at --max-parallel 1, then as many at 4."""
    env = dict(os.environ)
    env["KUBECONFIG"] = str(state / "admin.kubeconfig")
    restart = str(PLUGINS / "kubectl-rev_restart")
    per_ns = scale[1]
    # The relabelled namespaces are the even ones; each takes one run.
    drifted = [f"bench-{i:04d}" for i in range(0, scale[0], 2)]
    wanted = max(1, workloads // per_ns)
    if 2 * wanted > len(drifted):
        sys.exit(f"--restart-workloads {workloads}: only {len(drifted) * per_ns} drifted Deployments")
    out = {}
    for parallel, namespaces in ((1, drifted[:wanted]), (4, drifted[wanted:2 * wanted])):
        t0 = time.monotonic()
        res = subprocess.run([restart, *namespaces, "--yes", "--max-parallel", str(parallel), "-o", "json"],
                             env=env, capture_output=True, text=True)
        wall = time.monotonic() - t0
        if res.returncode != 0:
            sys.exit(f"rev-restart --max-parallel {parallel} exited {res.returncode}:\n{res.stderr[-2000:]}")
        done = json.loads(res.stdout)["workloads"]
        rollouts = [w["rolloutSeconds"] for w in done]
        restarted = sum(w["result"] == "restarted" for w in done)
        out[f"parallel_{parallel}"] = {
            "workloads": len(done), "restarted": restarted, "wall": wall,
            "wall_per_workload": wall / len(done), "mean_rollout": statistics.mean(rollouts),
            # What the run adds to the rollouts it waits for, per workload.
            "overhead_per_workload": (wall - sum(rollouts) / parallel) / len(done),
        }
        log(f"rev-restart --max-parallel {parallel}: {restarted}/{len(done)} restarted in {wall:.1f} s, "
            f"mean rollout {statistics.mean(rollouts):.2f} s")
    return out


def restart_text(results):
    runs = results.get("restart_overhead", {})
    parts = [f"--max-parallel {k.split('_')[1]}: {r['workloads']} Deployments in {r['wall']:.0f} s, "
             f"overhead {r['overhead_per_workload']:.2f} s per workload" for k, r in runs.items()]
    return ("; rev-restart " + "; ".join(parts)) if parts else ""


def report(results, name, readme):
    inv, pipe, flo, rst = (results[k] for k in ("inventory", "pipeline", "floor", "restart-ns"))
    s = results["scale"]
    lines = [f"scale {name}: {s['namespaces']} namespaces, {s['deployments']} Deployments, {s['pods']} pods"]
    lines.append(f"{'variant':<12} {'wall min/median/max s':>24} {'peak MiB':>9} {'requests':>9} {'served MB':>10}")
    for k in ("inventory", "pipeline", "floor", "restart-ns"):
        r = results[k]
        walls = f"{r['wall_min']:.2f}/{r['wall_median']:.2f}/{r['wall_max']:.2f}"
        lines.append(f"{k:<12} {walls:>24} {r['peak_mib']:>9.0f} {r['requests']:>9.0f} {r['served_mb']:>10.1f}")
    ratios = {
        "inventory/pipeline wall": inv["wall_median"] / pipe["wall_median"],
        "inventory/pipeline memory": inv["peak_mib"] / pipe["peak_mib"],
        "inventory/floor wall": inv["wall_median"] / flo["wall_median"],
    }
    results["ratios"] = ratios
    lines += [f"{k}: {v:.3f}" for k, v in ratios.items()]
    cluster_wide = [u for u in results["restart_ns_uris"] if "/namespaces/" not in u and u.split("?")[0].endswith(("/pods", "/replicasets"))]
    lines.append(f"restart-ns cluster-wide pod/ReplicaSet lists: {len(cluster_wide)}")
    for key, r in results.get("restart_overhead", {}).items():
        lines.append(f"rev-restart {key.replace('_', ' ')}: {r['restarted']}/{r['workloads']} restarted, "
                     f"{r['wall']:.1f} s, {r['wall_per_workload']:.2f} s per workload, mean rollout "
                     f"{r['mean_rollout']:.2f} s, overhead {r['overhead_per_workload']:.3f} s per workload")
    print("\n".join(lines))
    (OUT / f"live-{name}.json").write_text(json.dumps(results, indent=1) + "\n")
    if readme:
        machine = f"{os.cpu_count()} cores, {os.sysconf('SC_PAGE_SIZE') * os.sysconf('SC_PHYS_PAGES') / 2**30:.0f} GiB"
        row = (f"| live `rev-inventory -o json`, {s['namespaces']:,} namespaces / {s['deployments']:,} Deployments / "
               f"{s['pods']:,} pods ({machine}) | ours {inv['wall_min']:.2f}/{inv['wall_median']:.2f}/{inv['wall_max']:.2f} s, "
               f"{inv['peak_mib']:.0f} MiB, {inv['requests']:.0f} requests, {inv['served_mb']:.1f} MB; pipeline "
               f"{pipe['wall_median']:.2f} s, {pipe['peak_mib']:.0f} MiB, {pipe['served_mb']:.1f} MB; floor "
               f"{flo['wall_median']:.2f} s; `rev-restart <ns> --dry-run=client` {rst['wall_median']:.2f} s, "
               f"{rst['requests']:.0f} requests. Ratios: wall {ratios['inventory/pipeline wall']:.3f}, memory "
               f"{ratios['inventory/pipeline memory']:.3f} of the pipeline; {ratios['inventory/floor wall']:.2f}× the floor "
               f"{restart_text(results)} | `make bench BENCH_SCALE={name}` |")
        (OUT / f"live-{name}.md").write_text(row + "\n")
    small, large = OUT / "live-small.json", OUT / "live-large.json"
    if small.exists() and large.exists():
        a, b = json.loads(small.read_text()), json.loads(large.read_text())
        k = b["scale"]["pods"] / a["scale"]["pods"]
        for key, what in (("wall_median", "time"), ("peak_mib", "memory")):
            g = b["inventory"][key] / a["inventory"][key]
            print(f"growth small → large ({k:.0f}× the pods): {what} {g:.2f}× (linear within 1.2: ≤ {1.2 * k:.1f}×)")


def main():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--scale", default=os.environ.get("BENCH_SCALE", "small"))
    p.add_argument("--runs", type=int, default=3)
    p.add_argument("--restart-workloads", type=int, default=100,
                   help="drifted Deployments restarted per --max-parallel setting (0: none)")
    p.add_argument("--keep", action="store_true", help="leave the cluster up afterwards")
    p.add_argument("--resume", action="store_true",
                   help="go on with a cluster a stopped run left up (its state dir): create what is missing, then measure")
    p.add_argument("--plugins", type=Path,
                   help="measure the executables in this directory instead of building the fastbuild "
                        "profile (the e2e test passes its debug build: it checks the script, not figures)")
    p.add_argument("--readme", action="store_true", help="also write the README row")
    p.add_argument("--floor", nargs=2, metavar=("STATE", "LISTS"), help=argparse.SUPPRESS)
    args = p.parse_args()
    if args.floor:
        floor(Path(args.floor[0]), Path(args.floor[1]).read_text().split())
        return
    for tool in ("jq", "/usr/bin/time"):
        if not shutil.which(tool):
            sys.exit(f"{tool} is needed (Debian: apt-get install jq time)")
    scale = SCALES.get(args.scale) or tuple(int(x) for x in args.scale.split(","))
    OUT.mkdir(parents=True, exist_ok=True)
    state = OUT / f"cluster-{args.scale.replace(',', 'x')}"
    global PLUGINS
    if args.plugins:
        PLUGINS = args.plugins.resolve()
    else:
        log("building the plugins (fastbuild profile)")
        sh("cargo", "build", "--profile", "fastbuild", "-p", "rev-inventory", "-p", "rev-restart", capture=False)
    sh("bash", str(CLUSTER / "build.sh"), capture=False)
    # A fresh cluster every time: a kept one already holds the bench namespaces.
    if not args.resume:
        subprocess.run(["bash", str(CLUSTER / "cluster.sh"), "down"], env=cluster_env(state), capture_output=True)
    try:
        bring_up(state, scale, args.resume)
        results = measure(state, scale, args.runs)
        if args.restart_workloads:
            results["restart_overhead"] = restart_overhead(state, scale, args.restart_workloads)
        report(results, args.scale, args.readme)
    finally:
        if not args.keep:
            subprocess.run(["bash", str(CLUSTER / "cluster.sh"), "down"], env=cluster_env(state), capture_output=True)


if __name__ == "__main__":
    main()
