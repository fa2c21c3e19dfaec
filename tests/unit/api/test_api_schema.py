"""The generated OpenAPI schemas: structural, documented, and unchanged unless meant to.

Golden files pin the schema of each kind; regenerate them after an intended API change
with `UPDATE_GOLDEN=1 python3 -m pytest tests/unit/api`.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml
from pydantic import BaseModel, ConfigDict, Field

from decnet.api import schema, v1alpha1

GOLDEN = Path(__file__).resolve().parent / "golden"
KINDS = [pytest.param(model, id=model.crd.kind) for model in v1alpha1.KINDS]  # type: ignore[attr-defined]


def _walk(node: Any, path: str = "") -> Iterator[tuple[str, dict[str, Any]]]:
    if isinstance(node, dict):
        yield path, node
        for key, value in node.get("properties", {}).items():
            yield from _walk(value, f"{path}.{key}")
        if "items" in node:
            yield from _walk(node["items"], f"{path}[]")
        if isinstance(node.get("additionalProperties"), dict):
            yield from _walk(node["additionalProperties"], f"{path}{{}}")


@pytest.mark.parametrize("model", KINDS)
def test_schema_matches_golden_file(model: type[v1alpha1.Model]) -> None:
    text = yaml.safe_dump(schema.structural(model), sort_keys=False, width=100)
    golden = GOLDEN / f"{model.crd.plural}.yaml"  # type: ignore[attr-defined]
    if os.environ.get("UPDATE_GOLDEN") == "1":
        golden.parent.mkdir(exist_ok=True)
        golden.write_text(text)
    assert golden.exists(), f"{golden} missing: run with UPDATE_GOLDEN=1"
    assert text == golden.read_text(), "schema changed: rerun with UPDATE_GOLDEN=1 if intended"


@pytest.mark.parametrize("model", KINDS)
def test_schema_is_structural(model: type[v1alpha1.Model]) -> None:
    for path, node in _walk(schema.structural(model)):
        assert not {"$ref", "$defs", "anyOf", "oneOf", "allOf", "title", "nullable"} & node.keys()
        assert "type" in node or node.get("x-kubernetes-preserve-unknown-fields"), path
        assert not ("properties" in node and "additionalProperties" in node), path
        assert node.get("additionalProperties") is not False, path


@pytest.mark.parametrize("model", KINDS)
def test_every_spec_and_status_field_is_described(model: type[v1alpha1.Model]) -> None:
    root = schema.structural(model)
    undocumented = [
        path
        for path, node in _walk(root)
        if path.startswith((".spec", ".status"))
        and not path.endswith(("[]", "{}"))
        and not node.get("description")
    ]
    assert not undocumented


@pytest.mark.parametrize("model", KINDS)
def test_every_cel_rule_has_a_message_naming_a_field(model: type[v1alpha1.Model]) -> None:
    for path, node in _walk(schema.structural(model)):
        for rule in node.get("x-kubernetes-validations", []):
            assert rule["message"], f"{path}: {rule['rule']}"
            leaf = path.rsplit(".", 1)[-1].strip("[]") or "metadata.name"
            assert (
                leaf in rule["message"] or "content" in rule["message"] or "path" in rule["message"]
            ), f"{path}: message {rule['message']!r} does not name the field"


def test_decky_schema_declares_the_api_server_checks() -> None:
    spec = schema.structural(v1alpha1.Decky)["properties"]["spec"]
    props = spec["properties"]
    assert props["services"]["maxItems"] == 32
    assert props["services"]["items"]["maxLength"] == 63
    assert props["networks"]["maxItems"] == 16
    assert props["networks"]["minItems"] == 1
    assert props["files"]["maxItems"] == 64
    file_props = props["files"]["items"]["properties"]
    assert file_props["mode"] == {
        "default": 420,
        "description": file_props["mode"]["description"],
        "maximum": 0o7777,
        "minimum": 0,
        "type": "integer",
    }
    assert file_props["content"]["properties"]["inline"]["maxLength"] == 1_398_104
    assert props["serviceConfig"]["additionalProperties"]["x-kubernetes-preserve-unknown-fields"]
    assert spec["required"] == ["networks"]


def test_conditions_are_a_map_list_keyed_by_type() -> None:
    for model in (v1alpha1.Decky, v1alpha1.LAN, v1alpha1.Topology, v1alpha1.ServiceTemplate):
        conditions = schema.structural(model)["properties"]["status"]["properties"]["conditions"]
        assert conditions["x-kubernetes-list-type"] == "map"
        assert conditions["x-kubernetes-list-map-keys"] == ["type"]
        assert "type" in conditions["items"]["required"]


def test_lan_subnet_and_dmz_carry_transition_rules() -> None:
    rules = schema.structural(v1alpha1.LAN)["properties"]["spec"]["x-kubernetes-validations"]
    messages = {rule["message"]: rule["rule"] for rule in rules}
    assert "oldSelf.subnet" in messages["spec.subnet is immutable once set"]
    assert "oldSelf.dmz" in messages["spec.dmz is immutable once set"]


def test_defaults_are_kept_only_under_spec() -> None:
    root = schema.structural(v1alpha1.Decky)
    status_defaults = [p for p, n in _walk(root["properties"]["status"]) if "default" in n]
    assert not status_defaults
    assert root["properties"]["spec"]["properties"]["forwardsL3"]["default"] is False


class _Inner(BaseModel):
    """Inner doc."""

    model_config = ConfigDict(
        json_schema_extra={"x-kubernetes-validations": [{"rule": "true", "message": "inner"}]}
    )
    value: int = Field(description="A value.", ge=1, le=5)


class _Spec(BaseModel):
    """Spec doc."""

    inner: _Inner | None = Field(
        default=None,
        description="Overrides the inner doc.",
        json_schema_extra={"x-kubernetes-validations": [{"rule": "true", "message": "field"}]},
    )
    free: dict[str, Any] = Field(default_factory=dict, description="Anything.")
    label: str = Field(default="x", description="A label.")


class _Toy(BaseModel):
    """A toy kind."""

    spec: _Spec


def test_optional_model_refs_are_inlined_with_the_fields_own_description_and_rules() -> None:
    inner = schema.structural(_Toy)["properties"]["spec"]["properties"]["inner"]
    assert inner["description"] == "Overrides the inner doc."
    assert inner["type"] == "object"
    assert "nullable" not in inner
    assert [r["message"] for r in inner["x-kubernetes-validations"]] == ["inner", "field"]
    assert inner["properties"]["value"] == {
        "description": "A value.",
        "maximum": 5,
        "minimum": 1,
        "type": "integer",
    }


def test_free_form_maps_preserve_unknown_fields_and_lists_defaults_drop() -> None:
    spec = schema.structural(_Toy)["properties"]["spec"]
    assert spec["properties"]["free"] == {
        "description": "Anything.",
        "type": "object",
        "x-kubernetes-preserve-unknown-fields": True,
    }
    assert spec["properties"]["label"]["default"] == "x"


class _Union(BaseModel):
    spec: int | str


def test_unions_kubernetes_cannot_express_are_refused() -> None:
    with pytest.raises(schema.SchemaError):
        schema.structural(_Union)
