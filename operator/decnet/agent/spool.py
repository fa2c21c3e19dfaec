"""A bounded on-disk queue per sink: events wait here while the sink is unreachable.

Append-only segment files (one JSON record per line) and a cursor file (segment,
byte offset) marking the first record not yet delivered. Delivery reads from the
cursor and acknowledges by moving it; a segment wholly behind the cursor is
deleted. When the bytes on disk exceed the cap, the oldest segment goes first and
its undelivered records are counted as dropped: newest events matter most to a
security team watching a live attack, and the count says what was lost.

The cursor file is replaced atomically; records are written with one `write`
per batch and flushed (not fsynced: an agent SIGKILL keeps the page cache, a
node power loss may lose the last moments, which a spool cannot promise anyway).
"""

from __future__ import annotations

import dataclasses
import json
import os
import threading
from collections.abc import Iterable
from pathlib import Path

SEGMENT_BYTES = 4 * 1024 * 1024
_SUFFIX = ".seg"


@dataclasses.dataclass(frozen=True)
class Batch:
    """Records read from the cursor, and the position just after them."""

    lines: tuple[str, ...]
    end: tuple[int, int]


def _segment_name(number: int) -> str:
    return f"{number:012d}{_SUFFIX}"


class Spool:
    def __init__(self, directory: Path, cap_bytes: int, segment_bytes: int = SEGMENT_BYTES) -> None:
        self.dir = directory
        self.cap = max(cap_bytes, 1024)
        self.segment_bytes = max(1024, min(segment_bytes, self.cap // 4 or 1024))
        self.dir.mkdir(parents=True, exist_ok=True)
        self._lock = threading.Lock()
        self.dropped = 0
        segments = self._segments()
        self._cursor = self._load_cursor(segments)
        self._tail = segments[-1] if segments else self._cursor[0]
        self.backlog = self._count_backlog()

    # ------------------------------------------------------------------ files

    def _segments(self) -> list[int]:
        out = []
        for p in self.dir.iterdir():
            if p.name.endswith(_SUFFIX) and p.name[: -len(_SUFFIX)].isdigit():
                out.append(int(p.name[: -len(_SUFFIX)]))
        return sorted(out)

    def _path(self, number: int) -> Path:
        return self.dir / _segment_name(number)

    def _load_cursor(self, segments: list[int]) -> tuple[int, int]:
        try:
            seg, off = json.loads((self.dir / "cursor").read_text())
            cursor = (int(seg), int(off))
        except (OSError, ValueError, TypeError):
            cursor = (segments[0] if segments else 1, 0)
        if segments and cursor[0] < segments[0]:
            cursor = (segments[0], 0)
        return cursor

    def _save_cursor(self) -> None:
        tmp = self.dir / "cursor.tmp"
        tmp.write_text(json.dumps(list(self._cursor)))
        os.replace(tmp, self.dir / "cursor")

    def _count_backlog(self) -> int:
        count = 0
        seg, off = self._cursor
        for number in self._segments():
            if number < seg:
                continue
            with open(self._path(number), "rb") as handle:
                if number == seg:
                    handle.seek(off)
                count += sum(1 for _ in handle)
        return count

    def disk_bytes(self) -> int:
        total = 0
        for number in self._segments():
            try:
                total += self._path(number).stat().st_size
            except OSError:
                continue
        return total

    # ------------------------------------------------------------------ producer

    def append(self, lines: Iterable[str]) -> int:
        """Append records (one JSON object each, no newline); returns how many were dropped."""
        data = "".join(line.replace("\n", " ") + "\n" for line in lines).encode()
        if not data:
            return 0
        added = data.count(b"\n")
        with self._lock:
            path = self._path(self._tail)
            size = path.stat().st_size if path.exists() else 0
            if size and size + len(data) > self.segment_bytes:
                self._tail += 1
                path = self._path(self._tail)
            with open(path, "ab") as handle:
                handle.write(data)
            self.backlog += added
            return self._enforce_cap()

    def _enforce_cap(self) -> int:
        dropped = 0
        segments = self._segments()
        total = sum(self._path(n).stat().st_size for n in segments)
        while total > self.cap and len(segments) > 1:
            oldest = segments.pop(0)
            path = self._path(oldest)
            size = path.stat().st_size
            seg, off = self._cursor
            if oldest >= seg:
                with open(path, "rb") as handle:
                    if oldest == seg:
                        handle.seek(off)
                    lost = sum(1 for _ in handle)
                dropped += lost
                self.backlog -= lost
                self._cursor = (segments[0], 0)
                self._save_cursor()
            path.unlink(missing_ok=True)
            total -= size
        self.dropped += dropped
        return dropped

    # ------------------------------------------------------------------ consumer

    def read(self, limit: int) -> Batch:
        """Up to `limit` records from the cursor (only whole lines)."""
        with self._lock:
            seg, off = self._cursor
            lines: list[str] = []
            segments = [n for n in self._segments() if n >= seg]
            for number in segments:
                start = off if number == seg else 0
                with open(self._path(number), "rb") as handle:
                    handle.seek(start)
                    pos = start
                    for raw in handle:
                        if not raw.endswith(b"\n"):
                            break  # a write in progress: not yet a record
                        lines.append(raw[:-1].decode("utf-8", "replace"))
                        pos += len(raw)
                        if len(lines) >= limit:
                            return Batch(tuple(lines), (number, pos))
                seg, off = number, pos
            return Batch(tuple(lines), (seg, off))

    def ack(self, batch: Batch) -> None:
        """The batch reached the sink: move the cursor past it, delete finished segments."""
        if not batch.lines:
            return
        with self._lock:
            if batch.end < self._cursor:
                return  # the cap dropped these meanwhile
            self._cursor = batch.end
            self.backlog = max(0, self.backlog - len(batch.lines))
            self._save_cursor()
            for number in self._segments():
                if number < self._cursor[0]:
                    self._path(number).unlink(missing_ok=True)
