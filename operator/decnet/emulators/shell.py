"""A Linux shell as a table of commands over an in-memory file system.

SSH and telnet hand every line a logged-in client types to `Shell.run`. Nothing is
ever executed: a line is tokenised like bash would (quotes, `$VAR`, `;`, `&&`,
`||`, `|`, redirections), and each command is looked up in a table of Python
functions that produce what a small Debian 12 server would print. Pipes feed the
text one table entry produced into the next (so `cat /proc/cpuinfo | grep name |
wc -l` answers like a real host); redirections discard output instead of writing
it. `wget`/`curl` never connect: they fail like a host without a route would and
report the URL so the service can log it.

The file system is built once per process from a fixed Debian-like tree plus the
real files found under a few directories (`LURE_DIRS`), where the node agent puts
a host's lure files: `cat /home/admin/passwords.txt` shows the lure. Those reads
are bounded (count, size) and read-only. Per session only the working directory,
the history and the environment change; the tree itself is never modified.
"""

from __future__ import annotations

import collections
import dataclasses
import datetime as dt
import os
import posixpath
import re
import socket
import stat
import time
import urllib.parse
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

LURE_DIRS = ("/home", "/root", "/srv", "/opt", "/var/www", "/var/backups")
MAX_LURE_FILES = 256
MAX_LURE_BYTES = 256 * 1024
MAX_LURE_TOTAL = 4 * 1024 * 1024
MAX_LINE = 4096
MAX_TOKENS = 512
MAX_COMMANDS = 64
MAX_OUTPUT = 256 * 1024
MAX_HISTORY = 500
MAX_DEPTH = 4
# Build and tool caches an image may carry: never lures, and they would name the tooling.
SKIP_DIRS = frozenset({".cache", "__pycache__", ".npm", ".pip", ".git", ".local", "node_modules",
                       "site-packages", "dist-packages"})
_PACKAGE_DIR = str(Path(__file__).resolve().parent)


@dataclasses.dataclass(frozen=True)
class Node:
    """A file, directory or symlink of the fake tree."""

    kind: str  # "f", "d" or "l"
    mode: int = 0o644
    owner: str = "root"
    group: str = "root"
    mtime: float = 0.0
    content: bytes = b""
    size: int | None = None  # binaries: a believable size without the bytes
    target: str = ""

    @property
    def length(self) -> int:
        if self.kind == "d":
            return 4096
        if self.kind == "l":
            return len(self.target)
        return len(self.content) if self.size is None else self.size


@dataclasses.dataclass(frozen=True)
class Persona:
    """What the host claims to be: the facts every command's output agrees on."""

    hostname: str = "srv01"
    users: tuple[str, ...] = ("admin",)
    kernel: str = "6.1.0-18-amd64"
    kernel_version: str = "#1 SMP PREEMPT_DYNAMIC Debian 6.1.76-1 (2024-02-01)"
    arch: str = "x86_64"
    os_name: str = "Debian GNU/Linux 12 (bookworm)"
    debian_version: str = "12.5"
    cpu_model: str = "Intel(R) Xeon(R) CPU E5-2680 v4 @ 2.40GHz"
    cpus: int = 2
    mem_kib: int = 4026512
    ip: str = "10.0.0.15"
    mac: str = "52:54:00:3a:1c:7e"
    busybox: bool = False  # an embedded device's ash instead of bash
    boot_time: float = dataclasses.field(default_factory=lambda: time.time() - 41 * 86400 - 7000)


class FileSystem:
    """Absolute normalised paths to nodes; read-only once built."""

    def __init__(self, nodes: dict[str, Node], mtime: float = 0.0) -> None:
        self.nodes = dict(nodes)
        self.nodes.setdefault("/", Node("d", 0o755, mtime=mtime))
        for path in list(self.nodes):
            parent = posixpath.dirname(path)
            while parent not in self.nodes:
                self.nodes[parent] = Node("d", 0o755, mtime=mtime)
                parent = posixpath.dirname(parent)
        self.children: dict[str, list[str]] = {}
        for path in self.nodes:
            if path != "/":
                self.children.setdefault(posixpath.dirname(path), []).append(
                    posixpath.basename(path))
        for names in self.children.values():
            names.sort()

    def resolve(self, path: str, depth: int = 0) -> tuple[str, Node | None]:
        """The node at a normalised path, following symlinks of directories on the way."""
        path = posixpath.normpath(path)
        if path.startswith("//"):
            path = path[1:]
        node = self.nodes.get(path)
        if node is not None and node.kind == "l" and depth < 8:
            target = posixpath.join(posixpath.dirname(path), node.target)
            return self.resolve(target, depth + 1)
        if node is None and depth < 8:
            parts = path.strip("/").split("/")
            for i in range(1, len(parts)):
                prefix = "/" + "/".join(parts[:i])
                link = self.nodes.get(prefix)
                if link is not None and link.kind == "l":
                    target = posixpath.join(posixpath.dirname(prefix), link.target)
                    return self.resolve(posixpath.join(target, *parts[i:]), depth + 1)
        return path, node

    def listdir(self, path: str) -> list[str]:
        real, _ = self.resolve(path)
        return list(self.children.get(real, []))


# ---------------------------------------------------------------- logins (ssh and telnet)

MAX_FAILURE_TABLE = 4096


def accounts(config: dict[str, Any]) -> dict[str, tuple[str, ...]]:
    """`users` as name -> accepted passwords; a single string is one password."""
    out: dict[str, tuple[str, ...]] = {}
    raw = config.get("users")
    if not isinstance(raw, dict):
        return out
    for name, value in list(raw.items())[:64]:
        if isinstance(value, str):
            out[str(name)] = (value,)
        elif isinstance(value, list):
            out[str(name)] = tuple(str(v) for v in value[:64])
    return out


def password_ok(config: dict[str, Any], username: str, password: str, failures: int) -> bool:
    """Is this pair accepted, given how often this address already failed?"""
    if failures < int(config.get("acceptAfter") or 0):
        return False
    return password in accounts(config).get(username, ())


def home_users(config: dict[str, Any]) -> tuple[str, ...]:
    """The non-root accounts, which get a /home directory and a line in /etc/passwd."""
    names = [u for u in accounts(config) if u != "root" and u.isprintable() and "/" not in u]
    return tuple(names[:16]) or ("admin",)


def persona(config: dict[str, Any]) -> Persona:
    hostname = str(config.get("hostname") or "") or socket.gethostname()
    return Persona(hostname=hostname[:64], users=home_users(config))


class Failures:
    """Failed logins per source address, bounded (the oldest addresses are forgotten)."""

    def __init__(self, limit: int = MAX_FAILURE_TABLE) -> None:
        self.limit = limit
        self.counts: collections.OrderedDict[str, int] = collections.OrderedDict()

    def get(self, ip: str) -> int:
        return self.counts.get(ip, 0)

    def add(self, ip: str) -> None:
        self.counts[ip] = self.counts.pop(ip, 0) + 1
        while len(self.counts) > self.limit:
            self.counts.popitem(last=False)


# ---------------------------------------------------------------- the base tree

_SYSTEM_USERS = [
    ("root", 0, 0, "root", "/root", "/bin/bash"),
    ("daemon", 1, 1, "daemon", "/usr/sbin", "/usr/sbin/nologin"),
    ("bin", 2, 2, "bin", "/bin", "/usr/sbin/nologin"),
    ("sys", 3, 3, "sys", "/dev", "/usr/sbin/nologin"),
    ("sync", 4, 65534, "sync", "/bin", "/bin/sync"),
    ("games", 5, 60, "games", "/usr/games", "/usr/sbin/nologin"),
    ("man", 6, 12, "man", "/var/cache/man", "/usr/sbin/nologin"),
    ("lp", 7, 7, "lp", "/var/spool/lpd", "/usr/sbin/nologin"),
    ("mail", 8, 8, "mail", "/var/mail", "/usr/sbin/nologin"),
    ("news", 9, 9, "news", "/var/spool/news", "/usr/sbin/nologin"),
    ("uucp", 10, 10, "uucp", "/var/spool/uucp", "/usr/sbin/nologin"),
    ("proxy", 13, 13, "proxy", "/bin", "/usr/sbin/nologin"),
    ("www-data", 33, 33, "www-data", "/var/www", "/usr/sbin/nologin"),
    ("backup", 34, 34, "backup", "/var/backups", "/usr/sbin/nologin"),
    ("list", 38, 38, "Mailing List Manager", "/var/list", "/usr/sbin/nologin"),
    ("irc", 39, 39, "ircd", "/run/ircd", "/usr/sbin/nologin"),
    ("_apt", 42, 65534, "", "/nonexistent", "/usr/sbin/nologin"),
    ("nobody", 65534, 65534, "nobody", "/nonexistent", "/usr/sbin/nologin"),
    ("systemd-network", 998, 998, "systemd Network Management", "/", "/usr/sbin/nologin"),
    ("messagebus", 100, 107, "", "/nonexistent", "/usr/sbin/nologin"),
    ("sshd", 101, 65534, "", "/run/sshd", "/usr/sbin/nologin"),
]
_BINARIES = (
    "bash cat chmod chown cp curl date dd df dir echo egrep false grep gzip hostname id "
    "ip kill less ln ls mkdir more mount mv nano perl ps pwd rm rmdir sed sh sleep ss "
    "sudo tar touch true umount uname uptime vi w wc wget which who whoami"
).split()
_SBINARIES = "agetty cron ifconfig init ip reboot rsyslogd shutdown sshd sysctl".split()


def _uid_of(persona: Persona, user: str) -> int:
    if user == "root":
        return 0
    return 1000 + persona.users.index(user) if user in persona.users else 1000


def home_of(user: str) -> str:
    return "/root" if user == "root" else f"/home/{user}"


def passwd_text(persona: Persona) -> str:
    rows = [f"{n}:x:{u}:{g}:{c}:{h}:{s}" for n, u, g, c, h, s in _SYSTEM_USERS]
    for user in persona.users:
        uid = _uid_of(persona, user)
        rows.append(f"{user}:x:{uid}:{uid}:{user},,,:/home/{user}:/bin/bash")
    return "\n".join(rows) + "\n"


def _cpuinfo(persona: Persona) -> str:
    blocks = []
    for i in range(persona.cpus):
        blocks.append(
            f"processor\t: {i}\nvendor_id\t: GenuineIntel\ncpu family\t: 6\nmodel\t\t: 79\n"
            f"model name\t: {persona.cpu_model}\nstepping\t: 1\nmicrocode\t: 0xb000040\n"
            f"cpu MHz\t\t: 2399.998\ncache size\t: 35840 KB\nphysical id\t: 0\n"
            f"siblings\t: {persona.cpus}\ncore id\t\t: {i}\ncpu cores\t: {persona.cpus}\n"
            "fpu\t\t: yes\nflags\t\t: fpu vme de pse tsc msr pae mce cx8 apic sep mtrr pge mca "
            "cmov pat pse36 clflush mmx fxsr sse sse2 ss syscall nx pdpe1gb rdtscp lm "
            "constant_tsc rep_good nopl xtopology cpuid tsc_known_freq pni pclmulqdq ssse3 fma "
            "cx16 pcid sse4_1 sse4_2 x2apic movbe popcnt aes xsave avx f16c rdrand hypervisor "
            "lahf_lm abm 3dnowprefetch avx2 bmi1 bmi2 erms\nbogomips\t: 4799.99\n"
            "address sizes\t: 46 bits physical, 48 bits virtual\n")
    return "\n".join(blocks) + "\n"


def base_tree(persona: Persona) -> dict[str, Node]:
    """The Debian tree every host shares, rendered for one persona."""
    t = persona.boot_time
    d = Node("d", 0o755, mtime=t)
    files: dict[str, Node] = {}

    def f(path: str, text: str, mode: int = 0o644, owner: str = "root") -> None:
        files[path] = Node("f", mode, owner, owner if owner == "root" else owner, t,
                           text.encode())

    for path in ("/boot", "/dev", "/etc", "/home", "/media", "/mnt", "/opt", "/proc", "/run",
                 "/srv", "/srv/ftp", "/srv/tftp", "/sys", "/usr", "/usr/bin", "/usr/sbin",
                 "/usr/lib",
                 "/usr/share",
                 "/usr/local", "/usr/local/bin", "/var", "/var/log", "/var/lib", "/var/cache",
                 "/var/backups", "/var/mail", "/var/spool", "/var/spool/cron", "/var/tmp",
                 "/etc/ssh", "/etc/cron.d", "/etc/default", "/etc/network"):
        files[path] = d
    files["/tmp"] = Node("d", 0o1777, mtime=time.time() - 600)
    files["/root"] = Node("d", 0o700, mtime=t)
    for name, target in (("bin", "usr/bin"), ("sbin", "usr/sbin"), ("lib", "usr/lib"),
                         ("lib64", "usr/lib64")):
        files["/" + name] = Node("l", 0o777, mtime=t, target=target)
    for i, name in enumerate(_BINARIES):
        files[f"/usr/bin/{name}"] = Node("f", 0o755, mtime=t, size=35000 + 7919 * i % 140000)
    for i, name in enumerate(_SBINARIES):
        files[f"/usr/sbin/{name}"] = Node("f", 0o755, mtime=t, size=52000 + 6007 * i % 90000)
    if persona.busybox:
        files["/usr/bin/busybox"] = Node("f", 0o755, mtime=t, size=1013224)
    f("/etc/hostname", persona.hostname + "\n")
    f("/etc/hosts", f"127.0.0.1\tlocalhost\n127.0.1.1\t{persona.hostname}\n\n"
      "::1\tlocalhost ip6-localhost ip6-loopback\nff02::1\tip6-allnodes\n"
      "ff02::2\tip6-allrouters\n")
    f("/etc/passwd", passwd_text(persona))
    groups = ["root:x:0:", "daemon:x:1:", "bin:x:2:", "sys:x:3:", "adm:x:4:",
              "tty:x:5:", "disk:x:6:", f"sudo:x:27:{','.join(persona.users)}",
              "www-data:x:33:", "backup:x:34:", "staff:x:50:", "users:x:100:",
              "nogroup:x:65534:"]
    groups += [f"{u}:x:{_uid_of(persona, u)}:" for u in persona.users]
    f("/etc/group", "\n".join(groups) + "\n")
    shadow = [f"{n}:*:19700:0:99999:7:::" for n, *_ in _SYSTEM_USERS]
    shadow[0] = "root:$y$j9T$Qm3lCDxvN0tcrwrcFqJZ7.$kd8S1rT2WwWcqHMVO3kYxyQ4I0bJpN0eZ6t/" \
        "aBJt7u1:19700:0:99999:7:::"
    shadow += [f"{u}:$y$j9T$7Yh1tG9yYpA0YVdkWlQ6n/$Hq3b1QeN2r5YbM1mJx0pTq8cK7nVwZlX4sD2fG9hR" \
               f"k5:19700:0:99999:7:::" for u in persona.users]
    f("/etc/shadow", "\n".join(shadow) + "\n", 0o640)
    pretty = persona.os_name
    f("/etc/os-release", f'PRETTY_NAME="{pretty}"\nNAME="Debian GNU/Linux"\n'
      'VERSION_ID="12"\nVERSION="12 (bookworm)"\nVERSION_CODENAME=bookworm\nID=debian\n'
      'HOME_URL="https://www.debian.org/"\nSUPPORT_URL="https://www.debian.org/support"\n'
      'BUG_REPORT_URL="https://bugs.debian.org/"\n')
    f("/etc/debian_version", persona.debian_version + "\n")
    f("/etc/issue", "Debian GNU/Linux 12 \\n \\l\n\n")
    f("/etc/issue.net", "Debian GNU/Linux 12\n")
    f("/etc/motd", MOTD)
    f("/etc/resolv.conf", "nameserver 10.0.0.1\n")
    f("/etc/shells", "# /etc/shells: valid login shells\n/bin/sh\n/usr/bin/sh\n/bin/bash\n"
      "/usr/bin/bash\n")
    f("/etc/fstab", "# <file system> <mount point>   <type>  <options>       <dump>  <pass>\n"
      "UUID=6f1c2a53-94a7-4d1e-9c0b-7f3e1d2a9b41 /               ext4    "
      "errors=remount-ro 0       1\n")
    f("/etc/crontab", "SHELL=/bin/sh\nPATH=/usr/local/sbin:/usr/local/bin:/sbin:/bin:"
      "/usr/sbin:/usr/bin\n\n17 *\t* * *\troot\tcd / && run-parts --report /etc/cron.hourly\n"
      "25 6\t* * *\troot\ttest -x /usr/sbin/anacron || { cd / && run-parts --report "
      "/etc/cron.daily; }\n")
    f("/etc/ssh/sshd_config", "Include /etc/ssh/sshd_config.d/*.conf\n\nKbdInteractive"
      "Authentication no\nUsePAM yes\nX11Forwarding yes\nPrintMotd no\nAcceptEnv LANG LC_*\n"
      "Subsystem\tsftp\t/usr/lib/openssh/sftp-server\n")
    f("/etc/network/interfaces", "source /etc/network/interfaces.d/*\n\nauto lo\n"
      "iface lo inet loopback\n\nallow-hotplug eth0\niface eth0 inet dhcp\n")
    f("/proc/cpuinfo", _cpuinfo(persona))
    free = persona.mem_kib * 47 // 100
    f("/proc/meminfo", f"MemTotal:       {persona.mem_kib:>8} kB\nMemFree:        "
      f"{free:>8} kB\nMemAvailable:   {persona.mem_kib * 78 // 100:>8} kB\nBuffers:        "
      f"   92144 kB\nCached:         {persona.mem_kib * 27 // 100:>8} kB\n"
      "SwapCached:            0 kB\nSwapTotal:       998396 kB\nSwapFree:        998396 kB\n")
    f("/proc/version", f"Linux version {persona.kernel} (debian-kernel@lists.debian.org) "
      "(gcc-12 (Debian 12.2.0-14) 12.2.0, GNU ld (GNU Binutils for Debian) 2.40) "
      f"{persona.kernel_version}\n")
    f("/proc/mounts", "/dev/sda1 / ext4 rw,relatime,errors=remount-ro 0 0\n"
      "proc /proc proc rw,nosuid,nodev,noexec,relatime 0 0\n"
      "tmpfs /run tmpfs rw,nosuid,nodev,noexec,relatime,size=402652k,mode=755 0 0\n")
    for user in ("root", *persona.users):
        home = home_of(user)
        owner = user
        files[home] = Node("d", 0o700 if user == "root" else 0o755, owner, owner, t)
        f(f"{home}/.bashrc", BASHRC, 0o644, owner)
        f(f"{home}/.profile", "# ~/.profile: executed by the command interpreter for login "
          "shells.\nif [ -n \"$BASH_VERSION\" ]; then\n    if [ -f \"$HOME/.bashrc\" ]; then\n"
          "\t. \"$HOME/.bashrc\"\n    fi\nfi\n", 0o644, owner)
        if user != "root":
            f(f"{home}/.bash_logout", "# ~/.bash_logout: executed by bash(1) when login "
              "shell exits.\n", 0o644, owner)
    return files


MOTD = (
    "\nThe programs included with the Debian GNU/Linux system are free software;\n"
    "the exact distribution terms for each program are described in the\n"
    "individual files in /usr/share/doc/*/copyright.\n\n"
    "Debian GNU/Linux comes with ABSOLUTELY NO WARRANTY, to the extent\n"
    "permitted by applicable law.\n"
)
BASHRC = (
    "# ~/.bashrc: executed by bash(1) for non-login shells.\n\n"
    "case $- in\n    *i*) ;;\n      *) return;;\nesac\n\nHISTCONTROL=ignoreboth\n"
    "shopt -s histappend\nHISTSIZE=1000\nHISTFILESIZE=2000\n"
)


# ---------------------------------------------------------------- lure files (the only I/O)

def lure_files(root: str = "/", dirs: Iterable[str] = LURE_DIRS,
               max_files: int = MAX_LURE_FILES, max_bytes: int = MAX_LURE_BYTES,
               max_total: int = MAX_LURE_TOTAL) -> dict[str, Node]:
    """Regular files under `dirs` (below `root`) as nodes at their absolute paths.

    Read-only and bounded: at most `max_files` files, each cut at `max_bytes`, and
    `max_total` bytes overall; symlinks are not followed, and this package's own
    directory and tool caches (`SKIP_DIRS`) are skipped wherever they are.
    """
    found: dict[str, Node] = {}
    total = 0
    base = os.path.realpath(root)
    for top in dirs:
        start = os.path.join(base, top.lstrip("/"))
        if not os.path.isdir(start) or os.path.islink(start):
            continue
        for current, subdirs, names in os.walk(start, followlinks=False):
            if os.path.realpath(current).startswith(_PACKAGE_DIR):
                subdirs[:] = []
                continue
            subdirs[:] = sorted(s for s in subdirs if s not in SKIP_DIRS)[:64]
            for name in sorted(names)[:256]:
                if len(found) >= max_files or total >= max_total:
                    return found
                real = os.path.join(current, name)
                try:
                    info = os.lstat(real)
                    if not stat.S_ISREG(info.st_mode):
                        continue
                    with open(real, "rb") as handle:
                        data = handle.read(min(max_bytes, max_total - total))
                except OSError:
                    continue
                total += len(data)
                fake = "/" + os.path.relpath(real, base).replace(os.sep, "/")
                found[fake] = Node("f", stat.S_IMODE(info.st_mode), "", "", info.st_mtime, data)
    return found


def build_fs(persona: Persona, lures: dict[str, Node] | None = None) -> FileSystem:
    """The persona's tree with the lure files laid over it (lures win)."""
    nodes = base_tree(persona)
    for path, node in (lures or {}).items():
        owner = node.owner or _owner_for(persona, path)
        nodes[path] = dataclasses.replace(node, owner=owner, group=owner)
        parent = posixpath.dirname(path)
        while parent not in nodes and parent != "/":
            nodes[parent] = Node("d", 0o755, _owner_for(persona, parent),
                                 _owner_for(persona, parent), node.mtime)
            parent = posixpath.dirname(parent)
    return FileSystem(nodes, persona.boot_time)


class TreeCache:
    """The tree for a persona, rebuilt at most every `ttl` seconds to pick up new lures.

    The node agent may place lure files after the service started; a rescan is a
    bounded walk of a few small directories.
    """

    def __init__(self, persona: Persona, root: str = "/", ttl: float = 60.0) -> None:
        self.persona, self.root, self.ttl = persona, root, ttl
        self._fs: FileSystem | None = None
        self._built = 0.0

    def get(self) -> FileSystem:
        now = time.monotonic()
        if self._fs is None or now - self._built > self.ttl:
            self._fs = build_fs(self.persona, lure_files(self.root))
            self._built = now
        return self._fs


def _owner_for(persona: Persona, path: str) -> str:
    parts = path.split("/")
    if len(parts) > 2 and parts[1] == "home" and parts[2] in persona.users:
        return parts[2]
    return "root"


# ---------------------------------------------------------------- tokens

@dataclasses.dataclass(frozen=True)
class Simple:
    """One command of a pipeline, with where its output goes."""

    argv: list[str]
    drop_stdout: bool = False
    drop_stderr: bool = False
    merge_stderr: bool = False


@dataclasses.dataclass(frozen=True)
class Step:
    """A pipeline and the operator that joins it to the next one (`;`, `&&`, `||`)."""

    pipeline: list[Simple]
    joiner: str = ";"


class SyntaxProblem(ValueError):
    pass


_VAR = re.compile(r"\$(\{[A-Za-z_][A-Za-z0-9_]*\}|[A-Za-z_][A-Za-z0-9_]*|\?|\$)")
_OPERATORS = ("&&", "||", ";;", ">>", "2>&1", "&>", "2>>", "2>", "1>", ">&", ";", "|", "&",
              ">", "<")


def tokenize(line: str, env: dict[str, str]) -> list[tuple[str, bool]]:
    """Words and operators as (text, is_operator); quotes removed, variables expanded."""
    out: list[tuple[str, bool]] = []
    word: list[str] = []
    has_word = False
    i, n = 0, len(line)

    def expand(text: str) -> str:
        return _VAR.sub(lambda m: env.get(m.group(1).strip("{}"), ""), text)

    def flush() -> None:
        nonlocal has_word
        if has_word:
            out.append(("".join(word), False))
            word.clear()
            has_word = False

    while i < n:
        c = line[i]
        if c in " \t\r\n":
            flush()
            i += 1
        elif c == "#" and not has_word:
            break
        elif c == "\\" and i + 1 < n:
            word.append(line[i + 1])
            has_word = True
            i += 2
        elif c == "'":
            end = line.find("'", i + 1)
            if end < 0:
                raise SyntaxProblem("unexpected EOF while looking for matching `''")
            word.append(line[i + 1:end])
            has_word = True
            i = end + 1
        elif c == '"':
            j, chunk = i + 1, []
            while j < n and line[j] != '"':
                if line[j] == "\\" and j + 1 < n and line[j + 1] in '"\\$`':
                    chunk.append(line[j + 1])
                    j += 2
                else:
                    chunk.append(line[j])
                    j += 1
            if j >= n:
                raise SyntaxProblem("unexpected EOF while looking for matching `\"'")
            word.append(expand("".join(chunk)))
            has_word = True
            i = j + 1
        else:
            op = next((o for o in _OPERATORS if line.startswith(o, i)), None)
            if op is not None and not (op[0] in "12" and has_word):
                flush()
                out.append((op, True))
                i += len(op)
                continue
            m = _VAR.match(line, i)
            if m:
                word.append(env.get(m.group(1).strip("{}"), ""))
                has_word = True
                i = m.end()
                continue
            word.append(c)
            has_word = True
            i += 1
        if len(out) > MAX_TOKENS:
            raise SyntaxProblem("too many words")
    flush()
    return out


def parse(line: str, env: dict[str, str]) -> list[Step]:
    """The command list of one input line (bounded; never evaluates anything)."""
    tokens = tokenize(line[:MAX_LINE], env)
    steps: list[Step] = []
    pipeline: list[Simple] = []
    argv: list[str] = []
    redir = {"out": False, "err": False, "merge": False}
    i = 0

    def end_simple() -> None:
        nonlocal argv
        if not argv:
            raise SyntaxProblem("syntax error near unexpected token")
        pipeline.append(Simple(argv, redir["out"], redir["err"], redir["merge"]))
        argv = []
        redir.update(out=False, err=False, merge=False)

    while i < len(tokens):
        text, is_op = tokens[i]
        if not is_op:
            argv.append(text)
        elif text in (">", ">>", "1>", "&>", "2>", "2>>", "<", ">&"):
            if i + 1 >= len(tokens) or tokens[i + 1][1]:
                raise SyntaxProblem("syntax error near unexpected token `newline'")
            if text in (">", ">>", "1>", ">&"):
                redir["out"] = True
            if text in ("2>", "2>>"):
                redir["err"] = True
            if text == "&>":
                redir.update(out=True, err=True)
            i += 1
        elif text == "2>&1":
            redir["merge"] = True
        elif text == "|":
            end_simple()
        elif text in (";", "&&", "||", "&", ";;"):
            if text == ";;":
                raise SyntaxProblem("syntax error near unexpected token `;;'")
            if argv:
                end_simple()
            if not pipeline:
                if text in (";", "&") and not steps:
                    raise SyntaxProblem(f"syntax error near unexpected token `{text}'")
                i += 1
                continue
            steps.append(Step(pipeline, ";" if text == "&" else text))
            pipeline = []
        i += 1
        if len(steps) > MAX_COMMANDS:
            raise SyntaxProblem("too many commands")
    if argv:
        end_simple()
    if pipeline:
        steps.append(Step(pipeline, ";"))
    return steps


# ---------------------------------------------------------------- the shell

@dataclasses.dataclass
class Output:
    """What a command printed, and its status."""

    stdout: str = ""
    stderr: str = ""
    status: int = 0


@dataclasses.dataclass
class Result:
    """What one input line produced, for the service to send and log."""

    output: str = ""
    exit: bool = False
    urls: list[str] = dataclasses.field(default_factory=list)
    password_prompt: str = ""  # non-empty: the next line is a hidden password (sudo)


Command = Callable[["Shell", list[str], str], Output]
COMMANDS: dict[str, Command] = {}


def command(*names: str) -> Callable[[Command], Command]:
    def register(fn: Command) -> Command:
        for name in names:
            COMMANDS[name] = fn
        return fn

    return register


class Shell:
    """One login session: user, working directory, history; the tree is shared."""

    def __init__(self, fs: FileSystem, persona: Persona, user: str = "root",
                 interactive: bool = True, src_ip: str = "10.0.0.4",
                 clock: Callable[[], float] = time.time, via: str = "ssh") -> None:
        self.fs, self.persona, self.user = fs, persona, user
        self.interactive, self.clock, self.src_ip, self.via = interactive, clock, src_ip, via
        self.home = home_of(user)
        self.cwd = self.home if fs.resolve(self.home)[1] else "/"
        self.history: list[str] = []
        self.status = 0
        self.env = {
            "SHELL": "/bin/bash", "PWD": self.cwd, "LOGNAME": user, "HOME": self.home,
            "LANG": "C.UTF-8", "USER": user, "SHLVL": "1", "TERM": "xterm-256color",
            "PATH": "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
            if user == "root" else "/usr/local/bin:/usr/bin:/bin:/usr/games",
            "MAIL": f"/var/mail/{user}", "HOSTNAME": persona.hostname,
        }
        if via == "ssh":
            self.env["SSH_CONNECTION"] = f"{src_ip} 51234 {persona.ip} 22"
        self.urls: list[str] = []
        self.depth = 0
        self.piped = False
        self._pending_sudo: tuple[list[str], int] | None = None

    # -- prompt and banners

    def prompt(self) -> str:
        sign = "#" if self.user == "root" else "$"
        if self.persona.busybox:
            return f"{self.short_cwd()} {sign} "
        return f"{self.user}@{self.persona.hostname}:{self.short_cwd()}{sign} "

    def short_cwd(self) -> str:
        if self.cwd == self.home:
            return "~"
        if self.cwd.startswith(self.home + "/"):
            return "~" + self.cwd[len(self.home):]
        return self.cwd

    def login_banner(self, last_from: str = "") -> str:
        """What sshd/login print before the first prompt (uname line, MOTD, last login)."""
        if self.persona.busybox:
            return "\n\nBusyBox v1.31.1 () built-in shell (ash)\n\n"
        p = self.persona
        text = f"Linux {p.hostname} {p.kernel} {p.kernel_version} {p.arch}\n{MOTD}"
        if last_from:
            when = dt.datetime.fromtimestamp(self.clock() - 86400 * 3 - 3901, dt.UTC)
            text += f"Last login: {when.strftime('%a %b %e %H:%M:%S %Y')} from {last_from}\n"
        return text

    # -- running lines

    def run(self, line: str) -> Result:
        """Answer one line; pure apart from the clock, never executes anything."""
        self.urls = []
        line = line[:MAX_LINE]
        if self._pending_sudo is not None:
            return self._sudo_password(line)
        stripped = line.strip()
        if not stripped:
            return Result()
        self.history.append(stripped)
        del self.history[:-MAX_HISTORY]
        try:
            steps = parse(stripped, {**self.env, "?": str(self.status), "$": "4711"})
        except SyntaxProblem as problem:
            self.status = 2
            return Result(f"{self._name()}: {problem}\n")
        try:
            result = self.run_steps(steps, depth=0)
        except Exception:  # noqa: BLE001 - a bug in one table entry never ends a session
            self.status = 139
            return Result("Segmentation fault\n", urls=list(self.urls))
        result.urls = list(self.urls)
        return result

    def run_steps(self, steps: list[Step], depth: int) -> Result:
        text: list[str] = []
        size = 0
        joiner = ";"
        for step in steps:
            if (joiner == "&&" and self.status != 0) or (joiner == "||" and self.status == 0):
                joiner = step.joiner
                continue
            joiner = step.joiner
            data = ""
            out = Output()
            for index, simple in enumerate(step.pipeline):
                self.piped = index < len(step.pipeline) - 1 or simple.drop_stdout
                out = self.run_simple(simple, data, depth)
                if out.stdout == "\x00exit":
                    return Result("".join(text), exit=True)
                if out.stdout.startswith("\x00sudo:"):
                    self._pending_sudo = (simple.argv[1:], 0)
                    return Result("".join(text), password_prompt=out.stdout[6:])
                data = out.stdout
                if out.stderr and not simple.drop_stderr:
                    if simple.merge_stderr and not simple.drop_stdout:
                        data = out.stderr + data
                    else:
                        text.append(out.stderr)
                if simple.drop_stdout:
                    data = ""
            self.status = out.status
            text.append(data)
            size += len(data)
            if size > MAX_OUTPUT:
                break
        return Result("".join(text)[:MAX_OUTPUT])

    def run_simple(self, simple: Simple, stdin: str, depth: int) -> Output:
        argv = simple.argv
        while argv and re.match(r"^[A-Za-z_][A-Za-z0-9_]*=", argv[0]):
            argv = argv[1:]  # VAR=value cmd: the assignment changes nothing here
        if not argv:
            return Output()
        name = argv[0]
        base = posixpath.basename(name) if "/" in name else name
        if "/" in name:
            path, node = self.fs.resolve(self.abspath(name))
            if node is None:
                return Output("", f"{self._name()}: {name}: No such file or directory\n", 127)
            if node.kind == "d":
                return Output("", f"{self._name()}: {name}: Is a directory\n", 126)
            if not path.startswith(("/usr/bin/", "/usr/sbin/")):
                return Output("", f"{self._name()}: {name}: Permission denied\n", 126)
        fn = COMMANDS.get(base)
        if fn is None:
            return self.not_found(base)
        self.depth = depth
        return fn(self, argv, stdin)

    def not_found(self, name: str) -> Output:
        if self.persona.busybox:
            return Output("", f"-sh: {name}: not found\n", 127)
        return Output("", f"-bash: {name}: command not found\n", 127)

    def _name(self) -> str:
        return "-sh" if self.persona.busybox else "-bash"

    def pending_password(self) -> bool:
        """Is the next line a password (sudo/su asked for one)?"""
        return self._pending_sudo is not None

    def _sudo_password(self, password: str) -> Result:
        assert self._pending_sudo is not None
        argv, tries = self._pending_sudo
        tries += 1
        if tries < 3:
            self._pending_sudo = (argv, tries)
            return Result("Sorry, try again.\n", password_prompt=self._sudo_prompt())
        self._pending_sudo = None
        self.status = 1
        return Result("sudo: 3 incorrect password attempts\n")

    def _sudo_prompt(self) -> str:
        return f"[sudo] password for {self.user}: "

    # -- paths

    def abspath(self, path: str) -> str:
        if path == "~" or path.startswith("~/"):
            path = self.home + path[1:]
        return posixpath.normpath(posixpath.join(self.cwd, path))

    def readable(self, path: str) -> bool:
        if self.user == "root":
            return True
        return not (path == "/root" or path.startswith("/root/") or path == "/etc/shadow"
                    or path.startswith("/home/") and path.split("/")[2] != self.user
                    and path.count("/") > 2)


# ---------------------------------------------------------------- the commands

def _flags(argv: list[str]) -> tuple[set[str], list[str]]:
    flags: set[str] = set()
    rest: list[str] = []
    for arg in argv[1:]:
        if arg.startswith("--"):
            flags.add(arg)
        elif arg.startswith("-") and len(arg) > 1:
            flags.update(arg[1:])
        else:
            rest.append(arg)
    return flags, rest


def _mode_string(node: Node) -> str:
    kind = {"d": "d", "l": "l"}.get(node.kind, "-")
    bits = ""
    for shift in (6, 3, 0):
        part = (node.mode >> shift) & 7
        bits += ("r" if part & 4 else "-") + ("w" if part & 2 else "-") + \
            ("x" if part & 1 else "-")
    if node.mode & 0o1000:
        bits = bits[:-1] + ("t" if bits[-1] == "x" else "T")
    return kind + bits


def _human(size: int) -> str:
    for unit in ("", "K", "M", "G"):
        if size < 1024:
            return f"{size}{unit}" if unit == "" or size >= 10 else f"{size:.1f}{unit}"
        size = size / 1024  # type: ignore[assignment]
    return f"{size:.1f}T"


def _ls_time(mtime: float, now: float) -> str:
    when = dt.datetime.fromtimestamp(mtime, dt.UTC)
    if abs(now - mtime) > 180 * 86400:
        return when.strftime("%b %e  %Y")
    return when.strftime("%b %e %H:%M")


@command("ls", "dir")
def _ls(sh: Shell, argv: list[str], stdin: str) -> Output:
    flags, paths = _flags(argv)
    long, show_all, human = "l" in flags, "a" in flags or "A" in flags, "h" in flags
    out: list[str] = []
    err: list[str] = []
    status = 0
    targets = paths or ["."]
    for target in targets:
        path, node = sh.fs.resolve(sh.abspath(target))
        if node is None:
            err.append(f"ls: cannot access '{target}': No such file or directory\n")
            status = 2
            continue
        if node.kind != "d" or "d" in flags:
            out.append(_ls_entry(sh, target, node, long, human) + "\n")
            continue
        if not sh.readable(path):
            err.append(f"ls: cannot open directory '{target}': Permission denied\n")
            status = 2
            continue
        names = sh.fs.listdir(path)
        if not show_all:
            names = [n for n in names if not n.startswith(".")]
        elif "a" in flags:
            names = [".", "..", *names]
        if len(targets) > 1:
            out.append(f"{target}:\n")
        entries = []
        for name in names:
            child = sh.fs.nodes.get(posixpath.join(path, name)) if name not in (".", "..") \
                else sh.fs.resolve(posixpath.join(path, name))[1]
            if child is not None:
                entries.append(_ls_entry(sh, name, child, long, human))
        if long:
            total = sum((c.length + 4095) // 4096 * 4 for c in
                        (sh.fs.nodes.get(posixpath.join(path, n)) for n in names) if c)
            out.append(f"total {total}\n" + "".join(e + "\n" for e in entries))
        elif entries:
            one_per_line = not sh.interactive or sh.piped or "1" in flags
            out.append(("\n" if one_per_line else "  ").join(entries) + "\n")
    return Output("".join(out), "".join(err), status)


def _ls_entry(sh: Shell, name: str, node: Node, long: bool, human: bool) -> str:
    if not long:
        return name
    size = _human(node.length) if human else str(node.length)
    link = f" -> {node.target}" if node.kind == "l" else ""
    return (f"{_mode_string(node)} 1 {node.owner:<8} {node.group:<8} {size:>6} "
            f"{_ls_time(node.mtime, sh.clock())} {name}{link}")


@command("cd")
def _cd(sh: Shell, argv: list[str], stdin: str) -> Output:
    target = argv[1] if len(argv) > 1 else sh.home
    if target == "-":
        target = sh.env.get("OLDPWD", sh.cwd)
    path, node = sh.fs.resolve(sh.abspath(target))
    if node is None:
        return Output("", f"-bash: cd: {target}: No such file or directory\n", 1)
    if node.kind != "d":
        return Output("", f"-bash: cd: {target}: Not a directory\n", 1)
    if not sh.readable(path):
        return Output("", f"-bash: cd: {target}: Permission denied\n", 1)
    sh.env["OLDPWD"] = sh.cwd
    sh.cwd = sh.abspath(target)
    sh.env["PWD"] = sh.cwd
    return Output()


@command("pwd")
def _pwd(sh: Shell, argv: list[str], stdin: str) -> Output:
    return Output(sh.cwd + "\n")


@command("cat", "more", "less")
def _cat(sh: Shell, argv: list[str], stdin: str) -> Output:
    _, paths = _flags(argv)
    if not paths:
        return Output(stdin)
    out, err, status = [], [], 0
    for target in paths:
        path, node = sh.fs.resolve(sh.abspath(target))
        if node is None:
            err.append(f"{argv[0]}: {target}: No such file or directory\n")
            status = 1
        elif node.kind == "d":
            err.append(f"{argv[0]}: {target}: Is a directory\n")
            status = 1
        elif not sh.readable(path) or (path == "/etc/shadow" and sh.user != "root"):
            err.append(f"{argv[0]}: {target}: Permission denied\n")
            status = 1
        elif node.size is not None and not node.content:
            out.append("\x7fELF\x02\x01\x01" + "\x00" * 9 + "\x03\x00>\x00\x01\x00\x00\x00")
        else:
            out.append(node.content.decode("utf-8", "replace"))
    return Output("".join(out), "".join(err), status)


def _unescape(text: str) -> str:
    def hexchar(m: re.Match[str]) -> str:
        return chr(int(m.group(1), 16))

    text = re.sub(r"\\x([0-9a-fA-F]{1,2})", hexchar, text)
    return text.replace("\\n", "\n").replace("\\t", "\t").replace("\\\\", "\\")


@command("echo")
def _echo(sh: Shell, argv: list[str], stdin: str) -> Output:
    args = argv[1:]
    newline, escapes = True, False
    while args and re.fullmatch(r"-[neE]+", args[0]):
        newline = newline and "n" not in args[0]
        escapes = "e" in args[0]
        args = args[1:]
    text = " ".join(args)
    return Output((_unescape(text) if escapes else text) + ("\n" if newline else ""))


@command("printf")
def _printf(sh: Shell, argv: list[str], stdin: str) -> Output:
    if len(argv) < 2:
        return Output("", "printf: usage: printf [-v var] format [arguments]\n", 2)
    text = argv[1].replace("%s", " ".join(argv[2:]), 1) if "%s" in argv[1] else argv[1]
    return Output(_unescape(text))


@command("whoami")
def _whoami(sh: Shell, argv: list[str], stdin: str) -> Output:
    return Output(sh.user + "\n")


@command("id")
def _id(sh: Shell, argv: list[str], stdin: str) -> Output:
    if sh.user == "root":
        return Output("uid=0(root) gid=0(root) groups=0(root)\n")
    uid = _uid_of(sh.persona, sh.user)
    return Output(f"uid={uid}({sh.user}) gid={uid}({sh.user}) groups={uid}({sh.user}),"
                  "24(cdrom),25(floppy),27(sudo),29(audio),30(dip),44(video),46(plugdev),"
                  "100(users),106(netdev)\n")


@command("uname")
def _uname(sh: Shell, argv: list[str], stdin: str) -> Output:
    flags, _ = _flags(argv)
    p = sh.persona
    fields = {"s": "Linux", "n": p.hostname, "r": p.kernel, "v": p.kernel_version,
              "m": p.arch, "p": "unknown", "i": "unknown", "o": "GNU/Linux"}
    if "a" in flags or "--all" in flags:
        return Output(f"Linux {p.hostname} {p.kernel} {p.kernel_version} {p.arch} GNU/Linux\n")
    chosen = [fields[k] for k in "snrvmpio" if k in flags] or ["Linux"]
    return Output(" ".join(chosen) + "\n")


@command("hostname")
def _hostname(sh: Shell, argv: list[str], stdin: str) -> Output:
    flags, rest = _flags(argv)
    if rest:
        return Output("", "hostname: you must be root to change the host name\n", 1)
    if "I" in flags or "i" in flags:
        return Output(sh.persona.ip + " \n")
    return Output(sh.persona.hostname + "\n")


def _uptime_text(sh: Shell) -> str:
    now = sh.clock()
    up = int(now - sh.persona.boot_time)
    days, hours, minutes = up // 86400, up % 86400 // 3600, up % 3600 // 60
    clock = dt.datetime.fromtimestamp(now, dt.UTC).strftime("%H:%M:%S")
    return (f" {clock} up {days} days, {hours:2d}:{minutes:02d},  1 user,  "
            "load average: 0.08, 0.03, 0.01")


@command("uptime")
def _uptime(sh: Shell, argv: list[str], stdin: str) -> Output:
    flags, _ = _flags(argv)
    if "p" in flags:
        up = int(sh.clock() - sh.persona.boot_time)
        return Output(f"up {up // 604800} weeks, {up % 604800 // 86400} days, "
                      f"{up % 86400 // 3600} hours\n")
    return Output(_uptime_text(sh) + "\n")


@command("w")
def _w(sh: Shell, argv: list[str], stdin: str) -> Output:
    login = dt.datetime.fromtimestamp(sh.clock() - 5, dt.UTC).strftime("%H:%M")
    return Output(f"{_uptime_text(sh)}\nUSER     TTY      FROM             LOGIN@   IDLE   "
                  f"JCPU   PCPU WHAT\n{sh.user:<8} pts/0    {sh.src_ip:<16} {login}    "
                  "0.00s  0.01s  0.00s w\n")


@command("who", "users")
def _who(sh: Shell, argv: list[str], stdin: str) -> Output:
    if argv[0] == "users":
        return Output(sh.user + "\n")
    login = dt.datetime.fromtimestamp(sh.clock() - 5, dt.UTC).strftime("%Y-%m-%d %H:%M")
    return Output(f"{sh.user:<8} pts/0        {login} ({sh.src_ip})\n")


@command("last")
def _last(sh: Shell, argv: list[str], stdin: str) -> Output:
    begins = dt.datetime.fromtimestamp(sh.persona.boot_time, dt.UTC)
    return Output(f"\nwtmp begins {begins.strftime('%a %b %e %H:%M:%S %Y')}\n")


_PROCESSES = [
    ("root", 1, "0.0", "0.2", 168532, 11904, "?", "Ss", "/sbin/init"),
    ("root", 2, "0.0", "0.0", 0, 0, "?", "S", "[kthreadd]"),
    ("root", 3, "0.0", "0.0", 0, 0, "?", "I<", "[rcu_gp]"),
    ("root", 12, "0.0", "0.0", 0, 0, "?", "S", "[ksoftirqd/0]"),
    ("root", 241, "0.0", "0.3", 48288, 14664, "?", "Ss", "/lib/systemd/systemd-journald"),
    ("root", 266, "0.0", "0.1", 25876, 6380, "?", "Ss", "/lib/systemd/systemd-udevd"),
    ("root", 402, "0.0", "0.0", 6612, 2636, "?", "Ss", "/usr/sbin/cron -f"),
    ("message+", 403, "0.0", "0.1", 9116, 4724, "?", "Ss",
     "/usr/bin/dbus-daemon --system --address=systemd: --nofork --nopidfile"),
    ("root", 406, "0.0", "0.1", 222212, 5392, "?", "Ssl", "/usr/sbin/rsyslogd -n -iNONE"),
    ("root", 409, "0.0", "0.1", 16512, 7424, "?", "Ss", "/lib/systemd/systemd-logind"),
    ("root", 445, "0.0", "0.0", 5876, 1004, "tty1", "Ss+", "/sbin/agetty -o -p -- \\u "
     "--noclear - linux"),
    ("root", 451, "0.0", "0.2", 15436, 9204, "?", "Ss",
     "sshd: /usr/sbin/sshd -D [listener] 0 of 10-100 startups"),
]


@command("ps")
def _ps(sh: Shell, argv: list[str], stdin: str) -> Output:
    flags, _ = _flags(argv)
    args = "".join(argv[1:])
    session = [
        ("root", 28617, "0.0", "0.2", 17724, 10960, "?", "Ss",
         f"sshd: {sh.user} [priv]" if sh.via == "ssh" else f"login -- {sh.user}"),
        (sh.user, 28623, "0.0", "0.1", 8772, 5316, "pts/0", "Ss", "-bash"),
        (sh.user, 28690, "0.0", "0.0", 11084, 4392, "pts/0", "R+", "ps " + " ".join(argv[1:])),
    ]
    if "a" in args or "e" in flags or "x" in args:
        rows = [*_PROCESSES, *session]
        if "f" in flags and "e" in flags:
            lines = ["UID          PID    PPID  C STIME TTY          TIME CMD"]
            for user, pid, *_rest, tty, _st, cmd in rows:
                lines.append(f"{user:<8} {pid:>7} {1 if pid > 2 else 0:>7}  0 Oct19 "
                             f"{tty:<8} 00:00:00 {cmd}")
            return Output("\n".join(lines) + "\n")
        lines = ["USER         PID %CPU %MEM    VSZ   RSS TTY      STAT START   TIME COMMAND"]
        for user, pid, cpu, mem, vsz, rss, tty, st, cmd in rows:
            lines.append(f"{user:<8} {pid:>7} {cpu:>4} {mem:>4} {vsz:>6} {rss:>5} {tty:<8} "
                         f"{st:<4} Oct19   0:00 {cmd}")
        return Output("\n".join(lines) + "\n")
    return Output("    PID TTY          TIME CMD\n  28623 pts/0    00:00:00 bash\n"
                  "  28690 pts/0    00:00:00 ps\n")


def _ifaces(sh: Shell) -> tuple[str, str, str]:
    ip = sh.persona.ip
    parts = ip.split(".")
    broadcast = ".".join(parts[:3] + ["255"]) if len(parts) == 4 else ip
    return ip, broadcast, sh.persona.mac


@command("ifconfig")
def _ifconfig(sh: Shell, argv: list[str], stdin: str) -> Output:
    ip, bcast, mac = _ifaces(sh)
    return Output(
        f"eth0: flags=4163<UP,BROADCAST,RUNNING,MULTICAST>  mtu 1500\n"
        f"        inet {ip}  netmask 255.255.255.0  broadcast {bcast}\n"
        f"        ether {mac}  txqueuelen 1000  (Ethernet)\n"
        "        RX packets 1843921  bytes 1287393121 (1.1 GiB)\n"
        "        RX errors 0  dropped 0  overruns 0  frame 0\n"
        "        TX packets 901233  bytes 118273541 (112.7 MiB)\n"
        "        TX errors 0  dropped 0 overruns 0  carrier 0  collisions 0\n\n"
        "lo: flags=73<UP,LOOPBACK,RUNNING>  mtu 65536\n"
        "        inet 127.0.0.1  netmask 255.0.0.0\n"
        "        inet6 ::1  prefixlen 128  scopeid 0x10<host>\n"
        "        loop  txqueuelen 1000  (Local Loopback)\n"
        "        RX packets 1204  bytes 101336 (98.9 KiB)\n"
        "        RX errors 0  dropped 0  overruns 0  frame 0\n"
        "        TX packets 1204  bytes 101336 (98.9 KiB)\n"
        "        TX errors 0  dropped 0 overruns 0  carrier 0  collisions 0\n\n")


@command("ip")
def _ip(sh: Shell, argv: list[str], stdin: str) -> Output:
    ip, bcast, mac = _ifaces(sh)
    obj = next((a for a in argv[1:] if not a.startswith("-")), "")
    if obj and "address".startswith(obj) or obj == "addr":
        return Output(
            "1: lo: <LOOPBACK,UP,LOWER_UP> mtu 65536 qdisc noqueue state UNKNOWN group default "
            "qlen 1000\n    link/loopback 00:00:00:00:00:00 brd 00:00:00:00:00:00\n"
            "    inet 127.0.0.1/8 scope host lo\n       valid_lft forever preferred_lft forever\n"
            "2: eth0: <BROADCAST,MULTICAST,UP,LOWER_UP> mtu 1500 qdisc fq_codel state UP group "
            f"default qlen 1000\n    link/ether {mac} brd ff:ff:ff:ff:ff:ff\n"
            f"    altname enp0s3\n    inet {ip}/24 brd {bcast} scope global dynamic eth0\n"
            "       valid_lft 74211sec preferred_lft 74211sec\n")
    if obj and "route".startswith(obj):
        net = ".".join(ip.split(".")[:3])
        return Output(f"default via {net}.1 dev eth0 proto dhcp src {ip} metric 100\n"
                      f"{net}.0/24 dev eth0 proto kernel scope link src {ip} metric 100\n")
    return Output("", "Usage: ip [ OPTIONS ] OBJECT { COMMAND | help }\n", 255)


@command("df")
def _df(sh: Shell, argv: list[str], stdin: str) -> Output:
    flags, _ = _flags(argv)
    if "h" in flags:
        return Output("Filesystem      Size  Used Avail Use% Mounted on\n"
                      "udev            1.9G     0  1.9G   0% /dev\n"
                      "tmpfs           394M  568K  393M   1% /run\n"
                      "/dev/sda1        39G  6.2G   31G  17% /\n"
                      "tmpfs           2.0G     0  2.0G   0% /dev/shm\n"
                      "tmpfs           5.0M     0  5.0M   0% /run/lock\n")
    return Output("Filesystem     1K-blocks    Used Available Use% Mounted on\n"
                  "udev             1980412       0   1980412   0% /dev\n"
                  "tmpfs             402652     568    402084   1% /run\n"
                  "/dev/sda1       40503552 6483112  31932604  17% /\n"
                  "tmpfs            2013256       0   2013256   0% /dev/shm\n"
                  "tmpfs               5120       0      5120   0% /run/lock\n")


@command("free")
def _free(sh: Shell, argv: list[str], stdin: str) -> Output:
    flags, _ = _flags(argv)
    total = sh.persona.mem_kib
    used, free, shared, cache = total * 19 // 100, total * 47 // 100, 1228, total * 34 // 100
    avail = total * 78 // 100
    swap = 998396

    def unit(kib: int) -> str:
        if "h" in flags:
            return _human(kib * 1024) + ("i" if kib * 1024 >= 1024 else "")
        if "m" in flags:
            return str(kib // 1024)
        if "g" in flags:
            return str(kib // 1048576)
        return str(kib)

    return Output(
        "               total        used        free      shared  buff/cache   available\n"
        f"Mem:    {unit(total):>12} {unit(used):>11} {unit(free):>11} {unit(shared):>11} "
        f"{unit(cache):>11} {unit(avail):>11}\n"
        f"Swap:   {unit(swap):>12} {unit(0):>11} {unit(swap):>11}\n")


@command("nproc")
def _nproc(sh: Shell, argv: list[str], stdin: str) -> Output:
    return Output(f"{sh.persona.cpus}\n")


@command("lscpu")
def _lscpu(sh: Shell, argv: list[str], stdin: str) -> Output:
    p = sh.persona
    return Output(f"Architecture:            {p.arch}\n  CPU op-mode(s):        32-bit, 64-bit\n"
                  "  Byte Order:            Little Endian\n"
                  f"CPU(s):                  {p.cpus}\nVendor ID:               GenuineIntel\n"
                  f"  Model name:            {p.cpu_model}\n    CPU family:          6\n"
                  "    Model:               79\n    Thread(s) per core:  1\n")


@command("history")
def _history(sh: Shell, argv: list[str], stdin: str) -> Output:
    return Output("".join(f"{i:>5}  {line}\n" for i, line in enumerate(sh.history, 1)))


@command("env", "printenv")
def _env(sh: Shell, argv: list[str], stdin: str) -> Output:
    if argv[0] == "printenv" and len(argv) > 1:
        value = sh.env.get(argv[1])
        return Output(value + "\n") if value is not None else Output(status=1)
    return Output("".join(f"{k}={v}\n" for k, v in sh.env.items()) + "_=/usr/bin/env\n")


@command("export", "unset", "set", "alias", "unalias", "source", ".", "mkdir", "touch", "rm",
         "rmdir", "chmod", "chown", "chgrp", "cp", "mv", "ln", "kill", "killall", "pkill",
         "true", "clear", "reset", "sync", "sleep", "umask", "ulimit",
         "shopt", "trap", "wait", "disown", "renice", "nice", ":")
def _silent(sh: Shell, argv: list[str], stdin: str) -> Output:
    if argv[0] == "export" and len(argv) > 1 and "=" in argv[1]:
        name, _, value = argv[1].partition("=")
        if re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*", name) and len(sh.env) < 64:
            sh.env[name] = value[:256]
    if argv[0] in ("kill", "killall", "pkill") and len(argv) > 1 and sh.user != "root":
        return Output("", f"-bash: kill: ({argv[-1]}) - Operation not permitted\n", 1)
    return Output()


@command("false")
def _false(sh: Shell, argv: list[str], stdin: str) -> Output:
    return Output(status=1)


@command("date")
def _date(sh: Shell, argv: list[str], stdin: str) -> Output:
    return Output(dt.datetime.fromtimestamp(sh.clock(), dt.UTC)
                  .strftime("%a %b %e %H:%M:%S UTC %Y") + "\n")


@command("which", "type", "command")
def _which(sh: Shell, argv: list[str], stdin: str) -> Output:
    out, status = [], 0
    for name in [a for a in argv[1:] if not a.startswith("-")]:
        for directory in ("/usr/bin", "/usr/sbin"):
            if f"{directory}/{name}" in sh.fs.nodes:
                out.append(f"{name} is {directory}/{name}\n" if argv[0] == "type"
                           else f"{directory}/{name}\n")
                break
        else:
            status = 1
            if argv[0] == "type":
                out.append(f"-bash: type: {name}: not found\n")
    return Output("".join(out), "", status)


@command("grep", "egrep", "fgrep")
def _grep(sh: Shell, argv: list[str], stdin: str) -> Output:
    flags, rest = _flags(argv)
    if not rest:
        return Output("", "Usage: grep [OPTION]... PATTERNS [FILE]...\n", 2)
    pattern, files = rest[0], rest[1:]
    text = stdin
    if files:
        read = _cat(sh, ["cat", *files], "")
        text = read.stdout
    needle = pattern.lower() if "i" in flags else pattern
    lines = [ln for ln in text.splitlines()
             if (needle in (ln.lower() if "i" in flags else ln)) != ("v" in flags)]
    if "c" in flags:
        return Output(f"{len(lines)}\n", "", 0 if lines else 1)
    return Output("".join(ln + "\n" for ln in lines), "", 0 if lines else 1)


def _count(argv: list[str], default: int = 10) -> tuple[int, list[str]]:
    count, rest, args = default, [], argv[1:]
    i = 0
    while i < len(args):
        arg = args[i]
        if arg == "-n" and i + 1 < len(args):
            count = int(args[i + 1]) if args[i + 1].lstrip("-").isdigit() else default
            i += 1
        elif re.fullmatch(r"-n?\d+", arg):
            count = int(arg.lstrip("-n"))
        elif not arg.startswith("-"):
            rest.append(arg)
        i += 1
    return min(count, 100000), rest


@command("head", "tail")
def _head(sh: Shell, argv: list[str], stdin: str) -> Output:
    count, files = _count(argv)
    read = _cat(sh, ["cat", *files], stdin) if files else Output(stdin)
    lines = read.stdout.splitlines(keepends=True)
    chosen = lines[:count] if argv[0] == "head" else lines[-count:] if count else []
    return Output("".join(chosen), read.stderr, read.status)


@command("wc")
def _wc(sh: Shell, argv: list[str], stdin: str) -> Output:
    flags, files = _flags(argv)
    read = _cat(sh, ["cat", *files], stdin) if files else Output(stdin)
    text = read.stdout
    counts = {"l": text.count("\n"), "w": len(text.split()), "c": len(text.encode())}
    chosen = [k for k in "lwc" if k in flags] or ["l", "w", "c"]
    if len(chosen) == 1 and not files:
        return Output(f"{counts[chosen[0]]}\n")
    return Output(" ".join(f"{counts[k]:>7}" for k in chosen) + "\n", read.stderr, read.status)


@command("sort", "uniq")
def _sort(sh: Shell, argv: list[str], stdin: str) -> Output:
    lines = stdin.splitlines()
    if argv[0] == "sort":
        lines.sort()
    else:
        lines = [ln for i, ln in enumerate(lines) if i == 0 or lines[i - 1] != ln]
    return Output("".join(ln + "\n" for ln in lines))


@command("crontab")
def _crontab(sh: Shell, argv: list[str], stdin: str) -> Output:
    return Output("", f"no crontab for {sh.user}\n", 1)


@command("exit", "logout")
def _exit(sh: Shell, argv: list[str], stdin: str) -> Output:
    return Output("\x00exit")


@command("sudo")
def _sudo(sh: Shell, argv: list[str], stdin: str) -> Output:
    flags, rest = _flags(argv[:2]) if len(argv) > 1 else (set(), [])
    if len(argv) < 2:
        return Output("", "usage: sudo -h | -K | -k | -V\nusage: sudo -v [-ABknS] [-g group] "
                      "[-h host] [-p prompt] [-u user]\n", 1)
    if sh.user == "root":
        inner = [a for a in argv[1:] if not a.startswith("-")]
        return sh.run_simple(Simple(inner), stdin, sh.depth + 1) if inner else Output()
    if not sh.interactive:
        return Output("", "sudo: a terminal is required to read the password; either use the "
                      "-S option to read from standard input or configure an askpass helper\n"
                      "sudo: a password is required\n", 1)
    del flags, rest
    return Output("\x00sudo:" + sh._sudo_prompt())


@command("su")
def _su(sh: Shell, argv: list[str], stdin: str) -> Output:
    if sh.user == "root":
        return Output()
    return Output("\x00sudo:Password: ")


@command("passwd", "chpasswd")
def _passwd(sh: Shell, argv: list[str], stdin: str) -> Output:
    if argv[0] == "chpasswd":
        return Output() if sh.user == "root" else Output(
            "", "chpasswd: (user root) pam_chauthtok() failed, error:\nAuthentication token "
            "manipulation error\n", 1)
    return Output("", "passwd: Authentication token manipulation error\n"
                  "passwd: password unchanged\n", 10)


def _url_host(url: str) -> tuple[str, int, str]:
    if "://" not in url:
        url = "http://" + url
    try:
        parts = urllib.parse.urlsplit(url)
        host = parts.hostname or ""
    except ValueError:  # e.g. an unbalanced "[" in the host
        return url.split("://", 1)[1].split("/", 1)[0][:255], 80, url
    try:
        port = parts.port or (443 if parts.scheme == "https" else 21 if parts.scheme == "ftp"
                              else 80)
    except ValueError:
        port = 80
    return host, port, url


def _is_ip(host: str) -> bool:
    return bool(re.fullmatch(r"\d{1,3}(\.\d{1,3}){3}", host))


@command("wget")
def _wget(sh: Shell, argv: list[str], stdin: str) -> Output:
    _, rest = _flags(argv)
    targets = [a for a in rest if "." in a or "/" in a]
    if not targets:
        return Output("", "wget: missing URL\nUsage: wget [OPTION]... [URL]...\n\n"
                      "Try `wget --help' for more options.\n", 1)
    err = []
    for target in targets[:8]:
        host, port, url = _url_host(target)
        sh.urls.append(url)
        when = dt.datetime.fromtimestamp(sh.clock(), dt.UTC).strftime("%Y-%m-%d %H:%M:%S")
        err.append(f"--{when}--  {url}\n")
        if _is_ip(host):
            err.append(f"Connecting to {host}:{port}... failed: Connection timed out.\n"
                       "Giving up.\n\n")
        else:
            err.append(f"Resolving {host} ({host})... failed: Temporary failure in name "
                       f"resolution.\nwget: unable to resolve host address ‘{host}’\n")
    return Output("", "".join(err), 4)


@command("curl")
def _curl(sh: Shell, argv: list[str], stdin: str) -> Output:
    args = argv[1:]
    targets = []
    skip = False
    for arg in args:
        if skip:
            skip = False
        elif arg in ("-o", "-O", "--output", "-H", "-d", "-X", "-A", "-u", "--data", "-e"):
            skip = arg != "-O"
        elif not arg.startswith("-"):
            targets.append(arg)
    if not targets:
        return Output("", "curl: try 'curl --help' or 'curl --manual' for more information\n", 2)
    host, port, url = _url_host(targets[0])
    sh.urls.extend(_url_host(t)[2] for t in targets[:8])
    if _is_ip(host):
        return Output("", f"curl: (28) Failed to connect to {host} port {port} after 130001 ms: "
                      "Couldn't connect to server\n", 28)
    return Output("", f"curl: (6) Could not resolve host: {host}\n", 6)


@command("tftp", "ftpget", "ftp", "nc", "ncat", "telnet", "ssh", "scp", "ping")
def _network(sh: Shell, argv: list[str], stdin: str) -> Output:
    name = argv[0]
    if name in ("nc", "ncat", "tftp", "ftpget"):
        return sh.not_found(name)
    hosts = [a for a in argv[1:] if not a.startswith("-") and "." in a]
    host = hosts[0].rpartition("@")[2].partition(":")[0] if hosts else ""
    if name == "ping":
        if not host:
            return Output("", "ping: usage error: Destination address required\n", 1)
        return Output(f"PING {host} ({host}) 56(84) bytes of data.\n\n--- {host} ping "
                      "statistics ---\n4 packets transmitted, 0 received, 100% packet loss, "
                      "time 3062ms\n\n", "", 1)
    if not host:
        return Output("", f"usage: {name} destination\n", 255)
    return Output("", f"{name}: connect to host {host} port 22: Connection timed out\n", 255)


@command("bash", "sh", "dash", "ash")
def _bash(sh: Shell, argv: list[str], stdin: str) -> Output:
    if len(argv) > 2 and argv[1] == "-c" and sh.depth < MAX_DEPTH:
        try:
            steps = parse(argv[2], {**sh.env, "?": str(sh.status)})
        except SyntaxProblem as problem:
            return Output("", f"{argv[0]}: -c: line 1: {problem}\n", 2)
        inner = sh.run_steps(steps, sh.depth + 1)
        return Output(inner.output, "", sh.status)
    return Output()


@command("nohup", "timeout", "time", "exec", "builtin", "stdbuf")
def _wrapper(sh: Shell, argv: list[str], stdin: str) -> Output:
    inner = argv[1:]
    if argv[0] == "timeout" and inner:
        inner = inner[1:]
    if not inner or sh.depth >= MAX_DEPTH:
        return Output()
    return sh.run_simple(Simple(inner), stdin, sh.depth + 1)


@command("busybox")
def _busybox(sh: Shell, argv: list[str], stdin: str) -> Output:
    if not sh.persona.busybox:
        return sh.not_found("busybox")
    if len(argv) < 2:
        return Output("BusyBox v1.31.1 () multi-call binary.\n")
    if argv[1] in COMMANDS and argv[1] != "busybox" and sh.depth < MAX_DEPTH:
        return sh.run_simple(Simple(argv[1:]), stdin, sh.depth + 1)
    return Output("", f"{argv[1]}: applet not found\n", 127)
