"""The agent's Docker clients keep one connection pool per socket, whatever the URL."""

import docker

from decnet.agent.runtime import dockerconn


def test_requests_about_different_containers_share_one_pool() -> None:
    api = docker.APIClient(base_url="unix:///var/run/docker.sock", version="1.41")
    adapter = api.get_adapter("http+docker://localhost/v1.41/containers/a/json")
    before = adapter.get_connection("http+docker://localhost/v1.41/containers/a/json")
    assert before is not adapter.get_connection("http+docker://localhost/v1.41/containers/b/json")
    dockerconn.one_pool_per_socket(api)
    dockerconn.one_pool_per_socket(api)  # twice is once
    one = adapter.get_connection("http+docker://localhost/v1.41/containers/a/json")
    assert one is adapter.get_connection("http+docker://localhost/v1.41/containers/b/start")
    assert one is adapter.get_connection("http+docker://localhost/v1.41/networks")
