"""An agent runs only what the operator scheduled on its own node."""

from __future__ import annotations

from decnet.agent import main


def test_only_deckies_scheduled_on_this_node_are_ours() -> None:
    assert main.owned_by({"node": "node-a"}, "node-a")
    assert not main.owned_by({"node": "node-b"}, "node-a")  # a label edited by hand
    assert not main.owned_by({}, "node-a")  # not scheduled yet: no plan to run
    assert not main.owned_by({"node": ""}, "node-a")
