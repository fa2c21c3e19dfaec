"""The test bed is real: a kube-apiserver that enforces CEL and server-side apply, and a dockerd.

If these fail, every other integration test would be testing a fake.
"""

from __future__ import annotations

import json
import threading
import time
import uuid
from typing import Any

import pytest
import yaml

SMOKE_CRD = """
apiVersion: apiextensions.k8s.io/v1
kind: CustomResourceDefinition
metadata: {name: widgets.smoke.decnet.io}
spec:
  group: smoke.decnet.io
  scope: Namespaced
  names: {plural: widgets, singular: widget, kind: Widget}
  versions:
  - name: v1
    served: true
    storage: true
    subresources: {status: {}}
    schema:
      openAPIV3Schema:
        type: object
        properties:
          spec:
            type: object
            x-kubernetes-validations:
            - rule: "self.min <= self.max"
              message: "spec.min must not exceed spec.max"
            properties:
              min: {type: integer}
              max: {type: integer}
          status:
            type: object
            properties:
              conditions:
                type: array
                x-kubernetes-list-type: map
                x-kubernetes-list-map-keys: [type]
                items:
                  type: object
                  required: [type, status]
                  properties:
                    type: {type: string}
                    status: {type: string}
"""


@pytest.fixture(scope="module")
def widget_crd(kubectl: Any) -> None:
    kubectl("apply", "-f", "-", input=SMOKE_CRD)
    kubectl("wait", "--for=condition=Established", "crd/widgets.smoke.decnet.io", "--timeout=30s")


def widget(name: str, low: int, high: int) -> str:
    return yaml.safe_dump(
        {
            "apiVersion": "smoke.decnet.io/v1",
            "kind": "Widget",
            "metadata": {"name": name},
            "spec": {"min": low, "max": high},
        }
    )


def test_api_server_reports_its_real_version(kubectl: Any) -> None:
    version = json.loads(kubectl("version", "-o", "json").stdout)
    assert version["serverVersion"]["gitVersion"].startswith("v1.3")
    assert version["serverVersion"]["major"] == "1"


def test_cel_rule_rejects_an_object_with_its_message(
    kubectl: Any, widget_crd: None, namespace: str
) -> None:
    rejected = kubectl("apply", "-n", namespace, "-f", "-", input=widget("bad", 5, 1), check=False)
    assert rejected.returncode != 0
    assert "spec.min must not exceed spec.max" in rejected.stderr
    assert kubectl("get", "widgets", "-n", namespace, "-o", "name").stdout.strip() == ""
    kubectl("apply", "-n", namespace, "-f", "-", input=widget("good", 1, 5))
    assert (
        kubectl("get", "widget", "good", "-n", namespace, "-o", "name").stdout.strip()
        == "widget.smoke.decnet.io/good"
    )


def test_a_watch_sees_an_object_created_after_it_started(
    kubectl: Any, kubectl_binary: str, kubeconfig: str, widget_crd: None, namespace: str
) -> None:
    import subprocess

    watcher = subprocess.Popen(
        [
            kubectl_binary,
            f"--kubeconfig={kubeconfig}",
            "get",
            "widgets",
            "-n",
            namespace,
            "-w",
            "-o",
            "name",
        ],
        stdout=subprocess.PIPE,
        text=True,
    )
    seen: list[str] = []
    reader = threading.Thread(target=lambda: seen.extend(watcher.stdout or []), daemon=True)
    reader.start()
    try:
        time.sleep(1.0)
        kubectl("apply", "-n", namespace, "-f", "-", input=widget("watched", 1, 2))
        deadline = time.monotonic() + 15
        while time.monotonic() < deadline and not any("watched" in line for line in seen):
            time.sleep(0.1)
    finally:
        watcher.terminate()
        watcher.wait(timeout=10)
    assert any(line.strip() == "widget.smoke.decnet.io/watched" for line in seen)


def test_two_field_managers_own_different_entries_of_a_list_map(
    kubectl: Any, widget_crd: None, namespace: str
) -> None:
    name = f"ssa-{uuid.uuid4().hex[:6]}"
    kubectl("apply", "-n", namespace, "-f", "-", input=widget(name, 1, 2))

    def status_apply(manager: str, condition_type: str, status: str) -> None:
        patch = {
            "apiVersion": "smoke.decnet.io/v1",
            "kind": "Widget",
            "metadata": {"name": name},
            "status": {"conditions": [{"type": condition_type, "status": status}]},
        }
        kubectl(
            "apply",
            "--server-side",
            f"--field-manager={manager}",
            "--subresource=status",
            "-n",
            namespace,
            "-f",
            "-",
            input=yaml.safe_dump(patch),
        )

    status_apply("operator", "Ready", "False")
    status_apply("agent", "Converged", "True")
    # The operator re-applies only its own entry: the agent's entry must survive.
    status_apply("operator", "Ready", "True")
    obj = json.loads(
        kubectl(
            "get", "widget", name, "-n", namespace, "-o", "json", "--show-managed-fields"
        ).stdout
    )
    conditions = {c["type"]: c["status"] for c in obj["status"]["conditions"]}
    assert conditions == {"Ready": "True", "Converged": "True"}
    managers = {
        m["manager"] for m in obj["metadata"]["managedFields"] if m.get("subresource") == "status"
    }
    assert {"operator", "agent"} <= managers


def test_docker_runs_a_service_in_the_network_namespace_of_a_base(
    docker_client: Any, test_image: str, namespace: str
) -> None:
    labels = {"decnet.io/namespace": namespace}
    base = docker_client.containers.run(
        test_image, ["sleep", "300"], detach=True, labels=labels, name=f"{namespace}-base"
    )
    service = docker_client.containers.run(
        test_image,
        ["httpd", "-f", "-p", "8080", "-h", "/var/www"],
        detach=True,
        labels=labels,
        network_mode=f"container:{base.id}",
        name=f"{namespace}-http",
    )
    deadline = time.monotonic() + 10
    output = b""
    while time.monotonic() < deadline:
        code, output = base.exec_run(["wget", "-q", "-O", "-", "http://127.0.0.1:8080/"])
        if code == 0:
            break
        time.sleep(0.2)
    assert b"It works!" in output
    service.reload()
    assert service.attrs["HostConfig"]["NetworkMode"] == f"container:{base.id}"
