"""The container engine API: version, route prefixes, create capture, hostile bodies."""

from __future__ import annotations

import json

from decnet.emulators.services import docker_api, http


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


def test_container_ids_differ_between_hosts() -> None:
    config = dict(docker_api.DEFAULTS)
    one = [c["Id"] for c in docker_api.containers(config, "host-a")]
    two = [c["Id"] for c in docker_api.containers(config, "host-b")]
    assert one and not set(one) & set(two)
