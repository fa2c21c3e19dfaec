"""Redis: RESP framing both ways, the auth rules, the bounded keyspace."""

from __future__ import annotations

import asyncio

import pytest

from decnet.emulators.services import redis


def _session(**config: object) -> redis.Session:
    cfg = dict(redis.DEFAULTS, **config)
    return redis.Session(cfg, redis.Store(cfg["keys"]), 0.0)


def _read(data: bytes) -> list[bytes] | None:
    async def go() -> list[bytes] | None:
        reader = asyncio.StreamReader()
        reader.feed_data(data)
        reader.feed_eof()
        return await redis.read_command(reader, 1)

    return asyncio.run(go())


def test_multibulk_and_inline_commands_parse_alike() -> None:
    assert _read(b"*3\r\n$3\r\nSET\r\n$1\r\nk\r\n$5\r\nv a l\r\n") == [b"SET", b"k", b"v a l"]
    assert _read(b'SET k "v a l"\r\n') == [b"SET", b"k", b"v a l"]
    assert redis.parse_inline(b'a "" b') == [b"a", b"", b"b"]


def test_oversized_or_broken_frames_are_protocol_errors() -> None:
    for frame in (b"*99999\r\n", b"*1\r\n$999999999\r\n", b"*1\r\nX\r\n", b"*x\r\n"):
        with pytest.raises(redis.ProtocolError):
            _read(frame)


def test_info_reports_configured_version_the_way_scanners_expect() -> None:
    answer = _session(version="6.2.14").answer([b"INFO"])
    assert answer.startswith(b"$") and b"\r\n# Server\r\nredis_version:6.2.14\r\n" in answer


def test_password_configured_means_noauth_until_auth() -> None:
    s = _session(password="pw")
    assert s.answer([b"GET", b"counter"]).startswith(b"-NOAUTH")
    assert s.answer([b"AUTH", b"wrong"]).startswith(b"-WRONGPASS")
    assert s.answer([b"AUTH", b"pw"]) == b"+OK\r\n"
    assert s.answer([b"GET", b"counter"]) == b"$4\r\n1337\r\n"
    assert _session().answer([b"AUTH", b"x"]).startswith(b"-ERR AUTH <password> called")


def test_attack_chain_answers_like_a_real_server() -> None:
    s = _session()
    assert s.answer([b"CONFIG", b"SET", b"dir", b"/root/.ssh"]) == b"+OK\r\n"
    assert s.answer([b"CONFIG", b"GET", b"dir"]) == redis.bulk_array(["dir", "/root/.ssh"])
    assert s.answer([b"SLAVEOF", b"10.0.0.5", b"6379"]) == b"+OK\r\n"
    assert s.answer([b"MODULE", b"LOAD", b"/tmp/x.so"]).startswith(b"-ERR Error loading")
    assert s.answer([b"nosuch", b"a"]).startswith(b"-ERR unknown command 'nosuch'")


def test_hello_3_switches_to_resp3_maps() -> None:
    s = _session()
    assert s.answer([b"HELLO", b"3"]).startswith(b"%7\r\n")
    assert s.answer([b"GET", b"missing"]) == b"_\r\n"


def test_keyspace_is_bounded() -> None:
    store = redis.Store({})
    for i in range(redis.MAX_KEYS + 10):
        store.set(b"k%d" % i, b"v")
    assert len(store.data) == redis.MAX_KEYS
    big = redis.Store({})
    for i in range(200):
        big.set(b"b%d" % i, b"x" * 60000)
    assert big.size() <= redis.MAX_STORE_BYTES


def test_run_ids_differ_between_starts_so_two_hosts_never_match() -> None:
    a, b = redis.Store({}), redis.Store({})
    assert a.run_id != b.run_id and a.replid != b.replid
    assert f"run_id:{a.run_id}" in redis.info(dict(redis.DEFAULTS), a, 0.0, 1)
