"""The probe server answers the kubelet from what its checks say, over real HTTP."""

from __future__ import annotations

import urllib.error
import urllib.request
from collections.abc import Iterator

import pytest

from decnet.kube import probes


def _get(port: int, path: str) -> tuple[int, str]:
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}{path}", timeout=5) as r:
            return r.status, r.read().decode()
    except urllib.error.HTTPError as error:
        return error.code, error.read().decode()


@pytest.fixture
def state() -> Iterator[tuple[dict[str, str | None], int]]:
    reasons: dict[str, str | None] = {"live": None, "ready": "starting"}
    server = probes.serve("127.0.0.1", 0, lambda: reasons["live"], lambda: reasons["ready"])
    try:
        yield reasons, server.port
    finally:
        server.close()


def test_ready_flips_from_503_with_its_reason_to_200_as_the_check_changes(
    state: tuple[dict[str, str | None], int],
) -> None:
    reasons, port = state
    assert _get(port, "/healthz") == (200, "ok\n")
    assert _get(port, "/readyz") == (503, "starting\n")
    reasons["ready"] = None
    assert _get(port, "/readyz") == (200, "ok\n")
    reasons["live"] = "agent loop stopped"
    assert _get(port, "/healthz") == (503, "agent loop stopped\n")


def test_unknown_paths_are_404_and_query_strings_are_ignored(
    state: tuple[dict[str, str | None], int],
) -> None:
    _, port = state
    assert _get(port, "/metrics")[0] == 404
    assert _get(port, "/healthz?verbose")[0] == 200


def test_a_check_that_raises_is_a_failed_probe_not_a_dead_server() -> None:
    def broken() -> str | None:
        raise RuntimeError("boom")

    assert probes.answer("/readyz", lambda: None, broken) == (503, "check failed: RuntimeError\n")
    assert probes.answer("/healthz", lambda: None, broken) == (200, "ok\n")
