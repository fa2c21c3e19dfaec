#!/usr/bin/env bash
# `make bench`: every benchmark in bench/, then bench/RESULTS.md from their JSON.
# BENCH=apply|idle|restart|events|emulators|scale runs one; BENCH_SIZES, IDLE_SECONDS tune them;
# SCALE_ARGS=--quick makes the scale run a 500-decky smoke test.
set -euo pipefail
cd "$(dirname "$0")/.."
bash hack/build-binaries.sh all >/dev/null
bash hack/docker-up.sh
bash hack/images.sh >/dev/null
for b in ${BENCH:-apply restart idle events emulators scale}; do
  echo "== bench_$b" >&2
  if [ "$b" = scale ]; then
    # shellcheck disable=SC2086 # word splitting intended
    python3 bench/bench_scale.py ${SCALE_ARGS:-}
  else
    python3 "bench/bench_$b.py"
  fi
done
python3 bench/report.py
