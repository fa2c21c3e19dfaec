#!/usr/bin/env bash
# `make bench`: every benchmark in bench/, then bench/RESULTS.md from their JSON.
# BENCH=apply|idle|restart|events runs one; BENCH_SIZES, IDLE_SECONDS tune them.
set -euo pipefail
cd "$(dirname "$0")/.."
bash hack/build-binaries.sh all >/dev/null
bash hack/docker-up.sh
bash hack/images.sh >/dev/null
for b in ${BENCH:-apply restart idle events emulators}; do
  echo "== bench_$b" >&2
  python3 "bench/bench_$b.py"
done
python3 bench/report.py
