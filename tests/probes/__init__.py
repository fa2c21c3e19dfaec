"""What a real client does to each service, shared by the loopback and the decky tests.

Each module here registers, per service, a probe: a function that talks to the
service at `host` with a real client (`port(22)` gives where the service's port 22
is reachable: remapped on loopback, itself on a decky) and returns what the
service's events must show afterwards. `NMAP` holds, per service, a word that
`nmap -sV` must print for the port (the product the service claims to be).

    tests/integration/emulators/*  run a probe against a local emulator process
    tests/e2e/test_emulators*.py   run every probe against deployed deckies
"""

from __future__ import annotations

import dataclasses
import importlib
import pkgutil
from collections.abc import Callable

Port = Callable[[int], int]


@dataclasses.dataclass(frozen=True)
class Expect:
    """An event of `kind` whose fields include `fields` must follow the probe."""

    kind: str
    fields: dict[str, str]


Probe = Callable[[str, Port], list[Expect]]
PROBES: dict[str, Probe] = {}
# service -> (port, proto, a word nmap -sV must print for that port, case-insensitive)
NMAP: dict[str, tuple[int, str, str]] = {}


def probe(service: str) -> Callable[[Probe], Probe]:
    def register(fn: Probe) -> Probe:
        PROBES[service] = fn
        return fn

    return register


def load_all() -> dict[str, Probe]:
    for info in pkgutil.iter_modules(__path__):
        importlib.import_module(f"{__name__}.{info.name}")
    return PROBES
