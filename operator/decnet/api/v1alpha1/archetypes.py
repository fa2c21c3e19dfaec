"""DECNET's archetypes and built-in services, with service names as DNS labels.

Service names become container names, labels and ServiceTemplate names, so DECNET's
`docker_api` and `smtp_relay` are spelled `docker-api` and `smtp-relay` here.
"""

from __future__ import annotations

# Archetype -> its default service pool (also the mutation pool of a decky using it).
ARCHETYPES: dict[str, list[str]] = {
    "windows-workstation": ["smb", "rdp"],
    "windows-server": ["smb", "rdp", "ldap"],
    "domain-controller": ["ldap", "smb", "rdp", "llmnr"],
    "linux-server": ["ssh", "http"],
    "web-server": ["http", "ftp"],
    "database-server": ["mysql", "postgres", "redis"],
    "mail-server": ["smtp", "pop3", "imap"],
    "file-server": ["smb", "ftp", "ssh"],
    "printer": ["snmp", "ftp"],
    "iot-device": ["mqtt", "snmp", "telnet"],
    "industrial-control": ["conpot", "snmp"],
    "voip-server": ["sip"],
    "monitoring-node": ["snmp", "ssh"],
    "devops-host": ["docker-api", "ssh", "k8s"],
    "deaddeck": ["ssh"],
}

# OS family per archetype (DECNET uses it for fingerprints).
ARCHETYPE_OS: dict[str, str] = {
    "windows-workstation": "windows",
    "windows-server": "windows_server",
    "domain-controller": "windows_server",
    "linux-server": "linux",
    "web-server": "linux",
    "database-server": "linux",
    "mail-server": "linux",
    "file-server": "linux",
    "printer": "embedded",
    "iot-device": "embedded",
    "industrial-control": "embedded",
    "voip-server": "linux",
    "monitoring-node": "linux",
    "devops-host": "linux",
    "deaddeck": "linux",
}

# The one service that runs once per node, never per decky.
SNIFFER = "sniffer"
FLEET_SINGLETONS: frozenset[str] = frozenset({SNIFFER})

# The 28 per-decky services, sorted.
PER_DECKY_SERVICES: tuple[str, ...] = (
    "conpot",
    "dns",
    "docker-api",
    "elasticsearch",
    "ftp",
    "http",
    "https",
    "imap",
    "k8s",
    "ldap",
    "llmnr",
    "mongodb",
    "mqtt",
    "mssql",
    "mysql",
    "pop3",
    "postgres",
    "rdp",
    "redis",
    "sip",
    "smb",
    "smtp",
    "smtp-relay",
    "snmp",
    "ssh",
    "telnet",
    "tftp",
    "vnc",
)

# Every built-in service: the 28 per-decky ones plus the fleet-singleton sniffer.
BUILTIN_SERVICES: tuple[str, ...] = (*PER_DECKY_SERVICES, SNIFFER)
