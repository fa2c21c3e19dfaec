"""Prometheus metrics: the numbers the performance targets are stated in."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator

from prometheus_client import Counter

RECONCILES = Counter("decnet_operator_reconciles_total", "Reconciles by kind.", ["kind"])
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


@contextlib.contextmanager
def counting_errors(kind: str) -> Iterator[None]:
    """Count a reconcile that raises, and let the error go on to its handler."""
    try:
        yield
    except Exception:
        RECONCILE_ERRORS.labels(kind).inc()
        raise
