#!/usr/bin/env python3
"""A real Kubernetes control plane (etcd + kube-apiserver) as local processes.

envtest style: no kubelet, scheduler or controller-manager, so no pod runs
and namespaces never finish deleting. It is what the integration and e2e
tests and the local demo talk to. Everything lives in one state directory:
certificates, etcd data, logs, pids and the admin kubeconfig.

    python3 hack/controlplane.py up   [--dir D]   # prints the kubeconfig path
    python3 hack/controlplane.py down [--dir D]   # stops what `up` started, by pid
    python3 hack/controlplane.py env  [--dir D]   # prints `export KUBECONFIG=...`
"""

from __future__ import annotations

import argparse
import datetime
import ipaddress
import json
import os
import shutil
import signal
import socket
import ssl
import subprocess
import sys
import time
import urllib.error
import urllib.request
from dataclasses import dataclass
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.x509.oid import NameOID

HERE = Path(__file__).resolve().parent
DEFAULT_DIR = Path(os.environ.get("DECNET_TESTBED_DIR", "/tmp/decnet-testbed"))
CACHE = Path(
    os.environ.get(
        "DECNET_CACHE",
        Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache")) / "decnet-operator",
    )
)


def log(message: str) -> None:
    print(f"[controlplane] {message}", file=sys.stderr, flush=True)


@dataclass
class ControlPlane:
    state_dir: Path
    kubeconfig: Path
    server: str
    etcd_version: str
    apiserver_version: str
    started_in_seconds: float

    def as_dict(self) -> dict[str, object]:
        return {k: str(v) if isinstance(v, Path) else v for k, v in self.__dict__.items()}


def bin_dir() -> Path:
    """The built binaries; builds them (cached by version) when missing."""
    current = CACHE / "bin" / "current"
    needed = ["kube-apiserver", "kubectl"]
    if not all((current / name).exists() for name in needed) or not etcd_binary(current):
        out = subprocess.run(
            ["bash", str(HERE / "build-binaries.sh"), "all"],
            check=True,
            stdout=subprocess.PIPE,
            text=True,
        )
        current = Path(out.stdout.strip().splitlines()[-1])
    return current


def etcd_binary(current: Path) -> Path | None:
    """etcd 3.6 built from the module proxy, else Debian's etcd-server 3.4 as a fallback."""
    if (current / "etcd").exists():
        return current / "etcd"
    system = shutil.which("etcd")
    return Path(system) if system else None


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


# --- certificates -----------------------------------------------------------------


def _key() -> ec.EllipticCurvePrivateKey:
    return ec.generate_private_key(ec.SECP256R1())


def _write_key(path: Path, key: ec.EllipticCurvePrivateKey | rsa.RSAPrivateKey) -> None:
    path.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    path.chmod(0o600)


def _cert(
    subject: x509.Name,
    public_key: ec.EllipticCurvePublicKey,
    issuer: x509.Name,
    issuer_key: ec.EllipticCurvePrivateKey,
    *,
    ca: bool,
    sans: list[x509.GeneralName] | None = None,
    usage: list[x509.ObjectIdentifier] | None = None,
) -> x509.Certificate:
    now = datetime.datetime.now(datetime.UTC)
    builder = (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(issuer)
        .public_key(public_key)
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=365))
        .add_extension(x509.BasicConstraints(ca=ca, path_length=None), critical=True)
    )
    if ca:
        builder = builder.add_extension(
            x509.KeyUsage(True, False, False, False, False, True, True, False, False), critical=True
        )
    if sans:
        builder = builder.add_extension(x509.SubjectAlternativeName(sans), critical=False)
    if usage:
        builder = builder.add_extension(x509.ExtendedKeyUsage(usage), critical=False)
    return builder.sign(issuer_key, hashes.SHA256())


def _pem(cert: x509.Certificate) -> bytes:
    return cert.public_bytes(serialization.Encoding.PEM)


def make_certs(pki: Path, extra_ips: tuple[str, ...] = ()) -> None:
    """Serving CA + serving cert, client CA + admin cert (system:masters), SA key pair.

    `extra_ips` are more addresses the serving cert is valid for (a node's address and
    the `kubernetes` Service's ClusterIP when pods call the API server).
    """
    pki.mkdir(parents=True, exist_ok=True)
    serving_ca_key = _key()
    serving_ca_name = x509.Name(
        [x509.NameAttribute(NameOID.COMMON_NAME, "decnet-testbed-serving-ca")]
    )
    serving_ca = _cert(
        serving_ca_name, serving_ca_key.public_key(), serving_ca_name, serving_ca_key, ca=True
    )
    serving_key = _key()
    serving = _cert(
        x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "kube-apiserver")]),
        serving_key.public_key(),
        serving_ca_name,
        serving_ca_key,
        ca=False,
        sans=[
            x509.DNSName("localhost"),
            x509.DNSName("kubernetes.default.svc"),
            x509.IPAddress(ipaddress.ip_address("127.0.0.1")),
            x509.IPAddress(ipaddress.ip_address("10.0.0.1")),
            *(x509.IPAddress(ipaddress.ip_address(ip)) for ip in extra_ips),
        ],
        usage=[x509.oid.ExtendedKeyUsageOID.SERVER_AUTH],
    )
    client_ca_key = _key()
    client_ca_name = x509.Name(
        [x509.NameAttribute(NameOID.COMMON_NAME, "decnet-testbed-client-ca")]
    )
    client_ca = _cert(
        client_ca_name, client_ca_key.public_key(), client_ca_name, client_ca_key, ca=True
    )
    admin_key = _key()
    admin = _cert(
        x509.Name(
            [
                x509.NameAttribute(NameOID.ORGANIZATION_NAME, "system:masters"),
                x509.NameAttribute(NameOID.COMMON_NAME, "decnet-admin"),
            ]
        ),
        admin_key.public_key(),
        client_ca_name,
        client_ca_key,
        ca=False,
        usage=[x509.oid.ExtendedKeyUsageOID.CLIENT_AUTH],
    )
    sa_key = rsa.generate_private_key(public_exponent=65537, key_size=2048)

    (pki / "serving-ca.crt").write_bytes(_pem(serving_ca))
    # kube-apiserver picks these two up from --cert-dir by name.
    (pki / "apiserver.crt").write_bytes(_pem(serving) + _pem(serving_ca))
    _write_key(pki / "apiserver.key", serving_key)
    (pki / "client-ca.crt").write_bytes(_pem(client_ca))
    _write_key(pki / "client-ca.key", client_ca_key)
    (pki / "admin.crt").write_bytes(_pem(admin))
    _write_key(pki / "admin.key", admin_key)
    _write_key(pki / "sa.key", sa_key)
    (pki / "sa.pub").write_bytes(
        sa_key.public_key().public_bytes(
            serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
        )
    )


def issue_client_cert(pki: Path, name: str, common_name: str, group: str | None = None) -> None:
    """A client cert `<name>.crt/.key` from the client CA: user `common_name` in `group`."""
    ca_key = serialization.load_pem_private_key((pki / "client-ca.key").read_bytes(), None)
    assert isinstance(ca_key, ec.EllipticCurvePrivateKey)
    ca = x509.load_pem_x509_certificate((pki / "client-ca.crt").read_bytes())
    attributes = [x509.NameAttribute(NameOID.COMMON_NAME, common_name)]
    if group:
        attributes.insert(0, x509.NameAttribute(NameOID.ORGANIZATION_NAME, group))
    key = _key()
    cert = _cert(
        x509.Name(attributes),
        key.public_key(),
        ca.subject,
        ca_key,
        ca=False,
        usage=[x509.oid.ExtendedKeyUsageOID.CLIENT_AUTH],
    )
    (pki / f"{name}.crt").write_bytes(_pem(cert))
    _write_key(pki / f"{name}.key", key)


def write_kubeconfig(path: Path, server: str, pki: Path, user: str = "admin") -> None:
    import base64

    def b64(name: str) -> str:
        return base64.b64encode((pki / name).read_bytes()).decode()

    config = {
        "apiVersion": "v1",
        "kind": "Config",
        "clusters": [
            {
                "name": "decnet-testbed",
                "cluster": {"server": server, "certificate-authority-data": b64("serving-ca.crt")},
            }
        ],
        "users": [
            {
                "name": "decnet-admin",
                "user": {
                    "client-certificate-data": b64(f"{user}.crt"),
                    "client-key-data": b64(f"{user}.key"),
                },
            }
        ],
        "contexts": [
            {
                "name": "decnet-testbed",
                "context": {"cluster": "decnet-testbed", "user": "decnet-admin"},
            }
        ],
        "current-context": "decnet-testbed",
    }
    path.write_text(json.dumps(config, indent=2))
    path.chmod(0o600)


# --- processes ---------------------------------------------------------------------


def _start(name: str, argv: list[str], state: Path) -> int:
    logfile = open(state / f"{name}.log", "ab")  # noqa: SIM115 - handed to the child
    proc = subprocess.Popen(argv, stdout=logfile, stderr=subprocess.STDOUT, start_new_session=True)
    (state / f"{name}.pid").write_text(str(proc.pid))
    return proc.pid


def _wait(
    url: str,
    deadline: float,
    what: str,
    context: ssl.SSLContext | None = None,
    pid: int | None = None,
) -> None:
    last = ""
    while time.monotonic() < deadline:
        if pid is not None and not _alive(pid):
            raise RuntimeError(f"{what} exited during start-up; see its log")
        try:
            with urllib.request.urlopen(url, timeout=2, context=context) as response:
                if response.status == 200:
                    return
        except (urllib.error.URLError, OSError) as error:
            last = str(error)
        time.sleep(0.1)
    raise TimeoutError(f"{what} not ready at {url}: {last}")


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    # a zombie child of ours counts as gone
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
        return stat.split(")")[-1].split()[0] != "Z"
    except OSError:
        return False


def _version(binary: Path) -> str:
    out = subprocess.run(
        [str(binary), "--version"], capture_output=True, text=True, check=False
    ).stdout
    return out.strip().splitlines()[0] if out.strip() else "unknown"


def admin_context(pki: Path) -> ssl.SSLContext:
    context = ssl.create_default_context(cafile=str(pki / "serving-ca.crt"))
    context.load_cert_chain(str(pki / "admin.crt"), str(pki / "admin.key"))
    return context


@dataclass(frozen=True)
class NodeAccess:
    """How a control plane must differ when a kubelet and pods use it (hack/cluster.py).

    The API server listens on and advertises `address` (pods cannot reach 127.0.0.1),
    pods get ServiceAccount tokens (the ServiceAccount admission plugin stays on), the
    Node authorizer and NodeRestriction guard kubelets, and the API server has a client
    cert for the kubelet's API (logs, exec).
    """

    address: str
    service_cidr: str
    kubernetes_service_ip: str
    # the Pod Security level enforced where a namespace sets none, as many clusters do
    pod_security_default: str = "baseline"


def up(
    state: Path = DEFAULT_DIR, timeout: float = 90.0, node: NodeAccess | None = None
) -> ControlPlane:
    """Starts etcd and kube-apiserver; returns when namespace `default` exists."""
    begin = time.monotonic()
    if (state / "apiserver.pid").exists() and _alive(int((state / "apiserver.pid").read_text())):
        raise RuntimeError(f"a control plane already runs from {state}; run `down` first")
    if state.exists():
        shutil.rmtree(state)
    state.mkdir(parents=True)
    binaries = bin_dir()
    etcd = etcd_binary(binaries)
    if etcd is None:
        raise RuntimeError("no etcd binary (build failed and no Debian etcd-server)")
    pki = state / "pki"
    make_certs(pki, (node.address, node.kubernetes_service_ip) if node else ())

    client_port, peer_port, secure_port = free_port(), free_port(), free_port()
    etcd_url = f"http://127.0.0.1:{client_port}"
    peer_url = f"http://127.0.0.1:{peer_port}"
    etcd_version = _version(etcd)
    etcd_argv = [
        str(etcd),
        "--name=decnet-testbed",
        f"--data-dir={state / 'etcd'}",
        f"--listen-client-urls={etcd_url}",
        f"--advertise-client-urls={etcd_url}",
        f"--listen-peer-urls={peer_url}",
        f"--initial-advertise-peer-urls={peer_url}",
        f"--initial-cluster=decnet-testbed={peer_url}",
        "--log-level=warn",
    ]
    if "3.4" not in etcd_version:
        etcd_argv.append("--unsafe-no-fsync=true")
    etcd_pid = _start("etcd", etcd_argv, state)
    deadline = time.monotonic() + timeout
    _wait(f"{etcd_url}/health", deadline, "etcd", pid=etcd_pid)

    apiserver = binaries / "kube-apiserver"
    address = node.address if node else "127.0.0.1"
    api_argv = [
        str(apiserver),
        f"--etcd-servers={etcd_url}",
        f"--cert-dir={pki}",
        f"--secure-port={secure_port}",
        f"--bind-address={address}",
        f"--advertise-address={address}",
        f"--service-cluster-ip-range={node.service_cidr if node else '10.0.0.0/24'}",
        "--allow-privileged=true",
        f"--client-ca-file={pki / 'client-ca.crt'}",
        "--service-account-issuer=https://kubernetes.default.svc",
        f"--service-account-key-file={pki / 'sa.pub'}",
        f"--service-account-signing-key-file={pki / 'sa.key'}",
        f"--audit-log-path={state / 'audit.log'}",
        f"--audit-policy-file={_audit_policy(state)}",
        "--audit-log-maxsize=0",
        "--v=0",
    ]
    if node is None:
        api_argv += ["--authorization-mode=RBAC", "--disable-admission-plugins=ServiceAccount"]
    else:
        issue_client_cert(
            pki, "apiserver-kubelet-client", "kube-apiserver-kubelet-client", "system:masters"
        )
        api_argv += [
            "--authorization-mode=Node,RBAC",
            "--enable-admission-plugins=NodeRestriction",
            f"--kubelet-client-certificate={pki / 'apiserver-kubelet-client.crt'}",
            f"--kubelet-client-key={pki / 'apiserver-kubelet-client.key'}",
            "--kubelet-preferred-address-types=InternalIP,Hostname",
            f"--admission-control-config-file={_admission_config(state, node)}",
        ]
    (state / "apiserver.argv.json").write_text(json.dumps(api_argv))
    api_pid = _start("apiserver", api_argv, state)
    server = f"https://{address}:{secure_port}"
    context = admin_context(pki)
    _wait(f"{server}/readyz", deadline, "kube-apiserver", context=context, pid=api_pid)
    _wait(
        f"{server}/api/v1/namespaces/default",
        deadline,
        "namespace default",
        context=context,
        pid=api_pid,
    )
    kubeconfig = state / "kubeconfig"
    write_kubeconfig(kubeconfig, server, pki)
    plane = ControlPlane(
        state_dir=state,
        kubeconfig=kubeconfig,
        server=server,
        etcd_version=etcd_version,
        apiserver_version=_version(apiserver),
        started_in_seconds=round(time.monotonic() - begin, 2),
    )
    (state / "controlplane.json").write_text(json.dumps(plane.as_dict(), indent=2))
    log(f"up in {plane.started_in_seconds} s: {plane.apiserver_version}, {etcd_version}, {server}")
    return plane


def _admission_config(state: Path, node: NodeAccess) -> Path:
    """PodSecurity admission with a cluster-wide default level (namespaces may override)."""
    level = node.pod_security_default
    config = state / "admission.yaml"
    config.write_text(
        "apiVersion: apiserver.config.k8s.io/v1\nkind: AdmissionConfiguration\nplugins:\n"
        "- name: PodSecurity\n  configuration:\n"
        "    apiVersion: pod-security.admission.config.k8s.io/v1\n"
        "    kind: PodSecurityConfiguration\n"
        f"    defaults: {{enforce: {level}, enforce-version: latest, audit: {level},"
        f" audit-version: latest, warn: {level}, warn-version: latest}}\n"
        "    exemptions: {namespaces: [kube-system]}\n"
    )
    return config


def _audit_policy(state: Path) -> Path:
    """Audit writes only (metadata level): the benchmarks count status writes from it."""
    policy = state / "audit-policy.yaml"
    policy.write_text(
        "apiVersion: audit.k8s.io/v1\nkind: Policy\nomitStages: [RequestReceived]\nrules:\n"
        "- level: Metadata\n  verbs: [create, update, patch, delete, deletecollection]\n"
        "- level: None\n"
    )
    return policy


def stop_apiserver(state: Path) -> None:
    """Stops only kube-apiserver (etcd keeps the data): the API is unreachable until restarted."""
    _stop(state, "apiserver")


def start_apiserver(state: Path, timeout: float = 60.0) -> None:
    """Starts kube-apiserver again with the same flags and port, and waits for /readyz."""
    argv = json.loads((state / "apiserver.argv.json").read_text())
    pid = _start("apiserver", argv, state)
    server = json.loads((state / "controlplane.json").read_text())["server"]
    deadline = time.monotonic() + timeout
    _wait(
        f"{server}/readyz",
        deadline,
        "kube-apiserver",
        context=admin_context(state / "pki"),
        pid=pid,
    )


def down(state: Path = DEFAULT_DIR) -> None:
    """Stops exactly the processes `up` started, recorded by pid."""
    for name in ("apiserver", "etcd"):
        _stop(state, name)


def _stop(state: Path, name: str) -> None:
    pidfile = state / f"{name}.pid"
    if not pidfile.exists():
        return
    pid = int(pidfile.read_text())
    if _alive(pid):
        os.kill(pid, signal.SIGTERM)
        for _ in range(100):
            if not _alive(pid):
                break
            time.sleep(0.1)
        else:
            os.kill(pid, signal.SIGKILL)
    try:
        os.waitpid(pid, os.WNOHANG)
    except ChildProcessError:
        pass
    pidfile.unlink()


def running(state: Path = DEFAULT_DIR) -> bool:
    pidfile = state / "apiserver.pid"
    return pidfile.exists() and _alive(int(pidfile.read_text())) and (state / "kubeconfig").exists()


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("command", choices=["up", "down", "env", "status"])
    parser.add_argument("--dir", type=Path, default=DEFAULT_DIR)
    args = parser.parse_args()
    if args.command == "up":
        if running(args.dir):
            log(f"already running from {args.dir}")
        else:
            up(args.dir)
        print(args.dir / "kubeconfig")
    elif args.command == "down":
        down(args.dir)
    elif args.command == "env":
        print(f"export KUBECONFIG={args.dir / 'kubeconfig'}")
    elif args.command == "status":
        print("running" if running(args.dir) else "stopped")
        return 0 if running(args.dir) else 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
