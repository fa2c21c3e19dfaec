"""Every registered probe (a real client) against its emulator on loopback."""

from __future__ import annotations

import pytest
from tests import emulator_harness as h
from tests import probes

ALL = probes.load_all()


@pytest.mark.parametrize("service", sorted(ALL))
def test_real_client_exchange_is_reported(service: str) -> None:
    with h.run(service) as emu:
        for expect in ALL[service]("127.0.0.1", emu.port):
            emu.wait_event(expect.kind, **expect.fields)
        assert emu.alive()
