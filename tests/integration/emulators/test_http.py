"""HTTP as a browser, curl and a scanner see it, and what the security team gets."""

from __future__ import annotations

import base64
import socket
import urllib.error
import urllib.request

from tests import emulator_harness as h


def test_default_page_and_server_header_from_config() -> None:
    with h.run("http", {"serverHeader": "Microsoft-IIS/10.0", "title": "IIS Windows Server"}) as emu:
        url = f"http://127.0.0.1:{emu.port(80)}/"
        with urllib.request.urlopen(url, timeout=5) as resp:
            body = resp.read().decode()
            assert resp.headers["Server"] == "Microsoft-IIS/10.0"
        assert "IIS Windows Server" in body
        event = emu.wait_event("request", path="/", method="GET")
        assert event.src_ip == "127.0.0.1" and event.dst_port == 80
        assert event.get("user_agent").startswith("Python-urllib")


def test_basic_auth_credentials_are_captured() -> None:
    with h.run("http", {"realm": "Router"}) as emu:
        req = urllib.request.Request(f"http://127.0.0.1:{emu.port(80)}/admin")
        req.add_header("Authorization", "Basic " + base64.b64encode(b"admin:s3cret").decode())
        try:
            urllib.request.urlopen(req, timeout=5)
        except urllib.error.HTTPError as error:
            assert error.code == 401
            assert 'Basic realm="Router"' in error.headers["WWW-Authenticate"]
        event = emu.wait_event("auth", username="admin")
        assert event.get("password") == "s3cret"


def test_form_login_is_captured() -> None:
    with h.run("http") as emu:
        data = b"username=root&password=hunter2"
        urllib.request.urlopen(f"http://127.0.0.1:{emu.port(80)}/login", data=data, timeout=5)
        assert emu.wait_event("auth", username="root").get("password") == "hunter2"


def test_garbage_and_oversized_lines_leave_it_serving() -> None:
    with h.run("http") as emu:
        for payload in (b"\x00\xff" * 5000 + b"\r\n", b"GET /" + b"A" * 100_000 + b"\r\n"):
            with socket.create_connection(("127.0.0.1", emu.port(80)), timeout=5) as s:
                s.sendall(payload)
                s.settimeout(5)
                try:
                    s.recv(4096)
                except (TimeoutError, ConnectionError):
                    pass
        with urllib.request.urlopen(f"http://127.0.0.1:{emu.port(80)}/", timeout=5) as resp:
            assert resp.status == 200
        assert emu.alive()
