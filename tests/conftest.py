"""Session fixtures for the test bed: a real control plane and a real Docker engine.

Unit tests use none of these. Integration and e2e tests ask for them; when a
prerequisite is missing they skip locally with the reason, and fail in CI
(CI=true), where skipping would hide a broken test bed.

A pytest session starts its own etcd + kube-apiserver in a temporary
directory (about 4 s) and stops exactly those processes at the end, so
concurrent sessions never share state. Set DECNET_TEST_KUBECONFIG to reuse
a control plane that is already running (for example the demo's).
"""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "hack"))

import chart_identities  # noqa: E402  (hack/chart_identities.py)
import controlplane  # noqa: E402  (hack/controlplane.py)
from tests.support import require  # noqa: E402

TEST_IMAGE = "decnet-test/busybox:latest"
DECNET_PLURALS = ["deckies", "lans", "topologies", "addressclaims"]


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    for item in items:
        parts = Path(str(item.fspath)).parts
        if "integration" in parts:
            item.add_marker(pytest.mark.integration)
        if "e2e" in parts:
            item.add_marker(pytest.mark.e2e)


def xdist_group(nodeid: str) -> str:
    """Which tests one pytest-xdist worker must run one after another (`--dist loadgroup`).

    Every worker is its own pytest session (own control plane, own temp dirs, free
    ports), so tests are independent by default and spread one by one. Kept together:
    - e2e: one operator and one agent per session drive dockerd together; the tier
      runs serially on one worker (beside the others) as it always has;
    - nmap -sV checks: version detection waits on timing windows, so one scan at a
      time rather than several competing on two cores;
    - each other integration module: they share module-scoped operator processes.
    Decided from the node id because xdist's own xdist_group marks rewrite
    `item._nodeid`, which pytest 9.2 no longer reads: the marks group nothing.
    """
    path = nodeid.split("::", 1)[0]
    if path.startswith("tests/e2e/"):
        return "e2e"
    if Path(path).name.startswith("test_nmap_"):
        return "nmap"
    if path.startswith("tests/integration/") and "/emulators/" not in path:
        return path
    return nodeid


@pytest.hookimpl(tryfirst=True)
def pytest_xdist_make_scheduler(config: pytest.Config, log: Any) -> Any:
    if config.getvalue("dist") != "loadgroup":
        return None
    from xdist.scheduler import LoadScopeScheduling

    class Grouped(LoadScopeScheduling):  # type: ignore[misc]
        def _split_scope(self, nodeid: str) -> str:
            return xdist_group(nodeid)

    return Grouped(config, log)


# --- Kubernetes -------------------------------------------------------------------------


@pytest.fixture(scope="session")
def control_plane() -> Iterator[dict[str, Any]]:
    reused = os.environ.get("DECNET_TEST_KUBECONFIG")
    if reused:
        require(Path(reused).exists(), f"DECNET_TEST_KUBECONFIG={reused} does not exist")
        yield {"kubeconfig": reused, "reused": True}
        return
    state = Path(tempfile.mkdtemp(prefix="decnet-cp-"))
    try:
        plane = controlplane.up(state)
    except Exception as error:  # noqa: BLE001 - reported as skip/fail with the reason
        controlplane.down(state)
        require(False, f"could not start the control plane: {error}")
        raise
    try:
        yield plane.as_dict()
    finally:
        controlplane.down(state)


@pytest.fixture(scope="session")
def kubeconfig(control_plane: dict[str, Any]) -> str:
    os.environ["KUBECONFIG"] = str(control_plane["kubeconfig"])
    return str(control_plane["kubeconfig"])


@pytest.fixture(scope="session")
def kubectl_binary() -> str:
    path = controlplane.CACHE / "bin" / "current" / "kubectl"
    require(path.exists(), f"kubectl not built at {path} (run hack/build-binaries.sh)")
    return str(path)


KubectlFn = Callable[..., subprocess.CompletedProcess[str]]


@pytest.fixture(scope="session")
def kubectl(kubeconfig: str, kubectl_binary: str) -> KubectlFn:
    def run(
        *args: str, input: str | None = None, check: bool = True
    ) -> subprocess.CompletedProcess[str]:
        result = subprocess.run(
            [kubectl_binary, f"--kubeconfig={kubeconfig}", *args],
            input=input,
            capture_output=True,
            text=True,
            timeout=120,
        )
        if check and result.returncode != 0:
            raise AssertionError(
                f"kubectl {' '.join(args)} failed ({result.returncode}):\n{result.stdout}\n{result.stderr}"
            )
        return result

    return run


@pytest.fixture(scope="session")
def kube_client(kubeconfig: str) -> Any:
    from lightkube import Client, KubeConfig

    return Client(KubeConfig.from_file(kubeconfig), field_manager="decnet-tests")


@pytest.fixture(scope="session")
def crds(kubectl: KubectlFn) -> list[str]:
    files = sorted(str(p) for p in (ROOT / "crds").glob("*.yaml"))
    require(bool(files), "no CRDs generated in crds/ (run make manifests)")
    for path in files:
        kubectl("apply", "--server-side", "-f", path)
    names = [line.split("/", 1)[1] for line in kubectl("get", "crd", "-o", "name").stdout.split()]
    ours = [n for n in names if n.split(".", 1)[-1] == "decnet.io"]  # group decnet.io only
    kubectl("wait", "--for=condition=Established", "--timeout=60s", *[f"crd/{n}" for n in ours])
    return ours


SESSION_NAMESPACES: list[str] = []
ACTIVE_NAMESPACES: set[str] = set()
IDENTITIES: list[chart_identities.Identities] = []


@pytest.fixture(scope="session")
def identities(kubeconfig: str, crds: list[str]) -> Iterator[chart_identities.Identities]:
    """The chart's ServiceAccounts, RBAC and admission policy as `helm template` renders them,
    applied once per session, with tokens (24 h) and a kubeconfig per identity. Every
    operator and agent a test starts runs with these, never with the admin kubeconfig."""
    require((chart_identities._bin("helm")).exists(), "helm not built (hack/build-binaries.sh)")
    ids = chart_identities.install(kubeconfig, Path(tempfile.mkdtemp(prefix="decnet-ids-")))
    for name in sorted(ACTIVE_NAMESPACES):
        ids.grant_decoy_namespace(name)
    IDENTITIES.append(ids)
    try:
        yield ids
    finally:
        IDENTITIES.remove(ids)
        ids.remove_webhook()
        ids.uninstall_nodes()


@pytest.fixture(scope="session", autouse=True)
def _sweep_docker_at_session_end() -> Iterator[None]:
    """Set up first, torn down last: after every agent of the session has stopped, nothing
    labelled with one of the session's namespaces may be left in Docker (an agent busy
    converging while a test's namespace was cleaned could have recreated something)."""
    yield
    for name in SESSION_NAMESPACES:
        _remove_docker_objects(name)


@pytest.fixture
def namespace(kubectl: KubectlFn, request: pytest.FixtureRequest) -> Iterator[str]:
    name = f"t-{uuid.uuid4().hex[:10]}"
    kubectl("create", "namespace", name)
    SESSION_NAMESPACES.append(name)
    ACTIVE_NAMESPACES.add(name)
    for ids in IDENTITIES:  # a decoy namespace the chart's agent.decoyNamespaces names
        ids.grant_decoy_namespace(name)
    try:
        yield name
    finally:
        ACTIVE_NAMESPACES.discard(name)
        _delete_decnet_objects(kubectl, name)
        kubectl("delete", "namespace", name, "--wait=false", check=False)
        _remove_docker_objects(name)


def _delete_decnet_objects(kubectl: KubectlFn, namespace: str) -> None:
    """No controller-manager runs here: strip finalizers so deletes complete."""
    crd_names = kubectl("get", "crd", "-o", "name", check=False).stdout
    for plural in DECNET_PLURALS:
        if f"{plural}.decnet.io" not in crd_names:
            continue
        listed = kubectl(
            "get", f"{plural}.decnet.io", "-n", namespace, "-o", "name", check=False
        ).stdout.split()
        for obj in listed:
            kubectl(
                "patch",
                obj,
                "-n",
                namespace,
                "--type=merge",
                "-p",
                '{"metadata":{"finalizers":null}}',
                check=False,
            )
        if listed:
            kubectl(
                "delete",
                f"{plural}.decnet.io",
                "--all",
                "-n",
                namespace,
                "--wait=false",
                check=False,
            )


# --- Docker -----------------------------------------------------------------------------


def _docker() -> Any:
    import docker

    return docker.from_env(timeout=120)


def _remove_docker_objects(namespace: str) -> None:
    """Removes what is labelled as this namespace's; an agent may be removing it at the same time."""
    import docker.errors

    try:
        client = _docker()
        client.ping()
    except Exception:  # noqa: BLE001 - nothing to clean without an engine
        return
    label = f"decnet.io/namespace={namespace}"
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        containers = client.containers.list(all=True, filters={"label": label}, ignore_removed=True)
        networks = client.networks.list(filters={"label": label})
        if not containers and not networks:
            break
        for container in containers:
            try:
                container.remove(force=True)
            except docker.errors.APIError:  # gone already, or removal in progress
                pass
        if not containers:
            for network in networks:
                try:
                    network.remove()
                except docker.errors.APIError:  # endpoints still draining, or gone
                    pass
        time.sleep(0.3)
    client.close()


@pytest.fixture(scope="session")
def docker_client() -> Iterator[Any]:
    try:
        client = _docker()
        client.ping()
    except Exception as error:  # noqa: BLE001
        require(False, f"no Docker engine answers ({error}); run hack/docker-up.sh")
        raise
    yield client
    client.close()


@pytest.fixture(scope="session")
def test_image(docker_client: Any) -> str:
    import docker.errors

    try:
        docker_client.images.get(TEST_IMAGE)
    except docker.errors.ImageNotFound:
        subprocess.run(["bash", str(ROOT / "hack" / "images.sh")], check=True)
    return TEST_IMAGE
