"""The lab notices when its own event loop was blocked, and its kubelet does not blame a
container's probe for it."""

from __future__ import annotations

import asyncio
import time

from netdoctor.lab.kubelet.pod import _held_up
from netdoctor.lab.looplag import LAG, LoopLag


def test_a_blocked_loop_is_recorded_with_its_length() -> None:
    lag = LoopLag()

    async def scenario() -> None:
        watcher = asyncio.create_task(lag.watch())
        await asyncio.sleep(0.15)
        started = asyncio.get_running_loop().time()
        time.sleep(0.8)  # a callback that holds the loop
        await asyncio.sleep(0.25)
        assert lag.stalled_since(started)
        watcher.cancel()

    asyncio.run(scenario())
    assert lag.count == 1
    assert 0.5 < lag.worst < 1.5
    assert lag.as_json()["count"] == 1


def test_a_quiet_loop_records_nothing() -> None:
    lag = LoopLag()

    async def scenario() -> None:
        watcher = asyncio.create_task(lag.watch())
        await asyncio.sleep(0.5)
        watcher.cancel()

    asyncio.run(scenario())
    assert lag.count == 0
    assert not lag.stalled_since(0.0)


def test_a_probe_answered_long_after_its_timeout_was_held_up_by_the_lab() -> None:
    now = time.monotonic()
    assert _held_up(now - 3.0, {"timeoutSeconds": 1})
    assert not _held_up(now - 1.1, {"timeoutSeconds": 1})


def test_a_stall_since_the_probe_was_asked_holds_it_up() -> None:
    asked = time.monotonic()
    saved = LAG.last_end
    try:
        LAG.last_end = asked + 0.01
        assert _held_up(asked, {"timeoutSeconds": 1})
        LAG.last_end = asked - 5
        assert not _held_up(asked, {"timeoutSeconds": 1})
    finally:
        LAG.last_end = saved
