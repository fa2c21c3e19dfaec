"""nmap -sV names what each database / API emulator claims to be.

Each service runs on its real well-known port inside a private network namespace
(`unshare --net`, loopback only), so nmap sends the port-specific probes it sends
on a real network (several of them, MongoDB's and Redis's included, are only sent
to their usual ports). The namespace disappears with its processes.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import textwrap

import pytest
from tests import probes
from tests.emulator_harness import ROOT
from tests.support import require

from decnet.emulators import main

SERVICES = ["https", "docker-api", "k8s", "elasticsearch", "mysql", "postgres", "redis",
            "mongodb", "mssql"]

# Runs inside the namespace: loopback up, the emulator on its real port, nmap, stop.
_INSIDE = textwrap.dedent("""
    import socket, subprocess, sys, time
    service, port = sys.argv[1], int(sys.argv[2])
    subprocess.run(["ip", "link", "set", "lo", "up"], check=True)
    emu = subprocess.Popen([sys.executable, "-m", "decnet.emulators", service, "--bind",
                            "127.0.0.1", "--hostname", "db-01"], stdout=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            with socket.socket() as s:
                if s.connect_ex(("127.0.0.1", port)) == 0:
                    break
            time.sleep(0.2)
        out = subprocess.run(["nmap", "-sV", "-Pn", "-n", "-p", str(port), "127.0.0.1"],
                             capture_output=True, text=True, timeout=400)
        print(out.stdout)
    finally:
        emu.terminate()
        emu.wait(10)
""")


def nmap_in_namespace(service: str, port: int) -> str:
    env = dict(os.environ)
    env["PYTHONPATH"] = f"{ROOT / 'operator'}:{env.get('PYTHONPATH', '')}"
    out = subprocess.run(["unshare", "--net", sys.executable, "-c", _INSIDE, service, str(port)],
                         capture_output=True, text=True, timeout=500, env=env, cwd=ROOT)
    assert out.returncode == 0, out.stderr[-2000:]
    return out.stdout


@pytest.mark.parametrize("service", SERVICES)
def test_nmap_names_the_product(service: str) -> None:
    require(shutil.which("nmap") is not None, "nmap (Debian package) is needed")
    require(os.geteuid() == 0 and shutil.which("unshare") is not None,
            "a private network namespace (root, unshare) is needed")
    probes.load_all()
    port, proto, word = probes.NMAP[service]
    assert (port, proto) in [(p, pr) for p, pr in main.module(service).PORTS]
    report = nmap_in_namespace(service, port)
    line = next((x for x in report.splitlines() if x.startswith(f"{port}/{proto}")), "")
    assert word.lower() in line.lower(), report
