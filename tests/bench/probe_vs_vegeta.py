#!/usr/bin/env python3
"""rev-probe and vegeta side by side against the same loopback target (issue 13, item 3).

1. Same rate: both at 200 requests/s for 10 s; sent counts (and the target's own count) and
   latency percentiles, so equal schedules and percentiles within noise can be checked.
2. Highest sustained rate: each tool at rising rates, 5 s a step, until it no longer holds the
   rate (achieved < 95 % of asked) or answers fail (success < 99.9 %); peak RSS of the load
   generator (VmHWM of the tool's own process, sampled every 50 ms) at its highest held step.

Both tools are release builds: vegeta from its pinned Go module (tests/tools/build-vegeta.sh),
rev-probe and the target with `cargo build --release`. Loopback only; every step is bounded.
Prints a Markdown summary at the end (what the README's "Measured" table quotes).

  python3 tests/bench/probe_vs_vegeta.py [--quick]
"""

import json
import os
import subprocess
import sys
import tempfile
import time
import urllib.request

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
QUICK = "--quick" in sys.argv
STEPS = [1000, 2000, 4000, 6000, 8000, 10000, 12000, 14000, 16000, 20000, 24000, 28000, 32000]
STEP_SECONDS = 3 if QUICK else 5


def log(message):
    print(message, file=sys.stderr, flush=True)


def build():
    vegeta = subprocess.run(
        ["bash", os.path.join(ROOT, "tests/tools/build-vegeta.sh")],
        check=True, capture_output=True, text=True,
    ).stdout.strip()
    subprocess.run(
        ["cargo", "build", "--release", "-q", "-p", "rev-probe", "-p", "rev-test-probe-target"],
        check=True, cwd=ROOT,
    )
    release = os.environ.get("CARGO_TARGET_DIR", os.path.join(ROOT, "target"))
    return (
        vegeta,
        os.path.join(release, "release", "kubectl-rev_probe"),
        os.path.join(release, "release", "rev-test-probe-target"),
    )


def received(url):
    with urllib.request.urlopen(url + "/__target/received", timeout=5) as response:
        return int(response.read())


def high_water_mib(pid):
    """VmHWM of pid: its peak RSS since exec (a wait4 maxrss would include the Python process
    it was forked from)."""
    try:
        with open(f"/proc/{pid}/status") as status:
            for line in status:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) / 1024
    except OSError:
        pass
    return 0.0


def measured(cmd):
    """Runs cmd; returns (stdout, peak RSS in MiB of that process, wall seconds)."""
    started = time.monotonic()
    with tempfile.TemporaryFile() as out, tempfile.TemporaryFile() as err:
        proc = subprocess.Popen(cmd, stdout=out, stderr=err)
        peak = 0.0
        # VmHWM only grows; sampled until the process is a zombie, the last read is its peak.
        while True:
            peak = max(peak, high_water_mib(proc.pid))
            if proc.poll() is not None:
                break
            time.sleep(0.05)
        out.seek(0)
        err.seek(0)
        if proc.returncode not in (0, 1):
            raise RuntimeError(f"{cmd[0]} exited {proc.returncode}: {err.read().decode()[-2000:]}")
        return out.read(), peak, time.monotonic() - started


def run_probe(probe, url, rate, seconds):
    out, rss, wall = measured([
        probe, "--url", url + "/", "--rate", str(rate), "--duration", f"{seconds}s",
        "-o", "json", "--probe-timeout", "10s",
    ])
    return json.loads(out), rss, wall


def run_vegeta(vegeta, url, rate, seconds, workdir):
    targets = os.path.join(workdir, "targets.txt")
    results = os.path.join(workdir, "results.bin")
    with open(targets, "w") as f:
        f.write(f"GET {url}/\n")
    _, rss, wall = measured([
        vegeta, "attack", f"-rate={rate}", f"-duration={seconds}s", f"-targets={targets}",
        f"-output={results}", "-timeout=10s",
    ])
    report = subprocess.run(
        [vegeta, "report", "-type=json", results], check=True, capture_output=True
    ).stdout
    return json.loads(report), rss, wall


def ms(ns):
    return f"{ns / 1e6:.2f}"


def same_rate(tools, url):
    log("== same rate: 200/s for 10 s, each tool twice, alternating")
    rows = []
    for attempt in range(2):
        for name, run in tools:
            before = received(url)
            report, rss, _ = run(200, 10)
            got = received(url) - before
            lat = report["latencies"]
            rows.append((name, attempt + 1, report["requests"], got, lat["50th"], lat["90th"],
                         lat["99th"], lat["max"], report["success"], rss))
            log(f"{name:9} run {attempt + 1}: sent {report['requests']}, target counted {got}, "
                f"p50 {ms(lat['50th'])} ms, p90 {ms(lat['90th'])} ms, p99 {ms(lat['99th'])} ms, "
                f"max {ms(lat['max'])} ms, success {report['success']:.4f}, peak RSS {rss:.1f} MiB")
    return rows


def highest_rate(name, run, url):
    log(f"== {name}: highest sustained rate ({STEP_SECONDS} s a step)")
    best = None
    for rate in STEPS:
        before = received(url)
        report, rss, _ = run(rate, STEP_SECONDS)
        got = received(url) - before
        achieved = report["requests"] / STEP_SECONDS
        held = achieved >= 0.95 * rate and report["success"] >= 0.999
        log(f"{name:9} {rate:>6}/s: sent {report['requests']} ({achieved:.0f}/s), target counted "
            f"{got}, success {report['success']:.4f}, p99 {ms(report['latencies']['99th'])} ms, "
            f"peak RSS {rss:.1f} MiB -> {'held' if held else 'NOT held'}")
        if not held:
            break
        best = (rate, rss, report["latencies"]["99th"])
    return best


def main():
    vegeta, probe, target_bin = build()
    workdir = tempfile.mkdtemp(prefix="probe-vs-vegeta-")
    target = subprocess.Popen([target_bin, "127.0.0.1:0"], stdout=subprocess.PIPE, text=True)
    try:
        line = target.stdout.readline().strip()
        url = line.removeprefix("listening on ")
        log(f"target: {url}; vegeta: {vegeta}; rev-probe: {probe}; {os.cpu_count()} cores")
        tools = [
            ("rev-probe", lambda rate, secs: run_probe(probe, url, rate, secs)),
            ("vegeta", lambda rate, secs: run_vegeta(vegeta, url, rate, secs, workdir)),
        ]
        rows = same_rate(tools, url)
        best = {name: highest_rate(name, run, url) for name, run in tools}
    finally:
        target.terminate()
        target.wait()
    print("| tool | run | sent | target counted | p50 ms | p90 ms | p99 ms | max ms | success | peak RSS MiB |")
    print("|---|---|---|---|---|---|---|---|---|---|")
    for name, attempt, sent, got, p50, p90, p99, mx, success, rss in rows:
        print(f"| {name} | {attempt} | {sent} | {got} | {ms(p50)} | {ms(p90)} | {ms(p99)} | {ms(mx)} | {success:.4f} | {rss:.1f} |")
    print()
    for name, result in best.items():
        if result:
            rate, rss, p99 = result
            print(f"- {name}: highest sustained {rate}/s (step list {STEPS[0]}..{STEPS[-1]}), peak RSS {rss:.1f} MiB, p99 {ms(p99)} ms")
        else:
            print(f"- {name}: did not sustain {STEPS[0]}/s")
    if best.get("rev-probe") and best.get("vegeta"):
        print(f"- ratio rev-probe / vegeta: {best['rev-probe'][0] / best['vegeta'][0]:.2f}")


if __name__ == "__main__":
    main()
