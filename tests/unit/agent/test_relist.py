"""A list answered after the watch moved on never takes the decky back to an older version.

The resync lists this node's deckies while the watch keeps delivering events; a list asked
for before an event and answered after it must not overwrite that event (the decky would
sit on its older version, e.g. without its plan, until the next resync) nor bring back a
decky the watch saw deleted. The agent's own code, with no client: the list is given.
"""

from __future__ import annotations

from typing import Any

from decnet.agent import main


def decky(uid: str, rv: str, plan: bool = False) -> dict[str, Any]:
    status = {"node": "node-a", "plan": {"hash": "h"}} if plan else {}
    return {"metadata": {"uid": uid, "resourceVersion": rv}, "status": status}


def agent() -> main.Agent:
    return main.Agent(client=None, engine=None, node="node-a")  # type: ignore[arg-type]


def test_a_list_older_than_a_watch_event_keeps_the_newer_version() -> None:
    a = agent()
    a._set_objects([decky("u1", "1")], a._mark())
    mark = a._mark()  # the resync asks for its list ...
    a._watched("u1", decky("u1", "2", plan=True))  # ... the watch delivers the plan ...
    held = a._set_objects([decky("u1", "1")], mark)  # ... and the list answers, older
    assert held == {"u1"}
    assert a.decky("u1") == decky("u1", "2", plan=True)


def test_a_list_older_than_a_deletion_does_not_bring_the_decky_back() -> None:
    a = agent()
    a._set_objects([decky("u1", "1"), decky("u2", "1")], a._mark())
    mark = a._mark()
    a._watched_deleted("u2")
    assert a._set_objects([decky("u1", "1"), decky("u2", "1")], mark) == {"u1"}
    assert a.decky("u2") is None


def test_a_decky_the_watch_added_after_the_list_was_asked_for_stays() -> None:
    a = agent()
    mark = a._mark()
    a._watched("u3", decky("u3", "5", plan=True))
    assert a._set_objects([], mark) == {"u3"}


def test_otherwise_the_list_is_the_truth() -> None:
    a = agent()
    a._set_objects([decky("u1", "1"), decky("u2", "1")], a._mark())
    a._watched("u1", decky("u1", "2"))
    mark = a._mark()  # a list asked for after every event it must reflect
    assert a._set_objects([decky("u1", "3")], mark) == {"u1"}
    assert a.decky("u1") == decky("u1", "3")
    assert a.decky("u2") is None
