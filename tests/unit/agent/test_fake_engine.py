"""The in-memory engine answers the real Engine as Docker would (converge, observe, remove),
and fails on request with Docker's error kinds (simulated nodes in bench/bench_scale.py)."""

from __future__ import annotations

import tempfile

import pytest

from decnet.agent import converge, lures
from decnet.agent import planner as p
from decnet.agent.runtime import engine as runtime
from decnet.agent.runtime import fakedocker
from decnet.kube import names

NS = "decoys"
OFFICE = p.NetworkWant(
    "office", names.network_name(NS, "office"), "10.20.0.15", "10.20.0.0/24", "10.20.0.1"
)


def want(name: str = "ws-01") -> p.DeckyWant:
    return p.DeckyWant(
        namespace=NS,
        name=name,
        uid=f"uid-{name}",
        plan_hash="plan-1",
        hostname=name.upper(),
        base_image="decnet/base:0.1.0",
        networks=(OFFICE,),
        services=(
            p.ServiceWant("smb", "decnet/svc:1", ("sleep", "1"), (), ""),
            p.ServiceWant("rdp", "decnet/svc:1", ("sleep", "1"), (), ""),
        ),
        files=(),
    )


def fake(failure_rate: float = 0.0) -> runtime.Engine:
    store = lures.LureStore(tempfile.mkdtemp(prefix="decnet-fake-lures-"))
    return fakedocker.engine("node-a", failure_rate=failure_rate, lure_store=store)


def test_a_decky_converges_on_the_fake_engine_and_a_second_pass_changes_nothing() -> None:
    eng = fake()
    w = want()
    outcome = converge.converge_and_settle(eng, w, settle_seconds=0.01)
    assert outcome.state == "Converged"
    seen = eng.observe_decky(NS, w.name, with_files=False)
    roles = sorted(c.labels[names.LABEL_ROLE] for c in seen.containers)
    assert roles == [names.ROLE_BASE, names.ROLE_SERVICE, names.ROLE_SERVICE]
    assert {c.state for c in seen.containers} == {"running"}
    base = next(c for c in seen.containers if c.labels[names.LABEL_ROLE] == names.ROLE_BASE)
    assert base.networks == {OFFICE.network: OFFICE.ip}
    assert [n.name for n in seen.networks] == [OFFICE.network]
    assert p.plan_decky(w, seen) == []


def test_removal_leaves_no_container_and_the_unused_network_goes() -> None:
    eng = fake()
    for name in ("ws-01", "ws-02"):
        converge.converge(eng, want(name))
    assert converge.remove(eng, NS, "ws-01", "uid-ws-01").observed.containers == ()
    # still used by ws-02: kept, as Docker refuses with active endpoints
    eng.remove_network(eng.list_networks()[0].id)
    assert len(eng.list_networks()) == 1
    converge.remove(eng, NS, "ws-02", "uid-ws-02")
    eng.remove_network(eng.list_networks()[0].id)
    assert eng.observe_node().containers == () and eng.list_networks() == []


def test_injected_failures_come_out_as_docker_refusals() -> None:
    eng = fake(failure_rate=1.0)
    with pytest.raises(runtime.DockerError, match="injected failure"):
        converge.converge(eng, want())
    eng.ping()  # reads never fail
