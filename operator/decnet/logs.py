"""One log stream per process, the same in the operator and the agent.

A log collector reads one format per container. Our own events (structlog) and the
libraries' stdlib records (kopf, lightkube, httpx, aiohttp, the Docker SDK, warnings,
an uncaught exception in a thread) all go through one structlog ProcessorFormatter on
one handler: the same renderer (JSON by default, console for humans) and the same
stream (stderr) for every line, with `event`, `level`, `timestamp` and `logger`.

Our event names are dotted lowercase, `<subject>.<what_happened>` (`reconcile.failed`,
`firewall.synced`); `EVENT_NAME` is the rule a unit test holds the code to. A library's
record keeps its message as the event.
"""

from __future__ import annotations

import logging
import re
import sys
import threading
from collections.abc import Sequence
from types import TracebackType
from typing import Any, TextIO

import structlog

FORMATS = ("json", "console")
EVENT_NAME = re.compile(r"^[a-z][a-z0-9_]*(\.[a-z][a-z0-9_]*)+$")
# Libraries whose INFO lines are one per request or per handler call: at WARNING they
# still report trouble. Our own loggers are all under "decnet".
OWN = "decnet"
# Library loggers whose INFO lines an operator person needs: kopf's leader election
# ("Pausing operations in favour of ...", "Resuming operations ...").
AT_OUR_LEVEL = ("kopf._core.engines.peering",)


def _shared() -> list[Any]:
    return [
        structlog.contextvars.merge_contextvars,
        structlog.stdlib.add_log_level,
        structlog.stdlib.add_logger_name,
        structlog.processors.TimeStamper(fmt="iso", utc=True),
    ]


def renderer(fmt: str) -> Any:
    if fmt not in FORMATS:
        raise ValueError(f"log format {fmt!r}: one of {', '.join(FORMATS)}")
    return (
        structlog.dev.ConsoleRenderer() if fmt == "console" else structlog.processors.JSONRenderer()
    )


def configure(
    level: str = "INFO",
    fmt: str = "json",
    stream: TextIO | None = None,
    libraries_level: str = "WARNING",
) -> logging.Handler:
    """Route structlog and every stdlib logger to one handler on `stream` (stderr)."""
    level = level.upper()
    formatter = structlog.stdlib.ProcessorFormatter(
        foreign_pre_chain=[
            *_shared(),
            structlog.stdlib.ExtraAdder(allow=("k8s_ref",)),  # kopf's object reference
        ],
        processors=[
            structlog.stdlib.ProcessorFormatter.remove_processors_meta,
            structlog.processors.format_exc_info,
            renderer(fmt),
        ],
    )
    handler = logging.StreamHandler(stream if stream is not None else sys.stderr)
    handler.setFormatter(formatter)
    root = logging.getLogger()
    for old in list(root.handlers):
        root.removeHandler(old)
    root.addHandler(handler)
    root.setLevel(libraries_level.upper())
    for name in (OWN, *AT_OUR_LEVEL):
        logging.getLogger(name).setLevel(level)
    logging.captureWarnings(True)
    structlog.configure(
        processors=[*_shared(), structlog.stdlib.ProcessorFormatter.wrap_for_formatter],
        logger_factory=structlog.stdlib.LoggerFactory(),
        wrapper_class=structlog.make_filtering_bound_logger(logging.getLevelName(level)),
        cache_logger_on_first_use=True,
    )
    threading.excepthook = _thread_crashed
    sys.excepthook = _crashed
    return handler


def _thread_crashed(args: threading.ExceptHookArgs) -> None:
    if args.exc_type is SystemExit:
        return
    exc_info = (args.exc_type, args.exc_value or args.exc_type(), args.exc_traceback)
    thread = args.thread.name if args.thread is not None else None
    structlog.get_logger(OWN).error("thread.crashed", thread=thread, exc_info=exc_info)


def _crashed(exc_type: type[BaseException], value: BaseException, tb: TracebackType | None) -> None:
    structlog.get_logger(OWN).error("process.crashed", exc_info=(exc_type, value, tb))


def bad_event_names(names: Sequence[str]) -> list[str]:
    """The names that break the one style (dotted lowercase)."""
    return [n for n in names if not EVENT_NAME.match(n)]
