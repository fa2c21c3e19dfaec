"""Golden container hashes: an unchanged decky's containers are never recreated by an upgrade.

The hashes below were taken before the agent's hash became `v1alpha1.digest`.
"""

from decnet.agent import hardening, planner


def test_an_unchanged_decky_keeps_its_container_hashes_across_the_upgrade() -> None:
    want = planner.DeckyWant(
        namespace="n",
        name="d",
        uid="u",
        plan_hash="p",
        hostname="h",
        base_image="b",
        networks=(
            planner.NetworkWant("office", "office-1", "10.0.0.2", "10.0.0.0/24", "10.0.0.1"),
        ),
    )
    svc = planner.ServiceWant("ssh", "img", ("a",), (("K", "V"),), "c", hardening.Security())
    assert planner.base_hash(want) == "f8cb0e3b28a409c9"
    assert planner.service_hash(svc, "bid", ("/x",)) == "b4fb3e0aef86cf68"
