"""Lure files on the node: the agent's own record, never read back from a decky."""

from __future__ import annotations

import hashlib
import os
import time
from pathlib import Path

import pytest

from decnet.agent import lures, planner

UID = "0b7c6f7e-2a51-4b7e-9d1a-3f5d2c1e0a99"


def lure(path: str, content: bytes, mode: int = 0o600, age: int = -86400) -> planner.FileWant:
    return planner.FileWant(path, mode, age, hashlib.sha256(content).hexdigest(), content)


def test_files_are_written_with_mode_and_age_and_recorded(tmp_path: Path) -> None:
    store = lures.LureStore(str(tmp_path))
    f = lure("/home/admin/passwords.txt", b"pw")
    now = time.time()
    store.sync(planner.SyncFiles(UID, (f,), (), {f.path: f.digest}), now)
    on_disk = tmp_path / UID / lures.file_name(f.path)
    assert on_disk.read_bytes() == b"pw"
    assert on_disk.stat().st_mode & 0o7777 == 0o600
    assert abs(on_disk.stat().st_mtime - (now - 86400)) < 2
    assert store.manifest(UID) == {f.path: f.digest}
    binds = store.binds(UID, [f.path])
    assert binds == {str(on_disk): {"bind": f.path, "mode": "ro"}}


def test_a_rewrite_keeps_the_inode_so_bind_mounts_see_it(tmp_path: Path) -> None:
    store = lures.LureStore(str(tmp_path))
    a = lure("/x", b"one")
    store.sync(planner.SyncFiles(UID, (a,), (), {a.path: a.digest}), time.time())
    inode = (tmp_path / UID / lures.file_name("/x")).stat().st_ino
    b = lure("/x", b"two-longer")
    store.sync(planner.SyncFiles(UID, (b,), (), {b.path: b.digest}), time.time())
    target = tmp_path / UID / lures.file_name("/x")
    assert target.stat().st_ino == inode
    assert target.read_bytes() == b"two-longer"


def test_a_damaged_or_huge_manifest_reads_as_nothing_written(tmp_path: Path) -> None:
    store = lures.LureStore(str(tmp_path))
    (tmp_path / f"{UID}.json").write_text("{not json")
    assert store.manifest(UID) == {}
    (tmp_path / f"{UID}.json").write_bytes(b"[" * (lures.MANIFEST_MAX_BYTES + 10))
    assert store.manifest(UID) == {}
    (tmp_path / f"{UID}.json").write_text('{"/a": "d"}')  # recorded, but the file is gone
    assert store.manifest(UID) == {}


def test_removed_paths_and_deleted_deckies_leave_nothing(tmp_path: Path) -> None:
    store = lures.LureStore(str(tmp_path))
    a, b = lure("/a", b"a"), lure("/b", b"b")
    store.sync(planner.SyncFiles(UID, (a, b), (), {"/a": a.digest, "/b": b.digest}), time.time())
    store.sync(planner.SyncFiles(UID, (), ("/b",), {"/a": a.digest}), time.time())
    assert store.manifest(UID) == {"/a": a.digest}
    assert len(os.listdir(tmp_path / UID)) == 1
    assert store.prune({UID}) == []
    assert store.prune(set()) == [UID]
    assert os.listdir(tmp_path) == []


def test_prune_leaves_the_event_checkpoint_and_spools_in_the_shared_state_dir(
    tmp_path: Path,
) -> None:
    store = lures.LureStore(str(tmp_path))
    (tmp_path / "spool" / "soc-syslog").mkdir(parents=True)
    (tmp_path / "spool" / "soc-syslog" / "000000000001.seg").write_bytes(b"event\n")
    (tmp_path / "checkpoint.json").write_text("{}")
    a = lure("/a", b"a")
    store.sync(planner.SyncFiles(UID, (a,), (), {"/a": a.digest}), time.time())
    assert store.known() == {UID}
    assert store.prune(set()) == [UID]
    assert sorted(os.listdir(tmp_path)) == ["checkpoint.json", "spool"]
    assert (tmp_path / "spool" / "soc-syslog" / "000000000001.seg").read_bytes() == b"event\n"


def test_a_uid_cannot_escape_the_store(tmp_path: Path) -> None:
    store = lures.LureStore(str(tmp_path))
    with pytest.raises(ValueError):
        store.binds("../../etc", ["/x"])
