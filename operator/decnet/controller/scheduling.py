"""Which node a decky runs on, decided from leases, load and its node-loss policy.

A node counts only while its agent's Lease is live: nobody else would ever
converge a decky sent to it. Once a decky has a node it keeps it (IPs,
hostname and node survive mutations); only an unscheduled decky is placed,
except that under `spec.nodeLoss.policy: Reschedule` a decky whose node has
been without a live agent for longer than the grace period moves to the
least-loaded live node.
"""

from __future__ import annotations

import dataclasses
import datetime
from collections.abc import Iterable, Mapping

from decnet.api import v1alpha1

NO_LIVE_AGENT = "NoLiveAgent"
# A topology decky waits for its topology to be placed (which needs a live agent).
WAITING_FOR_TOPOLOGY = "WaitingForTopology"
SCHEDULED = "Scheduled"
RESCHEDULED = "Rescheduled"
# spec.nodeLoss.policy values: the API's words, not a second copy of them.
WAIT = v1alpha1.NODE_LOSS_WAIT
RESCHEDULE = v1alpha1.NODE_LOSS_RESCHEDULE


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
    moved_from: str | None = None  # set when this decision moves the decky off a lost node


@dataclasses.dataclass(frozen=True)
class NodeLoss:
    """spec.nodeLoss, and how long the decky's current node has been without its agent."""

    policy: str = WAIT
    grace_seconds: float = v1alpha1.DEFAULT_NODE_LOSS_GRACE_SECONDS
    lost_seconds: float | None = None  # None while the node's agent is live

    def due(self) -> bool:
        return (
            self.policy == RESCHEDULE
            and self.lost_seconds is not None
            and self.lost_seconds >= self.grace_seconds
        )


def live_nodes(leases: Iterable[Lease], now: datetime.datetime) -> set[str]:
    return {lease.node for lease in leases if lease.live(now)}


def choose(
    *,
    current: str | None,
    topology_node: str | None,
    pinned: str | None,
    live: Iterable[str],
    load: Mapping[str, int],
    node_loss: NodeLoss | None = None,
) -> Decision:
    """Topology's node, else the pinned node, else the least-loaded live node.

    A decky already placed stays where it is while its agent is gone (the lease
    watcher reports that through Ready=Unknown, reason AgentLost), unless its
    node-loss policy says Reschedule and the grace period has passed: then it
    goes to the least-loaded other live node (a topology's or pinned decky never
    moves on its own). With no other live node it stays and waits.
    """
    live_set = set(live)
    if current:
        loss = node_loss or NodeLoss()
        others = live_set - {current}
        if current in live_set or not loss.due() or not others or topology_node or pinned:
            return Decision(current, SCHEDULED, f"scheduled to node {current}")
        node = _least_loaded(others, load)
        lost = int(loss.lost_seconds or 0)
        return Decision(
            node,
            RESCHEDULED,
            f"rescheduled to node {node}: node {current} had no live agent for {lost} s",
            moved_from=current,
        )
    wanted = topology_node or pinned
    if wanted:
        if wanted in live_set:
            # One message whichever rule placed it: it must not change on later visits.
            return Decision(wanted, SCHEDULED, f"scheduled to node {wanted}")
        return Decision(None, NO_LIVE_AGENT, f"node {wanted} has no live decnet agent")
    if not live_set:
        return Decision(None, NO_LIVE_AGENT, "no node has a live decnet agent")
    node = _least_loaded(live_set, load)
    return Decision(node, SCHEDULED, f"scheduled to node {node}")


def _least_loaded(nodes: Iterable[str], load: Mapping[str, int]) -> str:
    return min(sorted(nodes), key=lambda n: load.get(n, 0))
