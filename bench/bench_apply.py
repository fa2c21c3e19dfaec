"""apply → Ready for N deckies (base + 2 services) beside a plain Docker SDK script.

Both run in the same process run on the same machine, one after the other,
for N = 1, 50, 200 (override with BENCH_SIZES=1,50), each BENCH_RUNS times (default 3,
raw and operator alternating) and reported as the median run by ratio. The raw script creates
exactly the containers the agent would (base + 2 services sharing its network
namespace, on one internal bridge network with pinned IPs) with 8 threads,
the agent's default pool size. Also counts status writes per decky for the
deploy from the API server's audit log, and what the node pays in CPU: Docker's side
plus its driver (the script, or the agent), beside the wall-clock ratio, which on a
small machine also carries the API server, etcd and operator sharing its cores.
"""

from __future__ import annotations

import os
import statistics
import sys
import time
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

import raw_docker  # noqa: E402
import stack  # noqa: E402

NODE = "bench-node"
SERVICES = ["http", "telnet"]


def cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


DOCKER_SIDE = ("dockerd", "containerd", "runc", "docker-proxy")


def docker_cpu_seconds() -> float:
    """CPU seconds of the engine's side: dockerd, containerd, its shims and runc, counting
    children that already exited (runc's work is done in short-lived children)."""
    total = 0.0
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            if not (entry / "comm").read_text().startswith(DOCKER_SIDE):
                continue
            fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
        except OSError:  # exited meanwhile
            continue
        total += sum(int(x) for x in fields[11:15]) / os.sysconf("SC_CLK_TCK")
    return total


def cpu_snapshot(s: stack.Stack) -> dict[str, float]:
    """CPU seconds used so far by each process of ours and by Docker (where the overhead goes)."""
    pids = {name: proc.pid for name, proc in s.processes.items()}
    for name in ("apiserver", "etcd"):
        pids[name] = int((s.state / f"{name}.pid").read_text())
    snapshot = {name: cpu_seconds(pid) for name, pid in pids.items()}
    snapshot["docker"] = docker_cpu_seconds()
    return snapshot


def run_operator(s: stack.Stack, n: int, octet: int, run: int = 0) -> dict[str, float]:
    namespace = f"bench-{n}-{run}"
    s.kubectl("create", "namespace", namespace)
    s.apply(namespace, [stack.lan("lan", f"10.{octet}.0.0/24")])
    names = [f"d-{i:03d}" for i in range(n)]
    docs = [stack.decky(name, NODE, SERVICES) for name in names]
    # the watch runs from before the apply: a decky Ready while kubectl is still applying
    # is seen when it turns Ready, not when a watch started afterwards lists it
    first_ready: dict[str, float] = {}
    with ThreadPoolExecutor(max_workers=1) as watcher:
        watched = watcher.submit(
            stack.ready_watch, s, namespace, set(names), 60 + 3 * n, first_ready
        )
        time.sleep(1.0)  # the watch is established (the namespace has no decky yet)
        since = time.time()
        cpu_before = cpu_snapshot(s)
        start = time.monotonic()
        s.apply(namespace, docs)
        applied = time.monotonic()
        done = watched.result()
    seconds = done - start
    # when each decky turned Ready (a user watching `kubectl get deckies -w` sees these)
    each = sorted(t - start for t in first_ready.values())
    cpu_after = cpu_snapshot(s)
    cpu = {name: round(cpu_after[name] - cpu_before[name], 2) for name in cpu_after}
    writes = Counter()
    managers = Counter()
    for event in s.audit_writes(since):
        ref = event.get("objectRef", {})
        if (
            ref.get("resource") == "deckies"
            and ref.get("namespace") == namespace
            and ref.get("subresource") == "status"
        ):
            if (
                event.get("verb") in {"patch", "update"}
                and event.get("responseStatus", {}).get("code", 200) < 300
            ):
                writes[ref.get("name")] += 1
                managers[event.get("userAgent", "?").split("/")[0]] += 1
    # Tear down through the operator and agent, as a user would.
    s.kubectl("delete", "deckies", "--all", "-n", namespace, f"--timeout={60 + n}s")
    return {
        "seconds": round(seconds, 3),
        "apply_seconds": round(applied - start, 3),
        "first_ready_seconds": round(each[0], 3),
        "median_ready_seconds": round(statistics.median(each), 3),
        "status_writes_per_decky_mean": round(sum(writes.values()) / max(1, n), 2),
        "status_writes_per_decky_max": max(writes.values(), default=0),
        "cpu_seconds": cpu,
    }


def one_run(s: stack.Stack, n: int, octet: int, run: int) -> dict[str, Any]:
    docker_before = docker_cpu_seconds()
    script_before = time.process_time()  # this process does nothing else meanwhile
    start = time.monotonic()
    fleet = raw_docker.create_fleet(n, services=2, threads=8)
    raw = time.monotonic() - start
    raw_script_cpu = round(time.process_time() - script_before, 2)
    raw_docker_cpu = round(docker_cpu_seconds() - docker_before, 2)
    raw_docker.remove_fleet(fleet, threads=8)
    ours = run_operator(s, n, octet=octet, run=run)
    # what the node pays: Docker's side plus whoever drives it (the script, or the agent)
    node_raw = raw_docker_cpu + raw_script_cpu
    node_ours = ours["cpu_seconds"]["docker"] + ours["cpu_seconds"]["agent"]
    row = {
        "deckies": n,
        "raw_docker_seconds": round(raw, 3),
        "operator_seconds": ours["seconds"],
        "ratio": round(ours["seconds"] / raw, 3),
        "overhead_seconds": round(ours["seconds"] - raw, 3),
        "kubectl_apply_seconds": ours["apply_seconds"],
        "first_ready_seconds": ours["first_ready_seconds"],
        "median_ready_seconds": ours["median_ready_seconds"],
        "status_writes_per_decky_mean": ours["status_writes_per_decky_mean"],
        "status_writes_per_decky_max": ours["status_writes_per_decky_max"],
        "cpu_seconds_during_apply": ours["cpu_seconds"],
        "raw_docker_cpu_seconds": raw_docker_cpu,
        "raw_script_cpu_seconds": raw_script_cpu,
        "node_cpu_seconds": {"raw": round(node_raw, 2), "ours": round(node_ours, 2)},
        "node_cpu_ratio": round(node_ours / node_raw, 3) if node_raw else None,
    }
    print(
        f"N={n:4d} run {run + 1}  raw docker {raw:7.2f} s   apply→Ready {ours['seconds']:7.2f} s   "
        f"ratio {row['ratio']:.2f}   Ready first/median {ours['first_ready_seconds']:.1f}/"
        f"{ours['median_ready_seconds']:.1f} s   status writes/decky {row['status_writes_per_decky_mean']}   "
        f"cpu s {ours['cpu_seconds']} (raw: docker {raw_docker_cpu}, script {raw_script_cpu})   "
        f"node cpu ratio {row['node_cpu_ratio']}",
        flush=True,
    )
    return row


def median_run(runs: list[dict[str, Any]]) -> dict[str, Any]:
    """The run whose ratio is the median (the lower middle one for an even count), with
    every run's ratio beside it and the worst status-write count of all runs."""
    ordered = sorted(runs, key=lambda r: r["ratio"])
    row = dict(ordered[(len(ordered) - 1) // 2])
    row["runs"] = len(runs)
    row["ratios"] = [r["ratio"] for r in runs]
    row["median_ratio"] = round(statistics.median(row["ratios"]), 3)
    row["status_writes_per_decky_max"] = max(r["status_writes_per_decky_max"] for r in runs)
    node = [r["node_cpu_ratio"] for r in runs if r.get("node_cpu_ratio") is not None]
    row["node_cpu_ratios"] = node
    row["median_node_cpu_ratio"] = round(statistics.median(node), 3) if node else None
    return row


def main() -> None:
    sizes = [int(x) for x in os.environ.get("BENCH_SIZES", "1,50,200").split(",")]
    runs = int(os.environ.get("BENCH_RUNS", "3"))
    rows = []
    with stack.stack() as s:
        s.start_operator()
        s.start_agent(NODE, workers=8)
        for index, n in enumerate(sizes):
            done = [one_run(s, n, 200 + index * runs + run, run) for run in range(runs)]
            row = median_run(done)
            rows.append(row)
            print(f"N={n:4d} median ratio {row['median_ratio']} of {row['ratios']}", flush=True)
    path = stack.write_result(
        "apply", {"services_per_decky": 2, "agent_workers": 8, "runs": runs, "rows": rows}
    )
    print(f"wrote {path}")


if __name__ == "__main__":
    main()
