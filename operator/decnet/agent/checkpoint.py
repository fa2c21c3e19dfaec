"""Where collection resumes after an agent restart: per container, the last line handled.

Docker's `since` filter has one-second granularity here and is inclusive, so a
resumed follower re-reads up to a second of lines; `keep` decides which of them
are new. A line is handled once it is in every matching sink's spool, and only
then does its timestamp enter the checkpoint: a crash in between re-reads the
line (a duplicate with the same id, which at-least-once allows), never skips it.

The store is one small JSON file in the agent's state directory, replaced
atomically (write + rename), so a SIGKILL leaves the old or the new checkpoint.
"""

from __future__ import annotations

import calendar
import dataclasses
import json
import os
import re
from collections.abc import Iterable, Mapping
from pathlib import Path

_TS = re.compile(r"^(\d{4})-(\d\d)-(\d\d)T(\d\d):(\d\d):(\d\d)(?:\.(\d{1,9}))?Z$")
# Ids remembered at the newest timestamp: more lines than this within one nanosecond
# of one container cannot happen (Docker stamps each line when it reads it).
MAX_IDS_AT_LAST = 64


def docker_ns(ts: str) -> int:
    """Docker's RFC 3339 (nano) log timestamp as integer nanoseconds since the epoch; -1 if bad."""

    m = _TS.match(ts)
    if m is None:
        return -1
    year, mon, day, hh, mm, ss = (int(x) for x in m.groups()[:6])
    frac = (m.group(7) or "").ljust(9, "0")
    seconds = calendar.timegm((year, mon, day, hh, mm, ss, 0, 0, 0))
    return seconds * 1_000_000_000 + int(frac)


@dataclasses.dataclass(frozen=True)
class Position:
    """The newest line handled from one container: its time and the ids seen at that time."""

    ns: int = -1
    ids: tuple[str, ...] = ()

    def since_seconds(self) -> int:
        """Docker's `since` (whole seconds, inclusive): never after the last handled line."""
        return max(0, self.ns // 1_000_000_000) if self.ns >= 0 else 0


def keep(position: Position, ns: int, line_id: str) -> bool:
    """Is a (re-)read line new? Older than the checkpoint: no; at its time: unless seen."""
    if ns < 0:
        return True
    if ns > position.ns:
        return True
    return ns == position.ns and line_id not in position.ids


def advance(position: Position, ns: int, line_id: str) -> Position:
    """The position after handling a line."""
    if ns > position.ns:
        return Position(ns, (line_id,))
    if ns == position.ns and line_id not in position.ids:
        return Position(ns, (*position.ids, line_id)[-MAX_IDS_AT_LAST:])
    return position


def forget(positions: Mapping[str, Position], live: Iterable[str]) -> dict[str, Position]:
    """Positions of containers that still exist; a removed container's output is gone."""
    alive = set(live)
    return {cid: p for cid, p in positions.items() if cid in alive}


class Store:
    """The checkpoint file: {container id: {"ns": int, "ids": [...]}}."""

    def __init__(self, path: Path) -> None:
        self.path = path

    def load(self) -> dict[str, Position]:
        try:
            raw = json.loads(self.path.read_text())
        except (OSError, ValueError):
            return {}
        out: dict[str, Position] = {}
        if not isinstance(raw, dict):
            return out
        for cid, item in raw.items():
            try:
                out[str(cid)] = Position(int(item["ns"]), tuple(str(i) for i in item["ids"]))
            except (KeyError, TypeError, ValueError):
                continue
        return out

    def save(self, positions: Mapping[str, Position]) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        tmp = self.path.with_suffix(".tmp")
        data = {cid: {"ns": p.ns, "ids": list(p.ids)} for cid, p in positions.items()}
        with open(tmp, "w") as handle:
            json.dump(data, handle, separators=(",", ":"))
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, self.path)
