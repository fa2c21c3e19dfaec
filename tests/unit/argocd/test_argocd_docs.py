"""docs/argocd: the health-check tree is complete and the examples say what the docs claim.

Whether the scripts return what health_test.yaml expects is Argo CD's own Lua code's call
(tests/integration/test_argocd_health.py); here only the shape of the tree and the YAML.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[3]
DOCS = ROOT / "docs" / "argocd"
TREE = DOCS / "resource_customizations"
sys.path.insert(0, str(ROOT / "hack"))

import argocd_cm  # noqa: E402  (hack/argocd_cm.py)

KINDS = ("Decky", "LAN", "Topology")


@pytest.mark.parametrize("kind", KINDS)
def test_every_kind_has_a_script_tests_and_testdata_of_its_own_kind(kind: str) -> None:
    folder = TREE / "decnet.io" / kind
    assert (folder / "health.lua").is_file()
    tests = yaml.safe_load((folder / "health_test.yaml").read_text())["tests"]
    statuses = {t["healthStatus"]["status"] for t in tests}
    assert {"Healthy", "Progressing", "Degraded"} <= statuses, statuses
    for test in tests:
        obj = yaml.safe_load((folder / test["inputPath"]).read_text())
        assert (obj["apiVersion"], obj["kind"]) == ("decnet.io/v1alpha1", kind), test
        assert test["healthStatus"]["message"], test  # Argo CD shows it: never empty


def test_no_script_uses_the_lua_string_library_argocd_cm_scripts_do_not_get() -> None:
    for path in TREE.glob("*/*/health.lua"):
        code = "\n".join(line.split("--")[0] for line in path.read_text().splitlines())
        assert "string." not in code and ":format(" not in code, path


def test_argocd_cm_carries_each_script_under_its_group_and_kind() -> None:
    cm = yaml.safe_load((DOCS / "argocd-cm.yaml").read_text())
    for kind in KINDS:
        script = (TREE / "decnet.io" / kind / "health.lua").read_text()
        assert cm["data"][f"resource.customizations.health.decnet.io_{kind}"] == script
    assert (DOCS / "argocd-cm.yaml").read_text() == argocd_cm.render()


def _app(path: str) -> list[dict[str, Any]]:
    return [d for d in yaml.safe_load_all((DOCS / path).read_text()) if d]


def test_application_prunes_self_heals_and_applies_server_side() -> None:
    (app,) = _app("application.yaml")
    policy = app["spec"]["syncPolicy"]
    assert policy["automated"] == {"prune": True, "selfHeal": True}
    assert "ServerSideApply=true" in policy["syncOptions"]
    assert app["spec"]["destination"]["server"] == "https://kubernetes.default.svc"


def test_applicationset_makes_one_application_per_site_with_the_same_policy() -> None:
    (appset,) = _app("applicationset.yaml")
    (app,) = _app("application.yaml")
    template = appset["spec"]["template"]
    assert template["spec"]["syncPolicy"] == app["spec"]["syncPolicy"]
    assert "{{" in template["metadata"]["name"] and "{{" in template["spec"]["source"]["path"]
