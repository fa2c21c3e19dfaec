"""Every health_test.yaml case under docs/argocd/resource_customizations, through Argo CD's
own code: no Lua runtime of ours.

- hack/argocd-health (built against the argo-cd module, hack/build-binaries.sh argocd) runs
  each script in Argo CD's sandboxed health VM, as the application controller runs a script
  from argocd-cm;
- `argocd admin settings resource-overrides health` reads the generated
  docs/argocd/argocd-cm.yaml the way Argo CD parses its ConfigMap, so the snippet users
  merge is checked too, not only the tree it is generated from.
"""

from __future__ import annotations

import json
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml
from tests.support import require

ROOT = Path(__file__).resolve().parents[2]
TREE = ROOT / "docs" / "argocd" / "resource_customizations"
CURRENT = Path.home() / ".cache" / "decnet-operator" / "bin" / "current"


def _bin(name: str) -> Path:
    import os

    cache = os.environ.get("DECNET_CACHE")
    return (Path(cache) / "bin" / "current" if cache else CURRENT) / name


def cases() -> list[tuple[str, str, dict[str, str]]]:
    found = []
    for tests in sorted(TREE.glob("*/*/health_test.yaml")):
        script = tests.parent.joinpath("health.lua").relative_to(TREE).as_posix()
        for case in yaml.safe_load(tests.read_text())["tests"]:
            found.append((script, case["inputPath"], case["healthStatus"]))
    return found


CASES = cases()
IDS = [f"{script.split('/')[1]}/{Path(path).stem}" for script, path, _ in CASES]


@pytest.fixture(scope="module")
def driver_results() -> dict[tuple[str, str], dict[str, Any]]:
    driver = _bin("argocd-health")
    require(driver.exists(), f"{driver} not built (hack/build-binaries.sh argocd)")
    run = subprocess.run([str(driver), str(TREE)], capture_output=True, text=True, timeout=120)
    assert run.returncode in (0, 1), run.stderr
    results = [json.loads(line) for line in run.stdout.splitlines()]
    assert len(results) == len(CASES), run.stderr
    return {(r["script"], r["input"]): r for r in results}


@pytest.mark.parametrize(("script", "input_path", "expected"), CASES, ids=IDS)
def test_argocds_health_vm_returns_the_expected_status(
    driver_results: dict[tuple[str, str], dict[str, Any]],
    script: str,
    input_path: str,
    expected: dict[str, str],
) -> None:
    result = driver_results[(script, input_path)]
    assert not result.get("error"), result["error"]
    assert result["got"] == expected
    assert result["pass"]


@pytest.mark.parametrize(("script", "input_path", "expected"), CASES, ids=IDS)
def test_the_generated_argocd_cm_gives_the_same_status_in_the_argocd_cli(
    script: str, input_path: str, expected: dict[str, str]
) -> None:
    argocd = _bin("argocd")
    require(argocd.exists(), f"{argocd} not built (hack/build-binaries.sh argocd)")
    obj = TREE / Path(script).parent / input_path
    run = subprocess.run(
        [
            str(argocd),
            "admin",
            "settings",
            "resource-overrides",
            "health",
            str(obj),
            "--argocd-cm-path",
            str(ROOT / "docs" / "argocd" / "argocd-cm.yaml"),
        ],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert run.returncode == 0, run.stderr
    assert f"STATUS: {expected['status']}" in run.stdout, run.stdout
    assert f"MESSAGE: {expected['message']}" in run.stdout, run.stdout
