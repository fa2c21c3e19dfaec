"""MySQL on 3306: the v10 handshake, the login captured, then Access denied (or a fake server).

Hand-written: the client/server protocol up to authentication is a handful of
length-prefixed packets. The greeting offers mysql_native_password, so a client's
answer is SHA1(password) XOR SHA1(salt + SHA1(SHA1(password))): recorded with the
salt (hash_type "mysql-native") for offline cracking. The server then asks the
client to switch to the mysql_clear_password plugin, as a server whose accounts
authenticate against PAM or LDAP does; clients that honour it (PyMySQL, the
MariaDB client) send the password itself. One `auth` event per attempt carries
username, database, the client's attributes, the hash and, when given, the
password. Accounts in `users` are let in to a fake server whose every COM_QUERY
is a `query` event answered from canned result sets; nothing is executed.
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import secrets
import struct
from typing import Any

from .. import core, events

PORTS = [(3306, "tcp")]
DEFAULTS: dict[str, Any] = {
    "version": "8.0.36-0+deb12u1",
    "versionComment": "(Debian)",
    "users": {},
    "databases": ["information_schema", "mysql", "performance_schema", "sys", "shop"],
    "tables": ["customers", "orders", "payments", "users"],
    "cleartextSwitch": True,
}
MAX_PACKET = 1 << 16
CAPS = (0x00000001 | 0x00000002 | 0x00000004 | 0x00000008 | 0x00000010 | 0x00000040
        | 0x00000080 | 0x00000100 | 0x00000200 | 0x00000400 | 0x00001000 | 0x00002000
        | 0x00008000 | 0x00010000 | 0x00020000 | 0x00040000 | 0x00080000 | 0x00100000
        | 0x00200000 | 0x00400000 | 0x00800000)
CLIENT_CONNECT_WITH_DB = 0x8
CLIENT_PROTOCOL_41 = 0x200
CLIENT_SECURE_CONNECTION = 0x8000
CLIENT_PLUGIN_AUTH = 0x80000
CLIENT_CONNECT_ATTRS = 0x100000
CLIENT_LENENC_DATA = 0x200000
NATIVE = b"mysql_native_password"
CLEAR = b"mysql_clear_password"


def packet(seq: int, payload: bytes) -> bytes:
    return struct.pack("<I", len(payload))[:3] + bytes([seq & 0xFF]) + payload


def greeting(version: str, conn_id: int, salt: bytes) -> bytes:
    """The server's first packet (protocol 10); salt is 20 bytes."""
    return (b"\x0a" + version.encode()[:60] + b"\0" + struct.pack("<I", conn_id) + salt[:8]
            + b"\0" + struct.pack("<H", CAPS & 0xFFFF) + b"\xff" + struct.pack("<H", 2)
            + struct.pack("<H", CAPS >> 16) + bytes([21]) + b"\0" * 10 + salt[8:20] + b"\0"
            + NATIVE + b"\0")


def _lenenc_int(data: bytes, i: int) -> tuple[int, int]:
    first = data[i]
    if first < 0xFB:
        return first, i + 1
    if first == 0xFC:
        return struct.unpack_from("<H", data, i + 1)[0], i + 3
    if first == 0xFD:
        return int.from_bytes(data[i + 1:i + 4], "little"), i + 4
    if first == 0xFE:
        return struct.unpack_from("<Q", data, i + 1)[0], i + 9
    raise ValueError("bad length")


def _cstring(data: bytes, i: int) -> tuple[bytes, int]:
    end = data.index(b"\0", i) if b"\0" in data[i:] else len(data)
    return data[i:end], end + 1


def parse_login(data: bytes) -> dict[str, Any]:
    """A HandshakeResponse41: username, auth response, database, plugin, attributes."""
    caps, = struct.unpack_from("<I", data, 0)
    if not caps & CLIENT_PROTOCOL_41:
        raise ValueError("pre-4.1 client")
    i = 32
    user, i = _cstring(data, i)
    if caps & CLIENT_LENENC_DATA:
        n, i = _lenenc_int(data, i)
        auth, i = data[i:i + n], i + n
    elif caps & CLIENT_SECURE_CONNECTION:
        n = data[i]
        auth, i = data[i + 1:i + 1 + n], i + 1 + n
    else:
        auth, i = _cstring(data, i)
    database = b""
    if caps & CLIENT_CONNECT_WITH_DB and i < len(data):
        database, i = _cstring(data, i)
    plugin = b""
    if caps & CLIENT_PLUGIN_AUTH and i < len(data):
        plugin, i = _cstring(data, i)
    attrs: dict[str, str] = {}
    if caps & CLIENT_CONNECT_ATTRS and i < len(data):
        total, i = _lenenc_int(data, i)
        end = min(len(data), i + total)
        while i < end and len(attrs) < 32:
            kn, i = _lenenc_int(data, i)
            key, i = data[i:i + kn], i + kn
            vn, i = _lenenc_int(data, i)
            value, i = data[i:i + vn], i + vn
            attrs[key.decode("utf-8", "replace")[:64]] = value.decode("utf-8", "replace")[:256]
    return {"username": user.decode("utf-8", "replace"), "auth": auth,
            "database": database.decode("utf-8", "replace"),
            "plugin": plugin.decode("latin-1"), "attrs": attrs, "caps": caps}


def native_scramble(password: str, salt: bytes) -> bytes:
    """What a client sends for `password` under mysql_native_password."""
    if not password:
        return b""
    stage1 = hashlib.sha1(password.encode()).digest()
    stage2 = hashlib.sha1(stage1).digest()
    mask = hashlib.sha1(salt + stage2).digest()
    return bytes(a ^ b for a, b in zip(stage1, mask, strict=True))


def err(seq: int, code: int, state: str, message: str) -> bytes:
    return packet(seq, b"\xff" + struct.pack("<H", code) + b"#" + state.encode()
                  + message.encode("utf-8", "replace"))


def ok(seq: int) -> bytes:
    return packet(seq, b"\x00\x00\x00\x02\x00\x00\x00")


def eof(seq: int) -> bytes:
    return packet(seq, b"\xfe\x00\x00\x02\x00")


def access_denied(seq: int, user: str, host: str, with_password: bool) -> bytes:
    using = "YES" if with_password else "NO"
    return err(seq, 1045, "28000",
               f"Access denied for user '{user[:64]}'@'{host}' (using password: {using})")


def _lenenc_str(value: bytes) -> bytes:
    n = len(value)
    if n < 0xFB:
        return bytes([n]) + value
    if n < 1 << 16:
        return b"\xfc" + struct.pack("<H", n) + value
    return b"\xfd" + n.to_bytes(3, "little") + value


def result_set(seq: int, columns: list[str], rows: list[list[str | None]]) -> bytes:
    out = [packet(seq, bytes([len(columns)]))]
    for name in columns:
        seq += 1
        col = (_lenenc_str(b"def") + _lenenc_str(b"") + _lenenc_str(b"") + _lenenc_str(b"")
               + _lenenc_str(name.encode()) + _lenenc_str(b"") + b"\x0c" + struct.pack("<H", 255)
               + struct.pack("<I", 1024) + b"\xfd" + struct.pack("<H", 0) + b"\x1f\x00\x00")
        out.append(packet(seq, col))
    seq += 1
    out.append(eof(seq))
    for row in rows:
        seq += 1
        out.append(packet(seq, b"".join(b"\xfb" if v is None else _lenenc_str(v.encode())
                                        for v in row)))
    out.append(eof(seq + 1))
    return b"".join(out)


def answer_query(config: dict[str, Any], user: str, host: str, db: str, sql: str) -> bytes:
    """The canned answer to one statement (sequence 1); nothing is ever evaluated."""
    q = " ".join(sql.strip().rstrip(";").split()).lower()
    version = str(config["version"])
    if q.startswith("select"):
        if "@@version_comment" in q:
            return result_set(1, ["@@version_comment"], [[str(config["versionComment"])]])
        if "@@version" in q or "version()" in q:
            return result_set(1, ["version()" if "version()" in q else "@@version"], [[version]])
        if "database()" in q:
            return result_set(1, ["database()"], [[db or None]])
        if "user()" in q:
            return result_set(1, ["user()"], [[f"{user}@{host}"]])
        if " from " not in f" {q} ":
            return result_set(1, [q[7:40] or "1"], [["1"]])
        table = q.split(" from ", 1)[1].split()[0].strip("`").split(".")[-1] if " from " in q \
            else ""
        if table in [str(t).lower() for t in config["tables"]]:
            return result_set(1, ["id"], [])
        return err(1, 1146, "42S02", f"Table '{db or 'mysql'}.{table[:64]}' doesn't exist")
    if q in ("show databases", "show schemas"):
        return result_set(1, ["Database"], [[str(d)] for d in config["databases"][:64]])
    if q.startswith("show tables"):
        return result_set(1, [f"Tables_in_{db or 'mysql'}"],
                          [[str(t)] for t in config["tables"][:64]])
    if q.startswith(("set ", "use ", "begin", "commit", "rollback", "start transaction")):
        return ok(1)
    if q.startswith(("insert", "update", "delete", "create", "drop", "alter", "grant")):
        return err(1, 1142, "42000", f"{q.split()[0].upper()} command denied to user "
                   f"'{user}'@'{host}'")
    return err(1, 1064, "42000", "You have an error in your SQL syntax; check the manual that "
               f"corresponds to your MySQL server version for the right syntax to use near "
               f"'{sql[:80]}' at line 1")


async def read_packet(reader: asyncio.StreamReader, timeout: float) -> tuple[int, bytes] | None:
    head = await core.read_exactly(reader, 4, timeout)
    if head is None:
        return None
    size = int.from_bytes(head[:3], "little")
    if size > MAX_PACKET:
        return None
    body = await core.read_exactly(reader, size, timeout)
    return None if body is None else (head[3], body)


async def serve(ctx: core.Context) -> None:
    counter = [secrets.randbelow(2000) + 8]

    async def on_conn(r: asyncio.StreamReader, w: asyncio.StreamWriter, p: core.Peer) -> None:
        counter[0] += 1
        salt = bytes(secrets.choice(range(33, 127)) for _ in range(20))
        await core.send(w, packet(0, greeting(str(ctx.config["version"]), counter[0], salt)))
        got = await read_packet(r, ctx.idle_seconds)
        if got is None:
            return
        try:
            login = parse_login(got[1])
        except (ValueError, IndexError, struct.error):
            ctx.emit(events.DATA, p, "malformed handshake response", size=len(got[1]))
            await core.send(w, err(2, 1043, "08S01", "Bad handshake"))
            return
        user, auth = login["username"], login["auth"]
        attrs = login["attrs"]
        fields: dict[str, object] = {
            "username": user, "database": login["database"] or None,
            "client": " ".join(filter(None, (attrs.get("_client_name"),
                                             attrs.get("_client_version")))) or None,
            "program": attrs.get("program_name"), "client_os": attrs.get("_os"),
            "client_attrs": ",".join(f"{k}={v}" for k, v in attrs.items()) or None,
            "plugin": login["plugin"] or None,
        }
        seq = 2
        password: str | None = None
        if not auth:
            password = ""
        elif login["plugin"] in ("", NATIVE.decode()) and len(auth) == 20:
            fields.update(password_hash=auth.hex(), salt=salt.hex(), hash_type="mysql-native")
            if ctx.config["cleartextSwitch"]:
                await core.send(w, packet(seq, b"\xfe" + CLEAR + b"\0"))
                answer = await read_packet(r, ctx.idle_seconds)
                if answer is not None:
                    seq = answer[0] + 1
                    password = answer[1].rstrip(b"\0").decode("utf-8", "replace")
        else:
            fields.update(password_hash=auth.hex(), salt=salt.hex(),
                          hash_type=login["plugin"] or "unknown")
        if password is not None:
            fields["password"] = password
        ctx.emit(events.AUTH, p, "login attempt", **fields)
        users = ctx.config["users"] if isinstance(ctx.config["users"], dict) else {}
        known = users.get(user)
        accepted = known is not None and (
            (password is not None and hmac.compare_digest(str(known), password))
            or (bool(auth) and hmac.compare_digest(native_scramble(str(known), salt), auth)))
        if not accepted:
            await core.send(w, access_denied(seq, user, p.ip, bool(auth)))
            return
        await core.send(w, ok(seq))
        db = login["database"]
        for _ in range(10_000):
            got = await read_packet(r, ctx.idle_seconds)
            if got is None or not got[1] or got[1][0] == 0x01:
                return
            command, body = got[1][0], got[1][1:]
            if command == 0x03:
                sql = body.decode("utf-8", "replace")
                ctx.emit(events.QUERY, p, "query", query=sql, database=db or None,
                         username=user)
                low = " ".join(sql.lower().split())
                if low.startswith("use "):
                    db = sql.split(None, 1)[1].strip("`; ")[:64]
                await core.send(w, answer_query(ctx.config, user, p.ip, db, sql))
            elif command == 0x02:
                db = body.decode("utf-8", "replace")[:64]
                ctx.emit(events.QUERY, p, "init db", query=f"USE {db}", database=db,
                         username=user)
                await core.send(w, ok(1))
            elif command == 0x0E:
                await core.send(w, ok(1))
            elif command == 0x04:
                await core.send(w, eof(1))
            else:
                await core.send(w, err(1, 1047, "08S01", "Unknown command"))

    for port, _proto in PORTS:
        await core.serve_tcp(ctx, port, on_conn)
