"""The planner decides every Docker change; these tests pin each rule of issue 5."""

from __future__ import annotations

import dataclasses
import hashlib

from decnet.agent import planner as p
from decnet.kube import names

NS = "decoys"
IMAGE = "decnet/svc:1"
OFFICE = p.NetworkWant(
    "office", names.network_name(NS, "office"), "10.20.0.15", "10.20.0.0/24", "10.20.0.1"
)
DMZ = p.NetworkWant(
    "dmz", names.network_name(NS, "dmz"), "10.30.0.5", "10.30.0.0/24", "10.30.0.1", dmz=True
)
LAB = p.NetworkWant("lab", names.network_name(NS, "lab"), "10.40.0.7", "10.40.0.0/24", "10.40.0.1")


def svc(name: str, image: str = IMAGE, config_hash: str = "") -> p.ServiceWant:
    return p.ServiceWant(name, image, ("sleep", "3600"), (("A", "1"),), config_hash)


def lure(
    path: str = "/home/admin/passwords.txt", mode: int = 0o600, content: bytes = b"pw"
) -> p.FileWant:
    return p.FileWant(path, mode, -864000, hashlib.sha256(content).hexdigest(), content)


def want(**kw: object) -> p.DeckyWant:
    base: dict[str, object] = dict(
        namespace=NS,
        name="ws-01",
        uid="uid-1",
        plan_hash="plan-1",
        hostname="WS-01",
        base_image="decnet/base:0.1.0",
        networks=(OFFICE,),
        services=(svc("smb"), svc("rdp")),
        files=(),
    )
    base.update(kw)
    return p.DeckyWant(**base)  # type: ignore[arg-type]


def labels(
    w: p.DeckyWant, role: str, service: str, hash_: str, uid: str | None = None
) -> dict[str, str]:
    return {
        names.LABEL_MANAGED_BY: names.MANAGED_BY,
        names.LABEL_NAMESPACE: w.namespace,
        names.LABEL_DECKY: w.name,
        names.LABEL_UID: uid or w.uid,
        names.LABEL_ROLE: role,
        names.LABEL_SERVICE: service,
        names.LABEL_CONTAINER_HASH: hash_,
    }


def base_of(w: p.DeckyWant, state: str = "running", **kw: object) -> p.ContainerSeen:
    c = p.ContainerSeen(
        id="base-id",
        name=w.base_name,
        labels=labels(w, names.ROLE_BASE, "", p.base_hash(w)),
        state=state,
        networks={n.network: n.ip for n in w.networks},
        network_mode=w.networks[0].network,
    )
    return dataclasses.replace(c, **kw)  # type: ignore[arg-type]


def service_of(
    w: p.DeckyWant, s: p.ServiceWant, state: str = "running", base_id: str = "base-id"
) -> p.ContainerSeen:
    return p.ContainerSeen(
        id=f"{s.name}-id",
        name=w.service_name(s.name),
        labels=labels(w, names.ROLE_SERVICE, s.name, p.service_hash(s, base_id, w.lure_paths)),
        state=state,
    )


def net_labels(lan: str, ns: str = NS) -> dict[str, str]:
    return {
        names.LABEL_MANAGED_BY: names.MANAGED_BY,
        names.LABEL_NAMESPACE: ns,
        names.LABEL_LAN: lan,
    }


def networks_of(*nets: p.NetworkWant) -> tuple[p.NetworkSeen, ...]:
    return tuple(
        p.NetworkSeen(
            f"{n.network}-id",
            n.network,
            net_labels(n.lan),
            n.driver,
            n.subnet,
            n.gateway,
            n.internal,
        )
        for n in nets
    )


def running(w: p.DeckyWant, manifest: dict[str, str] | None = None) -> p.Observed:
    """Docker exactly as `w` wants it."""
    base = base_of(w)
    files = {w.uid: manifest if manifest is not None else {f.path: f.digest for f in w.files or ()}}
    return p.Observed(
        (base, *(service_of(w, s) for s in w.services)), networks_of(OFFICE, DMZ, LAB), files
    )


def kinds(actions: list[p.Action]) -> list[str]:
    return [type(a).__name__ for a in actions]


# --------------------------------------------------------------------------- fresh deploy


def test_fresh_decky_creates_its_networks_then_only_the_base() -> None:
    w = want(networks=(OFFICE, LAB))
    actions = p.plan_decky(w, p.Observed())
    assert kinds(actions) == ["EnsureNetwork", "EnsureNetwork", "CreateBase"]
    assert [a.net.network for a in actions if isinstance(a, p.EnsureNetwork)] == [
        OFFICE.network,
        LAB.network,
    ]


def test_existing_networks_are_not_created_again() -> None:
    actions = p.plan_decky(want(), p.Observed(networks=networks_of(OFFICE)))
    assert kinds(actions) == ["CreateBase"]


def test_services_are_created_once_the_base_exists_with_a_hash_bound_to_the_base_id() -> None:
    w = want()
    observed = p.Observed((base_of(w),), networks_of(OFFICE), {"base-id": {}})
    actions = p.plan_decky(w, observed)
    assert kinds(actions) == ["CreateService", "CreateService"]
    created = [a for a in actions if isinstance(a, p.CreateService)]
    assert {a.service.name for a in created} == {"smb", "rdp"}
    assert all(a.base_id == "base-id" for a in created)
    assert created[0].hash == p.service_hash(created[0].service, "base-id")
    assert p.service_hash(svc("smb"), "base-id") != p.service_hash(svc("smb"), "other-base")


def test_a_converged_decky_needs_nothing() -> None:
    w = want(networks=(OFFICE, DMZ), files=(lure(),))
    assert p.plan_decky(w, running(w)) == []


def test_a_plan_without_networks_fails() -> None:
    assert kinds(p.plan_decky(want(networks=()), p.Observed())) == ["Fail"]


def test_a_network_with_another_subnet_is_a_failure_not_a_fix() -> None:
    w = want()
    clash = (
        p.NetworkSeen(
            "x", OFFICE.network, net_labels("office"), "bridge", "10.99.0.0/24", "10.99.0.1"
        ),
    )
    actions = p.plan_decky(w, p.Observed(networks=clash))
    assert kinds(actions) == ["Fail"]
    assert "10.99.0.0/24" in actions[0].message  # type: ignore[union-attr]


def test_a_network_of_another_namespace_under_the_lans_name_is_never_joined() -> None:
    """Names carry an 8-hex hash: were two (namespace, LAN) pairs to share one, the
    second decky fails rather than joining the first one's network, same subnet or not."""
    w = want()
    for other in (net_labels("office", "tenant-b"), net_labels("lab"), {}):
        theirs = dataclasses.replace(networks_of(OFFICE)[0], labels=other)
        actions = p.plan_decky(w, p.Observed((base_of(w),), (theirs,)))
        assert kinds(actions) == ["Fail"]
        assert "another LAN" in actions[0].message  # type: ignore[union-attr]
        assert "tenant-b" not in actions[0].message  # type: ignore[union-attr]


def _legacy(name: str, n: p.NetworkWant = OFFICE) -> p.NetworkSeen:
    return dataclasses.replace(networks_of(n)[0], id=f"{name}-id", name=name)


def test_a_decky_under_either_old_scheme_is_replaced_services_first_then_its_network() -> None:
    w = want()
    for old in (f"decnet-{NS}-office", f"decnet.{NS}.office"):
        legacy = _legacy(old)
        old_base = dataclasses.replace(base_of(w), name=f"decnet-{NS}-ws-01-base", id="ob")
        old_svc = dataclasses.replace(service_of(w, svc("smb")), name="old-smb", id="os")
        actions = p.plan_decky(w, p.Observed((old_base, old_svc), (legacy,)))
        assert actions == [
            p.RemoveContainer("old-smb", "os", "renamed: collision-free names"),
            p.RemoveContainer(old_base.name, "ob", "renamed: collision-free names"),
            p.RemoveNetwork(old, f"{old}-id"),
        ]
        # once gone, the decky is built under the new names
        after = p.plan_decky(w, p.Observed())
        assert kinds(after) == ["EnsureNetwork", "CreateBase"]
        assert after[1].want.base_name == names.base_container_name(NS, "ws-01")  # type: ignore[union-attr]


def test_old_networks_of_other_lans_or_namespaces_or_under_new_names_are_left_alone() -> None:
    w = want()
    others = (
        dataclasses.replace(_legacy(f"decnet-{NS}-lab"), labels=net_labels("lab")),
        dataclasses.replace(_legacy("decnet.other.office"), labels=net_labels("office", "other")),
    )
    actions = p.plan_decky(w, p.Observed((base_of(w),), (*others, *networks_of(OFFICE))))
    assert kinds(actions) == ["CreateService", "CreateService"]
    # a user's LAN may be called "decnet-lab": its network is never taken for an old one
    lab = p.NetworkWant(
        "decnet-lab", names.network_name(NS, "decnet-lab"), "10.50.0.7", "10.50.0.0/24", ""
    )
    assert names.is_legacy_name(lab.network)
    mine = want(networks=(lab,))
    actions = p.plan_decky(mine, p.Observed((base_of(mine),), networks_of(lab)))
    assert kinds(actions) == ["CreateService", "CreateService"]


# --------------------------------------------------------------------------- services


def test_adding_a_service_creates_only_that_container() -> None:
    before = want()
    after = want(services=(svc("smb"), svc("rdp"), svc("ldap")))
    actions = p.plan_decky(after, running(before))
    assert kinds(actions) == ["CreateService"]
    assert actions[0].service.name == "ldap"  # type: ignore[union-attr]


def test_removing_a_service_removes_only_that_container() -> None:
    before = want()
    after = want(services=(svc("smb"),))
    actions = p.plan_decky(after, running(before))
    assert actions == [p.RemoveContainer(before.service_name("rdp"), "rdp-id", "service removed")]


def test_changing_one_service_recreates_only_that_service() -> None:
    before = want()
    after = want(services=(svc("smb", image="decnet/smb:2"), svc("rdp")))
    actions = p.plan_decky(after, running(before))
    assert kinds(actions) == ["RemoveContainer", "CreateService"]
    assert actions[0].id == "smb-id"  # type: ignore[union-attr]
    assert actions[1].service.name == "smb"  # type: ignore[union-attr]


def test_a_config_change_recreates_only_that_service() -> None:
    before = want()
    after = want(services=(svc("smb", config_hash="new"), svc("rdp")))
    actions = p.plan_decky(after, running(before))
    assert [a.id for a in actions if isinstance(a, p.RemoveContainer)] == ["smb-id"]


def test_a_service_stopped_by_hand_is_started() -> None:
    w = want()
    obs = running(w)
    stopped = tuple(
        dataclasses.replace(c, state="exited") if c.service == "rdp" else c for c in obs.containers
    )
    actions = p.plan_decky(w, dataclasses.replace(obs, containers=stopped))
    assert actions == [p.StartContainer(w.service_name("rdp"), "rdp-id")]


def test_a_service_removed_by_hand_is_recreated() -> None:
    w = want()
    obs = running(w)
    left = tuple(c for c in obs.containers if c.service != "smb")
    actions = p.plan_decky(w, dataclasses.replace(obs, containers=left))
    assert kinds(actions) == ["CreateService"]


def test_a_stopped_base_is_started_and_its_running_services_restarted() -> None:
    w = want()
    obs = running(w)
    containers = tuple(
        dataclasses.replace(c, state="exited") if c.role == names.ROLE_BASE else c
        for c in obs.containers
    )
    actions = p.plan_decky(w, dataclasses.replace(obs, containers=containers))
    assert kinds(actions) == ["StartContainer", "RestartContainer", "RestartContainer"]


def test_a_base_removed_by_hand_is_recreated_and_orphaned_services_removed() -> None:
    w = want()
    obs = running(w)
    services = tuple(c for c in obs.containers if c.role == names.ROLE_SERVICE)
    actions = p.plan_decky(w, dataclasses.replace(obs, containers=services))
    assert kinds(actions) == ["RemoveContainer", "RemoveContainer", "CreateBase"]


def test_services_of_a_recreated_base_get_new_hashes() -> None:
    w = want()
    obs = running(w)
    new_base = dataclasses.replace(base_of(w), id="new-base-id")
    containers = (new_base, *(c for c in obs.containers if c.role == names.ROLE_SERVICE))
    actions = p.plan_decky(w, p.Observed(containers, obs.networks, {"new-base-id": {}}))
    assert kinds(actions) == ["RemoveContainer", "CreateService"] * 2


def test_a_container_of_a_previous_decky_with_the_same_name_is_removed() -> None:
    w = want()
    old = dataclasses.replace(
        base_of(w), id="old", labels=labels(w, names.ROLE_BASE, "", "x", uid="old-uid")
    )
    actions = p.plan_decky(w, p.Observed((old,), networks_of(OFFICE)))
    assert kinds(actions) == ["RemoveContainer", "CreateBase"]


def test_containers_of_other_deckies_are_ignored() -> None:
    w = want()
    other = want(name="ws-02", uid="uid-2")
    obs = running(w)
    with_other = dataclasses.replace(
        obs, containers=obs.containers + (dataclasses.replace(base_of(other), id="o"),)
    )
    assert p.plan_decky(w, with_other) == []


# --------------------------------------------------------------------------- LANs


def test_attaching_a_lan_is_a_live_connect() -> None:
    before = want()
    after = want(networks=(OFFICE, LAB))
    actions = p.plan_decky(after, running(before))
    assert actions == [p.Connect("base-id", LAB.network, LAB.ip)]


def test_attaching_a_lan_whose_network_is_missing_creates_it_first() -> None:
    before = want()
    after = want(networks=(OFFICE, LAB))
    obs = dataclasses.replace(running(before), networks=networks_of(OFFICE))
    assert kinds(p.plan_decky(after, obs)) == ["EnsureNetwork", "Connect"]


def test_detaching_a_lan_is_a_live_disconnect() -> None:
    before = want(networks=(OFFICE, LAB))
    after = want()
    actions = p.plan_decky(after, running(before))
    assert actions == [p.Disconnect("base-id", LAB.network)]


def test_a_new_ip_on_a_secondary_lan_reconnects_it() -> None:
    before = want(networks=(OFFICE, LAB))
    after = want(networks=(OFFICE, dataclasses.replace(LAB, ip="10.40.0.8")))
    actions = p.plan_decky(after, running(before))
    assert actions == [
        p.Disconnect("base-id", LAB.network),
        p.Connect("base-id", LAB.network, "10.40.0.8"),
    ]


# --------------------------------------------------------------------------- refused recreates


def test_a_forwards_l3_flip_is_refused_naming_the_annotation() -> None:
    before = want()
    after = want(forwards_l3=True)
    actions = p.plan_decky(after, running(before))
    assert kinds(actions) == ["Refuse"]
    assert names.ANNOTATION_ALLOW_RECREATE in actions[0].message  # type: ignore[union-attr]


def test_a_home_lan_change_is_refused() -> None:
    before = want(networks=(OFFICE, DMZ))
    after = want(networks=(DMZ, OFFICE))
    actions = p.plan_decky(after, running(before))
    assert kinds(actions) == ["Refuse"]
    assert "home LAN changed" in actions[0].message  # type: ignore[union-attr]


def test_a_home_ip_change_is_refused() -> None:
    before = want()
    after = want(networks=(dataclasses.replace(OFFICE, ip="10.20.0.99"),))
    actions = p.plan_decky(after, running(before))
    assert "home IP changed" in actions[0].message  # type: ignore[union-attr]


def test_a_hostname_change_is_refused() -> None:
    actions = p.plan_decky(want(hostname="WS-02"), running(want()))
    assert kinds(actions) == ["Refuse"]


def test_with_the_annotation_the_base_and_its_services_are_recreated() -> None:
    before = want()
    after = want(forwards_l3=True, allow_recreate=True)
    actions = p.plan_decky(after, running(before))
    assert kinds(actions) == ["RemoveContainer"] * 3 + ["CreateBase"]
    assert actions[-1].hash == p.base_hash(after)  # type: ignore[union-attr]


def test_the_base_hash_ignores_services_secondary_lans_and_files() -> None:
    a = want()
    b = want(services=(svc("x"),), networks=(OFFICE, LAB), files=(lure(),))
    assert p.base_hash(a) == p.base_hash(b)
    assert p.base_hash(a) != p.base_hash(want(forwards_l3=True))


# --------------------------------------------------------------------------- files


def test_new_files_are_written_on_the_node_and_services_remounted() -> None:
    """A new lure path is a new bind mount: the services (not the base) are recreated."""
    before = want()
    f = lure()
    after = want(files=(f,))
    actions = p.plan_decky(after, running(before))
    assert actions[0] == p.SyncFiles("uid-1", (f,), (), {f.path: f.digest})
    assert kinds(actions[1:]) == ["RemoveContainer", "CreateService"] * 2
    assert not any(isinstance(a, p.RemoveContainer) and a.id == "base-id" for a in actions)


def test_files_are_written_before_any_service_that_mounts_them() -> None:
    w = want(files=(lure(),))
    observed = p.Observed((base_of(w),), networks_of(OFFICE), {w.uid: {}})
    assert kinds(p.plan_decky(w, observed)) == ["SyncFiles", "CreateService", "CreateService"]


def test_a_mode_change_places_the_file_again() -> None:
    before = want(files=(lure(),))
    after = want(files=(lure(mode=0o644),))
    actions = p.plan_decky(after, running(before))
    assert kinds(actions) == ["SyncFiles"]


def test_a_content_change_places_the_file_again() -> None:
    before = want(files=(lure(),))
    after = want(files=(lure(content=b"other"),))
    assert kinds(p.plan_decky(after, running(before))) == ["SyncFiles"]


def test_dropped_files_are_removed() -> None:
    keep, drop = lure("/a"), lure("/b")
    before = want(files=(keep, drop))
    after = want(files=(keep,))
    actions = p.plan_decky(after, running(before))
    assert actions[0] == p.SyncFiles("uid-1", (), ("/b",), {"/a": keep.digest})
    assert kinds(actions[1:]) == ["RemoveContainer", "CreateService"] * 2


def test_files_are_left_alone_when_contents_or_manifest_are_unknown() -> None:
    w = want(files=(lure(),))
    assert p.plan_decky(dataclasses.replace(w, files=None), running(want(), {"/x": "d"})) == []
    obs = dataclasses.replace(running(w), files={})
    assert p.plan_decky(w, obs) == []


def test_file_content_and_service_config_never_show_in_reprs() -> None:
    f = lure(content=b"hunter2-secret")
    w = want(files=(f,), config={"smb": '{"password": "hunter2-secret"}'})
    assert "hunter2" not in repr(f)
    assert "hunter2" not in repr(w)
    assert "hunter2" not in repr(p.SyncFiles("b", (f,), (), {}))


# --------------------------------------------------------------------------- deletion and reaping


def test_removal_takes_services_before_the_base_and_only_that_decky() -> None:
    w = want()
    other = want(name="ws-02", uid="uid-2")
    obs = running(w)
    obs = dataclasses.replace(
        obs, containers=obs.containers + (dataclasses.replace(base_of(other), id="o"),)
    )
    actions = p.plan_removal(NS, "ws-01", "uid-1", obs)
    assert [a.id for a in actions if isinstance(a, p.RemoveContainer)] == [
        "smb-id",
        "rdp-id",
        "base-id",
    ]


def _orphan_obs() -> p.Observed:
    return dataclasses.replace(running(want()), networks=networks_of(OFFICE))


def test_orphans_are_reaped_only_after_the_grace_period() -> None:
    obs = _orphan_obs()
    first_seen = {c.id: 100.0 for c in obs.containers}
    assert p.plan_gc([], obs, set(), first_seen, now=130.0, grace_seconds=60) == []
    actions = p.plan_gc([], obs, set(), first_seen, now=161.0, grace_seconds=60)
    removed = [a.id for a in actions if isinstance(a, p.RemoveContainer)]
    assert removed == ["smb-id", "rdp-id", "base-id"]
    # the home network is no longer used by anyone: it goes too
    assert p.RemoveNetwork(OFFICE.network, f"{OFFICE.network}-id") in actions


def test_nothing_is_reaped_when_the_api_server_could_not_be_listed() -> None:
    obs = _orphan_obs()
    first_seen = {c.id: 0.0 for c in obs.containers}
    assert p.plan_gc([], obs, None, first_seen, now=1e9, grace_seconds=60) == []


def test_containers_of_live_deckies_are_never_orphans() -> None:
    obs = _orphan_obs()
    first_seen = {c.id: 0.0 for c in obs.containers}
    actions = p.plan_gc({OFFICE.network}, obs, {"uid-1"}, first_seen, now=1e9, grace_seconds=60)
    assert [a for a in actions if isinstance(a, p.RemoveContainer)] == []
    assert p.find_orphans(obs, {"uid-1"}) == []


def test_networks_stay_while_used_or_planned() -> None:
    obs = running(want())  # uses OFFICE; DMZ and LAB unused
    actions = p.plan_gc(
        {OFFICE.network, DMZ.network}, obs, {"uid-1", "uid-3"}, {}, now=0, grace_seconds=60
    )
    assert actions == [p.RemoveNetwork(LAB.network, f"{LAB.network}-id")]


def test_a_simulated_deploy_reaches_a_fixed_point() -> None:
    """Apply each round's actions to a model of Docker: the planner converges in 3 rounds."""
    w = want(networks=(OFFICE, LAB), files=(lure(),))
    containers: dict[str, p.ContainerSeen] = {}
    nets: dict[str, p.NetworkSeen] = {}
    files: dict[str, dict[str, str]] = {w.uid: {}}  # the agent's record: nothing written yet
    rounds = 0
    for _ in range(5):
        rounds += 1
        obs = p.Observed(tuple(containers.values()), tuple(nets.values()), dict(files))
        actions = p.plan_decky(w, obs)
        if not actions:
            break
        for a in actions:
            if isinstance(a, p.EnsureNetwork):
                nets[a.net.network] = networks_of(a.net)[0]
            elif isinstance(a, p.CreateBase):
                containers["b"] = dataclasses.replace(base_of(w), id="b")
            elif isinstance(a, p.CreateService):
                containers[a.service.name] = dataclasses.replace(
                    service_of(w, a.service, base_id=a.base_id), id=a.service.name
                )
            elif isinstance(a, p.SyncFiles):
                files[a.uid] = dict(a.manifest)
            else:
                raise AssertionError(a)
    # networks + files + base, then services, then nothing
    assert rounds == 3
    assert files == {w.uid: {f.path: f.digest for f in w.files or ()}}


def test_predict_folds_creations_into_the_observation_until_nothing_is_left() -> None:
    """A deploy needs one Docker observation: each round plans from the answers of the last."""
    w = want(networks=(OFFICE, LAB), files=(lure(),))
    observed: p.Observed | None = p.Observed(files={w.uid: {}})
    rounds = 0
    while True:
        assert observed is not None, "a deploy should never need a fresh observation"
        actions = p.plan_decky(w, observed)
        if not actions:
            break
        rounds += 1
        results: list[p.Created | None] = []
        for a in actions:
            if isinstance(a, p.EnsureNetwork):
                results.append(networks_of(a.net)[0])
            elif isinstance(a, p.CreateBase):
                results.append(base_of(w))
            elif isinstance(a, p.CreateService):
                results.append(service_of(w, a.service, base_id=a.base_id))
            else:
                results.append(None)
        observed = p.predict(observed, actions, results)
    assert rounds == 2  # networks, lure files and the base; then the services
    assert {c.name for c in observed.containers} == {
        w.base_name,
        *(w.service_name(s.name) for s in w.services),
    }


def test_predict_gives_up_after_a_removal() -> None:
    w = want()
    obs = running(w)
    victim = obs.containers[1]
    actions: list[p.Action] = [p.RemoveContainer(victim.name, victim.id, "service removed")]
    assert p.predict(obs, actions, [None]) is None
