"""Docker I/O for event collection: list service containers, follow their stdout, stop them.

Followers hold one streaming request each for as long as a container runs, so they
use their own API client: no read timeout (an idle decky may be silent for days)
and a connection pool sized for every follower of the node. Lines are bounded: a
container that writes a line longer than `max_line` (hostile or broken) has that
line dropped and counted, never buffered without limit.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterator
from typing import Any

import docker
import docker.errors
import requests.exceptions

from decnet.agent.runtime import dockerconn
from decnet.agent.runtime.engine import DockerError, EngineUnavailable
from decnet.kube import names

MAX_LINE = 16384 + 64


@dataclasses.dataclass(frozen=True)
class ServiceContainer:
    id: str
    name: str
    labels: dict[str, str]
    state: str  # running, exited, created, ...


class Logs:
    def __init__(self, node: str, base_url: str | None = None, pool: int = 4096) -> None:
        kwargs: dict[str, Any] = {"timeout": None, "max_pool_size": pool}
        try:
            if base_url:
                self.api = docker.APIClient(base_url=base_url, **kwargs)
            else:
                self.api = docker.APIClient(
                    **{**docker.utils.kwargs_from_env(), **kwargs}, version="auto"
                )
            self.short = docker.APIClient(
                **{**docker.utils.kwargs_from_env(), "timeout": 30}, version="auto"
            )
        except docker.errors.DockerException as error:
            raise EngineUnavailable(str(error)) from error
        dockerconn.one_pool_per_socket(self.api)
        dockerconn.one_pool_per_socket(self.short)
        self.node = node

    def _service_labels(self) -> dict[str, str]:
        """The labels every service container of this node carries."""
        return {
            names.LABEL_MANAGED_BY: names.MANAGED_BY,
            names.LABEL_AGENT_NODE: self.node,
            names.LABEL_ROLE: names.ROLE_SERVICE,
        }

    def service_containers(self) -> list[ServiceContainer]:
        """This node's service containers in every state (an exited one may hold last words)."""
        filters = {"label": [f"{k}={v}" for k, v in self._service_labels().items()]}
        try:
            raw = self.short.containers(all=True, filters=filters)
        except docker.errors.APIError as error:
            raise DockerError(str(error.explanation or error)) from error
        except (requests.exceptions.ConnectionError, requests.exceptions.Timeout) as error:
            raise EngineUnavailable(str(error)) from error
        out = []
        for c in raw:
            name = next(iter(c.get("Names") or []), "").lstrip("/")
            out.append(
                ServiceContainer(
                    str(c["Id"]), name, dict(c.get("Labels") or {}), str(c.get("State", ""))
                )
            )
        return out

    def _inspect(self, container_id: str) -> dict[str, Any] | None:
        """Docker's inspect of one container; None when it is gone."""
        try:
            return dict(self.short.inspect_container(container_id))
        except docker.errors.NotFound:
            return None
        except docker.errors.APIError as error:
            raise DockerError(str(error.explanation or error)) from error
        except (requests.exceptions.ConnectionError, requests.exceptions.Timeout) as error:
            raise EngineUnavailable(str(error)) from error

    def service_container(self, container_id: str) -> ServiceContainer | None:
        """One service container of this node (None when gone or not one): for a container
        just started, without listing every container."""
        info = self._inspect(container_id)
        if info is None:
            return None
        labels = dict((info.get("Config") or {}).get("Labels") or {})
        if any(labels.get(k) != v for k, v in self._service_labels().items()):
            return None
        state = str((info.get("State") or {}).get("Status", ""))
        return ServiceContainer(
            str(info["Id"]), str(info.get("Name", "")).lstrip("/"), labels, state
        )

    def labels(self, container_id: str) -> dict[str, str]:
        """The labels of one container; {} when it is gone."""
        info = self._inspect(container_id)
        return dict(((info or {}).get("Config") or {}).get("Labels") or {})

    def follow(
        self, container_id: str, since: int, max_line: int = MAX_LINE, follow: bool = True
    ) -> Iterator[tuple[str, str] | None]:
        """(docker timestamp, line) for each stdout line from `since` (seconds) on, until the
        container stops; None for a line dropped as too long. Raises DockerError /
        EngineUnavailable."""
        try:
            stream = self.api.logs(
                container_id,
                stdout=True,
                stderr=False,
                stream=True,
                follow=follow,
                timestamps=True,
                since=since if since > 0 else None,
            )
        except docker.errors.NotFound:
            return
        except docker.errors.APIError as error:
            raise DockerError(str(error.explanation or error)) from error
        except (requests.exceptions.ConnectionError, requests.exceptions.Timeout) as error:
            raise EngineUnavailable(str(error)) from error
        buf = b""
        oversized = False
        try:
            for chunk in stream:
                buf += chunk
                while True:
                    nl = buf.find(b"\n")
                    if nl < 0:
                        break
                    raw, buf = buf[:nl], buf[nl + 1 :]
                    if oversized:
                        oversized = False  # the tail of a line already dropped
                        continue
                    yield split_line(raw)
                if len(buf) > max_line:
                    buf = b""
                    oversized = True
                    yield None
        except (requests.exceptions.ConnectionError, requests.exceptions.ChunkedEncodingError) as e:
            raise EngineUnavailable(str(e)) from e
        finally:
            stream.close()

    def stop(self, container_id: str, timeout: int = 2) -> None:
        """Stop (not remove) a container so its output ends and a follower can finish."""
        try:
            self.short.stop(container_id, timeout=timeout)
        except docker.errors.NotFound:
            return
        except docker.errors.APIError as error:
            raise DockerError(str(error.explanation or error)) from error
        except (requests.exceptions.ConnectionError, requests.exceptions.Timeout) as error:
            raise EngineUnavailable(str(error)) from error


def split_line(raw: bytes) -> tuple[str, str] | None:
    """Docker's `<RFC 3339 nano timestamp> <line>`; None when malformed."""
    text = raw.decode("utf-8", "replace")
    ts, sep, line = text.partition(" ")
    if not sep:
        return None
    return ts, line.rstrip("\r")
