"""Fixtures of the cluster tier (helpers in tests/cluster/kit.py)."""

from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest
from tests.cluster.kit import (
    HOST_IMAGES,
    OPERATOR_IMAGE,
    Cluster,
    controlplane,
    node_cluster,
)
from tests.support import require


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    for item in items:
        if "cluster" in Path(str(item.fspath)).parts:
            item.add_marker(pytest.mark.cluster)


@pytest.fixture(scope="session")
def cluster() -> Iterator[Cluster]:
    require(os.geteuid() == 0, "the one-node cluster needs root (kubelet, containerd, iptables)")
    require(shutil.which("docker") is not None, "docker CLI missing")
    for image in (OPERATOR_IMAGE, *HOST_IMAGES):
        present = subprocess.run(["docker", "image", "inspect", image], capture_output=True)
        require(present.returncode == 0, f"image {image} missing: run `make images`")
    require(
        not node_cluster.running(node_cluster.DEFAULT_DIR),
        f"a one-node cluster already runs from {node_cluster.DEFAULT_DIR} (make cluster-down)",
    )
    state = Path(tempfile.mkdtemp(prefix="decnet-cluster-test-"))
    state.rmdir()  # cluster.up makes it
    try:
        record = node_cluster.up(state)
    except Exception:
        node_cluster.down(state)
        raise
    try:
        node_cluster.import_images(node_cluster.Paths(state), [OPERATOR_IMAGE])
        yield Cluster(
            state=state,
            kubeconfig=Path(str(record["kubeconfig"])),
            bin_dir=controlplane.CACHE / "bin" / "current",
            record=record,
        )
    finally:
        node_cluster.down(state)
