"""Entry point: `python3 -m <package> SERVICE [--bind HOST] [--port-map 22=2222,...]`.

In the image each service also has a launcher named like the daemon it stands in
for (/usr/sbin/sshd, /usr/sbin/vsftpd, ...) that calls `run(SERVICE)`, so a process
list inside the container shows what an attacker expects to see.
"""

from __future__ import annotations

import argparse
import asyncio
import importlib
import signal
from collections.abc import Sequence
from types import ModuleType

from . import core

# Service name (as in the ServiceTemplate) -> module under services/.
SERVICES: dict[str, str] = {
    "conpot": "conpot",
    "dns": "dns",
    "docker-api": "docker_api",
    "elasticsearch": "elasticsearch",
    "ftp": "ftp",
    "http": "http",
    "https": "https",
    "imap": "imap",
    "k8s": "k8s",
    "ldap": "ldap",
    "llmnr": "llmnr",
    "mongodb": "mongodb",
    "mqtt": "mqtt",
    "mssql": "mssql",
    "mysql": "mysql",
    "pop3": "pop3",
    "postgres": "postgres",
    "rdp": "rdp",
    "redis": "redis",
    "sip": "sip",
    "smb": "smb",
    "smtp": "smtp",
    "smtp-relay": "smtp_relay",
    "snmp": "snmp",
    "ssh": "ssh",
    "telnet": "telnet",
    "tftp": "tftp",
    "vnc": "vnc",
}


def module(service: str) -> ModuleType:
    return importlib.import_module(f".services.{SERVICES[service]}", __package__)


def _port_map(text: str) -> dict[int, int]:
    mapping: dict[int, int] = {}
    for item in filter(None, (p.strip() for p in text.split(","))):
        wanted, _, actual = item.partition("=")
        mapping[int(wanted)] = int(actual)
    return mapping


def _parse(argv: Sequence[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(add_help=True)
    p.add_argument("service", choices=sorted(SERVICES))
    p.add_argument("--bind", default="0.0.0.0")
    p.add_argument("--port-map", default="", help="well-known=actual pairs, for tests")
    p.add_argument("--hostname", default=None, help="hostname in events (default: the host's)")
    args, _unknown = p.parse_known_args(argv)
    return args


async def _serve(ctx: core.Context, mod: ModuleType) -> None:
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    await mod.serve(ctx)
    await stop.wait()


def main(argv: Sequence[str] | None = None) -> None:
    args = _parse(argv)
    mod = module(args.service)
    ctx = core.Context(
        service=args.service,
        config=core.load_config(mod.DEFAULTS),
        emitter=core.Emitter(args.service, args.hostname),
        host=args.bind,
        port_map=_port_map(args.port_map),
    )
    asyncio.run(_serve(ctx, mod))


def run(service: str) -> None:
    """What a launcher calls: the daemon's own flags (-D, -f ...) are ignored."""
    main([service])
