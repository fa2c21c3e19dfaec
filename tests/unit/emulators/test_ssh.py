"""SSH decisions that need no socket: the identification string, accepted logins, scp."""

from __future__ import annotations

from decnet.emulators import core, shell
from decnet.emulators.services import ssh


def test_identification_string_comes_from_config() -> None:
    assert ssh.software_version(ssh.DEFAULTS) == "OpenSSH_9.2p1 Debian-2+deb12u3"
    assert ssh.software_version({"version": "SSH-2.0-OpenSSH_8.4p1 Debian-5+deb11u3"}) == \
        "OpenSSH_8.4p1 Debian-5+deb11u3"
    assert ssh.software_version({"version": "dropbear_2022.83"}) == "dropbear_2022.83"
    assert ssh.software_version({"version": "bad\r\nSSH-2.0-x"}) == "badSSH-2.0-x"
    assert ssh.software_version({"version": ""}) == "OpenSSH_9.2p1 Debian-2+deb12u3"


def test_default_config_accepts_a_few_weak_pairs_only() -> None:
    config = core.load_config(ssh.DEFAULTS, "")
    assert shell.password_ok(config, "root", "123456", 0)
    assert shell.password_ok(config, "admin", "admin", 0)
    assert not shell.password_ok(config, "root", "root", 0)
    assert not shell.password_ok(config, "ubuntu", "ubuntu", 0)


def test_users_from_config_replace_the_defaults() -> None:
    config = core.load_config(ssh.DEFAULTS, '{"users": {"deploy": "Summer2025"}}')
    assert shell.password_ok(config, "deploy", "Summer2025", 0)
    assert not shell.password_ok(config, "root", "123456", 0)
    assert shell.persona({**config, "hostname": "db-02"}).users == ("deploy",)
    assert shell.persona({**config, "hostname": "db-02"}).hostname == "db-02"


def test_scp_uploads_and_downloads_are_refused_in_protocol() -> None:
    assert ssh.scp_refusal("scp -t /tmp/") == "\x01scp: /tmp/: Permission denied\n"
    assert ssh.scp_refusal("scp -f /etc/passwd") == "\x01scp: /etc/passwd: Permission denied\n"
    assert ssh.scp_refusal("scp -v -t .") is not None
    assert ssh.scp_refusal("uname -a") is None
    assert ssh.scp_refusal("scp file host:") is None  # a client-side scp: the shell answers
