"""MongoDB on 27017: OP_MSG and legacy OP_QUERY commands of an instance left without auth.

Hand-written with the small BSON module next to it: a driver's handshake (hello /
isMaster), buildInfo, serverStatus, listDatabases and ping are fixed documents
built from the config, and an exposed server is exactly what an intruder's
tooling looks for. Authentication (saslStart with SCRAM or PLAIN, the legacy
`authenticate`) records the user, mechanism and what secret the mechanism
reveals, then fails with AuthenticationFailed; a full SCRAM exchange is not
needed for that. Every command is a `command` event (reads and writes carry the
filter or documents as `query`); no data is ever stored.
"""

from __future__ import annotations

import asyncio
import base64
import datetime as dt
import json
import os
import secrets
import struct
import time
from typing import Any

from .. import bson, core, events

PORTS = [(27017, "tcp")]
DEFAULTS: dict[str, Any] = {
    "version": "6.0.13",
    "gitVersion": "3b13907f9bdf6bd3264d67140d6c215d51bbd20c",
    "databases": {"admin": 40960, "config": 110592, "local": 73728, "customers": 83886080},
    "collections": ["users", "orders", "sessions"],
    "requireAuth": False,
}
OP_REPLY, OP_QUERY, OP_MSG = 1, 2004, 2013
MAX_MESSAGE = 1 << 20
WIRE = {"4": 9, "5": 13, "6": 17, "7": 21, "8": 25}
NO_AUTH = frozenset({"hello", "ismaster", "buildinfo", "ping", "saslstart", "saslcontinue",
                     "authenticate", "getnonce", "endsessions", "logout"})
READS = ("find", "aggregate", "count", "distinct", "delete", "update", "findandmodify",
         "insert")


def header(length: int, request_id: int, response_to: int, opcode: int) -> bytes:
    return struct.pack("<iiii", length + 16, request_id, response_to, opcode)


def reply_msg(request_id: int, response_to: int, doc: dict[str, Any]) -> bytes:
    body = struct.pack("<I", 0) + b"\x00" + bson.encode(doc)
    return header(len(body), request_id, response_to, OP_MSG) + body


def reply_query(request_id: int, response_to: int, doc: dict[str, Any]) -> bytes:
    body = struct.pack("<iqii", 8, 0, 0, 1) + bson.encode(doc)
    return header(len(body), request_id, response_to, OP_REPLY) + body


def parse_msg(body: bytes) -> dict[str, Any]:
    """The command document of an OP_MSG (the kind-0 section; kind-1 sequences folded in)."""
    flags = struct.unpack_from("<I", body, 0)[0]
    end = len(body) - (4 if flags & 1 else 0)
    i, command = 4, None
    extra: dict[str, Any] = {}
    while i < end:
        kind = body[i]
        i += 1
        if kind == 0:
            command, i = bson.decode_at(body[:end], i)
        elif kind == 1:
            size = struct.unpack_from("<i", body, i)[0]
            if size < 5 or i + size > end:
                raise bson.BSONError("bad section")
            ident_end = body.index(b"\0", i + 4)
            name = body[i + 4:ident_end].decode("utf-8", "replace")
            docs: list[dict[str, Any]] = []
            j = ident_end + 1
            while j < i + size and len(docs) < 100:
                doc, j = bson.decode_at(body[:i + size], j)
                docs.append(doc)
            extra[name] = docs
            i += size
        else:
            raise bson.BSONError("bad section kind")
    if command is None:
        raise bson.BSONError("no body")
    return {**command, **extra}


def parse_query(body: bytes) -> tuple[str, dict[str, Any]]:
    """(full collection name, query document) of a legacy OP_QUERY."""
    end = body.index(b"\0", 4)
    collection = body[4:end].decode("utf-8", "replace")
    doc = bson.decode(body[end + 1 + 8:])
    if "$query" in doc and isinstance(doc["$query"], dict):
        doc = doc["$query"]
    return collection, doc


def version_array(version: str) -> list[int]:
    parts = [int(p) if p.isdigit() else 0 for p in version.split(".")[:3]]
    return [*parts, 0, 0, 0][:3] + [0]


def hello(config: dict[str, Any], cmd: dict[str, Any], legacy: bool, conn: int,
          process_id: bytes = b"\0" * 12) -> dict[str, Any]:
    doc: dict[str, Any] = {"isWritablePrimary": True} if not legacy else {"ismaster": True}
    doc.update({
        "topologyVersion": {"processId": bson.ObjectId(process_id),
                            "counter": bson.Int64(0)},
        "maxBsonObjectSize": 16777216, "maxMessageSizeBytes": 48000000,
        "maxWriteBatchSize": 100000, "localTime": dt.datetime.now(dt.UTC),
        "logicalSessionTimeoutMinutes": 30, "connectionId": conn, "minWireVersion": 0,
        "maxWireVersion": WIRE.get(str(config["version"]).split(".")[0], 17),
        "readOnly": False,
    })
    if isinstance(cmd.get("saslSupportedMechs"), str):
        doc["saslSupportedMechs"] = ["SCRAM-SHA-1", "SCRAM-SHA-256"]
    doc["ok"] = 1.0
    return doc


def build_info(config: dict[str, Any]) -> dict[str, Any]:
    version = str(config["version"])
    return {
        "version": version, "gitVersion": config["gitVersion"], "modules": [],
        "allocator": "tcmalloc", "javascriptEngine": "mozjs", "sysInfo": "deprecated",
        "versionArray": version_array(version),
        "openssl": {"running": "OpenSSL 3.0.11 19 Sep 2023",
                    "compiled": "OpenSSL 3.0.9 30 May 2023"},
        "buildEnvironment": {"distmod": "debian11", "distarch": "x86_64", "cc": "/opt/mongodb"
                             "build/v4/bin/gcc: gcc (GCC) 11.3.0", "target_arch": "x86_64",
                             "target_os": "linux"},
        "bits": 64, "debug": False, "maxBsonObjectSize": 16777216,
        "storageEngines": ["devnull", "ephemeralForTest", "wiredTiger"], "ok": 1.0,
    }


def server_status(config: dict[str, Any], host: str, started: float) -> dict[str, Any]:
    uptime = time.time() - started
    return {"host": host, "version": str(config["version"]), "process": "mongod",
            "pid": bson.Int64(os.getpid()), "uptime": float(int(uptime)),
            "uptimeMillis": bson.Int64(int(uptime * 1000)), "uptimeEstimate": bson.Int64(
                int(uptime)), "localTime": dt.datetime.now(dt.UTC),
            "connections": {"current": 3, "available": 838857, "totalCreated": 41},
            "mem": {"bits": 64, "resident": 112, "virtual": 1544, "supported": True},
            "ok": 1.0}


def list_databases(config: dict[str, Any], names_only: bool) -> dict[str, Any]:
    dbs = config["databases"] if isinstance(config["databases"], dict) else {}
    entries = []
    for name, size in list(dbs.items())[:64]:
        try:
            size_on_disk = int(size)
        except (TypeError, ValueError):
            size_on_disk = 8192
        entries.append({"name": str(name)} if names_only else {
            "name": str(name), "sizeOnDisk": bson.Int64(size_on_disk), "empty": False})
    total = sum(int(str(e.get("sizeOnDisk", 0))) for e in entries)
    return {"databases": entries, "totalSize": bson.Int64(total),
            "totalSizeMb": bson.Int64(total // 1048576), "ok": 1.0}


def failure(code: int, name: str, message: str) -> dict[str, Any]:
    return {"ok": 0.0, "errmsg": message, "code": code, "codeName": name}


def sasl_secret(mechanism: str, payload: Any) -> dict[str, str]:
    """The user (and for PLAIN, the password) inside a saslStart payload."""
    data = payload if isinstance(payload, bytes) else str(payload or "").encode()
    out: dict[str, str] = {}
    if mechanism == "PLAIN":
        parts = data.split(b"\0")
        if len(parts) == 3:
            out["username"] = parts[1].decode("utf-8", "replace")
            out["password"] = parts[2].decode("utf-8", "replace")
        return out
    text = data.decode("utf-8", "replace")
    for attr in text.split(","):
        if attr.startswith("n=") and "username" not in out:
            out["username"] = attr[2:].replace("=2C", ",").replace("=3D", "=")
        elif attr.startswith("r="):
            out["nonce"] = attr[2:]
    return out


def _preview(value: Any) -> str:
    def plain(v: Any) -> Any:
        if isinstance(v, dict):
            return {str(k): plain(x) for k, x in list(v.items())[:64]}
        if isinstance(v, list):
            return [plain(x) for x in v[:64]]
        if isinstance(v, (bytes, bson.ObjectId)):
            return base64.b64encode(bytes(v)[:256]).decode()
        if isinstance(v, dt.datetime):
            return v.isoformat()
        return v

    return json.dumps(plain(value), default=str)[:2048]


def _doc(value: Any) -> dict[str, Any]:
    return value if isinstance(value, dict) else {}


class Server:
    """Answers for one process; `handle` returns (reply document, event kind, fields)."""

    def __init__(self, config: dict[str, Any], host: str) -> None:
        self.config, self.host, self.started = config, host, time.time()
        # An ObjectId as mongod makes one at start: time, then random bytes.
        self.process_id = struct.pack(">I", int(self.started)) + secrets.token_bytes(8)

    def handle(self, cmd: dict[str, Any], conn: int, legacy: bool = False
               ) -> tuple[dict[str, Any], str, dict[str, object]]:
        if not cmd:
            return failure(59, "CommandNotFound", "no such command: ''"), events.COMMAND, {}
        name = next(iter(cmd))
        low = name.lower()
        db = str(cmd.get("$db", "admin"))
        fields: dict[str, object] = {"command": name, "database": db}
        if low in ("hello", "ismaster"):
            meta = _doc(cmd.get("client"))
            driver, app = _doc(meta.get("driver")), _doc(meta.get("application"))
            client = " ".join(str(driver.get(k, "")) for k in ("name", "version")).strip()
            fields.update(client=client or None, application=app.get("name"))
            return hello(self.config, cmd, low == "ismaster", conn, self.process_id), \
                events.COMMAND, fields
        if low == "saslstart":
            mech = str(cmd.get("mechanism", ""))
            secret = sasl_secret(mech, cmd.get("payload"))
            return (failure(18, "AuthenticationFailed", "Authentication failed."), events.AUTH,
                    {**fields, "mechanism": mech, **secret})
        if low == "authenticate":
            creds = {"username": str(cmd.get("user", "")), "mechanism": str(cmd.get(
                "mechanism", "MONGODB-CR"))}
            if cmd.get("key"):
                creds.update(password_hash=str(cmd["key"]), nonce=str(cmd.get("nonce", "")),
                             hash_type="mongodb-cr")
            return (failure(18, "AuthenticationFailed", "auth failed"), events.AUTH,
                    {**fields, **creds})
        if low == "saslcontinue":
            return (failure(18, "AuthenticationFailed", "Authentication failed."),
                    events.COMMAND, fields)
        if self.config["requireAuth"] and low not in NO_AUTH:
            return failure(13, "Unauthorized", f"command {name} requires authentication"), \
                events.COMMAND, fields
        if low == "buildinfo":
            return build_info(self.config), events.COMMAND, fields
        if low == "serverstatus":
            return server_status(self.config, self.host, self.started), events.COMMAND, fields
        if low == "listdatabases":
            return list_databases(self.config, bool(cmd.get("nameOnly"))), events.COMMAND, \
                fields
        if low in ("ping", "endsessions", "logout", "killcursors"):
            return {"ok": 1.0}, events.COMMAND, fields
        if low == "getnonce":
            return {"nonce": secrets.token_hex(8), "ok": 1.0}, events.COMMAND, fields
        if low == "listcollections":
            batch = [{"name": str(c), "type": "collection", "options": {},
                      "info": {"readOnly": False}, "idIndex": {"v": 2, "key": {"_id": 1},
                                                               "name": "_id_"}}
                     for c in self.config["collections"][:64]]
            return {"cursor": {"id": bson.Int64(0), "ns": f"{db}.$cmd.listCollections",
                               "firstBatch": batch}, "ok": 1.0}, events.COMMAND, fields
        if low in ("getcmdlineopts",):
            return {"argv": ["/usr/bin/mongod", "--config", "/etc/mongod.conf"], "parsed": {
                "config": "/etc/mongod.conf", "net": {"bindIp": "0.0.0.0", "port": 27017},
                "storage": {"dbPath": "/var/lib/mongodb"}}, "ok": 1.0}, events.COMMAND, fields
        if low in READS:
            target = str(cmd.get(name, ""))
            detail = cmd.get("filter", cmd.get("pipeline", cmd.get("query", cmd.get(
                "deletes", cmd.get("updates", cmd.get("documents"))))))
            fields.update(collection=target, query=_preview(detail) if detail is not None
                          else None)
            if low == "insert":
                docs = cmd.get("documents")
                return {"n": len(docs) if isinstance(docs, list) else 0, "ok": 1.0}, \
                    events.QUERY, fields
            if low in ("delete", "update"):
                return {"n": 0, "nModified": 0, "ok": 1.0} if low == "update" else \
                    {"n": 0, "ok": 1.0}, events.QUERY, fields
            if low == "count":
                return {"n": 0, "ok": 1.0}, events.QUERY, fields
            return {"cursor": {"firstBatch": [], "id": bson.Int64(0), "ns": f"{db}.{target}"},
                    "ok": 1.0}, events.QUERY, fields
        if low in ("dropdatabase", "drop", "create", "createuser", "shutdown", "eval"):
            return {"ok": 1.0} if low != "eval" else failure(
                59, "CommandNotFound", "no such command: 'eval'"), events.COMMAND, fields
        return failure(59, "CommandNotFound", f"no such command: '{name[:64]}'"), \
            events.COMMAND, fields


async def serve(ctx: core.Context) -> None:
    server = Server(ctx.config, ctx.emitter.hostname)
    counter = [0]

    async def on_conn(r: asyncio.StreamReader, w: asyncio.StreamWriter, p: core.Peer) -> None:
        counter[0] += 1
        conn = counter[0]
        for n in range(10_000):
            head = await core.read_exactly(r, 16, ctx.idle_seconds)
            if head is None:
                return
            length, request_id, _to, opcode = struct.unpack("<iiii", head)
            if length < 16 or length > MAX_MESSAGE:
                ctx.emit(events.DATA, p, "bad message length", size=length)
                return
            body = await core.read_exactly(r, length - 16, ctx.idle_seconds)
            if body is None:
                return
            try:
                if opcode == OP_MSG:
                    cmd, legacy = parse_msg(body), False
                elif opcode == OP_QUERY:
                    _collection, cmd = parse_query(body)
                    legacy = True
                else:
                    ctx.emit(events.DATA, p, "unsupported opcode", opcode=opcode, size=length)
                    return
            except (bson.BSONError, ValueError, IndexError, struct.error):
                ctx.emit(events.DATA, p, "malformed message", opcode=opcode, size=length)
                return
            reply, kind, fields = server.handle(cmd, conn, legacy)
            if str(fields.get("command", "")).lower() in ("hello", "ismaster") and n > 0:
                pass  # drivers repeat the handshake as a heartbeat: the first one is the news
            elif kind == events.AUTH:
                ctx.emit(events.AUTH, p, "authentication attempt", **fields)
            else:
                ctx.emit(kind, p, str(fields.get("command", "")), **fields)
            out = reply_query if opcode == OP_QUERY else reply_msg
            await core.send(w, out(n + 1, request_id, reply))

    for port, _proto in PORTS:
        await core.serve_tcp(ctx, port, on_conn)
