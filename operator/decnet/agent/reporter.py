"""The agent's report: status.containers and status.agent, per docs/internals.md.

Pure: built from the observation and the outcome of a converge, compared with
what status already holds so that an unchanged report is never written (no
heartbeat writes), and wrapped into a server-side-apply body that carries
exactly the two fields the agent owns.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from decnet.agent import planner
from decnet.api import v1alpha1
from decnet.kube import names


def build_report(
    node: str,
    want: planner.DeckyWant | None,
    reported_hash: str,
    lifecycle_id: str,
    state: v1alpha1.AgentState,
    message: str,
    containers: Sequence[planner.ContainerSeen],
    reason: str = "",
) -> dict[str, Any]:
    """{containers, agent} in wire form (camelCase), containers sorted base first;
    `reported_hash` is the hash of the plan the report answers (status.agent.planHash),
    also given to each container that is current with it;
    `reason` (v1alpha1.AGENT_REASONS) only with state Failed."""
    state = v1alpha1.AgentState(state)
    assert reason == "" or (
        state == v1alpha1.AgentState.FAILED and reason in v1alpha1.AGENT_REASONS
    ), reason
    base = next((c for c in containers if c.role == names.ROLE_BASE), None)
    expected: dict[str, str] = {}
    if want is not None:
        expected[want.base_name] = planner.base_hash(want)
        if base is not None:
            for svc in want.services:
                expected[want.service_name(svc.name)] = planner.service_hash(
                    svc, base.id, want.lure_paths
                )
    rows = []
    for c in sorted(containers, key=lambda c: (c.role != names.ROLE_BASE, c.name)):
        current = bool(c.container_hash) and expected.get(c.name) == c.container_hash
        rows.append(
            {
                "name": c.name,
                "id": c.id,
                "role": c.role if c.role in (names.ROLE_BASE, names.ROLE_SERVICE) else "service",
                "service": c.service,
                "state": c.state,
                "planHash": reported_hash if current else "",
            }
        )
    agent = {
        "node": node,
        "planHash": reported_hash,
        "state": state,
        "message": v1alpha1.cap_message(message),
        "lifecycleId": lifecycle_id,
    }
    if reason:
        # absent rather than empty: server-side apply then drops a reason that no longer holds
        agent["reason"] = reason
    return {"containers": rows, "agent": agent}


def _normal_agent(raw: Any) -> dict[str, Any] | None:
    if not raw:
        return None
    return v1alpha1.AgentReport.model_validate(raw).model_dump(by_alias=True)


def _normal_containers(raw: Any) -> list[dict[str, Any]]:
    return [v1alpha1.ContainerStatus.model_validate(c).model_dump(by_alias=True) for c in raw or []]


def differs(status: Mapping[str, Any] | None, report: Mapping[str, Any]) -> bool:
    """True when status does not already hold exactly this report."""
    status = status or {}
    return _normal_agent(status.get("agent")) != _normal_agent(report["agent"]) or (
        _normal_containers(status.get("containers")) != _normal_containers(report["containers"])
    )


def apply_body(namespace: str, name: str, report: Mapping[str, Any]) -> dict[str, Any]:
    """The SSA body for the status subresource: only the agent's two fields."""
    return {
        "apiVersion": names.API_VERSION,
        "kind": "Decky",
        "metadata": {"name": name, "namespace": namespace},
        "status": {"containers": list(report["containers"]), "agent": dict(report["agent"])},
    }
