"""DNS as dig sees it and LLMNR as a Windows host or a poisoner's scanner sees it."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import uuid

import dns.exception
import dns.message
import dns.query
from tests import emulator_harness as h
from tests.support import require


def dig(port: int, *args: str) -> str:
    return subprocess.run(["dig", "@127.0.0.1", "-p", str(port), "+time=5", "+tries=3", *args],
                          capture_output=True, text=True, timeout=60).stdout


def test_dig_sees_the_configured_zone_and_version() -> None:
    require(shutil.which("dig") is not None, "dig (Debian package dnsutils)")
    config = {"zone": "corp.local", "records": ["@ NS ns1", "ns1 A 10.9.0.53", "dc01 A 10.9.0.10",
                                                "@ MX 5 mail", "mail A 10.9.0.25"],
              "version": "9.16.1-Ubuntu"}
    with h.run("dns", config) as emu:
        port = emu.port(53)
        assert "dc01.corp.local.\t3600\tIN\tA\t10.9.0.10" in dig(port, "+noall", "+answer",
                                                                 "dc01.corp.local")
        assert '"9.16.1-Ubuntu"' in dig(port, "+short", "-c", "CH", "-t", "TXT", "version.bind")
        assert "status: NXDOMAIN" in dig(port, "+tcp", "secret.corp.local")
        assert "status: REFUSED" in dig(port, "www.google.com")
        assert "dc01.corp.local." in dig(port, "+short", "-x", "10.9.0.10")
        transfer = dig(port, "corp.local", "AXFR")
        assert "Transfer failed" in transfer or "REFUSED" in transfer, transfer
        emu.wait_event("query", qname="dc01.corp.local", qtype="A", rcode="NOERROR")
        emu.wait_event("query", qname="secret.corp.local", proto="tcp", rcode="NXDOMAIN")
        axfr = emu.wait_event("query", qtype="AXFR")
        assert axfr.get("rcode") == "REFUSED" and axfr.message == "zone transfer refused"


def test_llmnr_answers_its_own_name_and_logs_every_query() -> None:
    with h.run("llmnr", {"aliases": ["FILESRV"]}, hostname="ws-07") as emu:
        port = emu.port(5355)

        def ask(name: str, rtype: str = "A") -> dns.message.Message | None:
            query = dns.message.make_query(name, rtype)
            query.flags = 0
            for _ in range(3):
                try:
                    return dns.query.udp(query, "127.0.0.1", port=port, timeout=2)
                except dns.exception.Timeout:
                    continue
            return None

        own = ask("WS-07")
        assert own is not None and own.answer[0][0].to_text() == "127.0.0.1"
        alias = ask("filesrv")
        assert alias is not None and alias.answer
        assert ask("wpad") is None  # never answered: poisoning wpad is the attacker's move
        emu.wait_event("query", qname="WS-07", qtype="A", answered="yes", proto="udp")
        assert len(emu.find("query", qname="wpad", answered="no")) >= 1


def test_llmnr_joins_the_multicast_group_in_a_network_namespace() -> None:
    """A LAN in miniature: a netns with one multicast-capable interface, a query to 224.0.0.252."""
    require(os.geteuid() == 0 and shutil.which("ip") is not None, "root and iproute2 (netns)")
    ns = f"llmnr-{uuid.uuid4().hex[:8]}"

    def ip(*args: str) -> None:
        subprocess.run(["ip", *args], check=True, capture_output=True, timeout=30)

    ip("netns", "add", ns)
    proc = None
    try:
        ip("-n", ns, "link", "add", "lan0", "type", "veth", "peer", "name", "lan1")
        ip("-n", ns, "link", "set", "lan1", "up")
        ip("-n", ns, "link", "set", "lan0", "multicast", "on")
        ip("-n", ns, "addr", "add", "10.77.0.5/24", "dev", "lan0")
        ip("-n", ns, "link", "set", "lan0", "up")
        ip("-n", ns, "link", "set", "lo", "up")
        ip("-n", ns, "route", "add", "224.0.0.0/4", "dev", "lan0")
        env = {**os.environ, "PYTHONPATH": str(h.ROOT / "operator"), "PYTHONUNBUFFERED": "1",
               "SVC_CONFIG": json.dumps({})}
        proc = subprocess.Popen(
            ["ip", "netns", "exec", ns, sys.executable, "-m", "decnet.emulators", "llmnr",
             "--hostname", "WS-LAN"], env=env, stdout=subprocess.PIPE, text=True)
        asker = (
            "import socket, sys, dns.message\n"
            "q = dns.message.make_query('ws-lan', 'A'); q.flags = 0\n"
            "s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM); s.settimeout(2)\n"
            "for _ in range(10):\n"
            "    s.sendto(q.to_wire(), ('224.0.0.252', 5355))\n"
            "    try:\n"
            "        data, addr = s.recvfrom(4096)\n"
            "    except TimeoutError:\n"
            "        continue\n"
            "    print(addr[0], dns.message.from_wire(data).answer[0][0]); sys.exit(0)\n"
            "sys.exit(1)\n")
        out = subprocess.run(["ip", "netns", "exec", ns, sys.executable, "-c", asker],
                             capture_output=True, text=True, timeout=60)
        # the answer comes by unicast from the host's LAN address, and names that address
        assert out.returncode == 0 and out.stdout.split() == ["10.77.0.5", "10.77.0.5"], out
    finally:
        if proc is not None:
            proc.send_signal(signal.SIGTERM)
            proc.wait(timeout=10)
        subprocess.run(["ip", "netns", "del", ns], capture_output=True, timeout=30)
    assert proc is not None and proc.stdout is not None
    lines = proc.stdout.read()
    assert 'qname="ws-lan"' in lines and 'src_ip="10.77.0.5"' in lines and 'answered="yes"' in lines
