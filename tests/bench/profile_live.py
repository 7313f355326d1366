#!/usr/bin/env python3
"""Where a live inventory's time goes (issue 12), on a cluster `live.py --keep` left up: the API
server's CPU (its own Go profile, /debug/pprof: the Kubernetes build strips its binaries, so
`perf` cannot name them) and the client's (`perf` on the fastbuild binary, which keeps symbols),
for rev-inventory and for the floor, each with and without response compression.

  tests/bench/profile_live.py [--scale large] [--window 45] [--rounds 3]

The cluster must serve /debug/pprof: live.py starts it with REV_CLUSTER_PROFILING=1.

Variants (the floor replays target/bench/floor-lists.txt, the lists live.py learnt):
  inventory            kubectl-rev_inventory -o json, as shipped (asks for gzip, as kubectl does)
  inventory-identity   the same with the kubeconfig's `disable-compression: true`
  floor                the lists sent raw, bodies discarded (no compression: live.py's floor)
  floor-gzip           the same asking for gzip, bodies decompressed (a client must read them)
  idle                 nothing: what the cluster spends by itself in a window

For each: wall, user and system CPU of the client (`/usr/bin/time`, --rounds alternated), and the
API server's CPU per run over a --window of back-to-back runs, by what it was doing. Then one
`perf record` of rev-inventory, by what the client was doing. Results in
target/bench/profile-<scale>.json and .md.
"""
import argparse
import json
import os
import shutil
import signal
import statistics
import subprocess
import sys
import threading
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import live  # noqa: E402  (the bench's cluster client, floor and paths)

# What a function's package says it is doing, first match wins (flat samples are summed).
SERVER_CATEGORIES = [
    ("gzip", ("compress/", "k8s.io/apiserver/pkg/endpoints/handlers/responsewriters.(*deferredResponseWriter)")),
    ("TLS", ("crypto/", "vendor/golang.org/x/crypto")),
    ("JSON encode", ("encoding/json", "k8s.io/apimachinery/pkg/runtime/serializer/json", "sigs.k8s.io/json",
                     "k8s.io/apimachinery/pkg/apis/meta/v1.(*ObjectMeta).Marshal", "reflect.")),
    ("watch cache / list", ("k8s.io/apiserver/pkg/storage", "k8s.io/client-go/tools/cache")),
    ("metadata conversion", ("k8s.io/apiserver/pkg/endpoints/handlers", "k8s.io/apimachinery/pkg/runtime",
                             "k8s.io/apimachinery/pkg/conversion", "k8s.io/apimachinery/pkg/apis/meta")),
    ("etcd client", ("go.etcd.io/",)),
    ("network", ("net.", "net/", "internal/poll", "syscall.", "golang.org/x/net/http2")),
    ("GC and allocation", ("runtime.gc", "runtime.mallocgc", "runtime.scan", "runtime.tryDeferToSpanScan",
                           "runtime.spanClass", "runtime.(*spanInlineMarkBits)", "runtime.sweep", "runtime.(*sweepLocked)", "runtime.scanobject", "runtime.greyobject",
                           "runtime.findObject", "runtime.memclr", "runtime.(*mspan)", "runtime.(*mheap)",
                           "runtime.markBits", "runtime.(*gcWork)", "runtime.wbBuf", "runtime.bulkBarrier",
                           "runtime.heapBits", "runtime.(*mcache)", "runtime.(*mcentral)", "runtime.spanOf",
                           "runtime.typePointers", "runtime.scanblock", "runtime.(*gcBits)")),
    ("scheduler, memmove, other runtime", ("runtime.",)),
]
CLIENT_CATEGORIES = [
    ("gzip", ("miniz_oxide", "flate2", "inflate", "async_compression", "zlib")),
    ("TLS", ("ring::", "rustls", "aws_lc", "ring_core")),
    ("JSON decode", ("serde_json", "serde::", "k8s_openapi", "<serde")),
    ("HTTP", ("hyper", "h2::", "tower", "http_body", "tokio_util", "bytes::")),
    ("async runtime", ("tokio",)),
    ("this project (snapshot, analysis, report)", ("rev_shared", "kubectl_rev")),
    ("allocator", ("malloc", "free", "realloc", "_int_", "cfree", "alloc::", "__rust_")),
    ("memcmp, memcpy, memmove", ("memcmp", "memcpy", "memmove", "memset")),
    ("kernel", ("[k]",)),
]


def categorise(rows, categories):
    """rows: (share, name) → {category: share}; the rest is "other"."""
    out = {name: 0.0 for name, _ in categories}
    out["other"] = 0.0
    for share, name in rows:
        for cat, prefixes in categories:
            if any(p in name for p in prefixes):
                out[cat] += share
                break
        else:
            out["other"] += share
    return out


def server_profile(api, seconds, dest: Path):
    conn = api.conn()
    conn.timeout = seconds + 60
    dest.write_bytes(api.get(conn, f"/debug/pprof/profile?seconds={seconds}", "application/octet-stream",
                             agent="rev-bench-profile"))


def pprof_rows(profile: Path):
    """(total CPU seconds, [(share, function)]) by flat samples, from `go tool pprof -top`."""
    out = subprocess.run(["go", "tool", "pprof", "-top", "-nodecount=100000", str(profile)],
                         capture_output=True, text=True, check=True).stdout
    total, rows = None, []
    for line in out.splitlines():
        if "Total samples" in line or (total is None and "samples" in line and "%" in line):
            # "Duration: 45.1s, Total samples = 61.23s (135.7%)"
            total = parse_seconds(line.split("=")[1].split("(")[0])
        parts = line.split()
        if len(parts) >= 6 and parts[1].endswith("%") and parts[4].endswith("%"):
            rows.append((parse_seconds(parts[0]), " ".join(parts[5:])))
    total = total or sum(s for s, _ in rows) or 1.0
    return total, [(s / total, name) for s, name in rows]


def parse_seconds(text):
    text = text.strip()
    for unit, scale in (("ms", 1e-3), ("us", 1e-6), ("µs", 1e-6), ("s", 1.0), ("min", 60.0), ("h", 3600.0)):
        if text.endswith(unit):
            try:
                return float(text[: -len(unit)]) * scale
            except ValueError:
                continue
    return 0.0


def perf_rows(data: Path):
    """[(share, symbol)] of the client's own samples, flat, from `perf report`."""
    out = subprocess.run(["perf", "report", "-i", str(data), "--no-children", "--stdio", "--sort", "sym",
                          "--percent-limit", "0.05", "-q", "-g", "none"],
                         capture_output=True, text=True, check=True).stdout
    rows = []
    for line in out.splitlines():
        parts = line.split(None, 1)
        if len(parts) == 2 and parts[0].endswith("%"):
            rows.append((float(parts[0].rstrip("%")) / 100, parts[1].strip()))
    return rows


def main():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--scale", default="large")
    p.add_argument("--window", type=int, default=45, help="seconds of each server profile")
    p.add_argument("--rounds", type=int, default=3, help="timed runs of each variant, alternated")
    p.add_argument("--plugins", type=Path, help="the executables' directory (default: target/fastbuild)")
    p.add_argument("--quiet-cluster", action="store_true",
                   help="pause kwok, the controller manager and the scheduler while measuring (SIGSTOP, "
                        "resumed after): only the API server and etcd run, so the figures are theirs")
    args = p.parse_args()
    for tool, package in (("go", "Go, which builds the local cluster"), ("perf", "Debian: apt-get install linux-perf"),
                          ("/usr/bin/time", "Debian: apt-get install time")):
        if not shutil.which(tool):
            sys.exit(f"{tool} is needed ({package})")
    state = live.OUT / f"cluster-{args.scale.replace(',', 'x')}"
    lists = live.OUT / "profile-floor-lists.txt"
    if not (state / "ports.env").exists():
        sys.exit(f"no kept cluster at {state}: run `tests/bench/live.py --scale {args.scale} --keep` first")
    if args.plugins:
        live.PLUGINS = args.plugins.resolve()
    api = live.Api(state)
    try:
        api.get(api.conn(), "/debug/pprof/", "text/html", agent="rev-bench-profile")
    except SystemExit:
        sys.exit("the API server does not serve /debug/pprof: start the cluster with REV_CLUSTER_PROFILING=1")
    kubeconfig = state / "admin.kubeconfig"
    identity = live.OUT / "identity.kubeconfig"
    # kube-rs reads the kubeconfig's cluster `disable-compression`, as client-go does.
    identity.write_text(kubeconfig.read_text().replace("    server: ", "    disable-compression: true\n    server: ", 1))
    inventory = str(live.PLUGINS / "kubectl-rev_inventory")
    this = str(Path(__file__).resolve())
    variants = {
        "inventory": ([inventory, "-o", "json"], kubeconfig),
        "inventory-identity": ([inventory, "-o", "json"], identity),
        "floor": ([sys.executable, this, "--floor", str(state), str(lists)], kubeconfig),
        "floor-gzip": ([sys.executable, this, "--floor-gzip", str(state), str(lists)], kubeconfig),
        "idle": (["sleep", "5"], kubeconfig),
    }

    def run(name):
        cmd, kc = variants[name]
        env = dict(os.environ, KUBECONFIG=str(kc))
        tf = live.OUT / "time.profile"
        res = subprocess.run(["/usr/bin/time", "-f", "%e %U %S %M", "-o", str(tf), *cmd], env=env,
                             stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
        if res.returncode != 0:
            sys.exit(f"{name} exited {res.returncode}:\n{res.stderr[-2000:]}")
        wall, user, sys_, rss = tf.read_text().split()[-4:]
        return {"wall": float(wall), "user": float(user), "sys": float(sys_), "rss_kib": int(rss)}

    # The floor replays the lists one inventory run sends (also the warm-up of every cache).
    audit = live.AuditLog(state / "logs" / "audit.log")
    mark = audit.mark()
    run("inventory")
    lists.write_text("\n".join(live.first_pages(audit.events_since(mark))) + "\n")
    paused = [pid_of(state, c) for c in ("kwok", "kube-controller-manager", "kube-scheduler")] if args.quiet_cluster else []
    for pid in paused:
        os.kill(pid, signal.SIGSTOP)
    try:
        results = measure(args, api, variants, run)
    finally:
        for pid in paused:
            os.kill(pid, signal.SIGCONT)
    results["conditions"] = {"quiet_cluster": args.quiet_cluster, "plugins": str(live.PLUGINS),
                             "lists": len(lists.read_text().split())}
    report(results, args.scale)


def pid_of(state: Path, component):
    return int((state / "pids" / f"{component}.pid").read_text().strip())


def measure(args, api, variants, run):
    results = {name: {"runs": []} for name in variants}
    for r in range(args.rounds):
        for name in variants:
            if name != "idle":
                results[name]["runs"].append(run(name))
                live.log(f"round {r + 1}: {name} {results[name]['runs'][-1]}")
    for name in variants:
        dest = live.OUT / f"profile-{name}.pb.gz"
        t = threading.Thread(target=server_profile, args=(api, args.window, dest))
        t.start()
        t0, n = time.monotonic(), 0
        # Back to back for the window (a run that starts inside it counts whole).
        while time.monotonic() - t0 < args.window - 1:
            run(name)
            n += 1
        t.join()
        total, rows = pprof_rows(dest)
        res = results[name]
        res["server_runs"] = n
        res["server_cpu_s"] = total
        res["server_cpu_per_run_s"] = total / n
        res["server_categories"] = categorise(rows, SERVER_CATEGORIES)
        res["server_top"] = sorted(rows, reverse=True)[:15]
        live.log(f"{name}: server {total:.1f} CPU-s over {n} run(s) in {args.window} s")
    data = live.OUT / "perf-inventory.data"
    cmd, kc = variants["inventory"]
    subprocess.run(["perf", "record", "-q", "-F", "999", "-g", "-o", str(data), "--", *cmd],
                   env=dict(os.environ, KUBECONFIG=str(kc)), stdout=subprocess.DEVNULL, check=True)
    rows = perf_rows(data)
    results["inventory"]["client_categories"] = categorise(rows, CLIENT_CATEGORIES)
    results["inventory"]["client_top"] = rows[:20]
    return results


def report(results, scale):
    idle = results["idle"]["server_cpu_s"] / results["idle"]["server_runs"]  # per 5 s of nothing
    lines = ["| variant | wall (median) | client user+sys | server CPU per run | server: by what |",
             "|---|---|---|---|---|"]
    for name, r in results.items():
        if name in ("idle", "conditions"):
            continue
        runs = r["runs"]
        wall = statistics.median(x["wall"] for x in runs)
        cpu = statistics.median(x["user"] + x["sys"] for x in runs)
        cats = sorted(((v, k) for k, v in r["server_categories"].items() if v >= 0.03), reverse=True)
        lines.append(f"| {name} | {wall:.2f} s | {cpu:.2f} s | {r['server_cpu_per_run_s']:.1f} s | "
                     + ", ".join(f"{k} {v:.0%}" for v, k in cats) + " |")
    med = {n: statistics.median(x["wall"] for x in results[n]["runs"]) for n in ("inventory", "floor", "floor-gzip")}
    lines.append(f"\ninventory ÷ floor {med['inventory'] / med['floor']:.2f}×, "
                 f"÷ floor asking gzip as it does {med['inventory'] / med['floor-gzip']:.2f}× (medians)")
    lines.append(f"idle cluster: {idle:.1f} server CPU-s per 5 s; conditions: {results['conditions']}")
    cats = results["inventory"]["client_categories"]
    lines.append("rev-inventory's own CPU (perf, flat): "
                 + ", ".join(f"{k} {v:.0%}" for k, v in sorted(cats.items(), key=lambda kv: -kv[1]) if v >= 0.01))
    text = "\n".join(lines)
    print(text)
    (live.OUT / f"profile-{scale}.md").write_text(text + "\n")
    (live.OUT / f"profile-{scale}.json").write_text(json.dumps(results, indent=1))


if __name__ == "__main__":
    if len(sys.argv) == 4 and sys.argv[1] in ("--floor", "--floor-gzip"):
        live.floor(Path(sys.argv[2]), Path(sys.argv[3]).read_text().split(), compressed=sys.argv[1] == "--floor-gzip")
    else:
        main()
