"""Least privilege for decky containers: what Docker is asked for at create time.

A decky is attacked by design, so an attacker's code may run in any service
container. Docker's defaults (14 capabilities, a writable root, no limits, an
unbounded log) are too much for that. This module turns a ServiceTemplate's
`security` block (or its absence) into `create_host_config` keyword arguments;
it is pure, so every default is a unit test, and the engine only merges the
result into what it already passes. A template may ask for less or a little
more (capabilities from Docker's default set only, more tmpfs paths, other
limits, another runtime such as runsc); nothing here can be loosened per decky.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

# Bumped when the defaults change, so running service containers are recreated with them.
HARDENING_VERSION = "1"

DEFAULT_TMPFS = ("/tmp", "/run", "/var/tmp")
# noexec: nothing an attacker drops in a scratch directory runs from there.
TMPFS_OPTIONS = "rw,nosuid,nodev,noexec,size=64m"
DEFAULT_PIDS = 256
DEFAULT_MEMORY_MIB = 256
DEFAULT_CPU_MILLICORES = 500
BASE_PIDS = 32
BASE_MEMORY_MIB = 32
BASE_CPU_MILLICORES = 100
NO_NEW_PRIVILEGES = "no-new-privileges:true"


@dataclass(frozen=True)
class Security:
    """A ServiceTemplate's `security` block with defaults applied (in the plan)."""

    capabilities: tuple[str, ...] = ()
    read_only_root_filesystem: bool = True
    tmpfs: tuple[str, ...] = ()
    pids_limit: int = DEFAULT_PIDS
    memory_mib: int = DEFAULT_MEMORY_MIB
    cpu_millicores: int = DEFAULT_CPU_MILLICORES
    runtime: str = ""

    @classmethod
    def from_wire(cls, raw: Mapping[str, Any] | None) -> Security:
        raw = raw or {}
        return cls(
            capabilities=tuple(sorted({str(c).upper() for c in raw.get("capabilities") or ()})),
            read_only_root_filesystem=bool(raw.get("readOnlyRootFilesystem", True)),
            tmpfs=tuple(sorted({str(p) for p in raw.get("tmpfs") or ()})),
            pids_limit=int(raw.get("pidsLimit") or DEFAULT_PIDS),
            memory_mib=int(raw.get("memoryMiB") or DEFAULT_MEMORY_MIB),
            cpu_millicores=int(raw.get("cpuMillicores") or DEFAULT_CPU_MILLICORES),
            runtime=str(raw.get("runtime") or ""),
        )

    def as_hash_input(self) -> dict[str, Any]:
        return {
            "v": HARDENING_VERSION,
            "caps": list(self.capabilities),
            "ro": self.read_only_root_filesystem,
            "tmpfs": list(self.tmpfs),
            "pids": self.pids_limit,
            "mem": self.memory_mib,
            "cpu": self.cpu_millicores,
            "runtime": self.runtime,
        }


@dataclass(frozen=True)
class LogLimits:
    """json-file rotation: a log flood costs at most max_size × max_files on the node."""

    max_size: str = "10m"
    max_files: int = 3

    def log_config(self) -> dict[str, Any]:
        return {
            "Type": "json-file",
            "Config": {"max-size": self.max_size, "max-file": str(self.max_files)},
        }


def _tmpfs(paths: tuple[str, ...]) -> dict[str, str]:
    return {p: TMPFS_OPTIONS for p in sorted({*DEFAULT_TMPFS, *paths})}


def host_config_options(security: Security, logs: LogLimits) -> dict[str, Any]:
    """Keyword arguments for `APIClient.create_host_config` of a service container."""
    options: dict[str, Any] = {
        "cap_drop": ["ALL"],
        "cap_add": list(security.capabilities) or None,
        "security_opt": [NO_NEW_PRIVILEGES],
        "read_only": security.read_only_root_filesystem,
        "tmpfs": _tmpfs(security.tmpfs),
        "pids_limit": security.pids_limit,
        "mem_limit": security.memory_mib * 1024 * 1024,
        # no swap beyond the memory limit: a memory bomb is OOM-killed, not paged
        "memswap_limit": security.memory_mib * 1024 * 1024,
        "nano_cpus": security.cpu_millicores * 1_000_000,
        "log_config": logs.log_config(),
    }
    if security.runtime:
        options["runtime"] = security.runtime
    return options


def base_host_config_options(logs: LogLimits) -> dict[str, Any]:
    """The base only sleeps and holds the network namespace: NET_ADMIN and nothing else.

    NET_ADMIN stays because persona work (a MAC change, routes) runs in the base; a
    gateway's forwarding is a sysctl set at create time, which needs no capability.
    """
    return {
        "cap_drop": ["ALL"],
        "cap_add": ["NET_ADMIN"],
        "security_opt": [NO_NEW_PRIVILEGES],
        "read_only": True,
        "tmpfs": _tmpfs(()),
        "pids_limit": BASE_PIDS,
        "mem_limit": BASE_MEMORY_MIB * 1024 * 1024,
        "memswap_limit": BASE_MEMORY_MIB * 1024 * 1024,
        "nano_cpus": BASE_CPU_MILLICORES * 1_000_000,
        "log_config": logs.log_config(),
    }


def base_sysctls(forwards_l3: bool) -> dict[str, str]:
    """Per-network-namespace sysctls of the base, shared by its services.

    Every port is bindable without CAP_NET_BIND_SERVICE, so services listen on 22 or
    445 with no capability at all.
    """
    sysctls = {"net.ipv4.ip_unprivileged_port_start": "0"}
    if forwards_l3:
        sysctls["net.ipv4.ip_forward"] = "1"
    return sysctls
