"""Runs a module (the operator) under tracemalloc and dumps where its memory is on request.

    python bench/heapdump.py decnet.controller --standalone ...

Touching <DECNET_HEAPDUMP>.request makes a thread write <DECNET_HEAPDUMP>: the
largest allocation sites (by line and by 6-frame traceback) and the live object
count per type. The benchmark's `--heap` run uses it to say what holds the
operator's memory; tracemalloc slows the process, so no latency is read from it.
"""

from __future__ import annotations

import gc
import os
import runpy
import sys
import threading
import time
import tracemalloc
from collections import Counter
from pathlib import Path


def dump(out: Path) -> None:
    snapshot = tracemalloc.take_snapshot().filter_traces(
        [tracemalloc.Filter(False, tracemalloc.__file__), Filter_importlib()]
    )
    total = sum(s.size for s in snapshot.statistics("filename"))
    lines = [f"traced {total / 2**20:.1f} MiB", "", "## by line"]
    for stat in snapshot.statistics("lineno")[:40]:
        frame = stat.traceback[0]
        lines.append(
            f"{stat.size / 2**20:8.2f} MiB {stat.count:9d} blocks  {frame.filename}:{frame.lineno}"
        )
    lines += ["", "## by traceback (6 frames)"]
    for stat in snapshot.statistics("traceback")[:15]:
        lines.append(f"{stat.size / 2**20:8.2f} MiB {stat.count:9d} blocks")
        lines += [f"      {f.filename}:{f.lineno}" for f in stat.traceback]
    counts = Counter(type(o).__name__ for o in gc.get_objects())
    lines += ["", "## live objects tracked by gc, by type"]
    lines += [f"{n:9d}  {t}" for t, n in counts.most_common(25)]
    out.write_text("\n".join(lines) + "\n")


def Filter_importlib() -> tracemalloc.Filter:  # noqa: N802 - reads like a Filter
    return tracemalloc.Filter(False, "<frozen importlib._bootstrap*>")


def watch(out: Path) -> None:
    request = out.with_suffix(out.suffix + ".request")
    while True:
        if request.exists():
            request.unlink()
            dump(out)
        time.sleep(0.5)


def main() -> None:
    tracemalloc.start(6)
    out = Path(os.environ.get("DECNET_HEAPDUMP", "heap.txt"))
    threading.Thread(target=watch, args=(out,), daemon=True).start()
    module = sys.argv[1]
    sys.argv = [module, *sys.argv[2:]]
    runpy.run_module(module, run_name="__main__", alter_sys=True)


if __name__ == "__main__":
    main()
