"""The Argo CD health check (docs/argocd/health.lua) on sample objects.

Argo CD runs the script with gopher-lua (Lua 5.1), handing it the object as the
global `obj`; lupa's Lua 5.1 runtime does the same here, so what these tests
see is what an Argo CD user sees in the UI.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml

lupa = pytest.importorskip("lupa.lua51")

DOCS = Path(__file__).resolve().parents[3] / "docs" / "argocd"
SCRIPT = (DOCS / "health.lua").read_text()


def _to_lua(runtime: Any, value: Any) -> Any:
    if isinstance(value, dict):
        return runtime.table_from({k: _to_lua(runtime, v) for k, v in value.items()})
    if isinstance(value, list):
        return runtime.table_from([_to_lua(runtime, v) for v in value])
    return value


def health(obj: dict[str, Any], script: str = SCRIPT) -> tuple[str, str]:
    runtime = lupa.LuaRuntime(unpack_returned_tuples=True)
    runtime.globals().obj = _to_lua(runtime, obj)
    result = runtime.execute(script)
    return str(result["status"]), str(result["message"])


def _cond(
    ctype: str, status: str, reason: str = "", message: str = "", gen: int = 2
) -> dict[str, Any]:
    return {
        "type": ctype,
        "status": status,
        "reason": reason,
        "message": message,
        "observedGeneration": gen,
        "lastTransitionTime": "2026-11-22T10:00:00Z",
    }


def decky(
    generation: int = 2, status: dict[str, Any] | None = None, kind: str = "Decky"
) -> dict[str, Any]:
    obj: dict[str, Any] = {
        "apiVersion": "decnet.io/v1alpha1",
        "kind": kind,
        "metadata": {"name": "ws-01", "namespace": "decoys", "generation": generation},
        "spec": {"services": ["smb", "rdp"], "networks": [{"lan": "office"}]},
    }
    if status is not None:
        obj["status"] = status
    return obj


def test_no_status_yet_is_progressing() -> None:
    status, message = health(decky())
    assert status == "Progressing"
    assert "observe" in message


def test_ready_at_current_generation_is_healthy() -> None:
    obj = decky(
        status={
            "observedGeneration": 2,
            "lifecycle": {"operation": "deploy", "phase": "succeeded"},
            "conditions": [
                _cond("Ready", "True", "Converged", "3 containers running"),
                _cond("Stalled", "False"),
                _cond("Reconciling", "False"),
            ],
        }
    )
    assert health(obj) == ("Healthy", "3 containers running")


def test_ready_but_new_generation_not_observed_is_progressing() -> None:
    obj = decky(
        generation=3,
        status={
            "observedGeneration": 2,
            "conditions": [_cond("Ready", "True", "Converged")],
        },
    )
    status, message = health(obj)
    assert status == "Progressing"
    assert "generation 3" in message


def test_stalled_is_degraded_with_its_message() -> None:
    obj = decky(
        status={
            "observedGeneration": 2,
            "lifecycle": {"operation": "update", "phase": "succeeded"},
            "conditions": [
                _cond("Ready", "False", "RecreateRefused"),
                _cond(
                    "Stalled",
                    "True",
                    "RecreateRefused",
                    'forwardsL3 changed: set annotation decnet.io/allow-recreate: "true"',
                ),
            ],
        }
    )
    status, message = health(obj)
    assert status == "Degraded"
    assert "decnet.io/allow-recreate" in message


def test_failed_lifecycle_is_degraded_with_dockers_error() -> None:
    obj = decky(
        status={
            "observedGeneration": 2,
            "lifecycle": {
                "operation": "deploy",
                "phase": "failed",
                "message": "No such image: decnet/smb:0.1.0",
            },
            "conditions": [_cond("Ready", "False", "DeployFailed")],
        }
    )
    assert health(obj) == ("Degraded", "No such image: decnet/smb:0.1.0")


def test_running_lifecycle_is_progressing() -> None:
    obj = decky(
        status={
            "observedGeneration": 2,
            "lifecycle": {"operation": "mutate", "phase": "running"},
            "conditions": [_cond("Ready", "False", "Reconciling"), _cond("Reconciling", "True")],
        }
    )
    assert health(obj) == ("Progressing", "mutate running")


def test_ready_unknown_after_lost_agent_is_progressing_not_healthy() -> None:
    obj = decky(
        status={
            "observedGeneration": 2,
            "lifecycle": {"operation": "deploy", "phase": "succeeded"},
            "conditions": [_cond("Ready", "Unknown", "AgentLost", "node-a's agent lease expired")],
        }
    )
    assert health(obj) == ("Progressing", "node-a's agent lease expired")


def test_lan_without_lifecycle_follows_its_conditions() -> None:
    ready = decky(
        kind="LAN",
        generation=1,
        status={
            "observedGeneration": 1,
            "subnet": "10.20.0.0/24",
            "conditions": [_cond("Ready", "True", "Allocated", gen=1)],
        },
    )
    assert health(ready)[0] == "Healthy"
    pending = decky(kind="LAN", generation=1, status={"observedGeneration": 1, "conditions": []})
    assert health(pending)[0] == "Progressing"


def test_topology_with_validation_errors_is_degraded() -> None:
    obj = decky(
        kind="Topology",
        generation=4,
        status={
            "observedGeneration": 4,
            "issues": [
                {
                    "code": "DMZ_MISSING",
                    "severity": "error",
                    "message": "no DMZ LAN",
                    "object": "maze-1",
                }
            ],
            "conditions": [
                _cond("Ready", "False", "Invalid", gen=4),
                _cond("Stalled", "True", "Invalid", "DMZ_MISSING: no DMZ LAN", gen=4),
            ],
        },
    )
    assert health(obj) == ("Degraded", "DMZ_MISSING: no DMZ LAN")


def test_stale_stalled_status_after_a_fix_is_progressing() -> None:
    obj = decky(
        generation=5,
        status={
            "observedGeneration": 4,
            "conditions": [_cond("Stalled", "True", "Invalid", "bad", gen=4)],
        },
    )
    assert health(obj)[0] == "Progressing"


def test_argocd_cm_snippet_carries_the_same_script_for_each_kind() -> None:
    cm = yaml.safe_load((DOCS / "argocd-cm.yaml").read_text())
    for kind in ("Decky", "LAN", "Topology"):
        embedded = cm["data"][f"resource.customizations.health.decnet.io_{kind}"]
        assert embedded.strip() == SCRIPT.strip(), kind


def test_application_example_prunes_and_uses_server_side_apply() -> None:
    app = yaml.safe_load((DOCS / "application.yaml").read_text())
    policy = app["spec"]["syncPolicy"]
    assert policy["automated"]["prune"] is True
    assert "ServerSideApply=true" in policy["syncOptions"]
