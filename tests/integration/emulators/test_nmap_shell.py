"""What `nmap -sV` says about our ssh, telnet, ftp and tftp (loopback, our own processes only)."""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import sys
import time

import pytest
from tests import emulator_harness as h
from tests.probes import NMAP
from tests.probes import shell as _shell_probes  # noqa: F401  (registers NMAP entries)
from tests.support import require


def _nmap(port: int, udp: bool = False) -> str:
    argv = ["nmap", "-sV", "-Pn", "-p", str(port), "127.0.0.1"]
    if udp:
        argv.insert(1, "-sU")
    done = subprocess.run(argv, capture_output=True, text=True, timeout=600)
    proto = "udp" if udp else "tcp"
    return next((ln for ln in done.stdout.splitlines() if ln.startswith(f"{port}/{proto}")), "")


@pytest.mark.parametrize("service", ["ssh", "telnet", "ftp"])
def test_nmap_names_the_product(service: str) -> None:
    require(shutil.which("nmap") is not None, "nmap not installed")
    well_known, _proto, word = NMAP[service]
    with h.run(service) as emu:
        line = _nmap(emu.port(well_known))
        assert emu.alive()
    assert " open " in line and word.lower() in line.lower(), line


def test_nmap_names_busybox_telnetd_for_the_device_style() -> None:
    require(shutil.which("nmap") is not None, "nmap not installed")
    with h.run("telnet", {"style": "busybox", "hostname": "ipcam"}) as emu:
        line = _nmap(emu.port(23))
    assert " open " in line and "BusyBox telnetd" in line, line


def test_nmap_sees_tftp_on_its_own_port() -> None:
    """tftpd-hpa has no nmap product match: nmap reports an open port named tftp.

    The UDP scan only sends its TFTP payload to port 69, so this one test binds
    127.0.0.1:69 (loopback only) instead of a remapped port.
    """
    require(shutil.which("nmap") is not None, "nmap not installed")
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as probe:
        try:
            probe.bind(("127.0.0.1", 69))
        except OSError:
            require(False, "127.0.0.1:69/udp is taken")
    env = dict(os.environ, PYTHONPATH=f"{h.ROOT / 'operator'}:{os.environ.get('PYTHONPATH', '')}",
               SVC_CONFIG="{}")
    proc = subprocess.Popen([sys.executable, "-m", "decnet.emulators", "tftp", "--bind",
                             "127.0.0.1", "--port-map", "69=69"], env=env, cwd=h.ROOT,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        time.sleep(1.5)
        assert proc.poll() is None, proc.stderr.read() if proc.stderr else ""
        line = _nmap(69, udp=True)
        assert proc.poll() is None
    finally:
        proc.send_signal(signal.SIGTERM)
        out, _ = proc.communicate(timeout=10)
    assert line.startswith("69/udp") and " open " in line and "tftp" in line, line
    assert 'path="r7tftp.txt"' in out  # nmap's TFTP read request reached us and was reported
