"""/healthz and /readyz for the kubelet, served the same way by the operator and the agent.

A stdlib HTTP server on its own daemon thread, so a probe is answered even while the
process is busy converging or reconciling. A probe must never do the work it reports
on: each check is a callable that reads what the process already recorded (a
heartbeat, a timestamp, a flag) and returns None when fine or a short reason when not.
The reason goes into the 503 body for `kubectl describe pod`; it names a component,
never a value an attacker could have written.
"""

from __future__ import annotations

import http.server
import threading
from collections.abc import Callable

# None = fine; otherwise a short reason ("docker unreachable").
Check = Callable[[], str | None]

LIVE_PATH = "/healthz"
READY_PATH = "/readyz"


def answer(path: str, live: Check, ready: Check) -> tuple[int, str]:
    """Status code and body for one probe request (pure, apart from the checks)."""
    check = {LIVE_PATH: live, READY_PATH: ready}.get(path.split("?", 1)[0])
    if check is None:
        return 404, "not found\n"
    try:
        reason = check()
    except Exception as error:  # noqa: BLE001 - a broken check is a failed probe, not a crash
        reason = f"check failed: {type(error).__name__}"
    if reason is None:
        return 200, "ok\n"
    return 503, f"{reason}\n"


class Server:
    """A running probe server; `port` is the bound one (useful with port 0 in tests)."""

    def __init__(self, addr: str, port: int, live: Check, ready: Check) -> None:
        class Handler(http.server.BaseHTTPRequestHandler):
            def do_GET(self) -> None:  # noqa: N802 - the stdlib's name
                code, body = answer(self.path, live, ready)
                data = body.encode()
                self.send_response(code)
                self.send_header("Content-Type", "text/plain; charset=utf-8")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def log_message(self, format: str, *args: object) -> None:  # noqa: A002
                pass  # one line per kubelet probe is noise

        self._httpd = http.server.ThreadingHTTPServer((addr, port), Handler)
        self._httpd.daemon_threads = True
        self.port = int(self._httpd.server_address[1])
        self._thread = threading.Thread(
            target=self._httpd.serve_forever, name="probes", daemon=True
        )
        self._thread.start()

    def close(self) -> None:
        self._httpd.shutdown()
        self._httpd.server_close()


def serve(addr: str, port: int, live: Check, ready: Check) -> Server:
    """Start serving probes on addr:port in the background."""
    return Server(addr, port, live, ready)
