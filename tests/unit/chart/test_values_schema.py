"""values.schema.json, checked without helm: what `helm install --set` would refuse.

Up to three operator replicas, one elected leader (chart README, "Leader election");
the integration tier runs the same checks through helm itself, and the template refuses
a second standalone replica.
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


@pytest.mark.parametrize("replicas", [0, 1, 3])
def test_up_to_three_operator_replicas_pass(replicas: int) -> None:
    assert _errors(_values(replicas=replicas)) == []


@pytest.mark.parametrize("replicas", [4, -1])
def test_more_operator_replicas_are_refused(replicas: int) -> None:
    assert _errors(_values(replicas=replicas)) == ["operator/replicas"]


def test_a_peering_lifetime_under_ten_seconds_is_refused() -> None:
    values = _values()
    values["operator"]["peering"]["lifetime"] = 5
    assert _errors(values) == ["operator/peering/lifetime"]


def test_the_crds_value_is_gone_with_the_crd_templates() -> None:
    """The CRDs are the chart's crds/ now; `crds.install` would be a silent no-op."""
    values = _values()
    values["crds"] = {"install": False}
    assert _errors(values) == [""]  # additionalProperties at the top level
