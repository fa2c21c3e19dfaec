"""The built-in ServiceTemplates agree with the emulators and the image that run them.

A template's configSchema is what the operator validates a decky's serviceConfig
against; the emulator reads only the keys of its DEFAULTS. Where the two disagree a
user's setting is either rejected though the service would honour it, or accepted
and silently ignored. Same for ports (what a gateway publishes) and the command
(a launcher the image must contain).
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

import pytest
import servicetemplates  # hack/servicetemplates.py (tests/conftest.py puts hack/ on sys.path)
import yaml

from decnet.api import v1alpha1

ROOT = Path(__file__).resolve().parents[3]
TEMPLATES = {
    d["metadata"]["name"]: d
    for d in yaml.safe_load_all((ROOT / "examples" / "servicetemplates.yaml").read_text())
    if d
}
WITH_MODULE = [s for s in v1alpha1.BUILTIN_SERVICES if servicetemplates.module_for(s) is not None]


def schema_mismatches(schema: Mapping[str, Any] | None, defaults: Mapping[str, Any]) -> list[str]:
    """How a configSchema differs from an emulator's DEFAULTS (keys, defaults, types)."""
    props: Mapping[str, Any] = (schema or {}).get("properties") or {}
    out = [f"{k}: in DEFAULTS, not in configSchema" for k in defaults if k not in props]
    out += [f"{k}: in configSchema, not in DEFAULTS" for k in props if k not in defaults]
    for key in props.keys() & defaults.keys():
        prop, default = props[key], defaults[key]
        if prop.get("default") != default:
            out.append(f"{key}: default {prop.get('default')!r} != DEFAULTS {default!r}")
        if prop.get("type") != servicetemplates.property_schema(default)["type"]:
            out.append(f"{key}: type {prop.get('type')} does not hold {type(default).__name__}")
    if props and (schema or {}).get("additionalProperties") is not False:
        out.append("additionalProperties must be false: unknown keys would be ignored silently")
    return out


def test_there_is_one_template_per_builtin_service() -> None:
    assert sorted(TEMPLATES) == sorted(v1alpha1.BUILTIN_SERVICES)


@pytest.mark.parametrize("service", v1alpha1.BUILTIN_SERVICES)
def test_a_template_runs_its_launcher_from_the_service_image(service: str) -> None:
    spec = TEMPLATES[service]["spec"]
    assert spec["image"] == "decnet/emulator:0.1.0"
    assert spec["command"] == [servicetemplates.launchers()[service]]


@pytest.mark.parametrize("service", WITH_MODULE)
def test_a_template_config_schema_matches_its_emulators_defaults(service: str) -> None:
    mod = servicetemplates.module_for(service)
    assert schema_mismatches(TEMPLATES[service]["spec"].get("configSchema"), mod.DEFAULTS) == []


@pytest.mark.parametrize("service", WITH_MODULE)
def test_a_template_ports_are_its_emulators_ports(service: str) -> None:
    mod = servicetemplates.module_for(service)
    ports = [(p["port"], p["protocol"]) for p in TEMPLATES[service]["spec"]["ports"]]
    assert ports == [(int(p), proto) for p, proto in mod.PORTS]


def test_the_schema_comparison_catches_drift() -> None:
    defaults = {"serverHeader": "Apache", "port": 80, "users": ["root"]}
    good = servicetemplates.schema_from_defaults(defaults)
    assert schema_mismatches(good, defaults) == []
    renamed = {**good, "properties": {**good["properties"], "server_header": {"type": "string"}}}
    del renamed["properties"]["serverHeader"]
    assert len(schema_mismatches(renamed, defaults)) == 2
    other_default = {"serverHeader": "nginx", "port": 80, "users": ["root"]}
    assert schema_mismatches(good, other_default) == [
        "serverHeader: default 'Apache' != DEFAULTS 'nginx'"
    ]
    retyped = {"serverHeader": "Apache", "port": "80", "users": ["root"]}
    assert any("port: type integer" in m for m in schema_mismatches(good, retyped))


def test_a_schema_made_from_defaults_accepts_the_defaults_and_rejects_unknown_keys() -> None:
    from decnet.controller import configschema

    defaults = {"banner": "x", "allowLogin": True, "maxSessions": 4, "users": ["a:b"], "rootPassword": ""}
    schema = servicetemplates.schema_from_defaults(defaults)
    assert configschema.errors(defaults, schema) == []
    assert configschema.errors({"banner": 3}, schema) == ["banner: must be of type string"]
    assert configschema.errors({"bogus": 1}, schema) == ["bogus: unknown field"]
    assert schema["properties"]["rootPassword"]["format"] == "password"


def test_the_file_is_what_the_generator_writes() -> None:
    """`make manifests` regenerates it; an edit by hand or a changed DEFAULTS shows here."""
    expected = servicetemplates.render(servicetemplates.templates())
    assert (ROOT / "examples" / "servicetemplates.yaml").read_text() == expected


def test_the_chart_installs_the_same_file() -> None:
    chart_copy = ROOT / "charts" / "decnet-operator" / "files" / "servicetemplates.yaml"
    assert chart_copy.read_text() == (ROOT / "examples" / "servicetemplates.yaml").read_text()


def test_every_launcher_has_a_distinct_absolute_path_and_no_tell() -> None:
    table = (ROOT / "images" / "emulator" / "daemons.tsv").read_text()
    launchers = servicetemplates.launchers()
    assert sorted(launchers) == sorted(v1alpha1.BUILTIN_SERVICES)
    assert len(set(launchers.values())) == len(launchers)
    assert all(p.startswith("/") and " " not in p for p in launchers.values())
    for word in ("decnet", "honeypot", "deception", "emulat"):
        assert word not in table.lower()
