"""Idle cost with 1,000 deckies: API writes per minute, operator RSS and CPU.

The deckies are scheduled to node "ghost", whose agent is simulated by this
script: it holds the node's Lease and reports every plan converged (with
field manager decnet-agent, exactly as the real agent would, but without
containers, so 1,000 deckies fit on this machine). Once all are Ready the
script watches for IDLE_SECONDS (default 300) and counts every write the API
server's audit log records, by resource and by client.
"""

from __future__ import annotations

import os
import sys
import threading
import time
from collections import Counter
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

import stack  # noqa: E402

NODE = "ghost"
COUNT = int(os.environ.get("BENCH_IDLE_DECKIES", "1000"))
IDLE_SECONDS = float(os.environ.get("IDLE_SECONDS", "300"))


def hold_lease(s: stack.Stack, stop: threading.Event) -> None:
    from lightkube.models.coordination_v1 import LeaseSpec
    from lightkube.models.meta_v1 import ObjectMeta
    from lightkube.resources.coordination_v1 import Lease
    from lightkube.resources.core_v1 import Namespace

    client = s.client()
    try:
        client.create(Namespace(metadata=ObjectMeta(name="decnet-system")))
    except Exception:  # noqa: BLE001 - already there
        pass
    while not stop.is_set():
        now = datetime.now(UTC)
        lease = Lease(
            metadata=ObjectMeta(
                name=f"decnet-agent-{NODE}",
                namespace="decnet-system",
                labels={"decnet.io/agent": NODE},
            ),
            spec=LeaseSpec(
                holderIdentity=NODE, leaseDurationSeconds=40, renewTime=now, acquireTime=now
            ),
        )
        client.apply(lease, field_manager="decnet-agent", force=True)
        stop.wait(10)


def report_converged(s: stack.Stack, namespace: str, expected: int) -> None:
    """Plays the agent: every decky whose plan is published gets a converged report."""
    from lightkube.generic_resource import create_namespaced_resource
    from lightkube.types import PatchType

    decky_kind = create_namespaced_resource(stack.GROUP, stack.VERSION, "Decky", "deckies")
    client = s.client()
    reported: dict[str, str] = {}
    deadline = time.monotonic() + 900
    while len(reported) < expected and time.monotonic() < deadline:
        for obj in client.list(decky_kind, namespace=namespace):
            status: dict[str, Any] = obj.status or {}
            plan_hash = status.get("planHash")
            lifecycle = status.get("lifecycle") or {}
            name = obj.metadata.name
            if not plan_hash or reported.get(name) == plan_hash:
                continue
            body = {
                "apiVersion": f"{stack.GROUP}/{stack.VERSION}",
                "kind": "Decky",
                "metadata": {"name": name, "namespace": namespace},
                "status": {
                    "agent": {
                        "node": NODE,
                        "planHash": plan_hash,
                        "state": "Converged",
                        "message": "",
                        "lifecycleId": lifecycle.get("id", ""),
                    },
                    "containers": [],
                },
            }
            client.patch(
                decky_kind.Status,
                name,
                body,
                namespace=namespace,
                patch_type=PatchType.APPLY,
                field_manager="decnet-agent",
                force=True,
            )
            reported[name] = plan_hash
        time.sleep(1)


def main() -> None:
    namespace = "idle"
    with stack.stack() as s:
        stop = threading.Event()
        lease_thread = threading.Thread(target=hold_lease, args=(s, stop), daemon=True)
        lease_thread.start()
        operator = s.start_operator()
        s.kubectl("create", "namespace", namespace)
        lans = (COUNT + 249) // 250
        s.apply(namespace, [stack.lan(f"lan-{i}", f"10.{150 + i}.0.0/24") for i in range(lans)])
        docs = [
            stack.decky(f"idle-{i:04d}", NODE, ["http", "telnet"], lan=f"lan-{i // 250}")
            for i in range(COUNT)
        ]
        for chunk in range(0, COUNT, 250):
            s.apply(namespace, docs[chunk : chunk + 250])
        t0 = time.monotonic()
        report_converged(s, namespace, COUNT)
        stack.ready_watch(s, namespace, {d["metadata"]["name"] for d in docs}, timeout=900)
        settle = time.monotonic() - t0
        time.sleep(10)  # let the last writes land before the window opens
        since = time.time()
        cpu0, wall0 = operator.cpu_seconds(), time.monotonic()
        rss_samples = []
        while time.monotonic() - wall0 < IDLE_SECONDS:
            rss_samples.append(operator.rss_mb())
            time.sleep(5)
        cpu = operator.cpu_seconds() - cpu0
        wall = time.monotonic() - wall0
        stop.set()
        writes = s.audit_writes(since)
        by_writer = Counter()
        for e in writes:
            ref = e.get("objectRef", {})
            user = e.get("user", {}).get("username", "")
            agent = e.get("userAgent", "").split("/")[0]
            if user == "system:apiserver":
                writer = "kube-apiserver (its own lease and endpoints)"
            elif ref.get("resource") == "leases" and ref.get("namespace") == "decnet-system":
                writer = "node agent lease (simulated here)"
            elif agent == "kopf" or "decnet-operator" in e.get("requestURI", ""):
                writer = "operator"
            else:
                writer = f"other ({agent})"
            by_writer[f"{writer}: {ref.get('resource')}"] += 1
        minutes = wall / 60
        operator_writes = sum(v for k, v in by_writer.items() if k.startswith("operator"))
        deckies_writes = sum(v for k, v in by_writer.items() if k.endswith(": deckies"))
        agent_lease = sum(v for k, v in by_writer.items() if k.startswith("node agent lease"))
        result = {
            "deckies": COUNT,
            "idle_seconds": round(wall, 1),
            "settle_seconds_to_all_ready": round(settle, 1),
            "operator_writes_per_minute": round(operator_writes / minutes, 2),
            "decky_writes_per_minute": round(deckies_writes / minutes, 2),
            "agent_lease_renewals_per_minute": round(agent_lease / minutes, 2),
            "writes_by_writer": dict(by_writer),
            "operator_rss_mb_max": round(max(rss_samples), 1),
            "operator_rss_mb_end": round(rss_samples[-1], 1),
            "operator_cpu_percent": round(100 * cpu / wall, 3),
        }
        print(result)
    print(f"wrote {stack.write_result('idle', result)}")


if __name__ == "__main__":
    main()
