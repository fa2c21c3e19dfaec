"""The operator's probes: live while its loop passes, ready once started and serving."""

from __future__ import annotations

import socket

from decnet.controller import health


def test_live_before_the_first_pass_and_while_the_loop_passes_dead_once_it_stalls() -> None:
    assert health.live(None, now=1000.0) is None
    assert health.live(990.0, now=1000.0) is None
    assert health.live(600.0, now=1000.0, stale_seconds=300) == "reconcile loop stalled"


def test_not_ready_until_kopf_started_and_the_loop_passed() -> None:
    assert health.ready(False, None, 10.0, None) == "starting"
    assert health.ready(True, None, 10.0, None) == "reconcile loop not running yet"
    assert health.ready(True, 9.0, 10.0, None) is None


def test_ready_needs_the_webhook_server_to_accept_connections() -> None:
    with socket.socket() as server:
        server.bind(("127.0.0.1", 0))
        server.listen()
        port = server.getsockname()[1]
        # the chart binds the webhook on 0.0.0.0: the check connects over loopback
        assert health.ready(True, 9.0, 10.0, health.listening("0.0.0.0", port)) is None
    refused = health.listening("127.0.0.1", port)
    assert health.ready(True, 9.0, 10.0, refused) == "webhook server not listening"


def test_ready_is_not_active_peer_a_passive_new_pod_must_not_stall_a_rollout() -> None:
    # nothing about peering goes into readiness: started + loop + webhook only
    assert health.ready(True, 9.0, 10.0, lambda: True) is None
