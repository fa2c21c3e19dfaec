"""The chart's agent status policy protects exactly the operator's Decky status fields.

The list lives in the chart (_helpers.tpl, decnet.operatorStatusFields) because CEL
must name fields that exist in the CRD schema; this keeps it equal to the model, so
a new operator field cannot slip out of the policy's protection unnoticed.
"""

from __future__ import annotations

import re
from pathlib import Path

from decnet.api import v1alpha1
from decnet.kube import names

HELPERS = Path(__file__).resolve().parents[3] / "charts/decnet-operator/templates/_helpers.tpl"


def _chart_fields() -> set[str]:
    text = HELPERS.read_text()
    body = re.search(r'define "decnet.operatorStatusFields" -}}\n(.*?)\n', text)
    assert body is not None
    return set(body.group(1).split())


def test_the_policy_names_every_operator_owned_status_field() -> None:
    schema = v1alpha1.Decky.model_json_schema(by_alias=True)
    status_ref = schema["properties"]["status"]
    ref = status_ref.get("$ref") or next(
        s["$ref"] for s in status_ref.get("anyOf", []) if "$ref" in s
    )
    status = schema["$defs"][ref.rsplit("/", 1)[1]]
    model_fields = set(status["properties"])
    assert _chart_fields() == model_fields - set(names.AGENT_STATUS_FIELDS)
    assert not _chart_fields() & set(names.AGENT_STATUS_FIELDS)
