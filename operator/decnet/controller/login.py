"""How the operator logs in to the API server.

In a pod it does what client-go's in-cluster config does: the API server's address from
KUBERNETES_SERVICE_HOST/PORT (set by the kubelet for every pod), the ServiceAccount's
token and CA from their mounted files. kopf's own service-account login dials
`kubernetes.default.svc`, which needs cluster DNS; a cluster without it (or a pod with
`dnsPolicy: Default`, like the hostNetwork agent's) never gets in. Outside a pod, the
kubeconfig as before. The token file is read again whenever kopf logs in anew (after a
401), so a rotated projected token is picked up.
"""

from __future__ import annotations

import ipaddress
import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import kopf

SERVICE_ACCOUNT_DIR = Path("/var/run/secrets/kubernetes.io/serviceaccount")


def in_cluster_server(env: Mapping[str, str]) -> str | None:
    """The API server's URL from the pod's environment, or None outside a pod."""
    host = env.get("KUBERNETES_SERVICE_HOST", "").strip()
    port = env.get("KUBERNETES_SERVICE_PORT", "").strip()
    if not host or not port:
        return None
    try:
        if ipaddress.ip_address(host).version == 6:
            host = f"[{host}]"
    except ValueError:
        pass  # a name, used as it is
    return f"https://{host}:{port}"


def in_cluster(env: Mapping[str, str], account: Path) -> kopf.ConnectionInfo | None:
    server = in_cluster_server(env)
    token_file = account / "token"
    if server is None or not token_file.is_file():
        return None
    namespace_file = account / "namespace"
    ca_file = account / "ca.crt"
    return kopf.ConnectionInfo(
        server=server,
        token=token_file.read_text().strip() or None,
        ca_path=str(ca_file) if ca_file.is_file() else None,
        default_namespace=namespace_file.read_text().strip() if namespace_file.is_file() else None,
    )


@kopf.on.login()
def login(**kwargs: Any) -> kopf.ConnectionInfo | None:
    if "KUBECONFIG" not in os.environ:
        info = in_cluster(os.environ, SERVICE_ACCOUNT_DIR)
        if info is not None:
            return info
    return kopf.login_with_kubeconfig(**kwargs)
