"""The chart's webhook paths are kopf's: "/<handler id>" of each @kopf.on.validate handler.

kopf serves a handler at its id (kopf._core.engines.admission._inject_handler_id);
the chart names the paths itself now that kopf no longer registers them, so a
renamed handler would silently stop being called. This keeps the two equal.
"""

from __future__ import annotations

import re
import urllib.parse
from pathlib import Path

import kopf

from decnet.controller import admission

WEBHOOK = Path(__file__).resolve().parents[3] / "charts/decnet-operator/templates/webhook.yaml"


def test_every_validating_handler_has_a_chart_webhook_at_its_path() -> None:
    assert admission.validate_decky and admission.validate_lan  # registered on import
    ids = {
        str(h.id)
        for h in kopf.get_default_registry()._webhooks.get_all_handlers()
        if str(getattr(h.reason, "value", h.reason)) == "validating"
    }
    chart = re.search(r"range \$id, \$plural := dict (.*?) }}", WEBHOOK.read_text())
    assert chart is not None
    pairs = chart.group(1).replace('"', "").split()
    chart_ids = set(pairs[0::2])
    assert {urllib.parse.quote(i) for i in ids} == chart_ids == {"decky", "lan"}
    assert dict(zip(pairs[0::2], pairs[1::2], strict=True)) == {"decky": "deckies", "lan": "lans"}
