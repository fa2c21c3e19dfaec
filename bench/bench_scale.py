"""Scale: 10,000 deckies over 50 simulated nodes, then 5 nodes lost and back.

A real kube-apiserver + etcd and the real operator (chart ServiceAccount, webhook on),
and N real agent processes with the in-memory engine (bench/simagents.py), each its
own node with its own Lease. Deckies are applied as a user or Argo CD would: server-side
apply of 500-object batches (5 kubectl processes at once), up to 1k, 2k, 5k and 10k in total. At each step:

- apply -> planned latency: from the decky's creation (its ADDED event) to the first
  watch event that carries status.plan, p50/p99; also from the start of its batch;
- API requests per decky for the deploy: apiserver_request_total (all verbs, every
  client) before the step's first apply and once every decky is Ready, divided by the
  deckies added;
- idle: once every decky is Ready and a short settle passed, MODIFIED events on deckies
  during the idle window (per minute), and the operator's CPU and RSS in it.

Then the spread of deckies over nodes (max/min), 5 agents killed by pid: the time until
every decky of theirs is marked (Ready reason AgentLost or status Unknown), and — when
the Decky CRD has spec.nodeLoss — until they run elsewhere under `nodeLoss: Reschedule`
("not within N s" otherwise); then the 5 restarted and the time until all those deckies
are Ready again. Results: bench/results/scale.json (+ scale.png via bench/plot_scale.py).

    python3 bench/bench_scale.py            # 10,000 deckies, 50 agents
    python3 bench/bench_scale.py --quick    # 500 deckies, 5 agents (smoke test)
    python3 bench/bench_scale.py --heap --quick   # the operator under tracemalloc:
                                                  # what holds its memory (no latencies)
"""

from __future__ import annotations

import argparse
import json
import shutil
import statistics
import sys
import threading
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

import simagents  # noqa: E402
import stack  # noqa: E402

NAMESPACE = "scale"
PER_LAN = 1000  # a /21 per LAN holds them with room to spare
BATCH = 500
LEASE_SECONDS = 40


def log(message: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {message}", flush=True)


# how long a lost node's deckies wait before they move (spec.nodeLoss.graceSeconds)
RESCHEDULE_GRACE_SECONDS = 30


def lan_doc(i: int) -> dict[str, Any]:
    doc = stack.lan(f"lan-{i}", f"10.{100 + i // 32}.{(i % 32) * 8}.0/21")
    doc["metadata"]["namespace"] = NAMESPACE
    return doc


def decky_doc(i: int, node_loss: bool) -> dict[str, Any]:
    spec: dict[str, Any] = {"services": ["ssh"], "networks": [{"lan": f"lan-{i // PER_LAN}"}]}
    if node_loss:
        spec["nodeLoss"] = {"policy": "Reschedule", "graceSeconds": RESCHEDULE_GRACE_SECONDS}
    return {
        "apiVersion": f"{stack.GROUP}/{stack.VERSION}",
        "kind": "Decky",
        "metadata": {"name": f"d-{i:05d}", "namespace": NAMESPACE},
        "spec": spec,
    }


@dataclass
class Seen:
    """What the watch saw of one decky (monotonic times)."""

    added: float | None = None
    planned: float | None = None
    ready_at: float | None = None
    node: str = ""
    ready: str = ""
    reason: str = ""


@dataclass
class Watcher:
    """One list+watch of every Decky in the namespace; times taken on arrival."""

    s: stack.Stack
    deckies: dict[str, Seen] = field(default_factory=dict)
    modified: list[float] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)
    stop: threading.Event = field(default_factory=threading.Event)

    def start(self) -> None:
        threading.Thread(target=self._run, daemon=True).start()

    def _run(self) -> None:
        from lightkube.generic_resource import create_namespaced_resource

        kind = create_namespaced_resource(stack.GROUP, stack.VERSION, "Decky", "deckies")
        while not self.stop.is_set():
            client = self.s.client()
            try:
                listing = client.list(kind, namespace=NAMESPACE)
                for obj in listing:
                    self._saw("LISTED", obj.to_dict())
                for event, obj in client.watch(
                    kind, namespace=NAMESPACE, resource_version=listing.resourceVersion
                ):
                    self._saw(event, obj.to_dict())
                    if self.stop.is_set():
                        return
            except Exception as error:  # noqa: BLE001 - re-list, as an informer would
                log(f"watch restarted: {error!r}"[:200])
                time.sleep(1)

    def _saw(self, event: str, obj: dict[str, Any]) -> None:
        now = time.monotonic()
        name = obj["metadata"]["name"]
        status = obj.get("status") or {}
        ready = next((c for c in status.get("conditions") or [] if c["type"] == "Ready"), {})
        with self.lock:
            if event == "DELETED":
                self.deckies.pop(name, None)
                return
            seen = self.deckies.setdefault(name, Seen())
            if event == "ADDED" and seen.added is None:
                seen.added = now
            if event == "MODIFIED":
                self.modified.append(now)
            if seen.planned is None and status.get("plan"):
                seen.planned = now
            seen.node = str(status.get("node") or "")
            seen.ready = str(ready.get("status") or "")
            seen.reason = str(ready.get("reason") or "")
            if seen.ready == "True" and seen.ready_at is None:
                seen.ready_at = now

    def snapshot(self) -> dict[str, Seen]:
        with self.lock:
            return {k: Seen(**vars(v)) for k, v in self.deckies.items()}

    def modified_between(self, start: float, end: float) -> int:
        with self.lock:
            return sum(1 for t in self.modified if start <= t < end)


def percentile(values: list[float], q: float) -> float | None:
    if not values:
        return None
    ordered = sorted(values)
    return round(ordered[min(len(ordered) - 1, int(q * len(ordered)))], 3)


def until(check: Any, timeout: float, interval: float = 1.0) -> float | None:
    """Seconds until check() holds, or None after timeout."""
    begin = time.monotonic()
    while time.monotonic() - begin < timeout:
        if check():
            return round(time.monotonic() - begin, 2)
        time.sleep(interval)
    return None


def apply_parallel(s: stack.Stack, docs: list[dict[str, Any]], parallel: int) -> None:
    """One batch as Argo CD syncs it: server-side apply, `parallel` kubectl processes at once
    (its --kubectl-parallelism-limit), each applying its share of the objects in order."""
    from concurrent.futures import ThreadPoolExecutor

    def one(part: list[dict[str, Any]]) -> None:
        s.kubectl(
            "apply",
            "--server-side",
            "--field-manager=bench-gitops",
            "-n",
            NAMESPACE,
            "-f",
            "-",
            input=json.dumps({"apiVersion": "v1", "kind": "List", "items": part}),
        )

    parts = [docs[i::parallel] for i in range(parallel) if docs[i::parallel]]
    with ThreadPoolExecutor(len(parts)) as pool:
        list(pool.map(one, parts))


def crd_has_node_loss(s: stack.Stack) -> bool:
    out = s.kubectl("get", "crd", "deckies.decnet.io", "-o", "json").stdout
    for version in json.loads(out)["spec"]["versions"]:
        props = version["schema"]["openAPIV3Schema"]["properties"]["spec"]["properties"]
        if "nodeLoss" in props:
            return True
    return False


def request_delta(
    before: dict[tuple[str, str, str], float], after: dict[tuple[str, str, str], float]
) -> Counter[str]:
    delta: Counter[str] = Counter()
    for key, value in after.items():
        diff = value - before.get(key, 0.0)
        if diff > 0:
            delta[f"{key[0]} {key[1] or '-'}"] += int(diff)
    return delta


def run(args: argparse.Namespace) -> dict[str, Any]:
    steps = [int(x) for x in args.steps.split(",")]
    idle = args.idle_seconds
    result: dict[str, Any] = {
        "agents": args.agents,
        "steps": steps,
        "batch": BATCH,
        "apply_parallel": args.parallel,
        "idle_seconds": idle,
        "agent_settings": {},
        "rows": [],
    }
    with stack.stack(docker=False) as s:
        launcher: tuple[str, ...] = ("-m",)
        heap_file = s.state / "heap.txt"
        if args.heap:
            launcher = (str(Path(__file__).resolve().parent / "heapdump.py"),)
            s.env["DECNET_HEAPDUMP"] = str(heap_file)
        operator = s.start_operator(launcher)
        s.kubectl("create", "namespace", NAMESPACE)
        s.identities.grant_decoy_namespace(NAMESPACE)
        agents = simagents.SimAgents(s, args.agents)
        result["agent_settings"] = {
            "engine": "fake",
            "workers": agents.workers,
            "resync_seconds": agents.resync_seconds,
            "settle_seconds": agents.settle_seconds,
            "fake_latency_seconds": agents.latency,
        }
        log(f"starting {args.agents} simulated agents")
        agents.start()
        log("agents leased")
        node_loss = crd_has_node_loss(s)
        result["crd_has_node_loss"] = node_loss
        watcher = Watcher(s)
        watcher.start()
        lans = (steps[-1] + PER_LAN - 1) // PER_LAN
        s.apply(NAMESPACE, [lan_doc(i) for i in range(lans)])
        applied = 0
        batch_start: dict[str, float] = {}
        try:
            for target in steps:
                before = s.apiserver_requests()
                step_begin = time.monotonic()
                first = applied
                while applied < target:
                    count = min(BATCH, target - applied)
                    docs = [decky_doc(i, node_loss) for i in range(applied, applied + count)]
                    at = time.monotonic()
                    for d in docs:
                        batch_start[d["metadata"]["name"]] = at
                    apply_parallel(s, docs, args.parallel)
                    applied += count
                    log(f"applied {applied} ({time.monotonic() - at:.1f} s for the batch)")
                apply_seconds = time.monotonic() - step_begin
                names = [f"d-{i:05d}" for i in range(first, applied)]
                all_names = [f"d-{i:05d}" for i in range(applied)]

                def everything_ready(names: list[str] = all_names) -> bool:
                    snap = watcher.snapshot()
                    return all(n in snap and snap[n].ready == "True" for n in names)

                settle = until(everything_ready, args.timeout)
                after = s.apiserver_requests()
                snap = watcher.snapshot()
                planned = [
                    snap[n].planned - snap[n].added  # type: ignore[operator]
                    for n in names
                    if n in snap and snap[n].planned and snap[n].added
                ]
                from_batch = [
                    snap[n].planned - batch_start[n]  # type: ignore[operator]
                    for n in names
                    if n in snap and snap[n].planned
                ]
                ready = [
                    snap[n].ready_at - snap[n].added  # type: ignore[operator]
                    for n in names
                    if n in snap and snap[n].ready_at and snap[n].added
                ]
                requests = request_delta(before, after)
                log(f"{applied}: all Ready after {settle} s; idle {idle} s")
                time.sleep(args.settle_seconds)
                cpu0, t0 = operator.cpu_seconds(), time.monotonic()
                rss = [operator.rss_mb()]
                while time.monotonic() - t0 < idle:
                    time.sleep(min(5.0, idle))
                    rss.append(operator.rss_mb())
                t1 = time.monotonic()
                cpu = (operator.cpu_seconds() - cpu0) / (t1 - t0) * 100
                idle_writes = watcher.modified_between(t0, t1)
                row = {
                    "deckies": applied,
                    "added": len(names),
                    "apply_seconds": round(apply_seconds, 1),
                    "seconds_to_all_ready": settle,
                    "planned_p50_seconds": percentile(planned, 0.5),
                    "planned_p99_seconds": percentile(planned, 0.99),
                    "planned_max_seconds": percentile(planned, 1.0),
                    "planned_from_batch_start_p50_seconds": percentile(from_batch, 0.5),
                    "planned_from_batch_start_p99_seconds": percentile(from_batch, 0.99),
                    "planned_count": len(planned),
                    "ready_p50_seconds": percentile(ready, 0.5),
                    "ready_p99_seconds": percentile(ready, 0.99),
                    "api_requests_per_decky": round(sum(requests.values()) / len(names), 2),
                    "api_requests_top": dict(requests.most_common(12)),
                    "idle_decky_writes_per_minute": round(idle_writes / (t1 - t0) * 60, 2),
                    "operator_rss_mb_idle": round(statistics.median(rss), 1),
                    "operator_rss_mb_max": round(max(rss), 1),
                    "operator_cpu_percent_idle": round(cpu, 2),
                    "agents_rss_mb_total": round(agents.rss_mb(), 1),
                }
                if args.heap:
                    request = heap_file.with_suffix(".txt.request")
                    heap_file.unlink(missing_ok=True)
                    request.touch()
                    stack.wait(heap_file.exists, 600)
                    time.sleep(2)
                    keep = Path(__file__).resolve().parent / "results" / f"heap-{applied}.txt"
                    shutil.copy(heap_file, keep)
                    row["heap_dump"] = keep.name
                result["rows"].append(row)
                log(json.dumps(row))
                # a stopped run keeps its steps (bench/report.py reads only the final file)
                stack.write_result(f"{args.name}-partial", result)

            snap = watcher.snapshot()
            per_node = Counter(v.node for v in snap.values() if v.node)
            for node in agents.nodes:
                per_node.setdefault(node, 0)
            result["spread"] = {
                "max": max(per_node.values()),
                "min": min(per_node.values()),
                "nodes": len(per_node),
            }
            log(f"spread {result['spread']}")
            result["node_loss"] = node_loss_phase(args, agents, watcher, node_loss)
            result["operator_rss_mb_end"] = round(operator.rss_mb(), 1)
        finally:
            watcher.stop.set()
            agents.stop_all()
        if args.heap:
            result["heap_note"] = "operator under tracemalloc: latencies are not comparable"
    return result


def node_loss_phase(
    args: argparse.Namespace, agents: simagents.SimAgents, watcher: Watcher, node_loss: bool
) -> dict[str, Any]:
    """Kill `--kill` agents by pid; time to marked, to rescheduled, and back after restart."""
    nodes = agents.nodes
    step = max(1, len(nodes) // args.kill)
    victims = nodes[::step][: args.kill]
    snap = watcher.snapshot()
    orphaned = sorted(n for n, v in snap.items() if v.node in victims)
    log(f"killing {victims} ({len(orphaned)} deckies)")
    out: dict[str, Any] = {"killed": victims, "deckies": len(orphaned)}
    agents.kill(victims)

    def marked() -> bool:
        now = watcher.snapshot()
        return all(now[n].reason == "AgentLost" or now[n].ready == "Unknown" for n in orphaned)

    mark_timeout = LEASE_SECONDS + 80
    out["marked_timeout_seconds"] = mark_timeout
    out["marked_seconds"] = until(marked, mark_timeout)
    now = watcher.snapshot()
    out["marked_reasons"] = dict(
        Counter(f"{now[n].ready}/{now[n].reason}" for n in orphaned).most_common(5)
    )

    def moved() -> bool:
        now = watcher.snapshot()
        return all(now[n].node not in victims and now[n].ready == "True" for n in orphaned)

    reschedule_timeout = 300 if node_loss else 30
    out["rescheduled_timeout_seconds"] = reschedule_timeout
    out["rescheduled_seconds"] = until(moved, reschedule_timeout)
    now = watcher.snapshot()
    out["rescheduled_count"] = sum(1 for n in orphaned if now[n].node not in victims)
    log(f"node loss: {json.dumps(out)}")
    agents.start(victims, stagger=0.0)
    restarted = time.monotonic()

    def back() -> bool:
        now = watcher.snapshot()
        return all(now[n].ready == "True" for n in orphaned)

    back_seconds = until(back, 300)
    out["return_ready_seconds"] = (
        round(time.monotonic() - restarted, 2) if back_seconds is not None else None
    )
    now = watcher.snapshot()
    out["after_return_on_returned_nodes"] = sum(1 for n in orphaned if now[n].node in victims)
    log(f"return: {out['return_ready_seconds']} s")
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="500 deckies over 5 agents")
    parser.add_argument("--heap", action="store_true", help="operator under tracemalloc")
    parser.add_argument("--agents", type=int, default=50)
    parser.add_argument("--steps", default="1000,2000,5000,10000")
    parser.add_argument("--kill", type=int, default=5)
    parser.add_argument("--parallel", type=int, default=5, help="kubectl applies at once")
    parser.add_argument("--idle-seconds", type=float, default=60.0)
    parser.add_argument("--settle-seconds", type=float, default=15.0)
    parser.add_argument(
        "--timeout", type=float, default=900.0, help="per step, to all Ready (then measured as is)"
    )
    parser.add_argument("--out", default="", help="result name (default scale / scale-quick)")
    args = parser.parse_args()
    if args.quick:
        args.agents, args.steps, args.kill = 5, "250,500", 1
        args.idle_seconds, args.settle_seconds = 20.0, 5.0
    name = args.out or ("scale-heap" if args.heap else "scale-quick" if args.quick else "scale")
    args.name = name
    result = run(args)
    path = stack.write_result(name, result)
    (path.parent / f"{name}-partial.json").unlink(missing_ok=True)
    log(f"wrote {path}")
    try:
        import plot_scale

        print(plot_scale.plot(path))
    except ImportError as error:  # matplotlib is a dev extra
        log(f"no plot: {error}")


if __name__ == "__main__":
    main()
