"""Archetype personas: the facts that make a decky pass for the machine it claims to be."""

from __future__ import annotations

import copy
import json
import re
from typing import Any

import pytest
import servicetemplates  # hack/servicetemplates.py: finds the emulator module of a service
from tests.unit.agent.test_reporter import decky_dict, reader

from decnet.agent import desired
from decnet.api import v1alpha1
from decnet.api.v1alpha1 import personas
from decnet.api.v1alpha1.decky import HOSTNAME_PATTERN
from decnet.controller import views

ARCHETYPES = sorted(v1alpha1.ARCHETYPES)
WINDOWS = [a for a in ARCHETYPES if v1alpha1.ARCHETYPE_OS[a].startswith("windows")]
EMBEDDED = [a for a in ARCHETYPES if v1alpha1.ARCHETYPE_OS[a] == "embedded"]
LINUX = [a for a in ARCHETYPES if v1alpha1.ARCHETYPE_OS[a] == "linux"]
SEEDS = [f"decoys/host-{i}" for i in range(40)]


def test_every_archetype_has_a_persona() -> None:
    assert sorted(personas.PERSONAS) == ARCHETYPES


@pytest.mark.parametrize(
    ("archetypes", "ttl"), [(WINDOWS, "128"), (LINUX, "64"), (EMBEDDED, "255"), ([None], "64")]
)
def test_the_ttl_follows_the_os_family(archetypes: list[str | None], ttl: str) -> None:
    assert archetypes
    for archetype in archetypes:
        assert personas.sysctls(archetype)["net.ipv4.ip_default_ttl"] == ttl


def test_windows_timestamps_have_no_per_connection_offset_and_linux_keep_it() -> None:
    assert personas.sysctls("windows-workstation")["net.ipv4.tcp_timestamps"] == "2"
    assert personas.sysctls("linux-server")["net.ipv4.tcp_timestamps"] == "1"


def test_only_windows_archetypes_run_a_packet_persona() -> None:
    assert personas.packet_persona("windows-workstation") == "windows"
    assert personas.packet_persona("windows-server") == "windows"
    for archetype in ("linux-server", None):
        assert personas.packet_persona(archetype) == ""


def test_only_sysctls_a_network_namespace_accepts_are_set() -> None:
    allowed = {
        "net.ipv4.ip_default_ttl",
        "net.ipv4.tcp_timestamps",
        "net.ipv4.tcp_window_scaling",
        "net.ipv4.tcp_sack",
        "net.ipv4.tcp_syn_retries",
        "net.ipv4.tcp_rmem",
        "net.ipv4.tcp_ecn",
        "net.core.somaxconn",
    }
    for archetype in [*ARCHETYPES, None]:
        assert set(personas.sysctls(archetype)) <= allowed


@pytest.mark.parametrize(
    ("archetype", "vendors"),
    [
        ("windows-workstation", personas.DELL + personas.HP + personas.LENOVO + personas.INTEL),
        ("windows-server", personas.DELL + personas.HP + personas.INTEL + personas.SUPERMICRO),
        ("printer", personas.HP + personas.BROTHER),
        ("industrial-control", personas.SIEMENS),
    ],
)
def test_a_mac_has_a_vendor_prefix_that_fits_the_archetype(archetype: str, vendors: tuple[str, ...]) -> None:
    seen = {personas.mac_address(archetype, seed)[:8] for seed in SEEDS}
    assert seen <= {v.lower() for v in vendors}
    assert len(seen) > 1 or len(vendors) == 1  # the prefix varies between deckies


@pytest.mark.parametrize("archetype", [*ARCHETYPES, None])
def test_a_mac_is_stable_unicast_global_and_never_dockers(archetype: str | None) -> None:
    macs = [personas.mac_address(archetype, seed) for seed in SEEDS]
    assert macs == [personas.mac_address(archetype, seed) for seed in SEEDS]
    assert len(set(macs)) == len(macs)
    for mac in macs:
        assert re.fullmatch(r"([0-9a-f]{2}:){5}[0-9a-f]{2}", mac), mac
        assert not mac.startswith("02:42")
        first = int(mac[:2], 16)
        assert first & 1 == 0 and first & 2 == 0, f"{mac} is multicast or locally administered"


@pytest.mark.parametrize(
    ("archetype", "pattern"),
    [
        ("windows-workstation", r"DESKTOP-[A-Z0-9]{7}"),
        ("windows-server", r"WIN-[A-Z0-9]{11}"),
        ("domain-controller", r"DC\d\d"),
        ("web-server", r"(web|www)\d\d"),
        ("database-server", r"(db|sql)\d\d"),
        ("printer", r"NPI[0-9A-F]{6}"),
    ],
)
def test_a_default_hostname_looks_like_the_machines_own(archetype: str, pattern: str) -> None:
    names = {personas.default_hostname(archetype, seed, fallback="x") for seed in SEEDS}
    assert all(re.fullmatch(pattern, n) for n in names), names
    assert len(names) > 1


def test_a_numbered_hostname_keeps_the_number_of_the_deckys_name() -> None:
    names = {
        personas.default_hostname("database-server", f"decoys/db-{i:02d}", fallback=f"db-{i:02d}")
        for i in range(1, 40)
    }
    assert len(names) == 39  # distinct names, distinct hostnames
    assert personas.default_hostname("web-server", "decoys/web-7", fallback="web-7") in ("web07", "www07")
    assert personas.default_hostname("linux-server", "d/app-1042", fallback="app-1042")[-3:] == "042"


def test_a_printers_name_ends_like_its_mac() -> None:
    """HP Jetdirect names itself NPI + the last six hex digits of its MAC."""
    mac = personas.mac_address("printer", "decoys/p1").replace(":", "").upper()
    assert personas.default_hostname("printer", "decoys/p1", fallback="x") == "NPI" + mac[-6:]


@pytest.mark.parametrize("archetype", ARCHETYPES)
def test_default_hostnames_are_valid_stable_and_fit_netbios(archetype: str) -> None:
    for seed in SEEDS:
        name = personas.default_hostname(archetype, seed, fallback="x")
        assert name == personas.default_hostname(archetype, seed, fallback="x")
        assert re.fullmatch(HOSTNAME_PATTERN, name) and len(name) <= 15, name


def test_without_an_archetype_the_hostname_is_the_fallback() -> None:
    assert personas.default_hostname(None, "decoys/ws-9", fallback="ws-9") == "ws-9"


def test_the_operator_uses_spec_hostname_else_the_personas() -> None:
    body: dict[str, Any] = {
        "metadata": {"name": "ws-9", "namespace": "decoys"},
        "spec": {"archetype": "windows-workstation", "networks": [{"lan": "a"}]},
    }
    planned = views.Decky.from_obj(body).hostname
    assert re.fullmatch(r"DESKTOP-[A-Z0-9]{7}", planned)
    assert views.Decky.from_obj(copy.deepcopy(body)).hostname == planned
    body["spec"]["hostname"] = "FINANCE-PC"
    assert views.Decky.from_obj(body).hostname == "FINANCE-PC"
    del body["spec"]["archetype"]
    del body["spec"]["hostname"]
    assert views.Decky.from_obj(body).hostname == "ws-9"


@pytest.mark.parametrize(
    ("archetype", "service", "key", "value"),
    [
        ("windows-server", "http", "serverHeader", "Microsoft-IIS/10.0"),
        ("windows-workstation", "http", "serverHeader", "Microsoft-IIS/10.0"),
        ("linux-server", "http", "serverHeader", "Apache/2.4.57 (Debian)"),
        ("web-server", "http", "serverHeader", "nginx/1.22.1"),
        ("linux-server", "ssh", "version", "SSH-2.0-OpenSSH_9.2p1 Debian-2+deb12u3"),
        ("devops-host", "ssh", "version", "SSH-2.0-OpenSSH_8.9p1 Ubuntu-3ubuntu0.10"),
        ("windows-workstation", "smb", "osVersion", "10.0.19045"),
        ("windows-server", "smb", "osVersion", "10.0.17763"),
        ("domain-controller", "ldap", "domain", "corp.local"),
    ],
)
def test_service_defaults_fit_the_archetype(archetype: str, service: str, key: str, value: str) -> None:
    assert personas.service_defaults(archetype, service, "H1")[key] == value


def test_the_users_service_config_wins_over_the_persona() -> None:
    merged = personas.service_config(
        "windows-server", "http", "WIN-1", {"serverHeader": "Apache", "title": "Intranet"}
    )
    assert merged == {"serverHeader": "Apache", "title": "Intranet"}
    merged = personas.service_config("windows-server", "smb", "WIN-1", {"workgroup": "CORP"})
    assert merged["workgroup"] == "CORP" and merged["hostname"] == "WIN-1"
    assert personas.service_config(None, "http", "h", {"title": "x"}) == {"title": "x"}
    assert personas.service_config(None, "http", "h", None) == {}


def test_hostname_placeholders_are_filled_with_the_deckys_hostname() -> None:
    snmp = personas.service_defaults("monitoring-node", "snmp", "mon03")
    assert snmp["sysName"] == "mon03" and "mon03" in snmp["sysDescr"]
    for archetype in ARCHETYPES:
        for service in personas.PERSONAS[archetype].services:
            values = json.dumps(personas.service_defaults(archetype, service, "H"))
            assert "{hostname}" not in values


def test_no_persona_value_is_a_tell() -> None:
    text = json.dumps(
        [
            [p.os, p.ouis, p.hostnames, {s: dict(c) for s, c in p.services.items()}]
            for p in personas.PERSONAS.values()
        ]
    ).lower()
    for word in ("decnet", "honeypot", "deception", "decoy"):
        assert word not in text


PERSONA_SERVICES = sorted(
    {s for p in personas.PERSONAS.values() for s in p.services if servicetemplates.module_for(s)}
)


@pytest.mark.parametrize("service", PERSONA_SERVICES)
def test_persona_keys_are_keys_the_emulator_reads(service: str) -> None:
    """A key the emulator's DEFAULTS lacks would be dropped silently by load_config."""
    defaults = servicetemplates.module_for(service).DEFAULTS
    for archetype, persona in personas.PERSONAS.items():
        for key, value in (persona.services.get(service) or {}).items():
            assert key in defaults, f"{archetype}/{service}: {key} is not in DEFAULTS"
            assert type(value) is type(defaults[key]), f"{archetype}/{service}: {key} type"


# --- the agent: persona on the decky's containers -------------------------------------


def _decky(archetype: str | None, config: dict[str, Any] | None = None) -> v1alpha1.Decky:
    raw = decky_dict()
    raw["spec"]["serviceConfig"] = config or {}
    raw["spec"]["services"] = ["smb", "http"]
    if archetype:
        raw["spec"]["archetype"] = archetype
    raw["status"]["plan"]["services"] = [
        {"name": "smb", "image": "decnet/emulator:0.1.0", "configHash": "h-smb"},
        {"name": "http", "image": "decnet/emulator:0.1.0", "configHash": ""},
    ]
    return v1alpha1.Decky.model_validate(raw)


def test_the_agent_gives_the_base_the_personas_mac_and_sysctls() -> None:
    want = desired.want_from_decky(_decky("windows-workstation"), reader)
    assert want is not None
    assert want.sysctls["net.ipv4.ip_default_ttl"] == "128"
    assert want.mac_address == personas.mac_address("windows-workstation", "decoys/ws-01")
    plain = desired.want_from_decky(_decky(None), reader)
    assert plain is not None and plain.sysctls["net.ipv4.ip_default_ttl"] == "64"
    assert not plain.mac_address.startswith("02:42")


def test_the_agent_merges_persona_defaults_under_the_users_config() -> None:
    want = desired.want_from_decky(
        _decky("windows-server", {"smb": {"workgroup": "CORP"}}), reader
    )
    assert want is not None
    smb = json.loads(want.config["smb"])
    assert smb["workgroup"] == "CORP" and smb["osVersion"] == "10.0.17763"
    assert smb["hostname"] == "WS-01"  # the plan's hostname
    assert json.loads(want.config["http"])["serverHeader"] == "Microsoft-IIS/10.0"


def test_a_persona_changes_the_config_hash_and_no_persona_keeps_the_plans() -> None:
    plain = desired.want_from_decky(_decky(None), reader)
    windows = desired.want_from_decky(_decky("windows-server"), reader)
    linux = desired.want_from_decky(_decky("file-server"), reader)
    assert plain is not None and windows is not None and linux is not None
    assert [s.config_hash for s in plain.services] == ["h-smb", ""]
    hashes = {s.config_hash for w in (plain, windows, linux) for s in w.services}
    assert len(hashes) == 6  # both personas add defaults to both services


def test_conpot_leaves_161_udp_to_the_snmp_service_of_the_same_decky() -> None:
    assert personas.sharing_defaults("conpot", ["conpot", "snmp"]) == {"snmp": False}
    assert personas.sharing_defaults("conpot", ["conpot", "http"]) == {}
    assert personas.sharing_defaults("snmp", ["conpot", "snmp"]) == {}
