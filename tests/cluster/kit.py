"""Helpers of the cluster tier: the cluster handle, README blocks, waiting.

The cluster tier: a real one-node cluster (hack/cluster.py) and the chart installed in it.

One cluster per pytest session (its node address and interfaces are fixed, so only one
runs on a machine at a time); the tests drive it the way a user does: `kubectl` and
`helm` from the README, the operator and the agent as pods of the chart under its own
ServiceAccounts. The images must exist in the host's Docker (`make images`; hack/test.sh
builds them): the operator image is copied into the node, the decky images stay in the
host's dockerd, which the agent pod drives through its socket.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "hack"))

import controlplane  # noqa: E402, F401  (hack/controlplane.py)
import readme_blocks  # noqa: E402  (hack/readme_blocks.py)

import cluster as node_cluster  # noqa: E402, F401  (hack/cluster.py)

OPERATOR_IMAGE = "decnet/operator:0.1.0"
HOST_IMAGES = ("decnet/base:0.1.0", "decnet/emulator:0.1.0")


@dataclass
class Cluster:
    state: Path
    kubeconfig: Path
    bin_dir: Path
    record: dict[str, Any]

    @property
    def env(self) -> dict[str, str]:
        return {
            **os.environ,
            "KUBECONFIG": str(self.kubeconfig),
            "PATH": f"{self.bin_dir}:{os.environ.get('PATH', '')}",
        }

    def sh(self, script: str, check: bool = True, timeout: float = 600) -> str:
        """Runs shell lines from the repository root as a user would (kubectl, helm on PATH)."""
        done = subprocess.run(
            ["bash", "-euo", "pipefail", "-c", script],
            cwd=ROOT,
            env=self.env,
            capture_output=True,
            text=True,
            timeout=timeout,
        )
        if check and done.returncode != 0:
            raise AssertionError(
                f"`{script.strip()}` exited {done.returncode}\n{done.stdout}\n{done.stderr}"
            )
        return done.stdout + (done.stderr if not check else "")

    def kubectl(self, *args: str, input: str | None = None, check: bool = True) -> str:
        done = subprocess.run(
            [str(self.bin_dir / "kubectl"), *args],
            env=self.env,
            capture_output=True,
            text=True,
            input=input,
            timeout=300,
        )
        if check and done.returncode != 0:
            raise AssertionError(f"kubectl {' '.join(args)}: {done.stderr}")
        return done.stdout if check else done.stdout + done.stderr

    def get(self, *args: str) -> Any:
        return json.loads(self.kubectl("get", *args, "-o", "json"))

    def audit(self) -> list[dict[str, Any]]:
        """The API server's audit log (writes, metadata level): who wrote what."""
        path = self.state / "control-plane" / "audit.log"
        return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


def readme_block(marker: str) -> str:
    """The shell block right after `<!-- marker ... -->` in README.md."""
    return readme_blocks.block(marker)


def wait_for(what: str, check: Callable[[], Any], timeout: float = 120, every: float = 1) -> Any:
    deadline = time.monotonic() + timeout
    last: Any = None
    while time.monotonic() < deadline:
        last = check()
        if last:
            return last
        time.sleep(every)
    raise AssertionError(f"timed out after {timeout} s waiting for {what}; last: {last!r}")
