"""A Kubernetes API server on 6443 (TLS), as an anonymous or unauthorised client sees it.

Hand-written: for a caller without valid credentials the real server is a small
set of answers: /version, /healthz, /livez and /readyz are public; everything
else is a `Status` document, 403 Forbidden for the anonymous user (naming the
resource, verb and namespace the request was for) and 401 Unauthorized for a
presented token or password that it does not know. Those credentials are the
catch: a bearer token or basic credentials are an `auth` event; every request is
a `request` event (method, path, the resource and verb it maps to).
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import urllib.parse
import uuid
from typing import Any

from .. import core, events, httpapi, tlscert
from . import http

PORTS = [(6443, "tcp")]
DEFAULTS: dict[str, Any] = {
    "gitVersion": "v1.28.4",
    "gitCommit": "bae2c62678db2b5053817bc97181fcc2e8388103",
    "buildDate": "2023-11-15T16:48:54Z",
    "goVersion": "go1.20.11",
    "hostname": "",
    "anonymous": True,
}
PUBLIC = frozenset({"/version", "/healthz", "/livez", "/readyz"})
# What Go's HTTP server answers a client that speaks plain HTTP to its TLS port.
PLAIN_ANSWER = b"HTTP/1.0 400 Bad Request\r\n\r\nClient sent an HTTP request to an HTTPS server.\n"
VERBS = {"GET": "get", "HEAD": "get", "POST": "create", "PUT": "update", "PATCH": "patch",
         "DELETE": "delete"}


def version_doc(config: dict[str, Any]) -> dict[str, str]:
    git = str(config["gitVersion"]).lstrip("v").split(".")
    return {"major": git[0] if git else "1", "minor": git[1] if len(git) > 1 else "0",
            "gitVersion": config["gitVersion"], "gitCommit": config["gitCommit"],
            "gitTreeState": "clean", "buildDate": config["buildDate"],
            "goVersion": config["goVersion"], "compiler": "gc", "platform": "linux/amd64"}


def request_info(method: str, target: str) -> dict[str, str]:
    """The resource, verb, API group and namespace a path addresses, as the server reads it."""
    split = urllib.parse.urlsplit(target)
    parts = [p for p in split.path.split("/") if p]
    query = urllib.parse.parse_qs(split.query)
    info = {"verb": VERBS.get(method, method.lower()), "resource": "", "group": "",
            "namespace": "", "name": ""}
    if parts[:1] == ["api"] and len(parts) >= 2:
        rest = parts[2:]
    elif parts[:1] == ["apis"] and len(parts) >= 3:
        info["group"] = parts[1]
        rest = parts[3:]
    else:
        return info
    if len(rest) >= 2 and rest[0] == "namespaces" and len(rest) > 2:
        info["namespace"] = rest[1]
        rest = rest[2:]
    if rest:
        info["resource"] = rest[0]
    if len(rest) >= 2:
        info["name"] = rest[1]
    if len(rest) >= 3:
        info["resource"] += "/" + rest[2]
    if info["verb"] == "get" and not info["name"]:
        info["verb"] = "watch" if query.get("watch", [""])[0] in ("1", "true") else "list"
    if info["verb"] == "delete" and not info["name"]:
        info["verb"] = "deletecollection"
    return info


def status(code: int, reason: str, message: str, details: dict[str, str] | None = None
           ) -> dict[str, Any]:
    doc: dict[str, Any] = {"kind": "Status", "apiVersion": "v1", "metadata": {},
                           "status": "Failure", "message": message, "reason": reason}
    if details:
        doc["details"] = details
    doc["code"] = code
    return doc


def forbidden(method: str, target: str) -> dict[str, Any]:
    info = request_info(method, target)
    path = urllib.parse.urlsplit(target).path
    user = 'User "system:anonymous"'
    if not info["resource"]:
        return status(403, "Forbidden",
                      f'forbidden: {user} cannot {info["verb"]} path "{path}"')
    resource = info["resource"].split("/")[0]
    sub = info["resource"].split("/")[1] if "/" in info["resource"] else ""
    what = f'"{resource}/{sub}"' if sub else f'"{resource}"'
    named = f'{resource} "{info["name"]}"' if info["name"] else resource
    where = " at the cluster scope"
    if info["namespace"]:
        where = f' in the namespace "{info["namespace"]}"'
    message = (f'{named} is forbidden: {user} cannot {info["verb"]} resource {what} in API '
               f'group "{info["group"]}"{where}')
    details = {"kind": resource}
    if info["name"]:
        details = {"name": info["name"], "kind": resource}
    return status(403, "Forbidden", message, details)


def credentials(authorization: str) -> dict[str, str] | None:
    """The mechanism and secrets in an Authorization header, or None."""
    scheme, _, token = authorization.strip().partition(" ")
    if scheme.lower() == "bearer" and token.strip():
        return {"mechanism": "bearer", "token": token.strip()}
    basic = http.basic_credentials(authorization)
    if basic is not None:
        return {"mechanism": "basic", "username": basic[0], "password": basic[1]}
    return None


def respond(config: dict[str, Any], req: http.Request, host: str = "") -> http.Response:
    """A pure answer for an unauthenticated (or wrongly authenticated) caller; the
    flow-control UIDs are derived from the host, so each cluster has its own."""
    path = req.path.rstrip("/") or "/"
    seed = hashlib.sha256(f"{host}/{config['gitVersion']}".encode()).digest()
    headers = [("Audit-Id", str(uuid.uuid4())),
               ("Cache-Control", "no-cache, private"),
               ("Content-Type", "application/json"),
               ("X-Kubernetes-Pf-Flowschema-Uid", str(uuid.UUID(bytes=seed[:16]))),
               ("X-Kubernetes-Pf-Prioritylevel-Uid", str(uuid.UUID(bytes=seed[16:32])))]
    if credentials(req.header("authorization")) is not None or not config["anonymous"]:
        body = status(401, "Unauthorized", "Unauthorized")
        return _done(401, headers, body)
    if path == "/version":
        return _done(200, headers, version_doc(config), pretty=True)
    if path in PUBLIC or path.startswith(("/healthz/", "/livez/", "/readyz/")):
        return http.Response(200, "OK", [("Audit-Id", headers[0][1]),
                             ("Cache-Control", "no-cache, private"),
                             ("Content-Type", "text/plain; charset=utf-8"),
                             ("X-Content-Type-Options", "nosniff"), *headers[3:],
                             ("Date", httpapi.http_date())], b"ok")
    return _done(403, headers, forbidden(req.method, req.target))


def _done(code: int, headers: list[tuple[str, str]], body: dict[str, Any],
          pretty: bool = False) -> http.Response:
    text = json.dumps(body, indent=2) + "\n" if pretty else json.dumps(
        body, separators=(",", ":")) + "\n"
    return http.Response(code, httpapi.reason(code), [*headers, ("Date", httpapi.http_date())],
                         text.encode())


async def serve(ctx: core.Context) -> None:
    host = str(ctx.config["hostname"]) or ctx.emitter.hostname
    tls = tlscert.server_context(host, extra_names=(
        "kubernetes", "kubernetes.default", "kubernetes.default.svc",
        "kubernetes.default.svc.cluster.local"), alpn=("http/1.1",))

    def answer(req: http.Request, body: bytes, peer: core.Peer) -> http.Response:
        info = request_info(req.method, req.target)
        ctx.emit(events.REQUEST, peer, f"{req.method} {req.path}", method=req.method,
                 path=req.target, user_agent=req.header("user-agent") or None,
                 verb=info["verb"], resource=info["resource"] or None,
                 namespace=info["namespace"] or None, body_bytes=len(body) or None)
        creds = credentials(req.header("authorization"))
        if creds is not None:
            ctx.emit(events.AUTH, peer, "credentials presented", path=req.target,
                     client=req.header("user-agent") or None, **creds)
        return respond(ctx.config, req, host)

    async def on_conn(r: asyncio.StreamReader, w: asyncio.StreamWriter, p: core.Peer) -> None:
        await httpapi.serve_requests(ctx, r, w, p, answer, httpapi.GO_BAD_REQUEST)

    for port, _proto in PORTS:
        await tlscert.serve_tls(ctx, port, on_conn, tls, plain=lambda _first: PLAIN_ANSWER)
