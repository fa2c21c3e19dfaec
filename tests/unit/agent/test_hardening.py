"""Least-privilege defaults: what Docker is asked for when a decky's containers are made."""

from __future__ import annotations

from decnet.agent import desired, hardening
from decnet.api import v1alpha1


def test_a_service_without_a_security_block_gets_every_default() -> None:
    opts = hardening.host_config_options(hardening.Security(), hardening.LogLimits())
    assert opts["cap_drop"] == ["ALL"]
    assert opts["cap_add"] is None
    assert opts["security_opt"] == ["no-new-privileges:true"]
    assert opts["read_only"] is True
    assert set(opts["tmpfs"]) == {"/tmp", "/run", "/var/tmp"}
    assert all("noexec" in o and "nosuid" in o for o in opts["tmpfs"].values())
    assert opts["pids_limit"] == 256
    assert opts["mem_limit"] == opts["memswap_limit"] == 256 * 1024 * 1024
    assert opts["nano_cpus"] == 500_000_000
    assert opts["log_config"] == {
        "Type": "json-file",
        "Config": {"max-size": "10m", "max-file": "3"},
    }
    assert "runtime" not in opts


def test_a_template_adds_what_its_service_needs_and_nothing_else() -> None:
    tpl = v1alpha1.ServiceTemplate.model_validate(
        {
            "metadata": {"name": "smb"},
            "spec": {
                "image": "x",
                "security": {
                    "capabilities": ["NET_RAW", "CHOWN"],
                    "readOnlyRootFilesystem": False,
                    "tmpfs": ["/var/lib/samba"],
                    "pidsLimit": 64,
                    "memoryMiB": 512,
                    "cpuMillicores": 250,
                    "runtime": "runsc",
                },
            },
        }
    )
    assert tpl.spec.security is not None
    sec = hardening.Security.from_wire(tpl.spec.security.model_dump(by_alias=True))
    opts = hardening.host_config_options(sec, hardening.LogLimits("1m", 2))
    assert opts["cap_drop"] == ["ALL"]
    assert opts["cap_add"] == ["CHOWN", "NET_RAW"]
    assert opts["read_only"] is False
    assert "/var/lib/samba" in opts["tmpfs"]
    assert opts["pids_limit"] == 64
    assert opts["mem_limit"] == 512 * 1024 * 1024
    assert opts["nano_cpus"] == 250_000_000
    assert opts["runtime"] == "runsc"
    assert opts["log_config"]["Config"] == {"max-size": "1m", "max-file": "2"}


def test_the_base_keeps_only_net_admin_and_tight_limits() -> None:
    opts = hardening.base_host_config_options(hardening.LogLimits())
    assert opts["cap_drop"] == ["ALL"]
    assert opts["cap_add"] == ["NET_ADMIN"]
    assert opts["read_only"] is True
    assert opts["pids_limit"] <= 64
    assert hardening.base_sysctls(False) == {"net.ipv4.ip_unprivileged_port_start": "0"}
    assert hardening.base_sysctls(True)["net.ipv4.ip_forward"] == "1"


def test_a_security_change_recreates_the_service_but_not_its_siblings() -> None:
    from decnet.agent import planner

    plain = planner.ServiceWant("smb", "img")
    tighter = planner.ServiceWant("smb", "img", security=hardening.Security(pids_limit=32))
    assert planner.service_hash(plain, "b") != planner.service_hash(tighter, "b")


def test_capabilities_beyond_dockers_default_set_are_not_accepted() -> None:
    import pydantic
    import pytest

    with pytest.raises(pydantic.ValidationError):
        v1alpha1.SecuritySpec.model_validate({"capabilities": ["SYS_ADMIN"]})
    with pytest.raises(pydantic.ValidationError):
        v1alpha1.SecuritySpec.model_validate({"tmpfs": ["relative/path"]})


def test_the_plan_carries_the_security_block_to_the_agent() -> None:
    decky = v1alpha1.Decky.model_validate(
        {
            "metadata": {"name": "ws-01", "namespace": "decoys", "uid": "u1"},
            "spec": {"services": ["smb"], "networks": [{"lan": "office"}]},
            "status": {
                "plan": {
                    "hash": "h",
                    "hostname": "ws-01",
                    "baseImage": "b",
                    "networks": [
                        {
                            "lan": "office",
                            "network": "n",
                            "ip": "10.0.0.2",
                            "subnet": "10.0.0.0/24",
                            "gateway": "10.0.0.1",
                            "topology": "maze",
                            "egress": [
                                {"cidr": "198.51.100.0/24", "ports": [80], "description": "d"}
                            ],
                        }
                    ],
                    "services": [
                        {"name": "smb", "image": "i", "security": {"pidsLimit": 99}},
                        {"name": "rdp", "image": "i"},
                    ],
                }
            },
        }
    )
    want = desired.want_from_decky(decky, lambda *_: None)
    assert want is not None
    assert want.services[0].security.pids_limit == 99
    assert want.services[1].security == hardening.Security()
    assert want.networks[0].topology == "maze"
    assert want.networks[0].egress[0].cidr == "198.51.100.0/24"
    assert want.networks[0].egress[0].ports == (80,)
