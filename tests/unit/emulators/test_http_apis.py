"""The JSON-over-HTTP services: what each answers, as pure functions."""

from __future__ import annotations

import json

from decnet.emulators.services import docker_api, elasticsearch, http, k8s


def _req(method: str, target: str, **headers: str) -> http.Request:
    return http.Request(method, target, "HTTP/1.1", {k.lower().replace("_", "-"): v
                                                     for k, v in headers.items()})


def test_docker_version_and_create_capture() -> None:
    config = dict(docker_api.DEFAULTS, version="24.0.9")
    engine = docker_api.Engine(config, "node1")
    seen: list[dict[str, object]] = []
    res = engine.answer(_req("GET", "/v1.43/version"), b"", lambda *a, **f: seen.append(f))
    assert json.loads(res.body)["Version"] == "24.0.9"
    assert ("Server", "Docker/24.0.9 (linux)") in res.headers
    body = json.dumps({"Image": "alpine", "Cmd": ["sh", "-c", "id"], "HostConfig": {
        "Binds": ["/:/mnt"], "Privileged": True}}).encode()
    res = engine.answer(_req("POST", "/containers/create"), body, lambda *a, **f: seen.append(f))
    assert res.status == 201 and seen[-1]["binds"] == "/:/mnt" and seen[-1]["cmd"] == "sh -c id"
    assert docker_api.api_path("/v1.41/containers/json?all=1") == "/containers/json"
    assert engine.answer(_req("GET", "/nope"), b"", print).body == b'{"message":"page not found"}\n'


def test_docker_create_summary_survives_hostile_bodies() -> None:
    for spec in (None, [], {"HostConfig": "x"}, {"Cmd": 5, "Image": {"a": 1}}):
        summary = docker_api.create_summary(spec)
        assert "image" in summary


def test_elasticsearch_banner_is_pretty_printed_like_the_server() -> None:
    config = dict(elasticsearch.DEFAULTS, version="7.17.18", clusterName="prod")
    res, index = elasticsearch.route(config, "node-1", "GET", "/")
    text = res.body.decode()
    assert index is None and '"number" : "7.17.18"' in text and '"cluster_name" : "prod"' in text
    assert text.endswith('"tagline" : "You Know, for Search"\n}\n')
    res, index = elasticsearch.route(config, "n", "POST", "/customers/_search")
    assert index == "customers" and res.status == 200
    res, index = elasticsearch.route(config, "n", "GET", "/secret/_search")
    assert res.status == 404 and b"index_not_found_exception" in res.body
    assert b"customers" in elasticsearch.route(config, "n", "GET", "/_cat/indices")[0].body


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
