"""The counters' Redis connection: one write per turn of the loop, replies in order, every failure
reaching every caller that waited, logins, and URLs read as redis-py reads them."""

from __future__ import annotations

import asyncio
import ssl

import pytest
import uvloop

from engine.limits.redis_pipe import RedisPipe, ReplyError, Script, command, parse_url
from tests.support.fake_redis import CLOSE, NOTHING, FakeRedis, echo


def _pipe(url: str, timeout: float = 5.0) -> RedisPipe:
    return RedisPipe(url, connect_timeout=5.0, timeout=timeout)


def test_commands_are_packed_as_resp_arrays() -> None:
    assert command("GET", "k") == b"*2\r\n$3\r\nGET\r\n$1\r\nk\r\n"
    assert command("INCRBY", "k", -12) == b"*3\r\n$6\r\nINCRBY\r\n$1\r\nk\r\n$3\r\n-12\r\n"
    script = Script("return 1")
    assert script.sha == "e0e1f9fabfc9d4800c877a703b823ac0578ff8db"
    assert script.evalsha(["a"], [7]) == command("EVALSHA", script.sha, 1, "a", 7)
    assert script.eval([], []) == command("EVAL", "return 1", 0)


def test_the_commands_of_one_turn_share_one_write_and_each_gets_its_own_reply() -> None:
    async def run() -> None:
        async with FakeRedis() as fake:
            pipe = _pipe(fake.url())
            assert await pipe.call(command("ECHO", "warm")) == b"warm"  # the connection is open
            before = pipe.traffic.writes
            replies = await asyncio.gather(*(pipe.call(command("ECHO", str(n))) for n in range(20)))
            assert replies == [str(n).encode() for n in range(20)]
            assert pipe.traffic.writes - before == 1
            assert await pipe.call_many([command("ECHO", "x"), command("ECHO", "y")]) == [b"x", b"y"]
            assert pipe.traffic.writes - before == 2 and fake.connections == 1
            await pipe.close()

    asyncio.run(run())


@pytest.mark.parametrize("loop", ["asyncio", "uvloop"])  # the gateway serves on uvloop
def test_callers_that_find_no_connection_share_one(loop: str) -> None:
    async def run() -> None:
        async with FakeRedis() as fake:
            pipe = _pipe(fake.url())
            replies = await asyncio.gather(*(pipe.call(command("ECHO", str(n))) for n in range(5)))
            assert replies == [b"0", b"1", b"2", b"3", b"4"]
            assert (fake.connections, pipe.traffic.writes) == (1, 1)
            await pipe.close()

    uvloop.run(run()) if loop == "uvloop" else asyncio.run(run())


def test_error_replies_go_to_their_caller_only() -> None:
    def answer(sent: list[bytes]) -> bytes:
        return b"-ERR no\r\n" if sent[-1] == b"bad" else echo(sent)

    async def run() -> None:
        async with FakeRedis(answer) as fake:
            pipe = _pipe(fake.url())
            good, bad, after = await asyncio.gather(
                pipe.call(command("ECHO", "a")),
                pipe.call(command("ECHO", "bad")),
                pipe.call(command("ECHO", "b")),
            )
            assert (good, after) == (b"a", b"b")
            assert isinstance(bad, ReplyError) and str(bad) == "ERR no"
            await pipe.close()

    asyncio.run(run())


def test_a_lost_connection_fails_every_waiter_and_the_next_call_reconnects() -> None:
    closing = True

    def answer(sent: list[bytes]) -> bytes:
        return CLOSE if closing else echo(sent)

    async def run() -> None:
        nonlocal closing
        async with FakeRedis(answer) as fake:
            pipe = _pipe(fake.url())
            failed = await asyncio.gather(
                *(pipe.call(command("ECHO", str(n))) for n in range(5)), return_exceptions=True
            )
            assert all(isinstance(error, ConnectionError) for error in failed), failed
            closing = False
            assert await pipe.call(command("ECHO", "again")) == b"again"
            assert fake.connections == 2
            await pipe.close()

    asyncio.run(run())


def test_a_server_that_does_not_answer_fails_its_waiters_after_the_timeout() -> None:
    async def run() -> None:
        async with FakeRedis(lambda sent: NOTHING) as fake:
            pipe = _pipe(fake.url(), timeout=0.05)
            failed = await asyncio.gather(
                *(pipe.call(command("ECHO", str(n))) for n in range(3)), return_exceptions=True
            )
            assert all(isinstance(error, TimeoutError) for error in failed), failed
            await pipe.close()

    asyncio.run(run())


def test_a_caller_that_gives_up_does_not_take_the_next_callers_reply() -> None:
    async def run() -> None:
        async with FakeRedis() as fake:
            pipe = _pipe(fake.url())
            await pipe.call(command("ECHO", "warm"))
            fake.held = True
            first = asyncio.ensure_future(pipe.call(command("ECHO", "first")))
            second = asyncio.ensure_future(pipe.call(command("ECHO", "second")))
            await fake.wait_for(3)
            first.cancel()
            fake.release()
            assert await second == b"second"
            assert first.cancelled()
            await pipe.close()

    asyncio.run(run())


def test_the_login_selects_the_database_and_a_refused_login_fails_the_call() -> None:
    def answer(sent: list[bytes]) -> bytes:
        if sent[0] == b"AUTH":
            return b"+OK\r\n" if sent[-1] == b"s3cret" else b"-WRONGPASS invalid username-password pair\r\n"
        return b"+OK\r\n" if sent[0] == b"SELECT" else echo(sent)

    async def run() -> None:
        async with FakeRedis(answer) as fake:
            pipe = _pipe(fake.url("/12", "turnout:s3cret@"))
            assert await pipe.call(command("ECHO", "in")) == b"in"
            assert fake.commands == [
                [b"AUTH", b"turnout", b"s3cret"],
                [b"SELECT", b"12"],
                [b"ECHO", b"in"],
            ]
            await pipe.close()
            wrong = _pipe(fake.url("", ":nope@"))
            with pytest.raises(ConnectionError, match="WRONGPASS"):
                await wrong.call(command("ECHO", "in"))
            await wrong.close()

    asyncio.run(run())


def test_an_unreachable_server_fails_the_call() -> None:
    async def run() -> None:
        pipe = _pipe("redis://127.0.0.1:1/0")
        with pytest.raises(OSError):
            await pipe.call(command("PING"))
        await pipe.close()

    asyncio.run(run())


def test_urls_are_read_as_redis_py_reads_them() -> None:
    plain = parse_url("redis://redis.internal:6380/3")
    assert (plain.host, plain.port, plain.db, plain.password, plain.tls) == (
        "redis.internal",
        6380,
        3,
        None,
        None,
    )
    default = parse_url("redis://localhost")
    assert (default.port, default.db) == (6379, 0)
    assert parse_url("redis://h/1?db=4").db == 4
    login = parse_url("redis://user:p%40ss@h")
    assert (login.username, login.password) == ("user", "p@ss")
    unix = parse_url("unix:///run/redis.sock?db=2")
    assert (unix.path, unix.db) == ("/run/redis.sock", 2)
    checked = parse_url("rediss://h")
    assert checked.tls is not None and checked.tls.verify_mode == ssl.CERT_REQUIRED
    unchecked = parse_url("rediss://h?ssl_cert_reqs=none")
    assert unchecked.tls is not None and unchecked.tls.verify_mode == ssl.CERT_NONE
    with pytest.raises(ValueError):
        parse_url("http://h")


def test_a_connection_opened_for_a_caller_that_gave_up_serves_the_next_one() -> None:
    async def run() -> None:
        async with FakeRedis(lambda sent: b"+OK\r\n" if sent[0] == b"SELECT" else echo(sent)) as fake:
            pipe = _pipe(fake.url("/3"))
            gone = asyncio.ensure_future(pipe.call(command("ECHO", "a")))
            await fake.wait_for(1)  # it is logging in
            gone.cancel()
            assert await pipe.call(command("ECHO", "b")) == b"b"
            assert fake.connections == 1 and gone.cancelled()
            await pipe.close()

    asyncio.run(run())
