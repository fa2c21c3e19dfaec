"""The Docker Engine API on 2375, unauthenticated, as a careless daemon exposes it.

Hand-written: the API is JSON over HTTP/1.1 and an attacker's chain is short
(ping, version, list, create a privileged container binding the host's root, start
it, exec). Every answer is made up from the config; nothing is ever run. A
container create or an exec is a `command` event (image, cmd, binds, privileged),
every request a `request` event. Headers follow the real daemon's (Go's) order so
a scanner names it: Api-Version, Content-Type, Docker-Experimental, Ostype,
Server, then Date and Content-Length.
"""

from __future__ import annotations

import asyncio
import hashlib
import re
import secrets
from typing import Any

from .. import core, events, httpapi
from . import http

PORTS = [(2375, "tcp")]
DEFAULTS: dict[str, Any] = {
    "version": "24.0.7",
    "apiVersion": "1.43",
    "minApiVersion": "1.12",
    "kernelVersion": "6.1.0-18-amd64",
    "operatingSystem": "Debian GNU/Linux 12 (bookworm)",
    "hostname": "",
    "cpus": 4,
    "memoryBytes": 8336769024,
    "containers": [
        {"name": "web", "image": "nginx:1.25", "command": "/docker-entrypoint.sh nginx -g "
         "'daemon off;'", "ports": [80]},
        {"name": "db", "image": "postgres:15", "command": "docker-entrypoint.sh postgres",
         "ports": [5432]},
    ],
    "images": ["nginx:1.25", "postgres:15", "redis:7-alpine"],
}
MAX_CREATED = 64
_VERSIONED = re.compile(r"^/v\d+\.\d+(/.*)$")


def _id(seed: str) -> str:
    return hashlib.sha256(seed.encode()).hexdigest()


def api_path(target: str) -> str:
    """The route without its /v1.xx prefix and query string."""
    path = target.split("?", 1)[0] or "/"
    match = _VERSIONED.match(path)
    return match.group(1) if match else path


def base_headers(config: dict[str, Any]) -> list[tuple[str, str]]:
    return [("Api-Version", str(config["apiVersion"])), ("Content-Type", "application/json"),
            ("Docker-Experimental", "false"), ("Ostype", "linux"),
            ("Server", f"Docker/{config['version']} (linux)")]


def _json(config: dict[str, Any], status: int, value: Any) -> http.Response:
    headers = [*base_headers(config), ("Date", httpapi.http_date())]
    return http.Response(status, httpapi.reason(status), headers, httpapi.json_bytes(value))


def _empty(config: dict[str, Any], status: int) -> http.Response:
    headers = [h for h in base_headers(config) if h[0] != "Content-Type"]
    return http.Response(status, httpapi.reason(status), [*headers, ("Date", httpapi.http_date())],
                         b"")


def not_found() -> http.Response:
    """The router's own 404, which carries none of the daemon's headers."""
    return http.Response(404, "Not Found", [("Content-Type", "application/json"),
                         ("Date", httpapi.http_date())], b'{"message":"page not found"}\n')


def raw_stream(upgrade: bool) -> http.Response:
    """A hijacked stream (exec start, attach) that ends at once: no output, then hang up."""
    if upgrade:
        return http.Response(101, "UPGRADED", [("Content-Type",
                             "application/vnd.docker.raw-stream"), ("Connection", "Upgrade"),
                             ("Upgrade", "tcp")], b"")
    return http.Response(200, "OK", [("Content-Type", "application/vnd.docker.raw-stream"),
                                     ("Connection", "close")], b"")


def version_doc(config: dict[str, Any]) -> dict[str, Any]:
    return {
        "Platform": {"Name": "Docker Engine - Community"},
        "Components": [{"Name": "Engine", "Version": config["version"], "Details": {
            "ApiVersion": config["apiVersion"], "Arch": "amd64", "BuildTime":
            "2023-10-26T09:07:41.000000000+00:00", "Experimental": "false", "GitCommit":
            "311b9ff", "GoVersion": "go1.20.10", "KernelVersion": config["kernelVersion"],
            "MinAPIVersion": config["minApiVersion"], "Os": "linux"}}],
        "Version": config["version"], "ApiVersion": config["apiVersion"],
        "MinAPIVersion": config["minApiVersion"], "GitCommit": "311b9ff",
        "GoVersion": "go1.20.10", "Os": "linux", "Arch": "amd64",
        "KernelVersion": config["kernelVersion"],
        "BuildTime": "2023-10-26T09:07:41.000000000+00:00",
    }


def containers(config: dict[str, Any], host: str = "") -> list[dict[str, Any]]:
    """The configured running containers; their ids depend on the host, as real ones differ."""
    out = []
    for i, c in enumerate(config["containers"][:50]):
        if not isinstance(c, dict):
            continue
        name = str(c.get("name", f"app{i}"))
        ports = [p for p in c.get("ports", []) if isinstance(p, int)]
        out.append({
            "Id": _id(f"{host}/{name}"), "Names": [f"/{name}"], "Image": str(c.get("image", "")),
            "ImageID": "sha256:" + _id(str(c.get("image", ""))),
            "Command": str(c.get("command", "")), "Created": 1700000000 + i * 3600,
            "Ports": [{"PrivatePort": p, "Type": "tcp"} for p in ports], "Labels": {},
            "State": "running", "Status": "Up 3 weeks", "HostConfig": {"NetworkMode": "default"},
            "NetworkSettings": {"Networks": {"bridge": {"IPAddress": f"172.17.0.{i + 2}"}}},
            "Mounts": [],
        })
    return out


def images(config: dict[str, Any]) -> list[dict[str, Any]]:
    return [{"Id": "sha256:" + _id(str(tag)), "ParentId": "", "RepoTags": [str(tag)],
             "RepoDigests": [], "Created": 1698000000 + i * 86400, "Size": 80_000_000 + i * 1000,
             "SharedSize": -1, "VirtualSize": 80_000_000 + i * 1000, "Labels": None,
             "Containers": -1} for i, tag in enumerate(config["images"][:50])]


def info_doc(config: dict[str, Any], hostname: str) -> dict[str, Any]:
    running = len(containers(config, hostname))
    return {
        "ID": _id(hostname)[:12].upper(), "Containers": running, "ContainersRunning": running,
        "ContainersPaused": 0, "ContainersStopped": 0, "Images": len(config["images"]),
        "Driver": "overlay2", "DriverStatus": [["Backing Filesystem", "extfs"]],
        "MemoryLimit": True, "SwapLimit": False, "CpuCfsPeriod": True, "CpuCfsQuota": True,
        "IPv4Forwarding": True, "Debug": False, "NFd": 32, "NGoroutines": 41,
        "LoggingDriver": "json-file", "CgroupDriver": "systemd", "CgroupVersion": "2",
        "KernelVersion": config["kernelVersion"], "OperatingSystem": config["operatingSystem"],
        "OSVersion": "12", "OSType": "linux", "Architecture": "x86_64",
        "NCPU": config["cpus"], "MemTotal": config["memoryBytes"],
        "DockerRootDir": "/var/lib/docker", "Name": hostname, "ServerVersion": config["version"],
        "Runtimes": {"runc": {"path": "runc"}}, "DefaultRuntime": "runc", "Swarm": {
            "LocalNodeState": "inactive"}, "LiveRestoreEnabled": False, "Isolation": "",
        "InitBinary": "docker-init", "SecurityOptions": ["name=seccomp,profile=builtin",
                                                         "name=cgroupns"],
        "Warnings": ["WARNING: API is accessible on http://0.0.0.0:2375 without encryption."],
    }


def create_summary(spec: Any) -> dict[str, str]:
    """What a container-create body asks for: image, command, binds, privileged."""
    if not isinstance(spec, dict):
        return {"image": "", "cmd": ""}
    host: dict[str, Any] = spec["HostConfig"] if isinstance(spec.get("HostConfig"), dict) else {}
    return {
        "image": str(spec.get("Image", "")),
        "cmd": _words(spec.get("Cmd")),
        "entrypoint": _words(spec.get("Entrypoint")),
        "binds": ",".join(str(b) for b in (host.get("Binds") or [])[:32]),
        "privileged": "true" if host.get("Privileged") else "false",
        "network_mode": str(host.get("NetworkMode", "")),
        "pid_mode": str(host.get("PidMode", "")),
    }


def _words(value: Any) -> str:
    if isinstance(value, list):
        return " ".join(str(v) for v in value[:256])
    return "" if value is None else str(value)


class Engine:
    """The daemon's state for one process: containers created by clients, bounded."""

    def __init__(self, config: dict[str, Any], hostname: str) -> None:
        self.config, self.hostname = config, hostname
        self.created: dict[str, dict[str, str]] = {}

    def answer(self, req: http.Request, body: bytes, emit: Any) -> http.Response:
        cfg = self.config
        path, method = api_path(req.target), req.method
        if path == "/_ping":
            plain = [h for h in base_headers(cfg) if h[0] != "Content-Type"]
            headers = sorted([*plain, ("Cache-Control", "no-cache, no-store, must-revalidate"),
                              ("Content-Type", "text/plain; charset=utf-8"),
                              ("Pragma", "no-cache")]) + [("Date", httpapi.http_date())]
            return http.Response(200, "OK", headers, b"OK")
        if method == "OPTIONS":
            return _empty(cfg, 200)
        if method in ("GET", "HEAD"):
            return self._get(path)
        if method == "POST":
            return self._post(path, body, emit, req.header("upgrade").lower() == "tcp")
        if method == "DELETE" and path.startswith("/containers/"):
            return _empty(cfg, 204)
        return not_found()

    def _get(self, path: str) -> http.Response:
        cfg = self.config
        if path == "/version":
            return _json(cfg, 200, version_doc(cfg))
        if path == "/info":
            return _json(cfg, 200, info_doc(cfg, self.hostname))
        if path == "/containers/json":
            mine = [{"Id": cid, "Names": [f"/{c['name']}"], "Image": c["image"],
                     "Command": c["cmd"], "State": "running", "Status": "Up 1 second"}
                    for cid, c in self.created.items()]
            return _json(cfg, 200, containers(cfg, self.hostname) + mine)
        if path == "/images/json":
            return _json(cfg, 200, images(cfg))
        if path in ("/networks", "/volumes"):
            return _json(cfg, 200, [] if path == "/networks" else {"Volumes": [], "Warnings": []})
        if path.startswith("/images/") and path.endswith("/json"):
            return self._image(path[len("/images/"):-len("/json")])
        parts = path.strip("/").split("/")
        if len(parts) >= 3 and parts[0] == "containers" and parts[2] in ("logs", "top", "stats"):
            return _json(cfg, 200, {"Titles": ["PID", "CMD"], "Processes": []}
                         if parts[2] == "top" else {})
        if len(parts) == 3 and parts[0] == "exec" and parts[2] == "json":
            return _json(cfg, 200, {"ID": parts[1][:64], "Running": False, "ExitCode": 0,
                                    "ProcessConfig": {"privileged": False}, "OpenStdin": False,
                                    "Pid": 0})
        if len(parts) == 3 and parts[0] == "containers" and parts[2] == "json":
            return self._inspect(parts[1])
        return not_found()

    def _inspect(self, ident: str) -> http.Response:
        known = [(c["Id"], c["Names"][0][1:], c["Image"], c["Command"])
                 for c in containers(self.config, self.hostname)]
        known += [(cid, c["name"], c["image"], c["cmd"]) for cid, c in self.created.items()]
        for cid, name, image, cmd in known:
            if ident and (cid.startswith(ident) or name == ident):
                return _json(self.config, 200, {
                    "Id": cid, "Created": "2023-11-02T10:00:00.000000000Z", "Path": cmd.split(
                        " ")[0], "Args": cmd.split(" ")[1:], "Name": "/" + name,
                    "State": {"Status": "running", "Running": True, "Paused": False,
                              "Restarting": False, "Pid": 4242, "ExitCode": 0},
                    "Image": "sha256:" + _id(image), "RestartCount": 0, "Driver": "overlay2",
                    "HostConfig": {"Binds": None, "Privileged": False, "NetworkMode": "default"},
                    "Mounts": [], "Config": {"Hostname": cid[:12], "Image": image,
                                             "Cmd": cmd.split(" "), "Env": ["PATH=/usr/local/"
                                             "sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"],
                                             "Labels": {}},
                    "NetworkSettings": {"Networks": {"bridge": {}}},
                })
        return _json(self.config, 404, {"message": f"No such container: {ident[:64]}"})

    def _image(self, ident: str) -> http.Response:
        for img in images(self.config):
            tag = img["RepoTags"][0]
            if ident and (img["Id"].startswith(ident) or ident in (tag, tag.split(":")[0])):
                return _json(self.config, 200, {
                    "Id": img["Id"], "RepoTags": img["RepoTags"], "RepoDigests": [],
                    "Parent": "", "Created": "2023-11-01T00:00:00.000000000Z",
                    "Architecture": "amd64", "Os": "linux", "Size": img["Size"],
                    "Config": {"Cmd": ["/bin/sh"], "Env": [], "Labels": None},
                    "RootFS": {"Type": "layers", "Layers": ["sha256:" + _id(tag + "/0")]},
                })
        return _json(self.config, 404, {"message": f"No such image: {ident[:128]}"})

    def _post(self, path: str, body: bytes, emit: Any, upgrade: bool = False
              ) -> http.Response:
        cfg = self.config
        parts = path.strip("/").split("/")
        spec = httpapi.parse_json(body)
        if path == "/containers/create":
            summary = create_summary(spec)
            emit(events.COMMAND, f"container create {summary['image']}", action="create",
                 command=summary["cmd"] or summary["entrypoint"], **summary)
            cid = secrets.token_hex(32)
            if len(self.created) < MAX_CREATED:
                self.created[cid] = {"name": f"c{len(self.created)}", "image": summary["image"],
                                     "cmd": summary["cmd"]}
            return _json(cfg, 201, {"Id": cid, "Warnings": []})
        if path == "/images/create":
            return _json(cfg, 200, {"status": "Status: Image is up to date"})
        if len(parts) == 3 and parts[0] == "containers":
            action = parts[2]
            if action == "exec":
                cmd = _words(spec.get("Cmd")) if isinstance(spec, dict) else ""
                emit(events.COMMAND, f"exec {cmd}", action="exec", container=parts[1][:64],
                     command=cmd)
                return _json(cfg, 201, {"Id": secrets.token_hex(32)})
            if action in ("start", "stop", "restart", "kill", "pause", "unpause"):
                emit(events.COMMAND, f"container {action}", action=action,
                     container=parts[1][:64])
                return _empty(cfg, 204)
            if action == "wait":
                return _json(cfg, 200, {"Error": None, "StatusCode": 0})
            if action == "attach":
                return raw_stream(upgrade)
        if len(parts) == 3 and parts[0] == "exec" and parts[2] == "start":
            return raw_stream(upgrade)
        return not_found()


async def serve(ctx: core.Context) -> None:
    engine = Engine(ctx.config, str(ctx.config["hostname"]) or ctx.emitter.hostname)

    async def on_conn(r: asyncio.StreamReader, w: asyncio.StreamWriter, p: core.Peer) -> None:
        def answer(req: http.Request, body: bytes, peer: core.Peer) -> http.Response:
            ctx.emit(events.REQUEST, peer, f"{req.method} {req.path}", method=req.method,
                     path=req.target, user_agent=req.header("user-agent") or None,
                     body_bytes=len(body) or None)

            def emit(kind: str, message: str, **fields: object) -> None:
                ctx.emit(kind, peer, message, **fields)

            return engine.answer(req, body, emit)

        await httpapi.serve_requests(ctx, r, w, p, answer, httpapi.GO_BAD_REQUEST)

    for port, _proto in PORTS:
        await core.serve_tcp(ctx, port, on_conn)
