"""`nmap -sV` names the product each mail, messaging and name service claims (loopback only).

Each emulator runs on free loopback ports; nmap scans only that port. MQTT is not here:
nmap sends its CONNECT probe to 1883 only and has no broker signature to name (on a
remapped port it took nearly 4 minutes with --version-all to print just "mqtt"); the
deckies' e2e scan reaches it on its real port, and real MQTT clients test the protocol.
"""

from __future__ import annotations

import re
import shutil
import subprocess

import pytest
from tests import emulator_harness as h
from tests import probes
from tests.support import require

probes.load_all()

# service, port, proto, extra nmap flags, what the port line must match
CASES = [
    ("smtp", 25, "tcp", [], r"open\s+smtp\s+Postfix smtpd"),
    ("smtp-relay", 25, "tcp", [], r"open\s+smtp\s+Postfix smtpd"),
    ("pop3", 110, "tcp", [], r"open\s+pop3\s+Dovecot pop3d"),
    ("imap", 143, "tcp", [], r"open\s+imap\s+Dovecot imapd"),
    ("sip", 5060, "udp", [], r"open\s+sip-proxy\s+Asterisk PBX 16\.28\.0"),
    ("sip", 5060, "tcp", [], r"open\s+sip\s+Asterisk 16\.28\.0"),
    ("dns", 53, "udp", [], r"open\s+domain\s+ISC BIND 9\.18\.28-1~deb12u2 \(Debian Linux\)"),
    ("dns", 53, "tcp", [], r"open\s+domain\s+ISC BIND 9\.18\.28-1~deb12u2 \(Debian Linux\)"),
]


def scan(port: int, proto: str, extra: list[str]) -> str:
    argv = ["nmap", "-sV", "-Pn", "-n", "-p", str(port), *extra, "127.0.0.1"]
    if proto == "udp":
        argv.insert(1, "-sU")
    out = subprocess.run(argv, capture_output=True, text=True, timeout=300).stdout
    lines = [ln for ln in out.splitlines() if ln.startswith(f"{port}/{proto}")]
    assert lines, out
    return lines[0]


@pytest.mark.parametrize(("service", "port", "proto", "extra", "pattern"), CASES,
                         ids=[f"{c[0]}-{c[2]}" for c in CASES])
def test_nmap_names_the_product(service: str, port: int, proto: str, extra: list[str],
                                pattern: str) -> None:
    require(shutil.which("nmap") is not None, "nmap (Debian package nmap) is not installed")
    with h.run(service) as emu:
        line = scan(emu.port(port), proto, extra)
    assert re.search(pattern, line), line
    if probes.NMAP.get(service, (0, "", ""))[1] == proto:
        assert probes.NMAP[service][2].lower() in line.lower(), line


def test_nmap_follows_the_configured_version() -> None:
    require(shutil.which("nmap") is not None, "nmap (Debian package nmap) is not installed")
    with h.run("dns", {"version": "9.16.48-Ubuntu"}) as emu:
        line = scan(emu.port(53), "tcp", [])
    assert re.search(r"ISC BIND 9\.16\.48 \(Ubuntu Linux\)", line), line


@pytest.mark.parametrize(("service", "verdict"), [
    ("smtp", "Server doesn't seem to be an open relay, all tests failed"),
    ("smtp-relay", "Server is an open relay (16/16 tests)"),
])
def test_nmap_relay_check_agrees_with_the_mode(service: str, verdict: str) -> None:
    """nmap's smtp-open-relay tries 16 address tricks (percent hack, bang paths, ...)."""
    require(shutil.which("nmap") is not None, "nmap (Debian package nmap) is not installed")
    with h.run(service) as emu:
        out = subprocess.run(["nmap", "-sV", "-Pn", "-n", "-p", str(emu.port(25)), "--script",
                              "smtp-open-relay", "127.0.0.1"],
                             capture_output=True, text=True, timeout=300).stdout
        assert verdict in out, out
        if service == "smtp":
            assert len(emu.find("request", result="relay_denied")) >= 16
