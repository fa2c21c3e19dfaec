"""VNC as vncdotool and a raw RFB client see it, and what the security team gets."""

from __future__ import annotations

import socket
import struct
import warnings

from tests import emulator_harness as h


def _vnc_response(password: str, challenge: bytes) -> bytes:
    """The client's answer, computed by vncdotool's own RFB code."""
    from vncdotool import rfb

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return rfb.des_encrypt(rfb._vnc_des(password), challenge)


def _recv_exactly(s: socket.socket, n: int) -> bytes:
    data = b""
    while len(data) < n:
        chunk = s.recv(n - len(data))
        assert chunk, f"closed after {len(data)} of {n} bytes"
        data += chunk
    return data


def test_wrong_password_is_refused_and_the_response_cracks_offline() -> None:
    from vncdotool import api

    with h.run("vnc") as emu:
        try:
            api.connect(f"127.0.0.1::{emu.port(5900)}", password="letmein", timeout=15
                        ).refreshScreen()
        except Exception as error:  # noqa: BLE001 - vncdotool's AuthenticationError
            assert "Authentication failed" in str(error)
        else:
            raise AssertionError("login must fail")
        event = emu.wait_event("auth", hash_type="vnc")
        challenge, response = (bytes.fromhex(p) for p in event.get("password_hash").split(":"))
        assert len(challenge) == 16
        assert _vnc_response("letmein", challenge) == response
        assert _vnc_response("letmeout", challenge) != response
        assert event.get("success") == "false"


def test_configured_password_opens_a_session_naming_the_desktop() -> None:
    with h.run("vnc", {"password": "s3cr3t", "desktopName": "SCADA-HMI", "width": 1280,
                       "height": 1024}) as emu:
        with socket.create_connection(("127.0.0.1", emu.port(5900)), timeout=10) as s:
            assert _recv_exactly(s, 12) == b"RFB 003.008\n"
            s.sendall(b"RFB 003.008\n")
            assert _recv_exactly(s, 2) == b"\x01\x02"
            s.sendall(b"\x02")
            challenge = _recv_exactly(s, 16)
            s.sendall(_vnc_response("s3cr3t", challenge))
            assert _recv_exactly(s, 4) == b"\x00\x00\x00\x00"
            s.sendall(b"\x01")  # ClientInit: shared
            width, height = struct.unpack(">HH", _recv_exactly(s, 4))
            _recv_exactly(s, 16)  # pixel format
            (size,) = struct.unpack(">I", _recv_exactly(s, 4))
            assert (width, height, _recv_exactly(s, size)) == (1280, 1024, b"SCADA-HMI")
        emu.wait_event("auth", success="true")


def test_protocol_3_3_server_picks_the_security_type_itself() -> None:
    with h.run("vnc", {"version": "3.3"}) as emu:
        with socket.create_connection(("127.0.0.1", emu.port(5900)), timeout=10) as s:
            assert _recv_exactly(s, 12) == b"RFB 003.003\n"
            s.sendall(b"RFB 003.003\n")
            assert _recv_exactly(s, 4) == b"\x00\x00\x00\x02"
            _recv_exactly(s, 16)
            s.sendall(b"\x00" * 16)
            assert _recv_exactly(s, 4) == b"\x00\x00\x00\x01"  # failed, no reason in 3.3
        emu.wait_event("request", version="3.3")


def test_a_newer_client_is_held_to_the_server_version_and_gets_the_reason() -> None:
    with h.run("vnc", {"failureReason": "Too many authentication failures"}) as emu:
        with socket.create_connection(("127.0.0.1", emu.port(5900)), timeout=10) as s:
            _recv_exactly(s, 12)
            s.sendall(b"RFB 003.889\n")  # Apple's Screen Sharing
            _recv_exactly(s, 2)
            s.sendall(b"\x02")
            _recv_exactly(s, 16)
            s.sendall(b"\x11" * 16)
            assert _recv_exactly(s, 4) == b"\x00\x00\x00\x01"
            (size,) = struct.unpack(">I", _recv_exactly(s, 4))
            assert _recv_exactly(s, size) == b"Too many authentication failures"
        emu.wait_event("request", client="RFB 003.889", version="3.8")
