"""Prometheus metrics: the numbers the performance targets and the chart's alerts use.

What an operator person asks first: is it reconciling (reconciles and their duration by
kind), is it failing (errors by kind), where do the deckies stand (deckies by lifecycle
phase) and which build is this (build_info).
"""

from __future__ import annotations

import contextlib
import platform
import time
from collections.abc import Iterator

from prometheus_client import Counter, Gauge, Histogram

import decnet

KINDS = ("Decky", "LAN", "Topology")  # what the operator reconciles
RECONCILES = Counter("decnet_operator_reconciles_total", "Reconciles by kind.", ["kind"])
RECONCILE_SECONDS = Histogram(
    "decnet_operator_reconcile_duration_seconds",
    "Time of one reconcile by kind (API calls included).",
    ["kind"],
    buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0),
)
WRITES = Counter("decnet_operator_writes_total", "API writes by the operator.", ["target"])
CLAIMS = Counter("decnet_operator_address_claims_total", "AddressClaims created.")
REJECTIONS = Counter(
    "decnet_operator_admission_rejections_total", "Admission rejections.", ["kind", "code"]
)
RECONCILE_ERRORS = Counter(
    "decnet_operator_reconcile_errors_total",
    "Reconciles that raised (the next event or loop pass retries them).",
    ["kind"],
)
DECKIES = Gauge(
    "decnet_operator_deckies",
    "Deckies the operator sees, by the phase of their current lifecycle operation "
    "(none: no operation yet).",
    ["phase"],
)
LEADER = Gauge(
    "decnet_operator_leader",
    "1 while this replica leads (kopf peering; always when standalone), 0 while it waits paused.",
)
BUILD_INFO = Gauge(
    "decnet_operator_build_info",
    "Always 1; the labels say which build runs.",
    ["version", "python"],
)
BUILD_INFO.labels(decnet.__version__, platform.python_version()).set(1)
for _kind in KINDS:  # exported at 0 from the start, so increase() and rate() see the first
    RECONCILE_ERRORS.labels(_kind)
    RECONCILE_SECONDS.labels(_kind)


@contextlib.contextmanager
def counting_errors(kind: str) -> Iterator[None]:
    """Time one reconcile (the duration histogram of its kind) and count it when it
    raises; the error goes on to its handler."""
    began = time.perf_counter()
    try:
        yield
    except Exception:
        RECONCILE_ERRORS.labels(kind).inc()
        raise
    finally:
        RECONCILE_SECONDS.labels(kind).observe(time.perf_counter() - began)
