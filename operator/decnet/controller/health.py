"""What the operator's liveness and readiness probes mean (served by decnet.kube.probes).

Live: the background reconcile loop has passed recently. It runs on kopf's event loop
and wakes at least every tick, so a stale heartbeat means the event loop is blocked or
the loop task died: a restart is the cure. Before the first pass (kopf runs the startup
handlers first) the process counts as alive.

Ready: kopf's startup handlers are done (kopf then starts its watches), the loop has
made a pass, and, with the webhook on, the admission server accepts connections; the
webhook Service routes to ready pods only. Ready does not mean "the active peer": a
new pod in a rolling update stays passive until the old one leaves, and a readiness
that waited for that would stall the rollout forever.
"""

from __future__ import annotations

import socket
from collections.abc import Callable

# A reconcile pass over many deckies may legitimately take a while; only a loop stuck
# far beyond that is restarted.
STALE_SECONDS = 300.0


def live(heartbeat: float | None, now: float, stale_seconds: float = STALE_SECONDS) -> str | None:
    if heartbeat is not None and now - heartbeat > stale_seconds:
        return "reconcile loop stalled"
    return None


def ready(
    started: bool,
    heartbeat: float | None,
    now: float,
    webhook_listening: Callable[[], bool] | None,
    stale_seconds: float = STALE_SECONDS,
) -> str | None:
    if not started:
        return "starting"
    if heartbeat is None:
        return "reconcile loop not running yet"
    stalled = live(heartbeat, now, stale_seconds)
    if stalled:
        return stalled
    if webhook_listening is not None and not webhook_listening():
        return "webhook server not listening"
    return None


def listening(addr: str, port: int, timeout: float = 1.0) -> Callable[[], bool]:
    """A check that a local TCP server accepts connections (0.0.0.0 is tried on loopback)."""
    host = "127.0.0.1" if addr in {"", "0.0.0.0"} else "::1" if addr == "::" else addr

    def check() -> bool:
        try:
            with socket.create_connection((host, port), timeout=timeout):
                return True
        except OSError:
            return False

    return check
