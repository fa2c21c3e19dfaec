"""The chart's own identities for processes run outside a cluster (tests, benchmarks).

Process-level tests must fail on an RBAC mistake the way a cluster would, so
the operator and the agents never run with the admin kubeconfig. This module
does what `helm install` plus the kubelet would: it renders the chart with
`helm template`, applies its ServiceAccounts, RBAC and admission policies with
the admin credentials, mints tokens with the TokenRequest API and writes one
kubeconfig per identity. An agent's token is bound to a Node object of its
name, exactly like a pod's projected token, so the API server puts
`authentication.kubernetes.io/node-name` into the request's user.extra and the
chart's ValidatingAdmissionPolicy sees the same claim it sees in a cluster.

The admission webhook configuration is the chart's, rendered and then pointed at
the local operator's URL instead of its Service (the only change: a Service
reference needs cluster networking), with the operator's own CA.
"""

from __future__ import annotations

import base64
import json
import subprocess
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
CHART = ROOT / "charts" / "decnet-operator"

RELEASE = "decnet"
NAMESPACE = "decnet-system"
TOKEN_SECONDS = 24 * 3600
RBAC_KINDS = {
    "ServiceAccount",
    "ClusterRole",
    "ClusterRoleBinding",
    "Role",
    "RoleBinding",
    "ValidatingAdmissionPolicy",
    "ValidatingAdmissionPolicyBinding",
}
PEOPLE_ROLES = {"decnet-admin", "decnet-viewer"}


def _bin(name: str) -> Path:
    import controlplane  # hack/controlplane.py, on the same path as this module

    path = Path(controlplane.CACHE) / "bin" / "current" / name
    if name == "helm" and not path.exists():  # built from the Go module proxy, cached
        subprocess.run(["bash", str(HERE / "build-binaries.sh"), "helm"], check=False)
    return path


def render(
    release: str = RELEASE,
    namespace: str = NAMESPACE,
    sets: Sequence[str] = (),
    show_only: Sequence[str] = (),
) -> list[dict[str, Any]]:
    """`helm template` of the chart: the objects a user's install would create."""
    argv = [str(_bin("helm")), "template", release, str(CHART), "--namespace", namespace]
    for value in sets:
        argv += ["--set", value]
    for template in show_only:
        argv += ["--show-only", template]
    out = subprocess.run(argv, capture_output=True, text=True, timeout=120)
    if out.returncode != 0:
        raise RuntimeError(f"helm template failed: {out.stderr}")
    return [d for d in yaml.safe_load_all(out.stdout) if d]


def rbac_objects(docs: Sequence[dict[str, Any]]) -> list[dict[str, Any]]:
    return [
        d for d in docs if d.get("kind") in RBAC_KINDS and d["metadata"]["name"] not in PEOPLE_ROLES
    ]


@dataclass
class Identities:
    """The chart's operator and agent ServiceAccounts, usable by local processes."""

    admin_kubeconfig: str
    directory: Path
    release: str = RELEASE
    namespace: str = NAMESPACE
    sets: tuple[str, ...] = ()
    nodes: dict[str, str] = field(default_factory=dict)  # node -> agent kubeconfig
    granted: set[str] = field(default_factory=set)
    operator_kubeconfig: str = ""

    # -- names ------------------------------------------------------------------------

    @property
    def fullname(self) -> str:
        """The chart's `decnet.fullname`: the release name without a trailing -operator."""
        return self.release.removesuffix("-operator")

    @property
    def operator_sa(self) -> str:
        return f"{self.fullname}-operator"

    @property
    def agent_sa(self) -> str:
        return f"{self.fullname}-agent"

    def username(self, sa: str) -> str:
        return f"system:serviceaccount:{self.namespace}:{sa}"

    # -- admin side ---------------------------------------------------------------------

    def kubectl(
        self, *args: str, input: str | None = None, check: bool = True
    ) -> subprocess.CompletedProcess[str]:
        argv = [str(_bin("kubectl")), f"--kubeconfig={self.admin_kubeconfig}", *args]
        out = subprocess.run(argv, input=input, capture_output=True, text=True, timeout=120)
        if check and out.returncode != 0:
            raise RuntimeError(f"kubectl {' '.join(args)} failed: {out.stderr}")
        return out

    def apply(self, docs: Sequence[dict[str, Any]]) -> None:
        if docs:
            self.kubectl(
                "apply",
                "--server-side",
                "--force-conflicts",
                "--field-manager=helm",
                "-f",
                "-",
                input=yaml.safe_dump_all(docs),
            )

    def install(self) -> Identities:
        """The release namespace, the chart's identities and roles, and the operator's token."""
        self.directory.mkdir(parents=True, exist_ok=True)
        # `helm install --create-namespace` makes it: an admin act, never the agent's.
        if self.kubectl("get", "namespace", self.namespace, check=False).returncode != 0:
            self.kubectl("create", "namespace", self.namespace)
        self.apply(rbac_objects(render(self.release, self.namespace, self.sets)))
        self.operator_kubeconfig = self._kubeconfig("operator", self._token(self.operator_sa))
        return self

    def grant_decoy_namespace(self, namespace: str) -> None:
        """What `agent.decoyNamespaces` renders for one namespace: the agent may read file
        sources (Secrets, ConfigMaps) there."""
        if namespace in self.granted:
            return
        docs = render(
            self.release,
            self.namespace,
            (*self.sets, f"agent.decoyNamespaces={{{namespace}}}"),
            show_only=["templates/rbac-agent-decoys.yaml"],
        )
        self.apply(docs)
        self.granted.add(namespace)

    def agent_kubeconfig(self, node: str) -> str:
        """The agent's identity on `node`: a token bound to a Node object of that name."""
        if node not in self.nodes:
            self.ensure_node(node)
            token = self._token(self.agent_sa, bound_node=node)
            self.nodes[node] = self._kubeconfig(f"agent-{node}", token)
        return self.nodes[node]

    def ensure_node(self, node: str) -> None:
        if self.kubectl("get", "node", node, check=False).returncode == 0:
            return
        body = {"apiVersion": "v1", "kind": "Node", "metadata": {"name": node}}
        self.kubectl("create", "-f", "-", input=json.dumps(body))

    def webhook_configuration(
        self,
        url: str,
        ca_pem: bytes,
        *,
        failure_policy: str = "Fail",
        namespace_selector: dict[str, Any] | None = None,
    ) -> dict[str, Any]:
        """The chart's ValidatingWebhookConfiguration, pointed at a local operator."""
        sets = [*self.sets, f"webhook.failurePolicy={failure_policy}"]
        docs = render(self.release, self.namespace, sets, show_only=["templates/webhook.yaml"])
        vwc = next(d for d in docs if d["kind"] == "ValidatingWebhookConfiguration")
        for hook in vwc["webhooks"]:
            path = hook["clientConfig"]["service"]["path"]
            hook["clientConfig"] = {
                "url": f"{url.rstrip('/')}{path}",
                "caBundle": base64.b64encode(ca_pem).decode(),
            }
            if namespace_selector is not None:
                hook["namespaceSelector"] = namespace_selector
        return dict(vwc)

    def register_webhook(self, vwc: dict[str, Any]) -> None:
        self.kubectl("apply", "-f", "-", input=yaml.safe_dump(vwc))

    def remove_webhook(self) -> None:
        self.kubectl(
            "delete",
            "validatingwebhookconfiguration",
            self.fullname,
            "--ignore-not-found",
            check=False,
        )

    def uninstall_nodes(self) -> None:
        for node in list(self.nodes):
            self.kubectl("delete", "node", node, "--ignore-not-found", "--wait=false", check=False)
        self.nodes.clear()

    # -- tokens and kubeconfigs -----------------------------------------------------------

    def _token(self, sa: str, bound_node: str | None = None) -> str:
        args = ["create", "token", sa, "-n", self.namespace, f"--duration={TOKEN_SECONDS}s"]
        if bound_node:
            args += ["--bound-object-kind=Node", f"--bound-object-name={bound_node}"]
        return self.kubectl(*args).stdout.strip()

    def _kubeconfig(self, name: str, token: str) -> str:
        admin = yaml.safe_load(Path(self.admin_kubeconfig).read_text())
        cluster = admin["clusters"][0]
        config = {
            "apiVersion": "v1",
            "kind": "Config",
            "clusters": [cluster],
            "users": [{"name": name, "user": {"token": token}}],
            "contexts": [{"name": name, "context": {"cluster": cluster["name"], "user": name}}],
            "current-context": name,
        }
        path = self.directory / f"{name}.kubeconfig"
        path.write_text(json.dumps(config, indent=2))
        path.chmod(0o600)
        return str(path)


def install(
    admin_kubeconfig: str, directory: Path, sets: Sequence[str] = (), **kwargs: Any
) -> Identities:
    return Identities(admin_kubeconfig, directory, sets=tuple(sets), **kwargs).install()


@dataclass
class LocalWebhook:
    """A local operator's webhook endpoint: a port and the Secret-like cert directory the
    chart would mount (DECNET_WEBHOOK_CERT_DIR); kopf serves, never registers."""

    port: int
    cert_dir: Path

    @property
    def url(self) -> str:
        return f"https://127.0.0.1:{self.port}"

    @property
    def ca_pem(self) -> bytes:
        return (self.cert_dir / "ca.crt").read_bytes()

    def env(self) -> dict[str, str]:
        return {"DECNET_WEBHOOK_CERT_DIR": str(self.cert_dir), "DECNET_WEBHOOK_MANAGED": "0"}

    def args(self) -> list[str]:
        return ["--webhook-port", str(self.port)]

    def serving(self) -> bool:
        import socket

        try:
            with socket.create_connection(("127.0.0.1", self.port), timeout=1):
                return True
        except OSError:
            return False


def local_webhook(directory: Path) -> LocalWebhook:
    import socket

    from decnet.controller import certs

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = int(s.getsockname()[1])
    certs.generate(directory, ["127.0.0.1", "localhost"])
    return LocalWebhook(port, directory)
