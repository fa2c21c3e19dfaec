"""Receivers a security team would run: Debian's rsyslog (TLS, RFC 5425) and an HTTPS webhook.

Both are started by the test, on loopback, with certificates the test makes; both are
stopped by pid / by their own server object.
"""

from __future__ import annotations

import http.server
import json
import shutil
import signal
import ssl
import subprocess
import threading
import time
from pathlib import Path
from typing import Any

from decnet.emulators import events

RSYSLOG_CONF = """
global(
  workDirectory="{work}"
  maxMessageSize="64k"
  DefaultNetstreamDriver="gtls"
  DefaultNetstreamDriverCAFile="{ca}"
  DefaultNetstreamDriverCertFile="{cert}"
  DefaultNetstreamDriverKeyFile="{key}"
)
module(load="imtcp" StreamDriver.Name="gtls" StreamDriver.Mode="1" StreamDriver.AuthMode="anon")
input(type="imtcp" port="{port}" address="127.0.0.1")
template(name="raw" type="string" string="%rawmsg%\\n")
action(type="omfile" file="{out}" template="raw")
"""


class Rsyslog:
    """rsyslogd -n with a TLS imtcp input writing every message's raw text to a file."""

    def __init__(self, directory: Path, port: int, cert: Path, key: Path, ca: Path) -> None:
        self.dir = directory
        self.port = port
        self.out = directory / "messages.log"
        work = directory / "work"
        work.mkdir(parents=True, exist_ok=True)
        self.conf = directory / "rsyslog.conf"
        self.conf.write_text(
            RSYSLOG_CONF.format(work=work, ca=ca, cert=cert, key=key, port=port, out=self.out)
        )
        self.pidfile = directory / "rsyslogd.pid"
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        binary = shutil.which("rsyslogd") or "/usr/sbin/rsyslogd"
        log = open(self.dir / "rsyslogd.out", "ab")  # noqa: SIM115 - owned by the child
        self.proc = subprocess.Popen(
            [binary, "-n", "-f", str(self.conf), "-i", str(self.pidfile)],
            stdout=log,
            stderr=subprocess.STDOUT,
        )
        deadline = time.monotonic() + 20
        import socket

        while time.monotonic() < deadline:
            try:
                socket.create_connection(("127.0.0.1", self.port), 0.5).close()
                return
            except OSError:
                if self.proc.poll() is not None:
                    raise AssertionError((self.dir / "rsyslogd.out").read_text()) from None
                time.sleep(0.1)
        raise AssertionError("rsyslogd did not listen")

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(timeout=10)
        self.proc = None

    def messages(self) -> list[events.Event]:
        try:
            lines = self.out.read_text(errors="replace").splitlines()
        except OSError:
            return []
        return [e for e in (events.parse_line(line) for line in lines) if e is not None]


class Webhook:
    """An HTTPS server that keeps every event of every POSTed batch (and the headers)."""

    def __init__(self, port: int, cert: Path, key: Path) -> None:
        received: list[dict[str, Any]] = []
        headers: list[dict[str, str]] = []
        lock = threading.Lock()

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_POST(self) -> None:  # noqa: N802 - http.server's name
                length = int(self.headers.get("Content-Length", "0"))
                body = json.loads(self.rfile.read(length))
                with lock:
                    received.extend(body["events"])
                    headers.append(dict(self.headers))
                self.send_response(200)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, *args: Any) -> None:
                return

        self.received, self.headers, self.lock = received, headers, lock
        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", port), Handler)
        ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        ctx.load_cert_chain(str(cert), str(key))
        self.server.socket = ctx.wrap_socket(self.server.socket, server_side=True)
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def start(self) -> None:
        self.thread.start()

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()

    def events(self) -> list[dict[str, Any]]:
        with self.lock:
            return list(self.received)
