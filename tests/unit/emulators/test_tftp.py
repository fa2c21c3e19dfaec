"""TFTP packets and transfers, driven packet by packet through the real server object."""

from __future__ import annotations

import hashlib
import io
import struct
from pathlib import Path

from decnet.emulators import core, events, shell
from decnet.emulators.services import tftp


def _server(tmp_path: Path, **config: object) -> tuple[tftp.Server, io.StringIO]:
    out = io.StringIO()
    merged = {**tftp.DEFAULTS, "filesRoot": str(tmp_path), **config}
    ctx = core.Context("tftp", merged, core.Emitter("tftp", "h", out))
    persona = shell.Persona(hostname="h")
    return tftp.Server(ctx, shell.TreeCache(persona, str(tmp_path))), out


def _events(out: io.StringIO) -> list[events.Event]:
    return [e for e in map(events.parse_line, out.getvalue().splitlines()) if e is not None]


PEER = core.Peer("10.0.0.9", 40000, 69, proto="udp")


def test_requests_are_parsed() -> None:
    req = tftp.parse_request(b"\x00\x01boot/pxelinux.0\x00octet\x00blksize\x001468\x00")
    assert req == tftp.Request(1, "boot/pxelinux.0", "octet", {"blksize": "1468"})
    assert tftp.parse_request(b"\x00\x03junk") is None
    assert tftp.parse_request(b"\x00") is None
    assert tftp.clean_name("../../etc/passwd") == "etc/passwd"


def test_read_of_a_lure_in_blocks_with_acks(tmp_path: Path) -> None:
    (tmp_path / "srv" / "tftp").mkdir(parents=True)
    content = bytes(range(256)) * 5  # 1280 bytes: blocks of 512, 512, 256
    (tmp_path / "srv" / "tftp" / "router.cfg").write_bytes(content)
    server, out = _server(tmp_path)
    first = server.handle(b"\x00\x01router.cfg\x00octet\x00", PEER)
    assert first == b"\x00\x03\x00\x01" + content[:512]
    assert server.handle(b"\x00\x04\x00\x01", PEER) == b"\x00\x03\x00\x02" + content[512:1024]
    assert server.handle(b"\x00\x04\x00\x01", PEER) == b"\x00\x03\x00\x02" + content[512:1024]
    assert server.handle(b"\x00\x04\x00\x02", PEER) == b"\x00\x03\x00\x03" + content[1024:]
    assert server.handle(b"\x00\x04\x00\x03", PEER) is None
    assert not server.transfers
    request = _events(out)[0]
    assert request.kind == "request" and request.get("path") == "router.cfg"
    assert request.get("mode") == "octet" and request.get("method") == "RRQ"


def test_config_files_and_not_found(tmp_path: Path) -> None:
    server, _ = _server(tmp_path, files={"cfg/a.txt": "x\n"})
    assert server.handle(b"\x00\x01/srv/tftp/cfg/a.txt\x00netascii\x00", PEER) == \
        b"\x00\x03\x00\x01x\r\n"
    assert server.handle(b"\x00\x01/etc/passwd\x00octet\x00", PEER) == \
        b"\x00\x05\x00\x01File not found\x00"
    assert server.handle(b"\x00\x01x\x00\x02\x00", PEER) == b"\x00\x05\x00\x04Unknown mode\x00"


def test_write_is_acked_hashed_and_dropped(tmp_path: Path) -> None:
    server, out = _server(tmp_path)
    payload = b"\x7fELF" + b"B" * 700
    assert server.handle(b"\x00\x02x86.bin\x00octet\x00", PEER) == b"\x00\x04\x00\x00"
    assert server.handle(b"\x00\x03\x00\x01" + payload[:512], PEER) == b"\x00\x04\x00\x01"
    assert server.handle(b"\x00\x03\x00\x01" + payload[:512], PEER) == b"\x00\x04\x00\x01"
    assert server.handle(b"\x00\x03\x00\x02" + payload[512:], PEER) == b"\x00\x04\x00\x02"
    data = [e for e in _events(out) if e.kind == "data"]
    assert len(data) == 1
    assert data[0].get("size") == str(len(payload))
    assert data[0].get("sha256") == hashlib.sha256(payload).hexdigest()
    assert not list(tmp_path.rglob("*"))  # nothing written anywhere


def test_upload_limit_and_stray_packets(tmp_path: Path) -> None:
    server, out = _server(tmp_path, maxUpload=1000)
    server.handle(b"\x00\x02big\x00octet\x00", PEER)
    server.handle(b"\x00\x03\x00\x01" + b"A" * 512, PEER)
    reply = server.handle(b"\x00\x03\x00\x02" + b"A" * 512, PEER)
    assert reply == b"\x00\x05\x00\x03Disk full or allocation exceeded\x00"
    assert [e.get("truncated") for e in _events(out) if e.kind == "data"] == ["true"]
    assert server.handle(b"\x00\x04\x00\x07", PEER) is None  # no transfer: silence
    assert server.handle(b"\x00\x00\x10\x00\x00\x00\x00\x00", PEER) is None
    assert server.handle(b"\xff", PEER) is None


def test_transfer_table_is_bounded(tmp_path: Path) -> None:
    server, _ = _server(tmp_path)
    for port in range(tftp.MAX_TRANSFERS * 2):
        server.handle(b"\x00\x02f\x00octet\x00", core.Peer("10.0.0.9", port, 69, proto="udp"))
    assert len(server.transfers) <= tftp.MAX_TRANSFERS
    assert struct.unpack("!H", tftp.ack_packet(70000)[2:])[0] == 70000 & 0xFFFF
