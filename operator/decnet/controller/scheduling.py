"""Which node a decky runs on, decided from leases and load alone.

A node counts only while its agent's Lease is live: nobody else would ever
converge a decky sent to it. Once a decky has a node it keeps it (IPs,
hostname and node survive mutations); only an unscheduled decky is placed.
"""

from __future__ import annotations

import dataclasses
import datetime
from collections.abc import Iterable, Mapping

NO_LIVE_AGENT = "NoLiveAgent"
# A topology decky waits for its topology to be placed (which needs a live agent).
WAITING_FOR_TOPOLOGY = "WaitingForTopology"
SCHEDULED = "Scheduled"


@dataclasses.dataclass(frozen=True)
class Lease:
    node: str
    renew_time: datetime.datetime | None
    duration_seconds: int

    def live(self, now: datetime.datetime) -> bool:
        if self.renew_time is None:
            return False
        return self.renew_time + datetime.timedelta(seconds=self.duration_seconds) > now


@dataclasses.dataclass(frozen=True)
class Decision:
    node: str | None
    reason: str
    message: str


def live_nodes(leases: Iterable[Lease], now: datetime.datetime) -> set[str]:
    return {lease.node for lease in leases if lease.live(now)}


def choose(
    *,
    current: str | None,
    topology_node: str | None,
    pinned: str | None,
    live: Iterable[str],
    load: Mapping[str, int],
) -> Decision:
    """Topology's node, else the pinned node, else the least-loaded live node.

    A decky already placed stays where it is even when its agent is gone; the
    lease watcher reports that through Ready=Unknown instead.
    """
    live_set = set(live)
    if current:
        return Decision(current, SCHEDULED, f"scheduled to node {current}")
    wanted = topology_node or pinned
    if wanted:
        if wanted in live_set:
            # One message whichever rule placed it: it must not change on later visits.
            return Decision(wanted, SCHEDULED, f"scheduled to node {wanted}")
        return Decision(None, NO_LIVE_AGENT, f"node {wanted} has no live decnet agent")
    if not live_set:
        return Decision(None, NO_LIVE_AGENT, "no node has a live decnet agent")
    node = min(sorted(live_set), key=lambda n: load.get(n, 0))
    return Decision(node, SCHEDULED, f"scheduled to node {node}")
