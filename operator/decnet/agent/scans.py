"""What the sniffer saw: frames -> observations -> one scan event per (LAN, source) and window.

Nobody legitimate talks to an address of a decoy LAN that no decky holds, so every ARP
request or TCP SYN / UDP / ICMP echo towards one is a high-signal event; so is one
source touching many ports of the deckies (a port sweep). This module is the pure part
of the node agent's sniffer (agent/sniffer.py runs it, agent/runtime/capture.py reads
the bridges): it parses Ethernet frames, judges them against what the agent knows of
each LAN (subnet, gateway, the addresses its deckies hold), and aggregates per
(LAN, source) over a window, so a flood costs one event per source and window.

Bounded by construction: at most MAX_SOURCES open windows (a spoofed-source flood beyond
them is counted, not stored), at most MAX_TRACKED targets per window, at most
MAX_PRESENT talkers remembered per LAN. Every frame costs O(1).

Not alarms: gratuitous ARP and ARP probes (sender 0.0.0.0), anything towards the
gateway, a decky's address or a host that itself sent on the LAN lately (an attacker's
address the deckies answer), broadcast and multicast, addresses outside the subnet, and
addresses a decky held until moments ago (the node's neighbour cache still probes them).
A sweep counts TCP SYNs to the deckies and the gateway from anyone, and UDP only from
others than the deckies and the node (their datagrams to each other are often answers).
"""

from __future__ import annotations

import collections
import dataclasses
import datetime as dt
import hashlib
import ipaddress
import struct
from collections.abc import Iterable, Mapping, Sequence

from decnet.agent import eventrecord, planner
from decnet.emulators import events
from decnet.kube import names

SERVICE = "sniffer"
WINDOW_SECONDS = 10.0
SWEEP_PORTS = 10  # distinct (decky address, port) pairs in one window make a sweep
MAX_SOURCES = 1024  # open windows over all LANs of the node
MAX_TRACKED = 256  # distinct targets (and ports) remembered per window
MAX_LISTED = 32  # of them, listed in the event
MAX_PRESENT = 4096  # talkers remembered per LAN
PRESENT_SECONDS = 300.0
RELEASED_SECONDS = 120.0

ETH_ARP = 0x0806
ETH_IPV4 = 0x0800
ETH_VLAN = 0x8100
PROTO_ICMP, PROTO_TCP, PROTO_UDP = 1, 6, 17
ARP, TCP, UDP, ICMP = "arp", "tcp", "udp", "icmp"
UNASSIGNED, SWEEP = "unassigned", "port_sweep"

# ------------------------------------------------------------------ the kernel filter

SNAP = 128  # bytes of a frame the kernel hands over: Ethernet + IPv4 (with options) + L4 ports

# classic BPF opcodes (linux/filter.h)
LD_H_ABS, LD_B_ABS, LD_B_IND, LDX_B_MSH = 0x28, 0x30, 0x50, 0xB1
AND_K, JEQ_K, JSET_K, RET_K = 0x54, 0x15, 0x45, 0x06

Insn = tuple[int, int, int, int]  # code, jt, jf, k


def _assemble(program: Sequence[tuple[str, int, int, str, str]]) -> list[Insn]:
    """(label, code, k, jump-if-true label, jump-if-false label) -> sock_filter tuples."""
    at = {label: i for i, (label, *_rest) in enumerate(program) if label}
    out: list[Insn] = []
    for i, (_, code, k, jt, jf) in enumerate(program):
        out.append((code, at[jt] - i - 1 if jt else 0, at[jf] - i - 1 if jf else 0, k))
    return out


def bpf_program() -> list[Insn]:
    """Only ARP requests, TCP SYN without ACK, UDP and ICMP echo requests (first fragments)
    pass the kernel, cut to SNAP bytes: the rest of a LAN's traffic never reaches Python."""
    return _assemble(
        [
            ("", LD_H_ABS, 12, "", ""),  # ethertype
            ("", JEQ_K, ETH_ARP, "arp", "ipv4"),
            ("arp", LD_H_ABS, 20, "", ""),  # ARP operation
            ("", JEQ_K, 1, "accept", "drop"),
            ("ipv4", JEQ_K, ETH_IPV4, "", "drop"),
            ("", LD_H_ABS, 20, "", ""),  # flags + fragment offset
            ("", JSET_K, 0x1FFF, "drop", ""),
            ("", LD_B_ABS, 23, "", ""),  # protocol
            ("", JEQ_K, PROTO_UDP, "accept", ""),
            ("", JEQ_K, PROTO_TCP, "", "icmp"),
            ("", LDX_B_MSH, 14, "", ""),  # X = IPv4 header length
            ("", LD_B_IND, 14 + 13, "", ""),  # TCP flags
            ("", AND_K, 0x12, "", ""),  # SYN | ACK
            ("", JEQ_K, 0x02, "accept", "drop"),
            ("icmp", JEQ_K, PROTO_ICMP, "", "drop"),
            ("", LDX_B_MSH, 14, "", ""),
            ("", LD_B_IND, 14, "", ""),  # ICMP type
            ("", JEQ_K, 8, "accept", "drop"),
            ("accept", RET_K, SNAP, "", ""),
            ("drop", RET_K, 0, "", ""),
        ]
    )


# ------------------------------------------------------------------ frames


@dataclasses.dataclass(frozen=True, slots=True)
class Observation:
    """One frame that may be part of a scan; addresses as integers (cheap to compare)."""

    kind: str  # arp | tcp | udp | icmp
    src_mac: bytes
    src_ip: int
    dst_ip: int
    dst_port: int = 0


_ARP = struct.Struct("!HHBBH6s4s6s4s")


def parse(frame: bytes) -> Observation | None:
    """An observation of an ARP request, TCP SYN, UDP datagram or ICMP echo; None otherwise.

    Never raises: a frame is attacker-made and may be short or malformed.
    """
    if len(frame) < 14:
        return None
    src_mac = frame[6:12]
    (ethertype,) = struct.unpack_from("!H", frame, 12)
    offset = 14
    if ethertype == ETH_VLAN:
        if len(frame) < 18:
            return None
        (ethertype,) = struct.unpack_from("!H", frame, 16)
        offset = 18
    if ethertype == ETH_ARP:
        if len(frame) < offset + _ARP.size:
            return None
        htype, ptype, hlen, plen, op, _sha, spa, _tha, tpa = _ARP.unpack_from(frame, offset)
        if htype != 1 or ptype != ETH_IPV4 or hlen != 6 or plen != 4 or op != 1:
            return None
        return Observation(ARP, src_mac, int.from_bytes(spa, "big"), int.from_bytes(tpa, "big"))
    if ethertype != ETH_IPV4 or len(frame) < offset + 20:
        return None
    ver_ihl = frame[offset]
    ihl = (ver_ihl & 0x0F) * 4
    if ver_ihl >> 4 != 4 or ihl < 20:
        return None
    (frag,) = struct.unpack_from("!H", frame, offset + 6)
    if frag & 0x1FFF:
        return None  # not a first fragment: no ports
    proto = frame[offset + 9]
    src = int.from_bytes(frame[offset + 12 : offset + 16], "big")
    dst = int.from_bytes(frame[offset + 16 : offset + 20], "big")
    l4 = offset + ihl
    if proto == PROTO_TCP:
        if len(frame) < l4 + 14 or frame[l4 + 13] & 0x12 != 0x02:
            return None
        (port,) = struct.unpack_from("!H", frame, l4 + 2)
        return Observation(TCP, src_mac, src, dst, port)
    if proto == PROTO_UDP:
        if len(frame) < l4 + 4:
            return None
        (port,) = struct.unpack_from("!H", frame, l4 + 2)
        return Observation(UDP, src_mac, src, dst, port)
    if proto == PROTO_ICMP:
        if len(frame) < l4 + 1 or frame[l4] != 8:
            return None
        return Observation(ICMP, src_mac, src, dst)
    return None


# ------------------------------------------------------------------ what the agent knows


@dataclasses.dataclass(frozen=True)
class LanView:
    """A bridge LAN planned on this node, as the sniffer judges its frames."""

    namespace: str
    name: str
    bridge: str
    subnet: str
    gateway: str
    addresses: frozenset[str] = frozenset()  # the deckies' addresses on it
    labels: tuple[tuple[str, str], ...] = ()

    @property
    def key(self) -> tuple[str, str]:
        return (self.namespace, self.name)


def lans_from_plans(
    node: str, planned: Iterable[tuple[str, Sequence[planner.NetworkWant]]]
) -> dict[str, LanView]:
    """Bridge -> LAN for every bridge LAN with spec.sniffer on that a decky of this node is
    planned on (macvlan LANs have no bridge of ours to watch)."""
    found: dict[str, LanView] = {}
    for namespace, networks in planned:
        for net in networks:
            if net.driver != "bridge" or not net.sniffer:
                continue
            bridge = names.bridge_name(node, namespace, net.lan)
            lan = found.get(bridge)
            if lan is None:
                lan = LanView(
                    namespace, net.lan, bridge, net.subnet, net.gateway, labels=net.labels
                )
            found[bridge] = dataclasses.replace(lan, addresses=lan.addresses | {net.ip})
    return found


class _Lan:
    """A LAN's judging state: integers for the frame path, and who talked lately."""

    def __init__(self, view: LanView) -> None:
        self.view = view
        self.present: collections.OrderedDict[int, float] = collections.OrderedDict()
        self.released: dict[int, float] = {}
        self.update(view, 0.0)

    def update(self, view: LanView, now: float) -> None:
        net = ipaddress.ip_network(view.subnet, strict=False)
        self.network = int(net.network_address)
        self.broadcast = int(net.broadcast_address)
        self.gateway = int(ipaddress.ip_address(view.gateway)) if view.gateway else -1
        held = {int(ipaddress.ip_address(a)) for a in view.addresses}
        for gone in getattr(self, "held", set()) - held:
            self.released[gone] = now + RELEASED_SECONDS
        self.held = held
        self.view = view

    def inside(self, ip: int) -> bool:
        return self.network < ip < self.broadcast

    def known(self, ip: int, now: float) -> bool:
        if ip == self.gateway or ip in self.held:
            return True
        until = self.released.get(ip)
        if until is not None:
            if until > now:
                return True
            del self.released[ip]
        seen = self.present.get(ip)
        return seen is not None and now - seen < PRESENT_SECONDS

    def targets(self, ip: int) -> bool:
        """A decky's address or the gateway: what a port sweep of this LAN would touch."""
        return ip == self.gateway or ip in self.held

    def talked(self, ip: int, now: float) -> None:
        if not self.inside(ip):
            return
        self.present[ip] = now
        self.present.move_to_end(ip)
        if len(self.present) > MAX_PRESENT:
            self.present.popitem(last=False)


@dataclasses.dataclass
class _Window:
    lan: LanView
    src_ip: int
    src_mac: bytes
    first: float
    last: float
    frames: int = 0
    protos: set[str] = dataclasses.field(default_factory=set)
    unassigned: set[int] = dataclasses.field(default_factory=set)
    touches: int = 0  # frames towards unassigned addresses
    ports: set[int] = dataclasses.field(default_factory=set)  # (ip << 16) | port
    routed: bool = False

    @property
    def alarmed(self) -> bool:
        return bool(self.unassigned) or len(self.ports) >= SWEEP_PORTS


@dataclasses.dataclass(frozen=True)
class Scan:
    """One scan event: what a source did on a LAN during one window."""

    lan: LanView
    src_ip: str
    src_mac: str
    first: float  # unix seconds
    last: float
    frames: int
    protos: tuple[str, ...]
    unassigned: tuple[str, ...]  # listed (at most MAX_LISTED), sorted
    unassigned_count: int  # distinct, up to MAX_TRACKED
    ports: tuple[int, ...]  # ports of the deckies touched (at most MAX_LISTED), sorted
    port_targets: int  # distinct (address, port) pairs, up to MAX_TRACKED
    reasons: tuple[str, ...]
    routed: bool  # the source is the LAN's gateway: the node routed a packet towards it


class Aggregator:
    """Observations in, scans out; one open window per (LAN, source)."""

    def __init__(
        self,
        window: float = WINDOW_SECONDS,
        max_sources: int = MAX_SOURCES,
        sweep_ports: int = SWEEP_PORTS,
    ) -> None:
        self.window = window
        self.max_sources = max_sources
        self.sweep_ports = sweep_ports
        self.lans: dict[str, _Lan] = {}
        self.windows: collections.OrderedDict[tuple[str, int], _Window] = collections.OrderedDict()
        self.dropped_sources = 0  # observations lost to the MAX_SOURCES cap

    def set_lans(self, lans: Mapping[str, LanView], now: float) -> None:
        for bridge in set(self.lans) - set(lans):
            del self.lans[bridge]
        for bridge, view in lans.items():
            state = self.lans.get(bridge)
            if state is None:
                self.lans[bridge] = _Lan(view)
            elif state.view != view:
                state.update(view, now)

    def observe(self, bridge: str, obs: Observation, now: float) -> None:
        lan = self.lans.get(bridge)
        if lan is None or obs.src_ip == 0:
            return  # not watched, or an ARP probe (sender 0.0.0.0)
        src, dst = obs.src_ip, obs.dst_ip
        lan.talked(src, now)
        if src == dst or not lan.inside(dst):
            return  # gratuitous ARP; outside the subnet, network, broadcast, multicast
        key = (bridge, src)
        if lan.known(dst, now):
            if not lan.targets(dst) or not self._counts_for_sweep(lan, obs):
                return
            if key not in self.windows and not self._room():
                return
            window = self._window(key, lan, obs, now)
            if len(window.ports) < MAX_TRACKED:
                window.ports.add((dst << 16) | obs.dst_port)
            return
        if key not in self.windows and not self._room():
            self.dropped_sources += 1
            return
        window = self._window(key, lan, obs, now)
        window.touches += 1
        if len(window.unassigned) < MAX_TRACKED:
            window.unassigned.add(dst)

    @staticmethod
    def _counts_for_sweep(lan: _Lan, obs: Observation) -> bool:
        """A TCP SYN from anyone; UDP only from others than the deckies and the node, whose
        datagrams to each other are answers (to ephemeral ports) as often as not."""
        if obs.kind == TCP:
            return True
        return obs.kind == UDP and obs.src_ip != lan.gateway and obs.src_ip not in lan.held

    def _room(self) -> bool:
        return len(self.windows) < self.max_sources

    def _window(self, key: tuple[str, int], lan: _Lan, obs: Observation, now: float) -> _Window:
        window = self.windows.get(key)
        if window is None:
            window = self.windows[key] = _Window(lan.view, obs.src_ip, obs.src_mac, now, now)
            window.routed = obs.src_ip == lan.gateway
        window.last = now
        window.frames += 1
        window.protos.add(obs.kind)
        return window

    def due(self, now: float, flush: bool = False) -> list[Scan]:
        """Scans of the windows that closed (all of them with flush); quiet windows vanish."""
        out: list[Scan] = []
        while self.windows:
            key, window = next(iter(self.windows.items()))
            if not flush and now - window.first < self.window:
                break  # windows are ordered by their first frame
            del self.windows[key]
            if window.unassigned or len(window.ports) >= self.sweep_ports:
                out.append(_scan(window, self.sweep_ports))
        return out


def _ip(value: int) -> str:
    return str(ipaddress.IPv4Address(value))


def _scan(w: _Window, sweep_ports: int) -> Scan:
    reasons = []
    if w.unassigned:
        reasons.append(UNASSIGNED)
    if len(w.ports) >= sweep_ports:
        reasons.append(SWEEP)
    ports = sorted({p & 0xFFFF for p in w.ports})
    return Scan(
        lan=w.lan,
        src_ip=_ip(w.src_ip),
        src_mac=w.src_mac.hex(":"),
        first=w.first,
        last=w.last,
        frames=w.frames,
        protos=tuple(sorted(w.protos)),
        unassigned=tuple(_ip(a) for a in sorted(w.unassigned)[:MAX_LISTED]),
        unassigned_count=len(w.unassigned),
        ports=tuple(ports[:MAX_LISTED]),
        port_targets=len(w.ports) if len(w.ports) >= sweep_ports else 0,
        reasons=tuple(reasons),
        routed=w.routed,
    )


# ------------------------------------------------------------------ the event


def _time(unix: float) -> dt.datetime:
    return dt.datetime.fromtimestamp(unix, dt.UTC)


def _rfc3339(unix: float) -> str:
    return _time(unix).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def record(scan: Scan, node: str) -> eventrecord.Record:
    """The scan as an attacker event, delivered like the emulators' (docs/events.md)."""
    lan = scan.lan
    key = f"{node}\0{lan.namespace}\0{lan.name}\0{scan.src_ip}\0{scan.first!r}"
    event_id = hashlib.sha256(key.encode()).hexdigest()[:32]
    fields = {
        "reason": ",".join(scan.reasons),
        "subnet": lan.subnet,
        "src_mac": scan.src_mac,
        "count": str(scan.frames),
        "first_seen": _rfc3339(scan.first),
        "last_seen": _rfc3339(scan.last),
    }
    if scan.unassigned:
        fields["dst_ips"] = ",".join(scan.unassigned)
        fields["dst_count"] = str(scan.unassigned_count)
    if scan.port_targets:
        fields["dst_ports"] = ",".join(str(p) for p in scan.ports)
        fields["port_targets"] = str(scan.port_targets)
    if scan.routed:
        fields["routed"] = "true"
    what = []
    if scan.unassigned:
        what.append(f"{scan.unassigned_count} unassigned address(es)")
    if scan.port_targets:
        what.append(f"{scan.port_targets} port(s) of deckies")
    event = events.Event(
        service=SERVICE,
        kind=events.SCAN,
        src_ip=scan.src_ip,
        src_port=0,
        dst_port=scan.ports[0] if len(scan.ports) == 1 else 0,
        session=event_id[:12],
        time=_time(scan.first),
        proto=",".join(scan.protos),
        hostname=node,
        fields=fields,
        message=f"scan of LAN {lan.name}: {' and '.join(what)}",
    )
    return eventrecord.Record(
        id=event_id,
        namespace=lan.namespace,
        decky="",
        node=node,
        archetype="",
        lan=lan.name,
        event=event,
    )
