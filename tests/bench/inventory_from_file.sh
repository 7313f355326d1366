#!/usr/bin/env bash
# Benchmark: `kubectl rev-inventory --from-file` on a generated dump of 2,000 namespaces, 10,000
# workloads and 50,000 pods; wall time and peak memory (GNU time), side by side with jq doing the
# least a user would do by hand on the same dump (count pods per sidecar revision).
#   tests/bench/inventory_from_file.sh [namespaces workloads pods]
set -euo pipefail
root=$(cd "$(dirname "$0")/../.." && pwd)
cd "$root"
dump=${BENCH_DUMP:-target/bench/mesh-dump.json}
mkdir -p "$(dirname "$dump")"
args=("${@:-2000 10000 50000}")
[ -s "$dump" ] || python3 tests/bench/gen_dump.py "$dump" ${args[@]}
# fastbuild: release code without LTO (minutes, not the release link), symbols kept for perf.
cargo build --profile fastbuild -p rev-inventory --quiet
echo "dump: $dump ($(du -h "$dump" | cut -f1))"
measure() {
  local label=$1; shift
  /usr/bin/time -f "%e %M" -o target/bench/time.txt "$@" > /dev/null
  read -r secs kb < target/bench/time.txt
  printf '%-44s wall %6.2f s   peak RSS %6d MiB\n' "$label" "$secs" $((kb / 1024))
}
for run in 1 2 3; do
  measure "kubectl rev-inventory --from-file (run $run)" target/fastbuild/kubectl-rev_inventory --from-file "$dump" -o json
done
if command -v jq > /dev/null; then
  measure "jq: pods per sidecar revision (baseline)" jq -c '[.items[] | select(.kind=="Pod") | .metadata.annotations["istio.io/rev"]] | group_by(.) | map({(.[0]): length}) | add' "$dump"
fi
