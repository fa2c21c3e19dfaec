"""The attacker event: one typed shape for the services, the node agent and the sinks.

A service writes each interaction as one RFC 5424 line on stdout:

    <133>1 2026-11-29T19:30:00.123456Z ws-01 ssh 7 auth [attack@32473 kind="auth"
    service="ssh" src_ip="10.20.0.9" src_port="51234" dst_port="22" proto="tcp"
    session="3f2a9c1e0b7d" username="root" password="123456"] login attempt

The structured-data element carries every field; the free text after it is for
humans only. 32473 is the private enterprise number RFC 5612 reserves for
documentation; receivers key on the SD-ID `attack@32473`. Values are capped so
a hostile client cannot make a line unbounded.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import re
from collections.abc import Mapping

SD_ID = "attack@32473"
FACILITY_LOCAL0 = 16
SEVERITY_NOTICE = 5
SEVERITY_INFO = 6
MAX_VALUE = 1024
MAX_FIELDS = 32
MAX_LINE = 16384

# Event kinds (docs/events.md lists the fields each service adds).
CONNECT = "connect"
DISCONNECT = "disconnect"
AUTH = "auth"
COMMAND = "command"
REQUEST = "request"
QUERY = "query"
SCAN = "scan"
DATA = "data"
KINDS = frozenset({CONNECT, DISCONNECT, AUTH, COMMAND, REQUEST, QUERY, SCAN, DATA})

# Fields every event has; a service adds its own (username, password, command, path...).
CORE_FIELDS = ("kind", "service", "src_ip", "src_port", "dst_port", "proto", "session")
_NAME_OK = re.compile(r"^[a-z][a-z0-9_]{0,31}$")
_HEADER = re.compile(
    r"^<(?P<pri>\d{1,3})>1 (?P<ts>\S+) (?P<host>\S+) (?P<app>\S+) (?P<procid>\S+) (?P<msgid>\S+) "
)


@dataclasses.dataclass(frozen=True)
class Event:
    """One interaction of a client with a service."""

    service: str
    kind: str
    src_ip: str
    src_port: int
    dst_port: int
    session: str
    time: dt.datetime
    proto: str = "tcp"
    hostname: str = "-"
    fields: Mapping[str, str] = dataclasses.field(default_factory=dict)
    message: str = ""

    def get(self, name: str, default: str = "") -> str:
        return self.fields.get(name, default)

    def params(self) -> dict[str, str]:
        """Core fields first, then the service's own, as one flat mapping."""
        core = {
            "kind": self.kind,
            "service": self.service,
            "src_ip": self.src_ip,
            "src_port": str(self.src_port),
            "dst_port": str(self.dst_port),
            "proto": self.proto,
            "session": self.session,
        }
        return {**core, **{k: v for k, v in self.fields.items() if k not in core}}


def cap(value: object, limit: int = MAX_VALUE) -> str:
    """A printable, bounded string: control characters escaped, long values cut with a mark."""
    if isinstance(value, bytes):
        text = value.decode("utf-8", "backslashreplace")
    else:
        text = str(value)
    text = "".join(c if c.isprintable() else repr(c)[1:-1] for c in text)
    if len(text) > limit:
        return text[:limit] + "...[truncated]"
    return text


def _escape(value: str) -> str:
    return value.replace("\\", "\\\\").replace('"', '\\"').replace("]", "\\]")


def _unescape(value: str) -> str:
    return re.sub(r"\\([\\\"\]])", r"\1", value)


def _timestamp(when: dt.datetime) -> str:
    return when.astimezone(dt.UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def severity(kind: str) -> int:
    return SEVERITY_INFO if kind in (CONNECT, DISCONNECT) else SEVERITY_NOTICE


def to_line(event: Event, procid: int | str = "-") -> str:
    """The RFC 5424 line for an event (no trailing newline)."""
    pri = FACILITY_LOCAL0 * 8 + severity(event.kind)
    params = []
    for name, value in list(event.params().items())[: len(CORE_FIELDS) + MAX_FIELDS]:
        if _NAME_OK.match(name):
            params.append(f'{name}="{_escape(cap(value))}"')
    host = cap(event.hostname or "-", 255).replace(" ", "_") or "-"
    header = f"<{pri}>1 {_timestamp(event.time)} {host} {event.service} {procid} {event.kind}"
    line = f"{header} [{SD_ID} {' '.join(params)}]"
    if event.message:
        line += " " + cap(event.message, 512)
    return line[:MAX_LINE]


_PARAM = re.compile(r'([^\s=\]"]{1,32})="((?:[^"\\]|\\.)*)"')


def parse_line(line: str) -> Event | None:
    """An event from a line `to_line` wrote; None for anything else (never raises)."""
    line = line.strip()
    if len(line) > MAX_LINE + 64:
        return None
    head = _HEADER.match(line)
    if head is None:
        return None
    rest = line[head.end() :]
    marker = f"[{SD_ID} "
    if not rest.startswith(marker):
        return None
    body, end = _sd_body(rest, len(marker))
    if end < 0:
        return None
    params = {m.group(1): _unescape(m.group(2)) for m in _PARAM.finditer(body)}
    try:
        when = dt.datetime.strptime(head.group("ts"), "%Y-%m-%dT%H:%M:%S.%fZ").replace(
            tzinfo=dt.UTC
        )
        src_port = int(params.get("src_port", "0") or 0)
        dst_port = int(params.get("dst_port", "0") or 0)
    except ValueError:
        return None
    kind = params.get("kind", head.group("msgid"))
    fields = {k: v for k, v in params.items() if k not in CORE_FIELDS}
    host = head.group("host")
    return Event(
        service=params.get("service", head.group("app")),
        kind=kind,
        src_ip=params.get("src_ip", ""),
        src_port=src_port,
        dst_port=dst_port,
        session=params.get("session", ""),
        time=when,
        proto=params.get("proto", "tcp"),
        hostname="-" if host == "-" else host,
        fields=fields,
        message=rest[end + 1 :].strip(),
    )


def _sd_body(rest: str, start: int) -> tuple[str, int]:
    """The text of one SD element up to its unescaped `]`, and that bracket's index."""
    i = start
    while i < len(rest):
        c = rest[i]
        if c == "\\":
            i += 2
            continue
        if c == '"':
            i += 1
            while i < len(rest) and rest[i] != '"':
                i += 2 if rest[i] == "\\" else 1
            i += 1
            continue
        if c == "]":
            return rest[start:i], i
        i += 1
    return "", -1
