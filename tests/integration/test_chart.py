"""The Helm chart against a real kube-apiserver.

`helm lint --strict` catches template and metadata mistakes; only a server-side
dry run proves that every rendered object is accepted by the API server (schema,
RBAC escalation checks, CRD-backed kinds). The RBAC test applies the service
accounts' roles for real and asks the API server what each identity may do.
"""

from __future__ import annotations

import os
import subprocess
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

pytestmark = pytest.mark.integration

ROOT = Path(__file__).resolve().parents[2]
CHART = ROOT / "charts" / "decnet-operator"
SYSTEM_NAMESPACE = "decnet-system"
KubectlFn = Callable[..., subprocess.CompletedProcess[str]]


def _helm_path() -> Path:
    cache = os.environ.get("DECNET_CACHE") or str(
        Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache")) / "decnet-operator"
    )
    return Path(cache) / "bin" / "current" / "helm"


@pytest.fixture(scope="module")
def helm() -> Callable[..., subprocess.CompletedProcess[str]]:
    path = _helm_path()
    if not path.exists():
        reason = f"helm not built at {path} (run hack/build-binaries.sh helm)"
        if os.environ.get("CI", "").lower() in {"1", "true", "yes"}:
            pytest.fail(reason, pytrace=False)
        pytest.skip(reason)

    def run(*args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
        result = subprocess.run([str(path), *args], capture_output=True, text=True, timeout=120)
        if check and result.returncode != 0:
            raise AssertionError(f"helm {' '.join(args)} failed:\n{result.stdout}\n{result.stderr}")
        return result

    return run


def _render(helm: Callable[..., subprocess.CompletedProcess[str]], release: str, *sets: str) -> str:
    args = ["template", release, str(CHART), "--namespace", SYSTEM_NAMESPACE]
    for value in sets:
        args += ["--set", value]
    return helm(*args).stdout


def _docs(manifest: str) -> list[dict[str, Any]]:
    return [d for d in yaml.safe_load_all(manifest) if d]


@pytest.fixture(scope="module")
def system_namespace(kubectl: KubectlFn) -> str:
    # Namespaces never finish deleting without a controller-manager: create, never delete.
    kubectl("create", "namespace", SYSTEM_NAMESPACE, check=False)
    kubectl("get", "namespace", SYSTEM_NAMESPACE)
    return SYSTEM_NAMESPACE


@pytest.fixture(scope="module")
def kopf_peering_crd(
    kubectl: KubectlFn, helm: Callable[..., subprocess.CompletedProcess[str]], crds: list[str]
) -> Iterator[None]:
    """kopf's peering CRD must exist for real before a ClusterKopfPeering can be dry-run."""
    docs = _docs(_render(helm, "peering", "serviceTemplates.install=false"))
    crd = next(
        d
        for d in docs
        if d["kind"] == "CustomResourceDefinition"
        and d["metadata"]["name"] == "clusterkopfpeerings.kopf.dev"
    )
    existed = kubectl("get", "crd", "clusterkopfpeerings.kopf.dev", check=False).returncode == 0
    kubectl("apply", "--server-side", "-f", "-", input=yaml.safe_dump(crd))
    kubectl(
        "wait", "--for=condition=Established", "--timeout=60s", "crd/clusterkopfpeerings.kopf.dev"
    )
    yield
    if not existed:
        kubectl("delete", "crd", "clusterkopfpeerings.kopf.dev", "--wait=false", check=False)


def test_helm_lint_strict_passes(helm: Callable[..., subprocess.CompletedProcess[str]]) -> None:
    result = helm("lint", "--strict", str(CHART))
    assert "0 chart(s) failed" in result.stdout


@pytest.mark.parametrize(
    "sets",
    [
        pytest.param((), id="defaults"),
        pytest.param(
            (
                "quota.deckies=25",
                "webhook.certSecret=decnet-webhook-tls",
                "operator.peering.enabled=false",
                "serviceTemplates.imagePrefix=registry.local/decnet/",
                "agent.tolerations[0].operator=Exists",
            ),
            id="quota-cert-standalone",
        ),
    ],
)
def test_rendered_chart_is_accepted_by_the_api_server(
    helm: Callable[..., subprocess.CompletedProcess[str]],
    kubectl: KubectlFn,
    crds: list[str],
    system_namespace: str,
    kopf_peering_crd: None,
    sets: tuple[str, ...],
) -> None:
    manifest = _render(helm, "decnet", *sets)
    docs = _docs(manifest)
    result = kubectl("apply", "--dry-run=server", "-f", "-", input=manifest, check=False)
    assert result.returncode == 0, result.stderr
    accepted = [line for line in result.stdout.splitlines() if line.endswith("(server dry run)")]
    assert len(accepted) == len(docs), result.stdout
    kinds = {d["kind"] for d in docs}
    assert {"Deployment", "DaemonSet", "ClusterRole", "Role", "Service", "ServiceTemplate"} <= kinds
    if "quota.deckies=25" in sets:
        quota = next(d for d in docs if d["kind"] == "ResourceQuota")
        assert quota["spec"]["hard"] == {"count/deckies.decnet.io": "25"}
        templates = [d for d in docs if d["kind"] == "ServiceTemplate"]
        assert all(t["spec"]["image"].startswith("registry.local/decnet/") for t in templates)


def test_operator_and_agent_pods_are_wired_as_documented(
    helm: Callable[..., subprocess.CompletedProcess[str]],
) -> None:
    docs = _docs(_render(helm, "decnet", "webhook.certSecret=tls", "agent.nodeSelector.role=decoy"))
    deploy = next(d for d in docs if d["kind"] == "Deployment")
    op = deploy["spec"]["template"]["spec"]["containers"][0]
    assert deploy["spec"]["replicas"] == 1
    assert op["command"] == ["python", "-m", "decnet.controller"]
    assert op["args"] == ["--no-standalone"]
    env = {e["name"]: e.get("value") for e in op["env"]}
    assert env["DECNET_BASE_IMAGE"] == "decnet/base:0.1.0"
    assert env["DECNET_PEERING"] == "decnet-operator"
    assert env["DECNET_WEBHOOK_HOST"] == "decnet-decnet-operator-webhook.decnet-system.svc"
    assert env["DECNET_HEALTH_PORT"] == "8081"
    assert env["DECNET_METRICS_ADDR"] == "0.0.0.0"
    assert {p["containerPort"] for p in op["ports"]} >= {9443, 8080}
    assert op["livenessProbe"]["httpGet"]["path"] == "/healthz"
    assert deploy["spec"]["template"]["spec"]["securityContext"]["runAsNonRoot"] is True
    volumes = deploy["spec"]["template"]["spec"]["volumes"]
    assert {"name": "webhook-cert", "secret": {"secretName": "tls"}} in volumes

    ds = next(d for d in docs if d["kind"] == "DaemonSet")
    pod = ds["spec"]["template"]["spec"]
    agent = pod["containers"][0]
    assert agent["command"] == ["python", "-m", "decnet.agent"]
    node_env = next(e for e in agent["env"] if e["name"] == "NODE_NAME")
    assert node_env["valueFrom"]["fieldRef"]["fieldPath"] == "spec.nodeName"
    # the egress firewall: iptables in the host's network namespace with NET_ADMIN only
    assert pod["hostNetwork"] is True
    assert agent["securityContext"]["capabilities"] == {"drop": ["ALL"], "add": ["NET_ADMIN"]}
    assert "--firewall" in agent["args"]
    assert "--denied-cidrs=10.96.0.0/12,10.244.0.0/16,169.254.0.0/16" in agent["args"]
    assert "--egress-within=0.0.0.0/0" in agent["args"]
    assert pod["nodeSelector"] == {"role": "decoy"}
    sock = next(v for v in pod["volumes"] if v["name"] == "docker-sock")
    assert sock["hostPath"] == {"path": "/var/run/docker.sock", "type": "Socket"}
    lock = next(v for v in pod["volumes"] if v["name"] == "xtables-lock")
    assert lock["hostPath"] == {"path": "/run/xtables.lock", "type": "FileOrCreate"}
    # lure files: the same host path inside the agent (dockerd resolves bind sources)
    state = next(v for v in pod["volumes"] if v["name"] == "state")
    mount = next(m for m in agent["volumeMounts"] if m["name"] == "state")
    assert state["hostPath"]["path"] == mount["mountPath"] == "/var/lib/container-files"

    # turning the firewall off (a loosened default) drops hostNetwork and NET_ADMIN
    loose = _docs(_render(helm, "decnet", "containment.firewall=false"))
    pod = next(d for d in loose if d["kind"] == "DaemonSet")["spec"]["template"]["spec"]
    assert pod["hostNetwork"] is False
    assert pod["containers"][0]["securityContext"]["capabilities"] == {"drop": ["ALL"]}
    assert "--no-firewall" in pod["containers"][0]["args"]

    standalone = _docs(_render(helm, "decnet", "operator.peering.enabled=false"))
    deploy = next(d for d in standalone if d["kind"] == "Deployment")
    assert deploy["spec"]["template"]["spec"]["containers"][0]["args"] == ["--standalone"]
    assert not [d for d in standalone if d["kind"] == "ClusterKopfPeering"]


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("quota.deckies=501", "at '/quota/deckies': maximum: got 501, want 500"),
        ("agent.dockerSocket=var/run/docker.sock", "at '/agent/dockerSocket'"),
        ("operator.logFormat=xml", "at '/operator/logFormat'"),
        ("webhook.port=70000", "at '/webhook/port'"),
        ("containment.deniedCIDRs[0]=10.96.0.0", "at '/containment/deniedCIDRs/0'"),
    ],
)
def test_values_schema_rejects_bad_values_with_a_message(
    helm: Callable[..., subprocess.CompletedProcess[str]], value: str, expected: str
) -> None:
    result = helm("template", "x", str(CHART), "--set", value, check=False)
    assert result.returncode != 0
    assert "values don't meet the specifications of the schema" in result.stderr
    assert expected in result.stderr


@pytest.fixture
def applied_rbac(
    helm: Callable[..., subprocess.CompletedProcess[str]],
    kubectl: KubectlFn,
    crds: list[str],
    system_namespace: str,
) -> Iterator[dict[str, str]]:
    """The chart's operator and agent identities and roles, applied for real under a fresh name."""
    release = f"rbac-{uuid.uuid4().hex[:6]}"
    docs = _docs(_render(helm, release))
    wanted = {"ServiceAccount", "ClusterRole", "ClusterRoleBinding", "Role", "RoleBinding"}
    rbac = [
        d
        for d in docs
        if d["kind"] in wanted and d["metadata"]["name"] not in {"decnet-admin", "decnet-viewer"}
    ]
    manifest = yaml.safe_dump_all(rbac)
    kubectl("apply", "-f", "-", input=manifest)
    try:
        yield {
            "operator": f"system:serviceaccount:{SYSTEM_NAMESPACE}:{release}-decnet-operator-operator",
            "agent": f"system:serviceaccount:{SYSTEM_NAMESPACE}:{release}-decnet-operator-agent",
        }
    finally:
        kubectl(
            "delete", "--wait=false", "--ignore-not-found", "-f", "-", input=manifest, check=False
        )


def _can(kubectl: KubectlFn, who: str, verb: str, resource: str, *extra: str) -> bool:
    out = kubectl("auth", "can-i", verb, resource, f"--as={who}", *extra, check=False).stdout
    return out.strip() == "yes"


def test_agent_may_read_its_deckies_and_write_status_and_lease_only(
    kubectl: KubectlFn, applied_rbac: dict[str, str]
) -> None:
    agent = applied_rbac["agent"]
    allowed = [
        ("list", "deckies.decnet.io", "-A"),
        ("watch", "deckies.decnet.io", "-A"),
        ("patch", "deckies.decnet.io", "--subresource=status", "-n", "decoys"),
        ("get", "secrets", "-n", "decoys"),
        ("get", "configmaps", "-n", "decoys"),
        ("create", "events", "-n", "decoys"),
        ("create", "leases.coordination.k8s.io", "-n", SYSTEM_NAMESPACE),
        ("update", "leases.coordination.k8s.io", "-n", SYSTEM_NAMESPACE),
    ]
    denied = [
        ("patch", "deckies.decnet.io", "-n", "decoys"),
        ("update", "deckies.decnet.io", "-n", "decoys"),
        ("delete", "deckies.decnet.io", "-n", "decoys"),
        ("list", "secrets", "-n", "decoys"),
        ("list", "lans.decnet.io", "-n", "decoys"),
        ("get", "servicetemplates.decnet.io"),
        ("create", "leases.coordination.k8s.io", "-n", "default"),
        ("delete", "leases.coordination.k8s.io", "-n", SYSTEM_NAMESPACE),
        ("create", "pods", "-n", "decoys"),
    ]
    for verb, resource, *extra in allowed:
        assert _can(kubectl, agent, verb, resource, *extra), (verb, resource, extra)
    for verb, resource, *extra in denied:
        assert not _can(kubectl, agent, verb, resource, *extra), (verb, resource, extra)


def test_operator_writes_status_and_claims_but_not_secrets(
    kubectl: KubectlFn, applied_rbac: dict[str, str]
) -> None:
    op = applied_rbac["operator"]
    for verb, resource, *extra in [
        ("patch", "deckies.decnet.io", "-n", "decoys"),
        ("patch", "topologies.decnet.io", "--subresource=status", "-n", "decoys"),
        ("create", "addressclaims.decnet.io", "-n", "decoys"),
        ("delete", "addressclaims.decnet.io", "-n", "decoys"),
        ("list", "leases.coordination.k8s.io", "-A"),
        ("create", "events", "-n", "decoys"),
        ("create", "validatingwebhookconfigurations.admissionregistration.k8s.io"),
        ("list", "customresourcedefinitions.apiextensions.k8s.io"),
        ("list", "namespaces"),
        ("patch", "clusterkopfpeerings.kopf.dev"),
    ]:
        assert _can(kubectl, op, verb, resource, *extra), (verb, resource, extra)
    for verb, resource, *extra in [
        ("get", "secrets", "-n", "decoys"),
        ("create", "deckies.decnet.io", "-n", "decoys"),
        ("delete", "deckies.decnet.io", "-n", "decoys"),
        ("create", "leases.coordination.k8s.io", "-n", SYSTEM_NAMESPACE),
        ("create", "pods", "-n", "decoys"),
    ]:
        assert not _can(kubectl, op, verb, resource, *extra), (verb, resource, extra)


def test_user_roles_aggregate_into_the_builtin_roles(
    helm: Callable[..., subprocess.CompletedProcess[str]],
) -> None:
    docs = {
        d["metadata"]["name"]: d
        for d in _docs(_render(helm, "decnet"))
        if d["kind"] == "ClusterRole"
    }
    admin = docs["decnet-admin"]["metadata"]["labels"]
    viewer = docs["decnet-viewer"]["metadata"]["labels"]
    assert admin["rbac.authorization.k8s.io/aggregate-to-admin"] == "true"
    assert admin["rbac.authorization.k8s.io/aggregate-to-edit"] == "true"
    assert viewer["rbac.authorization.k8s.io/aggregate-to-view"] == "true"
    viewer_verbs = {v for rule in docs["decnet-viewer"]["rules"] for v in rule["verbs"]}
    assert viewer_verbs == {"get", "list", "watch"}
