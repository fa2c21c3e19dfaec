"""SNMP agent on 161/udp: SNMPv1/v2c GET, GETNEXT and GETBULK over a small system MIB.

Written by hand on ../ber.py rather than with pysnmp: an agent that answers the
system group and interface count is one datagram in, one out, and pysnmp's import
alone would cost more memory than the whole service. What we emulate is Net-SNMP
on Linux by default:

- The community string of every request is captured (an `auth` event, password
  = community); a wrong community gets no answer at all, as a real agent's.
- GET / GETNEXT / GETBULK over sysDescr, sysObjectID, sysUpTime, sysContact,
  sysName, sysLocation, sysServices, ifNumber and a short ifTable, from config.
- SET is answered noAccess (v2c) / readOnly (v1) and logged as a `command`.
- SNMPv3: a discovery request is answered with a Report carrying a Net-SNMP
  style engine ID (usmStatsUnknownEngineIDs), which is what net-snmp agents do
  and what nmap's SNMPv3 probe identifies; any later v3 message gets a Report
  usmStatsUnknownUserNames (we hold no USM users), its user name logged.
  Encrypted scoped PDUs are not parsed.

The pure functions here (parse, build_mib, respond) are reused by the ICS service.
"""

from __future__ import annotations

import bisect
import dataclasses
import hashlib
import secrets
import socket
import struct
import time
from typing import Any

from .. import ber, core, events

PORTS = [(161, "udp")]
DEFAULTS: dict[str, Any] = {
    "community": "public",
    "sysDescr": "",  # "" = Net-SNMP's on Debian: "Linux <sysName> 5.10.0-26-amd64 ..."
    "sysObjectID": "1.3.6.1.4.1.8072.3.2.10",
    "sysContact": "Me <me@example.org>",
    "sysName": "",  # "" = this host's name
    "sysLocation": "Sitting on the Dock of the Bay",
    "sysServices": 72,
    "interfaces": ["lo", "eth0"],
    "engineId": "",
}
MAX_VARBINDS = 32
MAX_REPETITIONS = 32

GET, GETNEXT, RESPONSE, SET, GETBULK, REPORT = 0xA0, 0xA1, 0xA2, 0xA3, 0xA5, 0xA8
COUNTER32, GAUGE32, TIMETICKS = 0x41, 0x42, 0x43
NO_SUCH_OBJECT, NO_SUCH_INSTANCE, END_OF_MIB = 0x80, 0x81, 0x82
NO_ERROR, TOO_BIG, NO_SUCH_NAME, READ_ONLY, GEN_ERR, NO_ACCESS = 0, 1, 2, 4, 5, 6
SYSTEM = (1, 3, 6, 1, 2, 1, 1)
INTERFACES = (1, 3, 6, 1, 2, 1, 2)
USM_UNKNOWN_USER_NAMES = (1, 3, 6, 1, 6, 3, 15, 1, 1, 3, 0)
USM_UNKNOWN_ENGINE_IDS = (1, 3, 6, 1, 6, 3, 15, 1, 1, 4, 0)
PDU_NAMES = {GET: "get", GETNEXT: "getnext", SET: "set", GETBULK: "getbulk"}

Oid = tuple[int, ...]


@dataclasses.dataclass(frozen=True)
class Request:
    version: int
    community: bytes
    pdu: int
    request_id: int
    non_repeaters: int
    max_repetitions: int
    oids: list[Oid]


@dataclasses.dataclass(frozen=True)
class Mib:
    """Sorted (oid, encoded value) pairs, built per request (sysUpTime moves)."""

    oids: list[Oid]
    values: list[bytes]

    def get(self, oid: Oid) -> bytes | None:
        i = bisect.bisect_left(self.oids, oid)
        return self.values[i] if i < len(self.oids) and self.oids[i] == oid else None

    def has_prefix(self, prefix: Oid) -> bool:
        found = self.next(prefix)
        return found is not None and found[0][: len(prefix)] == prefix

    def next(self, oid: Oid) -> tuple[Oid, bytes] | None:
        i = bisect.bisect_right(self.oids, oid)
        return (self.oids[i], self.values[i]) if i < len(self.oids) else None


def build_mib(config: dict[str, Any], uptime_ticks: int, extra: dict[Oid, bytes] | None = None
              ) -> Mib:
    names = [str(n)[:64] for n in config["interfaces"][:16]] or ["eth0"]
    table: dict[Oid, bytes] = {
        SYSTEM + (1, 0): ber.octets(sys_descr(config)),
        SYSTEM + (2, 0): ber.oid(_safe_oid(str(config["sysObjectID"]))),
        SYSTEM + (3, 0): ber.unsigned(uptime_ticks & 0xFFFFFFFF, TIMETICKS),
        SYSTEM + (4, 0): ber.octets(str(config["sysContact"])),
        SYSTEM + (5, 0): ber.octets(sys_name(config)),
        SYSTEM + (6, 0): ber.octets(str(config["sysLocation"])),
        SYSTEM + (7, 0): ber.integer(int(config["sysServices"])),
        INTERFACES + (1, 0): ber.integer(len(names)),
    }
    for i, name in enumerate(names, start=1):
        loopback = name.lower().startswith(("lo", "software loopback"))
        entry = INTERFACES + (2, 1)
        table[entry + (1, i)] = ber.integer(i)
        table[entry + (2, i)] = ber.octets(name)
        table[entry + (3, i)] = ber.integer(24 if loopback else 6)
        table[entry + (4, i)] = ber.integer(65536 if loopback else 1500)
        table[entry + (5, i)] = ber.unsigned(10_000_000 if loopback else 1_000_000_000, GAUGE32)
        table[entry + (8, i)] = ber.integer(1)
    table.update(extra or {})
    ordered = sorted(table)
    return Mib(ordered, [table[o] for o in ordered])


def sys_name(config: dict[str, Any]) -> str:
    return str(config["sysName"]) or socket.gethostname()


def sys_descr(config: dict[str, Any]) -> str:
    if config["sysDescr"]:
        return str(config["sysDescr"])
    return (f"Linux {sys_name(config)} 5.10.0-26-amd64 #1 SMP Debian 5.10.197-1 (2023-09-29) "
            "x86_64")


def _safe_oid(text: str) -> Oid:
    try:
        arcs = ber.parse_oid(text)
        ber.encode_oid_value(arcs)
        return arcs
    except (ValueError, ber.BerError):
        return (1, 3, 6, 1, 4, 1, 8072, 3, 2, 10)


def parse(data: bytes) -> Request | None:
    """A v1/v2c request; None for anything else (v3 is looked at by parse_v3)."""
    try:
        top = ber.decode(data)
        if top.tag != ber.SEQUENCE:
            return None
        parts = top.children()
        if len(parts) < 3 or parts[0].tag != ber.INTEGER or parts[1].tag != ber.OCTET_STRING:
            return None
        version = parts[0].as_int()
        if version not in (0, 1):
            return None
        pdu = parts[2]
        fields = pdu.children()
        if len(fields) < 4:
            return None
        oids = []
        for vb in fields[3].children()[:MAX_VARBINDS]:
            kids = vb.children()
            if kids and kids[0].tag == ber.OID:
                oids.append(ber.decode_oid(kids[0].value))
        return Request(version, parts[1].value[:256], pdu.tag, fields[0].as_int(),
                       fields[1].as_int(), fields[2].as_int(), oids)
    except ber.BerError:
        return None


def _varbind(oid: Oid, value: bytes) -> bytes:
    return ber.seq([ber.oid(oid), value])


def _message(req: Request, pdu_tag: int, error: int, index: int, varbinds: list[bytes]) -> bytes:
    pdu = ber.seq([ber.integer(req.request_id), ber.integer(error), ber.integer(index),
                   ber.seq(varbinds)], tag=pdu_tag)
    return ber.seq([ber.integer(req.version), ber.octets(req.community), pdu])


def respond(mib: Mib, req: Request) -> bytes:
    """The Response PDU for a request the community check has let through."""
    v1 = req.version == 0
    binds: list[bytes] = []
    if req.pdu == SET:
        status = READ_ONLY if v1 else NO_ACCESS
        return _message(req, RESPONSE, status, 1, [_varbind(o, ber.null()) for o in req.oids])
    if req.pdu == GET:
        for i, oid in enumerate(req.oids, start=1):
            value = mib.get(oid)
            if value is None:
                if v1:
                    return _message(req, RESPONSE, NO_SUCH_NAME, i,
                                    [_varbind(o, ber.null()) for o in req.oids])
                value = ber.null(NO_SUCH_INSTANCE if mib.has_prefix(oid[:-1])
                                 else NO_SUCH_OBJECT)
            binds.append(_varbind(oid, value))
        return _message(req, RESPONSE, NO_ERROR, 0, binds)
    if req.pdu == GETNEXT or (req.pdu == GETBULK and v1):
        for i, oid in enumerate(req.oids, start=1):
            found = mib.next(oid)
            if found is None:
                if v1:
                    return _message(req, RESPONSE, NO_SUCH_NAME, i,
                                    [_varbind(o, ber.null()) for o in req.oids])
                binds.append(_varbind(oid, ber.null(END_OF_MIB)))
            else:
                binds.append(_varbind(*found))
        return _message(req, RESPONSE, NO_ERROR, 0, binds)
    if req.pdu == GETBULK:
        non_rep = max(0, min(req.non_repeaters, len(req.oids)))
        reps = max(0, min(req.max_repetitions, MAX_REPETITIONS))
        for oid in req.oids[:non_rep]:
            found = mib.next(oid)
            binds.append(_varbind(*found) if found else _varbind(oid, ber.null(END_OF_MIB)))
        cursors = list(req.oids[non_rep:])
        for _ in range(reps):
            if not cursors:
                break
            for j, oid in enumerate(cursors):
                found = mib.next(oid)
                if found is None:
                    binds.append(_varbind(oid, ber.null(END_OF_MIB)))
                else:
                    binds.append(_varbind(*found))
                    cursors[j] = found[0]
            if all(mib.next(c) is None for c in cursors):
                break
        return _message(req, RESPONSE, NO_ERROR, 0, binds[: MAX_VARBINDS * MAX_REPETITIONS])
    return _message(req, RESPONSE, GEN_ERR, 0, [])


# SNMPv3 discovery --------------------------------------------------------------------------

@dataclasses.dataclass(frozen=True)
class V3Request:
    msg_id: int
    max_size: int
    engine_id: bytes
    request_id: int
    user: str


def parse_v3(data: bytes) -> V3Request | None:
    try:
        top = ber.decode(data)
        parts = top.children()
        if len(parts) < 4 or parts[0].as_int() != 3:
            return None
        header = parts[1].children()
        usm = ber.decode(parts[2].value).children()
        scoped = parts[3]
        if scoped.tag != ber.SEQUENCE:
            return None  # encrypted: we cannot answer it
        pdu = scoped.children()[2]
        request_id = pdu.children()[0].as_int()
        return V3Request(header[0].as_int(), header[1].as_int(), usm[0].value,
                         request_id, usm[3].as_str() if len(usm) > 3 else "")
    except (ber.BerError, IndexError):
        return None


def engine_id(config: dict[str, Any]) -> bytes:
    """An RFC 3411 engine ID for the vendor of sysObjectID (8072 = Net-SNMP), stable per name."""
    if config["engineId"]:
        try:
            return bytes.fromhex(str(config["engineId"]))[:32]
        except ValueError:
            pass
    arcs = _safe_oid(str(config["sysObjectID"]))
    enterprise = arcs[6] if arcs[:6] == (1, 3, 6, 1, 4, 1) and len(arcs) > 6 else 8072
    seed = hashlib.sha256(sys_name(config).encode()).digest()
    head = struct.pack(">I", 0x80000000 | (enterprise & 0x7FFFFFFF))
    return head + b"\x80" + seed[:8] + b"\x00\x00\x00\x00"


def report_v3(config: dict[str, Any], req: V3Request, boots: int, uptime_s: int,
              count: int, counter: Oid = USM_UNKNOWN_ENGINE_IDS) -> bytes:
    """A Report: unknown engine ID for discovery, unknown user name for anything else."""
    eid = engine_id(config)
    header = ber.seq([ber.integer(req.msg_id), ber.integer(min(req.max_size, 65507)),
                      ber.octets(b"\x00"), ber.integer(3)])
    usm = ber.seq([ber.octets(eid), ber.integer(boots), ber.integer(uptime_s), ber.octets(b""),
                   ber.octets(b""), ber.octets(b"")])
    varbind = _varbind(counter, ber.unsigned(count, COUNTER32))
    pdu = ber.seq([ber.integer(req.request_id), ber.integer(0), ber.integer(0),
                   ber.seq([varbind])], tag=REPORT)
    scoped = ber.seq([ber.octets(eid), ber.octets(b""), pdu])
    return ber.seq([ber.integer(3), header, ber.octets(usm), scoped])


def oid_list(req: Request) -> str:
    return ",".join(ber.oid_str(o) for o in req.oids[:8])


class Agent:
    """The datagram handler: community check, events, answers."""

    def __init__(self, ctx: core.Context, config: dict[str, Any] | None = None,
                 extra: dict[Oid, bytes] | None = None) -> None:
        self.ctx = ctx
        self.config = config or ctx.config
        self.extra = extra or {}
        self.started = time.monotonic()
        # engineBoots/engineTime as on a host that has been up for a while: net-snmp's
        # client ignores a report whose engine time is 0
        self.boots = secrets.randbelow(20) + 1
        self.engine_base = secrets.randbelow(2_000_000) + 3600
        self.unknown_engine = 0
        self.unknown_user = 0

    def engine_time(self) -> int:
        return self.engine_base + int(time.monotonic() - self.started)

    def uptime_ticks(self) -> int:
        return int((time.monotonic() - self.started) * 100)

    def __call__(self, data: bytes, peer: core.Peer) -> bytes | None:
        req = parse(data)
        if req is None:
            v3 = parse_v3(data)
            if v3 is None:
                self.ctx.emit(events.DATA, peer, "malformed datagram", size=len(data))
                return None
            self.ctx.emit(events.QUERY, peer, "snmpv3 request", version="3",
                          username=v3.user or None, query="v3")
            if v3.engine_id:
                self.unknown_user += 1
                return report_v3(self.config, v3, self.boots, self.engine_time(),
                                 self.unknown_user, USM_UNKNOWN_USER_NAMES)
            self.unknown_engine += 1
            return report_v3(self.config, v3, self.boots, self.engine_time(), self.unknown_engine)
        community = req.community.decode("utf-8", "replace")
        accepted = community == str(self.config["community"])
        version = "1" if req.version == 0 else "2c"
        self.ctx.emit(events.AUTH, peer, "community", password=community,
                      success="true" if accepted else "false", version=version)
        kind = events.COMMAND if req.pdu == SET else events.QUERY
        self.ctx.emit(kind, peer, f"{PDU_NAMES.get(req.pdu, hex(req.pdu))} {oid_list(req)}",
                      command=PDU_NAMES.get(req.pdu, hex(req.pdu)), query=oid_list(req),
                      version=version)
        if not accepted:
            return None
        return respond(build_mib(self.config, self.uptime_ticks(), self.extra), req)


async def serve(ctx: core.Context) -> None:
    for port, _proto in PORTS:
        await core.serve_udp(ctx, port, Agent(ctx))
