"""PostgreSQL on 5432: startup, a cleartext password request, then authentication fails.

Hand-written: the v3 protocol up to authentication is four message types. TLS and
GSS encryption requests are declined ('N', as a server without certificates does),
the startup packet names the user, database and application, and the server asks
for the password in clear (the `password` method of pg_hba.conf, which every
client honours). One `auth` event carries them all; then 28P01 "password
authentication failed". Accounts in `users` get a fake session whose simple and
extended queries are `query` events answered from canned rows; nothing runs.
Errors about the startup packet mirror the real server's (a scanner's probes
land there): a wrong protocol version names postmaster.c and its line number.
"""

from __future__ import annotations

import asyncio
import hmac
import secrets
import struct
from typing import Any

from .. import core, events, tlscert

PORTS = [(5432, "tcp")]
DEFAULTS: dict[str, Any] = {
    "version": "15.6 (Debian 15.6-0+deb12u1)",
    "users": {},
    "databases": ["postgres", "template0", "template1", "app"],
    "timezone": "Etc/UTC",
    "ssl": True,
    "hostname": "",
}
SSL_REQUEST = 80877103
GSS_REQUEST = 80877104
CANCEL_REQUEST = 80877102
PROTOCOL_3 = 196608
MAX_STARTUP = 10000
MAX_MESSAGE = 1 << 16
# postmaster.c line of the "unsupported frontend protocol" error, per major version.
STARTUP_LINE = {"12": 2119, "13": 2133, "14": 2138, "15": 2194, "16": 2240}


def message(kind: bytes, body: bytes) -> bytes:
    return kind + struct.pack("!I", len(body) + 4) + body


def error(code: str, text: str, severity: str = "FATAL", routine: str = "",
          file: str = "", line: int = 0) -> bytes:
    fields = [b"S" + severity.encode(), b"V" + severity.encode(), b"C" + code.encode(),
              b"M" + text.encode("utf-8", "replace")]
    if file:
        fields += [b"F" + file.encode(), b"L" + str(line).encode()]
    if routine:
        fields.append(b"R" + routine.encode())
    return message(b"E", b"\0".join(fields) + b"\0\0")


def major(version: str) -> str:
    return version.split(".")[0].split()[0]


def unsupported_protocol(version: str, code: int) -> bytes:
    return error("0A000", f"unsupported frontend protocol {code >> 16}.{code & 0xFFFF}: "
                 "server supports 3.0 to 3.0", routine="ProcessStartupPacket",
                 file="postmaster.c", line=STARTUP_LINE.get(major(version), 2194))


def parse_startup(body: bytes) -> dict[str, str]:
    """The key/value pairs after the protocol number (user, database, options...)."""
    parts = body.split(b"\0")
    params: dict[str, str] = {}
    for key, value in zip(parts[0::2], parts[1::2], strict=False):
        if not key:
            break
        if len(params) < 32:
            params[key.decode("utf-8", "replace")[:64]] = value.decode("utf-8", "replace")[:256]
    return params


def auth_failed(user: str) -> bytes:
    return error("28P01", f'password authentication failed for user "{user[:63]}"',
                 routine="auth_failed", file="auth.c", line=323)


def session_start(config: dict[str, Any], params: dict[str, str]) -> bytes:
    status = {
        "application_name": params.get("application_name", ""), "client_encoding":
        params.get("client_encoding", "UTF8"), "DateStyle": "ISO, MDY",
        "default_transaction_read_only": "off", "in_hot_standby": "off",
        "integer_datetimes": "on", "IntervalStyle": "postgres", "is_superuser": "off",
        "server_encoding": "UTF8", "server_version": str(config["version"]),
        "session_authorization": params.get("user", ""),
        "standard_conforming_strings": "on", "TimeZone": str(config["timezone"]),
    }
    out = [message(b"R", struct.pack("!I", 0))]
    out += [message(b"S", k.encode() + b"\0" + v.encode() + b"\0") for k, v in status.items()]
    out.append(message(b"K", struct.pack("!II", secrets.randbelow(1 << 22) + 1000,
                                         secrets.randbits(31))))
    out.append(message(b"Z", b"I"))
    return b"".join(out)


def row_description(columns: list[str]) -> bytes:
    body = struct.pack("!H", len(columns)) + b"".join(
        c.encode() + b"\0" + struct.pack("!IHIhih", 0, 0, 25, -1, -1, 0) for c in columns)
    return message(b"T", body)


def data_row(values: list[str | None]) -> bytes:
    body = struct.pack("!H", len(values))
    for v in values:
        if v is None:
            body += struct.pack("!i", -1)
        else:
            data = v.encode()
            body += struct.pack("!i", len(data)) + data
    return message(b"D", body)


def complete(tag: str) -> bytes:
    return message(b"C", tag.encode() + b"\0")


def canned(config: dict[str, Any], user: str, db: str, sql: str
           ) -> tuple[list[str], list[list[str | None]]] | bytes | str:
    """(columns, rows) for a SELECT we can answer, an error message, or a command tag."""
    q = " ".join(sql.strip().rstrip(";").split()).lower()
    if not q:
        return "EMPTY"
    if q.startswith("select") or q.startswith("show"):
        if "version()" in q:
            return ["version"], [[f"PostgreSQL {config['version']} on x86_64-pc-linux-gnu, "
                                  "compiled by gcc (Debian 12.2.0-14) 12.2.0, 64-bit"]]
        if q.startswith("show server_version"):
            return ["server_version"], [[str(config["version"])]]
        if "current_user" in q or "session_user" in q:
            return ["current_user"], [[user]]
        if "current_database()" in q:
            return ["current_database"], [[db]]
        if "pg_database" in q:
            return ["Name", "Owner", "Encoding"], [[str(d), "postgres", "UTF8"]
                                                   for d in config["databases"][:64]]
        if " from " not in f" {q} ":
            return ["?column?"], [["1"]]
        if "pg_catalog" in q or "information_schema" in q:
            return ["name"], []
        return error("42501", "permission denied for table " + q.split(" from ", 1)[1].split(
            )[0][:63], severity="ERROR")
    word = q.split()[0].upper()
    if word in ("SET", "BEGIN", "COMMIT", "ROLLBACK", "DISCARD", "RESET", "DEALLOCATE"):
        return word
    return error("42501", f"permission denied to {word.lower()}", severity="ERROR")


def answer(config: dict[str, Any], user: str, db: str, sql: str, describe: bool = True
           ) -> bytes:
    """The messages for one statement (without ReadyForQuery)."""
    result = canned(config, user, db, sql)
    if isinstance(result, bytes):
        return result
    if result == "EMPTY":
        return message(b"I", b"")
    if isinstance(result, str):
        return complete(result)
    columns, rows = result
    head = row_description(columns) if describe else b""
    return head + b"".join(data_row(r) for r in rows) + complete(f"SELECT {len(rows)}")


async def read_message(reader: asyncio.StreamReader, timeout: float
                       ) -> tuple[bytes, bytes] | None:
    head = await core.read_exactly(reader, 5, timeout)
    if head is None:
        return None
    size = struct.unpack("!I", head[1:])[0]
    if size < 4 or size > MAX_MESSAGE:
        return None
    body = await core.read_exactly(reader, size - 4, timeout)
    return None if body is None else (head[:1], body)


TLS_NOW = {"\0tls": "1"}  # startup()'s answer when the client is to start TLS


async def startup(ctx: core.Context, r: asyncio.StreamReader, w: asyncio.StreamWriter,
                  p: core.Peer, tls_ok: bool = False) -> dict[str, str] | None:
    for _ in range(3):
        head = await core.read_exactly(r, 4, ctx.idle_seconds)
        if head is None:
            return None
        size = struct.unpack("!I", head)[0]
        if size < 8 or size > MAX_STARTUP:
            ctx.emit(events.DATA, p, "invalid startup packet length", size=size)
            return None  # the server only logs this and hangs up
        body = await core.read_exactly(r, size - 4, ctx.idle_seconds)
        if body is None:
            return None
        code = struct.unpack("!I", body[:4])[0]
        if code == SSL_REQUEST and tls_ok:
            await core.send(w, b"S")
            return TLS_NOW
        if code in (SSL_REQUEST, GSS_REQUEST):
            await core.send(w, b"N")
            continue
        if code == CANCEL_REQUEST:
            return None
        if code != PROTOCOL_3:
            ctx.emit(events.DATA, p, "unsupported protocol", protocol=f"{code >> 16}."
                     f"{code & 0xFFFF}")
            await core.send(w, unsupported_protocol(str(ctx.config["version"]), code))
            return None
        return parse_startup(body[4:])
    return None


async def serve(ctx: core.Context) -> None:
    tls = None
    if ctx.config["ssl"]:
        tls = tlscert.server_context(str(ctx.config["hostname"]) or ctx.emitter.hostname)

    async def on_conn(r: asyncio.StreamReader, w: asyncio.StreamWriter, p: core.Peer) -> None:
        params = await startup(ctx, r, w, p, tls_ok=tls is not None)
        if params is TLS_NOW and tls is not None:
            await tlscert.run_tls(tls, r, w, p, after_tls, timeout=min(ctx.idle_seconds, 30.0))
            return
        if params is None:
            return
        await login(params, r, w, p, encrypted=False)

    async def after_tls(r: asyncio.StreamReader, w: asyncio.StreamWriter, p: core.Peer) -> None:
        params = await startup(ctx, r, w, p)  # no second SSLRequest inside TLS
        if params is not None:
            await login(params, r, w, p, encrypted=True)

    async def login(params: dict[str, str], r: asyncio.StreamReader, w: asyncio.StreamWriter,
                    p: core.Peer, encrypted: bool) -> None:
        user = params.get("user", "")
        db = params.get("database", user)
        await core.send(w, message(b"R", struct.pack("!I", 3)))
        got = await read_message(r, ctx.idle_seconds)
        password = got[1].rstrip(b"\0").decode("utf-8", "replace") if got and \
            got[0] == b"p" else None
        ctx.emit(events.AUTH, p, "login attempt", username=user, password=password,
                 database=db or None, client=params.get("application_name") or None,
                 mechanism="password", encrypted="true" if encrypted else "false")
        if password is None:
            return
        users = ctx.config["users"] if isinstance(ctx.config["users"], dict) else {}
        known = users.get(user)
        if known is None or not hmac.compare_digest(str(known), password):
            await core.send(w, auth_failed(user))
            return
        await core.send(w, session_start(ctx.config, params))
        await session(ctx, r, w, p, user, db)

    for port, _proto in PORTS:
        await core.serve_tcp(ctx, port, on_conn)


async def session(ctx: core.Context, r: asyncio.StreamReader, w: asyncio.StreamWriter,
                  p: core.Peer, user: str, db: str) -> None:
    """Simple and extended query protocol, answered from canned rows."""
    prepared = ""
    for _ in range(10_000):
        got = await read_message(r, ctx.idle_seconds)
        if got is None or got[0] == b"X":
            return
        kind, body = got
        if kind == b"Q":
            sql = body.rstrip(b"\0").decode("utf-8", "replace")
            ctx.emit(events.QUERY, p, "query", query=sql, database=db, username=user)
            await core.send(w, answer(ctx.config, user, db, sql) + message(b"Z", b"I"))
        elif kind == b"P":
            name_end = body.find(b"\0")
            rest = body[name_end + 1:]
            prepared = rest[:rest.find(b"\0")].decode("utf-8", "replace")
            ctx.emit(events.QUERY, p, "parse", query=prepared, database=db, username=user)
            await core.send(w, message(b"1", b""))
        elif kind == b"B":
            await core.send(w, message(b"2", b""))
        elif kind == b"D":
            result = canned(ctx.config, user, db, prepared)
            if isinstance(result, tuple):
                await core.send(w, row_description(result[0]))
            else:
                await core.send(w, message(b"n", b""))
        elif kind == b"E":
            await core.send(w, answer(ctx.config, user, db, prepared, describe=False))
        elif kind == b"S":
            await core.send(w, message(b"Z", b"I"))
        elif kind in (b"C", b"H"):
            await core.send(w, message(b"3", b"") if kind == b"C" else b"")
        else:
            await core.send(w, error("08P01", f"invalid frontend message type {kind[0]}")
                            + message(b"Z", b"I"))
