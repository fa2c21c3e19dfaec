"""Archetype personas: what makes a decky look like the machine its archetype names.

An attacker tells a Windows workstation from a Linux container by small things:
the TTL and TCP options of its packets, the vendor of its MAC address, its
hostname, and whether its web server says IIS or Apache. This module is the one
table of those facts per archetype, and pure functions over it:

- `sysctls(archetype)`: per-netns sysctls set on the decky's base at create
  (the service containers share its network namespace);
- `packet_persona(archetype)`: the header rewrite the base runs for what no sysctl
  sets (Windows' TCP option order, IP IDs...: see decnet.shaper), or "";
- `mac_address(archetype, seed)`: a MAC with a vendor prefix that fits, never
  Docker's own 02:42 prefix; stable for one decky (seeded by namespace/name);
- `default_hostname(archetype, seed)`: the name the machine would have out of the
  box (DESKTOP-XXXXXXX, WIN-XXXXXXXXXXX, web03...), used when spec.hostname is empty;
- `service_config(archetype, service, hostname, user)`: the service's config with
  the persona's defaults under the user's serviceConfig (the user always wins).

Keys of service defaults are the emulators' DEFAULTS keys (tests check them);
a default may name `{hostname}`, filled with the decky's hostname.
"""

from __future__ import annotations

import dataclasses
import hashlib
import re
import string
from collections.abc import Mapping, Sequence
from typing import Any

from decnet.api.v1alpha1 import archetypes

WINDOWS = "windows"
WINDOWS_SERVER = "windows_server"
LINUX = "linux"
EMBEDDED = "embedded"

# Per-netns sysctls that take effect at container create (see the test bed's persona
# facts). TTL is what `nmap -O` and every passive fingerprinter look at first; small
# embedded stacks skip window scaling and SACK. Windows 10 answers timestamps with a
# 1 kHz clock and no per-connection offset (2, not Linux's 1), never negotiates ECN,
# and scales its window by 8 (the kernel picks 8 from a tcp_rmem maximum of 8 MiB);
# the packet persona does the rest.
_SYSCTLS: dict[str, dict[str, str]] = {
    WINDOWS: {
        "net.ipv4.ip_default_ttl": "128",
        "net.ipv4.tcp_timestamps": "2",
        "net.ipv4.tcp_window_scaling": "1",
        "net.ipv4.tcp_sack": "1",
        "net.ipv4.tcp_ecn": "0",
        "net.ipv4.tcp_rmem": "4096 131072 8388608",
    },
    LINUX: {
        "net.ipv4.ip_default_ttl": "64",
        "net.ipv4.tcp_timestamps": "1",
        "net.ipv4.tcp_window_scaling": "1",
        "net.ipv4.tcp_sack": "1",
    },
    EMBEDDED: {
        "net.ipv4.ip_default_ttl": "255",
        "net.ipv4.tcp_timestamps": "0",
        "net.ipv4.tcp_window_scaling": "0",
        "net.ipv4.tcp_sack": "0",
    },
}
_SYSCTLS[WINDOWS_SERVER] = _SYSCTLS[WINDOWS]

# Vendor prefixes (OUIs as nmap's nmap-mac-prefixes names them).
DELL = ("00:14:22", "18:66:DA", "F8:BC:12")
HP = ("00:1B:78", "3C:D9:2B", "9C:8E:99")
LENOVO = ("10:C5:95", "80:96:21", "A4:11:94")
INTEL = ("00:1B:21", "3C:FD:FE", "A0:36:9F")
SUPERMICRO = ("00:25:90", "AC:1F:6B")
BROTHER = ("00:80:77", "30:05:5C")
SIEMENS = ("00:0E:8C", "00:1B:1B", "28:63:36")
ESPRESSIF = ("24:0A:C4",)
RASPBERRY_PI = ("B8:27:EB", "DC:A6:32")
POLYCOM = ("00:04:F2",)

_WORKSTATION_OUIS = DELL + HP + LENOVO + INTEL
_SERVER_OUIS = DELL + HP + INTEL + SUPERMICRO

# Hostname patterns: "{rand7}" 7 upper-case letters/digits (Windows 10 setup names
# DESKTOP-XXXXXXX), "{rand11}" 11 of them (Server setup names WIN-XXXXXXXXXXX),
# "{nn}" a two-digit number, "{mac6}" the last 6 hex digits of the MAC (printers).
_UPPER = string.ascii_uppercase + string.digits


@dataclasses.dataclass(frozen=True)
class Persona:
    os: str
    ouis: tuple[str, ...]
    hostnames: tuple[str, ...]
    # service -> config defaults merged under the user's serviceConfig
    services: Mapping[str, Mapping[str, Any]] = dataclasses.field(default_factory=dict)


_IIS = {"serverHeader": "Microsoft-IIS/10.0", "title": "IIS Windows Server"}
_WIN10 = "10.0.19045"
_WIN2019 = "10.0.17763"
_NGINX = {"serverHeader": "nginx/1.22.1"}
_HP_PRINTER_WEB = "HP HTTP Server; HP LaserJet Pro M404dn - W1A53A"
_JETDIRECT = "HP ETHERNET MULTI-ENVIRONMENT,ROM none,JETDIRECT,JD153,EEPROM JSI24090"
_DEBIAN_SSH = "SSH-2.0-OpenSSH_9.2p1 Debian-2+deb12u3"
_UBUNTU_SSH = "SSH-2.0-OpenSSH_8.9p1 Ubuntu-3ubuntu0.10"
_LINUX_SNMP = {
    "sysDescr": "Linux {hostname} 6.1.0-18-amd64 #1 SMP PREEMPT_DYNAMIC Debian 6.1.76-1 "
    "(2024-02-01) x86_64",
    "sysObjectID": "1.3.6.1.4.1.8072.3.2.10",
    "sysName": "{hostname}",
}


def _windows_snmp(build: str, oid: str) -> dict[str, Any]:
    return {
        "sysDescr": "Hardware: Intel64 Family 6 Model 158 Stepping 10 AT/AT COMPATIBLE - "
        f"Software: Windows Version 6.3 (Build {build.rsplit('.', 1)[-1]} Multiprocessor Free)",
        "sysObjectID": oid,
        "sysName": "{hostname}",
    }


_WINDOWS_WS = {
    "http": {**_IIS, "title": "IIS Windows"},
    "smb": {"hostname": "{hostname}", "osVersion": _WIN10, "workgroup": "WORKGROUP"},
    "snmp": _windows_snmp(_WIN10, "1.3.6.1.4.1.311.1.1.3.1.1"),
    "ssh": {"version": "SSH-2.0-OpenSSH_for_Windows_8.1"},
}
_WINDOWS_SRV = {
    "http": _IIS,
    "https": _IIS,
    "smb": {"hostname": "{hostname}", "osVersion": _WIN2019, "workgroup": "WORKGROUP"},
    "ldap": {"hostname": "{hostname}", "osVersion": _WIN2019},
    "snmp": _windows_snmp(_WIN2019, "1.3.6.1.4.1.311.1.1.3.1.2"),
    "ssh": {"version": "SSH-2.0-OpenSSH_for_Windows_8.1"},
}
_DC = {
    **_WINDOWS_SRV,
    "smb": {
        "hostname": "{hostname}",
        "osVersion": _WIN2019,
        "workgroup": "CORP",
        "dnsDomain": "corp.local",
    },
    "ldap": {"hostname": "{hostname}", "osVersion": _WIN2019, "domain": "corp.local"},
    "snmp": _windows_snmp(_WIN2019, "1.3.6.1.4.1.311.1.1.3.1.3"),
}
_DEBIAN = {
    "ssh": {"version": _DEBIAN_SSH},
    "http": {"serverHeader": "Apache/2.4.57 (Debian)"},
    "smb": {"hostname": "{hostname}"},
    "snmp": _LINUX_SNMP,
}
_UBUNTU = {
    "ssh": {"version": _UBUNTU_SSH},
    "http": {"serverHeader": "Apache/2.4.52 (Ubuntu)"},
    "snmp": {
        **_LINUX_SNMP,
        "sysDescr": "Linux {hostname} 5.15.0-105-generic #115-Ubuntu SMP Mon Apr 15 09:52:04 "
        "UTC 2024 x86_64",
    },
    "docker-api": {"operatingSystem": "Ubuntu 22.04.4 LTS", "kernelVersion": "5.15.0-105-generic"},
}

PERSONAS: dict[str, Persona] = {
    "windows-workstation": Persona(WINDOWS, _WORKSTATION_OUIS, ("DESKTOP-{rand7}",), _WINDOWS_WS),
    "windows-server": Persona(WINDOWS_SERVER, _SERVER_OUIS, ("WIN-{rand11}",), _WINDOWS_SRV),
    "domain-controller": Persona(WINDOWS_SERVER, _SERVER_OUIS, ("DC{nn}",), _DC),
    "linux-server": Persona(LINUX, _SERVER_OUIS, ("srv{nn}", "app{nn}", "node{nn}"), _DEBIAN),
    "web-server": Persona(
        LINUX,
        _SERVER_OUIS,
        ("web{nn}", "www{nn}"),
        {**_DEBIAN, "http": _NGINX, "https": _NGINX},
    ),
    "database-server": Persona(LINUX, _SERVER_OUIS, ("db{nn}", "sql{nn}"), _DEBIAN),
    "mail-server": Persona(LINUX, _SERVER_OUIS, ("mail{nn}", "mx{nn}"), _DEBIAN),
    "file-server": Persona(LINUX, _SERVER_OUIS, ("files{nn}", "nas{nn}"), _DEBIAN),
    "printer": Persona(
        EMBEDDED,
        HP + BROTHER,
        ("NPI{mac6}",),
        {
            "http": {"serverHeader": _HP_PRINTER_WEB, "title": ""},
            "snmp": {
                "sysDescr": _JETDIRECT,
                "sysObjectID": "1.3.6.1.4.1.11.2.3.9.1",
                "sysName": "{hostname}",
            },
        },
    ),
    "iot-device": Persona(
        EMBEDDED,
        ESPRESSIF + RASPBERRY_PI,
        ("cam-{mac6}", "sensor-{mac6}"),
        {
            "snmp": {
                "sysDescr": "Linux {hostname} 4.14.98 #1 PREEMPT armv7l",
                "sysName": "{hostname}",
            }
        },
    ),
    "industrial-control": Persona(
        EMBEDDED,
        SIEMENS,
        ("plc{nn}",),
        {
            "snmp": {
                "sysDescr": "Siemens, SIMATIC, S7-300",
                "sysObjectID": "1.3.6.1.4.1.4329.6.1.2",
                "sysName": "{hostname}",
            }
        },
    ),
    "voip-server": Persona(LINUX, _SERVER_OUIS + POLYCOM, ("pbx{nn}", "voip{nn}"), _DEBIAN),
    "monitoring-node": Persona(LINUX, _SERVER_OUIS, ("mon{nn}", "nagios{nn}"), _DEBIAN),
    "devops-host": Persona(LINUX, _SERVER_OUIS, ("build{nn}", "ci{nn}", "k8s{nn}"), _UBUNTU),
    "deaddeck": Persona(LINUX, _SERVER_OUIS, ("srv{nn}", "backup{nn}"), _DEBIAN),
}
# A decky without an archetype: a plain Linux host on common server hardware.
DEFAULT = Persona(LINUX, _SERVER_OUIS, (), {})


def persona(archetype: str | None) -> Persona:
    return PERSONAS.get(archetype or "", DEFAULT)


def os_family(archetype: str | None) -> str:
    return archetypes.ARCHETYPE_OS.get(archetype or "", LINUX)


def sysctls(archetype: str | None) -> dict[str, str]:
    return dict(_SYSCTLS[os_family(archetype)])


# OS family -> the profile of decnet.shaper the base runs (`--profile`).
_PACKET_PERSONAS = {WINDOWS: "windows", WINDOWS_SERVER: "windows"}


def packet_persona(archetype: str | None) -> str:
    """The packet persona's profile for the archetype, or "" when the kernel's own
    packets already fit (Linux, embedded)."""
    return _PACKET_PERSONAS.get(os_family(archetype), "")


def _digest(seed: str, purpose: str) -> bytes:
    return hashlib.sha256(f"{purpose}\0{seed}".encode()).digest()


def mac_address(archetype: str | None, seed: str) -> str:
    """A vendor MAC for the archetype, the same for the same seed (e.g. "namespace/name")."""
    raw = _digest(seed, "mac")
    ouis = persona(archetype).ouis
    oui = ouis[raw[0] % len(ouis)]
    return f"{oui}:{raw[1]:02X}:{raw[2]:02X}:{raw[3]:02X}".lower()


def _random(raw: bytes, length: int) -> str:
    number = int.from_bytes(raw, "big")
    out = []
    for _ in range(length):
        number, index = divmod(number, len(_UPPER))
        out.append(_UPPER[index])
    return "".join(out)


def default_hostname(archetype: str | None, seed: str, fallback: str) -> str:
    """The out-of-the-box hostname for the archetype; `fallback` (the object name) when it
    has no pattern. A numbered pattern (web07) takes the number the object's name ends with
    (web-07 stays 07, so deckies named apart keep distinct hostnames), else one from the seed."""
    patterns = persona(archetype).hostnames
    if not patterns:
        return fallback
    raw = _digest(seed, "hostname")
    pattern = patterns[raw[0] % len(patterns)]
    mac = mac_address(archetype, seed).replace(":", "").upper()
    numbers = re.findall(r"\d+", fallback)
    number = numbers[-1][-3:].zfill(2) if numbers else f"{raw[2] % 99 + 1:02d}"
    return pattern.format(
        rand7=_random(raw[1:], 7),
        rand11=_random(raw[1:], 11),
        nn=number,
        mac6=mac[-6:],
    )


def service_defaults(archetype: str | None, service: str, hostname: str) -> dict[str, Any]:
    """The persona's defaults for one service, with {hostname} filled in."""
    defaults = persona(archetype).services.get(service) or {}
    return {
        key: value.replace("{hostname}", hostname) if isinstance(value, str) else value
        for key, value in defaults.items()
    }


def service_config(
    archetype: str | None, service: str, hostname: str, user: Mapping[str, Any] | None
) -> dict[str, Any]:
    """The persona's defaults with the user's serviceConfig on top (user keys always win)."""
    merged = service_defaults(archetype, service, hostname)
    merged.update(user or {})
    return merged


# Services that would listen on the same port when they share a decky: the first one's
# listener is switched off by a config default, and the second answers (with the persona's
# identity). conpot carries its own SNMP agent on 161/udp, which the snmp service also holds.
SHARED_PORT_DEFAULTS: dict[tuple[str, str], dict[str, Any]] = {
    ("conpot", "snmp"): {"snmp": False},
}


def sharing_defaults(service: str, services: Sequence[str]) -> dict[str, Any]:
    """Defaults that keep `service` off the ports another service of the decky holds."""
    merged: dict[str, Any] = {}
    for (own, other), defaults in SHARED_PORT_DEFAULTS.items():
        if own == service and other in services:
            merged.update(defaults)
    return merged
