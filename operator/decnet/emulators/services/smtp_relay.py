"""An open SMTP relay: the `smtp` server with relaying on, the bait spammers look for.

Spammers and their scanners test a host by sending one message to a foreign
address and checking for "250 Ok: queued". This service says yes to every
recipient and every AUTH, reports each relay attempt as a `data` event (envelope,
subject, size, sha256), and delivers nothing. It is the `smtp` module's state
machine with other defaults, so the two never drift apart.
"""

from __future__ import annotations

from typing import Any

from .. import core
from . import smtp

PORTS = list(smtp.PORTS)
DEFAULTS: dict[str, Any] = {**smtp.DEFAULTS, "relay": True, "acceptAllAuth": True}


async def serve(ctx: core.Context) -> None:
    await smtp.serve(ctx)
