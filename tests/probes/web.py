"""HTTP-family probes."""

from __future__ import annotations

import base64
import urllib.error
import urllib.request

from tests.probes import NMAP, Expect, Port, probe

NMAP["http"] = (80, "tcp", "Apache")


@probe("http")
def http(host: str, port: Port) -> list[Expect]:
    req = urllib.request.Request(f"http://{host}:{port(80)}/wp-login.php")
    req.add_header("Authorization", "Basic " + base64.b64encode(b"admin:letmein").decode())
    req.add_header("User-Agent", "probe-client/1.0")
    try:
        urllib.request.urlopen(req, timeout=10).read()
    except urllib.error.HTTPError as error:
        assert error.code in (401, 404), error.code
    return [
        Expect("request", {"method": "GET", "path": "/wp-login.php", "user_agent": "probe-client/1.0"}),
        Expect("auth", {"username": "admin", "password": "letmein"}),
    ]
