"""Elasticsearch's REST API on 9200, open to anyone, as an exposed cluster is found.

Hand-written: the banner document, cluster health, the _cat tables and an empty
search are a few JSON shapes. The banner is pretty-printed the way the server's
JSON library prints it (`"name" : "..."`) with only the two headers the server
sends, so scanners recognise it. A search body is a `query` event (index, query);
writes and deletes are `command` events; every request is a `request` event.
"""

from __future__ import annotations

import asyncio
import hashlib
import urllib.parse
from typing import Any

from .. import core, events, httpapi
from . import http

PORTS = [(9200, "tcp")]
DEFAULTS: dict[str, Any] = {
    "version": "7.10.2",
    "luceneVersion": "8.7.0",
    "clusterName": "elasticsearch",
    "nodeName": "",
    "indices": {"customers": 48213, "orders": 190442, "logs-2024.05": 1203391},
}
MAX_INDICES = 64


def _uuid(seed: str, n: int = 22) -> str:
    return hashlib.sha256(seed.encode()).hexdigest()[:n]


def _json(status: int, value: Any, pretty: bool = False) -> http.Response:
    headers = [("content-type", "application/json; charset=UTF-8")]
    return http.Response(status, httpapi.reason(status), headers,
                         httpapi.json_bytes(value, pretty=pretty))


def _text(status: int, text: str) -> http.Response:
    return http.Response(status, httpapi.reason(status),
                         [("content-type", "text/plain; charset=UTF-8")], text.encode())


def indices(config: dict[str, Any]) -> dict[str, int]:
    raw = config["indices"] if isinstance(config["indices"], dict) else {}
    out: dict[str, int] = {}
    for name, count in list(raw.items())[:MAX_INDICES]:
        try:
            out[str(name)] = max(0, int(count))
        except (TypeError, ValueError):
            out[str(name)] = 0
    return out


def banner(config: dict[str, Any], node: str) -> dict[str, Any]:
    major = str(config["version"]).split(".")[0]
    return {
        "name": node,
        "cluster_name": config["clusterName"],
        "cluster_uuid": _uuid(str(config["clusterName"]) + node),
        "version": {
            "number": config["version"],
            "build_flavor": "default",
            "build_type": "deb",
            "build_hash": _uuid(str(config["version"]), 40),
            "build_date": "2021-01-13T00:42:12.435326Z",
            "build_snapshot": False,
            "lucene_version": config["luceneVersion"],
            "minimum_wire_compatibility_version": "6.8.0" if major == "7" else "7.17.0",
            "minimum_index_compatibility_version": "6.0.0-beta1" if major == "7" else "7.0.0",
        },
        "tagline": "You Know, for Search",
    }


def health(config: dict[str, Any]) -> dict[str, Any]:
    n = len(indices(config))
    return {"cluster_name": config["clusterName"], "status": "yellow", "timed_out": False,
            "number_of_nodes": 1, "number_of_data_nodes": 1, "active_primary_shards": n,
            "active_shards": n, "relocating_shards": 0, "initializing_shards": 0,
            "unassigned_shards": n, "delayed_unassigned_shards": 0,
            "number_of_pending_tasks": 0, "number_of_in_flight_fetch": 0,
            "task_max_waiting_in_queue_millis": 0, "active_shards_percent_as_number": 50.0}


def cat_indices(config: dict[str, Any]) -> str:
    rows = []
    for name, count in indices(config).items():
        size = f"{max(1, count * 2 // 1024)}kb" if count < 500_000 else f"{count // 4000}mb"
        rows.append(("yellow", "open", name, _uuid(name), "1", "1", str(count), "0", size, size))
    widths = [max((len(r[i]) for r in rows), default=0) for i in range(10)]
    return "".join(" ".join(c.ljust(widths[i]) for i, c in enumerate(r)).rstrip() + "\n"
                   for r in rows)


def search_result(config: dict[str, Any], index: str) -> dict[str, Any]:
    known = indices(config)
    total = sum(known.values()) if index in ("", "_all", "*") else known.get(index, 0)
    return {"took": 3, "timed_out": False,
            "_shards": {"total": 1, "successful": 1, "skipped": 0, "failed": 0},
            "hits": {"total": {"value": min(total, 10000), "relation": "gte" if total > 10000
                               else "eq"}, "max_score": None, "hits": []}}


def missing_index(index: str) -> dict[str, Any]:
    reason = f"no such index [{index}]"
    err = {"type": "index_not_found_exception", "reason": reason, "resource.type":
           "index_or_alias", "resource.id": index, "index_uuid": "_na_", "index": index}
    return {"error": {"root_cause": [err], **err}, "status": 404}


def route(config: dict[str, Any], node: str, method: str, target: str
          ) -> tuple[http.Response, str | None]:
    """The answer, and the index a search ran against (None when it is not a search)."""
    split = urllib.parse.urlsplit(target)
    path = split.path.rstrip("/") or "/"
    pretty = "pretty" in urllib.parse.parse_qs(split.query, keep_blank_values=True)
    parts = [urllib.parse.unquote(p) for p in path.strip("/").split("/") if p]
    if path == "/":
        return _json(200, banner(config, node), pretty=True), None
    if parts[0] == "_cluster" and parts[1:2] == ["health"]:
        return _json(200, health(config), pretty), None
    if parts[0] == "_cat":
        if parts[1:2] == ["indices"]:
            return _text(200, cat_indices(config)), None
        if parts[1:2] == ["health"]:
            n = len(indices(config))
            return _text(200, f"1700000000 00:00:00 {config['clusterName']} yellow 1 1 {n} {n} "
                         f"0 0 {n} 0 - 50.0%\n"), None
        return _text(200, "=^.^=\n/_cat/indices\n/_cat/health\n/_cat/nodes\n"), None
    if parts[0] == "_nodes":
        return _json(200, {"_nodes": {"total": 1, "successful": 1, "failed": 0},
                           "cluster_name": config["clusterName"], "nodes": {_uuid(node): {
                               "name": node, "version": config["version"],
                               "roles": ["data", "ingest", "master"]}}}, pretty), None
    if parts[-1] in ("_search", "_count", "_msearch"):
        index = "" if len(parts) == 1 else parts[0]
        if index and index not in indices(config) and "*" not in index and index != "_all":
            return _json(404, missing_index(index), pretty), index
        if parts[-1] == "_count":
            return _json(200, {"count": search_result(config, index)["hits"]["total"]["value"],
                               "_shards": {"total": 1, "successful": 1, "skipped": 0,
                                           "failed": 0}}, pretty), index
        return _json(200, search_result(config, index), pretty), index
    if method in ("PUT", "POST") and len(parts) == 1:
        return _json(200, {"acknowledged": True, "shards_acknowledged": True,
                           "index": parts[0]}, pretty), None
    if method in ("PUT", "POST") and len(parts) >= 2 and parts[1] in ("_doc", "_create"):
        doc_id = parts[2] if len(parts) > 2 else _uuid(target + "doc", 20)
        return _json(201, {"_index": parts[0], "_type": "_doc", "_id": doc_id, "_version": 1,
                           "result": "created", "_shards": {"total": 2, "successful": 1,
                                                            "failed": 0},
                           "_seq_no": 0, "_primary_term": 1}, pretty), None
    if method == "DELETE":
        return _json(200, {"acknowledged": True}, pretty), None
    if len(parts) == 1 and parts[0] in indices(config):
        return _json(200, {parts[0]: {"aliases": {}, "mappings": {}, "settings": {
            "index": {"number_of_shards": "1", "number_of_replicas": "1",
                      "provided_name": parts[0]}}}}, pretty), None
    if not parts[0].startswith("_"):
        return _json(404, missing_index(parts[0]), pretty), None
    return _json(400, {"error": "no handler found for uri [" + path + "] and method [" + method
                       + "]"}, pretty), None


async def serve(ctx: core.Context) -> None:
    node = str(ctx.config["nodeName"]) or ctx.emitter.hostname

    def answer(req: http.Request, body: bytes, peer: core.Peer) -> http.Response:
        ctx.emit(events.REQUEST, peer, f"{req.method} {req.path}", method=req.method,
                 path=req.target, user_agent=req.header("user-agent") or None,
                 body_bytes=len(body) or None)
        if req.method not in ("GET", "HEAD", "POST", "PUT", "DELETE"):
            return _json(405, {"error": "Incorrect HTTP method for uri [" + req.path + "]",
                               "status": 405})
        response, index = route(ctx.config, node, req.method, req.target)
        if index is not None:
            ctx.emit(events.QUERY, peer, f"search {index or '_all'}", index=index or "_all",
                     query=body.decode("utf-8", "replace") or req.target)
        elif req.method in ("PUT", "POST", "DELETE") and req.path not in ("/", ""):
            ctx.emit(events.COMMAND, peer, f"{req.method} {req.path}", method=req.method,
                     command=f"{req.method} {req.target}", path=req.target,
                     body=body.decode("utf-8", "replace") or None)
        return response

    async def on_conn(r: asyncio.StreamReader, w: asyncio.StreamWriter, p: core.Peer) -> None:
        await httpapi.serve_requests(ctx, r, w, p, answer)

    for port, _proto in PORTS:
        await core.serve_tcp(ctx, port, on_conn)
