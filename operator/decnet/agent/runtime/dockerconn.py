"""One connection pool per Docker socket, not one per request URL.

docker-py's unix-socket adapter looks its connection pool up by the request's whole URL
(`/containers/<id>/start`, `/containers/<id>/json`, ...) and keeps 25 of them: every
call about a new container opens a new socket, and older pools are closed as new ones
push them out. The agent makes thousands of such calls when a fleet is deployed; with
one pool per socket they reuse kept-alive connections instead.
"""

from __future__ import annotations

from typing import Any

from docker.transport.unixconn import UnixHTTPAdapter

# the key every request's pool is looked up by (the socket is the adapter's own)
POOL_KEY = "http+docker://localhost"


def one_pool_per_socket(api: Any) -> None:
    """Make every unix-socket adapter of this docker.APIClient share one pool."""
    for adapter in list(getattr(api, "adapters", {}).values()):
        if isinstance(adapter, UnixHTTPAdapter) and not getattr(adapter, "_one_pool", False):
            by_url = adapter.get_connection

            def get_connection(url: str, proxies: Any = None, _by_url: Any = by_url) -> Any:
                return _by_url(POOL_KEY, proxies)

            adapter.get_connection = get_connection
            adapter._one_pool = True
