"""What `kubectl decnet` prints, pinned on plain object dicts (no cluster)."""

from __future__ import annotations

import datetime
from typing import Any

from decnet.cli import render
from decnet.kube import names


def cond(ctype: str, status: str, message: str = "", reason: str = "") -> dict[str, Any]:
    return {"type": ctype, "status": status, "message": message, "reason": reason}


def decky(
    name: str,
    node: str | None = "node-a",
    ready: str = "True",
    phase: str = "Succeeded",
    operation: str = "Deploy",
    message: str = "",
    networks: list[dict[str, Any]] | None = None,
    addresses: list[dict[str, str]] | None = None,
    services: list[str] | None = None,
    stalled: str = "False",
    stalled_message: str = "",
    generation: int = 1,
    observed: int = 1,
    namespace: str = "decoys",
    gateway: bool = False,
) -> dict[str, Any]:
    status: dict[str, Any] = {
        "observedGeneration": observed,
        "lifecycle": {"id": "x", "operation": operation, "phase": phase, "message": message},
        "conditions": [cond("Ready", ready), cond("Stalled", stalled, stalled_message)],
        "services": services if services is not None else ["ssh", "http"],
        "addresses": addresses if addresses is not None else [{"lan": "office", "ip": "10.0.0.5"}],
    }
    if node:
        status["node"] = node
    return {
        "metadata": {"name": name, "namespace": namespace, "generation": generation},
        "spec": {"networks": networks or [{"lan": "office"}], "forwardsL3": gateway},
        "status": status,
    }


def test_mutation_token_is_a_fresh_utc_timestamp_and_patch_touches_only_the_annotation() -> None:
    moment = datetime.datetime(2026, 11, 22, 10, 0, 0, 123456, tzinfo=datetime.UTC)
    token = render.mutation_token(moment)
    assert token == "2026-11-22T10:00:00.123456Z"
    assert render.mutation_token() != render.mutation_token(moment)
    assert render.mutate_patch(token) == {
        "metadata": {"annotations": {names.ANNOTATION_MUTATE_REQUEST: token}}
    }


def test_severity_failing_progressing_ready() -> None:
    assert render.severity(decky("a")) == render.READY
    assert render.severity(decky("b", phase="Failed", ready="False")) == render.FAILING
    assert render.severity(decky("c", stalled="True")) == render.FAILING
    assert render.severity(decky("d", ready="False", phase="Running")) == render.PROGRESSING
    assert render.severity(decky("e", generation=2, observed=1)) == render.PROGRESSING
    assert render.severity({"metadata": {"name": "f"}}) == render.PROGRESSING


def test_status_groups_per_node_with_failing_first() -> None:
    objs = [
        decky("ok-1", node="node-a"),
        decky("ok-2", node="node-b"),
        decky("bad", node="node-b", ready="False", phase="Failed", message="No such image: x"),
        decky("new", node=None, ready="Unknown", phase="Pending"),
        decky("busy", node="node-a", ready="False", phase="Running", operation="Mutate"),
    ]
    out = render.status_table(objs)
    lines = out.splitlines()
    node_lines = [line for line in lines if line.startswith("NODE ")]
    assert node_lines == [
        "NODE node-b: 2 deckies (1 failing, 1 ready)",
        "NODE node-a: 2 deckies (1 progressing, 1 ready)",
        "NODE <unscheduled>: 1 decky (1 progressing)",
    ]
    body = [line.split()[0] for line in lines if line.startswith("  ") and "NAME" not in line]
    assert body == ["bad", "ok-2", "busy", "ok-1", "new"]
    bad = next(line for line in lines if line.strip().startswith("bad"))
    assert "Deploy/Failed" in bad and "No such image: x" in bad
    busy = next(line for line in lines if line.strip().startswith("busy"))
    assert "Mutate/Running" in busy


def test_status_all_namespaces_adds_the_namespace_column() -> None:
    out = render.status_table([decky("a", namespace="red"), decky("b", namespace="blue")], True)
    header = next(line for line in out.splitlines() if "NAME" in line)
    assert header.split()[:2] == ["NAMESPACE", "NAME"]
    rows = [
        line.split() for line in out.splitlines() if line.startswith("  ") and "NAME" not in line
    ]
    assert [r[:2] for r in rows] == [["blue", "b"], ["red", "a"]]


def test_status_with_no_deckies_says_so() -> None:
    assert render.status_table([]) == "No deckies found.\n"


def test_long_messages_are_cut_to_one_line() -> None:
    obj = decky("a", phase="Failed", ready="False", message="line one\n" + "x" * 300)
    row = render.status_rows([obj])[0]
    assert "\n" not in row.message and len(row.message) == render.MESSAGE_WIDTH
    assert row.message.startswith("line one x") and row.message.endswith("...")


def maze() -> tuple[dict[str, Any], list[dict[str, Any]], list[dict[str, Any]]]:
    topology = {
        "metadata": {"name": "maze-1", "namespace": "decoys", "generation": 1},
        "spec": {"nodeName": "node-a"},
        "status": {
            "observedGeneration": 1,
            "conditions": [cond("Ready", "False")],
            "issues": [
                {
                    "code": "DECKY_ORPHAN",
                    "severity": "Warning",
                    "message": "no LAN",
                    "object": "lost",
                }
            ],
        },
    }
    lans = [
        {
            "metadata": {"name": "office"},
            "spec": {"topology": "maze-1"},
            "status": {"subnet": "172.16.1.0/24"},
        },
        {
            "metadata": {"name": "dmz"},
            "spec": {"topology": "maze-1", "dmz": True, "subnet": "172.16.0.0/24"},
        },
        {"metadata": {"name": "other"}, "spec": {"topology": "maze-2"}},
        {"metadata": {"name": "empty", "labels": {names.LABEL_TOPOLOGY: "maze-1"}}, "spec": {}},
    ]
    deckies = [
        decky(
            "gw",
            networks=[{"lan": "dmz"}, {"lan": "office"}],
            addresses=[{"lan": "dmz", "ip": "172.16.0.10"}, {"lan": "office", "ip": "172.16.1.1"}],
            gateway=True,
        ),
        decky(
            "ws-01",
            networks=[{"lan": "office", "ip": "172.16.1.5"}],
            addresses=[],
            services=["smb", "rdp"],
            ready="False",
            phase="Failed",
        ),
        decky("elsewhere", networks=[{"lan": "other"}]),
    ]
    return topology, lans, deckies


def test_topology_text_tree_shows_lans_dmz_first_and_attached_deckies() -> None:
    view = render.topology_view(*maze())
    assert render.topology_text(view) == (
        "Topology decoys/maze-1  node=node-a  Ready=False\n"
        "├── LAN dmz 172.16.0.0/24 [DMZ]\n"
        "│   └── gw 172.16.0.10 [ssh, http] gateway\n"
        "├── LAN empty -\n"
        "│   └── (no deckies)\n"
        "└── LAN office 172.16.1.0/24\n"
        "    ├── gw 172.16.1.1 [ssh, http] gateway (multi-homed)\n"
        "    └── ws-01 172.16.1.5 [smb, rdp] FAILING\n"
        "Issues:\n"
        "  Warning DECKY_ORPHAN: no LAN (lost)\n"
    )


def test_topology_dot_has_one_node_per_decky_and_one_edge_per_attachment() -> None:
    dot = render.topology_dot(render.topology_view(*maze()))
    assert dot.startswith('graph "maze-1" {') and dot.rstrip().endswith("}")
    assert dot.count('"decky/gw" [') == 1
    assert dot.count(" -- ") == 3
    assert '"decky/gw" -- "lan/office" [label="172.16.1.1", style=dashed];' in dot
    assert '"decky/ws-01" [shape=ellipse, label="ws-01\\nsmb, rdp", color=red];' in dot
    assert "fillcolor" in dot.split('"lan/dmz"')[1].split("\n")[0]
    assert "elsewhere" not in dot


def test_topology_without_lans_renders() -> None:
    topology = {"metadata": {"name": "t", "namespace": "n"}, "spec": {}}
    view = render.topology_view(topology, [], [])
    assert render.topology_text(view) == "Topology n/t  node=-  Ready=Unknown\n└── (no LANs)\n"


def test_svg_without_graphviz_fails_clearly_before_touching_the_cluster(
    tmp_path: Any, monkeypatch: Any, capsys: Any
) -> None:
    from decnet.cli import main

    monkeypatch.setenv("PATH", str(tmp_path))
    code = main.main(["topology", "maze-1", "--format", "svg", "--kubeconfig", "/nonexistent"])
    assert code == 2
    assert "needs Graphviz's `dot`" in capsys.readouterr().err
