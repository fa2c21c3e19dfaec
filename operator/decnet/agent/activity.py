"""What the Kubernetes surfaces say about attacker contact, and when they may be written.

Two aggregations over the event stream, both pure and clock-injected:
- `Activity` per decky -> status.activity (lastContact, contacts, lastSource,
  lastService): the first contact is written at once, later ones at most once per
  `ACTIVITY_INTERVAL` per decky, and a decky with no new contact gets no write at
  all (idle costs nothing);
- `Contacts` per (decky, source, service) -> one Warning Event `AttackerContact`
  whose count grows, created at the first event and updated at most once per
  `EVENT_INTERVAL`: a 1,000-attempt brute force is one Event with count 1000.
"""

from __future__ import annotations

import dataclasses
import hashlib

from decnet.agent import eventrecord

ACTIVITY_INTERVAL = 30.0
EVENT_INTERVAL = 10.0
# Contacts not updated for this long are forgotten (a later one starts a new Event).
CONTACT_TTL = 3600.0
MAX_CONTACT_KEYS = 10000

DeckyKey = tuple[str, str]  # (namespace, decky)


@dataclasses.dataclass
class DeckyActivity:
    contacts: int = 0
    last_contact: str = ""
    last_source: str = ""
    last_service: str = ""
    dirty: bool = False
    written_at: float | None = None


class Activity:
    """Per decky: what changed since the last write, and whether a write is allowed now."""

    def __init__(self, interval: float = ACTIVITY_INTERVAL) -> None:
        self.interval = interval
        self.deckies: dict[DeckyKey, DeckyActivity] = {}

    def observe(self, record: eventrecord.Record, base_contacts: int = 0) -> None:
        key = (record.namespace, record.decky)
        entry = self.deckies.get(key)
        if entry is None:
            entry = self.deckies[key] = DeckyActivity(contacts=base_contacts)
        entry.contacts += 1
        when = record.event.time.strftime("%Y-%m-%dT%H:%M:%SZ")
        if when >= entry.last_contact:
            entry.last_contact = when
            entry.last_source = record.event.src_ip
            entry.last_service = record.event.service
        entry.dirty = True

    def due(self, now: float) -> list[tuple[DeckyKey, dict[str, object]]]:
        """status.activity bodies to write now; marks them written."""
        out: list[tuple[DeckyKey, dict[str, object]]] = []
        for key, entry in self.deckies.items():
            if not entry.dirty:
                continue
            if entry.written_at is not None and now - entry.written_at < self.interval:
                continue
            entry.dirty = False
            entry.written_at = now
            out.append((key, body(entry)))
        return out

    def forget(self, key: DeckyKey) -> None:
        self.deckies.pop(key, None)


def body(entry: DeckyActivity) -> dict[str, object]:
    return {
        "lastContact": entry.last_contact,
        "contacts": entry.contacts,
        "lastSource": entry.last_source[:64],
        "lastService": entry.last_service[:63],
    }


@dataclasses.dataclass
class Contact:
    namespace: str
    decky: str
    source: str
    service: str
    count: int = 0
    first: str = ""
    last: str = ""
    last_kind: str = ""
    kinds: dict[str, int] = dataclasses.field(default_factory=dict)
    written_count: int = 0
    written_at: float | None = None
    seen_at: float = 0.0

    @property
    def name(self) -> str:
        return event_name(self.decky, self.source, self.service)

    def message(self) -> str:
        kinds = ", ".join(f"{k} x{n}" for k, n in sorted(self.kinds.items()))
        return (
            f"{self.count} attacker events from {self.source} on {self.service} ({kinds});"
            f" last {self.last_kind} at {self.last}"
        )[:1024]


def event_name(decky: str, source: str, service: str) -> str:
    """One Event object per (decky, source, service), named so the agent can find it again."""
    digest = hashlib.sha256(f"{source}\0{service}".encode()).hexdigest()[:12]
    return f"{decky[:200]}.attacker.{digest}"


class Contacts:
    """Per (decky, source, service): the aggregated AttackerContact Event to write."""

    def __init__(self, interval: float = EVENT_INTERVAL, ttl: float = CONTACT_TTL) -> None:
        self.interval = interval
        self.ttl = ttl
        self.items: dict[tuple[str, str, str, str], Contact] = {}

    def observe(self, record: eventrecord.Record, now: float) -> None:
        e = record.event
        key = (record.namespace, record.decky, e.src_ip, e.service)
        item = self.items.get(key)
        if item is None:
            if len(self.items) >= MAX_CONTACT_KEYS:
                self.expire(now, force=True)
            item = self.items[key] = Contact(record.namespace, record.decky, e.src_ip, e.service)
        when = e.time.strftime("%Y-%m-%dT%H:%M:%SZ")
        item.count += 1
        item.first = item.first or when
        item.last = max(item.last, when)
        item.last_kind = e.kind
        item.kinds[e.kind] = item.kinds.get(e.kind, 0) + 1
        item.seen_at = now

    def due(self, now: float) -> list[Contact]:
        """Contacts whose Event must be created or updated now; marks them written."""
        out = []
        for item in self.items.values():
            if item.count == item.written_count:
                continue
            if item.written_at is not None and now - item.written_at < self.interval:
                continue
            item.written_at = now
            item.written_count = item.count
            out.append(item)
        return out

    def expire(self, now: float, force: bool = False) -> None:
        horizon = now - (0 if force else self.ttl)
        for key in [k for k, v in self.items.items() if v.seen_at <= horizon]:
            if self.items[key].count == self.items[key].written_count:
                del self.items[key]
