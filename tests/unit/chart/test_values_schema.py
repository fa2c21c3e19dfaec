"""values.schema.json, checked without helm: what `helm install --set` would refuse.

One operator replica is the chart's HA story (Recreate; see the chart README): the
schema must refuse a second one rather than let two operators share one peering
priority. The integration tier runs the same checks through helm itself.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import jsonschema
import pytest
import yaml

CHART = Path(__file__).resolve().parents[3] / "charts" / "decnet-operator"


def _values(**operator: Any) -> dict[str, Any]:
    values = yaml.safe_load((CHART / "values.yaml").read_text())
    values["operator"].update(operator)
    return dict(values)


def _errors(values: dict[str, Any]) -> list[str]:
    schema = json.loads((CHART / "values.schema.json").read_text())
    validator = jsonschema.validators.validator_for(schema)(schema)
    return ["/".join(map(str, e.absolute_path)) for e in validator.iter_errors(values)]


def test_the_defaults_pass() -> None:
    assert _errors(_values()) == []


@pytest.mark.parametrize("replicas", [0, 1])
def test_zero_or_one_operator_replica_passes(replicas: int) -> None:
    assert _errors(_values(replicas=replicas)) == []


@pytest.mark.parametrize("replicas", [2, 3])
def test_a_second_operator_replica_is_refused(replicas: int) -> None:
    assert _errors(_values(replicas=replicas)) == ["operator/replicas"]


def test_the_crds_value_is_gone_with_the_crd_templates() -> None:
    """The CRDs are the chart's crds/ now; `crds.install` would be a silent no-op."""
    values = _values()
    values["crds"] = {"install": False}
    assert _errors(values) == [""]  # additionalProperties at the top level
