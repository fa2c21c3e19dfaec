"""Redis on 6379: RESP2 (inline and multibulk), the commands an intruder's chain uses.

Hand-written: RESP2 is a few lines of framing, and the interesting part is the
attack chain on an open instance (INFO, CONFIG GET dir, SET a payload, CONFIG SET
dir/dbfilename, SAVE; or SLAVEOF a rogue master and MODULE LOAD). Every command
is a `command` event; AUTH is an `auth` event. Keys live in one bounded in-memory
table per process (so a SET on one connection is visible from the next, as on a
real server) and nothing is ever written to disk or loaded.
"""

from __future__ import annotations

import asyncio
import fnmatch
import os
import secrets
import time
from typing import Any

from .. import core, events

PORTS = [(6379, "tcp")]
DEFAULTS: dict[str, Any] = {
    "version": "7.0.15",
    "password": "",
    "dir": "/var/lib/redis",
    "dbfilename": "dump.rdb",
    "os": "Linux 6.1.0-18-amd64 x86_64",
    "keys": {"session:3f9a1c": "admin", "config:app": '{"debug":false}', "counter": "1337"},
}
MAX_ARGS = 1024
MAX_BULK = 65536
MAX_COMMAND_BYTES = 131072
MAX_KEYS = 1000
MAX_STORE_BYTES = 4 * 1024 * 1024
# Commands worth a security team's attention on top of being logged.
DANGEROUS = frozenset({"config", "slaveof", "replicaof", "module", "eval", "evalsha", "save",
                       "bgsave", "flushall", "flushdb", "debug", "script", "shutdown",
                       "migrate", "sync", "psync", "function"})
NO_AUTH_NEEDED = frozenset({"auth", "hello", "quit"})


class ProtocolError(Exception):
    pass


def simple(text: str) -> bytes:
    return f"+{text}\r\n".encode()


def error(text: str) -> bytes:
    return f"-{text}\r\n".encode()


def integer(n: int) -> bytes:
    return f":{n}\r\n".encode()


def bulk(value: bytes | str | None) -> bytes:
    if value is None:
        return b"$-1\r\n"
    data = value.encode() if isinstance(value, str) else value
    return b"$%d\r\n%s\r\n" % (len(data), data)


def array(items: list[bytes] | None) -> bytes:
    if items is None:
        return b"*-1\r\n"
    return b"*%d\r\n" % len(items) + b"".join(items)


def resp_map(pairs: list[tuple[bytes, bytes]]) -> bytes:
    """A RESP3 map (HELLO 3 clients); encoded items."""
    return b"%%%d\r\n" % len(pairs) + b"".join(k + v for k, v in pairs)


def bulk_array(values: list[str]) -> bytes:
    return array([bulk(v) for v in values])


def parse_inline(line: bytes) -> list[bytes]:
    """An inline command (what telnet or a scanner types): words, double quotes honoured."""
    out: list[bytes] = []
    word, quoted, i, any_word = bytearray(), False, 0, False
    while i < len(line):
        c = line[i]
        if quoted:
            if c == 0x5C and i + 1 < len(line):  # backslash
                word.append(line[i + 1])
                i += 1
            elif c == 0x22:
                quoted = False
            else:
                word.append(c)
        elif c == 0x22:
            quoted, any_word = True, True
        elif c in (0x20, 0x09):
            if word or any_word:
                out.append(bytes(word))
            word, any_word = bytearray(), False
        else:
            word.append(c)
        i += 1
        if len(out) >= MAX_ARGS:
            break
    if word or any_word:
        out.append(bytes(word))
    return out


async def read_command(reader: asyncio.StreamReader, timeout: float) -> list[bytes] | None:
    """One command as its arguments; None at EOF. Raises ProtocolError like the server."""
    line = await core.read_line(reader, timeout)
    if line is None:
        return None
    if not line.startswith(b"*"):
        return parse_inline(line)
    try:
        count = int(line[1:])
    except ValueError:
        raise ProtocolError("Protocol error: invalid multibulk length") from None
    if count > MAX_ARGS:
        raise ProtocolError("Protocol error: invalid multibulk length")
    args: list[bytes] = []
    total = 0
    for _ in range(max(count, 0)):
        header = await core.read_line(reader, timeout)
        if header is None:
            return None
        if not header.startswith(b"$"):
            got = header[:1].decode("latin-1", "replace")
            raise ProtocolError(f"Protocol error: expected '$', got '{got}'")
        try:
            size = int(header[1:])
        except ValueError:
            raise ProtocolError("Protocol error: invalid bulk length") from None
        if size < 0 or size > MAX_BULK or total + size > MAX_COMMAND_BYTES:
            raise ProtocolError("Protocol error: invalid bulk length")
        total += size
        data = await core.read_exactly(reader, size + 2, timeout)
        if data is None:
            return None
        args.append(data[:-2])
    return args


class Store:
    """The keyspace: bounded in keys and bytes; values are never interpreted."""

    def __init__(self, seed: dict[str, Any], settings: dict[str, str] | None = None) -> None:
        self.data: dict[bytes, bytes] = {}
        self.settings: dict[str, str] = dict(settings or {})
        # Random per start, as the server's own are: equal ids across hosts would be a tell.
        self.run_id, self.replid = secrets.token_hex(20), secrets.token_hex(20)
        for k, v in list(seed.items())[:MAX_KEYS]:
            self.set(str(k).encode(), str(v).encode())

    def size(self) -> int:
        return sum(len(k) + len(v) for k, v in self.data.items())

    def set(self, key: bytes, value: bytes) -> bool:
        old = len(key) + len(self.data[key]) if key in self.data else 0
        if key not in self.data and len(self.data) >= MAX_KEYS:
            return False
        if self.size() - old + len(key) + len(value) > MAX_STORE_BYTES:
            return False
        self.data[key] = value
        return True


def info(config: dict[str, Any], store: Store, started: float, clients: int) -> str:
    uptime = int(time.time() - started)
    version = str(config["version"])
    sections = [
        ("Server", [
            ("redis_version", version), ("redis_git_sha1", "00000000"),
            ("redis_git_dirty", "0"), ("redis_build_id", "c4f6e3d6a3b3b3a1"),
            ("redis_mode", "standalone"), ("os", config["os"]), ("arch_bits", "64"),
            ("monotonic_clock", "POSIX clock_gettime"), ("multiplexing_api", "epoll"),
            ("atomicvar_api", "c11-builtin"), ("gcc_version", "12.2.0"),
            ("process_id", str(os.getpid())), ("process_supervised", "systemd"),
            ("run_id", store.run_id), ("tcp_port", "6379"),
            ("server_time_usec", str(int(time.time() * 1e6))),
            ("uptime_in_seconds", str(uptime)), ("uptime_in_days", str(uptime // 86400)),
            ("hz", "10"), ("configured_hz", "10"), ("lru_clock", str(int(time.time()) % 16777216)),
            ("executable", "/usr/bin/redis-server"), ("config_file", "/etc/redis/redis.conf"),
            ("io_threads_active", "0")]),
        ("Clients", [("connected_clients", str(clients)), ("cluster_connections", "0"),
                     ("maxclients", "10000"), ("blocked_clients", "0")]),
        ("Memory", [("used_memory", str(900_000 + store.size())),
                    ("used_memory_human", f"{(900_000 + store.size()) / 1048576:.2f}M"),
                    ("maxmemory", "0"), ("maxmemory_human", "0B"),
                    ("maxmemory_policy", "noeviction"), ("mem_allocator", "jemalloc-5.3.0")]),
        ("Persistence", [("loading", "0"), ("rdb_changes_since_last_save", "0"),
                         ("rdb_bgsave_in_progress", "0"), ("rdb_last_save_time",
                                                           str(int(started))),
                         ("rdb_last_bgsave_status", "ok"), ("aof_enabled", "0")]),
        ("Replication", [("role", "master"), ("connected_slaves", "0"),
                         ("master_replid", store.replid),
                         ("master_repl_offset", "0")]),
        ("CPU", [("used_cpu_sys", f"{uptime * 0.002:.6f}"),
                 ("used_cpu_user", f"{uptime * 0.003:.6f}")]),
        ("Keyspace", [("db0", f"keys={len(store.data)},expires=0,avg_ttl=0")]
         if store.data else []),
    ]
    out = []
    for name, rows in sections:
        out.append(f"# {name}\r\n" + "".join(f"{k}:{v}\r\n" for k, v in rows))
    return "\r\n".join(out)


class Session:
    """One client connection's state and the answers to its commands (pure apart from the
    shared store)."""

    def __init__(self, config: dict[str, Any], store: Store, started: float,
                 clients: int = 1) -> None:
        self.config, self.store, self.started, self.clients = config, store, started, clients
        self.authed = not config["password"]
        self.proto = 2
        store.settings.setdefault("dir", str(config["dir"]))
        store.settings.setdefault("dbfilename", str(config["dbfilename"]))
        self.settings = store.settings

    def answer(self, args: list[bytes]) -> bytes:
        if not args:
            return b""
        name = args[0].decode("latin-1").lower()
        rest = args[1:]
        if not self.authed and name not in NO_AUTH_NEEDED:
            return error("NOAUTH Authentication required.")
        handler = getattr(self, "cmd_" + name.replace("-", "_"), None)
        if handler is None:
            preview = " ".join(f"'{a.decode('latin-1')[:64]}'" for a in rest[:4])
            return error(f"ERR unknown command '{name[:64]}', with args beginning with: {preview}")
        result: bytes = handler(rest)
        return result

    def _arity(self, name: str) -> bytes:
        return error(f"ERR wrong number of arguments for '{name}' command")

    def cmd_auth(self, rest: list[bytes]) -> bytes:
        if not rest or len(rest) > 2:
            return self._arity("auth")
        if not self.config["password"]:
            return error("ERR AUTH <password> called without any password configured for the "
                         "default user. Are you sure your configuration is correct?")
        user = rest[0].decode("utf-8", "replace") if len(rest) == 2 else "default"
        if user == "default" and rest[-1].decode("utf-8", "replace") == self.config["password"]:
            self.authed = True
            return simple("OK")
        return error("WRONGPASS invalid username-password pair or user is disabled.")

    def cmd_hello(self, rest: list[bytes]) -> bytes:
        if rest and rest[0] not in (b"2", b"3"):
            return error("NOPROTO unsupported protocol version")
        proto = 3 if rest and rest[0] == b"3" else 2
        if len(rest) >= 4 and rest[1].lower() == b"auth":
            answer = self.cmd_auth(rest[2:4])
            if answer.startswith(b"-"):
                return answer
        if not self.authed:
            return error("NOAUTH HELLO must be called with the client already authenticated, "
                         "otherwise the HELLO <proto> AUTH <user> <pass> option can be used to "
                         "authenticate the client and select the RESP protocol version at the "
                         "same time")
        self.proto = proto
        pairs = [(bulk("server"), bulk("redis")), (bulk("version"), bulk(self.config["version"])),
                 (bulk("proto"), integer(proto)), (bulk("id"), integer(7)),
                 (bulk("mode"), bulk("standalone")), (bulk("role"), bulk("master")),
                 (bulk("modules"), array([]))]
        if proto == 3:
            return resp_map(pairs)
        return array([x for pair in pairs for x in pair])

    def null(self) -> bytes:
        return b"_\r\n" if self.proto == 3 else bulk(None)

    def cmd_ping(self, rest: list[bytes]) -> bytes:
        return bulk(rest[0]) if rest else simple("PONG")

    def cmd_echo(self, rest: list[bytes]) -> bytes:
        return bulk(rest[0]) if len(rest) == 1 else self._arity("echo")

    def cmd_quit(self, rest: list[bytes]) -> bytes:
        return simple("OK")

    def cmd_select(self, rest: list[bytes]) -> bytes:
        if len(rest) != 1:
            return self._arity("select")
        if rest[0] not in [str(i).encode() for i in range(16)]:
            return error("ERR DB index is out of range")
        return simple("OK")

    def cmd_info(self, rest: list[bytes]) -> bytes:
        text = info(self.config, self.store, self.started, self.clients)
        if rest and rest[0].lower() not in (b"all", b"everything", b"default"):
            wanted = rest[0].decode("latin-1").lower()
            parts = [p for p in text.split("\r\n\r\n") if p.lower().startswith(f"# {wanted}")]
            text = "\r\n\r\n".join(parts)
        return bulk(text)

    def cmd_config(self, rest: list[bytes]) -> bytes:
        if not rest:
            return self._arity("config")
        sub = rest[0].lower()
        if sub == b"get" and len(rest) >= 2:
            table = {**self.settings, "maxmemory": "0", "bind": "* -::*", "port": "6379",
                     "protected-mode": "no", "requirepass": str(self.config["password"]),
                     "appendonly": "no", "save": "3600 1 300 100 60 10000",
                     "databases": "16", "timeout": "0"}
            pattern = rest[1].decode("latin-1").lower()
            hits = [(k, v) for k, v in table.items() if fnmatch.fnmatchcase(k, pattern)]
            if self.proto == 3:
                return resp_map([(bulk(k), bulk(v)) for k, v in hits])
            return bulk_array([x for pair in hits for x in pair])
        if sub == b"set" and len(rest) >= 3:
            key = rest[1].decode("latin-1").lower()
            value = rest[2].decode("utf-8", "replace")[:1024]
            if key == "dir" and not value.startswith("/"):
                return error("ERR CONFIG SET failed (possibly related to argument 'dir') - No "
                             "such file or directory")
            if key in self.settings or len(self.settings) < 64:
                self.settings[key[:64]] = value
            return simple("OK")
        if sub in (b"resetstat", b"rewrite"):
            return simple("OK")
        return error(f"ERR unknown subcommand '{sub.decode('latin-1')[:32]}'. Try CONFIG HELP.")

    def cmd_command(self, rest: list[bytes]) -> bytes:
        if rest and rest[0].lower() == b"count":
            return integer(240)
        return array([])

    def cmd_client(self, rest: list[bytes]) -> bytes:
        sub = rest[0].lower() if rest else b""
        if sub == b"list":
            return bulk("id=7 addr=127.0.0.1:40112 laddr=127.0.0.1:6379 fd=8 name= age=0 idle=0 "
                        "flags=N db=0 sub=0 psub=0 ssub=0 multi=-1 qbuf=26 qbuf-free=20448 "
                        "argv-mem=10 multi-mem=0 rbs=1024 rbp=0 obl=0 oll=0 omem=0 "
                        "tot-mem=22426 events=r cmd=client|list user=default redir=-1 resp=2\n")
        if sub == b"getname":
            return self.null()
        if sub == b"id":
            return integer(7)
        return simple("OK")

    def cmd_dbsize(self, rest: list[bytes]) -> bytes:
        return integer(len(self.store.data))

    def cmd_keys(self, rest: list[bytes]) -> bytes:
        if len(rest) != 1:
            return self._arity("keys")
        pattern = rest[0].decode("latin-1")
        return array([bulk(k) for k in self.store.data
                      if fnmatch.fnmatchcase(k.decode("latin-1"), pattern)][:1000])

    def cmd_scan(self, rest: list[bytes]) -> bytes:
        return array([bulk("0"), array([bulk(k) for k in list(self.store.data)[:1000]])])

    def cmd_get(self, rest: list[bytes]) -> bytes:
        if len(rest) != 1:
            return self._arity("get")
        value = self.store.data.get(rest[0])
        return self.null() if value is None else bulk(value)

    def cmd_set(self, rest: list[bytes]) -> bytes:
        if len(rest) < 2:
            return self._arity("set")
        if not self.store.set(rest[0], rest[1]):
            return error("OOM command not allowed when used memory > 'maxmemory'.")
        return simple("OK")

    def cmd_exists(self, rest: list[bytes]) -> bytes:
        return integer(sum(1 for k in rest if k in self.store.data))

    def cmd_del(self, rest: list[bytes]) -> bytes:
        return integer(sum(1 for k in rest if self.store.data.pop(k, None) is not None))

    def cmd_type(self, rest: list[bytes]) -> bytes:
        return simple("string" if rest and rest[0] in self.store.data else "none")

    def cmd_ttl(self, rest: list[bytes]) -> bytes:
        return integer(-1 if rest and rest[0] in self.store.data else -2)

    def cmd_flushall(self, rest: list[bytes]) -> bytes:
        self.store.data.clear()
        return simple("OK")

    cmd_flushdb = cmd_flushall

    def cmd_save(self, rest: list[bytes]) -> bytes:
        return simple("OK")

    def cmd_bgsave(self, rest: list[bytes]) -> bytes:
        return simple("Background saving started")

    def cmd_lastsave(self, rest: list[bytes]) -> bytes:
        return integer(int(self.started))

    def cmd_slaveof(self, rest: list[bytes]) -> bytes:
        if len(rest) != 2:
            return self._arity("slaveof")
        return simple("OK")

    cmd_replicaof = cmd_slaveof

    def cmd_module(self, rest: list[bytes]) -> bytes:
        sub = rest[0].lower() if rest else b""
        if sub == b"list":
            return array([])
        if sub == b"load" and len(rest) >= 2:
            return error("ERR Error loading the extension. Please check the server logs.")
        return error("ERR unknown subcommand or wrong number of arguments. Try MODULE HELP.")

    def cmd_eval(self, rest: list[bytes]) -> bytes:
        return error("ERR Error running script (call to f_2a8f4d6e): @user_script:1: "
                     "user_script:1: Script attempted to access nonexistent global variable")

    cmd_evalsha = cmd_eval

    def cmd_time(self, rest: list[bytes]) -> bytes:
        now = time.time()
        return bulk_array([str(int(now)), str(int((now % 1) * 1e6))])


async def serve(ctx: core.Context) -> None:
    store = Store(ctx.config["keys"] if isinstance(ctx.config["keys"], dict) else {})
    started = time.time()

    async def on_conn(r: asyncio.StreamReader, w: asyncio.StreamWriter, p: core.Peer) -> None:
        session = Session(ctx.config, store, started, ctx._active)
        for _ in range(100_000):
            try:
                args = await read_command(r, ctx.idle_seconds)
            except ProtocolError as exc:
                ctx.emit(events.COMMAND, p, "protocol error", command=str(exc))
                await core.send(w, error(f"ERR {exc}"))
                return
            if args is None:
                return
            if not args:
                continue
            name = args[0].decode("latin-1").lower()
            if name in ("post", "host:"):  # the server's guard against HTTP cross-protocol use
                ctx.emit(events.COMMAND, p, "cross-protocol attempt", command=name,
                         dangerous="true")
                return
            if name == "auth" and args[1:]:
                user = args[1].decode("utf-8", "replace") if len(args) == 3 else "default"
                ctx.emit(events.AUTH, p, "AUTH", username=user, password=args[-1])
            elif name == "hello" and len(args) >= 5 and args[2].lower() == b"auth":
                ctx.emit(events.AUTH, p, "HELLO AUTH", username=args[3], password=args[4])
            else:
                text = " ".join(a.decode("utf-8", "backslashreplace") for a in args[:64])
                ctx.emit(events.COMMAND, p, name, command=text,
                         dangerous="true" if name in DANGEROUS else None)
            answer = session.answer(args)
            await core.send(w, answer)
            if name == "quit":
                return

    for port, _proto in PORTS:
        await core.serve_tcp(ctx, port, on_conn)
