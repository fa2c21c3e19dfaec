"""The Helm chart against a real kube-apiserver.

`helm lint --strict` catches template and metadata mistakes; only a server-side
dry run proves that every rendered object is accepted by the API server (schema,
RBAC escalation checks, CRD-backed kinds). The RBAC test applies the service
accounts' roles for real and asks the API server what each identity may do.
"""

from __future__ import annotations

import os
import re
import subprocess
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml
from tests.support import require

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
def kopf_peering_crd(kubectl: KubectlFn, crds: list[str]) -> Iterator[None]:
    """kopf's peering CRD (the chart's crds/) must exist before a ClusterKopfPeering is dry-run."""
    path = CHART / "crds" / "kopf.dev_clusterkopfpeerings.yaml"
    existed = kubectl("get", "crd", "clusterkopfpeerings.kopf.dev", check=False).returncode == 0
    kubectl("apply", "--server-side", "-f", str(path))
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
                "webhook.caBundle=Zm9v",
                "webhook.failurePolicy=Ignore",
                "agent.decoyNamespaces={default}",
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
    docs = _docs(
        _render(
            helm,
            "decnet",
            "webhook.certSecret=tls",
            "webhook.caBundle=Zm9v",
            "agent.nodeSelector.role=decoy",
        )
    )
    deploy = next(d for d in docs if d["kind"] == "Deployment")
    op = deploy["spec"]["template"]["spec"]["containers"][0]
    assert deploy["spec"]["replicas"] == 1
    # leader election: the newest pod leads, so a rolling update hands over at once
    assert deploy["spec"]["strategy"]["type"] == "RollingUpdate"
    pod_id = next(e for e in op["env"] if e["name"] == "POD_ID")  # kopf's peer identity
    assert pod_id["valueFrom"]["fieldRef"]["fieldPath"] == "metadata.name"
    assert op["command"] == ["python", "-m", "decnet.controller"]
    assert op["args"] == ["--no-standalone"]
    env = {e["name"]: e.get("value") for e in op["env"]}
    assert env["DECNET_BASE_IMAGE"] == "decnet/base:0.1.0"
    assert env["DECNET_PEERING"] == "decnet-operator"
    assert env["DECNET_PEERING_LIFETIME"] == "60"
    assert env["DECNET_WEBHOOK_HOST"] == "decnet-webhook.decnet-system.svc"
    assert env["DECNET_HEALTH_PORT"] == "8081"
    assert env["DECNET_METRICS_ADDR"] == "0.0.0.0"
    assert {p["containerPort"] for p in op["ports"]} >= {9443, 8080}
    assert op["livenessProbe"]["httpGet"]["path"] == "/healthz"
    assert deploy["spec"]["template"]["spec"]["securityContext"]["runAsNonRoot"] is True
    volumes = deploy["spec"]["template"]["spec"]["volumes"]
    assert {"name": "webhook-cert", "secret": {"secretName": "tls"}} in volumes
    assert env["DECNET_WEBHOOK_MANAGED"] == "0"  # the chart owns the configuration
    assert env["DECNET_WEBHOOK_CERT_DIR"] == "/etc/decnet/webhook"
    assert env["DECNET_SYSTEM_NAMESPACE"] == "decnet-system"  # the release namespace

    ds = next(d for d in docs if d["kind"] == "DaemonSet")
    pod = ds["spec"]["template"]["spec"]
    agent = pod["containers"][0]
    assert agent["command"] == ["python", "-m", "decnet.agent"]
    agent_env = {e["name"]: e.get("value") for e in agent["env"]}
    assert agent_env["DECNET_SYSTEM_NAMESPACE"] == "decnet-system"
    node_env = next(e for e in agent["env"] if e["name"] == "NODE_NAME")
    assert node_env["valueFrom"]["fieldRef"]["fieldPath"] == "spec.nodeName"
    # the egress firewall (iptables, NET_ADMIN) and the sniffer (packet sockets on the LAN
    # bridges, NET_RAW) in the host's network namespace, nothing more
    assert pod["hostNetwork"] is True
    assert agent["securityContext"]["capabilities"] == {
        "drop": ["ALL"],
        "add": ["NET_ADMIN", "NET_RAW"],
    }
    assert "--firewall" in agent["args"]
    assert "--sniffer" in agent["args"] and "--sniffer-window=10" in agent["args"]
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

    # turning the firewall off (a loosened default) drops NET_ADMIN; the sniffer keeps the
    # host network and NET_RAW until it is turned off too
    loose = _docs(_render(helm, "decnet", "containment.firewall=false"))
    pod = next(d for d in loose if d["kind"] == "DaemonSet")["spec"]["template"]["spec"]
    assert pod["hostNetwork"] is True
    caps = pod["containers"][0]["securityContext"]["capabilities"]
    assert caps == {"drop": ["ALL"], "add": ["NET_RAW"]}
    assert "--no-firewall" in pod["containers"][0]["args"]
    bare = _docs(
        _render(helm, "decnet", "containment.firewall=false", "agent.sniffer.enabled=false")
    )
    pod = next(d for d in bare if d["kind"] == "DaemonSet")["spec"]["template"]["spec"]
    assert pod["hostNetwork"] is False
    assert pod["containers"][0]["securityContext"]["capabilities"] == {"drop": ["ALL"]}
    assert "--no-sniffer" in pod["containers"][0]["args"]

    standalone = _docs(_render(helm, "decnet", "operator.peering.enabled=false"))
    deploy = next(d for d in standalone if d["kind"] == "Deployment")
    assert deploy["spec"]["template"]["spec"]["containers"][0]["args"] == ["--standalone"]
    assert deploy["spec"]["strategy"] == {"type": "Recreate"}  # no leader election
    refused = helm(
        "template", "x", str(CHART), "--set", "operator.peering.enabled=false",
        "--set", "operator.replicas=2", check=False,
    )  # fmt: skip
    assert "operator.replicas > 1 needs operator.peering.enabled=true" in refused.stderr
    assert not [d for d in standalone if d["kind"] == "ClusterKopfPeering"]


@pytest.mark.parametrize(
    ("release", "sets", "operator", "agent"),
    [
        pytest.param("decnet", (), "decnet-operator", "decnet-agent", id="decnet"),
        pytest.param("decnet-operator", (), "decnet-operator", "decnet-agent", id="chart-name"),
        pytest.param("soc", (), "soc-operator", "soc-agent", id="other"),
        pytest.param("x", ("fullnameOverride=deception",), "deception-operator", "deception-agent"),
    ],
)
def test_object_names_say_the_release_and_the_component_once(
    helm: Callable[..., subprocess.CompletedProcess[str]],
    release: str,
    sets: tuple[str, ...],
    operator: str,
    agent: str,
) -> None:
    docs = _docs(_render(helm, release, "webhook.certSecret=tls", "webhook.caBundle=Zm9v", *sets))
    names = {(d["kind"], d["metadata"]["name"]) for d in docs}
    assert {("Deployment", operator), ("ServiceAccount", operator)} <= names
    assert {("DaemonSet", agent), ("ServiceAccount", agent)} <= names
    assert not [n for _, n in names if n.count("operator") > 1], sorted(names)


def test_chart_objects_are_plain_release_objects_and_crds_come_first(
    helm: Callable[..., subprocess.CompletedProcess[str]],
) -> None:
    """No hook: an upgrade or an Argo CD sync patches the ServiceTemplates and the peering
    in place (a hook is deleted and re-created, which re-reconciles every decky). Their
    CRDs are in crds/, which Helm installs before any template."""
    docs = _docs(_render(helm, "decnet"))
    hooks = [
        (d["kind"], d["metadata"]["name"])
        for d in docs
        if "helm.sh/hook" in (d["metadata"].get("annotations") or {})
    ]
    assert hooks == []
    kinds = {d["kind"] for d in docs}
    assert {"ServiceTemplate", "ClusterKopfPeering"} <= kinds
    assert "CustomResourceDefinition" not in kinds  # crds/ is not templated
    crd_kinds = {
        yaml.safe_load(p.read_text())["spec"]["names"]["kind"]
        for p in (CHART / "crds").glob("*.yaml")
    }
    assert {"Decky", "LAN", "Topology", "ServiceTemplate", "ClusterKopfPeering"} <= crd_kinds
    # the generated CRDs in the chart are the same as crds/
    for path in (ROOT / "crds").glob("decnet.io_*.yaml"):
        assert (CHART / "crds" / path.name).read_text() == path.read_text(), path.name


def test_helm_upgrade_patches_the_peering_in_place(
    helm: Callable[..., subprocess.CompletedProcess[str]],
    kubectl: KubectlFn,
    kubeconfig: str,
    kopf_peering_crd: None,
) -> None:
    """A real install and upgrade: the ClusterKopfPeering keeps its uid (a hook would be
    deleted and re-created). The built-in ServiceTemplates are the same kind of object;
    the cluster tier checks them (other modules here own templates of those names)."""
    namespace = "decnet-chart-upgrade"
    kubectl("create", "namespace", namespace, check=False)  # never deleted (no controllers)
    release = f"up-{uuid.uuid4().hex[:6]}"
    common = [
        str(CHART),
        "--namespace",
        namespace,
        f"--kubeconfig={kubeconfig}",
        "--set",
        "serviceTemplates.install=false",
        "--set",
        "webhook.enabled=false",  # no operator behind it in this test bed
        "--set",
        "agent.statusPolicy.enabled=false",
        "--set",
        f"operator.peering.name={release}",
    ]
    helm("install", release, *common)
    try:
        peering = kubectl("get", "clusterkopfpeering", release, "-o", "yaml")
        before = yaml.safe_load(peering.stdout)["metadata"]["uid"]
        helm("upgrade", release, *common, "--set", "operator.logLevel=debug")
        after = kubectl("get", "clusterkopfpeering", release, "-o", "yaml")
        assert yaml.safe_load(after.stdout)["metadata"]["uid"] == before
        deploy = kubectl("get", "deployment", f"{release}-operator", "-n", namespace, "-o", "yaml")
        assert yaml.safe_load(deploy.stdout)["spec"]["strategy"]["type"] == "RollingUpdate"
    finally:
        helm("uninstall", release, "--namespace", namespace, f"--kubeconfig={kubeconfig}")
    assert kubectl("get", "clusterkopfpeering", release, check=False).returncode != 0


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("quota.deckies=501", "at '/quota/deckies': maximum: got 501, want 500"),
        ("operator.replicas=4", "at '/operator/replicas': maximum: got 4, want 3"),
        ("agent.dockerSocket=var/run/docker.sock", "at '/agent/dockerSocket'"),
        ("operator.logFormat=xml", "at '/operator/logFormat'"),
        ("webhook.port=70000", "at '/webhook/port'"),
        ("containment.deniedCIDRs[0]=10.96.0.0", "at '/containment/deniedCIDRs/0'"),
        ("agent.health.port=0", "at '/agent/health/port'"),
        ("metrics.serviceMonitor.interval=30 seconds", "at '/metrics/serviceMonitor/interval'"),
        (
            "metrics.prometheusRule.disabled={NoSuchAlert}",
            "at '/metrics/prometheusRule/disabled/0'",
        ),
        (
            "metrics.prometheusRule.leaseStaleSeconds=5",
            "at '/metrics/prometheusRule/leaseStaleSeconds'",
        ),
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
    kubectl("create", "namespace", "decoys", check=False)  # never deleted (no controllers)
    docs = _docs(_render(helm, release, "agent.decoyNamespaces={decoys}"))
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
            "operator": f"system:serviceaccount:{SYSTEM_NAMESPACE}:{release}-operator",
            "agent": f"system:serviceaccount:{SYSTEM_NAMESPACE}:{release}-agent",
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
        # server-side apply of its Lease: PATCH, which creates it the first time
        ("create", "leases.coordination.k8s.io", "-n", SYSTEM_NAMESPACE),
        ("patch", "leases.coordination.k8s.io", "-n", SYSTEM_NAMESPACE),
    ]
    denied = [
        ("get", "secrets", "-n", "default"),  # not a decoy namespace the chart names
        ("get", "configmaps", "-n", "kube-system"),
        ("create", "namespaces"),
        ("update", "leases.coordination.k8s.io", "-n", SYSTEM_NAMESPACE),
        ("get", "leases.coordination.k8s.io", "-n", SYSTEM_NAMESPACE),
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
        ("list", "customresourcedefinitions.apiextensions.k8s.io"),
        ("patch", "clusterkopfpeerings.kopf.dev"),
    ]:
        assert _can(kubectl, op, verb, resource, *extra), (verb, resource, extra)
    for verb, resource, *extra in [
        ("get", "secrets", "-n", "decoys"),
        ("create", "deckies.decnet.io", "-n", "decoys"),
        ("delete", "deckies.decnet.io", "-n", "decoys"),
        ("create", "leases.coordination.k8s.io", "-n", SYSTEM_NAMESPACE),
        ("create", "pods", "-n", "decoys"),
        # the chart owns admission configuration; kopf only serves
        ("create", "validatingwebhookconfigurations.admissionregistration.k8s.io"),
        ("patch", "validatingwebhookconfigurations.admissionregistration.k8s.io"),
        # verbs no code path sends
        ("update", "deckies.decnet.io", "-n", "decoys"),
        ("patch", "lans.decnet.io", "-n", "decoys"),
        ("patch", "servicetemplates.decnet.io"),
        ("patch", "servicetemplates.decnet.io", "--subresource=status"),
        ("patch", "addressclaims.decnet.io", "-n", "decoys"),
        ("update", "deckies.decnet.io", "--subresource=status", "-n", "decoys"),
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


def test_secret_reads_cluster_wide_are_opt_in(
    helm: Callable[..., subprocess.CompletedProcess[str]],
) -> None:
    def secret_rules(*sets: str) -> list[tuple[str, str | None]]:
        return [
            (d["kind"], d["metadata"].get("namespace"))
            for d in _docs(_render(helm, "decnet", *sets))
            if d["kind"] in {"Role", "ClusterRole"}
            and any("secrets" in r.get("resources", []) for r in d.get("rules", []))
        ]

    # by default only the system namespace, where EventSinks name their Secrets
    sinks = ("Role", SYSTEM_NAMESPACE)
    assert secret_rules() == [sinks]
    assert secret_rules("agent.decoyNamespaces={a,b}") == [("Role", "a"), ("Role", "b"), sinks]
    assert secret_rules("agent.readSecretsClusterWide=true") == [("ClusterRole", None), sinks]


def test_the_agent_reads_only_the_named_sink_secrets_when_they_are_listed(
    helm: Callable[..., subprocess.CompletedProcess[str]],
) -> None:
    def sink_rules(*sets: str) -> list[dict[str, Any]]:
        docs = _docs(_render(helm, "decnet", *sets))
        role = next(
            d
            for d in docs
            if d["kind"] == "Role" and d["metadata"]["name"].endswith("-agent-sinks")
        )
        assert role["metadata"]["namespace"] == SYSTEM_NAMESPACE
        return list(role["rules"])

    assert sink_rules() == [{"apiGroups": [""], "resources": ["secrets"], "verbs": ["get"]}]
    assert sink_rules("agent.eventSinkSecrets={soc-ca,soc-headers}") == [
        {
            "apiGroups": [""],
            "resources": ["secrets"],
            "resourceNames": ["soc-ca", "soc-headers"],
            "verbs": ["get"],
        }
    ]


def test_webhook_configuration_uses_a_service_reference_and_a_stable_ca(
    helm: Callable[..., subprocess.CompletedProcess[str]],
    kubectl: KubectlFn,
    kubeconfig: str,
    system_namespace: str,
) -> None:
    def render(*sets: str, server: bool = False) -> list[dict[str, Any]]:
        args = ["template", "stable", str(CHART), "--namespace", SYSTEM_NAMESPACE]
        args += ["--show-only", "templates/webhook.yaml"]
        if server:  # lets `lookup` see the cluster, as `helm upgrade` does
            args += ["--dry-run=server", "--kubeconfig", kubeconfig]
        for value in sets:
            args += ["--set", value]
        return _docs(helm(*args).stdout)

    docs = render()
    vwc = next(d for d in docs if d["kind"] == "ValidatingWebhookConfiguration")
    secret = next(d for d in docs if d["kind"] == "Secret")
    for hook in vwc["webhooks"]:
        assert hook["failurePolicy"] == "Fail"
        assert hook["clientConfig"]["service"] == {
            "name": "stable-webhook",
            "namespace": SYSTEM_NAMESPACE,
            "port": 9443,
            "path": "/" + hook["name"].split(".")[0],
        }
        assert hook["clientConfig"]["caBundle"] == secret["data"]["ca.crt"]
    # Installed once, a second render (an upgrade) keeps the same CA and key.
    kubectl("apply", "-f", "-", input=yaml.safe_dump(secret))
    try:
        again = render(server=True)
        kept = next(d for d in again if d["kind"] == "Secret")
        assert kept["data"] == secret["data"]
        hook = next(d for d in again if d["kind"] == "ValidatingWebhookConfiguration")
        assert hook["webhooks"][0]["clientConfig"]["caBundle"] == secret["data"]["ca.crt"]
    finally:
        kubectl("delete", "secret", secret["metadata"]["name"], "-n", SYSTEM_NAMESPACE, check=False)

    relaxed = render("webhook.failurePolicy=Ignore")
    assert {
        w["failurePolicy"]
        for d in relaxed
        if d["kind"] == "ValidatingWebhookConfiguration"
        for w in d["webhooks"]
    } == {"Ignore"}

    managed = render("webhook.certManager.enabled=true")
    kinds = sorted(d["kind"] for d in managed)
    assert kinds == ["Certificate", "Issuer", "ValidatingWebhookConfiguration"]
    vwc = next(d for d in managed if d["kind"] == "ValidatingWebhookConfiguration")
    annotation = vwc["metadata"]["annotations"]["cert-manager.io/inject-ca-from"]
    assert annotation == f"{SYSTEM_NAMESPACE}/stable-webhook"
    assert all("caBundle" not in w["clientConfig"] for w in vwc["webhooks"])
    cert = next(d for d in managed if d["kind"] == "Certificate")
    assert cert["spec"]["secretName"] == "stable-webhook-tls"


# --- what a real one-node install needs: probes, monitoring, Pod Security ----------------


def test_probes_point_at_the_health_servers_the_processes_start(
    helm: Callable[..., subprocess.CompletedProcess[str]],
) -> None:
    from decnet.agent import main as agent_main
    from decnet.controller import main as controller_main

    docs = _docs(_render(helm, "decnet", "agent.health.port=9900"))
    op = next(d for d in docs if d["kind"] == "Deployment")["spec"]["template"]["spec"]
    container = op["containers"][0]
    ports = {p["name"]: p["containerPort"] for p in container["ports"]}
    assert container["livenessProbe"]["httpGet"] == {"path": "/healthz", "port": "health"}
    assert container["readinessProbe"]["httpGet"] == {"path": "/readyz", "port": "health"}
    env = {e["name"]: e["value"] for e in container["env"] if "value" in e}
    # the operator's own parser reads the chart's environment (the probe server's port)
    args = controller_main._parse([])
    assert args.health_port == 0  # off unless the chart sets it
    os_env = dict(os.environ)
    try:
        os.environ.update(env)
        args = controller_main._parse(container["args"])
    finally:
        os.environ.clear()
        os.environ.update(os_env)
    assert args.health_port == ports["health"] == 8081
    assert args.health_addr == "0.0.0.0"

    ds = next(d for d in docs if d["kind"] == "DaemonSet")["spec"]["template"]["spec"]
    agent = ds["containers"][0]
    ports = {p["name"]: p["containerPort"] for p in agent["ports"]}
    assert agent["livenessProbe"]["httpGet"] == {"path": "/healthz", "port": "health"}
    assert agent["readinessProbe"]["httpGet"] == {"path": "/readyz", "port": "health"}
    pod_ip = next(e for e in agent["env"] if e["name"] == "POD_IP")
    assert pod_ip["valueFrom"]["fieldRef"]["fieldPath"] == "status.podIP"
    # the kubelet expands $(POD_IP); the agent's parser must know every flag the chart passes
    expanded = [a.replace("$(POD_IP)", "10.0.0.7") for a in agent["args"]]
    parsed = agent_main.parse_args(["--node", "n", *expanded])
    assert parsed.health_port == ports["health"] == 9900
    assert parsed.health_addr == parsed.metrics_addr == "10.0.0.7"  # not every bridge on the node


@pytest.fixture(scope="module")
def prometheus_crds(kubectl: KubectlFn) -> list[str]:
    """The real ServiceMonitor and PrometheusRule CRDs, from the Go module proxy (cached)."""
    result = subprocess.run(
        ["bash", str(ROOT / "hack" / "prometheus-crds.sh")],
        capture_output=True,
        text=True,
        timeout=600,
    )
    require(result.returncode == 0, f"hack/prometheus-crds.sh failed: {result.stderr[-500:]}")
    directory = Path(result.stdout.strip().splitlines()[-1])
    files = sorted(directory.glob("monitoring.coreos.com_*.yaml"))
    require(len(files) == 2, f"prometheus-operator CRDs missing in {directory}")
    for path in files:
        kubectl("apply", "--server-side", "-f", str(path))
    names = ["servicemonitors.monitoring.coreos.com", "prometheusrules.monitoring.coreos.com"]
    kubectl("wait", "--for=condition=Established", "--timeout=60s", *[f"crd/{n}" for n in names])
    return names


MONITORING = (
    "metrics.serviceMonitor.enabled=true",
    "metrics.serviceMonitor.labels.release=kube-prometheus",
    "metrics.prometheusRule.enabled=true",
    "metrics.prometheusRule.labels.release=kube-prometheus",
    "metrics.prometheusRule.alertLabels.team=security",
    "metrics.prometheusRule.disabled={DecnetEventsDropped}",
    "metrics.prometheusRule.extraRules[0].record=decnet:agent_converges:rate5m",
    "metrics.prometheusRule.extraRules[0].expr=sum(rate(decnet_agent_converges_total[5m]))",
)


def _monitoring(helm: Callable[..., subprocess.CompletedProcess[str]]) -> list[dict[str, Any]]:
    docs = _docs(_render(helm, "decnet", *MONITORING))
    return [d for d in docs if d["apiVersion"] == "monitoring.coreos.com/v1"]


def test_monitoring_objects_are_accepted_by_the_prometheus_operator_crds(
    helm: Callable[..., subprocess.CompletedProcess[str]],
    kubectl: KubectlFn,
    system_namespace: str,
    prometheus_crds: list[str],
) -> None:
    docs = _monitoring(helm)
    assert sorted(d["kind"] for d in docs) == ["PrometheusRule", "ServiceMonitor"]
    manifest = yaml.safe_dump_all(docs)
    result = kubectl("apply", "--dry-run=server", "-f", "-", input=manifest, check=False)
    assert result.returncode == 0, result.stderr
    assert result.stdout.count("(server dry run)") == 2, result.stdout

    # the dry run has teeth: the CRD's own schema refuses a malformed duration
    rule = next(d for d in docs if d["kind"] == "PrometheusRule")
    rule["spec"]["groups"][0]["rules"][0]["for"] = "soon"
    bad = kubectl("apply", "--dry-run=server", "-f", "-", input=yaml.safe_dump(rule), check=False)
    assert bad.returncode != 0 and "spec.groups[0].rules[0].for" in bad.stderr, bad.stderr


def test_alerts_use_only_metrics_the_processes_export(
    helm: Callable[..., subprocess.CompletedProcess[str]],
) -> None:
    import prometheus_client

    from decnet.agent import delivery
    from decnet.agent import main as agent_main
    from decnet.controller import metrics

    assert agent_main.FAILING and delivery.FAILED and metrics.RECONCILE_ERRORS  # registered
    exported = {
        name.removesuffix("_total")
        for family in prometheus_client.REGISTRY.collect()
        for name in (family.name, *(s.name for s in family.samples))
    }
    rule = next(d for d in _monitoring(helm) if d["kind"] == "PrometheusRule")
    rules = rule["spec"]["groups"][0]["rules"]
    alerts = {r["alert"]: r for r in rules if "alert" in r}
    assert set(alerts) == {
        "DecnetOperatorDown",
        "DecnetOperatorReconcileErrors",
        "DecnetAgentDown",
        "DecnetAgentLeaseStale",
        "DecnetDeckiesFailing",
        "DecnetFirewallSyncFailing",
        "DecnetEventDeliveryFailing",
    }  # DecnetEventsDropped disabled
    assert {"record": "decnet:agent_converges:rate5m"}.items() <= rules[-1].items()
    used = set()
    for r in alerts.values():
        assert r["labels"] == {"severity": r["labels"]["severity"], "team": "security"}
        assert 'namespace="decnet-system"' in r["expr"]
        used |= set(re.findall(r"\b(decnet_[a-z_]+)", r["expr"]))
    assert used, "no DECNET metric in any alert"
    assert {u.removesuffix("_total") for u in used} <= exported


def test_monitoring_needs_metrics_enabled(
    helm: Callable[..., subprocess.CompletedProcess[str]],
) -> None:
    result = helm(
        "template",
        "x",
        str(CHART),
        "--set",
        "metrics.enabled=false",
        "--set",
        "metrics.serviceMonitor.enabled=true",
        check=False,
    )
    assert result.returncode != 0
    assert "need metrics.enabled=true" in result.stderr


def _labelled_namespace(kubectl: KubectlFn, name: str, level: str) -> str:
    # Namespaces never finish deleting without a controller-manager: create, never delete.
    kubectl("create", "namespace", name, check=False)
    kubectl(
        "label", "namespace", name, f"pod-security.kubernetes.io/enforce={level}", "--overwrite"
    )
    return name


def _pod(workload: dict[str, Any], namespace: str) -> dict[str, Any]:
    template = workload["spec"]["template"]
    return {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {
            "name": f"psa-{workload['kind'].lower()}",
            "namespace": namespace,
            "labels": template["metadata"]["labels"],
        },
        "spec": template["spec"],
    }


@pytest.mark.parametrize("firewall", ["true", "false"])
def test_operator_pod_passes_restricted_and_the_agents_needs_privileged(
    helm: Callable[..., subprocess.CompletedProcess[str]], kubectl: KubectlFn, firewall: str
) -> None:
    restricted = _labelled_namespace(kubectl, "decnet-psa-restricted", "restricted")
    privileged = _labelled_namespace(kubectl, "decnet-psa-privileged", "privileged")
    for namespace, want_agent in ((restricted, False), (privileged, True)):
        manifest = helm(
            "template",
            "decnet",
            str(CHART),
            "--namespace",
            namespace,
            "--set",
            f"containment.firewall={firewall}",
        ).stdout
        docs = _docs(manifest)
        deploy = next(d for d in docs if d["kind"] == "Deployment")
        ds = next(d for d in docs if d["kind"] == "DaemonSet")
        op = kubectl(
            "create",
            "--dry-run=server",
            "-f",
            "-",
            input=yaml.safe_dump(_pod(deploy, namespace)),
            check=False,
        )
        assert op.returncode == 0, op.stderr
        assert "PodSecurity" not in op.stderr, op.stderr  # not even a warning
        agent = kubectl(
            "create",
            "--dry-run=server",
            "-f",
            "-",
            input=yaml.safe_dump(_pod(ds, namespace)),
            check=False,
        )
        if want_agent:
            assert agent.returncode == 0, agent.stderr
        else:
            assert agent.returncode != 0
            assert 'violates PodSecurity "restricted:latest"' in agent.stderr, agent.stderr
            assert 'restricted volume type "hostPath"' in agent.stderr
            assert "runAsUser=0" in agent.stderr
            if firewall == "true":
                assert "host namespaces (hostNetwork=true)" in agent.stderr


def test_install_fails_early_when_the_namespace_enforces_less_than_privileged(
    helm: Callable[..., subprocess.CompletedProcess[str]],
    kubectl: KubectlFn,
    kubeconfig: str,
    kopf_peering_crd: None,
) -> None:
    baseline = _labelled_namespace(kubectl, "decnet-psa-baseline", "baseline")
    privileged = _labelled_namespace(kubectl, "decnet-psa-privileged", "privileged")
    release = f"psa-{uuid.uuid4().hex[:6]}"  # cluster-scoped names of its own
    args = [
        "install",
        release,
        str(CHART),
        "--dry-run=server",
        f"--kubeconfig={kubeconfig}",
        # the CRDs and built-in ServiceTemplates are another release's in this test bed
        "--skip-crds",
        "--set",
        "serviceTemplates.install=false",
        "--set",
        f"operator.peering.name={release}",
    ]
    refused = helm(*args, "--namespace", baseline, check=False)
    assert refused.returncode != 0
    assert (
        f'namespace {baseline} enforces Pod Security "baseline"' in refused.stderr
        and f"kubectl label namespace {baseline} pod-security.kubernetes.io/enforce=privileged"
        in refused.stderr
    ), refused.stderr
    # the check can be turned off, and a privileged namespace passes it
    helm(*args, "--namespace", baseline, "--set", "agent.podSecurityCheck=false")
    accepted = helm(*args, "--namespace", privileged)
    assert "pod-security.kubernetes.io/enforce=privileged" in accepted.stdout  # NOTES


def test_every_rule_expression_parses_as_promql(
    helm: Callable[..., subprocess.CompletedProcess[str]],
) -> None:
    """Prometheus' own parser (hack/promql-check.sh, built from the Go module proxy): the
    CRD takes any string, so a typo would only show in a running Prometheus."""
    built = subprocess.run(
        ["bash", str(ROOT / "hack" / "promql-check.sh")],
        capture_output=True,
        text=True,
        timeout=600,
    )
    require(built.returncode == 0, f"hack/promql-check.sh failed: {built.stderr[-500:]}")
    docs = _docs(_render(helm, "decnet", "metrics.prometheusRule.enabled=true"))
    rule = next(d for d in docs if d["kind"] == "PrometheusRule")
    exprs = [str(r["expr"]) for r in rule["spec"]["groups"][0]["rules"]]
    assert len(exprs) == 8  # every alert, none disabled
    assert all("\n" not in e for e in exprs)
    check = [built.stdout.strip().splitlines()[-1]]
    result = subprocess.run(
        check, input="\n".join(exprs) + "\n", capture_output=True, text=True, timeout=60
    )
    assert result.returncode == 0, result.stdout
    broken = subprocess.run(check, input="sum(rate(x[5m]) >\n", capture_output=True, text=True)
    assert broken.returncode == 1 and "unclosed left parenthesis" in broken.stdout
