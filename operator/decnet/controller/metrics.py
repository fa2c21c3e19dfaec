"""Prometheus metrics: the numbers the performance targets are stated in."""

from __future__ import annotations

from prometheus_client import Counter

RECONCILES = Counter("decnet_operator_reconciles_total", "Reconciles by kind.", ["kind"])
WRITES = Counter("decnet_operator_writes_total", "API writes by the operator.", ["target"])
CLAIMS = Counter("decnet_operator_address_claims_total", "AddressClaims created.")
REJECTIONS = Counter(
    "decnet_operator_admission_rejections_total", "Admission rejections.", ["kind", "code"]
)
