"""Lure files live on the node, in the agent's state directory, and are bind-mounted
read-only into a decky's service containers.

The agent used to copy files into each container and keep a manifest inside the decky
(/.decnet/files.json), reading it back on every start: a file an attacker controls,
unbounded in size, that could freeze or kill the agent. Now nothing about files is ever
read from a container and nothing is copied into a running one:

- each decky (by uid) has a directory `<root>/<uid>/` holding one file per lure, named
  by a hash of its path, with the lure's mode and aged mtime set on the node;
- service containers mount each of those files read-only at the lure's path (a
  per-file bind, because a directory bind at /etc or /home would hide the image's own
  files there); content, mode and age changes are written in place, so the running
  containers see them at once; a new path needs the service recreated (the planner's
  service hash holds the paths), which is cheap and leaves the base alone;
- the manifest (path -> digest) is `<root>/<uid>.json`, written only by the agent, on a
  path no container mounts. A damaged manifest reads as empty (everything is rewritten).
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import shutil
import tempfile
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path

from decnet.agent import planner

# A bind mount's source path shows in the container's /proc/self/mountinfo: nothing in
# it may name the product or say "lure" (DESIGN "Containment": no tells).
DEFAULT_ROOT = "/var/lib/container-files"
# The manifest is ours, but bounded anyway: a lure set is at most a few dozen paths.
MANIFEST_MAX_BYTES = 256 * 1024
_UID = re.compile(r"^[A-Za-z0-9-]{1,64}$")
# What the API server gives a Decky as metadata.uid. The store shares the agent's state
# directory with the event checkpoint (checkpoint.json) and the sink spools (spool/):
# only entries of this shape are the store's to list and prune.
_KUBE_UID = re.compile(r"^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$")


def file_name(path: str) -> str:
    """A lure's name on the node: a hash of its path (flat, no traversal possible)."""
    return hashlib.sha256(path.encode()).hexdigest()[:24]


class LureStore:
    """The host side of lure files. The root must be the same path on the host and in
    the agent (a hostPath mounted at its own path), because dockerd resolves binds."""

    def __init__(self, root: str = DEFAULT_ROOT) -> None:
        self.root = Path(root)

    def _dir(self, uid: str) -> Path:
        if not _UID.match(uid):
            raise ValueError(f"not a decky uid: {uid!r}")
        return self.root / uid

    def _manifest_path(self, uid: str) -> Path:
        return self.root / f"{self._dir(uid).name}.json"

    def manifest(self, uid: str) -> dict[str, str]:
        """What was written for this decky: {path: digest}; {} when nothing or damaged."""
        path = self._manifest_path(uid)
        try:
            with path.open("rb") as handle:
                raw = handle.read(MANIFEST_MAX_BYTES + 1)
        except FileNotFoundError:
            return {}
        if len(raw) > MANIFEST_MAX_BYTES:
            return {}
        try:
            loaded = json.loads(raw)
        except ValueError:
            return {}
        if not isinstance(loaded, dict):
            return {}
        present = {p for p in loaded if (self._dir(uid) / file_name(str(p))).is_file()}
        return {str(k): str(v) for k, v in loaded.items() if k in present}

    def binds(self, uid: str, paths: Sequence[str]) -> dict[str, dict[str, str]]:
        """`binds` for create_host_config: each lure file read-only at its path."""
        folder = self._dir(uid)
        return {str(folder / file_name(p)): {"bind": p, "mode": "ro"} for p in paths}

    def sync(self, action: planner.SyncFiles, now: float) -> None:
        folder = self._dir(action.uid)
        # root-only on the node: a bind mount does not need its source's parents to be
        # searchable by the container's user, and lures may be fake credentials
        self.root.mkdir(mode=0o700, parents=True, exist_ok=True)
        folder.mkdir(mode=0o700, exist_ok=True)
        for f in action.place:
            target = folder / file_name(f.path)
            # In place (same inode): a bind-mounted file follows its inode, not its name.
            fd = os.open(target, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_NOFOLLOW, 0o600)
            with os.fdopen(fd, "wb") as handle:
                handle.write(f.content)
            os.chmod(target, f.mode & 0o7777)
            stamp = now + f.mtime_offset_seconds
            os.utime(target, (stamp, stamp))
        for path in action.remove:
            try:
                (folder / file_name(path)).unlink()
            except FileNotFoundError:
                pass
        self._write_manifest(action.uid, action.manifest)

    def _write_manifest(self, uid: str, manifest: Mapping[str, str]) -> None:
        data = json.dumps(dict(manifest), sort_keys=True).encode()
        fd, tmp = tempfile.mkstemp(dir=self.root, prefix=".manifest-")
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
        os.replace(tmp, self._manifest_path(uid))

    def remove(self, uid: str) -> None:
        """A deleted decky: its lure directory and manifest go."""
        shutil.rmtree(self._dir(uid), ignore_errors=True)
        try:
            self._manifest_path(uid).unlink()
        except FileNotFoundError:
            pass

    def known(self) -> set[str]:
        """Decky uids with a lure directory or manifest on this node (nothing else in the
        state directory: the checkpoint and the spools are not the store's)."""
        try:
            entries = list(self.root.iterdir())
        except FileNotFoundError:
            return set()
        found = {e.name.removesuffix(".json") for e in entries if not e.name.startswith(".")}
        return {u for u in found if _KUBE_UID.match(u)}

    def prune(self, live_uids: Iterable[str]) -> list[str]:
        """Directories of deckies that no longer exist; returns the uids removed."""
        gone = sorted(self.known() - set(live_uids))
        for uid in gone:
            self.remove(uid)
        return gone
