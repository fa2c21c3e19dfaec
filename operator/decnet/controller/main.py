"""Entry point: `python3 -m decnet.controller` (or the `decnet-operator` script).

Runs kopf programmatically so tests can start the operator as a subprocess
and stop it with SIGTERM by pid. Options come from flags and environment.
"""

from __future__ import annotations

import argparse
import logging
import os
import tempfile
import threading
import time
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

import kopf

from decnet import logs
from decnet.kube import names, probes

if TYPE_CHECKING:
    from decnet.controller import state


def _parse(argv: Sequence[str] | None) -> argparse.Namespace:
    env = os.environ
    p = argparse.ArgumentParser(prog="decnet-operator", description=__doc__)
    p.add_argument("--kubeconfig", default=env.get("KUBECONFIG"))
    p.add_argument(
        "--webhook-host",
        default=env.get("DECNET_WEBHOOK_HOST", "127.0.0.1"),
        help="hostname the API server uses to reach the webhook",
    )
    p.add_argument(
        "--webhook-addr",
        default=env.get("DECNET_WEBHOOK_ADDR"),
        help="listen address (default: the webhook host)",
    )
    p.add_argument("--webhook-port", type=int, default=int(env.get("DECNET_WEBHOOK_PORT", "9443")))
    p.add_argument(
        "--no-webhook", action="store_true", default=env.get("DECNET_NO_WEBHOOK", "") == "1"
    )
    p.add_argument(
        "--webhook-managed",
        action=argparse.BooleanOptionalAction,
        default=env.get("DECNET_WEBHOOK_MANAGED", "1") == "1",
        help=(
            "kopf registers its own ValidatingWebhookConfiguration (local runs); the chart "
            "owns it in a cluster and sets DECNET_WEBHOOK_MANAGED=0"
        ),
    )
    p.add_argument(
        "--metrics-port",
        type=int,
        default=int(env.get("DECNET_METRICS_PORT", "8080")),
        help="0 = off",
    )
    p.add_argument(
        "--metrics-addr",
        default=env.get("DECNET_METRICS_ADDR", "127.0.0.1"),
        help="metrics listen address (0.0.0.0 in a pod, so the metrics Service reaches it)",
    )
    p.add_argument(
        "--standalone",
        action=argparse.BooleanOptionalAction,
        default=env.get("DECNET_STANDALONE", "1") == "1",
        help="no kopf peering (default for local runs)",
    )
    p.add_argument(
        "--peering",
        default=env.get("DECNET_PEERING"),
        help="kopf peering name (implies --no-standalone)",
    )
    p.add_argument(
        "--health-port",
        type=int,
        default=int(env.get("DECNET_HEALTH_PORT", "0")),
        help="serve /healthz (live) and /readyz (ready) on this port (0 = off)",
    )
    p.add_argument(
        "--health-addr",
        default=env.get("DECNET_HEALTH_ADDR", "0.0.0.0"),
        help="probe listen address (the kubelet probes the pod IP)",
    )
    p.add_argument("--log-level", default=env.get("DECNET_LOG_LEVEL", "INFO"))
    p.add_argument(
        "--log-format",
        choices=logs.FORMATS,
        default=env.get("DECNET_LOG_FORMAT", "json"),
        help="json for machines (default), console for humans",
    )
    return p.parse_args(argv)


def _in_cluster_host(args: argparse.Namespace) -> None:
    """In a cluster the API server reaches the webhook through its Service's DNS name."""
    service = os.environ.get("DECNET_WEBHOOK_SERVICE")
    namespace = os.environ.get("DECNET_NAMESPACE")
    if service and namespace and "DECNET_WEBHOOK_HOST" not in os.environ:
        args.webhook_host = f"{service}.{namespace}.svc"
        args.webhook_addr = args.webhook_addr or "0.0.0.0"


def _webhook(args: argparse.Namespace) -> kopf.WebhookServer:
    from decnet.controller import certs

    _in_cluster_host(args)
    mounted = os.environ.get("DECNET_WEBHOOK_CERT_DIR")
    if mounted:
        bundle = certs.mounted(Path(mounted))
    else:
        sans = [args.webhook_host, "127.0.0.1", "localhost"]
        bundle = certs.generate(Path(tempfile.mkdtemp(prefix="decnet-webhook-")), sans)
    return kopf.WebhookServer(
        addr=args.webhook_addr or args.webhook_host,
        port=args.webhook_port,
        host=args.webhook_host,
        certfile=str(bundle.certfile),
        pkeyfile=str(bundle.pkeyfile),
        cafile=str(bundle.cafile),
    )


def _probes(
    addr: str,
    port: int,
    st: state.State,
    started: threading.Event,
    webhook: kopf.WebhookServer | None,
) -> probes.Server:
    from decnet.controller import health

    serving = (
        health.listening(webhook.addr or webhook.host or "127.0.0.1", webhook.port or 0)
        if webhook is not None
        else None
    )
    return probes.serve(
        addr,
        port,
        live=lambda: health.live(st.heartbeat, time.monotonic()),
        ready=lambda: health.ready(started.is_set(), st.heartbeat, time.monotonic(), serving),
    )


def _settings() -> kopf.OperatorSettings:
    """Every kopf setting of the operator, in one place.

    Only event, index and validation handlers are registered: kopf keeps no
    progress, diff-base or finalizer of its own on our objects.
    """
    settings = kopf.OperatorSettings()
    settings.posting.level = logging.CRITICAL  # our Events are posted by controller/events.py
    settings.batching.batch_window = 0.05
    # a per-object worker (and the last raw body it holds) ends this long after the object's
    # last event: short, so a burst of 10,000 applies does not keep 10,000 bodies for a minute
    settings.batching.idle_timeout = 5.0
    settings.watching.server_timeout = 300
    return settings


def main(argv: Sequence[str] | None = None) -> None:
    args = _parse(argv)
    logs.configure(args.log_level, args.log_format)
    if args.kubeconfig:
        os.environ["KUBECONFIG"] = args.kubeconfig  # kopf's own login reads it

    # importing them registers the handlers
    from decnet.controller import (  # noqa: F401
        census,  # the deckies-by-phase gauge
        deckies,
        lans,
        leadership,
        login,
        loop,
        state,
        topologies,
    )

    st = state.State(state.Config.from_env(args.kubeconfig))
    if not args.no_webhook:
        from decnet.controller import admission  # noqa: F401 - registers the validators

    webhook: kopf.WebhookServer | None = None
    settings = _settings()
    if not args.no_webhook:
        webhook = _webhook(args)
        settings.admission.server = webhook
        # Unmanaged, kopf only serves: the configuration (Service reference, CA,
        # failurePolicy) is the chart's, and the operator has no right to write it.
        settings.admission.managed = names.GROUP if args.webhook_managed else None
    if args.metrics_port:
        import prometheus_client

        prometheus_client.start_http_server(args.metrics_port, addr=args.metrics_addr)
    started = threading.Event()  # kopf raises it once the startup handlers are done
    if args.health_port:
        _probes(args.health_addr, args.health_port, st, started, webhook)
    standalone = args.standalone and not args.peering
    # Leader election: kopf pauses every replica but the one of the highest priority, and
    # leadership applies the same rule to the background loop (distinct priorities).
    identity = leadership.own_identity(os.environ)
    priority = leadership.own_priority(os.environ, time.time())
    settings.peering.lifetime = leadership.own_lifetime(os.environ)
    leadership.configure(
        None if standalone else (args.peering or settings.peering.name), identity, priority
    )
    kopf.run(
        clusterwide=True,
        standalone=standalone,
        peering_name=args.peering,
        priority=priority,
        identity=identity,  # type: ignore[arg-type]  # kopf's NewType of str
        settings=settings,
        memo=kopf.Memo(state=st),
        ready_flag=started,
    )


if __name__ == "__main__":
    main()
