"""Remote-login and file-transfer probes: ssh, telnet, ftp, tftp, each with a real client.

ssh is OpenSSH's client driven by sshpass, telnet is Debian's telnet on a pty
(pexpect), ftp is ftplib, tftp is tftp-hpa's client. Each logs in with a pair the
default config accepts and runs one command, so the events must show the
credentials and the command.
"""

from __future__ import annotations

import ftplib
import subprocess
import tempfile
from pathlib import Path

import pexpect
from tests.probes import NMAP, Expect, Port, probe

NMAP["ssh"] = (22, "tcp", "OpenSSH")
NMAP["telnet"] = (23, "tcp", "Linux telnetd")
NMAP["ftp"] = (21, "tcp", "vsftpd")
NMAP["tftp"] = (69, "udp", "tftp")  # tftpd-hpa has no nmap product match: the service name

SSH_OPTIONS = ["-o", "StrictHostKeyChecking=no", "-o", "UserKnownHostsFile=/dev/null",
               "-o", "PreferredAuthentications=password,keyboard-interactive",
               "-o", "PubkeyAuthentication=no", "-o", "ConnectTimeout=20", "-o", "LogLevel=ERROR"]


def ssh_run(host: str, port: int, user: str, password: str, command: str,
            timeout: float = 60) -> subprocess.CompletedProcess[str]:
    """OpenSSH's client, non-interactive, password from sshpass."""
    return subprocess.run(
        ["sshpass", "-p", password, "ssh", *SSH_OPTIONS, "-p", str(port), f"{user}@{host}",
         command], capture_output=True, text=True, timeout=timeout)


def telnet_login(host: str, port: int, user: str, password: str,
                 timeout: float = 30) -> pexpect.spawn:
    """Debian's telnet client on a pty, logged in (raises if the login is refused)."""
    child = pexpect.spawn("telnet", [host, str(port)], timeout=timeout, encoding="utf-8")
    child.expect("login: ")
    child.sendline(user)
    child.expect("Password: ")
    child.sendline(password)
    child.expect([r"[#$] $", "Login incorrect"])
    if "Login incorrect" in (child.after or ""):
        child.close(force=True)
        raise AssertionError("telnet login refused")
    return child


@probe("ssh")
def ssh(host: str, port: Port) -> list[Expect]:
    done = ssh_run(host, port(22), "root", "123456", "uname -a")
    assert done.returncode == 0, done.stderr
    assert done.stdout.startswith("Linux "), done.stdout
    return [
        Expect("auth", {"username": "root", "password": "123456", "success": "true"}),
        Expect("command", {"command": "uname -a", "username": "root"}),
    ]


@probe("telnet")
def telnet(host: str, port: Port) -> list[Expect]:
    child = telnet_login(host, port(23), "root", "123456")
    try:
        child.sendline("id")
        child.expect("uid=0\\(root\\)")
        child.sendline("exit")
        child.expect(pexpect.EOF)
    finally:
        child.close(force=True)
    return [
        Expect("auth", {"username": "root", "password": "123456", "success": "true"}),
        Expect("command", {"command": "id", "username": "root"}),
    ]


@probe("ftp")
def ftp(host: str, port: Port) -> list[Expect]:
    client = ftplib.FTP()
    welcome = client.connect(host, port(21), timeout=20)
    assert welcome.startswith("220 "), welcome
    client.login("admin", "admin")
    assert client.pwd() == "/home/admin"
    client.nlst()
    client.quit()
    return [
        Expect("auth", {"username": "admin", "password": "admin", "success": "true"}),
        Expect("command", {"command": "PWD", "username": "admin"}),
        Expect("command", {"command": "NLST", "username": "admin"}),
    ]


@probe("tftp")
def tftp(host: str, port: Port) -> list[Expect]:
    with tempfile.TemporaryDirectory() as scratch:
        target = Path(scratch) / "default"
        done = subprocess.run(
            ["tftp", "-m", "binary", host, str(port(69)), "-c", "get", "pxelinux.cfg/default",
             str(target)], capture_output=True, text=True, timeout=60, cwd=scratch)
        assert done.returncode == 0 and "Error" not in done.stdout + done.stderr, done
        assert target.read_text().startswith("DEFAULT ")
    return [Expect("request", {"method": "RRQ", "path": "pxelinux.cfg/default",
                               "mode": "octet"})]
