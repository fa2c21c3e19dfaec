"""What the agent reads from Docker is bounded, and unreadable input is an error it reports."""

from __future__ import annotations


def test_an_unreadable_docker_listing_is_a_reported_error_not_a_crash() -> None:
    import pytest

    from decnet.agent.runtime import engine

    with pytest.raises(engine.DockerError, match="unreadable container entry"):
        engine._parsed(engine._container_seen, [{"Names": ["/x"]}], "container")  # no Id
    with pytest.raises(engine.DockerError, match="unreadable network list"):
        engine._parsed(engine._network_seen, {"not": "a list"}, "network")
    huge = {"Id": "c1", "Labels": {f"k{i}": "v" * 10_000 for i in range(1000)}}
    seen = engine._parsed(engine._container_seen, [huge], "container")[0]
    assert len(seen.labels) <= engine.LABELS_MAX
    assert all(len(v) <= engine.LABEL_MAX for v in seen.labels.values())
