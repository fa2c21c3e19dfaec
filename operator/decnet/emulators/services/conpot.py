"""An industrial controller: Modbus/TCP on 502, Siemens S7comm on 102, SNMP on 161/udp.

The template is named after the Conpot project, whose default template is a
Siemens PLC; this is our own hand-written take (Conpot itself pulls in a web
framework and a dozen libraries, and its stock names are well-known fingerprints,
so none of them are used as defaults here). Written by hand because each protocol
needs only its first few function codes:

- Modbus/TCP: MBAP framing; read coils / discrete inputs / holding / input
  registers answered from a small register map (config); writes (FC 5, 6, 15, 16)
  applied to that bounded map and reported as `command` events with function,
  address and values; Report Server ID (FC 17) and Read Device Identification
  (FC 43/14) with vendor, product and revision from config; anything else an
  "illegal function" exception, echoing the header as PLCs do (what nmap matches).
- S7comm: TPKT + COTP connection, Setup Communication, and SZL reads 0x0011
  (module identification) and 0x001C (component identification), the records
  nmap's s7-info reads to name the CPU, its serial number and plant.
- SNMP: the snmp service's agent with the controller's system description.
"""

from __future__ import annotations

import asyncio
import dataclasses
import struct
from typing import Any

from .. import core, events
from . import snmp

PORTS = [(502, "tcp"), (102, "tcp"), (161, "udp")]
DEFAULTS: dict[str, Any] = {
    "vendor": "Siemens",
    "productCode": "6ES7 315-2EH14-0AB0",
    "revision": "V3.2.6",
    "systemName": "SIMATIC 300(1)",
    "moduleName": "CPU 315-2 PN/DP",
    "moduleType": "CPU 315-2 PN/DP",
    "plantId": "",
    "serialNumber": "S C-H4UR28922012",
    "copyright": "Original Siemens Equipment",
    "hardwareOrder": "6ES7 315-2EH14-0AB0",
    "unitId": 1,
    "coils": [1, 0, 1, 1, 0, 0, 0, 0, 1, 0, 0, 0, 0, 0, 0, 0],
    "discreteInputs": [1, 1, 0, 0, 0, 0, 0, 0],
    "holdingRegisters": [0, 1200, 300, 55, 0, 0, 7, 21, 0, 100],
    "inputRegisters": [215, 187, 1013, 0, 49, 0, 0, 0],
    "community": "public",
    "sysDescr": "Siemens, SIMATIC, S7-300",
    "sysObjectID": "1.3.6.1.4.1.4329.6.1.2",
    "sysContact": "",
    "sysName": "CP 343-1",
    "sysLocation": "",
    "sysServices": 78,
    # The SNMP agent on 161/udp; off when the same host also runs the snmp service
    # (one UDP port, one listener), which then answers with this device's identity.
    "snmp": True,
    "interfaces": ["Siemens, SIMATIC NET, CP 343-1, 6GK7 343-1EX30-0XE0, HW: 6, FW: V3.0.22, "
                   "Ethernet Port, Rack 0, Slot 4"],
    "engineId": "",
}
MAX_TABLE = 4096
MAX_READ_BITS, MAX_READ_REGS = 2000, 125
MAX_S7_PDU = 1024

# Modbus -----------------------------------------------------------------------------------

ILLEGAL_FUNCTION, ILLEGAL_ADDRESS, ILLEGAL_VALUE = 1, 2, 3
FUNCTION_NAMES = {1: "read_coils", 2: "read_discrete_inputs", 3: "read_holding_registers",
                  4: "read_input_registers", 5: "write_single_coil", 6: "write_single_register",
                  15: "write_multiple_coils", 16: "write_multiple_registers",
                  17: "report_server_id", 43: "read_device_identification"}


@dataclasses.dataclass
class Registers:
    """The PLC's data tables, fixed in size (writes never grow them)."""

    coils: list[int]
    discrete: list[int]
    holding: list[int]
    inputs: list[int]

    @classmethod
    def from_config(cls, config: dict[str, Any]) -> Registers:
        def table(key: str, mask: int) -> list[int]:
            values = [int(v) & mask for v in config[key][:MAX_TABLE] if _is_int(v)]
            return values or [0]
        return cls(table("coils", 1), table("discreteInputs", 1),
                   table("holdingRegisters", 0xFFFF), table("inputRegisters", 0xFFFF))


def _is_int(value: object) -> bool:
    try:
        int(value)  # type: ignore[call-overload]
    except (TypeError, ValueError):
        return False
    return True


@dataclasses.dataclass(frozen=True)
class Mbap:
    transaction: int
    protocol: int
    length: int
    unit: int


@dataclasses.dataclass(frozen=True)
class Outcome:
    pdu: bytes
    write: tuple[str, int, list[int]] | None = None  # function, address, values


def exception(function: int, code: int) -> bytes:
    return bytes([(function | 0x80) & 0xFF, code])


def _bits(values: list[int]) -> bytes:
    out = bytearray((len(values) + 7) // 8)
    for i, bit in enumerate(values):
        if bit:
            out[i // 8] |= 1 << (i % 8)
    return bytes(out)


def device_identification(config: dict[str, Any], code: int, object_id: int) -> bytes:
    objects = [str(config["vendor"]), str(config["productCode"]), str(config["revision"])]
    if code == 4:
        if object_id > 2:
            return exception(43, ILLEGAL_ADDRESS)
        chosen = [(object_id, objects[object_id])]
    else:
        chosen = list(enumerate(objects))
    body = b"".join(bytes([oid, len(v.encode()[:200])]) + v.encode()[:200] for oid, v in chosen)
    return bytes([43, 14, code if code in (1, 2, 3, 4) else 1, 0x01, 0, 0, len(chosen)]) + body


def modbus(config: dict[str, Any], regs: Registers, pdu: bytes) -> Outcome:
    """One request PDU to its response PDU, applying writes to regs."""
    if not pdu:
        return Outcome(exception(0, ILLEGAL_FUNCTION))
    fc, data = pdu[0], pdu[1:]
    if fc in (1, 2, 3, 4):
        if len(data) < 4:
            return Outcome(exception(fc, ILLEGAL_VALUE))
        address, count = struct.unpack(">HH", data[:4])
        limit = MAX_READ_BITS if fc in (1, 2) else MAX_READ_REGS
        if not 1 <= count <= limit:
            return Outcome(exception(fc, ILLEGAL_VALUE))
        table = {1: regs.coils, 2: regs.discrete, 3: regs.holding, 4: regs.inputs}[fc]
        if address + count > len(table):
            return Outcome(exception(fc, ILLEGAL_ADDRESS))
        values = table[address : address + count]
        payload = _bits(values) if fc in (1, 2) else struct.pack(f">{count}H", *values)
        return Outcome(bytes([fc, len(payload)]) + payload)
    if fc in (5, 6):
        if len(data) < 4:
            return Outcome(exception(fc, ILLEGAL_VALUE))
        address, value = struct.unpack(">HH", data[:4])
        table = regs.coils if fc == 5 else regs.holding
        if fc == 5 and value not in (0x0000, 0xFF00):
            return Outcome(exception(fc, ILLEGAL_VALUE))
        if address >= len(table):
            return Outcome(exception(fc, ILLEGAL_ADDRESS), (FUNCTION_NAMES[fc], address, [value]))
        stored = (1 if value else 0) if fc == 5 else value
        table[address] = stored
        return Outcome(pdu[:5], (FUNCTION_NAMES[fc], address, [stored]))
    if fc in (15, 16):
        if len(data) < 5:
            return Outcome(exception(fc, ILLEGAL_VALUE))
        address, count, size = struct.unpack(">HHB", data[:5])
        raw = data[5 : 5 + size]
        if fc == 15:
            values = [(raw[i // 8] >> (i % 8)) & 1 for i in range(min(count, len(raw) * 8))]
            table = regs.coils
            ok = 1 <= count <= 1968 and len(values) == count
        else:
            values = [int(v) for v in struct.unpack(f">{len(raw) // 2}H", raw[: len(raw) // 2 * 2])]
            table = regs.holding
            ok = 1 <= count <= 123 and len(values) == count
        if not ok:
            return Outcome(exception(fc, ILLEGAL_VALUE))
        write = (FUNCTION_NAMES[fc], address, values[:64])
        if address + count > len(table):
            return Outcome(exception(fc, ILLEGAL_ADDRESS), write)
        table[address : address + count] = values
        return Outcome(bytes([fc]) + struct.pack(">HH", address, count), write)
    if fc == 17:
        ident = f"{config['vendor']} {config['moduleName']}".encode()[:200]
        body = bytes([int(config["unitId"]) & 0xFF, 0xFF]) + ident
        return Outcome(bytes([17, len(body)]) + body)
    if fc == 43:
        if len(data) < 3 or data[0] != 14:
            return Outcome(exception(fc, ILLEGAL_FUNCTION))
        return Outcome(device_identification(config, data[1], data[2]))
    return Outcome(exception(fc, ILLEGAL_FUNCTION))


def mbap(header: bytes) -> Mbap:
    return Mbap(*struct.unpack(">HHHB", header[:7]))


def frame(head: Mbap, pdu: bytes) -> bytes:
    return struct.pack(">HHHB", head.transaction, head.protocol, len(pdu) + 1, head.unit) + pdu


async def modbus_session(ctx: core.Context, regs: Registers, reader: asyncio.StreamReader,
                         writer: asyncio.StreamWriter, peer: core.Peer) -> None:
    for _ in range(1000):
        header = await core.read_exactly(reader, 7, ctx.idle_seconds)
        if header is None:
            return
        head = mbap(header)
        if head.protocol == 0 and 2 <= head.length <= 254:
            pdu = await core.read_exactly(reader, head.length - 1, ctx.idle_seconds)
            if pdu is None:
                return
        else:
            # not Modbus framing (a scanner's text probe): answer what arrived, as PLCs do
            pdu = header[7:] + await core.read_some(reader, 256, 0.5)
            pdu = pdu[:1] or b"\x00"
        outcome = modbus(ctx.config, regs, pdu)
        fname = FUNCTION_NAMES.get(pdu[0], f"function_{pdu[0]}")
        if outcome.write is not None:
            name, address, values = outcome.write
            ctx.emit(events.COMMAND, peer, f"{name} {address}", command=name, function=pdu[0],
                     address=address, values=",".join(str(v) for v in values), unit=head.unit)
        else:
            ctx.emit(events.REQUEST, peer, fname, command=fname, function=pdu[0], unit=head.unit,
                     address=struct.unpack(">H", pdu[1:3])[0] if len(pdu) >= 3 and
                     pdu[0] in (1, 2, 3, 4) else None)
        await core.send(writer, frame(head, outcome.pdu))
        if head.protocol != 0:
            return


# S7comm -----------------------------------------------------------------------------------

def tpkt(payload: bytes) -> bytes:
    return struct.pack(">BBH", 3, 0, len(payload) + 4) + payload


def cotp_confirm(request: bytes) -> bytes:
    """A COTP CC echoing the CR's references and TSAP parameters."""
    li = request[4]
    src_ref = request[8:10]
    params = b""
    raw, pos = request[11 : 5 + li], 0
    while pos + 2 <= len(raw):  # echo only the TSAP and TPDU-size parameters
        code, size = raw[pos], raw[pos + 1]
        if code in (0xC0, 0xC1, 0xC2):
            params += raw[pos : pos + 2 + size]
        pos += 2 + size
    cc = b"\xd0" + src_ref + b"\x00\x01" + b"\x00" + params
    return tpkt(bytes([len(cc)]) + cc)


def s7_header(rosctr: int, pdu_ref: int, params: bytes, data: bytes, error: bool) -> bytes:
    head = struct.pack(">BBHHHH", 0x32, rosctr, 0, pdu_ref, len(params), len(data))
    if error:
        head += b"\x00\x00"
    return head + params + data


def _padded(text: str, size: int) -> bytes:
    return text.encode("latin-1", "replace")[:size].ljust(size, b"\x00")


def szl_records(config: dict[str, Any], szl_id: int) -> tuple[int, list[bytes]]:
    """(record length, records) for the SZL lists a client asks a CPU for."""
    if szl_id == 0x0011:
        order = _padded(str(config["productCode"]), 20)
        hardware = _padded(str(config["hardwareOrder"]), 20)
        version = [int(p) for p in str(config["revision"]).lstrip("Vv").split(".")
                   if p.isdigit()][:3] + [0, 0, 0]
        return 28, [
            struct.pack(">H", 1) + order + b"\x00\xc0\x00\x04\x00\x01",
            struct.pack(">H", 6) + hardware + b"\x00\xc0\x00\x04\x00\x01",
            struct.pack(">H", 7) + b" " * 20 + b"\x00\xc0" + bytes([0x56] + version[:3]),
        ]
    if szl_id == 0x001C:
        fields = [(1, "systemName"), (2, "moduleName"), (3, "plantId"), (4, "copyright"),
                  (5, "serialNumber"), (7, "moduleType")]
        return 34, [struct.pack(">H", i) + _padded(str(config[k]), 32) for i, k in fields]
    return 0, []


def s7(config: dict[str, Any], pdu: bytes) -> tuple[bytes | None, str]:
    """One S7 PDU (after COTP DT) to its answer and a name for the event."""
    if len(pdu) < 10 or pdu[0] != 0x32:
        return None, "not s7"
    rosctr, pdu_ref, plen, dlen = pdu[1], *struct.unpack(">HHH", pdu[4:10])
    params = pdu[10 : 10 + plen]
    data = pdu[10 + plen : 10 + plen + dlen]
    if rosctr == 1 and params[:1] == b"\xf0" and len(params) >= 8:
        size = min(struct.unpack(">H", params[6:8])[0], 240) or 240
        answer = params[:6] + struct.pack(">H", size)
        return s7_header(3, pdu_ref, answer, b"", error=True), "setup communication"
    if rosctr == 7 and len(params) >= 8 and params[5] & 0x0F == 4 and params[6] == 1:
        if len(data) < 8:
            return None, "short szl read"
        szl_id, index = struct.unpack(">HH", data[4:8])
        size, records = szl_records(config, szl_id)
        resp_params = bytes([0x00, 0x01, 0x12, 0x08, 0x12, 0x84, 0x01, params[7]]) + b"\x00" * 4
        if not records:
            body = b"\x0a\x00\x00\x00"  # object does not exist
        else:
            listing = struct.pack(">HHHH", szl_id, index, size, len(records)) + b"".join(records)
            body = b"\xff\x09" + struct.pack(">H", len(listing)) + listing
        return s7_header(7, pdu_ref, resp_params, body, error=False), f"read szl {szl_id:#06x}"
    if rosctr == 1 and params[:1] in (b"\x04", b"\x05") and len(params) >= 2:
        count = min(params[1], 20)
        name = "read var" if params[:1] == b"\x04" else "write var"
        item = b"\x0a\x00\x00\x00" if name == "read var" else b"\x0a"
        return s7_header(3, pdu_ref, params[:1] + bytes([count]), item * count,
                         error=True), name
    return s7_header(2, pdu_ref, b"", b"", error=True)[:-2] + b"\x84\x04", f"rosctr {rosctr}"


async def read_tpkt(reader: asyncio.StreamReader, timeout: float) -> bytes | None:
    head = await core.read_exactly(reader, 4, timeout)
    if head is None or head[0] != 3:
        return None
    size = struct.unpack(">H", head[2:])[0]
    if not 7 <= size <= MAX_S7_PDU:
        return None
    rest = await core.read_exactly(reader, size - 4, timeout)
    return None if rest is None else head + rest


async def s7_session(ctx: core.Context, reader: asyncio.StreamReader,
                     writer: asyncio.StreamWriter, peer: core.Peer) -> None:
    first = await read_tpkt(reader, ctx.idle_seconds)
    if first is None or len(first) < 11 or first[5] != 0xE0:
        return
    await core.send(writer, cotp_confirm(first))
    ctx.emit(events.REQUEST, peer, "cotp connect", command="cotp connect")
    for _ in range(200):
        packet = await read_tpkt(reader, ctx.idle_seconds)
        if packet is None or len(packet) < 7 or packet[5] != 0xF0:
            return
        answer, name = s7(ctx.config, packet[7:])
        kind = events.COMMAND if name == "write var" else events.REQUEST
        ctx.emit(kind, peer, name, command=name)
        if answer is None:
            return
        await core.send(writer, tpkt(b"\x02\xf0\x80" + answer))


def snmp_config(config: dict[str, Any]) -> dict[str, Any]:
    return {key: config[key] for key in snmp.DEFAULTS}


async def serve(ctx: core.Context) -> None:
    regs = Registers.from_config(ctx.config)

    async def on_modbus(r: asyncio.StreamReader, w: asyncio.StreamWriter, p: core.Peer) -> None:
        await modbus_session(ctx, regs, r, w, p)

    async def on_s7(r: asyncio.StreamReader, w: asyncio.StreamWriter, p: core.Peer) -> None:
        await s7_session(ctx, r, w, p)

    await core.serve_tcp(ctx, 502, on_modbus)
    await core.serve_tcp(ctx, 102, on_s7)
    if ctx.config["snmp"]:
        await core.serve_udp(ctx, 161, snmp.Agent(ctx, snmp_config(ctx.config)))
