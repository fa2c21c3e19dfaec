"""The operator, base and pause images as the build scripts make them, in the real dockerd.

What a cluster relies on: the one operator image runs both commands, the operator as
uid 10001, and its iptables speaks the host's nf_tables backend (the agent writes rules
in the host's network namespace); a decky's base container and the sandbox image of a
one-node cluster stop at once on SIGTERM, so deleting a decky or a pod never waits out
a grace period.
"""

from __future__ import annotations

import os
import subprocess
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from tests.support import require

from decnet.agent import planner
from decnet.agent.runtime import engine

ROOT = Path(__file__).resolve().parents[2]
LABELS = {"decnet.io/namespace": f"t-images-{uuid.uuid4().hex[:6]}"}


def build(script: str) -> list[str]:
    """Run a build script; its stdout is the names of the images it made."""
    done = subprocess.run(
        ["bash", f"hack/{script}"], cwd=ROOT, capture_output=True, text=True, timeout=900,
        env=dict(os.environ),
    )
    require(done.returncode == 0, f"hack/{script} failed: {done.stderr[-2000:]}")
    return done.stdout.split()


@pytest.fixture(scope="module")
def operator_image(docker_client: Any) -> str:
    (image,) = build("operator-image.sh")
    return image


@pytest.fixture(scope="module")
def local_images(docker_client: Any) -> dict[str, str]:
    images = build("images.sh")
    return {name.split("/")[-1].split(":")[0]: name for name in images}


@pytest.fixture
def started(docker_client: Any) -> Iterator[list[Any]]:
    containers: list[Any] = []
    yield containers
    for container in containers:
        container.remove(force=True)


def run(docker_client: Any, started: list[Any], image: str, command: list[str]) -> tuple[int, str]:
    container = docker_client.containers.run(
        image, command, detach=True, network_mode="none", labels=LABELS
    )
    started.append(container)
    code = int(container.wait(timeout=60)["StatusCode"])
    return code, container.logs().decode(errors="replace")


def test_the_agent_command_runs_in_the_operator_image(
    docker_client: Any, started: list[Any], operator_image: str
) -> None:
    code, out = run(docker_client, started, operator_image, ["python3", "-m", "decnet.agent", "--help"])
    assert code == 0, out
    assert "usage: decnet-agent" in out


def test_the_operator_runs_as_uid_10001(
    docker_client: Any, started: list[Any], operator_image: str
) -> None:
    script = "import os, decnet.controller.main; print(os.getuid(), os.getgid())"
    code, out = run(docker_client, started, operator_image, ["python3", "-c", script])
    assert code == 0, out
    assert out.split() == ["10001", "10001"]
    code, out = run(docker_client, started, operator_image, ["python", "-m", "decnet.controller", "--help"])
    assert code == 0, out


def test_iptables_in_the_operator_image_uses_nf_tables(
    docker_client: Any, started: list[Any], operator_image: str
) -> None:
    for tool in ("iptables", "ip6tables"):
        code, out = run(docker_client, started, operator_image, [tool, "-V"])
        assert code == 0, out
        assert "(nf_tables)" in out, out


def test_an_unchanged_operator_image_is_not_rebuilt(operator_image: str) -> None:
    again = subprocess.run(
        ["bash", "hack/operator-image.sh"], cwd=ROOT, capture_output=True, text=True, timeout=60
    )
    assert again.returncode == 0, again.stderr
    assert again.stdout.strip() == operator_image
    assert "is up to date" in again.stderr


def test_the_base_image_has_ip(
    docker_client: Any, started: list[Any], local_images: dict[str, str]
) -> None:
    code, out = run(docker_client, started, local_images["base"], ["ip", "-V"])
    assert code == 0, out
    assert "iproute2" in out


@pytest.mark.parametrize("kind", ["base", "pause"])
def test_pid_1_exits_at_once_on_sigterm(
    docker_client: Any, started: list[Any], local_images: dict[str, str], kind: str
) -> None:
    container = docker_client.containers.run(
        local_images[kind], detach=True, network_mode="none", labels=LABELS
    )
    started.append(container)
    deadline = time.monotonic() + 10
    while container.status != "running" and time.monotonic() < deadline:
        time.sleep(0.05)
        container.reload()
    time.sleep(0.3)  # PID 1 has set its trap
    begin = time.monotonic()
    container.stop(timeout=10)
    took = time.monotonic() - begin
    container.reload()
    assert took < 2, f"{local_images[kind]} took {took:.1f} s to stop"
    assert container.attrs["State"]["ExitCode"] == 0


def test_a_windows_base_runs_its_packet_persona_and_still_stops_at_once(
    docker_client: Any, started: list[Any], local_images: dict[str, str]
) -> None:
    want = planner.DeckyWant(namespace="t", name="ws", uid="u", plan_hash="h", hostname="ws",
                             base_image=local_images["base"], networks=(),
                             packet_persona="windows")
    container = docker_client.containers.run(
        local_images["base"], engine.base_command(want), detach=True, network_mode="none",
        labels=LABELS, cap_drop=["ALL"], cap_add=["NET_ADMIN"], read_only=True,
        tmpfs={"/tmp": "", "/run": ""}, security_opt=["no-new-privileges"],
    )
    started.append(container)

    def rewriters() -> list[str]:
        """The container's own pids whose whole command line is the rewriter's (read from
        /proc inside it: `docker top` cuts command lines to ps's column width)."""
        container.reload()
        if container.status != "running":
            return []
        script = "for p in /proc/[0-9]*; do echo \"${p#/proc/} $(tr '\\0' ' ' < $p/cmdline)\"; done"
        code, out = container.exec_run(["sh", "-c", script])
        if code != 0:
            return []
        return [line.split(" ", 1)[0] for line in out.decode(errors="replace").splitlines()
                if line.split(" ", 1)[-1].startswith("python3 -m netshape --profile windows")]

    # generous: two Python start-ups inside a container on a loaded CI machine
    deadline = time.monotonic() + 60
    while not rewriters() and time.monotonic() < deadline:
        time.sleep(0.2)
    first = rewriters()
    assert first, container.logs().decode(errors="replace")

    def rules() -> str:
        code, out = container.exec_run(["iptables", "-t", "mangle", "-S", "OUTPUT"])
        return out.decode() if code == 0 else ""

    deadline = time.monotonic() + 30
    while rules().count("--queue-bypass") != 3 and time.monotonic() < deadline:
        time.sleep(0.2)
    assert rules().count("--queue-bypass") == 3, rules()
    time.sleep(3)  # it bound its queue and installed its rules: not restarted meanwhile
    assert rewriters() == first, container.logs().decode(errors="replace")
    begin = time.monotonic()
    container.stop(timeout=10)
    # PID 1 exits on SIGTERM itself: well before Docker's 10 s kill
    assert time.monotonic() - begin < 8
    container.reload()
    assert container.attrs["State"]["ExitCode"] == 0
