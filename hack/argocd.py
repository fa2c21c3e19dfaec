#!/usr/bin/env python3
"""Argo CD as local processes against a test-bed kube-apiserver, the way its own
development setup (its Procfile) runs it: no pods, no images.

- the application controller, the repo server and the ApplicationSet controller: the one
  multi-call `argocd` binary built from the argo-cd Go module (hack/build-binaries.sh
  argocd), selected by ARGOCD_BINARY_NAME;
- Redis from Debian (`redis-server`) on a free loopback port, no persistence;
- a Git server: bare repositories under <dir>/git served read-only by `git daemon` on
  127.0.0.1 (git://127.0.0.1:<port>/<name>.git); tests commit through a clone and push
  over the file system;
- Argo CD's CRDs, the `argocd` namespace, the stock argocd-cm merged with
  docs/argocd/argocd-cm.yaml (our health checks), argocd-secret and the `default`
  AppProject (the API server creates it in a real install; it is not run here).

The in-cluster destination `https://kubernetes.default.svc` works unchanged: with
ARGOCD_FAKE_IN_CLUSTER=true the controller uses its KUBECONFIG for it (Argo CD's own
local-development switch), so docs/argocd/application.yaml needs no other server.
The controller runs with the admin kubeconfig, as Argo CD's controller is cluster-admin in
a stock install.

    python3 hack/argocd.py up --kubeconfig K [--dir D]   # prints the state as JSON
    python3 hack/argocd.py down [--dir D]                 # stops what `up` started, by pid
"""

from __future__ import annotations

import argparse
import json
import os
import secrets
import shutil
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import yaml

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
sys.path.insert(0, str(HERE))

import controlplane  # noqa: E402  (hack/controlplane.py: processes by pid, free ports)

DEFAULT_DIR = Path(os.environ.get("DECNET_ARGOCD_DIR", "/tmp/decnet-argocd"))
NAMESPACE = "argocd"
PROCESSES = (
    "applicationset-controller",
    "application-controller",
    "repo-server",
    "redis",
    "git-daemon",
)
# Settings for a test bed, merged over the stock argocd-cm and ours: poll Git every 10 s
# (default 120 s) so a commit is seen quickly. A real install hands these two keys to the
# controller and the repo server as ARGOCD_RECONCILIATION_TIMEOUT/_JITTER (its manifests map
# them); so do we.
TESTBED_SETTINGS = {"timeout.reconciliation": "10s", "timeout.reconciliation.jitter": "0s"}


def log(message: str) -> None:
    print(f"[argocd] {message}", file=sys.stderr, flush=True)


@dataclass
class ArgoCD:
    state_dir: str
    kubeconfig: str
    version: str
    git_port: int
    git_root: str
    redis_port: int
    repo_server_port: int
    controller_metrics_port: int
    started_in_seconds: float

    def repo_url(self, name: str) -> str:
        return f"git://127.0.0.1:{self.git_port}/{name}.git"

    def bare_repo(self, name: str) -> Path:
        return Path(self.git_root) / f"{name}.git"


def versions() -> dict[str, str]:
    found = {}
    for line in (HERE / "versions.env").read_text().splitlines():
        key, _, value = line.partition("=")
        if key and value and not key.startswith("#"):
            found[key.strip()] = value.split("#")[0].strip()
    return found


def bin_dir() -> Path:
    """The cached argocd build (binary + manifests); builds it when missing."""
    version = versions()["ARGOCD_VERSION"]
    built = controlplane.CACHE / "bin" / f"argocd-{version}"
    needed = [built / "argocd", built / "manifests" / "argocd-cm.yaml", built / "bin"]
    if not all(path.exists() for path in needed):
        subprocess.run(
            ["bash", str(HERE / "build-binaries.sh"), "argocd"],
            check=True,
            stdout=subprocess.DEVNULL,
        )
    return built


def _port_open(port: int) -> bool:
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=1):
            return True
    except OSError:
        return False


def _wait(check: Any, timeout: float, what: str, state: Path, name: str) -> None:
    pidfile = state / f"{name}.pid"
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if check():
            return
        if pidfile.exists() and not controlplane._alive(int(pidfile.read_text())):
            raise RuntimeError(f"{what} exited during start-up:\n{_tail(state / f'{name}.log')}")
        time.sleep(0.2)
    raise TimeoutError(f"{what} not ready after {timeout} s:\n{_tail(state / f'{name}.log')}")


def _ok(port: int, path: str) -> bool:
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}{path}", timeout=2) as response:
            return bool(response.status == 200)
    except (urllib.error.URLError, OSError):
        return False


def _tail(path: Path, lines: int = 30) -> str:
    try:
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
    except OSError:
        return ""


def _start(name: str, argv: list[str], state: Path, env: dict[str, str] | None = None) -> int:
    logfile = open(state / f"{name}.log", "wb")  # noqa: SIM115 - handed to the child
    proc = subprocess.Popen(
        argv,
        stdout=logfile,
        stderr=subprocess.STDOUT,
        start_new_session=True,
        env=env,
        cwd=state,
    )
    (state / f"{name}.pid").write_text(str(proc.pid))
    return proc.pid


def kubectl(kubeconfig: str, *args: str, input: str | None = None) -> str:
    binary = controlplane.CACHE / "bin" / "current" / "kubectl"
    result = subprocess.run(
        [str(binary), f"--kubeconfig={kubeconfig}", *args],
        input=input,
        capture_output=True,
        text=True,
        timeout=120,
    )
    if result.returncode != 0:
        raise RuntimeError(f"kubectl {' '.join(args)}: {result.stderr.strip()}")
    return result.stdout


def settings(built: Path) -> dict[str, str]:
    """argocd-cm's data: the stock one, our health checks, the test-bed settings."""
    stock = yaml.safe_load((built / "manifests" / "argocd-cm.yaml").read_text())
    ours = yaml.safe_load((ROOT / "docs" / "argocd" / "argocd-cm.yaml").read_text())
    return {**(stock.get("data") or {}), **ours["data"], **TESTBED_SETTINGS}


def install(kubeconfig: str, built: Path) -> None:
    """CRDs, namespace, argocd-cm/-secret/-rbac-cm, the default AppProject."""
    for crd in sorted((built / "manifests" / "crds").glob("*.yaml")):
        kubectl(kubeconfig, "apply", "--server-side", "--force-conflicts", "-f", str(crd))
    names = ["applications", "appprojects", "applicationsets"]
    deadline = time.monotonic() + 60
    # (`kubectl wait` fails on a CRD whose status has no conditions yet)
    while not all(
        "Established=True"
        in kubectl(
            kubeconfig,
            "get",
            f"crd/{n}.argoproj.io",
            "-o",
            "jsonpath={range .status.conditions[*]}{.type}={.status} {end}",
        )
        for n in names
    ):
        if time.monotonic() > deadline:
            raise TimeoutError("Argo CD's CRDs not Established after 60 s")
        time.sleep(0.2)
    labels = {"app.kubernetes.io/part-of": "argocd"}
    docs: list[dict[str, Any]] = [
        {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": NAMESPACE}},
        {
            "apiVersion": "v1",
            "kind": "ConfigMap",
            "metadata": {
                "name": "argocd-cm",
                "namespace": NAMESPACE,
                "labels": {**labels, "app.kubernetes.io/name": "argocd-cm"},
            },
            "data": settings(built),
        },
        {
            "apiVersion": "v1",
            "kind": "ConfigMap",
            "metadata": {
                "name": "argocd-rbac-cm",
                "namespace": NAMESPACE,
                "labels": {**labels, "app.kubernetes.io/name": "argocd-rbac-cm"},
            },
        },
        {
            "apiVersion": "v1",
            "kind": "Secret",
            "type": "Opaque",
            "metadata": {
                "name": "argocd-secret",
                "namespace": NAMESPACE,
                "labels": {**labels, "app.kubernetes.io/name": "argocd-secret"},
            },
            # the API server generates it in a real install; the ApplicationSet controller
            # refuses to start without it
            "stringData": {"server.secretkey": secrets.token_urlsafe(32)},
        },
        {
            "apiVersion": "argoproj.io/v1alpha1",
            "kind": "AppProject",
            "metadata": {"name": "default", "namespace": NAMESPACE},
            "spec": {
                "sourceRepos": ["*"],
                "destinations": [{"server": "*", "namespace": "*"}],
                "clusterResourceWhitelist": [{"group": "*", "kind": "*"}],
            },
        },
    ]
    kubectl(
        kubeconfig,
        "apply",
        "--server-side",
        "--force-conflicts",
        "--field-manager=decnet-testbed",
        "-f",
        "-",
        input=yaml.safe_dump_all(docs),
    )


def init_repo(state: ArgoCD, name: str) -> Path:
    """An empty bare repository with branch main, served by the git daemon."""
    bare = state.bare_repo(name)
    subprocess.run(["git", "init", "-q", "--bare", "-b", "main", str(bare)], check=True)
    return bare


def up(state_dir: Path, kubeconfig: str) -> ArgoCD:
    """Starts everything; on any failure stops what it had started (by pid) and re-raises."""
    try:
        return _up(state_dir, kubeconfig)
    except BaseException:
        down(state_dir)
        raise


def _up(state_dir: Path, kubeconfig: str) -> ArgoCD:
    started = time.monotonic()
    state_dir.mkdir(parents=True, exist_ok=True)
    for tool in ("redis-server", "git"):
        if shutil.which(tool) is None:
            raise RuntimeError(f"{tool} is not installed (hack/clients.sh installs redis-server)")
    built = bin_dir()
    argocd = built / "argocd"
    version = (
        subprocess.run(
            [str(argocd), "version", "--client", "--short"],
            capture_output=True,
            text=True,
            check=False,
        )
        .stdout.strip()
        .removeprefix("argocd: ")
    )
    git_root = state_dir / "git"
    for sub in ("git", "tmp", "tls", "ssh", "gpg", "plugins", "home"):
        (state_dir / sub).mkdir(exist_ok=True)
    ports = {
        n: controlplane.free_port()
        for n in (
            "git",
            "redis",
            "repo",
            "repo-metrics",
            "ctrl-metrics",
            "as-metrics",
            "as-probe",
            "as-webhook",
        )
    }

    _start(
        "git-daemon",
        [
            "git",
            "daemon",
            "--reuseaddr",
            "--export-all",
            "--informative-errors",
            f"--base-path={git_root}",
            "--listen=127.0.0.1",
            f"--port={ports['git']}",
            str(git_root),
        ],
        state_dir,
    )
    _start(
        "redis",
        [
            "redis-server",
            "--bind",
            "127.0.0.1",
            "--port",
            str(ports["redis"]),
            "--save",
            "",
            "--appendonly",
            "no",
            "--dir",
            str(state_dir),
        ],
        state_dir,
    )
    _wait(lambda: _port_open(ports["git"]), 20, "git daemon", state_dir, "git-daemon")
    _wait(lambda: _port_open(ports["redis"]), 20, "redis", state_dir, "redis")

    install(kubeconfig, built)

    env = dict(os.environ)
    env.update(
        # what Argo CD's image has in /usr/local/bin: the git/gpg wrappers, argocd-* names
        PATH=f"{built / 'bin'}:{os.environ.get('PATH', '/usr/bin:/bin')}",
        HOME=str(state_dir / "home"),
        TMPDIR=str(state_dir / "tmp"),
        KUBECONFIG=kubeconfig,
        ARGOCD_FAKE_IN_CLUSTER="true",
        # the controller's resync and the repo server's branch-resolution cache both follow it
        ARGOCD_RECONCILIATION_TIMEOUT=TESTBED_SETTINGS["timeout.reconciliation"],
        ARGOCD_RECONCILIATION_JITTER=TESTBED_SETTINGS["timeout.reconciliation.jitter"],
        ARGOCD_TLS_DATA_PATH=str(state_dir / "tls"),
        ARGOCD_SSH_DATA_PATH=str(state_dir / "ssh"),
        ARGOCD_GNUPGHOME=str(state_dir / "gpg"),
        ARGOCD_GPG_ENABLED="false",
        ARGOCD_PLUGINSOCKFILEPATH=str(state_dir / "plugins"),
    )
    redis = f"127.0.0.1:{ports['redis']}"
    _start(
        "repo-server",
        [
            str(argocd),
            "--address",
            "127.0.0.1",
            "--port",
            str(ports["repo"]),
            "--metrics-address",
            "127.0.0.1",
            "--metrics-port",
            str(ports["repo-metrics"]),
            "--redis",
            redis,
            "--disable-tls",
            "--client-ca-path=",
            "--logformat",
            "text",
        ],
        state_dir,
        {**env, "ARGOCD_BINARY_NAME": "argocd-repo-server"},
    )
    _wait(lambda: _port_open(ports["repo"]), 60, "repo server", state_dir, "repo-server")

    _start(
        "application-controller",
        [
            str(argocd),
            "--kubeconfig",
            kubeconfig,
            "--namespace",
            NAMESPACE,
            "--redis",
            redis,
            "--repo-server",
            f"127.0.0.1:{ports['repo']}",
            "--repo-server-plaintext",
            "--metrics-port",
            str(ports["ctrl-metrics"]),
            "--status-processors",
            "2",
            "--operation-processors",
            "2",
            # the resource tree's health (each decky's message) in Application.status.resources,
            # so kubectl and the tests see it without Argo CD's API server
            "--persist-resource-health",
            "--logformat",
            "text",
            "--loglevel",
            "debug",
        ],
        state_dir,
        {
            **env,
            "ARGOCD_BINARY_NAME": "argocd-application-controller",
            "HOSTNAME": "argocd-application-controller-0",
        },
    )

    _wait(
        lambda: _ok(ports["ctrl-metrics"], "/healthz"),
        90,
        "application controller",
        state_dir,
        "application-controller",
    )

    # Generates Applications from ApplicationSets (docs/argocd/applicationset.yaml); asks the
    # repo server for the Git directories.
    _start(
        "applicationset-controller",
        [
            str(argocd),
            "--kubeconfig",
            kubeconfig,
            "--namespace",
            NAMESPACE,
            "--argocd-repo-server",
            f"127.0.0.1:{ports['repo']}",
            "--repo-server-plaintext",
            "--enable-leader-election=false",
            "--metrics-addr",
            f"127.0.0.1:{ports['as-metrics']}",
            "--probe-addr",
            f"127.0.0.1:{ports['as-probe']}",
            "--webhook-addr",
            f"127.0.0.1:{ports['as-webhook']}",
            "--logformat",
            "text",
        ],
        state_dir,
        {**env, "ARGOCD_BINARY_NAME": "argocd-applicationset-controller"},
    )
    _wait(
        # (it registers no health checks: its workers starting is the sign)
        lambda: "Starting workers" in (state_dir / "applicationset-controller.log").read_text(),
        90,
        "applicationset controller",
        state_dir,
        "applicationset-controller",
    )
    result = ArgoCD(
        state_dir=str(state_dir),
        kubeconfig=kubeconfig,
        version=version,
        git_port=ports["git"],
        git_root=str(git_root),
        redis_port=ports["redis"],
        repo_server_port=ports["repo"],
        controller_metrics_port=ports["ctrl-metrics"],
        started_in_seconds=round(time.monotonic() - started, 1),
    )
    (state_dir / "argocd.json").write_text(json.dumps(asdict(result), indent=2))
    log(f"{version} up in {result.started_in_seconds} s (state in {state_dir})")
    return result


def down(state_dir: Path = DEFAULT_DIR) -> None:
    """Stops exactly the processes `up` started, recorded by pid (the controller first)."""
    for name in PROCESSES:
        controlplane._stop(state_dir, name)


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("command", choices=["up", "down"])
    parser.add_argument("--dir", type=Path, default=DEFAULT_DIR)
    parser.add_argument("--kubeconfig", default=os.environ.get("KUBECONFIG", ""))
    args = parser.parse_args()
    if args.command == "up":
        if not args.kubeconfig:
            parser.error("--kubeconfig (or KUBECONFIG) is required")
        print(json.dumps(asdict(up(args.dir, args.kubeconfig)), indent=2))
    else:
        down(args.dir)
    return 0


if __name__ == "__main__":
    sys.exit(main())
