"""GitOps through Argo CD for real: a fleet in a Git repository, synced by Argo CD's own
application controller and repo server (built from the argo-cd Go module, hack/argocd.py),
against the session's API server, with the operator and agent converging Docker.

The Application is docs/argocd/application.yaml itself, pointed at a local `git daemon`
and at the test's namespace. The health Argo CD reports is the Lua in docs/argocd, run by
Argo CD, so Healthy/Degraded here is what an Argo CD user would see.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml
from harness import (
    LOGIN_SERVICE,
    LOGIN_TEMPLATE,
    ROOT,
    Cluster,
    attack,
    listening,
    wait_for,
)
from tests.support import require

sys.path.insert(0, str(ROOT / "hack"))
import argocd as argocd_testbed  # noqa: E402  (hack/argocd.py)

# The issue asks for 5 minutes of idle; `make test` uses a shorter window that still spans
# several Argo CD reconciliations (every 10 s here) and several agent activity writes (at
# most one per decky per 30 s). DECNET_ARGOCD_IDLE_SECONDS=300 runs the full 5 minutes.
IDLE_SECONDS = float(os.environ.get("DECNET_ARGOCD_IDLE_SECONDS", "75"))
# On a loopback "registry" where nothing listens: the agent's pull attempt stays on this machine.
MISSING_IMAGE = "127.0.0.1:9/decnet-test/no-such-image:0.0.0"


@pytest.fixture(scope="module")
def argocd(kubeconfig: str, crds: list[str]) -> Iterator[argocd_testbed.ArgoCD]:
    require(shutil.which("redis-server") is not None, "redis-server (hack/clients.sh)")
    require(shutil.which("git") is not None, "git")
    version = argocd_testbed.versions()["ARGOCD_VERSION"]
    built = argocd_testbed.controlplane.CACHE / "bin" / f"argocd-{version}"
    require(
        (built / "argocd").exists() and (built / "manifests" / "argocd-cm.yaml").exists(),
        f"argocd {version} not built (hack/build-binaries.sh argocd)",
    )
    state = Path(tempfile.mkdtemp(prefix="decnet-argocd-"))
    try:
        yield argocd_testbed.up(state, kubeconfig)
    finally:
        argocd_testbed.down(state)


@pytest.fixture(scope="module")
def login_template(kubectl: Any, service_templates: None) -> None:
    kubectl(
        "apply", "--server-side", "--force-conflicts", "-f", "-", input=json.dumps(LOGIN_TEMPLATE)
    )


class Fleet:
    """A working clone of a bare repository the git daemon serves; one commit per change."""

    def __init__(self, argocd: argocd_testbed.ArgoCD, name: str) -> None:
        self.name = name
        self.bare = argocd_testbed.init_repo(argocd, name)
        self.url = argocd.repo_url(name)
        self.work = Path(tempfile.mkdtemp(prefix=f"decnet-fleet-{name}-"))
        self.git("init", "-q", "-b", "main")
        self.git("remote", "add", "origin", str(self.bare))

    def git(self, *args: str) -> str:
        env = {
            **os.environ,
            "GIT_AUTHOR_NAME": "e2e",
            "GIT_AUTHOR_EMAIL": "e2e@decnet.invalid",
            "GIT_COMMITTER_NAME": "e2e",
            "GIT_COMMITTER_EMAIL": "e2e@decnet.invalid",
        }
        return subprocess.run(
            ["git", *args], cwd=self.work, env=env, check=True, capture_output=True, text=True
        ).stdout.strip()

    def commit(self, message: str, docs: list[dict[str, Any]]) -> str:
        """Replaces fleet/ with one file per object; returns the commit's sha."""
        folder = self.work / "fleet"
        folder.mkdir(exist_ok=True)
        for old in folder.glob("*.yaml"):
            old.unlink()
        for doc in docs:
            name = f"{doc['kind'].lower()}-{doc['metadata']['name']}.yaml"
            (folder / name).write_text(yaml.safe_dump(doc, sort_keys=False))
        self.git("add", "-A", "fleet")
        self.git("commit", "-q", "-m", message)
        self.git("push", "-q", "origin", "main")
        return self.git("rev-parse", "HEAD")

    def commit_sites(self, message: str, sites: dict[str, list[dict[str, Any]]]) -> str:
        """Replaces fleets/ with one directory per site, one file per object."""
        root = self.work / "fleets"
        if root.exists():
            shutil.rmtree(root)
        for site, docs in sites.items():
            (root / site).mkdir(parents=True)
            for doc in docs:
                name = f"{doc['kind'].lower()}-{doc['metadata']['name']}.yaml"
                (root / site / name).write_text(yaml.safe_dump(doc, sort_keys=False))
        self.git("add", "-A", "fleets")
        self.git("commit", "-q", "-m", message)
        self.git("push", "-q", "origin", "main")
        return self.git("rev-parse", "HEAD")


def application(name: str, fleet: Fleet, namespace: str) -> dict[str, Any]:
    """docs/argocd/application.yaml, pointed at the local repository and the test namespace."""
    app = yaml.safe_load((ROOT / "docs" / "argocd" / "application.yaml").read_text())
    app["metadata"]["name"] = name
    app["spec"]["source"].update(repoURL=fleet.url, targetRevision="main", path="fleet")
    app["spec"]["destination"]["namespace"] = namespace
    return dict(app)


class App:
    def __init__(self, cluster: Cluster, name: str) -> None:
        self.cluster, self.name = cluster, name

    def get(self) -> dict[str, Any]:
        """The Application, {} while it does not exist (an ApplicationSet makes it later)."""
        got = self.cluster.kubectl(
            "get", "applications.argoproj.io", self.name, "-n", "argocd", "-o", "json", check=False
        )
        return dict(json.loads(got.stdout)) if got.returncode == 0 else {}

    def state(self) -> tuple[str, str, str]:
        status = self.get().get("status", {})
        return (
            status.get("sync", {}).get("status", ""),
            status.get("health", {}).get("status", ""),
            status.get("sync", {}).get("revision", ""),
        )

    def wait(self, sync: str, health: str, revision: str, timeout: float = 180) -> None:
        def reached() -> bool:
            return self.state() == (sync, health, revision)

        try:
            wait_for(reached, timeout, f"Application {self.name} {sync}/{health} at {revision}")
        except AssertionError as error:
            status = self.get().get("status", {})
            detail = {k: status.get(k) for k in ("sync", "health", "conditions", "operationState")}
            raise AssertionError(f"{error}\n{json.dumps(detail, indent=1)[:4000]}") from None

    def resource_health(self, kind: str, name: str) -> dict[str, Any]:
        for res in self.get().get("status", {}).get("resources", []):
            if res["kind"] == kind and res["name"] == name:
                return dict(res.get("health") or {})
        return {}


@pytest.fixture
def apps(cluster: Cluster) -> Iterator[list[App]]:
    made: list[App] = []
    yield made
    for app in made:
        # The resources finalizer deletes the fleet (Argo CD's cascade); the namespace
        # fixture then removes whatever is left.
        cluster.kubectl(
            "delete",
            "applications.argoproj.io",
            app.name,
            "-n",
            "argocd",
            "--timeout=90s",
            check=False,
        )
        cluster.kubectl(
            "patch",
            "applications.argoproj.io",
            app.name,
            "-n",
            "argocd",
            "--type=merge",
            "-p",
            '{"metadata":{"finalizers":null}}',
            check=False,
        )


def create(cluster: Cluster, apps: list[App], fleet: Fleet, name: str) -> App:
    app = App(cluster, name)
    apps.append(app)
    cluster.kubectl("apply", "-f", "-", input=json.dumps(application(name, fleet, cluster.ns)))
    return app


def sync_operations(app: App) -> list[str]:
    """Every sync Argo CD ran for the app: its history plus a running operation."""
    status = app.get().get("status", {})
    done = [f"{h.get('id')}:{h.get('revision')}" for h in status.get("history", [])]
    op = status.get("operationState") or {}
    return [*done, f"op:{op.get('startedAt')}:{op.get('phase')}"]


class ControllerLog:
    """The application controller's own log (debug level) from a point on."""

    def __init__(self, argocd: argocd_testbed.ArgoCD) -> None:
        self.path = Path(argocd.state_dir) / "application-controller.log"
        self.offset = self.path.stat().st_size

    def lines(self) -> list[str]:
        with self.path.open("rb") as handle:
            handle.seek(self.offset)
            return handle.read().decode(errors="replace").splitlines()

    def refresh_reasons(self, app: str) -> dict[str, int]:
        """Why the controller refreshed the app: "controller refresh requested", ..."""
        found: dict[str, int] = {}
        for line in self.lines():
            match = re.search(r"Refreshing app status \(([^)]*)\)", line)
            if match and f"application={app} " in line:
                reason = match.group(1).split(".")[0]  # without the reconciledAt detail
                found[reason] = found.get(reason, 0) + 1
        return found

    def decky_updates(self, app: str, namespace: str) -> tuple[list[str], int]:
        """Decky changes that made the controller refresh the app, and how many it ignored."""
        refreshed = [
            line
            for line in self.lines()
            if "caused by object update" in line
            and f"application={app} " in line
            and "kind=Decky " in line
        ]
        ignored = sum(
            1
            for line in self.lines()
            if "Ignoring change of object" in line
            and "kind=Decky " in line
            and f"namespace={namespace} " in line
        )
        return refreshed, ignored


def test_argocd_syncs_a_fleet_prunes_edits_one_service_and_stays_synced_under_status_writes(
    cluster: Cluster,
    argocd: argocd_testbed.ArgoCD,
    login_template: None,
    apps: list[App],
) -> None:
    fleet = Fleet(argocd, f"fleet-{cluster.ns}")
    lan = cluster.lan()
    web1 = cluster.decky("web-01", ["http"])
    web2 = cluster.decky("web-02", ["http", "telnet"])
    lure = cluster.decky("lure-01", [LOGIN_SERVICE])
    started = time.monotonic()
    first = fleet.commit("a LAN and three deckies", [lan, web1, web2, lure])
    app = create(cluster, apps, fleet, f"fleet-{cluster.ns}")

    app.wait("Synced", "Healthy", first)
    cluster.wait_ready(["web-01", "web-02", "lure-01"], timeout=30)
    print(f"\nArgo CD {argocd.version}: Synced + Healthy in {time.monotonic() - started:.1f} s")
    for name in ("web-01", "web-02", "lure-01"):
        assert app.resource_health("Decky", name)["status"] == "Healthy"
        assert cluster.containers(name), name

    # A decky removed from Git is pruned, and its containers go with it.
    second = fleet.commit("drop web-02", [lan, web1, lure])
    app.wait("Synced", "Healthy", second)
    wait_for(
        lambda: not any(d["metadata"]["name"] == "web-02" for d in cluster.deckies()),
        90,
        "web-02 pruned",
    )
    wait_for(lambda: cluster.containers("web-02") == [], 60, "web-02's containers removed")

    # A service added in Git starts one container; the others keep theirs.
    before = cluster.container_ids("web-01")
    third = fleet.commit(
        "web-01 gets telnet", [lan, cluster.decky("web-01", ["http", "telnet"]), lure]
    )
    wait_for(lambda: "service:telnet" in cluster.container_ids("web-01"), 120, "telnet on web-01")
    app.wait("Synced", "Healthy", third)
    after = cluster.container_ids("web-01")
    assert after["base:"] == before["base:"] and after["service:http"] == before["service:http"]
    assert sorted(after) == ["base:", "service:http", "service:telnet"]

    # Idle, then an attack: the agent writes status.activity, the operator nothing; Argo CD
    # must neither sync nor leave Synced/Healthy because of those status writes, and (with
    # the stock argocd-cm) not even refresh the app for them.
    ops_before = sync_operations(app)
    controller = ControllerLog(argocd)
    ip = str(cluster.status("lure-01")["addresses"][0]["ip"])
    wait_for(lambda: listening(cluster, "lure-01"), 30, "lure-01 listening")
    idle_started = time.monotonic()
    states: set[tuple[str, str, str]] = set()
    attacked_at: list[float] = []
    while time.monotonic() - idle_started < IDLE_SECONDS:
        elapsed = time.monotonic() - idle_started
        # the first third idle (nothing writes), then two waves of login attempts: the agent
        # writes status.activity after each (at most once per decky per 30 s)
        if len(attacked_at) < 2 and elapsed >= (len(attacked_at) + 1) * (IDLE_SECONDS / 3):
            for i in range(5):
                attack(ip, "root", f"argo-{len(attacked_at)}-{i}")
            attacked_at.append(elapsed)
        states.add(app.state())
        time.sleep(2)
    activity = cluster.status("lure-01").get("activity") or {}
    assert activity.get("contacts", 0) >= 10, activity
    assert states == {("Synced", "Healthy", third)}, states
    assert sync_operations(app) == ops_before, "a sync ran during the idle/attack window"
    # The agent's status writes reached Argo CD's watch and were ignored (the stock
    # argocd-cm ignores /status updates that leave health alone): no refresh came of them.
    refreshed, ignored = controller.decky_updates(app.name, cluster.ns)
    assert refreshed == [], refreshed
    assert ignored >= 1, "the controller saw no decky change at all during the attack"
    print(
        f"idle+attack {IDLE_SECONDS:.0f} s: {activity.get('contacts')} contacts,"
        f" {ignored} decky updates ignored by the controller, 0 refreshes caused by them,"
        f" refreshes by reason {controller.refresh_reasons(app.name)}, no sync"
    )


def test_a_decky_whose_image_does_not_exist_makes_the_application_degraded(
    cluster: Cluster, argocd: argocd_testbed.ArgoCD, apps: list[App]
) -> None:
    ghost = {
        "apiVersion": "decnet.io/v1alpha1",
        "kind": "ServiceTemplate",
        "metadata": {"name": "argo-ghost"},
        "spec": {
            "image": MISSING_IMAGE,
            "description": "Test fixture: an image nobody built.",
            "ports": [{"port": 80, "protocol": "tcp"}],
        },
    }
    cluster.kubectl("apply", "--server-side", "-f", "-", input=json.dumps(ghost))
    try:
        fleet = Fleet(argocd, f"ghost-{cluster.ns}")
        sha = fleet.commit(
            "a decky nobody can run",
            [
                cluster.lan(),
                cluster.decky("ghost-01", ["argo-ghost"]),
            ],
        )
        app = create(cluster, apps, fleet, f"ghost-{cluster.ns}")
        app.wait("Synced", "Degraded", sha)
        stalled = next(
            c
            for c in cluster.get("decky", "ghost-01")["status"]["conditions"]
            if c["type"] == "Stalled"
        )
        assert stalled["status"] == "True"
        health = app.resource_health("Decky", "ghost-01")
        assert health == {"status": "Degraded", "message": stalled["message"]}, health
        assert "decnet-test/no-such-image" in health["message"], health
        print(f"\nArgo CD: Degraded, ghost-01: {health['message']}")
        assert app.resource_health("LAN", "lan")["status"] == "Healthy"
    finally:
        cluster.kubectl(
            "delete", "servicetemplate", "argo-ghost", "--ignore-not-found", check=False
        )


def test_an_applicationset_makes_one_application_per_site_and_a_removed_site_goes(
    cluster: Cluster, argocd: argocd_testbed.ArgoCD, apps: list[App]
) -> None:
    """docs/argocd/applicationset.yaml against a repository with two sites under fleets/.

    Here both sites go to the test's namespace (the example gives each its own) and the
    Applications' names carry the namespace, so that tests never share names.
    """
    fleet = Fleet(argocd, f"sites-{cluster.ns}")
    octet = cluster.subnet_octet
    sites = {
        "north": [
            cluster.lan("lan-north", subnet=f"10.{octet}.1.0/24"),
            cluster.decky("n-01", ["http"], lan="lan-north"),
        ],
        "south": [
            cluster.lan("lan-south", subnet=f"10.{octet}.2.0/24"),
            cluster.decky("s-01", ["http"], lan="lan-south"),
        ],
    }
    sha = fleet.commit_sites("two sites", sites)
    appset = yaml.safe_load((ROOT / "docs" / "argocd" / "applicationset.yaml").read_text())
    appset["metadata"]["name"] = f"sites-{cluster.ns}"
    generator = appset["spec"]["generators"][0]["git"]
    generator["repoURL"] = fleet.url
    generator["requeueAfterSeconds"] = 10  # it polls Git every 3 min unless a webhook calls
    template = appset["spec"]["template"]
    template["metadata"]["name"] = f"{cluster.ns}-{{{{.path.basename}}}}"
    template["spec"]["source"]["repoURL"] = fleet.url
    template["spec"]["destination"]["namespace"] = cluster.ns
    north, south = App(cluster, f"{cluster.ns}-north"), App(cluster, f"{cluster.ns}-south")
    apps.extend([north, south])
    try:
        cluster.kubectl("apply", "-f", "-", input=json.dumps(appset))
        for app in (north, south):
            app.wait("Synced", "Healthy", sha)
        cluster.wait_ready(["n-01", "s-01"], timeout=30)
        assert north.get()["spec"]["source"]["path"] == "fleets/north"
        assert north.get()["metadata"]["labels"]["decnet.io/site"] == "north"

        # A site removed from Git: its Application goes, and with it (the resources
        # finalizer) its deckies and their containers; the other site is untouched.
        north_ids = cluster.container_ids("n-01")
        fleet.commit_sites("close south", {"north": sites["north"]})

        def south_gone() -> bool:
            names = {d["metadata"]["name"] for d in cluster.deckies()}
            return "s-01" not in names and cluster.containers("s-01") == []

        wait_for(south_gone, 180, "site south's decky and containers removed")
        try:
            wait_for(lambda: south.get() == {}, 90, "site south's Application deleted")
        except AssertionError as error:
            left = south.get()
            detail = {"metadata": left.get("metadata"), "status": left.get("status")}
            lans = cluster.kubectl("get", "lans", "-n", cluster.ns, "-o", "yaml").stdout
            raise AssertionError(f"{error}\n{json.dumps(detail)[:3000]}\n{lans[:3000]}") from None
        assert cluster.container_ids("n-01") == north_ids
        assert north.state()[:2] == ("Synced", "Healthy")
    finally:
        cluster.kubectl(
            "delete",
            "applicationsets.argoproj.io",
            f"sites-{cluster.ns}",
            "-n",
            "argocd",
            "--ignore-not-found",
            "--timeout=90s",
            check=False,
        )
