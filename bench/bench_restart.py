"""Agent restart with 200 deckies running: time to converged, containers recreated.

The agent is SIGKILLed (no clean-up runs) and started again; "Converged" is
the agent's own `sync.initial_done` log event, which it emits once every
decky of its node has been observed and, where needed, repaired. Container
ids before and after tell how many were recreated (the target is 0).
"""

from __future__ import annotations

import json
import os
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import stack  # noqa: E402

NODE = "restart-node"
COUNT = int(os.environ.get("BENCH_RESTART_DECKIES", "200"))


def container_ids() -> dict[str, str]:
    import docker

    client = docker.from_env()
    found = client.containers.list(all=True, filters={"label": ["decnet.io/namespace=restart"]})
    return {c.name: c.id for c in found}


def main() -> None:
    namespace = "restart"
    with stack.stack() as s:
        s.start_operator()
        agent = s.start_agent(NODE, log_level="info")  # sync.initial_done is an info event
        s.kubectl("create", "namespace", namespace)
        s.apply(namespace, [stack.lan("lan", "10.199.0.0/24")])
        names = [f"r-{i:03d}" for i in range(COUNT)]
        s.apply(namespace, [stack.decky(n, NODE, ["http", "telnet"]) for n in names])
        stack.ready_watch(s, namespace, set(names), timeout=60 + 3 * COUNT)
        before = container_ids()
        agent.kill()
        log_offset = agent.log.stat().st_size
        start = time.monotonic()
        agent.start()
        converged_at = None
        deadline = start + 300
        while converged_at is None and time.monotonic() < deadline:
            with open(agent.log) as handle:
                handle.seek(log_offset)
                for line in handle:
                    if "sync.initial_done" in line:
                        converged_at = time.monotonic()
                        break
            time.sleep(0.05)
        after = container_ids()
        recreated = sum(1 for name, cid in before.items() if after.get(name) != cid)
        result = {
            "deckies": COUNT,
            "containers": len(before),
            "seconds_to_converged": round(converged_at - start, 2) if converged_at else None,
            "containers_recreated": recreated,
            "containers_after": len(after),
        }
        print(json.dumps(result))
        s.kubectl("delete", "deckies", "--all", "-n", namespace, "--timeout=600s")
    print(f"wrote {stack.write_result('restart', result)}")


if __name__ == "__main__":
    main()
