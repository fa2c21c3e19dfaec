"""Image build fallback, decided by pure functions so a test can prove the detection.

BuildKit keeps an activity timestamp under its state directory; on a node whose
Docker data directory is read-only for it, every BuildKit build fails with
"failed to update builder last activity time ... read-only file system". The
legacy builder does not touch that directory, so one retry with
DOCKER_BUILDKIT=0 gets the image built, and the operator of the node learns how
to repair BuildKit for good.
"""

from __future__ import annotations

import os

import structlog

_ACTIVITY = "failed to update builder last activity time"
_READ_ONLY = "read-only file system"

MANUAL_RECOVERY = (
    "BuildKit cannot write its activity file; built with the legacy builder instead. "
    "To repair BuildKit on this node: make the Docker data directory writable "
    "(check `docker info` Docker Root Dir and the mount it sits on), or remove the stale "
    "builder state with `docker buildx rm --all-inactive` / `docker builder prune`, "
    "then restart dockerd."
)


def is_buildkit_readonly_activity_error(output: str) -> bool:
    """True only when both halves of BuildKit's read-only activity error appear."""
    text = output.lower()
    return _ACTIVITY in text and _READ_ONLY in text


def legacy_builder_env(base: dict[str, str] | None = None) -> dict[str, str]:
    env = dict(os.environ if base is None else base)
    env["DOCKER_BUILDKIT"] = "0"
    return env


def log_legacy_builder_fallback(tag: str) -> None:
    structlog.get_logger("decnet.agent").warning(
        "buildkit.readonly_fallback", image=tag, recovery=MANUAL_RECOVERY
    )
