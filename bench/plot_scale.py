"""bench/scale.png: operator RSS at idle and apply -> planned latency against deckies.

python3 bench/plot_scale.py [bench/results/scale.json]
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent


def plot(result_path: Path, out: Path | None = None) -> Path:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    result = json.loads(Path(result_path).read_text())
    rows = result["rows"]
    x = [r["deckies"] for r in rows]
    fig, (rss, lat) = plt.subplots(1, 2, figsize=(11, 4.2))
    nan = float("nan")
    idle = [r.get("operator_rss_mb_idle") or nan for r in rows]
    rss.plot(x, idle, "o-", label="operator RSS at idle")
    busy = [
        (r["deckies"], r["operator_rss_mb_busy"]) for r in rows if r.get("operator_rss_mb_busy")
    ]
    if busy:
        rss.plot(
            *zip(*busy, strict=True), "x", markersize=9, label="RSS still busy (no idle reached)"
        )
    rss.axhline(300, color="red", linestyle="--", label="target 300 MB")
    rss.set_xlabel("deckies")
    rss.set_ylabel("MB")
    rss.set_title("operator memory")
    rss.legend()
    lat.plot(x, [r.get("planned_p50_seconds") or nan for r in rows], "o-", label="p50")
    lat.plot(x, [r.get("planned_p99_seconds") or nan for r in rows], "s-", label="p99")
    unfinished = [
        (r["deckies"], r["not_planned_after_seconds"]) for r in rows if r.get("not_planned")
    ]
    if unfinished:
        lat.plot(
            *zip(*unfinished, strict=True), "^", markersize=9, label="p99 beyond (unplanned after)"
        )
    lat.axhline(5, color="red", linestyle="--", label="target p99 5 s")
    lat.set_xlabel("deckies")
    lat.set_ylabel("seconds")
    lat.set_title("apply → status.plan written")
    lat.legend()
    for ax in (rss, lat):
        ax.set_xticks(x)
        ax.grid(alpha=0.3)
    fig.suptitle(
        f"{result['benchmark']}: {result['agents']} simulated agents, {result['at']}", fontsize=10
    )
    fig.tight_layout()
    out = out or HERE / f"{result['benchmark']}.png"
    fig.savefig(out, dpi=100)
    plt.close(fig)
    return out


if __name__ == "__main__":
    print(plot(Path(sys.argv[1]) if len(sys.argv) > 1 else HERE / "results" / "scale.json"))
