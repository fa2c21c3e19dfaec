"""Shared helpers for the operator's integration tests (no tests in here).

The operator runs as a real subprocess against the session's control plane,
with the chart's operator ServiceAccount token and RBAC (the session's
`identities` fixture), never admin. With its webhook on, it only serves (as in
a cluster) and the harness registers the chart's ValidatingWebhookConfiguration,
pointed at the local port with the operator's CA, failurePolicy Fail.
The node agent is simulated only where it reports: a Lease for its node and
server-side-applied status.agent/containers under the agent's field manager
(the test itself plays the agent there, with admin credentials).
"""

from __future__ import annotations

import datetime
import os
import signal
import socket
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import yaml

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "hack"))
import chart_identities  # noqa: E402  (hack/chart_identities.py)

ROOT = Path(__file__).resolve().parents[2]
TEMPLATES = ROOT / "examples" / "servicetemplates-test.yaml"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class Operator:
    """`python3 -m decnet.controller` as a subprocess, stopped by its pid."""

    def __init__(self, identities: Any, *args: str, **env: str) -> None:
        self.identities = identities
        self.kubeconfig = str(identities.operator_kubeconfig)
        self.args = list(args)
        self.webhook = (
            None
            if "--no-webhook" in self.args
            else chart_identities.local_webhook(Path(tempfile.mkdtemp(prefix="decnet-wh-")))
        )
        self.env = {
            **os.environ,
            "PYTHONPATH": f"{ROOT / 'operator'}:{ROOT}",
            "DECNET_SYSTEM_NAMESPACE": identities.namespace,
            **(self.webhook.env() if self.webhook else {}),
            **env,
        }
        self.env.pop("KUBECONFIG", None)
        self.log = Path(tempfile.mkstemp(prefix="decnet-operator-", suffix=".log")[1])
        self.stdout = self.log.with_suffix(".stdout")  # apart: the log is stderr alone
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        argv = [
            sys.executable,
            "-m",
            "decnet.controller",
            "--standalone",
            "--kubeconfig",
            self.kubeconfig,
            "--metrics-port",
            "0",
            *self.args,
        ]
        if self.webhook is not None:
            argv += self.webhook.args()
        with self.log.open("ab") as err, self.stdout.open("ab") as out:
            self.proc = subprocess.Popen(argv, env=self.env, stdout=out, stderr=err)
        wait_for(lambda: b"operator.started" in self.log.read_bytes(), 30, "operator start", self)
        if self.webhook is not None:
            wait_for(self.webhook.serving, 30, "the webhook server", self)
            self.register_webhook()
        time.sleep(1.0)  # initial listing fills the indexes before handlers run

    def register_webhook(self, failure_policy: str = "Fail") -> None:
        """What the chart installs, pointed at this process (same port across restarts)."""
        assert self.webhook is not None
        ids = self.identities
        ids.register_webhook(
            ids.webhook_configuration(
                self.webhook.url, self.webhook.ca_pem, failure_policy=failure_policy
            )
        )

    def stop(self, sig: int = signal.SIGTERM) -> None:
        if self.proc is None:
            return
        if self.proc.poll() is None:
            os.kill(self.proc.pid, sig)
            try:
                self.proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                os.kill(self.proc.pid, signal.SIGKILL)
                self.proc.wait(timeout=10)
        self.proc = None

    def tail(self, lines: int = 40) -> str:
        text = self.log.read_text(errors="replace").splitlines()
        return "\n".join(text[-lines:])


def wait_for(
    predicate: Callable[[], Any], timeout: float, what: str, operator: Operator | None = None
) -> Any:
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            extra = f"\noperator log:\n{operator.tail()}" if operator else ""
            raise AssertionError(f"timed out after {timeout}s waiting for {what}{extra}")
        time.sleep(0.1)


def start(identities: Any, kubectl: Any, *args: str, **env: str) -> Iterator[Operator]:
    kubectl("apply", "--server-side", "--force-conflicts", "-f", str(TEMPLATES))
    sniffer = {
        "apiVersion": "decnet.io/v1alpha1",
        "kind": "ServiceTemplate",
        "metadata": {"name": "sniffer"},
        "spec": {"image": "decnet-test/busybox:latest", "fleetSingleton": True},
    }
    kubectl("create", "-f", "-", input=yaml.safe_dump(sniffer), check=False)
    op = Operator(identities, *args, **env)
    op.start()
    try:
        yield op
    finally:
        op.stop()
        # A failurePolicy Fail webhook left pointing at a stopped operator would refuse
        # every later Decky/LAN write of the session.
        identities.remove_webhook()


def node_name() -> str:
    return f"sim-{uuid.uuid4().hex[:6]}"


def lease(kubectl: Any, node: str, *, age_seconds: int = 0, duration: int = 40) -> None:
    """A simulated agent's Lease, in the chart's release namespace (made here by the admin
    when this runs before the `identities` fixture, as `helm install --create-namespace`)."""
    if kubectl("get", "namespace", "decnet-system", check=False).returncode != 0:
        kubectl("create", "namespace", "decnet-system", check=False)
    renew = datetime.datetime.now(datetime.UTC) - datetime.timedelta(seconds=age_seconds)
    body = {
        "apiVersion": "coordination.k8s.io/v1",
        "kind": "Lease",
        "metadata": {
            "name": f"decnet-agent-{node}",
            "namespace": "decnet-system",
            "labels": {"decnet.io/agent": node},
        },
        "spec": {
            "holderIdentity": node,
            "leaseDurationSeconds": duration,
            "renewTime": renew.strftime("%Y-%m-%dT%H:%M:%S.%fZ"),
        },
    }
    kubectl("apply", "-f", "-", input=yaml.safe_dump(body))


def drop_lease(kubectl: Any, node: str) -> None:
    kubectl(
        "delete",
        "lease",
        f"decnet-agent-{node}",
        "-n",
        "decnet-system",
        "--ignore-not-found",
        check=False,
    )


def apply(kubectl: Any, *objs: dict[str, Any], check: bool = True) -> Any:
    return kubectl("apply", "-f", "-", input=yaml.safe_dump_all(objs), check=check)


def lan(name: str, ns: str, **spec: Any) -> dict[str, Any]:
    return {
        "apiVersion": "decnet.io/v1alpha1",
        "kind": "LAN",
        "metadata": {"name": name, "namespace": ns},
        "spec": spec,
    }


def decky(
    name: str,
    ns: str,
    *,
    labels: dict[str, str] | None = None,
    annotations: dict[str, str] | None = None,
    **spec: Any,
) -> dict[str, Any]:
    spec.setdefault("services", ["ssh"])
    spec.setdefault("networks", [{"lan": "office"}])
    meta: dict[str, Any] = {"name": name, "namespace": ns}
    if labels:
        meta["labels"] = labels
    if annotations:
        meta["annotations"] = annotations
    return {"apiVersion": "decnet.io/v1alpha1", "kind": "Decky", "metadata": meta, "spec": spec}


def get(kube_client: Any, kind: Any, name: str, ns: str) -> dict[str, Any] | None:
    from lightkube import ApiError

    try:
        return dict(kube_client.get(kind, name, namespace=ns).to_dict())
    except ApiError as err:
        if err.status.code == 404:
            return None
        raise


def condition(obj: dict[str, Any] | None, type_: str) -> dict[str, Any]:
    for c in ((obj or {}).get("status") or {}).get("conditions") or ():
        if c["type"] == type_:
            return dict(c)
    return {}


def report(
    kube_client: Any, obj: dict[str, Any], state: str = "Converged", message: str = ""
) -> None:
    """What the agent writes: its report and containers, under its own field manager."""
    from decnet.kube import client as kclient
    from decnet.kube import names

    status = obj["status"]
    meta = obj["metadata"]
    ns, name = meta["namespace"], meta["name"]
    containers = (
        []
        if state == "Removed"
        else [
            {
                "name": names.base_container_name(ns, name),
                "id": uuid.uuid4().hex,
                "role": "base",
                "service": "",
                "state": "running",
                "planHash": status["planHash"],
            }
        ]
    )
    agent = {
        "node": status.get("node", ""),
        "planHash": status.get("planHash", ""),
        "state": state,
        "message": message,
        "lifecycleId": (status.get("lifecycle") or {}).get("id", ""),
    }
    kclient.apply_status(
        kube_client, "Decky", name, ns, {"agent": agent, "containers": containers}, "decnet-agent"
    )


def leased_node(kubectl: Any) -> Iterator[str]:
    """A node with a live agent Lease for a whole test module (a fixture body)."""
    name = node_name()
    lease(kubectl, name, duration=3600)
    yield name
    drop_lease(kubectl, name)


def fetch_decky(kube_client: Any, ns: str, name: str) -> dict[str, Any]:
    """The Decky as a dict, with an empty status when it has none yet."""
    from decnet.kube import client as kclient

    obj = get(kube_client, kclient.Decky, name, ns)
    assert obj is not None
    obj.setdefault("status", {})
    return obj


def refusing_policy(
    name: str, namespace: str, resource: str, operation: str, expression: str, message: str
) -> list[dict[str, Any]]:
    """A ValidatingAdmissionPolicy and its binding: the API server refuses `operation` on
    decnet.io `resource` in `namespace` wherever `expression` is false. A real failure
    for the operator's API calls, injected without mocking anything."""
    policy = {
        "apiVersion": "admissionregistration.k8s.io/v1",
        "kind": "ValidatingAdmissionPolicy",
        "metadata": {"name": name},
        "spec": {
            "failurePolicy": "Fail",
            "matchConstraints": {
                "resourceRules": [
                    {
                        "apiGroups": ["decnet.io"],
                        "apiVersions": ["*"],
                        "operations": [operation],
                        "resources": [resource],
                    }
                ]
            },
            "validations": [{"expression": expression, "message": message}],
        },
    }
    binding = {
        "apiVersion": "admissionregistration.k8s.io/v1",
        "kind": "ValidatingAdmissionPolicyBinding",
        "metadata": {"name": name},
        "spec": {
            "policyName": name,
            "validationActions": ["Deny"],
            "matchResources": {
                "namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": namespace}}
            },
        },
    }
    return [policy, binding]
