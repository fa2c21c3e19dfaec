"""The operator's in-cluster login: the API server's address as client-go finds it."""

from pathlib import Path

from decnet.controller import login


def test_the_service_environment_gives_the_server_address() -> None:
    env = {"KUBERNETES_SERVICE_HOST": "10.233.0.1", "KUBERNETES_SERVICE_PORT": "443"}
    assert login.in_cluster_server(env) == "https://10.233.0.1:443"


def test_an_ipv6_service_address_is_bracketed() -> None:
    env = {"KUBERNETES_SERVICE_HOST": "fd00::1", "KUBERNETES_SERVICE_PORT": "6443"}
    assert login.in_cluster_server(env) == "https://[fd00::1]:6443"


def test_outside_a_pod_there_is_no_in_cluster_server() -> None:
    assert login.in_cluster_server({}) is None
    assert login.in_cluster_server({"KUBERNETES_SERVICE_HOST": "10.0.0.1"}) is None


def test_the_mounted_service_account_is_what_it_logs_in_with(tmp_path: Path) -> None:
    (tmp_path / "token").write_text("tok-123\n")
    (tmp_path / "ca.crt").write_text("-----BEGIN CERTIFICATE-----\n")
    (tmp_path / "namespace").write_text("decnet-system")
    env = {"KUBERNETES_SERVICE_HOST": "10.233.0.1", "KUBERNETES_SERVICE_PORT": "443"}
    info = login.in_cluster(env, tmp_path)
    assert info is not None
    assert info.server == "https://10.233.0.1:443"
    assert info.token == "tok-123"
    assert info.ca_path == str(tmp_path / "ca.crt")
    assert info.default_namespace == "decnet-system"


def test_without_a_token_it_is_not_in_a_cluster(tmp_path: Path) -> None:
    env = {"KUBERNETES_SERVICE_HOST": "10.233.0.1", "KUBERNETES_SERVICE_PORT": "443"}
    assert login.in_cluster(env, tmp_path) is None
