#!/usr/bin/env python3
"""A real one-node Kubernetes cluster as local processes, beside the running dockerd.

The control plane of hack/controlplane.py (etcd + kube-apiserver, here listening on the
node's address) plus kube-controller-manager, kube-scheduler, a kubelet on a second
containerd (its own config, root, state and socket; dockerd keeps its own), Debian's CNI
plugins on a bridge, and kube-proxy in iptables mode. Pods get ServiceAccount tokens,
reach the API through the `kubernetes` Service, and a pod with a hostPath
/var/run/docker.sock drives the host's dockerd: the chart's agent does exactly that.

The node's address lives on an empty bridge of its own (`decnet-node0`; these kernels
have no dummy interface), so nothing
here listens on or routes through the machine's uplink. Every component runs as its own
Kubernetes identity (client certs from the control plane's client CA), none as admin.

    python3 hack/cluster.py up     [--dir D]   # prints the admin kubeconfig path
    python3 hack/cluster.py down   [--dir D]   # stops what `up` started and cleans up
    python3 hack/cluster.py import IMAGE...    # copies local Docker images into the node
    python3 hack/cluster.py status [--dir D]

What the node leaves outside its state directory, `down` removes: pod sandboxes (through
CRI, so CNI releases addresses and network namespaces), mounts under the state directory,
the CNI bridge and its iptables chains, kube-proxy's chains (`kube-proxy --cleanup`),
the kubelet's cgroups, /var/lib/kubelet if it created it, the host sysctls the kubelet
rewrites (restored), and the node's bridge. It never touches DOCKER* chains or dockerd.
"""

from __future__ import annotations

import argparse
import json
import os
import shlex
import shutil
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import controlplane  # noqa: E402

DEFAULT_DIR = Path(os.environ.get("DECNET_CLUSTER_DIR", "/tmp/decnet-cluster"))
NODE_NAME = "decnet-node"
NODE_INTERFACE = "decnet-node0"
NODE_IP = "10.231.0.1"
POD_CIDR = "10.232.0.0/24"
SERVICE_CIDR = "10.233.0.0/24"
KUBERNETES_SERVICE_IP = "10.233.0.1"
CNI_BRIDGE = "decnet-cni0"
CNI_NETWORK = "decnet-pods"
PAUSE_IMAGE = "decnet-test/pause:3.10"
# The kubelet rewrites these host sysctls; `down` puts them back.
KUBELET_SYSCTLS = ("kernel.panic", "kernel.panic_on_oops", "vm.overcommit_memory")
CGROUP_ROOT = "/decnet-kubepods"


def log(message: str) -> None:
    print(f"[cluster] {message}", file=sys.stderr, flush=True)


@dataclass(frozen=True)
class Paths:
    """Where everything of one cluster lives; all of it under one state directory."""

    state: Path

    @property
    def plane(self) -> Path:
        return self.state / "control-plane"

    @property
    def pki(self) -> Path:
        return self.plane / "pki"

    @property
    def kubeconfig(self) -> Path:
        return self.plane / "kubeconfig"

    @property
    def containerd(self) -> Path:
        return self.state / "containerd"

    @property
    def containerd_socket(self) -> Path:
        return self.containerd / "containerd.sock"

    @property
    def kubelet(self) -> Path:
        return self.state / "kubelet"

    @property
    def cni(self) -> Path:
        return self.state / "cni"

    @property
    def record(self) -> Path:
        return self.state / "cluster.json"


def run(argv: list[str], check: bool = True, **kwargs: object) -> subprocess.CompletedProcess[str]:
    return subprocess.run(argv, check=check, text=True, capture_output=True, **kwargs)  # type: ignore[call-overload,no-any-return]


def binaries() -> Path:
    out = subprocess.run(
        ["bash", str(controlplane.HERE / "build-binaries.sh"), "cluster"],
        check=True,
        stdout=subprocess.PIPE,
        text=True,
    )
    return Path(out.stdout.strip().splitlines()[-1])


def ensure_packages() -> None:
    """containerd, runc and the CNI plugins come from Debian."""
    missing = [
        pkg
        for pkg, probe in (
            ("containerd", "/usr/bin/containerd"),
            ("runc", "/usr/sbin/runc"),
            ("containernetworking-plugins", "/usr/lib/cni/bridge"),
        )
        if not Path(probe).exists()
    ]
    if missing:
        log(f"installing {' '.join(missing)} from Debian")
        env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
        subprocess.run(["apt-get", "update", "-qq"], check=False, env=env)
        subprocess.run(["apt-get", "install", "-y", "-qq", *missing], check=True, env=env)


# --- configuration files -------------------------------------------------------------


def containerd_config(paths: Paths) -> str:
    return f"""version = 2
root = "{paths.containerd / "root"}"
state = "{paths.containerd / "state"}"
disabled_plugins = ["io.containerd.internal.v1.opt", "io.containerd.snapshotter.v1.aufs",
                    "io.containerd.snapshotter.v1.btrfs", "io.containerd.snapshotter.v1.zfs",
                    "io.containerd.snapshotter.v1.devmapper"]

[grpc]
  address = "{paths.containerd_socket}"

[ttrpc]
  address = "{paths.containerd_socket}.ttrpc"

[debug]
  address = "{paths.containerd / "debug.sock"}"

[metrics]
  address = ""

[plugins."io.containerd.grpc.v1.cri"]
  sandbox_image = "docker.io/{PAUSE_IMAGE}"
  # root here lacks CAP_SYS_RESOURCE: runc cannot lower oom_score_adj below its own
  restrict_oom_score_adj = true
  [plugins."io.containerd.grpc.v1.cri".containerd]
    snapshotter = "overlayfs"
    default_runtime_name = "runc"
    [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc]
      runtime_type = "io.containerd.runc.v2"
      [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc.options]
        SystemdCgroup = false
  [plugins."io.containerd.grpc.v1.cri".cni]
    bin_dir = "/usr/lib/cni"
    conf_dir = "{paths.cni / "net.d"}"
"""


def cni_conflist(paths: Paths) -> dict[str, object]:
    # Docker's FORWARD policy is DROP: the firewall plugin admits the pods' traffic.
    return {
        "cniVersion": "1.0.0",
        "name": CNI_NETWORK,
        "plugins": [
            {
                "type": "bridge",
                "bridge": CNI_BRIDGE,
                "isGateway": True,
                "ipMasq": True,
                "hairpinMode": True,
                "ipam": {
                    "type": "host-local",
                    "ranges": [[{"subnet": POD_CIDR}]],
                    "routes": [{"dst": "0.0.0.0/0"}],
                    "dataDir": str(paths.cni / "ipam"),
                },
            },
            {"type": "portmap", "capabilities": {"portMappings": True}},
            {"type": "firewall"},
        ],
    }


def kubelet_config(paths: Paths, port: int, healthz_port: int) -> dict[str, object]:
    return {
        "apiVersion": "kubelet.config.k8s.io/v1beta1",
        "kind": "KubeletConfiguration",
        "failCgroupV1": False,
        "cgroupDriver": "cgroupfs",
        "cgroupRoot": CGROUP_ROOT,
        "failSwapOn": False,
        "containerRuntimeEndpoint": f"unix://{paths.containerd_socket}",
        "address": NODE_IP,
        "port": port,
        "readOnlyPort": 0,
        "healthzBindAddress": "127.0.0.1",
        "healthzPort": healthz_port,
        "authentication": {
            "anonymous": {"enabled": False},
            "webhook": {"enabled": True},
            "x509": {"clientCAFile": str(paths.pki / "client-ca.crt")},
        },
        "authorization": {"mode": "Webhook"},
        "resolvConf": "/etc/resolv.conf",
        "serializeImagePulls": False,
        "evictionHard": {
            "memory.available": "100Mi",
            "nodefs.available": "1%",
            "nodefs.inodesFree": "1%",
            "imagefs.available": "1%",
        },
        "imageGCHighThresholdPercent": 100,
        "imageGCLowThresholdPercent": 99,
        "protectKernelDefaults": False,
        "podPidsLimit": -1,
        "shutdownGracePeriod": "0s",
        "registerNode": True,
    }


def kube_proxy_config(paths: Paths, metrics_port: int, healthz_port: int) -> dict[str, object]:
    return {
        "apiVersion": "kubeproxy.config.k8s.io/v1alpha1",
        "kind": "KubeProxyConfiguration",
        "mode": "iptables",
        "clientConnection": {"kubeconfig": str(paths.plane / "kube-proxy.kubeconfig")},
        "hostnameOverride": NODE_NAME,
        "bindAddress": NODE_IP,
        "clusterCIDR": POD_CIDR,
        "metricsBindAddress": f"127.0.0.1:{metrics_port}",
        "healthzBindAddress": f"127.0.0.1:{healthz_port}",
        # no conntrack sysctl writes (the machine's table is sized already)
        "conntrack": {
            "maxPerCore": 0,
            "min": 0,
            "tcpEstablishedTimeout": "0s",
            "tcpCloseWaitTimeout": "0s",
        },
        # else kube-proxy flips route_localnet on for NodePorts on 127.0.0.1
        "iptables": {"localhostNodePorts": False},
        "nodePortAddresses": [f"{NODE_IP}/32"],
    }


# --- up ----------------------------------------------------------------------------------


def _node_interface() -> None:
    if run(["ip", "link", "show", NODE_INTERFACE], check=False).returncode != 0:
        run(["ip", "link", "add", NODE_INTERFACE, "type", "bridge"])
    run(["ip", "addr", "replace", f"{NODE_IP}/32", "dev", NODE_INTERFACE])
    run(["ip", "link", "set", NODE_INTERFACE, "up"])


def _make_cgroups() -> None:
    """The kubelet's cgroup root must exist in every hierarchy (cgroup v1) before it starts."""
    for controller in Path("/sys/fs/cgroup").iterdir():
        if controller.is_dir() and not controller.is_symlink():
            (controller / CGROUP_ROOT.lstrip("/")).mkdir(exist_ok=True)


def _save_sysctls(paths: Paths) -> None:
    saved = {}
    for key in KUBELET_SYSCTLS:
        saved[key] = Path("/proc/sys/" + key.replace(".", "/")).read_text().strip()
    (paths.state / "sysctls.json").write_text(json.dumps(saved))


def _client_identities(paths: Paths, server: str) -> None:
    """A client cert and kubeconfig per component, each its own Kubernetes user."""
    for name, user, group in (
        ("kubelet", f"system:node:{NODE_NAME}", "system:nodes"),
        ("kube-controller-manager", "system:kube-controller-manager", None),
        ("kube-scheduler", "system:kube-scheduler", None),
        ("kube-proxy", "system:kube-proxy", None),
    ):
        controlplane.issue_client_cert(paths.pki, name, user, group)
        controlplane.write_kubeconfig(paths.plane / f"{name}.kubeconfig", server, paths.pki, name)


def _wait_for(what: str, check: object, timeout: float, pid: int | None = None) -> None:
    deadline = time.monotonic() + timeout
    last: object = None
    while time.monotonic() < deadline:
        if pid is not None and not controlplane._alive(pid):
            raise RuntimeError(f"{what}: the process exited; see its log")
        try:
            last = check()  # type: ignore[operator]
            if last is True:
                return
        except (OSError, subprocess.SubprocessError, ValueError) as error:
            last = error
        time.sleep(0.3)
    raise TimeoutError(f"{what} not ready after {timeout} s: {last}")


def _kubectl(bins: Path, paths: Paths, *args: str) -> subprocess.CompletedProcess[str]:
    return run([str(bins / "kubectl"), f"--kubeconfig={paths.kubeconfig}", *args], check=False)


def _crictl(bins: Path, paths: Paths, *args: str) -> subprocess.CompletedProcess[str]:
    return run(
        [
            str(bins / "crictl"),
            f"--runtime-endpoint=unix://{paths.containerd_socket}",
            "--timeout=20s",
            *args,
        ],
        check=False,
    )


def _ctr(paths: Paths, *args: str, stdin: object = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(  # type: ignore[call-overload,no-any-return]
        ["ctr", "--address", str(paths.containerd_socket), "--namespace", "k8s.io", *args],
        check=False,
        text=True,
        capture_output=True,
        stdin=stdin,
    )


def import_images(paths: Paths, images: list[str]) -> None:
    """Copies local Docker images into the node's containerd (pods never pull)."""
    for image in images:
        save = subprocess.Popen(["docker", "save", image], stdout=subprocess.PIPE)
        result = _ctr(paths, "images", "import", "-", stdin=save.stdout)
        save.wait()
        if save.returncode != 0 or result.returncode != 0:
            raise RuntimeError(f"importing {image} into the node failed: {result.stderr.strip()}")
    log(f"imported {' '.join(images)}")


def up(state: Path = DEFAULT_DIR, timeout: float = 120.0) -> dict[str, object]:
    begin = time.monotonic()
    paths = Paths(state)
    if paths.record.exists():
        raise RuntimeError(f"a cluster already runs from {state}; run `down` first")
    ensure_packages()
    bins = binaries()
    subprocess.run(
        ["bash", str(controlplane.HERE / "images.sh")], check=True, stdout=subprocess.DEVNULL
    )
    state.mkdir(parents=True, exist_ok=True)
    # what the node may create outside its state directory and `down` must remove
    before = {
        "chains": sorted(_chains()),
        "dirs": [d for d in ("/var/lib/kubelet", "/var/lib/cni") if Path(d).exists()],
    }
    (state / "before.json").write_text(json.dumps(before))
    _save_sysctls(paths)
    _node_interface()
    _make_cgroups()

    plane = controlplane.up(
        paths.plane,
        node=controlplane.NodeAccess(NODE_IP, SERVICE_CIDR, KUBERNETES_SERVICE_IP),
    )
    _client_identities(paths, plane.server)
    ports = {
        name: controlplane.free_port()
        for name in (
            "kcm",
            "scheduler",
            "kubelet",
            "kubelet-healthz",
            "proxy-metrics",
            "proxy-healthz",
        )
    }

    # The controller-manager first: it makes the `default` ServiceAccounts pods need.
    controlplane._start(
        "kube-controller-manager",
        [
            str(bins / "kube-controller-manager"),
            f"--kubeconfig={paths.plane / 'kube-controller-manager.kubeconfig'}",
            f"--authentication-kubeconfig={paths.plane / 'kube-controller-manager.kubeconfig'}",
            f"--authorization-kubeconfig={paths.plane / 'kube-controller-manager.kubeconfig'}",
            "--use-service-account-credentials=true",
            f"--service-account-private-key-file={paths.pki / 'sa.key'}",
            f"--root-ca-file={paths.pki / 'serving-ca.crt'}",
            f"--service-cluster-ip-range={SERVICE_CIDR}",
            "--leader-elect=false",
            "--bind-address=127.0.0.1",
            f"--secure-port={ports['kcm']}",
            # no cloud, no bootstrap tokens, no CSR signing: nothing here needs them
            "--controllers=*,-bootstrapsigner,-tokencleaner,-csrsigning,-csrapproving,-nodeipam",
        ],
        state,
    )
    controlplane._start(
        "kube-scheduler",
        [
            str(bins / "kube-scheduler"),
            f"--kubeconfig={paths.plane / 'kube-scheduler.kubeconfig'}",
            f"--authentication-kubeconfig={paths.plane / 'kube-scheduler.kubeconfig'}",
            f"--authorization-kubeconfig={paths.plane / 'kube-scheduler.kubeconfig'}",
            "--leader-elect=false",
            "--bind-address=127.0.0.1",
            f"--secure-port={ports['scheduler']}",
        ],
        state,
    )

    paths.containerd.mkdir(parents=True, exist_ok=True)
    (paths.cni / "net.d").mkdir(parents=True, exist_ok=True)
    (paths.cni / "net.d" / "10-decnet-pods.conflist").write_text(
        json.dumps(cni_conflist(paths), indent=2)
    )
    (paths.containerd / "config.toml").write_text(containerd_config(paths))
    containerd_pid = controlplane._start(
        "containerd", ["containerd", "--config", str(paths.containerd / "config.toml")], state
    )
    _wait_for("containerd", lambda: _ctr(paths, "version").returncode == 0, 30, containerd_pid)
    import_images(paths, [PAUSE_IMAGE])

    paths.kubelet.mkdir(parents=True, exist_ok=True)
    (paths.kubelet / "config.json").write_text(
        json.dumps(kubelet_config(paths, ports["kubelet"], ports["kubelet-healthz"]), indent=2)
    )
    kubelet_pid = controlplane._start(
        "kubelet",
        [
            str(bins / "kubelet"),
            f"--config={paths.kubelet / 'config.json'}",
            f"--kubeconfig={paths.plane / 'kubelet.kubeconfig'}",
            f"--root-dir={paths.kubelet / 'root'}",
            f"--cert-dir={paths.kubelet / 'pki'}",
            f"--hostname-override={NODE_NAME}",
            f"--node-ip={NODE_IP}",
            "--v=1",
        ],
        state,
    )
    (paths.plane / "kube-proxy.json").write_text(
        json.dumps(
            kube_proxy_config(paths, ports["proxy-metrics"], ports["proxy-healthz"]), indent=2
        )
    )
    controlplane._start(
        "kube-proxy",
        [
            str(bins / "kube-proxy"),
            f"--config={paths.plane / 'kube-proxy.json'}",
        ],
        state,
    )

    def node_ready() -> bool | str:
        out = _kubectl(
            bins,
            paths,
            "get",
            "node",
            NODE_NAME,
            "-o",
            "jsonpath={.status.conditions[?(@.type=='Ready')].status}",
        )
        return out.stdout.strip() == "True" or out.stdout + out.stderr

    _wait_for(f"node {NODE_NAME} Ready", node_ready, timeout, kubelet_pid)

    def default_serviceaccount() -> bool | str:
        out = _kubectl(bins, paths, "get", "serviceaccount", "default", "-n", "default")
        return out.returncode == 0 or out.stderr

    _wait_for("the default ServiceAccount", default_serviceaccount, 60)
    record = {
        "kubeconfig": str(paths.kubeconfig),
        "server": plane.server,
        "node": NODE_NAME,
        "node_ip": NODE_IP,
        "pod_cidr": POD_CIDR,
        "service_cidr": SERVICE_CIDR,
        "containerd_socket": str(paths.containerd_socket),
        "kubernetes": plane.apiserver_version,
        "up_seconds": round(time.monotonic() - begin, 1),
    }
    paths.record.write_text(json.dumps(record, indent=2))
    log(f"node {NODE_NAME} Ready in {record['up_seconds']} s ({plane.server})")
    return record


# --- down --------------------------------------------------------------------------------


def _remove_pods(bins: Path, paths: Paths) -> None:
    """Stops and removes every pod sandbox through CRI: CNI releases its address and netns."""
    if not paths.containerd_socket.exists():
        return
    pods = _crictl(bins, paths, "pods", "-q").stdout.split()
    for pod in pods:
        _crictl(bins, paths, "stopp", pod)
        _crictl(bins, paths, "rmp", "--force", pod)
    # anything CRI did not know (or failed to remove): kill its task, delete the container
    for task in _ctr(paths, "tasks", "ls", "-q").stdout.split():
        _ctr(paths, "tasks", "kill", "--signal", "SIGKILL", task)
        _ctr(paths, "tasks", "delete", "--force", task)
    for container in _ctr(paths, "containers", "ls", "-q").stdout.split():
        _ctr(paths, "containers", "delete", container)


def _unmount_under(root: Path) -> None:
    mounts = [
        line.split()[1].replace("\\040", " ")
        for line in Path("/proc/self/mounts").read_text().splitlines()
    ]
    for mount in sorted((m for m in mounts if m.startswith(str(root) + "/")), reverse=True):
        subprocess.run(["umount", "-l", mount], check=False, capture_output=True)


def _chains() -> set[str]:
    """Every (tool, table, chain) of iptables and ip6tables, as one string each."""
    found = set()
    for tool in ("iptables", "ip6tables"):
        for table in ("filter", "nat", "mangle"):
            for rule in run([tool, "-t", table, "-S"], check=False).stdout.splitlines():
                if rule.startswith("-N "):
                    found.add(f"{tool} {table} {rule.split()[1]}")
    return found


def _remove_new_chains(before: set[str]) -> None:
    """The chains the kubelet, kube-proxy and the CNI plugins made (KUBE-*, CNI-*) and
    that did not exist before `up`; never Docker's."""
    new = sorted(c for c in _chains() - before if c.split()[2].startswith(("KUBE-", "CNI-")))
    for entry in new:
        tool, table, chain = entry.split()
        for rule in run([tool, "-t", table, "-S"], check=False).stdout.splitlines():
            words = shlex.split(rule)
            if words[0] == "-A" and words[-2:] == ["-j", chain]:
                run([tool, "-t", table, "-D", *words[1:]], check=False)
        run([tool, "-t", table, "-F", chain], check=False)
    for entry in new:
        tool, table, chain = entry.split()
        run([tool, "-t", table, "-X", chain], check=False)


def _remove_cgroups() -> None:
    base = Path("/sys/fs/cgroup")
    for controller in base.iterdir() if base.exists() else []:
        top = controller / CGROUP_ROOT.lstrip("/")
        if not top.is_dir() or top.is_symlink():
            continue
        for directory in sorted((p for p in top.rglob("*") if p.is_dir()), reverse=True):
            try:
                directory.rmdir()
            except OSError:
                pass
        try:
            top.rmdir()
        except OSError:
            pass


def down(state: Path = DEFAULT_DIR) -> None:
    paths = Paths(state)
    if not state.exists():
        return
    bins = controlplane.CACHE / "bin" / "current"
    _remove_pods(bins, paths)
    for name in ("kubelet", "kube-proxy", "kube-scheduler", "kube-controller-manager"):
        controlplane._stop(state, name)
    _remove_pods(bins, paths)  # the kubelet may have started one more on its way down
    controlplane._stop(state, "containerd")
    _unmount_under(state)
    if (bins / "kube-proxy").exists():
        run([str(bins / "kube-proxy"), "--cleanup"], check=False)
    before = (
        json.loads((state / "before.json").read_text()) if (state / "before.json").exists() else {}
    )
    _remove_new_chains(set(before.get("chains", [])))
    run(["ip", "link", "delete", CNI_BRIDGE], check=False)
    _remove_cgroups()
    saved = state / "sysctls.json"
    if saved.exists():
        for key, value in json.loads(saved.read_text()).items():
            run(["sysctl", "-qw", f"{key}={value}"], check=False)
    for directory in ("/var/lib/kubelet", "/var/lib/cni"):
        if before and directory not in before["dirs"]:
            shutil.rmtree(directory, ignore_errors=True)
    controlplane.down(paths.plane)
    run(["ip", "link", "delete", NODE_INTERFACE], check=False)
    shutil.rmtree(state, ignore_errors=True)
    log("down")


def running(state: Path = DEFAULT_DIR) -> bool:
    pid = state / "kubelet.pid"
    return (
        Path(state / "cluster.json").exists()
        and pid.exists()
        and controlplane._alive(int(pid.read_text()))
    )


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("command", choices=["up", "down", "import", "status", "env"])
    parser.add_argument("images", nargs="*")
    parser.add_argument("--dir", type=Path, default=DEFAULT_DIR)
    args = parser.parse_args()
    paths = Paths(args.dir)
    if args.command == "up":
        if running(args.dir):
            log(f"already running from {args.dir}")
        else:
            up(args.dir)
        print(paths.kubeconfig)
    elif args.command == "down":
        down(args.dir)
    elif args.command == "import":
        import_images(paths, args.images)
    elif args.command == "env":
        print(f"export KUBECONFIG={paths.kubeconfig}")
    elif args.command == "status":
        print("running" if running(args.dir) else "stopped")
        return 0 if running(args.dir) else 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
