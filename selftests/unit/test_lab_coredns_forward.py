"""The lab CoreDNS's wait for its upstream: a reply held past the timeout by a stall of the
lab's own loop is still read; silence is a timeout; other replies are not taken for it."""

from __future__ import annotations

import asyncio
import socket
import time
from collections.abc import Iterator

import pytest

from netdoctor.lab.components.coredns import await_reply

QUERY = b"\x12\x34rest-of-query"
ANSWER = b"\x12\x34answer"
TIMEOUT = 0.3


@pytest.fixture
def pair() -> Iterator[tuple[socket.socket, socket.socket]]:
    """(CoreDNS's socket, the upstream's), connected over loopback UDP."""
    upstream = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    upstream.bind(("127.0.0.1", 0))
    mine = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    mine.setblocking(False)
    mine.connect(upstream.getsockname())
    upstream.connect(mine.getsockname())
    yield mine, upstream
    mine.close()
    upstream.close()


def test_a_reply_held_by_a_stall_of_the_loop_is_read(pair: tuple[socket.socket, socket.socket]
                                                     ) -> None:
    mine, upstream = pair

    async def go() -> bytes | None:
        loop = asyncio.get_running_loop()

        def answer_then_stall() -> None:
            upstream.send(ANSWER)
            time.sleep(TIMEOUT + 0.7)  # the loop is held: the reply waits in the socket

        loop.call_later(0.05, answer_then_stall)
        return await await_reply(mine, QUERY, TIMEOUT, time.monotonic())

    assert asyncio.run(go()) == ANSWER


def test_a_reply_just_after_a_stall_that_outlasted_the_timeout(
        pair: tuple[socket.socket, socket.socket]) -> None:
    """The timeout fired late, when the stall ended, before the reply was read: the lab held
    the wait up, so it waits once more."""
    mine, upstream = pair

    async def go() -> bytes | None:
        loop = asyncio.get_running_loop()

        def stall_then_answer() -> None:
            time.sleep(TIMEOUT + 0.7)
            loop.call_later(0.05, upstream.send, ANSWER)

        loop.call_later(0.05, stall_then_answer)
        return await await_reply(mine, QUERY, TIMEOUT, time.monotonic())

    assert asyncio.run(go()) == ANSWER


def test_silence_is_a_timeout(pair: tuple[socket.socket, socket.socket]) -> None:
    mine, _ = pair
    started = time.monotonic()
    assert asyncio.run(await_reply(mine, QUERY, TIMEOUT, time.monotonic())) is None
    assert time.monotonic() - started < TIMEOUT + 0.5  # asked once, not again


def test_only_the_reply_to_this_query(pair: tuple[socket.socket, socket.socket]) -> None:
    mine, upstream = pair
    upstream.send(b"\x99\x99other")

    async def go() -> bytes | None:
        asyncio.get_running_loop().call_later(0.05, upstream.send, ANSWER)
        return await await_reply(mine, QUERY, TIMEOUT, time.monotonic())

    assert asyncio.run(go()) == ANSWER
