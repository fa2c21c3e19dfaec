"""The service image as built by hack/emulator-image.sh, in the real dockerd.

What a user of the image relies on: every launcher starts its service under the real
daemon's name, the image holds no pip and names nothing of the project, and the build
script rebuilds only when the image's sources change.
"""

from __future__ import annotations

import importlib.util
import shutil
import subprocess
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from tests.support import require

from decnet.emulators import main as emulators

ROOT = Path(__file__).resolve().parents[2]
IMAGE = "decnet/emulator:0.1.0"


def table() -> list[tuple[str, str, str]]:
    rows = []
    for line in (ROOT / "images" / "emulator" / "daemons.tsv").read_text().splitlines():
        if line.strip() and not line.startswith("#"):
            service, path, title = line.split("\t")
            rows.append((service, path, title))
    return rows


WITH_MODULE = [
    row for row in table()
    if row[0] in emulators.SERVICES
    and importlib.util.find_spec(f"decnet.emulators.services.{emulators.SERVICES[row[0]]}")
]


def build(env: dict[str, str] | None = None, cwd: Path = ROOT) -> subprocess.CompletedProcess[str]:
    import os

    return subprocess.run(
        ["bash", "hack/emulator-image.sh"], cwd=cwd, capture_output=True, text=True,
        timeout=900, env={**os.environ, **(env or {})},
    )


@pytest.fixture(scope="module")
def image(docker_client: Any) -> str:
    built = build()
    require(built.returncode == 0, f"hack/emulator-image.sh failed: {built.stderr[-2000:]}")
    return IMAGE


@pytest.fixture
def started(docker_client: Any, image: str) -> Iterator[list[Any]]:
    containers: list[Any] = []
    yield containers
    for container in containers:
        container.remove(force=True)


def exec_out(container: Any, script: str) -> str:
    return str(container.exec_run(["sh", "-c", script]).output.decode(errors="replace"))


@pytest.mark.parametrize(("service", "path", "title"), WITH_MODULE, ids=[r[0] for r in WITH_MODULE])
def test_a_launcher_runs_its_service_under_the_daemons_name(
    docker_client: Any, image: str, started: list[Any], service: str, path: str, title: str
) -> None:
    container = docker_client.containers.run(
        image, [path], detach=True, network_mode="none", environment={"SVC_CONFIG": "{}"},
        labels={"decnet.io/namespace": f"t-img-{uuid.uuid4().hex[:6]}"},
    )
    started.append(container)
    time.sleep(2)
    container.reload()
    assert container.status == "running", container.logs()[-2000:]
    assert exec_out(container, "cat /proc/1/comm").strip() == Path(path).name[:15]
    cmdline = exec_out(container, "tr '\\0' ' ' < /proc/1/cmdline").strip()
    assert cmdline == title


def test_the_image_has_no_pip_no_bytecode_writes_and_a_neutral_package(
    docker_client: Any, image: str
) -> None:
    out = docker_client.containers.run(
        image, ["sh", "-c", "env; python3 -m pip --version 2>&1; command -v pip pip3; "
                "ls /usr/lib/python3/dist-packages/ | grep -ic -e decnet -e honeypot; "
                "grep -rlic -e decnet -e honeypot /usr/lib/python3/dist-packages/netsvc | wc -l"],
        remove=True, network_mode="none",
    ).decode()
    assert "PYTHONDONTWRITEBYTECODE=1" in out
    assert "No module named pip" in out
    assert "/pip" not in out
    assert out.strip().splitlines()[-2:] == ["0", "0"]


def test_the_image_is_rebuilt_only_when_its_sources_change(
    docker_client: Any, image: str, tmp_path: Path
) -> None:
    """A copy of the sources the script hashes; a scratch tag, removed afterwards."""
    for rel in ("hack/emulator-image.sh", "hack/lib", "hack/clients.sh", "hack/clients.apt", "images/emulator",
                "operator/decnet/emulators"):
        src, dst = ROOT / rel, tmp_path / rel
        dst.parent.mkdir(parents=True, exist_ok=True)
        if src.is_dir():
            shutil.copytree(src, dst, ignore=shutil.ignore_patterns("__pycache__"))
        else:
            shutil.copy2(src, dst)
    tag = f"decnet-test/emulator-rebuild:{uuid.uuid4().hex[:8]}"
    label = "io.netsvc.content-hash"
    try:
        first = build({"EMULATOR_IMAGE": tag}, cwd=tmp_path)
        assert first.returncode == 0, first.stderr
        assert "built" in first.stderr
        hash_one = docker_client.images.get(tag).labels[label]
        again = build({"EMULATOR_IMAGE": tag}, cwd=tmp_path)
        assert "up to date" in again.stderr and "built" not in again.stderr
        with open(tmp_path / "operator/decnet/emulators/core.py", "a") as handle:
            handle.write("\n# changed\n")
        changed = build({"EMULATOR_IMAGE": tag}, cwd=tmp_path)
        assert changed.returncode == 0 and "built" in changed.stderr, changed.stderr
        assert docker_client.images.get(tag).labels[label] != hash_one
    finally:
        subprocess.run(["docker", "rmi", "-f", tag], capture_output=True)
