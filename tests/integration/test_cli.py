"""`kubectl decnet` against a real kube-apiserver.

The test applies the maze from examples/topology.yaml and writes the deckies'
status itself (as the operator and agent would), then runs the plugin the way
a user does and reads what it prints and what it changed on the server.
"""

from __future__ import annotations

import json
import os
import shutil
import stat
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

pytestmark = pytest.mark.integration

ROOT = Path(__file__).resolve().parents[2]
KubectlFn = Callable[..., subprocess.CompletedProcess[str]]


def _env(kubeconfig: str) -> dict[str, str]:
    env = dict(os.environ)
    env["KUBECONFIG"] = kubeconfig
    env["PYTHONPATH"] = os.pathsep.join([str(ROOT / "operator"), env.get("PYTHONPATH", "")])
    return env


def plugin(
    kubeconfig: str, *args: str, env: dict[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "decnet.cli.main", *args],
        capture_output=True,
        text=True,
        timeout=60,
        env=env or _env(kubeconfig),
    )


def _set_status(kubectl: KubectlFn, ns: str, name: str, status: dict[str, Any]) -> None:
    kubectl(
        "patch",
        f"deckies.decnet.io/{name}",
        "-n",
        ns,
        "--subresource=status",
        "--type=merge",
        "-p",
        json.dumps({"status": status}),
    )


def _cond(ctype: str, status: str, message: str = "") -> dict[str, Any]:
    return {
        "type": ctype,
        "status": status,
        "reason": "Test",
        "message": message,
        "lastTransitionTime": "2026-11-22T10:00:00Z",
    }


def _lifecycle(operation: str, phase: str, message: str = "") -> dict[str, Any]:
    return {
        "id": f"{operation}-{phase}",
        "operation": operation,
        "phase": phase,
        "message": message,
    }


@pytest.fixture
def maze(kubectl: KubectlFn, crds: list[str], namespace: str) -> str:
    kubectl("apply", "-n", namespace, "-f", str(ROOT / "examples" / "topology.yaml"))
    ready = [_cond("Ready", "True", "4 containers running"), _cond("Stalled", "False")]
    _set_status(
        kubectl,
        namespace,
        "gw",
        {
            "observedGeneration": 1,
            "node": "node-a",
            "services": ["http", "ftp"],
            "addresses": [{"lan": "dmz", "ip": "172.16.10.10"}],
            "lifecycle": _lifecycle("Deploy", "Succeeded"),
            "conditions": ready,
        },
    )
    _set_status(
        kubectl,
        namespace,
        "mail",
        {
            "observedGeneration": 1,
            "node": "node-a",
            "services": ["smtp", "imap"],
            "addresses": [
                {"lan": "dmz", "ip": "172.16.10.20"},
                {"lan": "corp", "ip": "172.16.11.20"},
            ],
            "lifecycle": _lifecycle("Deploy", "Succeeded"),
            "conditions": ready,
        },
    )
    _set_status(
        kubectl,
        namespace,
        "jump",
        {
            "observedGeneration": 1,
            "node": "node-b",
            "services": ["ssh"],
            "addresses": [
                {"lan": "corp", "ip": "172.16.11.7"},
                {"lan": "ops", "ip": "172.16.12.7"},
            ],
            "lifecycle": _lifecycle("Mutate", "Running"),
            "conditions": [_cond("Ready", "False"), _cond("Reconciling", "True")],
        },
    )
    _set_status(
        kubectl,
        namespace,
        "db-01",
        {
            "observedGeneration": 1,
            "node": "node-b",
            "services": ["mysql", "postgres", "redis"],
            "addresses": [{"lan": "ops", "ip": "172.16.12.5"}],
            "lifecycle": _lifecycle("Deploy", "Failed", "No such image: decnet/mysql:0.1.0"),
            "conditions": [_cond("Ready", "False"), _cond("Stalled", "False")],
        },
    )
    return namespace


def test_status_lists_deckies_per_node_with_the_failing_one_first(
    kubeconfig: str, maze: str
) -> None:
    result = plugin(kubeconfig, "status", "-n", maze)
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    assert [line for line in lines if line.startswith("NODE ")] == [
        "NODE node-b: 2 deckies (1 failing, 1 progressing)",
        "NODE node-a: 2 deckies (2 ready)",
    ]
    rows = [line.split()[0] for line in lines if line.startswith("  ") and "LIFECYCLE" not in line]
    assert rows == ["db-01", "jump", "gw", "mail"]
    db = next(line for line in lines if line.strip().startswith("db-01"))
    assert "Deploy/Failed" in db and "No such image: decnet/mysql:0.1.0" in db
    assert "172.16.12.5" in db and "mysql,postgres,redis" in db


def test_status_all_namespaces_shows_the_namespace(kubeconfig: str, maze: str) -> None:
    result = plugin(kubeconfig, "status", "-A")
    assert result.returncode == 0, result.stderr
    # Earlier tests' namespaces may still list their own gw (no namespace controller
    # runs beside this API server): find this maze's row by its namespace column.
    rows = [line.split() for line in result.stdout.splitlines()]
    assert [maze, "gw"] in [row[:2] for row in rows]


def test_mutate_sets_a_fresh_request_annotation_each_time(
    kubeconfig: str, kubectl: KubectlFn, maze: str
) -> None:
    jsonpath = "-o=jsonpath={.metadata.annotations.decnet\\.io/mutate-request}"
    tokens = []
    for _ in range(2):
        result = plugin(kubeconfig, "mutate", "gw", "-n", maze)
        assert result.returncode == 0, result.stderr
        assert "decky.decnet.io/gw mutation requested" in result.stdout
        tokens.append(kubectl("get", "deckies.decnet.io/gw", "-n", maze, jsonpath).stdout)
    assert tokens[0] and tokens[1] and tokens[0] != tokens[1]
    assert tokens[1] in result.stdout
    spec = json.loads(kubectl("get", "deckies.decnet.io/gw", "-n", maze, "-o", "json").stdout)
    assert spec["metadata"]["generation"] == 1  # an annotation, never a spec change


def test_mutate_of_a_missing_decky_fails_with_the_servers_message(
    kubeconfig: str, maze: str
) -> None:
    result = plugin(kubeconfig, "mutate", "nope", "-n", maze)
    assert result.returncode == 1
    assert 'deckies.decnet.io "nope" not found' in result.stderr


def test_topology_prints_the_maze_as_a_tree(kubeconfig: str, maze: str) -> None:
    result = plugin(kubeconfig, "topology", "maze-1", "-n", maze)
    assert result.returncode == 0, result.stderr
    assert result.stdout.splitlines()[1:] == [
        "├── LAN dmz 172.16.10.0/24 [DMZ]",
        "│   ├── gw 172.16.10.10 [http, ftp] gateway",
        "│   └── mail 172.16.10.20 [smtp, imap]",
        "├── LAN corp 172.16.11.0/24",
        "│   ├── jump 172.16.11.7 [ssh] (not ready)",
        "│   └── mail 172.16.11.20 [smtp, imap] (multi-homed)",
        "└── LAN ops 172.16.12.0/24",
        "    ├── db-01 172.16.12.5 [mysql, postgres, redis] FAILING",
        "    └── jump 172.16.12.7 [ssh] (multi-homed) (not ready)",
    ]
    assert result.stdout.startswith(f"Topology {maze}/maze-1")


def test_topology_dot_and_svg(kubeconfig: str, maze: str) -> None:
    dot = plugin(kubeconfig, "topology", "maze-1", "-n", maze, "--format", "dot")
    assert dot.returncode == 0, dot.stderr
    assert dot.stdout.startswith('graph "maze-1" {')
    assert dot.stdout.count(" -- ") == 6  # gw 1, mail 2, jump 2, db-01 1
    svg = plugin(kubeconfig, "topology", "maze-1", "-n", maze, "--format", "svg")
    if shutil.which("dot"):
        assert svg.returncode == 0, svg.stderr
        assert "<svg" in svg.stdout and "db-01" in svg.stdout
    else:
        assert svg.returncode == 2
        assert "needs Graphviz's `dot`" in svg.stderr


def test_unknown_topology_fails_with_the_servers_message(kubeconfig: str, maze: str) -> None:
    result = plugin(kubeconfig, "topology", "maze-9", "-n", maze)
    assert result.returncode == 1
    assert 'topologies.decnet.io "maze-9" not found' in result.stderr


def test_kubectl_finds_the_plugin_on_path(
    kubeconfig: str, kubectl_binary: str, maze: str, tmp_path: Path
) -> None:
    shim = tmp_path / "kubectl-decnet"
    shim.write_text(f'#!/bin/sh\nexec "{sys.executable}" -m decnet.cli.main "$@"\n')
    shim.chmod(shim.stat().st_mode | stat.S_IXUSR)
    env = _env(kubeconfig)
    env["PATH"] = os.pathsep.join([str(tmp_path), env.get("PATH", "")])
    result = subprocess.run(
        [kubectl_binary, "decnet", "status", "-n", maze],
        capture_output=True,
        text=True,
        timeout=60,
        env=env,
    )
    assert result.returncode == 0, result.stderr
    assert "NODE node-b: 2 deckies" in result.stdout
