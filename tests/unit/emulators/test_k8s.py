"""The cluster API server: anonymous 403s, 401 for presented credentials, /version."""

from __future__ import annotations

import json

from decnet.emulators.services import http, k8s


def _req(method: str, target: str, **headers: str) -> http.Request:
    return http.Request(method, target, "HTTP/1.1", {k.lower().replace("_", "-"): v
                                                     for k, v in headers.items()})


def test_k8s_anonymous_is_forbidden_and_tokens_unauthorized() -> None:
    config = dict(k8s.DEFAULTS, gitVersion="v1.29.2")
    res = k8s.respond(config, _req("GET", "/api/v1/namespaces/default/pods"))
    doc = json.loads(res.body)
    assert res.status == 403 and doc["message"] == (
        'pods is forbidden: User "system:anonymous" cannot list resource "pods" in API group '
        '"" in the namespace "default"')
    res = k8s.respond(config, _req("GET", "/api/v1/secrets", authorization="Bearer abc"))
    assert res.status == 401 and json.loads(res.body)["reason"] == "Unauthorized"
    assert json.loads(k8s.respond(config, _req("GET", "/version")).body)["minor"] == "29"
    assert k8s.request_info("DELETE", "/apis/apps/v1/namespaces/x/deployments")["verb"] == \
        "deletecollection"
    assert k8s.credentials("Basic YWRtaW46cHc=") == {"mechanism": "basic", "username": "admin",
                                                      "password": "pw"}


def test_flow_control_uids_differ_between_clusters() -> None:
    config = dict(k8s.DEFAULTS)
    a = dict(k8s.respond(config, _req("GET", "/api"), "cp-1").headers)
    b = dict(k8s.respond(config, _req("GET", "/api"), "cp-2").headers)
    assert a["X-Kubernetes-Pf-Flowschema-Uid"] != b["X-Kubernetes-Pf-Flowschema-Uid"]
    assert json.loads(k8s.respond(config, _req("GET", "/api")).body)["message"] == \
        'forbidden: User "system:anonymous" cannot get path "/api"'
